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
WITH used AS (
    SELECT DISTINCT workspace_id, split_part(address_lower, '@', 2) AS domain FROM mailboxes
), shared AS (
    SELECT domain, count(*) AS n FROM used GROUP BY domain
)
INSERT INTO sending_domains (id, workspace_id, domain, status, token, by_operator, created_by, created_at, verified_at)
SELECT md5(random()::text || clock_timestamp()::text || u.workspace_id || u.domain),
       u.workspace_id, u.domain,
       CASE WHEN s.n = 1 THEN 'verified' ELSE 'pending' END,
       md5(random()::text || clock_timestamp()::text || u.domain),
       s.n = 1,
       'upgrade', extract(epoch FROM now())::bigint,
       CASE WHEN s.n = 1 THEN extract(epoch FROM now())::bigint ELSE NULL END
FROM used u JOIN shared s ON s.domain = u.domain;

-- Mailbox auth keys: an address allowlist (canonical CIDRs joined by `,`,
-- NULL for anywhere) and the end of their last day (NULL for never).
ALTER TABLE mailbox_auth_keys ADD COLUMN allowed_ips TEXT;
ALTER TABLE mailbox_auth_keys ADD COLUMN expires_at BIGINT;
