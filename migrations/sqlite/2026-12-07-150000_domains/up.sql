-- Sending domains: a workspace proves it controls a domain with a TXT record
-- (`_keygate-challenge.DOMAIN` = `keygate-verification=TOKEN`) before its
-- mailboxes may send from it. `domain` is the lower-case A-label without a
-- trailing dot. One row per (workspace, domain); at most one workspace holds
-- a domain verified at a time (the partial unique index).
CREATE TABLE sending_domains (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    domain TEXT NOT NULL,
    status TEXT NOT NULL,
    token TEXT NOT NULL,
    by_operator BOOLEAN NOT NULL DEFAULT FALSE,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    verified_at BIGINT,
    checked_at BIGINT,
    missing_since BIGINT,
    UNIQUE (workspace_id, domain)
);
CREATE UNIQUE INDEX sending_domains_one_holder ON sending_domains(domain) WHERE status = 'verified';
CREATE INDEX sending_domains_domain ON sending_domains(domain);
CREATE INDEX sending_domains_checked ON sending_domains(checked_at);

-- Existing mailboxes keep working: the domain of each is created verified (by
-- the operator's authority, never looked up) for its workspace when no other
-- workspace has mailboxes in it. A domain several workspaces use is added
-- pending to each of them instead; keygate logs them at start
-- (mailboxes::domains::upgrade).
INSERT INTO sending_domains (id, workspace_id, domain, status, token, by_operator, created_by, created_at, verified_at)
SELECT lower(hex(randomblob(16))), u.workspace_id, u.domain,
       CASE WHEN (SELECT count(DISTINCT m2.workspace_id) FROM mailboxes m2
                  WHERE substr(m2.address_lower, instr(m2.address_lower, '@') + 1) = u.domain) = 1
            THEN 'verified' ELSE 'pending' END,
       lower(hex(randomblob(16))),
       CASE WHEN (SELECT count(DISTINCT m2.workspace_id) FROM mailboxes m2
                  WHERE substr(m2.address_lower, instr(m2.address_lower, '@') + 1) = u.domain) = 1
            THEN TRUE ELSE FALSE END,
       'upgrade', CAST(strftime('%s', 'now') AS INTEGER),
       CASE WHEN (SELECT count(DISTINCT m2.workspace_id) FROM mailboxes m2
                  WHERE substr(m2.address_lower, instr(m2.address_lower, '@') + 1) = u.domain) = 1
            THEN CAST(strftime('%s', 'now') AS INTEGER) ELSE NULL END
FROM (SELECT DISTINCT workspace_id, substr(address_lower, instr(address_lower, '@') + 1) AS domain
      FROM mailboxes) u;

-- Mailbox auth keys: an address allowlist (canonical CIDRs joined by `,`,
-- NULL for anywhere) and the end of their last day (NULL for never).
ALTER TABLE mailbox_auth_keys ADD COLUMN allowed_ips TEXT;
ALTER TABLE mailbox_auth_keys ADD COLUMN expires_at BIGINT;
