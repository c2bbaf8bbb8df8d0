-- keyseal ledger, schema 23: relays renew their allotments online
-- (issuer/src/allotments.rs, `Store::renew_allotment`). `proof_at` is the
-- time the relay signed its renewal request (NULL for an allotment the
-- vendor granted): a renewal must be signed after the relay's last one, so
-- a request seen once cannot be sent again.
ALTER TABLE allotments ADD COLUMN proof_at BIGINT;
