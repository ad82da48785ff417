//! API keys: workspace-scoped secrets for a workspace's own integrations.
//!
//! Format: `kgk_` + a 10-character public id + `_` + 32 random characters
//! (about 190 bits) + a 6-character CRC-32 checksum, all base62, so a secret
//! scanner can tell a real key from noise without asking keygate (as GitHub's
//! tokens do). Only the SHA-256 of the whole key is stored. The displayable
//! prefix is `kgk_` + the public id: it names the key and reveals nothing.

pub mod leaks;

use crate::accounts::{self, plan_includes_api};
pub use crate::credentials::api_key::{Access, KeyStatus};
use crate::credentials::api_key::{API_KEY, KEY_PREFIX};
use crate::credentials::cache::CredentialCache;
use crate::credentials::revocation::{self, Event};
use crate::crypto;
use crate::db::schema::{api_keys, mailboxes, users, workspaces};
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;
use serde::Serialize;

/// Who created a key from the command line.
pub const CLI_ACTOR: &str = "cli";

#[derive(Queryable, Selectable, Insertable, Serialize, Clone, Debug)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub public_id: String,
    #[serde(skip)]
    pub secret_hash: String,
    pub access: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub rotated_at: Option<i64>,
    pub usage_count: i64,
    pub last_used_at: Option<i64>,
    /// The one mailbox a restricted key may see on `/v1`; `None` for a workspace key.
    pub mailbox_id: Option<String>,
}

impl ApiKey {
    pub fn prefix(&self) -> String {
        API_KEY.display_prefix(&self.public_id)
    }
    pub fn status_at(&self, now: i64) -> KeyStatus {
        KeyStatus::of(self.revoked_at, self.expires_at, now)
    }
    pub fn access_level(&self) -> Access {
        Access::parse(&self.access).unwrap_or(Access::ReadOnly)
    }
}

/// A key with its full secret, which exists only in this value.
pub struct IssuedKey {
    pub key: ApiKey,
    pub secret: String,
}

/// Changes a workspace's plan. Its cached API keys are looked at again on every
/// node, since the plan decides whether they work at all.
pub fn set_plan(
    conn: &mut DbConn,
    workspace_id: &str,
    plan: accounts::Plan,
) -> Result<accounts::Workspace> {
    db::write_tx(conn, |conn| {
        let ws = accounts::set_plan_in_tx(conn, workspace_id, plan)?;
        revocation::record(conn, &[Event::workspace(workspace_id)])?;
        Ok(ws)
    })
}

/// `--expires YYYY-MM-DD` is the last day the key works: it ends at 24:00 UTC
/// that day. A day already past is refused.
pub fn parse_expiry(raw: Option<&str>) -> Result<Option<i64>> {
    let Some(raw) = raw
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "never")
    else {
        return Ok(None);
    };
    let well_formed = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let day = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .filter(|_| well_formed)
        .ok_or_else(|| {
            Error::invalid(format!("invalid expiry date {raw:?}: expected YYYY-MM-DD"))
        })?;
    if day.format("%Y").to_string().as_str() > "9998" {
        return Err(Error::invalid(format!(
            "the expiry date {raw} is too far in the future"
        )));
    }
    let today = chrono::Utc::now().date_naive();
    if day < today {
        return Err(Error::invalid(format!(
            "the expiry date {raw} is in the past"
        )));
    }
    let end = day
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .ok_or_else(|| Error::invalid(format!("invalid expiry date {raw:?}")))?;
    Ok(Some(end.and_utc().timestamp()))
}

/// Names describe the integration; a value that looks like a secret is refused so
/// that nobody pastes a key where the list would show it to everyone.
pub fn validate_key_name(raw: &str) -> Result<String> {
    let name = accounts::validate_name("the key name", raw)?;
    let lower = name.to_lowercase();
    let looks_like_key = lower.contains(KEY_PREFIX) || lower.contains("kgs_");
    let high_entropy = name.split_whitespace().any(|word| {
        word.len() >= 24
            && word.chars().any(|c| c.is_ascii_digit())
            && word.chars().any(|c| c.is_ascii_alphabetic())
            && (!word.contains('-') || word.len() >= 32)
    });
    if looks_like_key || high_entropy {
        return Err(Error::invalid(
            "the key name looks like a secret; name the system that will use the key instead",
        ));
    }
    Ok(name)
}

fn require_api_access(conn: &mut DbConn, workspace_id: &str) -> Result<accounts::Workspace> {
    let ws = accounts::find_workspace(conn, workspace_id)?;
    if !plan_includes_api(&ws.plan) {
        return Err(Error::forbidden(format!(
            "the workspace's plan ({}) does not include API access: upgrade required",
            ws.plan
        )));
    }
    Ok(ws)
}

