-- keyseal ledger, schema 7: Idempotency-Key on the service's POST requests.
-- One row per organisation and key: a hash of the request (method, path,
-- body) and, once answered, the response a retry with the same key gets
-- again. Rows live 24 hours. No secrets: the one response that holds a
-- secret (a new API token) does not take a key.
CREATE TABLE idempotency_keys (
    org_id       TEXT NOT NULL,
    idem_key     TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    status       BIGINT,
    content_type TEXT,
    body         TEXT,
    PRIMARY KEY (org_id, idem_key)
);

CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
