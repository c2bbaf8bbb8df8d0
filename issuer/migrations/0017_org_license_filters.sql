-- keyseal ledger, schema 17: an organisation's licenses of one customer or
-- one product, in id order, from one index that starts with the
-- organisation. Schema 8 walked the customer's or the product's licenses
-- across every organisation and checked each one's: fine for a customer,
-- but a product id many organisations use, or one that holds most of an
-- organisation's licenses, left PostgreSQL's generic plan scanning the
-- organisation's table. A license's product and customer never change, so
-- org_licenses keeps a copy of both.
-- `Store::migrate` fills both on existing rows (`Store::fill_upgrade_gaps`,
-- which also fills rows an older replica writes during an upgrade).
ALTER TABLE org_licenses ADD COLUMN product TEXT;
ALTER TABLE org_licenses ADD COLUMN customer TEXT;
CREATE INDEX org_licenses_by_customer ON org_licenses (org_id, customer, license_id);
CREATE INDEX org_licenses_by_product ON org_licenses (org_id, product, license_id);
-- Rows with no copy yet, found quickly by `Store::fill_upgrade_gaps`.
CREATE INDEX org_licenses_unfilled ON org_licenses (license_id) WHERE customer IS NULL;
