//! The outgoing event of a security-log row: every change the log records
//! that has an event type (see `crate::events::TYPES`) writes its event in
//! the same transaction, from `audit::Entry::record`, so no area can make
//! such a change without it.

use super::audit::{self, Entry, NameSource, Named};
use crate::db::DbConn;
use crate::error::Result;
use crate::events::{self, Actor};
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

static NAMES: OnceLock<&'static (dyn NameSource + Sync)> = OnceLock::new();

/// Gives events the names of what `accounts` does not own (keys, apps,
/// mailbox auth keys, clients): set once at start by the node and the CLI.
/// Without it, events carry ids only.
pub fn install_names(source: &'static (dyn NameSource + Sync)) {
    let _ = NAMES.set(source);
}

/// The event type of a log action, what its subject is called in `data`,
/// and how its name is found.
pub(super) fn event_of(action: &str) -> Option<(&'static str, &'static str, Option<Named>)> {
    let key = Some(Named::ApiKey);
    let app = Some(Named::Authorization);
    let auth_key = Some(Named::MailboxAuthKey);
    Some(match action {
        "api_key.generated" => ("api_key.created", "api_key", key),
        "api_key.rotated" => ("api_key.rotated", "api_key", key),
        "api_key.revoked" => ("api_key.revoked", "api_key", key),
        "api_key.revoked_leaked" => ("api_key.leaked", "api_key", key),
        "app.authorized" => ("authorization.created", "authorization", app),
        a if a.starts_with("app.revoked") => ("authorization.revoked", "authorization", app),
        "mailbox_auth_key.created" => ("mailbox_auth_key.created", "mailbox_auth_key", auth_key),
        "mailbox_auth_key.disabled" => ("mailbox_auth_key.disabled", "mailbox_auth_key", auth_key),
        "mailbox_auth_key.enabled" => ("mailbox_auth_key.enabled", "mailbox_auth_key", auth_key),
        "mailbox_auth_key.rotated" => ("mailbox_auth_key.rotated", "mailbox_auth_key", auth_key),
        "mailbox_auth_key.deleted" => ("mailbox_auth_key.deleted", "mailbox_auth_key", auth_key),
        a if a.starts_with("member.added_") => ("member.added", "person", None),
        a if a.starts_with("member.role_") => ("member.role_changed", "person", None),
        "member.removed" => ("member.removed", "person", None),
        "domain.verified" => ("domain.verified", "domain", Some(Named::Domain)),
        "domain.failed" => ("domain.failed", "domain", Some(Named::Domain)),
        _ => return None,
    })
}

fn name_of(conn: &mut DbConn, what: Named, id: &str) -> Result<Option<String>> {
    let Some(source) = NAMES.get() else {
        return Ok(None);
    };
    Ok(source.names(conn, what, &[id.to_string()])?.remove(id))
}

fn email_of(conn: &mut DbConn, id: &str) -> Result<Option<String>> {
    Ok(super::emails_of(conn, &[id.to_string()])?.remove(id))
}

/// `data.actor` for an actor id of the log.
pub fn actor_of(conn: &mut DbConn, id: &str) -> Result<Actor> {
    let actor = |kind, id: &str, name| Actor {
        kind,
        id: id.to_string(),
        name,
    };
    if id == audit::CLI_ACTOR {
        return Ok(actor("cli", id, Some("keygate CLI".into())));
    }
    if id == audit::LEAK_REPORT_ACTOR {
        return Ok(actor("system", id, Some("leak report".into())));
    }
    if let Some((token, name)) = audit::admin_token_of(id) {
        return Ok(actor("admin_token", token, Some(name.to_string())));
    }
    if let Some(key) = id.strip_prefix("api_key:") {
        let name = name_of(conn, Named::ApiKey, key)?;
        return Ok(actor("api_key", key, name));
    }
    if let Some(email) = email_of(conn, id)? {
        return Ok(actor("person", id, Some(email)));
    }
    // An app acting on its own authorization (a revocation, a replay).
    let name = name_of(conn, Named::Client, id)?;
    Ok(Actor::system(id, name))
}

/// Inside the entry's transaction: its event, if its action has one.
pub(super) fn record_for(conn: &mut DbConn, entry: &Entry) -> Result<()> {
    let Some((event_type, subject, named)) = event_of(entry.action) else {
        return Ok(());
    };
    if !events::wanted(conn, event_type)? {
        return Ok(());
    }
    let actor = actor_of(conn, entry.actor.id)?;
    let mut data = Map::new();
    let mut object = Map::new();
    object.insert("id".into(), json!(entry.subject));
    match named {
        Some(what) => {
            let name = name_of(conn, what, entry.subject)?;
            let field = if what == Named::Authorization {
                "app_name"
            } else {
                "name"
            };
            object.insert(field.into(), json!(name));
        }
        None => {
            object.insert("email".into(), json!(email_of(conn, entry.subject)?));
        }
    }
    data.insert(subject.into(), Value::Object(object));
    if let Some(role) = entry
        .action
        .strip_prefix("member.added_")
        .or_else(|| entry.action.strip_prefix("member.role_"))
    {
        data.insert("role".into(), json!(role));
    }
    if let Some(reason) = entry.action.strip_prefix("app.revoked_") {
        data.insert("reason".into(), json!(reason));
    }
    events::record(
        conn,
        Some(entry.workspace_id),
        event_type,
        &actor,
        Value::Object(data),
    )?;
    Ok(())
}
