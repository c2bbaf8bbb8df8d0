-- keyseal ledger, schema 22: trials (issuer/src/trials.rs). A device asks
-- for a product's trial with its fingerprint and no key; the first request
-- from a device mints a trial license bound to it, and a device that
-- matches an earlier trial device (k of its components equal) is refused.

-- A product's trial policy (no row: trials are off). `enabled` is 0 or 1;
-- `entitlements` a JSON array of names, sorted; `device_match` the k of the
-- k-of-n match.
CREATE TABLE trial_policies (
    org_id       TEXT NOT NULL,
    product      TEXT NOT NULL,
    enabled      BIGINT NOT NULL,
    length_secs  BIGINT NOT NULL,
    plan         TEXT NOT NULL,
    entitlements TEXT NOT NULL,
    device_match BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (org_id, product),
    FOREIGN KEY (org_id, product) REFERENCES org_products (org_id, product)
);

-- One row per trial, keyed by the trial license it minted. `device` is a
-- keyed hash of the whole fingerprint as sent (a retry from the very same
-- fingerprint gets its key again); `components` how many distinct
-- components that fingerprint had. No fingerprint, component or address
-- is stored: only HMAC-SHA256 values under a key derived from the ledger's
-- sealed data secret, per organisation (issuer/src/privacy.rs).
CREATE TABLE trials (
    license_id TEXT PRIMARY KEY REFERENCES licenses (license_id),
    org_id     TEXT NOT NULL REFERENCES orgs (org_id),
    product    TEXT NOT NULL,
    device     TEXT NOT NULL,
    components BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    ends_at    BIGINT NOT NULL
);

-- Each trial device's components, as keyed hashes. The primary key starts
-- with (org_id, product, component): the k-of-n match looks up the new
-- device's components in it and counts them per trial, reading only the
-- rows that share a component with it, never every trial.
CREATE TABLE trial_components (
    org_id     TEXT NOT NULL,
    product    TEXT NOT NULL,
    component  TEXT NOT NULL,
    license_id TEXT NOT NULL REFERENCES trials (license_id),
    PRIMARY KEY (org_id, product, component, license_id)
);
