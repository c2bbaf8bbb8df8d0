-- A license's external id: the vendor's own reference (an order number, a
-- batch row's id), unique within the organisation, so a batch run again or
-- a payment event delivered twice finds the license it made instead of
-- minting another. Never in the key.
ALTER TABLE org_licenses ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX org_licenses_by_external_id ON org_licenses (org_id, external_id)
    WHERE external_id IS NOT NULL;
