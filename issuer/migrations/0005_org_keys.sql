-- keyseal ledger, schema 5: signing keys and revocation lists belong to an
-- organisation. Keys that existed before (the vault's) go to the first
-- organisation, which becomes the default one (meta.default_org: what the
-- CLI signs for and the unscoped public endpoints serve). Before any
-- organisation exists the vault's keys and lists have org_id '' and the
-- first organisation created takes them over. Revocation list sequences
-- count per organisation.
INSERT INTO meta (name, value)
    SELECT 'default_org', org_id FROM orgs ORDER BY created_at, org_id LIMIT 1;

ALTER TABLE signing_keys ADD COLUMN org_id TEXT NOT NULL DEFAULT '';
UPDATE signing_keys SET org_id = COALESCE((SELECT value FROM meta WHERE name = 'default_org'), '');
CREATE INDEX signing_keys_by_org ON signing_keys (org_id, status);

CREATE TABLE revocation_lists_by_org (
    org_id        TEXT NOT NULL,
    sequence      BIGINT NOT NULL,
    issued_at     BIGINT NOT NULL,
    next_update   BIGINT NOT NULL,
    signer        TEXT NOT NULL,
    license_count BIGINT NOT NULL,
    key_count     BIGINT NOT NULL,
    list_b64      TEXT NOT NULL,
    PRIMARY KEY (org_id, sequence)
);
INSERT INTO revocation_lists_by_org
    (org_id, sequence, issued_at, next_update, signer, license_count, key_count, list_b64)
    SELECT COALESCE((SELECT value FROM meta WHERE name = 'default_org'), ''),
           sequence, issued_at, next_update, signer, license_count, key_count, list_b64
    FROM revocation_lists;
DROP TABLE revocation_lists;
ALTER TABLE revocation_lists_by_org RENAME TO revocation_lists;