/// Names are unique among keys that are not revoked; say which kind holds it.
fn name_taken(conn: &mut DbConn, workspace_id: &str, name: &str) -> Error {
    let holder: Option<ApiKey> = api_keys::table
        .filter(api_keys::workspace_id.eq(workspace_id))
        .filter(api_keys::name.eq(name))
        .filter(api_keys::revoked_at.is_null())
        .select(ApiKey::as_select())
        .first(conn)
        .ok();
    match holder {
        Some(k) if k.status_at(db::now()) == KeyStatus::Expired => Error::conflict(
            "an expired key has that name; revoke it to use the name again, or choose another name",
        ),
        _ => Error::conflict("an active key with that name already exists in this workspace"),
    }
}

pub fn create(
    conn: &mut DbConn,
    workspace_id: &str,
    name: &str,
    access: Access,
    expires_at: Option<i64>,
    created_by: &str,
    client_address: Option<&str>,
) -> Result<IssuedKey> {
    create_restricted(
        conn,
        workspace_id,
        name,
        access,
        expires_at,
        None,
        created_by,
        client_address,
    )
}

/// A key restricted to one mailbox of the workspace when `mailbox_id` is set
/// (see `credentials::api_key::MAILBOX_RESTRICTED_SCOPES`), else a workspace key.
#[allow(clippy::too_many_arguments)]
pub fn create_restricted(
    conn: &mut DbConn,
    workspace_id: &str,
    name: &str,
    access: Access,
    expires_at: Option<i64>,
    mailbox_id: Option<&str>,
    created_by: &str,
    client_address: Option<&str>,
) -> Result<IssuedKey> {
    let name = validate_key_name(name)?;
    db::write_tx(conn, |conn| {
        require_api_access(conn, workspace_id)?;
        if let Some(mailbox_id) = mailbox_id {
            require_mailbox_of(conn, workspace_id, mailbox_id)?;
        }
        let public_id = API_KEY.new_public_id();
        let secret = API_KEY.new_secret(&public_id);
        let key = ApiKey {
            id: db::new_id(),
            workspace_id: workspace_id.to_string(),
            name: name.clone(),
            public_id,
            secret_hash: crypto::sha256_hex(&secret),
            access: access.as_str().to_string(),
            created_by: created_by.to_string(),
            created_at: db::now(),
            expires_at,
            revoked_at: None,
            rotated_at: None,
            usage_count: 0,
            last_used_at: None,
            mailbox_id: mailbox_id.map(str::to_string),
        };
        match diesel::insert_into(api_keys::table)
            .values(&key)
            .execute(conn)
        {
            Ok(_) => {}
            Err(e) if db::is_unique_violation(&e) => {
                return Err(name_taken(conn, workspace_id, &name))
            }
            Err(e) => return Err(e.into()),
        }
        crate::accounts::audit::record(
            conn,
            workspace_id,
            created_by,
            "api_key.generated",
            &key.id,
            client_address,
        )?;
        Ok(IssuedKey { key, secret })
    })
}

/// The mailbox a key is restricted to must exist in the key's workspace. (A
/// read of the table, not of `mailboxes`: that area imports this one.)
fn require_mailbox_of(conn: &mut DbConn, workspace_id: &str, mailbox_id: &str) -> Result<()> {
    let owner: Option<String> = mailboxes::table
        .find(mailbox_id)
        .select(mailboxes::workspace_id)
        .first(conn)
        .optional()?;
    match owner {
        Some(ws) if ws == workspace_id => Ok(()),
        _ => Err(Error::not_found(format!(
            "no mailbox with id {mailbox_id:?} in this workspace"
        ))),
    }
}

/// Inside the transaction that deletes a mailbox: revokes every key restricted
/// to it, with a security-log row each. Returns the events to apply once the
/// transaction has committed.
pub fn revoke_restricted_to_in_tx(
    conn: &mut DbConn,
    mailbox_id: &str,
    actor: &str,
    client_address: Option<&str>,
) -> Result<Vec<Event>> {
    let keys: Vec<(String, String)> = api_keys::table
        .filter(api_keys::mailbox_id.eq(mailbox_id))
        .filter(api_keys::revoked_at.is_null())
        .select((api_keys::id, api_keys::workspace_id))
        .load(conn)?;
    let mut events = Vec::with_capacity(keys.len());
    for (id, workspace_id) in keys {
        diesel::update(api_keys::table.find(&id))
            .set(api_keys::revoked_at.eq(db::now()))
            .execute(conn)?;
        crate::accounts::audit::record(
            conn,
            &workspace_id,
            actor,
            "api_key.revoked",
            &id,
            client_address,
        )?;
        events.push(Event::api_key(&id));
    }
    revocation::record(conn, &events)?;
    Ok(events)
}

pub fn find(conn: &mut DbConn, id: &str) -> Result<ApiKey> {
    api_keys::table
        .find(id)
        .select(ApiKey::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| Error::not_found(format!("no API key with id {id:?}")))
}

