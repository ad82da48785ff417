//! An API key's life: create (with its access level, expiry and address
//! allowlist), list, rotate (at once, or with a grace period for the old
//! secret) and revoke. Each change writes its security-log row and its
//! revocation event in the same transaction, and applies the event to this
//! node's cache after the commit.

use super::access::{Access, KeyStatus};
use super::{validate_key_name, ApiKey, IssuedKey};
use crate::accounts::audit::Actor;
use crate::accounts::{self, plan_includes_api};
use crate::credentials::address::IpAllowList;
use crate::credentials::cache::CredentialCache;
use crate::credentials::change::{Change, Made};
use crate::credentials::key_format::API_KEY;
use crate::credentials::revocation::Event;
use crate::db::schema::api_keys;
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;

fn require_api_access(conn: &mut DbConn, workspace_id: &str) -> Result<accounts::Workspace> {
    let ws = accounts::find_workspace(conn, workspace_id)?;
    if !plan_includes_api(&ws.plan) {
        return Err(Error::forbidden(format!(
            "the workspace's plan ({}) does not include API keys: upgrade required \
             (apps that people authorize work on every plan)",
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

/// What a new key is: everything but its secret.
#[derive(Clone, Debug)]
pub struct NewKey<'a> {
    pub workspace_id: &'a str,
    pub name: &'a str,
    pub access: Access,
    pub expires_at: Option<i64>,
    /// `None`: usable from anywhere.
    pub allowed_ips: Option<IpAllowList>,
    /// The one mailbox a restricted key may see on `/v1` (see
    /// `access::MAILBOX_RESTRICTED_SCOPES`); `None`: a workspace key.
    pub mailbox_id: Option<&'a str>,
}

pub fn create(
    conn: &mut DbConn,
    workspace_id: &str,
    name: &str,
    access: Access,
    expires_at: Option<i64>,
    by: Actor,
) -> Result<IssuedKey> {
    create_restricted(conn, workspace_id, name, access, expires_at, None, by)
}

/// A key restricted to one mailbox of the workspace when `mailbox_id` is set,
/// else a workspace key.
pub fn create_restricted(
    conn: &mut DbConn,
    workspace_id: &str,
    name: &str,
    access: Access,
    expires_at: Option<i64>,
    mailbox_id: Option<&str>,
    by: Actor,
) -> Result<IssuedKey> {
    let spec = NewKey {
        workspace_id,
        name,
        access,
        expires_at,
        allowed_ips: None,
        mailbox_id,
    };
    create_key(conn, &spec, by)
}

/// The restrictions of a key in words, for its security-log row.
fn restrictions(access: &Access, allowed: Option<&IpAllowList>) -> Option<String> {
    let mut parts = Vec::new();
    if let Access::Custom(scopes) = access {
        parts.push(format!("scopes {}", scopes.join(" ")));
    }
    if let Some(list) = allowed {
        parts.push(format!("only from {list}"));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

pub fn create_key(conn: &mut DbConn, spec: &NewKey<'_>, by: Actor) -> Result<IssuedKey> {
    let name = validate_key_name(spec.name)?;
    let workspace_id = spec.workspace_id;
    db::write_tx(conn, |conn| {
        require_api_access(conn, workspace_id)?;
        if let Some(mailbox_id) = spec.mailbox_id {
            require_mailbox_of(conn, workspace_id, mailbox_id)?;
        }
        let minted = API_KEY.mint();
        let key = ApiKey {
            id: db::new_id(),
            workspace_id: workspace_id.to_string(),
            name: name.clone(),
            public_id: minted.public_id,
            secret_hash: minted.hash,
            access: spec.access.as_str().to_string(),
            created_by: by.id.to_string(),
            created_at: db::now(),
            expires_at: spec.expires_at,
            revoked_at: None,
            rotated_at: None,
            usage_count: 0,
            last_used_at: None,
            allowed_ips: spec.allowed_ips.as_ref().map(IpAllowList::to_storage),
            scopes: spec.access.stored_scopes(),
            last_used_ip: None,
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            mailbox_id: spec.mailbox_id.map(str::to_string),
            description: String::new(),
        };
        db::insert_new(conn, api_keys::table, &key, |conn| {
            name_taken(conn, workspace_id, &name)
        })?;
        let restrictions = restrictions(&spec.access, spec.allowed_ips.as_ref());
        Change::new(&key.id, "api_key.generated", by).record(
            conn,
            workspace_id,
            restrictions.as_deref(),
        )?;
        Ok(IssuedKey {
            key,
            secret: minted.secret,
        })
    })
}

/// The mailbox a key is restricted to must exist in the key's workspace.
fn require_mailbox_of(conn: &mut DbConn, workspace_id: &str, mailbox_id: &str) -> Result<()> {
    match crate::mailboxes::lifecycle::find_in(conn, workspace_id, mailbox_id) {
        Ok(_) => Ok(()),
        Err(Error::NotFound(_)) => Err(Error::not_found(format!(
            "no mailbox with id {mailbox_id:?} in this workspace"
        ))),
        Err(e) => Err(e),
    }
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

/// The list's status filter: one of [`KeyStatus`], or `expiring` (active and
/// ending within seven days).
pub const EXPIRING: &str = "expiring";

/// The status filter values, for error messages.
pub const STATUS_FILTERS: &[&str] = &["active", "expired", "revoked", EXPIRING, NEVER_USED, UNUSED];

/// The list's filter of active keys never used.
pub const NEVER_USED: &str = "never_used";

/// The list's filter of active keys used once but not in the last 30 days.
pub const UNUSED: &str = "unused";

#[derive(Default, Clone, Debug)]
pub struct ListFilter {
    /// Matches name, creator, workspace name or purpose (the name says the purpose).
    pub query: Option<String>,
    /// One of [`STATUS_FILTERS`].
    pub status: Option<String>,
}

/// Newest first.
pub fn list(conn: &mut DbConn, workspace_id: &str, filter: &ListFilter) -> Result<Vec<KeyRow>> {
    let keys: Vec<ApiKey> = api_keys::table
        .filter(api_keys::workspace_id.eq(workspace_id))
        .order(api_keys::id.desc())
        .select(ApiKey::as_select())
        .load(conn)?;
    let rows = accounts::with_creator_emails(conn, keys, |k| &k.created_by)?;
    let ws_name = match rows.is_empty() {
        true => String::new(),
        false => accounts::find_workspace(conn, workspace_id)?.name,
    };
    let now = db::now();
    let query = filter
        .query
        .as_deref()
        .map(|q| q.trim().to_lowercase())
        .filter(|q| !q.is_empty());
    Ok(rows
        .into_iter()
        .map(|(key, email)| {
            let creator = accounts::audit::actor_label(&key.created_by, email);
            (KeyRow { key, creator }, &ws_name)
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
        .filter(|(row, _)| match filter.status.as_deref() {
            None | Some("") => true,
            Some(EXPIRING) => row.key.expiring_soon(now),
            Some(NEVER_USED) => {
                row.key.status_at(now) == KeyStatus::Active && row.key.last_used_at.is_none()
            }
            Some(UNUSED) => row.key.unused_for_30_days(now),
            Some(s) => row.key.status_at(now).as_str() == s,
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
    by: Actor,
) -> Result<IssuedKey> {
    rotate_with_grace(conn, cache, id, None, by)
}

/// Gives the key a new secret. With `grace_secs` (at most 30 days, see
/// `credentials::grace`) the old secret keeps working until then, so a
/// deployment can pick up the new one first; without, it stops at once. A
/// secret still in an earlier grace period stops at once either way: only the
/// secret this rotation replaces is kept, so there are never three.
///
/// Every node drops what it cached for the key: the new secret is read
/// afresh, and the old one comes back with the grace period's end as its
/// cache expiry (or not at all).
pub fn rotate_with_grace(
    conn: &mut DbConn,
    cache: &CredentialCache,
    id: &str,
    grace_secs: Option<u32>,
    by: Actor,
) -> Result<IssuedKey> {
    let revoked = || Error::conflict("a revoked key cannot be rotated; generate a new key instead");
    let rotation = Change::new(id, "api_key.rotated", by);
    rotation.ending(Event::api_key).commit(conn, cache, |conn| {
        let key = find(conn, id)?;
        if key.revoked_at.is_some() {
            return Err(revoked());
        }
        let minted = API_KEY.mint_for(&key.public_id);
        let now = db::now();
        let grace_end = grace_secs.map(|g| now + i64::from(g));
        let previous_hash = grace_end.map(|_| key.secret_hash.clone());
        let n = diesel::update(
            api_keys::table
                .find(id)
                .filter(api_keys::revoked_at.is_null()),
        )
        .set((
            api_keys::secret_hash.eq(minted.hash),
            api_keys::rotated_at.eq(now),
            api_keys::previous_secret_hash.eq(previous_hash),
            api_keys::previous_secret_expires_at.eq(grace_end),
        ))
        .execute(conn)?;
        if n == 0 {
            return Err(revoked());
        }
        let issued = IssuedKey {
            key: find(conn, id)?,
            secret: minted.secret,
        };
        Ok(Made {
            detail: grace_end.map(|e| format!("the old secret works until {}", db::rfc3339(e))),
            ..Made::new(issued, key.workspace_id)
        })
    })
}

/// Revokes a key: immediate and final.
pub fn revoke(conn: &mut DbConn, cache: &CredentialCache, id: &str, by: Actor) -> Result<ApiKey> {
    let revocation = Change::new(id, "api_key.revoked", by);
    let key = revocation
        .ending(Event::api_key)
        .commit(conn, cache, |conn| {
            let key = find(conn, id)?;
            if key.revoked_at.is_some() {
                return Err(Error::conflict("the key is already revoked"));
            }
            diesel::update(api_keys::table.find(id))
                .set(api_keys::revoked_at.eq(db::now()))
                .execute(conn)?;
            Ok(Made::new(find(conn, id)?, key.workspace_id))
        })?;
    crate::metrics::METRICS
        .revocations
        .with_label_values(&["api_key"])
        .inc();
    Ok(key)
}

/// Inside the transaction that deletes a mailbox: revokes every key restricted
/// to it, with a security-log row each. Returns the events to apply once the
/// transaction has committed.
pub fn revoke_restricted_to_in_tx(
    conn: &mut DbConn,
    mailbox_id: &str,
    by: crate::accounts::audit::Actor,
) -> Result<Vec<crate::credentials::revocation::Event>> {
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
        let revoked = Change::new(&id, "api_key.revoked", by).ending(Event::api_key);
        events.extend(revoked.record(conn, &workspace_id, None)?);
    }
    Ok(events)
}

/// The most characters of a key's description.
pub const MAX_DESCRIPTION_LEN: usize = 500;

/// What an edit sets on a key without touching its secret.
#[derive(Clone, Debug)]
pub struct KeyEdit<'a> {
    pub name: &'a str,
    pub description: &'a str,
    /// `None` keeps the access level (a mailbox-restricted key's is fixed).
    pub access: Option<Access>,
    /// `None`: usable from anywhere.
    pub allowed_ips: Option<IpAllowList>,
}

/// A description: trimmed, at most [`MAX_DESCRIPTION_LEN`] characters, lines
/// allowed, no other control or invisible formatting characters.
pub fn validate_description(raw: &str) -> Result<String> {
    let text = raw.trim();
    if text.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(Error::invalid(format!(
            "the description must be at most {MAX_DESCRIPTION_LEN} characters"
        )));
    }
    let bad =
        |c: char| (c.is_control() && c != '\n' && c != '\r') || accounts::is_invisible_format(c);
    if let Some(c) = text.chars().find(|&c| bad(c)) {
        return Err(Error::invalid(format!(
            "the description must not contain control or invisible formatting characters (found U+{:04X})",
            c as u32
        )));
    }
    Ok(text.replace("\r\n", "\n"))
}

/// Changes a key's name, description, scopes and allowed addresses, keeping
/// its secret. A revoked key is not edited. Every node drops the key from its
/// cache (the change's event), so new scopes and addresses apply within the
/// revocation bound.
pub fn edit(
    conn: &mut DbConn,
    cache: &CredentialCache,
    id: &str,
    edit: &KeyEdit<'_>,
    by: Actor,
) -> Result<ApiKey> {
    let name = validate_key_name(edit.name)?;
    let description = validate_description(edit.description)?;
    let events = [Event::api_key(id)];
    Change::new(id, "api_key.updated", by)
        .with_events(&events)
        .commit(conn, cache, |conn| {
            let key = find(conn, id)?;
            if key.revoked_at.is_some() {
                return Err(Error::conflict("a revoked key cannot be edited"));
            }
            let access = edit_access(&key, edit.access.as_ref())?;
            if name != key.name {
                let taken: i64 = api_keys::table
                    .filter(api_keys::workspace_id.eq(&key.workspace_id))
                    .filter(api_keys::name.eq(&name))
                    .filter(api_keys::revoked_at.is_null())
                    .filter(api_keys::id.ne(id))
                    .count()
                    .get_result(conn)?;
                if taken > 0 {
                    return Err(name_taken(conn, &key.workspace_id, &name));
                }
            }
            diesel::update(api_keys::table.find(id))
                .set((
                    api_keys::name.eq(&name),
                    api_keys::description.eq(&description),
                    api_keys::access.eq(access.as_str()),
                    api_keys::scopes.eq(access.stored_scopes()),
                    api_keys::allowed_ips
                        .eq(edit.allowed_ips.as_ref().map(IpAllowList::to_storage)),
                ))
                .execute(conn)?;
            let detail = edit_detail(&key, &name, &access, edit.allowed_ips.as_ref());
            Ok(Made {
                detail,
                ..Made::new(find(conn, id)?, key.workspace_id)
            })
        })
}

/// The access an edit leaves: a mailbox-restricted key keeps its own.
fn edit_access(key: &ApiKey, wanted: Option<&Access>) -> Result<Access> {
    let current = key.access_level();
    match wanted {
        None => Ok(current),
        Some(a) if key.mailbox_id.is_some() && a.as_str() != current.as_str() => Err(Error::invalid(
            "a key restricted to one mailbox keeps its access level; generate a new key for other access",
        )),
        Some(a) => Ok(a.clone()),
    }
}

/// What an edit changed, for its security-log row.
fn edit_detail(
    before: &ApiKey,
    name: &str,
    access: &Access,
    allowed: Option<&IpAllowList>,
) -> Option<String> {
    let mut parts = Vec::new();
    if before.name != name {
        parts.push(format!("renamed from {:?}", before.name));
    }
    let old = before.access_level();
    if old.as_str() != access.as_str() || old.scopes() != access.scopes() {
        parts.push(format!("access {}", access.scopes().join(" ")));
    }
    let allowed_now = allowed.map(IpAllowList::to_storage);
    if allowed_now != before.allowed_ips {
        match allowed {
            Some(list) => parts.push(format!("only from {list}")),
            None => parts.push("from any address".to_string()),
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The most keys announced as expiring in one pass (the next pass takes the rest).
const EXPIRING_BATCH: i64 = 100;

/// Writes `api_key.expiring` once per active key whose last day begins
/// within 7 days ([`super::EXPIRING_SOON_SECS`] before it), marking the key
/// in the same transaction so no pass on any node writes it twice.
pub fn announce_expiring(conn: &mut DbConn, now: i64) -> Result<usize> {
    let horizon = now + super::EXPIRING_SOON_SECS + 86_400;
    let due: Vec<ApiKey> = api_keys::table
        .filter(api_keys::revoked_at.is_null())
        .filter(api_keys::expiring_sent_at.is_null())
        .filter(api_keys::expires_at.gt(now))
        .filter(api_keys::expires_at.le(horizon))
        .limit(EXPIRING_BATCH)
        .select(ApiKey::as_select())
        .load(conn)?;
    let mut sent = 0;
    for key in due {
        sent += db::write_tx(conn, |conn| {
            let marked = diesel::update(
                api_keys::table
                    .find(&key.id)
                    .filter(api_keys::expiring_sent_at.is_null()),
            )
            .set(api_keys::expiring_sent_at.eq(now))
            .execute(conn)?;
            if marked == 1 {
                let data = serde_json::json!({
                    "api_key": {"id": key.id, "name": key.name, "prefix": key.prefix()},
                    "expires_at": key.expires_at.map(db::rfc3339),
                });
                let actor = crate::events::Actor::system("keygate", Some("keygate".into()));
                crate::events::record(
                    conn,
                    Some(&key.workspace_id),
                    "api_key.expiring",
                    &actor,
                    data,
                )?;
            }
            Ok::<_, Error>(marked)
        })?;
    }
    Ok(sent)
}
