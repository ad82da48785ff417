//! Protected resources: the product's own APIs (its REST API, its MCP server)
//! registered with keygate, beside keygate's own `{issuer}/v1`.
//!
//! - `identifier`: what a resource's identifier may be (RFC 8707 §2);
//! - `routes`: its route table, which scope a request needs;
//! - `registry`: every node's in-memory copy of the resources, kept true by
//!   the revocation feed (a gateway check reads no table);
//! - `gateway`: the gateway check (`GET /gateway/check`), the `/v1` check
//!   with the scope a route needs.
//!
//! This folder owns the `resources` table. A resource's identifier is the
//! `aud` of the access tokens issued for it; its own credentials (a client id
//! and a secret, kept as a SHA-256) serve introspection only. Deleting one
//! ends the authorizations granted for it, through the caller's `revoke`
//! (the issuer's, which sits above this area), in the same transaction.

pub mod gateway;
pub mod identifier;
pub mod registry;
pub mod routes;

use crate::credentials::cache::CredentialCache;
use crate::credentials::revocation::{self, Event};
use crate::crypto;
use crate::db::schema::resources;
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;
pub use registry::Registry;
use routes::Route;

/// The most resources one keygate serves: every node keeps them all in memory.
pub const MAX_RESOURCES: i64 = 1000;
/// What every resource's client id starts with: the token and introspection
/// endpoints tell a resource's credentials from a client's by it.
pub const CLIENT_ID_PREFIX: &str = "resource_";

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = resources)]
struct ResourceRow {
    id: String,
    identifier: String,
    identifier_key: String,
    name: String,
    client_id: String,
    secret_hash: String,
    routes: String,
    created_at: i64,
}

/// A registered resource.
#[derive(Clone, Debug)]
pub struct Resource {
    pub id: String,
    /// As registered: the `aud` of its tokens.
    pub identifier: String,
    pub name: String,
    pub client_id: String,
    secret_hash: String,
    pub routes: Vec<Route>,
    pub created_at: i64,
}

impl Resource {
    /// Whether `secret` is this resource's (constant time over the hashes).
    pub fn secret_matches(&self, secret: &str) -> bool {
        crypto::ct_eq(&crypto::sha256_hex(secret), &self.secret_hash)
    }

    /// The catalogue scopes its routes name, each once, in catalogue order.
    pub fn scopes(&self) -> Vec<&'static str> {
        crate::credentials::scopes::all_names()
            .into_iter()
            .filter(|s| self.routes.iter().any(|r| r.scope.as_deref() == Some(s)))
            .collect()
    }
}

impl TryFrom<ResourceRow> for Resource {
    type Error = Error;
    fn try_from(row: ResourceRow) -> Result<Resource> {
        let routes = serde_json::from_str(&row.routes)
            .map_err(|e| Error::internal(format!("resource {}: unreadable routes: {e}", row.id)))?;
        Ok(Resource {
            id: row.id,
            identifier: row.identifier,
            name: row.name,
            client_id: row.client_id,
            secret_hash: row.secret_hash,
            routes,
            created_at: row.created_at,
        })
    }
}

/// Whether `client_id` names a resource's credentials rather than a client.
pub fn is_client_id(client_id: &str) -> bool {
    client_id.starts_with(CLIENT_ID_PREFIX)
}

/// What `keygate resource create` asks for.
pub struct NewResource<'a> {
    pub identifier: &'a str,
    pub name: &'a str,
    /// `METHOD PATH SCOPE` each.
    pub routes: &'a [String],
}

/// A new resource and its secret, shown once.
pub struct Created {
    pub resource: Resource,
    pub secret: String,
}

