-- keyseal ledger, schema 23: relays renew their allotments online
-- (issuer/src/allotments.rs, `Store::renew_allotment`). `proof_at` is the
-- time the relay signed its renewal request (NULL for an allotment the
-- vendor granted): a renewal must be signed after the relay's last one, so
-- a request seen once cannot be sent again. `seq` numbers a relay's
-- allotments of a license in the order they were written (1, 2, ...; NULL
-- for rows before schema 23): a renewal copies the vendor's last grant,
-- which two grants signed in the same second would leave undecided by time.
ALTER TABLE allotments ADD COLUMN proof_at BIGINT;
ALTER TABLE allotments ADD COLUMN seq BIGINT;
