//! The workspace resources behind `/v1`: tags and forms (mailboxes are in
//! `mailboxes::api`), and the list bounds every `/v1` list shares. Every
//! function takes the workspace the credential picked; no request names one.

use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;
use serde::Serialize;

#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

/// A list: `{"data": [...], "has_more": bool}`, newest first.
#[derive(Serialize, Debug)]
pub struct Page {
    pub data: Vec<Item>,
    pub has_more: bool,
}

/// `GET /v1/workspace`.
#[derive(Serialize, Debug)]
pub struct WorkspaceBody<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

pub const DEFAULT_LIMIT: i64 = 10;
pub const MAX_LIMIT: i64 = 100;

#[derive(Clone, Copy, Debug)]
pub enum Resource {
    Tags,
    Forms,
}

impl Resource {
    pub fn singular(self) -> &'static str {
        match self {
            Resource::Tags => "tag",
            Resource::Forms => "form",
        }
    }
    pub fn read_scope(self) -> &'static str {
        match self {
            Resource::Tags => "tags:read",
            Resource::Forms => "forms:read",
        }
    }
    pub fn write_scope(self) -> &'static str {
        match self {
            Resource::Tags => "tags:write",
            Resource::Forms => "forms:write",
        }
    }
}

// Tags and forms share one shape; the macro writes each query once per table.
macro_rules! with_table {
    ($resource:expr, $t:ident => $body:expr) => {
        match $resource {
            Resource::Tags => {
                use crate::db::schema::tags as $t;
                $body
            }
            Resource::Forms => {
                use crate::db::schema::forms as $t;
                $body
            }
        }
    };
}

fn item((id, name, created_at): (String, String, i64)) -> Item {
    Item {
        id,
        name,
        created_at: db::rfc3339(created_at),
    }
}

/// Newest first; `starting_after` is the id of the last item of the previous page.
pub fn list(
    conn: &mut DbConn,
    resource: Resource,
    workspace_id: &str,
    limit: i64,
    starting_after: Option<&str>,
) -> Result<Page> {
    let limit = limit.clamp(1, MAX_LIMIT);
    let rows: Vec<(String, String, i64)> = with_table!(resource, t => {
        let mut q = t::table
            .filter(t::workspace_id.eq(workspace_id))
            .select((t::id, t::name, t::created_at))
            .order(t::id.desc())
            .limit(limit + 1)
            .into_boxed();
        if let Some(after) = starting_after {
            q = q.filter(t::id.lt(after.to_string()));
        }
        q.load(conn)?
    });
    let has_more = rows.len() as i64 > limit;
    Ok(Page {
        data: rows.into_iter().take(limit as usize).map(item).collect(),
        has_more,
    })
}

pub fn create(
    conn: &mut DbConn,
    resource: Resource,
    workspace_id: &str,
    name: &str,
) -> Result<Item> {
    let row = (db::new_id(), name.to_string(), db::now());
    let inserted = db::write_tx(conn, |conn| {
        with_table!(resource, t => {
            diesel::insert_into(t::table)
                .values((
                    t::id.eq(&row.0),
                    t::workspace_id.eq(workspace_id),
                    t::name.eq(&row.1),
                    t::created_at.eq(row.2),
                ))
                .execute(conn)
        })
    });
    match inserted {
        Ok(_) => Ok(item(row)),
        Err(e) if db::is_unique_violation(&e) => Err(Error::conflict(format!(
            "a {} named {name:?} already exists in this workspace",
            resource.singular()
        ))),
        Err(e) => Err(e.into()),
    }
}
