-- keyseal ledger, schema 8: a customer's or a product's licenses, in id
-- order, straight from an index (the service's list filters and customer
-- export), rather than every license of the organisation. The new customer
-- index replaces the one-column one.
CREATE INDEX licenses_by_customer_id ON licenses (customer, license_id);
CREATE INDEX licenses_by_product_id ON licenses (product, license_id);
DROP INDEX licenses_by_customer;
