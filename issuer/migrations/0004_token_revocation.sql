-- keyseal ledger, schema 4: API tokens can be revoked (revoked_at set; a
-- revoked token authenticates nothing). Existing tokens stay valid.
ALTER TABLE api_tokens ADD COLUMN revoked_at BIGINT;
