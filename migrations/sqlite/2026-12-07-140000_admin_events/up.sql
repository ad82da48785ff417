-- The admin API's tokens and idempotency keys, the outbox of events and the
-- webhook endpoints they are delivered to.
CREATE TABLE admin_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);

CREATE TABLE idempotency_keys (
    token_id TEXT NOT NULL,
    path TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    response TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (token_id, path, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);

CREATE TABLE events (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX events_created ON events(created_at);

CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY NOT NULL,
    url TEXT NOT NULL,
    event_types TEXT NOT NULL,
    secret_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    endpoint_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_status_code INTEGER,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL,
    lease_owner TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries(event_id);

ALTER TABLE api_keys ADD COLUMN expiring_sent_at BIGINT;
ALTER TABLE workspaces ADD COLUMN deleted_at BIGINT;
ALTER TABLE users ADD COLUMN deleted_at BIGINT;
