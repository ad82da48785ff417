-- A consent request held for a client ID metadata document names a client
-- that has no row yet: the row is written only when a person approves. The
-- validated document travels with the held request until then. SQLite drops
-- a foreign key only by rebuilding the table.
CREATE TABLE consent_requests_new (
    id_hash TEXT PRIMARY KEY NOT NULL,
    session_hash TEXT NOT NULL,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scopes TEXT NOT NULL,
    state TEXT,
    code_challenge TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    client_document TEXT
);
INSERT INTO consent_requests_new (id_hash, session_hash, client_id, redirect_uri, scopes, state, code_challenge, created_at, expires_at)
    SELECT id_hash, session_hash, client_id, redirect_uri, scopes, state, code_challenge, created_at, expires_at FROM consent_requests;
DROP TABLE consent_requests;
ALTER TABLE consent_requests_new RENAME TO consent_requests;
CREATE INDEX consent_requests_expires ON consent_requests(expires_at);
CREATE INDEX consent_requests_client ON consent_requests(client_id);
