//! The outbox of events (webhooks): an event is a row written in the
//! transaction of the change that causes it, with one delivery row for each
//! webhook endpoint that wants its type, so a change is never made without its
//! event and an event is never lost by a crash. Any node delivers them
//! (`webhooks::delivery`).
//!
//! The one way to record an event is [`record`]; the security log
//! (`accounts::audit::Entry::record`) calls it for every change it logs that
//! has an event type, and areas with events of no log row (a client
//! registered, a domain verified) call it themselves.

pub mod deliveries;
pub mod endpoints;

use crate::db::schema::events;
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;
use serde_json::{json, Value};

/// Every event type, as the contract lists them.
pub const TYPES: &[&str] = &[
    "api_key.created",
    "api_key.rotated",
    "api_key.revoked",
    "api_key.leaked",
    "api_key.expiring",
    "authorization.created",
    "authorization.revoked",
    "mailbox_auth_key.created",
    "mailbox_auth_key.disabled",
    "mailbox_auth_key.enabled",
    "mailbox_auth_key.rotated",
    "mailbox_auth_key.deleted",
    "member.added",
    "member.role_changed",
    "member.removed",
    "client.registered",
    "domain.verified",
    "domain.failed",
];

/// How long events are kept: longer than the whole retry schedule (about
/// 38 h), so an event outlives its deliveries' attempts.
pub const RETENTION_SECS: i64 = 30 * 86_400;

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = events)]
pub struct EventRow {
    pub id: String,
    pub workspace_id: Option<String>,
    pub event_type: String,
    /// The whole body sent: `{"id","type","timestamp","workspace_id","data"}`.
    pub body: String,
    pub created_at: i64,
}

/// Who caused an event: `data.actor` of its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// `person`, `admin_token`, `api_key`, `cli` or `system`.
    pub kind: &'static str,
    pub id: String,
    pub name: Option<String>,
}

impl Actor {
    pub fn system(id: &str, name: Option<String>) -> Actor {
        Actor {
            kind: "system",
            id: id.to_string(),
            name,
        }
    }
    fn to_json(&self) -> Value {
        json!({"kind": self.kind, "id": self.id, "name": self.name})
    }
}

/// Whether any webhook endpoint wants events of `event_type`: an event no
/// endpoint wants is not written (nothing would ever read it), which spares
/// the change path the event's queries when no webhooks are set up.
pub fn wanted(conn: &mut DbConn, event_type: &str) -> Result<bool> {
    Ok(endpoints::all(conn)?.iter().any(|e| e.wants(event_type)))
}

/// Records an event of `event_type` (one of [`TYPES`]) inside the caller's
/// transaction, if any endpoint wants it ([`wanted`]), for `workspace_id` (`None` for an event of no workspace),
/// with `data` (a JSON object of ids and names, never a secret, a hash or a
/// token) and `actor` as `data.actor`. Returns the event's id (empty when
/// none was written).
pub fn record(
    conn: &mut DbConn,
    workspace_id: Option<&str>,
    event_type: &str,
    actor: &Actor,
    data: Value,
) -> Result<String> {
    if !TYPES.contains(&event_type) {
        return Err(Error::Internal(format!(
            "unknown event type {event_type:?}"
        )));
    }
    if !wanted(conn, event_type)? {
        return Ok(String::new());
    }
    let mut data = match data {
        Value::Object(map) => map,
        Value::Null => serde_json::Map::new(),
        _ => return Err(Error::Internal("event data must be an object".into())),
    };
    data.insert("actor".into(), actor.to_json());
    let id = format!("evt_{}", db::new_id().replace('-', ""));
    let now = db::now();
    let body = json!({
        "id": id,
        "type": event_type,
        "timestamp": db::rfc3339(now),
        "workspace_id": workspace_id,
        "data": data,
    });
    let row = EventRow {
        id: id.clone(),
        workspace_id: workspace_id.map(str::to_string),
        event_type: event_type.to_string(),
        body: body.to_string(),
        created_at: now,
    };
    diesel::insert_into(events::table)
        .values(&row)
        .execute(conn)?;
    deliveries::fan_out(conn, &row)?;
    Ok(id)
}

/// The bodies of events by id (for the deliveries being sent).
pub fn bodies_of(
    conn: &mut DbConn,
    ids: &[String],
) -> Result<std::collections::HashMap<String, String>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    Ok(db::id_map(
        conn,
        events::table
            .filter(events::id.eq_any(ids))
            .select((events::id, events::body)),
    )?)
}

/// Deletes events past [`RETENTION_SECS`], and the deliveries that ended
/// (see [`deliveries::prune`]).
pub fn prune(conn: &mut DbConn, now: i64) -> Result<usize> {
    let n = deliveries::prune(conn, now)?;
    Ok(
        n + diesel::delete(events::table.filter(events::created_at.lt(now - RETENTION_SECS)))
            .execute(conn)?,
    )
}
