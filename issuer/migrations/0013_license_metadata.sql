-- A license's metadata: the vendor's own key-value references (a plan id,
-- a reseller), bounded, kept in the service (never in the key), returned by
-- the API, exported with the customer and erased with the customer. A JSON
-- object of strings, or NULL.
ALTER TABLE org_licenses ADD COLUMN metadata TEXT;
