-- keyseal ledger, schema 9: customers' personal data sealed, and the audit
-- log by organisation (its own chain) and customer, by index.
--
-- customers: the name and email columns stay, always NULL from now on (the
-- service seals rows written before on start, see `privacy`). data_key is
-- the customer's AES-256-GCM key wrapped under its organisation's key;
-- sealed, its fields (name, email, metadata); email_hash, the keyed hash
-- that finds it by email. Erasure sets all three to NULL.
ALTER TABLE customers ADD COLUMN data_key TEXT;
ALTER TABLE customers ADD COLUMN sealed TEXT;
ALTER TABLE customers ADD COLUMN email_hash TEXT;
CREATE INDEX customers_by_email ON customers (org_id, email_hash);

-- audit_log: the organisation an entry belongs to (its actor's, or the one
-- its details name) and the customer it concerns (a license's customer for
-- license actions): what GET /v1/audit and a customer's export filter on.
-- Not part of the ledger-wide hash chain (both follow from what is).
--
-- Each organisation's entries also form a hash chain of their own, numbered
-- from 1 (org_seq), so an organisation sees and checks its own history
-- without learning the volume of any other's. The hash is the ledger-wide
-- chain's function over org_seq and org_prev_hash. Entries written before
-- are chained on first open (Store::fill_audit_subjects).
ALTER TABLE audit_log ADD COLUMN org_id TEXT;
ALTER TABLE audit_log ADD COLUMN subject TEXT;
ALTER TABLE audit_log ADD COLUMN org_seq BIGINT;
ALTER TABLE audit_log ADD COLUMN org_prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN org_hash TEXT;
CREATE UNIQUE INDEX audit_org_seq ON audit_log (org_id, org_seq);
CREATE INDEX audit_by_subject ON audit_log (org_id, subject, org_seq);
UPDATE audit_log SET org_id = substr(actor, 5, 20) WHERE actor LIKE 'org:org%/%';
