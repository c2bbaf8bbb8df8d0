-- The revocation revision each list was built from (how many revocations
-- the organisation had recorded, kept in `meta` as `revision <org_id>`), so
-- a burst of revocations publishes one list, not one each (see
-- `ops::Publish::IfChanged`).
ALTER TABLE revocation_lists ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
