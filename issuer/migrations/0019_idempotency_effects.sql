-- keyseal ledger, schema 19: a claimed idempotency key notes, in the same
-- transaction, that its request's effect committed (`effect` = 1), so a
-- request that died between its effect and the record of its answer is not
-- run a second time when a retry takes the abandoned claim over (see
-- `idempotency::Claim::Unanswered`).
ALTER TABLE idempotency_keys ADD COLUMN effect BIGINT;
