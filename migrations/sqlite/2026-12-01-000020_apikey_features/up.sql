-- API key features: address allowlists, custom scopes, the last client address,
-- rotation with a grace period; and a free-text detail on security-log rows
-- (a leak report's url and source).
ALTER TABLE api_keys ADD COLUMN allowed_ips TEXT;
ALTER TABLE api_keys ADD COLUMN scopes TEXT;
ALTER TABLE api_keys ADD COLUMN last_used_ip TEXT;
ALTER TABLE api_keys ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE api_keys ADD COLUMN previous_secret_expires_at BIGINT;
-- Leak reports look keys up by the hash of the whole key, a batch at a time.
CREATE INDEX api_keys_secret_hash ON api_keys(secret_hash);
CREATE INDEX api_keys_previous_secret_hash ON api_keys(previous_secret_hash)
    WHERE previous_secret_hash IS NOT NULL;
ALTER TABLE audit_events ADD COLUMN detail TEXT;
