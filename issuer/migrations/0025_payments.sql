-- keyseal ledger, schema 25: payment events in (issuer/src/payments.rs).
-- A payment provider (Stripe) posts its events to the service; each is
-- checked against the organisation's signing secret and acted on once.

-- The organisation's Stripe endpoint secret, sealed under its secret key
-- (issuer/src/privacy.rs); the previous one still checks until
-- `previous_until` after a change, as Stripe signs with both while an
-- endpoint's secret is rolled.
CREATE TABLE payment_settings (
    org_id          TEXT PRIMARY KEY REFERENCES orgs (org_id),
    stripe_secret   TEXT NOT NULL,
    previous_secret TEXT,
    previous_until  BIGINT,
    updated_at      BIGINT NOT NULL
);

-- What a price buys: the license minted for it. `entitlements` is a JSON
-- array; `duration_secs` the license's length from the purchase (or from
-- the end of the paid period, for a subscription's renewal); `seats` its
-- max_devices; `on_refund` and `on_cancel` are `revoke` or `lapse`;
-- `email` 1 to email the key to the buyer.
CREATE TABLE price_mappings (
    org_id        TEXT NOT NULL REFERENCES orgs (org_id),
    price_id      TEXT NOT NULL,
    product       TEXT NOT NULL,
    plan          TEXT NOT NULL,
    entitlements  TEXT NOT NULL,
    duration_secs BIGINT NOT NULL,
    seats         BIGINT NOT NULL,
    on_refund     TEXT NOT NULL,
    on_cancel     TEXT NOT NULL,
    email         BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (org_id, price_id)
);

-- The keyseal customer made for a provider's customer (or checkout, when
-- it has no customer), so a second purchase finds the same one.
CREATE TABLE payment_customers (
    org_id       TEXT NOT NULL REFERENCES orgs (org_id),
    provider_ref TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    PRIMARY KEY (org_id, provider_ref)
);

-- Which licenses a provider's object paid for: a checkout session, a
-- payment intent, a subscription, an invoice.
CREATE TABLE payment_links (
    org_id     TEXT NOT NULL REFERENCES orgs (org_id),
    ref        TEXT NOT NULL,
    license_id TEXT NOT NULL,
    price_id   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, ref, license_id)
);

-- Each provider event acted on (`outcome` says how; `detail` why), once:
-- the same event again is answered as a duplicate. Events refused for a
-- reason the vendor can fix (an unknown price) are recorded with outcome
-- `refused` and acted on when the provider sends them again.
CREATE TABLE payment_events (
    org_id      TEXT NOT NULL REFERENCES orgs (org_id),
    event_id    TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    outcome     TEXT NOT NULL,
    detail      TEXT NOT NULL,
    license_id  TEXT,
    PRIMARY KEY (org_id, event_id)
);
CREATE INDEX payment_events_recent ON payment_events (org_id, received_at);
