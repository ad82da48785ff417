//! What the commands print: one line per object, JSON with `--json`, words
//! otherwise.
//!
//! The JSON objects are the contract's (`CONTRACT.md`, "The binary"). Each is a
//! struct whose fields are declared in sorted order: that is the order in which
//! serde_json (without `preserve_order`) printed the `json!` maps these replaced,
//! so the printed bytes stay the same. A test below holds every struct to it.

use crate::accounts::audit::AuditEvent;
use crate::apikeys::{ApiKey, KeyRow};
use crate::credentials::scopes;
use crate::db::rfc3339;
use crate::mailboxes::auth_keys::{AuthKeyRow, IssuedAuthKey};
use crate::mailboxes::domains::SendingDomain;
use crate::mailboxes::lifecycle::{Mailbox, MailboxRow};
use crate::mailboxes::MailboxAuthKey;
use crate::oauth::authorizations::AppRow;
use crate::oauth::clients::Client;
use crate::resources::{Created, Resource};
use serde::Serialize;

/// Where a command's results go: stdout, as JSON lines or as words.
pub(super) struct Out {
    pub(super) json: bool,
}

impl Out {
    /// Prints one result: `value` as a JSON line with `--json`, else `human`.
    pub(super) fn emit<T: Serialize>(&self, value: &T, human: String) {
        if self.json {
            self.json_only(value);
        } else {
            println!("{human}");
        }
    }

    /// Prints `value` as a JSON line with `--json`, and nothing otherwise.
    pub(super) fn json_only<T: Serialize>(&self, value: &T) {
        if !self.json {
            return;
        }
        match serde_json::to_string(value) {
            Ok(line) => println!("{line}"),
            // Plain structs of strings, numbers and lists always serialise.
            Err(e) => eprintln!("error: cannot print the result: {e}"),
        }
    }
}

/// A time as RFC 3339, or null.
fn time(t: Option<i64>) -> Option<String> {
    t.map(rfc3339)
}

/// `{"id","status"}`: an API key or authorization revoked, an auth key
/// disabled or enabled.
#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct StatusOut {
    pub id: String,
    pub status: &'static str,
}

impl StatusOut {
    /// An auth key disabled or enabled.
    pub fn of_auth_key(k: &MailboxAuthKey) -> Self {
        StatusOut {
            id: k.id.clone(),
            status: k.status().as_str(),
        }
    }
}

/// `{"deleted":true,"id"}`: a mailbox or an auth key deleted.
#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct DeletedOut {
    pub deleted: bool,
    pub id: String,
}

impl DeletedOut {
    pub fn new(id: &str) -> Self {
        DeletedOut {
            deleted: true,
            id: id.to_string(),
        }
    }
}

// ---- serve, demo and operations ----

/// One log line with `KEYGATE_LOG_FORMAT=json`.
#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct LogLine {
    pub level: &'static str,
    pub msg: String,
    pub target: String,
    pub ts: String,
}

/// `keygate --json demo`: how to try the flow, for scripts.
#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct DemoOut {
    pub authorize_url: String,
    pub client_id: String,
    pub code_verifier: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub redirect_uri: String,
    pub workspace_id: String,
}

#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct MigratedOut {
    pub migrated: bool,
}

#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct BackupOut {
    pub backup: String,
    pub bytes: u64,
}

#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct RestoreOut {
    pub bytes: u64,
    pub database: String,
    pub restored: String,
}

#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct SigningKeyOut {
    pub kid: String,
}

#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct AuditEventOut {
    pub action: String,
    pub actor: String,
    pub client_address: Option<String>,
    pub created_at: String,
    pub detail: Option<String>,
    pub id: String,
    pub subject: String,
    pub workspace_id: String,
}

impl From<AuditEvent> for AuditEventOut {
    fn from(ev: AuditEvent) -> Self {
        AuditEventOut {
            action: ev.action,
            actor: ev.actor,
            client_address: ev.client_address,
            created_at: rfc3339(ev.created_at),
            detail: ev.detail,
            id: ev.id,
            subject: ev.subject,
            workspace_id: ev.workspace_id,
        }
    }
}

// ---- workspaces, people, memberships ----

#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct UserOut {
    pub email: String,
    pub id: String,
}

#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct WorkspaceOut {
    pub id: String,
    pub name: String,
}

#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct WorkspacePlanOut {
    pub id: String,
    pub name: String,
    pub plan: String,
}

#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct MemberOut {
    pub role: String,
    pub user_id: String,
    pub workspace_id: String,
}

#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct MemberRemovedOut {
    pub removed: bool,
    pub revoked_authorizations: usize,
    pub user_id: String,
    pub workspace_id: String,
}

// ---- OAuth clients and authorized apps ----

