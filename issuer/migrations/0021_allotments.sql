-- keyseal ledger, schema 21: seat allotments to on-premises relays
-- (docs/FORMAT.md, "Seat allotment"; issuer/src/allotments.rs). Each row is
-- one signed allotment: the relay's key, the seats it may lease and until
-- when. A relay's seats count toward its license's max_devices until
-- SEAT_MARGIN_SECS after the end of its last allotment (the largest
-- of its allotments in force), whether or not the vendor revoked it since:
-- the signed allotment stays valid until its end. `revoked_at` on a row
-- stops further allotments to that relay key.
CREATE TABLE allotments (
    allotment_id TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs (org_id),
    license_id   TEXT NOT NULL REFERENCES licenses (license_id),
    relay_key    TEXT NOT NULL,
    relay_key_id TEXT NOT NULL,
    seats        BIGINT NOT NULL,
    issued_at    BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX allotments_by_license ON allotments (org_id, license_id, expires_at);
