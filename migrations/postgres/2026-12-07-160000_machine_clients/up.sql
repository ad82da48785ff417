-- Single-use JWT ids: private_key_jwt client assertions, DPoP proofs and
-- identity assertions, each kept until it could no longer be accepted anyway
-- (then pruned by housekeeping). `key` is the SHA-256 of the kind, the
-- issuer and the jti, so that one table serves every node.
CREATE TABLE used_jtis (
    key TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX used_jtis_expires ON used_jtis(expires_at);

-- Identity providers a workspace's owners trust for identity assertion
-- grants (ID-JAG): the issuer and where its keys are published.
CREATE TABLE trusted_issuers (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    issuer TEXT NOT NULL,
    jwks_uri TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX trusted_issuers_workspace_issuer ON trusted_issuers(workspace_id, issuer);
CREATE INDEX trusted_issuers_issuer ON trusted_issuers(issuer);

-- A public client's refresh token bound to a DPoP key (RFC 9449 §5): the
-- JWK SHA-256 thumbprint a refresh must prove again.
ALTER TABLE refresh_tokens ADD COLUMN jkt TEXT;