/// `client create`: no `client_secret` member for a public client.
#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct ClientCreatedOut {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct ClientOut {
    pub active_authorizations: i64,
    pub client_id: String,
    pub created_at: String,
    pub kind: String,
    pub name: String,
    pub owner_user_id: Option<String>,
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: String,
}

impl ClientOut {
    pub fn new(c: &Client, active_authorizations: i64) -> Self {
        ClientOut {
            active_authorizations,
            client_id: c.id.clone(),
            created_at: rfc3339(c.created_at),
            kind: c.kind.clone(),
            name: c.name.clone(),
            owner_user_id: c.owner_user_id.clone(),
            public: c.is_public,
            redirect_uris: c.redirect_uri_list(),
            token_endpoint_auth_method: c.token_endpoint_auth_method.clone(),
        }
    }
}

#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct ClientDeletedOut {
    pub client_id: String,
    pub deleted: bool,
    pub revoked_authorizations: usize,
}

// ---- protected resources ----

/// One route of a resource: `scope` null for any valid credential (`-`).
#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct RouteOut {
    pub method: String,
    pub path: String,
    pub scope: Option<String>,
}

impl RouteOut {
    fn all(r: &Resource) -> Vec<RouteOut> {
        r.routes
            .iter()
            .map(|r| RouteOut {
                method: r.method.clone(),
                path: r.path.clone(),
                scope: r.scope.clone(),
            })
            .collect()
    }
}

/// `resource create`: the secret, shown this once.
#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct ResourceCreatedOut {
    pub client_id: String,
    pub client_secret: String,
    pub id: String,
    pub identifier: String,
    pub name: String,
    pub routes: Vec<RouteOut>,
}

impl From<&Created> for ResourceCreatedOut {
    fn from(c: &Created) -> Self {
        let r = &c.resource;
        ResourceCreatedOut {
            client_id: r.client_id.clone(),
            client_secret: c.secret.clone(),
            id: r.id.clone(),
            identifier: r.identifier.clone(),
            name: r.name.clone(),
            routes: RouteOut::all(r),
        }
    }
}

/// `resource list`: one resource.
#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct ResourceOut {
    pub client_id: String,
    pub id: String,
    pub identifier: String,
    pub name: String,
    pub routes: Vec<RouteOut>,
}

impl From<&Resource> for ResourceOut {
    fn from(r: &Resource) -> Self {
        ResourceOut {
            client_id: r.client_id.clone(),
            id: r.id.clone(),
            identifier: r.identifier.clone(),
            name: r.name.clone(),
            routes: RouteOut::all(r),
        }
    }
}

/// `apps list`: one authorization of a workspace.
#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct AppOut {
    pub app_name: String,
    pub authorized_at: String,
    pub authorized_by: String,
    pub client_id: String,
    pub id: String,
    pub last_used_at: Option<String>,
    pub scopes: Vec<String>,
    pub status: &'static str,
    pub workspace_id: String,
}

impl From<&AppRow> for AppOut {
    fn from(row: &AppRow) -> Self {
        let a = &row.authorization;
        AppOut {
            app_name: row.app_name.clone(),
            authorized_at: rfc3339(a.created_at),
            authorized_by: row.authorized_by.clone(),
            client_id: a.client_id.clone(),
            id: a.id.clone(),
            last_used_at: time(a.last_used_at),
            scopes: scopes::split(&a.scopes),
            status: a.status(),
            workspace_id: a.workspace_id.clone(),
        }
    }
}

// ---- API keys ----

/// `apikey create`: the key with its secret, shown once.
#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct ApiKeyCreatedOut {
    pub access: String,
    pub allowed_ips: Option<Vec<String>>,
    pub expires_at: Option<String>,
    pub id: String,
    pub key: String,
    pub mailbox_id: Option<String>,
    pub prefix: String,
    pub scopes: Vec<String>,
}

impl ApiKeyCreatedOut {
    pub fn new(k: &ApiKey, secret: &str) -> Self {
        ApiKeyCreatedOut {
            access: k.access.clone(),
            allowed_ips: k.allowed_ip_list(),
            expires_at: time(k.expires_at),
            id: k.id.clone(),
            key: secret.to_string(),
            mailbox_id: k.mailbox_id.clone(),
            prefix: k.prefix(),
            scopes: k.scope_names(),
        }
    }
}

/// `apikey rotate`: the new secret, and until when the old one works.
#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct ApiKeyRotatedOut {
    pub access: String,
    pub allowed_ips: Option<Vec<String>>,
    pub expires_at: Option<String>,
    pub id: String,
    pub key: String,
    pub mailbox_id: Option<String>,
    pub prefix: String,
    pub previous_secret_expires_at: Option<String>,
    pub scopes: Vec<String>,
}

