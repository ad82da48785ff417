//! Tags and forms: a name in a workspace, listed newest first.

use super::wire::{Item, ListQuery, Page};
use super::{on_conn, Node, PageRequest, V1Error};
use crate::credentials::bearer::Principal;
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;
use std::sync::Arc;

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
}

/// `GET /v1/tags`, `GET /v1/forms`.
pub async fn list<N: Node>(
    node: &Arc<N>,
    caller: &Principal,
    resource: Resource,
    query: ListQuery,
) -> std::result::Result<Page<Item>, V1Error> {
    let page = PageRequest::from_query(query)?;
    let ws = caller.workspace_id().to_string();
    on_conn(node, move |_, conn| {
        Ok(read_page(conn, resource, &ws, &page)?)
    })
    .await
}

/// `POST /v1/tags`, `POST /v1/forms`: `name` as the accounts' rule for names
/// has it; a name already used in the workspace is a conflict.
pub async fn create<N: Node>(
    node: &Arc<N>,
    caller: &Principal,
    resource: Resource,
    name: &str,
) -> std::result::Result<Item, V1Error> {
    let name = crate::accounts::validate_name("name", name)
        .map_err(|e| V1Error::ParameterInvalid(format!("{e}.")))?;
    let ws = caller.workspace_id().to_string();
    on_conn(node, move |_, conn| Ok(insert(conn, resource, &ws, &name)?)).await
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
fn read_page(
    conn: &mut DbConn,
    resource: Resource,
    workspace_id: &str,
    page: &PageRequest,
) -> Result<Page<Item>> {
    let limit = page.limit.clamp(1, super::MAX_LIMIT);
    let rows: Vec<(String, String, i64)> = with_table!(resource, t => {
        let mut q = t::table
            .filter(t::workspace_id.eq(workspace_id))
            .select((t::id, t::name, t::created_at))
            .order(t::id.desc())
            .limit(limit + 1)
            .into_boxed();
        if let Some(after) = &page.starting_after {
            q = q.filter(t::id.lt(after.clone()));
        }
        q.load(conn)?
    });
    let has_more = rows.len() as i64 > limit;
    Ok(Page {
        data: rows.into_iter().take(limit as usize).map(item).collect(),
        has_more,
    })
}

fn insert(conn: &mut DbConn, resource: Resource, workspace_id: &str, name: &str) -> Result<Item> {
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
