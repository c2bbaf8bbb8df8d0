-- keyseal ledger, schema 2: the issuing service's tenants and objects
-- (keyseal serve). Additive: the CLI's tables are unchanged. Portable
-- between SQLite and PostgreSQL. Times are unix seconds.

-- Organisations: every API object below belongs to exactly one.
CREATE TABLE orgs (
    org_id     TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- API tokens: only the SHA-256 of the secret is stored. scopes: space-separated
-- (admin, issue, read).
CREATE TABLE api_tokens (
    token_id   TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs (org_id),
    token_hash TEXT NOT NULL UNIQUE,
    scopes     TEXT NOT NULL,
    label      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Products an organisation issues for.
CREATE TABLE org_products (
    org_id     TEXT NOT NULL REFERENCES orgs (org_id),
    product    TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, product)
);

-- Customers: an opaque id (what keys carry) and personal fields that stay
-- in the service (erased on request: erased_at set, fields NULL).
CREATE TABLE customers (
    customer_id TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs (org_id),
    name        TEXT,
    email       TEXT,
    created_at  BIGINT NOT NULL,
    erased_at   BIGINT
);
CREATE INDEX customers_by_org ON customers (org_id, customer_id);

-- Which organisation minted a license, its device limit and suspension.
CREATE TABLE org_licenses (
    license_id   TEXT PRIMARY KEY REFERENCES licenses (license_id),
    org_id       TEXT NOT NULL REFERENCES orgs (org_id),
    max_devices  BIGINT NOT NULL,
    suspended_at BIGINT
);
CREATE INDEX org_licenses_by_org ON org_licenses (org_id, license_id);

-- Device activations: a seat per (license, fingerprint) until deactivated.
CREATE TABLE activations (
    activation_id  TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES orgs (org_id),
    license_id     TEXT NOT NULL REFERENCES licenses (license_id),
    fingerprint    TEXT NOT NULL,
    device_key_id  TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    deactivated_at BIGINT
);
CREATE INDEX activations_by_license ON activations (license_id, deactivated_at);
