-- The product's own APIs registered as protected resources (RFC 8707): the
-- identifier is the `aud` of the tokens issued for it; `identifier_key` is
-- the identifier without one trailing slash, the form it is compared in.
-- The resource's own credentials (for introspection) are a client id and the
-- SHA-256 of its secret; its routes are a JSON array.
CREATE TABLE resources (
    id TEXT PRIMARY KEY NOT NULL,
    identifier TEXT NOT NULL,
    identifier_key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    client_id TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    routes TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
-- The resource an authorization (and the request held for it) was granted
-- for, by identifier; NULL is {issuer}/v1.
ALTER TABLE authorizations ADD COLUMN resource TEXT;
ALTER TABLE consent_requests ADD COLUMN resource TEXT;
CREATE INDEX authorizations_resource ON authorizations(resource);
