-- Key certificates: an offline root's signature over an issuing key, its
-- window and products, so apps that pin only the root trust the key without
-- an update. One a key (certifying again replaces it); public, served with
-- the revocation lists the key signs. The root itself is never stored here.
CREATE TABLE key_certificates (
    key_id TEXT PRIMARY KEY REFERENCES signing_keys (key_id),
    org_id TEXT NOT NULL,
    root_key_id TEXT NOT NULL,
    certificate TEXT NOT NULL,
    valid_from BIGINT NOT NULL,
    valid_until BIGINT,
    created_at BIGINT NOT NULL
);
