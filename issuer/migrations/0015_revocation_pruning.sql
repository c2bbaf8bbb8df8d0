-- Until when a revoked license must stay on the revocation lists: its
-- expiry plus grace plus a margin for apps' clocks (see
-- `ops::REVOKED_LISTED_AFTER_EXPIRY`); by then every app refuses it as
-- expired anyway. NULL: for ever (perpetual licenses, and revocations
-- recorded before this column, which are never dropped).
ALTER TABLE revocations ADD COLUMN listed_until BIGINT;
