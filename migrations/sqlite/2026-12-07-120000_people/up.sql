-- People and workspaces the product links to its own ids, people who sign in
-- through the product's identity provider, and disabled people.
-- A person without a password has password_hash '' (an empty string is no
-- argon2 hash, so it never verifies); disabled_at is set while disabled.
ALTER TABLE workspaces ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX workspaces_external_id ON workspaces(external_id);
ALTER TABLE users ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX users_external_id ON users(external_id);
ALTER TABLE users ADD COLUMN disabled_at BIGINT;

CREATE TABLE identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX identities_user ON identities(user_id);
