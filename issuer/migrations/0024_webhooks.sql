-- keyseal ledger, schema 24: outgoing webhooks (issuer/src/webhooks.rs).
-- Each event is written here by the transaction that made the change it
-- announces (the outbox), so an event exists exactly when its change
-- committed; the service's delivery workers send it afterwards.

-- An organisation's endpoints. `events` is a space-separated list of event
-- types (empty: every type). `secret` is the signing secret sealed under
-- the organisation's secret key (issuer/src/privacy.rs); `previous_secret`
-- still signs, beside it, until `previous_until` after a rotation.
-- `next_at` is when the endpoint's oldest pending delivery is due (NULL:
-- nothing pending); `claimed_by` and `claimed_until` say which replica
-- delivers to it, one at a time, in order.
CREATE TABLE webhook_endpoints (
    endpoint_id     TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs (org_id),
    url             TEXT NOT NULL,
    description     TEXT NOT NULL,
    events          TEXT NOT NULL,
    secret          TEXT NOT NULL,
    previous_secret TEXT,
    previous_until  BIGINT,
    created_at      BIGINT NOT NULL,
    disabled_at     BIGINT,
    disabled_reason TEXT,
    next_at         BIGINT,
    claimed_by      TEXT,
    claimed_until   BIGINT
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id, endpoint_id);
CREATE INDEX webhook_endpoints_due ON webhook_endpoints (next_at);

-- Events, kept for replays. `seq` is the audit entry that caused the event
-- (its ledger-wide seq: commit order); `payload` the JSON body as sent.
-- Written only for organisations that have an endpoint.
CREATE TABLE webhook_events (
    event_id   TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs (org_id),
    seq        BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_events_org ON webhook_events (org_id, seq);

-- One event to one endpoint. An endpoint's deliveries go out in (`seq`,
-- `event_seq`) order: `seq` is the audit entry that queued the delivery
-- (the event's own, or a replay's), `event_seq` the event's. `status` is
-- pending, delivered or failed (its retries ran out).
CREATE TABLE webhook_deliveries (
    delivery_id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (endpoint_id),
    org_id      TEXT NOT NULL,
    event_id    TEXT NOT NULL REFERENCES webhook_events (event_id),
    seq         BIGINT NOT NULL,
    event_seq   BIGINT NOT NULL,
    status      TEXT NOT NULL,
    attempts    BIGINT NOT NULL,
    next_at     BIGINT NOT NULL,
    last_status BIGINT,
    last_error  TEXT,
    created_at  BIGINT NOT NULL,
    done_at     BIGINT
);
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (endpoint_id, status, seq, event_seq);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);

-- Every attempt to send a delivery: the HTTP status (NULL: no answer) or
-- what failed, and how long it took.
CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (delivery_id),
    attempt     BIGINT NOT NULL,
    org_id      TEXT NOT NULL,
    at          BIGINT NOT NULL,
    status      BIGINT,
    error       TEXT,
    millis      BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

-- Leases that ran out without a check-in or a release are announced
-- (`lease.lapsed`) by a sweep in expiry order; this index serves it, and
-- `meta.lapse_mark` (expires_at:seat_id) is where the last sweep stopped.
CREATE INDEX seats_by_expiry ON seats (expires_at, seat_id);