/// Registers a resource; `v1` is `{issuer}/v1`, which is never one. Every
/// node reads the resources again (a `resource` event), so that the new one
/// is known everywhere within the revocation bound.
pub fn create(conn: &mut DbConn, v1: &str, new: &NewResource) -> Result<Created> {
    let identifier = identifier::check(new.identifier, v1).map_err(Error::Invalid)?;
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::invalid("the name must be 1 to 100 characters"));
    }
    let routes = routes::parse_all(new.routes).map_err(Error::Invalid)?;
    let secret = crypto::random_token(32);
    let row = ResourceRow {
        id: db::new_id(),
        identifier_key: identifier::key(&identifier).to_string(),
        identifier,
        name: name.to_string(),
        client_id: format!("{CLIENT_ID_PREFIX}{}", crypto::random_alphanumeric(24)),
        secret_hash: crypto::sha256_hex(&secret),
        routes: serde_json::to_string(&routes)
            .map_err(|e| Error::internal(format!("routes: {e}")))?,
        created_at: db::now(),
    };
    let resource = db::write_tx(conn, |conn| {
        let count: i64 = resources::table.count().get_result(conn)?;
        if count >= MAX_RESOURCES {
            return Err(Error::invalid(format!(
                "keygate serves at most {MAX_RESOURCES} resources"
            )));
        }
        let taken = |_: &mut DbConn| {
            Error::conflict(format!(
                "a resource with the identifier {} is already registered",
                row.identifier
            ))
        };
        db::insert_new(conn, resources::table, &row, taken)?;
        revocation::record(conn, &[Event::resource(&row.id)])?;
        Resource::try_from(row.clone())
    })?;
    Ok(Created { resource, secret })
}

/// Every resource, oldest first.
pub fn list(conn: &mut DbConn) -> Result<Vec<Resource>> {
    let rows: Vec<ResourceRow> = resources::table
        .order(resources::created_at.asc())
        .then_order_by(resources::id.asc())
        .select(ResourceRow::as_select())
        .load(conn)?;
    rows.into_iter().map(Resource::try_from).collect()
}

/// The resource registered under `identifier` (one trailing slash ignored).
pub fn find_by_identifier(conn: &mut DbConn, identifier: &str) -> Result<Option<Resource>> {
    let row: Option<ResourceRow> = resources::table
        .filter(resources::identifier_key.eq(identifier::key(identifier)))
        .select(ResourceRow::as_select())
        .first(conn)
        .optional()?;
    row.map(Resource::try_from).transpose()
}

/// The condition "a resource of this identifier is registered", for another
/// area's statement to carry (see [`find_by_identifier`]); `key` is
/// [`identifier::key`] of the identifier.
pub fn registered(key: &str) -> [db::Piece<'_>; 3] {
    use db::Piece::{Sql, Text};
    [
        Sql("EXISTS (SELECT 1 FROM resources WHERE resources.identifier_key = "),
        Text(key),
        Sql(")"),
    ]
}

/// Ends the authorizations granted for a resource (by its identifier), inside
/// the deleting transaction; returns their revocation events.
pub type RevokeGranted = fn(&mut DbConn, &str) -> Result<Vec<Event>>;

/// Deletes a resource: its credentials stop at once on every node (a
/// `resource` event), and `revoke` ends every authorization granted for it
/// with its tokens, in the same transaction; this node's cache applies the
/// events once committed.
pub fn delete(
    conn: &mut DbConn,
    cache: &CredentialCache,
    id: &str,
    revoke: RevokeGranted,
) -> Result<Resource> {
    let (resource, events) = db::write_tx(conn, |conn| {
        let row: ResourceRow = resources::table
            .find(id)
            .select(ResourceRow::as_select())
            .first(conn)
            .optional()?
            .ok_or_else(|| Error::not_found(format!("no resource with id {id:?}")))?;
        diesel::delete(resources::table.find(id)).execute(conn)?;
        let mut events = revoke(conn, &row.identifier)?;
        let own = Event::resource(id);
        revocation::record(conn, std::slice::from_ref(&own))?;
        events.push(own);
        Ok::<_, Error>((Resource::try_from(row)?, events))
    })?;
    cache.apply(&events);
    Ok(resource)
}
