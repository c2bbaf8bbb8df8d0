-- Sealed signing keys in the ledger: each key's sealed file (the JSON of
-- keyfile::KeyFile, Argon2id then XChaCha20-Poly1305 under the vault
-- passphrase, exactly as in the vault's keys/ directory), so PostgreSQL
-- replicas need only the database and the passphrase. Keys recorded before
-- are imported from the vault's key files when it is opened
-- (Store::import_key_files).
ALTER TABLE signing_keys ADD COLUMN sealed TEXT;
