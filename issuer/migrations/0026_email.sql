-- keyseal ledger, schema 26: license keys delivered by email
-- (issuer/src/email.rs). An organisation's SMTP settings (the password
-- sealed), and an outbox of emails, each written in the transaction that
-- decided to send it (a payment's), sent by the service's workers.
CREATE TABLE email_settings (
    org_id     TEXT PRIMARY KEY REFERENCES orgs (org_id),
    host       TEXT NOT NULL,
    port       BIGINT NOT NULL,
    security   TEXT NOT NULL,
    username   TEXT,
    password   TEXT,
    from_addr  TEXT NOT NULL,
    reply_to   TEXT,
    updated_at BIGINT NOT NULL
);

-- One email of a license's key. `recipient` is the address sealed under
-- the organisation's secret key, and is cleared once the email is sent or
-- given up on (the customer keeps it, sealed, until erased).
CREATE TABLE email_outbox (
    email_id      TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs (org_id),
    license_id    TEXT NOT NULL,
    recipient     TEXT,
    status        TEXT NOT NULL,
    attempts      BIGINT NOT NULL,
    next_at       BIGINT NOT NULL,
    last_error    TEXT,
    created_at    BIGINT NOT NULL,
    sent_at       BIGINT,
    claimed_by    TEXT,
    claimed_until BIGINT
);
CREATE INDEX email_outbox_due ON email_outbox (status, next_at);
CREATE INDEX email_outbox_license ON email_outbox (org_id, license_id);