/// A key in the list, with who created it in words.
#[derive(Clone, Debug)]
pub struct KeyRow {
    pub key: ApiKey,
    pub creator: String,
}

#[derive(Default, Clone, Debug)]
pub struct ListFilter {
    /// Matches name, creator, workspace name or purpose (the name says the purpose).
    pub query: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub status: Option<String>,
}

/// Newest first.
pub fn list(conn: &mut DbConn, workspace_id: &str, filter: &ListFilter) -> Result<Vec<KeyRow>> {
    let rows: Vec<(ApiKey, Option<String>, String)> = api_keys::table
        .inner_join(workspaces::table)
        .left_join(users::table.on(users::id.eq(api_keys::created_by)))
        .filter(api_keys::workspace_id.eq(workspace_id))
        .order(api_keys::id.desc())
        .select((
            ApiKey::as_select(),
            users::email.nullable(),
            workspaces::name,
        ))
        .load(conn)?;
    let now = db::now();
    let query = filter
        .query
        .as_deref()
        .map(|q| q.trim().to_lowercase())
        .filter(|q| !q.is_empty());
    Ok(rows
        .into_iter()
        .map(|(key, email, ws_name)| {
            let creator = email.unwrap_or_else(|| {
                if key.created_by == CLI_ACTOR {
                    "keygate CLI".to_string()
                } else {
                    key.created_by.clone()
                }
            });
            (KeyRow { key, creator }, ws_name)
        })
        .filter(|(row, ws_name)| match &query {
            None => true,
            Some(q) => {
                row.key.name.to_lowercase().contains(q)
                    || row.creator.to_lowercase().contains(q)
                    || ws_name.to_lowercase().contains(q)
                    || row.key.prefix().to_lowercase().contains(q)
            }
        })
        .filter(|(row, _)| {
            filter
                .status
                .as_deref()
                .is_none_or(|s| s.is_empty() || row.key.status_at(now).as_str() == s)
        })
        .map(|(row, _)| row)
        .collect())
}

/// Gives the key a new secret; the old one stops at once. Revoked keys cannot be
/// rotated (create a new key instead).
pub fn rotate(
    conn: &mut DbConn,
    cache: &CredentialCache,
    id: &str,
    actor: &str,
    client_address: Option<&str>,
) -> Result<IssuedKey> {
    let (issued, events) = db::write_tx(conn, |conn| {
        let key = find(conn, id)?;
        if key.revoked_at.is_some() {
            return Err(Error::conflict(
                "a revoked key cannot be rotated; generate a new key instead",
            ));
        }
        let secret = API_KEY.new_secret(&key.public_id);
        let now = db::now();
        let n = diesel::update(
            api_keys::table
                .find(id)
                .filter(api_keys::revoked_at.is_null()),
        )
        .set((
            api_keys::secret_hash.eq(crypto::sha256_hex(&secret)),
            api_keys::rotated_at.eq(now),
        ))
        .execute(conn)?;
        if n == 0 {
            return Err(Error::conflict(
                "a revoked key cannot be rotated; generate a new key instead",
            ));
        }
        let events = vec![Event::api_key(id)];
        revocation::record(conn, &events)?;
        crate::accounts::audit::record(
            conn,
            &key.workspace_id,
            actor,
            "api_key.rotated",
            id,
            client_address,
        )?;
        Ok((
            IssuedKey {
                key: find(conn, id)?,
                secret,
            },
            events,
        ))
    })?;
    cache.apply(&events);
    Ok(issued)
}

/// Revokes a key: immediate and final.
pub fn revoke(
    conn: &mut DbConn,
    cache: &CredentialCache,
    id: &str,
    actor: &str,
    client_address: Option<&str>,
) -> Result<ApiKey> {
    let (key, events) = db::write_tx(conn, |conn| {
        let key = find(conn, id)?;
        if key.revoked_at.is_some() {
            return Err(Error::conflict("the key is already revoked"));
        }
        diesel::update(api_keys::table.find(id))
            .set(api_keys::revoked_at.eq(db::now()))
            .execute(conn)?;
        let events = vec![Event::api_key(id)];
        revocation::record(conn, &events)?;
        crate::accounts::audit::record(
            conn,
            &key.workspace_id,
            actor,
            "api_key.revoked",
            id,
            client_address,
        )?;
        Ok((find(conn, id)?, events))
    })?;
    cache.apply(&events);
    crate::metrics::METRICS
        .revocations
        .with_label_values(&["api_key"])
        .inc();
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_look_like_secrets_are_refused() {
        assert!(validate_key_name("CRM sync").is_ok());
        assert!(validate_key_name("prod-main-app").is_ok());
        assert!(validate_key_name("kgk_AbCdEfGhIj_x").is_err());
        assert!(validate_key_name("a8F3kL0pQ9zX7mN2bV6cR1tY").is_err());
        assert!(validate_key_name("  ").is_err());
    }
}
