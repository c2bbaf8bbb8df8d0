-- keyseal ledger, schema 1. Portable between SQLite and PostgreSQL: only
-- TEXT, BIGINT and plain constraints. Times are unix seconds.

-- Settings and the writers' serialisation row (see Store::begin_write).
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO meta (name, value) VALUES ('writer', '0');

-- Products this vault issues licenses for.
CREATE TABLE products (
    name       TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

-- Signing keys (public halves; the sealed seeds are in the vault's key files).
-- status: active (exactly one at most), retired, revoked.
CREATE TABLE signing_keys (
    key_id        TEXT PRIMARY KEY,
    public_key    TEXT NOT NULL UNIQUE,
    status        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    valid_from    BIGINT NOT NULL,
    valid_until   BIGINT,
    revoked_at    BIGINT,
    revoke_reason TEXT
);

-- Every license ever minted. batch_id/batch_row tie batch rows to their input.
CREATE TABLE licenses (
    license_id  TEXT PRIMARY KEY,
    key_id      TEXT NOT NULL REFERENCES signing_keys (key_id),
    product     TEXT NOT NULL,
    customer    TEXT NOT NULL,
    plan        TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT,
    license_key TEXT NOT NULL,
    batch_id    TEXT,
    batch_row   BIGINT
);
CREATE INDEX licenses_by_customer ON licenses (customer);
CREATE INDEX licenses_by_batch ON licenses (batch_id, batch_row);

-- Revoked licenses.
CREATE TABLE revocations (
    license_id TEXT PRIMARY KEY REFERENCES licenses (license_id),
    revoked_at BIGINT NOT NULL,
    reason     TEXT NOT NULL
);

-- Published revocation lists; sequence only grows.
CREATE TABLE revocation_lists (
    sequence      BIGINT PRIMARY KEY,
    issued_at     BIGINT NOT NULL,
    next_update   BIGINT NOT NULL,
    signer        TEXT NOT NULL,
    license_count BIGINT NOT NULL,
    key_count     BIGINT NOT NULL,
    list_b64      TEXT NOT NULL
);

-- Append-only audit log, each entry chained to the previous by hash.
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