impl ApiKeyRotatedOut {
    pub fn new(k: &ApiKey, secret: &str, grace_end: Option<i64>) -> Self {
        ApiKeyRotatedOut {
            access: k.access.clone(),
            allowed_ips: k.allowed_ip_list(),
            expires_at: time(k.expires_at),
            id: k.id.clone(),
            key: secret.to_string(),
            mailbox_id: k.mailbox_id.clone(),
            prefix: k.prefix(),
            previous_secret_expires_at: time(grace_end),
            scopes: k.scope_names(),
        }
    }
}

/// `apikey list`: one key, without its secret.
#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct ApiKeyOut {
    pub access: String,
    pub allowed_ips: Option<Vec<String>>,
    pub created_at: String,
    pub created_by: String,
    pub expires_at: Option<String>,
    pub expiring_soon: bool,
    pub id: String,
    pub last_used_at: Option<String>,
    pub last_used_ip: Option<String>,
    pub mailbox_id: Option<String>,
    pub name: String,
    pub prefix: String,
    pub previous_secret_expires_at: Option<String>,
    pub scopes: Vec<String>,
    pub status: &'static str,
    pub usage_count: i64,
    pub workspace_id: String,
}

impl ApiKeyOut {
    pub fn new(row: &KeyRow, now: i64) -> Self {
        let k = &row.key;
        ApiKeyOut {
            access: k.access.clone(),
            allowed_ips: k.allowed_ip_list(),
            created_at: rfc3339(k.created_at),
            created_by: row.creator.clone(),
            expires_at: time(k.expires_at),
            expiring_soon: k.expiring_soon(now),
            id: k.id.clone(),
            last_used_at: time(k.last_used_at),
            last_used_ip: k.last_used_ip.clone(),
            mailbox_id: k.mailbox_id.clone(),
            name: k.name.clone(),
            prefix: k.prefix(),
            previous_secret_expires_at: time(k.grace_ends_at(now)),
            scopes: k.scope_names(),
            status: k.status_at(now).as_str(),
            usage_count: k.usage_count,
            workspace_id: k.workspace_id.clone(),
        }
    }
}

/// `apikey usage`: one day's request count.
#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct UsageDayOut {
    pub count: i64,
    pub date: String,
    pub id: String,
}

// ---- mailboxes and their auth keys ----

#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct MailboxCreatedOut {
    pub address: String,
    pub created_at: String,
    pub id: String,
    pub workspace_id: String,
}

impl From<Mailbox> for MailboxCreatedOut {
    fn from(m: Mailbox) -> Self {
        MailboxCreatedOut {
            address: m.address,
            created_at: rfc3339(m.created_at),
            id: m.id,
            workspace_id: m.workspace_id,
        }
    }
}

#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct MailboxOut {
    pub active_keys: i64,
    pub address: String,
    pub created_at: String,
    pub id: String,
    pub workspace_id: String,
}

impl From<&MailboxRow> for MailboxOut {
    fn from(row: &MailboxRow) -> Self {
        let m = &row.mailbox;
        MailboxOut {
            active_keys: row.active_keys,
            address: m.address.clone(),
            created_at: rfc3339(m.created_at),
            id: m.id.clone(),
            workspace_id: m.workspace_id.clone(),
        }
    }
}

/// `authkey create`: the key with its secret, shown once.
#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct AuthKeyCreatedOut {
    pub address: String,
    pub id: String,
    pub key: String,
    pub mailbox_id: String,
    pub name: String,
    pub prefix: String,
}

impl From<&IssuedAuthKey> for AuthKeyCreatedOut {
    fn from(issued: &IssuedAuthKey) -> Self {
        let k = &issued.key;
        AuthKeyCreatedOut {
            address: issued.mailbox.address.clone(),
            id: k.id.clone(),
            key: issued.secret.clone(),
            mailbox_id: k.mailbox_id.clone(),
            name: k.name.clone(),
            prefix: k.prefix(),
        }
    }
}

#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct AuthKeyOut {
    pub allowed_ips: Option<Vec<String>>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub id: String,
    pub last_used_at: Option<String>,
    pub mailbox_id: String,
    pub name: String,
    pub prefix: String,
    pub status: &'static str,
    pub usage_count: i64,
}

impl From<&AuthKeyRow> for AuthKeyOut {
    fn from(row: &AuthKeyRow) -> Self {
        let k = &row.key;
        let allowed = k.allowed_ips.as_deref().map(|s| {
            crate::credentials::address::IpAllowList::from_storage(s)
                .map(|l| l.to_strings())
                .unwrap_or_else(|_| vec![s.to_string()])
        });
        AuthKeyOut {
            allowed_ips: allowed,
            created_at: rfc3339(k.created_at),
            expires_at: time(k.expires_at),
            id: k.id.clone(),
            last_used_at: time(k.last_used_at),
            mailbox_id: k.mailbox_id.clone(),
            name: k.name.clone(),
            prefix: k.prefix(),
            status: k.status().as_str(),
            usage_count: k.usage_count,
        }
    }
}

