-- keyseal ledger, schema 20: seats held by leases (docs/FORMAT.md, "Lease";
-- issuer/src/seats.rs). A seat counts toward its license's max_devices
-- while it is not released and its lease has not ended (plus a margin).
-- `device` is the lease's device binding hash (salted with the product and
-- the license id), never a fingerprint; `instance_key` is the public key
-- the app made at activation, which signs its check-ins and release;
-- `proof_at` is the time of the newest signed request (replays are older).
CREATE TABLE seats (
    seat_id      TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs (org_id),
    license_id   TEXT NOT NULL REFERENCES licenses (license_id),
    device       TEXT NOT NULL,
    instance_key TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    proof_at     BIGINT NOT NULL,
    renew_at     BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    released_at  BIGINT
);
CREATE INDEX seats_by_license ON seats (org_id, license_id, expires_at);

-- A product's lease policy: renew interval and grace for failed check-ins
-- (seconds; NULL = the defaults of issuer/src/seats.rs).
ALTER TABLE org_products ADD COLUMN lease_secs BIGINT;
ALTER TABLE org_products ADD COLUMN lease_grace_secs BIGINT;
