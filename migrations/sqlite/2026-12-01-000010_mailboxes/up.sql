-- Mailboxes: sending identities of a workspace. The address is unique across the
-- whole server compared without case (address_lower), and kept as it was given.
CREATE TABLE mailboxes (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    address TEXT NOT NULL,
    address_lower TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX mailboxes_workspace ON mailboxes(workspace_id, id);

-- Mailbox auth keys: SMTP credentials of one mailbox, stored as SHA-256 hashes.
-- Deleting a mailbox deletes its keys (keygate does so itself, in the same
-- transaction; the cascade is a backstop).
CREATE TABLE mailbox_auth_keys (
    id TEXT PRIMARY KEY NOT NULL,
    mailbox_id TEXT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    public_id TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT,
    rotated_at BIGINT,
    usage_count BIGINT NOT NULL DEFAULT 0,
    last_used_at BIGINT,
    UNIQUE (mailbox_id, name)
);

-- An API key restricted to one mailbox. No foreign key: deleting the mailbox
-- revokes such keys and the id stays as a record of what the key was for.
ALTER TABLE api_keys ADD COLUMN mailbox_id TEXT;