/// `authkey rotate`: the new secret, shown once.
#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct AuthKeyRotatedOut {
    pub id: String,
    pub key: String,
    pub prefix: String,
}

// ---- sending domains ----

/// `domain add`.
#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct DomainAddedOut {
    pub domain: String,
    pub id: String,
    pub status: String,
    pub txt_name: String,
    pub txt_value: String,
    pub workspace_id: String,
}

impl From<&SendingDomain> for DomainAddedOut {
    fn from(d: &SendingDomain) -> Self {
        DomainAddedOut {
            domain: d.domain.clone(),
            id: d.id.clone(),
            status: d.status.clone(),
            txt_name: d.txt_name(),
            txt_value: d.txt_value(),
            workspace_id: d.workspace_id.clone(),
        }
    }
}

/// `domain verify`.
#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct DomainVerifiedOut {
    pub domain: String,
    pub id: String,
    pub status: String,
}

impl From<&SendingDomain> for DomainVerifiedOut {
    fn from(d: &SendingDomain) -> Self {
        DomainVerifiedOut {
            domain: d.domain.clone(),
            id: d.id.clone(),
            status: d.status.clone(),
        }
    }
}

/// `domain list`: one line per domain.
#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct DomainOut {
    pub domain: String,
    pub id: String,
    pub status: String,
    pub verified_at: Option<String>,
    pub workspace_id: String,
}

impl From<&SendingDomain> for DomainOut {
    fn from(d: &SendingDomain) -> Self {
        DomainOut {
            domain: d.domain.clone(),
            id: d.id.clone(),
            status: d.status.clone(),
            verified_at: time(d.verified_at),
            workspace_id: d.workspace_id.clone(),
        }
    }
}

/// `domain remove`: `{"id","removed":true}`.
#[derive(Serialize)]
#[cfg_attr(test, derive(Default))]
pub(super) struct DomainRemovedOut {
    pub id: String,
    pub removed: bool,
}

impl DomainRemovedOut {
    pub fn new(id: &str) -> Self {
        DomainRemovedOut {
            id: id.to_string(),
            removed: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Printed as the `json!` map it replaced would have been: keys sorted.
    fn assert_sorted<T: Serialize>(value: &T) {
        let printed = serde_json::to_string(value).expect("serialises");
        let map: Value = serde_json::from_str(&printed).expect("JSON");
        assert!(map.is_object(), "{printed}");
        assert_eq!(printed, map.to_string(), "fields out of sorted order");
    }

    #[test]
    fn every_output_prints_its_keys_sorted() {
        assert_sorted(&StatusOut::default());
        assert_sorted(&DeletedOut::default());
        assert_sorted(&LogLine::default());
        assert_sorted(&DemoOut::default());
        assert_sorted(&MigratedOut::default());
        assert_sorted(&BackupOut::default());
        assert_sorted(&RestoreOut::default());
        assert_sorted(&SigningKeyOut::default());
        assert_sorted(&AuditEventOut::default());
        assert_sorted(&UserOut::default());
        assert_sorted(&WorkspaceOut::default());
        assert_sorted(&WorkspacePlanOut::default());
        assert_sorted(&MemberOut::default());
        assert_sorted(&MemberRemovedOut::default());
        assert_sorted(&ClientCreatedOut::default());
        assert_sorted(&ClientOut::default());
        assert_sorted(&ClientDeletedOut::default());
        assert_sorted(&AppOut::default());
        assert_sorted(&RouteOut::default());
        assert_sorted(&ResourceCreatedOut {
            routes: vec![RouteOut::default()],
            ..Default::default()
        });
        assert_sorted(&ResourceOut::default());
        assert_sorted(&ApiKeyCreatedOut::default());
        assert_sorted(&ApiKeyRotatedOut::default());
        assert_sorted(&ApiKeyOut::default());
        assert_sorted(&UsageDayOut::default());
        assert_sorted(&MailboxCreatedOut::default());
        assert_sorted(&MailboxOut::default());
        assert_sorted(&AuthKeyCreatedOut::default());
        assert_sorted(&AuthKeyOut::default());
        assert_sorted(&AuthKeyRotatedOut::default());
        assert_sorted(&DomainAddedOut::default());
        assert_sorted(&DomainVerifiedOut::default());
        assert_sorted(&DomainOut::default());
        assert_sorted(&DomainRemovedOut::default());
        // The one member that is left out when empty, present.
        assert_sorted(&ClientCreatedOut {
            client_secret: Some("s".into()),
            ..Default::default()
        });
    }
}
