-- keyseal ledger, schema 6: at most one active signing key per
-- organisation. Two key rotations at once (two replicas) could each retire
-- the same old key and leave two active ones, and then the group commit and
-- the services disagreed on which key was active. Where that happened the
-- newest active key stays active and the others are retired from its
-- creation on; then a unique index keeps it from happening again.
UPDATE signing_keys
SET status = 'retired',
    valid_until = (
        SELECT MAX(k.created_at) FROM signing_keys k
        WHERE k.org_id = signing_keys.org_id AND k.status = 'active'
    )
WHERE status = 'active'
  AND EXISTS (
      SELECT 1 FROM signing_keys k
      WHERE k.org_id = signing_keys.org_id
        AND k.status = 'active'
        AND (k.created_at > signing_keys.created_at
             OR (k.created_at = signing_keys.created_at AND k.key_id > signing_keys.key_id))
  );

CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (org_id) WHERE status = 'active';
