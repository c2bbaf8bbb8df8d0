-- keyseal ledger, schema 18: each revocation names its organisation (the
-- organisation of the key that signed the license, as lists have always
-- counted it), so building an organisation's list reads one index range
-- of its own revocations instead of joining every revoked license to its
-- license and key (most of a 100,000-license list's publishing time).
-- `Store::migrate` fills it on existing rows (`Store::fill_upgrade_gaps`).
ALTER TABLE revocations ADD COLUMN org_id TEXT;
CREATE INDEX revocations_by_org ON revocations (org_id, license_id, listed_until);
