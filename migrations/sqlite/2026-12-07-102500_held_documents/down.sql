CREATE TABLE consent_requests_old (
    id_hash TEXT PRIMARY KEY NOT NULL,
    session_hash TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(id),
    redirect_uri TEXT NOT NULL,
    scopes TEXT NOT NULL,
    state TEXT,
    code_challenge TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
INSERT INTO consent_requests_old
    SELECT id_hash, session_hash, client_id, redirect_uri, scopes, state, code_challenge, created_at, expires_at
    FROM consent_requests WHERE client_id IN (SELECT id FROM clients);
DROP TABLE consent_requests;
ALTER TABLE consent_requests_old RENAME TO consent_requests;
CREATE INDEX consent_requests_expires ON consent_requests(expires_at);
CREATE INDEX consent_requests_client ON consent_requests(client_id);
