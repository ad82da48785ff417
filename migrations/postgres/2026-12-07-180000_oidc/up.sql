-- Sign-ins through the product's identity provider that have been started and
-- not yet finished: one row per attempt, keyed by the SHA-256 of its `state`,
-- bound to the browser that started it (the SHA-256 of a cookie), deleted when
-- the callback uses it (single use) and pruned by housekeeping once expired.
CREATE TABLE pending_sign_ins (
    state_hash TEXT PRIMARY KEY NOT NULL,
    browser_hash TEXT NOT NULL,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    next TEXT NOT NULL,
    client_address TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX pending_sign_ins_address ON pending_sign_ins(client_address, created_at);
CREATE INDEX pending_sign_ins_created ON pending_sign_ins(created_at);
