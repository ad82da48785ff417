ALTER TABLE users DROP COLUMN deleted_at;
ALTER TABLE workspaces DROP COLUMN deleted_at;
ALTER TABLE api_keys DROP COLUMN expiring_sent_at;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
DROP TABLE events;
DROP TABLE idempotency_keys;
DROP TABLE admin_tokens;
