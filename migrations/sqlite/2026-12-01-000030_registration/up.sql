-- Apps that register themselves (RFC 7591 / RFC 7592, client ID metadata
-- documents) and developer apps of the settings pages.
--   kind: operator (keygate client create), developer (settings pages),
--         dynamic (POST /oauth/register), metadata_document (client_id is a URL).
--   metadata: the registered RFC 7591 metadata, as JSON text.
--   registration_token_hash: SHA-256 of the RFC 7592 registration access token.
--   deleted_at: a removed client keeps its row while authorizations refer to it
--   (they stay listed, revoked); housekeeping drops rows nothing refers to.
ALTER TABLE clients ADD COLUMN kind TEXT NOT NULL DEFAULT 'operator';
ALTER TABLE clients ADD COLUMN owner_user_id TEXT;
ALTER TABLE clients ADD COLUMN metadata TEXT;
ALTER TABLE clients ADD COLUMN registration_token_hash TEXT;
ALTER TABLE clients ADD COLUMN token_endpoint_auth_method TEXT NOT NULL DEFAULT 'client_secret_basic';
ALTER TABLE clients ADD COLUMN grant_types TEXT NOT NULL DEFAULT '["authorization_code","refresh_token"]';
ALTER TABLE clients ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN deleted_at BIGINT;
UPDATE clients SET token_endpoint_auth_method = 'none' WHERE is_public = 1;
UPDATE clients SET updated_at = created_at;
CREATE INDEX clients_owner ON clients(owner_user_id);
CREATE INDEX clients_kind_created ON clients(kind, created_at);
CREATE INDEX authorizations_client ON authorizations(client_id);
CREATE INDEX consent_requests_client ON consent_requests(client_id);
