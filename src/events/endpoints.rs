//! Webhook endpoints: where events are delivered, which types each wants,
//! and its signing secret (sealed by the caller, `webhooks`).

use super::TYPES;
use crate::db::paging::{Listed, Paging};
use crate::db::schema::{webhook_deliveries, webhook_endpoints};
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;

/// The most endpoints kept: each event is one delivery per endpoint.
pub const MAX_ENDPOINTS: i64 = 100;
/// Every event type.
pub const ALL: &str = "*";

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = webhook_endpoints)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    /// A JSON array of types, `["*"]` for every type.
    pub event_types: String,
    /// The signing secret as `webhooks` sealed it.
    pub secret_sealed: String,
    pub created_at: i64,
}

impl Endpoint {
    pub fn types(&self) -> Vec<String> {
        serde_json::from_str(&self.event_types).unwrap_or_default()
    }
    /// Whether this endpoint wants events of `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        self.types().iter().any(|t| t == ALL || t == event_type)
    }
}

/// The types asked for: none means every type (`["*"]`); each must be one of
/// [`TYPES`] or `*`; repeats are dropped.
pub fn parse_types(raw: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for t in raw {
        let t = t.trim();
        if t != ALL && !TYPES.contains(&t) {
            return Err(Error::invalid(format!(
                "unknown event type {t:?}; the types are {}, or * for all",
                TYPES.join(", ")
            )));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    if out.is_empty() || out.iter().any(|t| t == ALL) {
        return Ok(vec![ALL.to_string()]);
    }
    Ok(out)
}

/// Saves an endpoint (its URL and types already checked).
pub fn insert(
    conn: &mut DbConn,
    url: &str,
    types: &[String],
    secret_sealed: String,
) -> Result<Endpoint> {
    db::write_tx(conn, |conn| {
        let n: i64 = webhook_endpoints::table.count().get_result(conn)?;
        if n >= MAX_ENDPOINTS {
            return Err(Error::conflict(format!(
                "there are already {MAX_ENDPOINTS} webhook endpoints; delete one first"
            )));
        }
        let e = Endpoint {
            id: db::new_id(),
            url: url.to_string(),
            event_types: serde_json::to_string(types)
                .map_err(|e| Error::internal(e.to_string()))?,
            secret_sealed,
            created_at: db::now(),
        };
        diesel::insert_into(webhook_endpoints::table)
            .values(&e)
            .execute(conn)?;
        Ok(e)
    })
}

pub fn find(conn: &mut DbConn, id: &str) -> Result<Endpoint> {
    webhook_endpoints::table
        .find(id)
        .select(Endpoint::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| Error::not_found(format!("no webhook endpoint with id {id:?}")))
}

/// Every endpoint (at most [`MAX_ENDPOINTS`]).
pub fn all(conn: &mut DbConn) -> Result<Vec<Endpoint>> {
    Ok(webhook_endpoints::table
        .order(webhook_endpoints::id.desc())
        .select(Endpoint::as_select())
        .load(conn)?)
}

/// A page of endpoints, newest first.
pub fn list(conn: &mut DbConn, paging: &Paging) -> Result<Listed<Endpoint>> {
    let mut q = webhook_endpoints::table.into_boxed();
    if let Some(c) = &paging.cursor {
        q = q.filter(webhook_endpoints::id.lt(c.clone()));
    }
    let rows = q
        .order(webhook_endpoints::id.desc())
        .limit(paging.fetch())
        .select(Endpoint::as_select())
        .load(conn)?;
    Ok(paging.page(rows, |e| e.id.clone()))
}

/// Deletes an endpoint and its deliveries (pending ones are not sent).
pub fn delete(conn: &mut DbConn, id: &str) -> Result<()> {
    db::write_tx(conn, |conn| {
        find(conn, id)?;
        diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::endpoint_id.eq(id)))
            .execute(conn)?;
        diesel::delete(webhook_endpoints::table.find(id)).execute(conn)?;
        Ok(())
    })
}
