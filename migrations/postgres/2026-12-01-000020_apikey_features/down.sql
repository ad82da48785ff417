ALTER TABLE audit_events DROP COLUMN detail;
DROP INDEX api_keys_previous_secret_hash;
DROP INDEX api_keys_secret_hash;
ALTER TABLE api_keys DROP COLUMN previous_secret_expires_at;
ALTER TABLE api_keys DROP COLUMN previous_secret_hash;
ALTER TABLE api_keys DROP COLUMN last_used_ip;
ALTER TABLE api_keys DROP COLUMN scopes;
ALTER TABLE api_keys DROP COLUMN allowed_ips;
