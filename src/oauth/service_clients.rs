//! Service clients (RFC 6749 §4.4): confidential clients made for one
//! workspace, which obtain tokens for it with the `client_credentials` grant
//! and no person present. Each is a client row (kind `service`, grant
//! `client_credentials`, no redirect URI; its workspace, scopes and keys in
//! its metadata) and one authorization row in its workspace, which the
//! authorized-apps table lists and owners and admins revoke like any other.

use super::authorizations::Authorization;
use super::clients::{Client, ClientKind, NewClient};
use crate::accounts::audit::Actor;
use crate::accounts::{self, Role};
use crate::credentials::change::Change;
use crate::credentials::scopes;
use crate::crypto;
use crate::db::schema::{authorizations, clients};
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;

/// The grant type service clients register.
pub const GRANT: &str = "client_credentials";

/// How a service client proves itself: a secret, or its keys
/// (`private_key_jwt`, RFC 7523 §2.2).
#[derive(Clone, Debug)]
pub enum ClientKeys {
    /// A shared secret, shown once.
    Secret,
    /// A JWK Set given at creation (RFC 7591 `jwks`).
    Jwks(serde_json::Value),
    /// Where the client publishes its JWK Set (RFC 7591 `jwks_uri`).
    JwksUri(String),
}

/// What a new service client is.
pub struct NewService<'a> {
    pub workspace_id: &'a str,
    pub name: &'a str,
    /// Scope names as given; at least one, each in the catalogue.
    pub scopes: &'a [String],
    pub keys: ClientKeys,
}

/// The scopes of a service client, checked against the catalogue, in its order.
fn checked_scopes(given: &[String]) -> Result<String> {
    if given.is_empty() {
        return Err(Error::invalid("a service client needs at least one scope"));
    }
    let joined = given.join(" ");
    let parsed = scopes::parse(Some(&joined)).map_err(|e| Error::invalid(e.0))?;
    Ok(scopes::join(&parsed))
}

/// The person an authorization made by the command line is recorded under:
/// the workspace's longest-standing owner (authorizations always name one).
fn recorded_approver(conn: &mut DbConn, workspace_id: &str) -> Result<String> {
    accounts::members::list(conn, workspace_id)?
        .into_iter()
        .filter(|m| m.role == Role::Owner)
        .min_by_key(|m| m.joined_at)
        .map(|m| m.user_id)
        .ok_or_else(|| Error::invalid("the workspace has no owner to record the service under"))
}

/// Makes a service client of a workspace and its authorization there, in one
/// transaction, logged in the workspace's security log. `by` is the person
/// (an owner or admin, checked by the caller) or the CLI.
pub fn create(
    conn: &mut DbConn,
    new: &NewService,
    by: Actor,
) -> Result<(NewClient, Authorization)> {
    let name = accounts::validate_name("client name", new.name)?;
    let scope = checked_scopes(new.scopes)?;
    let metadata = metadata_of(new, &scope)?;
    db::write_tx(conn, |conn| {
        accounts::find_workspace(conn, new.workspace_id)?;
        let approver = match accounts::find_user(conn, by.id) {
            Ok(u) => u.id,
            Err(_) => recorded_approver(conn, new.workspace_id)?,
        };
        let secret = matches!(new.keys, ClientKeys::Secret)
            .then(|| format!("kgs_{}", crypto::random_alphanumeric(40)));
        let now = db::now();
        let client = Client {
            id: db::new_id(),
            name: name.clone(),
            secret_hash: secret.as_deref().map(crypto::sha256_hex),
            is_public: false,
            redirect_uris: "[]".into(),
            created_at: now,
            kind: ClientKind::Service.as_str().into(),
            owner_user_id: None,
            metadata: Some(metadata.to_string()),
            registration_token_hash: None,
            token_endpoint_auth_method: match new.keys {
                ClientKeys::Secret => "client_secret_basic",
                _ => "private_key_jwt",
            }
            .into(),
            grant_types: format!("[\"{GRANT}\"]"),
            updated_at: now,
            deleted_at: None,
        };
        super::clients::insert_in_tx(conn, &client)?;
        // A service names its resource per token request (RFC 8707).
        let authorization =
            Authorization::new(&client.id, (new.workspace_id, &approver), &scope, None)
                .record(conn)?;
        Change::new(&authorization.id, "app.authorized", by).record(
            conn,
            new.workspace_id,
            Some("service client"),
        )?;
        let made = NewClient {
            client,
            secret,
            registration_access_token: None,
        };
        Ok((made, authorization))
    })
}

/// The stored metadata of a service client: its workspace, scope and keys.
fn metadata_of(new: &NewService, scope: &str) -> Result<serde_json::Value> {
    let mut m = serde_json::json!({
        "workspace_id": new.workspace_id,
        "scope": scope,
        "grant_types": [GRANT],
    });
    if let serde_json::Value::Object(obj) = &mut m {
        obj.extend(keys_metadata(&new.keys)?);
    }
    m["token_endpoint_auth_method"] = match new.keys {
        ClientKeys::Secret => "client_secret_basic",
        _ => "private_key_jwt",
    }
    .into();
    Ok(m)
}

/// The active authorization of a service client: what its tokens stand on.
/// `None` once an owner or admin revoked it (the client then gets no more
/// tokens).
pub fn active_authorization(conn: &mut DbConn, client_id: &str) -> Result<Option<Authorization>> {
    Ok(authorizations::table
        .filter(authorizations::client_id.eq(client_id))
        .filter(authorizations::revoked_at.is_null())
        .order(authorizations::created_at.desc())
        .select(Authorization::as_select())
        .first(conn)
        .optional()?)
}

/// The service clients of a workspace with their authorization, newest
/// first (the settings pages).
pub fn list(conn: &mut DbConn, workspace_id: &str) -> Result<Vec<(Client, Authorization)>> {
    Ok(authorizations::table
        .inner_join(clients::table)
        .filter(authorizations::workspace_id.eq(workspace_id))
        .filter(clients::kind.eq(ClientKind::Service.as_str()))
        .filter(clients::deleted_at.is_null())
        .order(authorizations::created_at.desc())
        .select((Client::as_select(), Authorization::as_select()))
        .load(conn)?)
}

/// The metadata members that carry a client's keys.
fn keys_metadata(keys: &ClientKeys) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut m = serde_json::Map::new();
    match keys {
        ClientKeys::Secret => {}
        ClientKeys::Jwks(jwks) => {
            crate::credentials::jose::check_jwks(jwks).map_err(Error::invalid)?;
            m.insert("jwks".into(), jwks.clone());
        }
        ClientKeys::JwksUri(uri) => {
            crate::credentials::jose::check_jwks_uri(uri).map_err(Error::invalid)?;
            m.insert("jwks_uri".into(), uri.clone().into());
        }
    }
    Ok(m)
}

/// `keygate client create --redirect-uri … --jwks-uri|--jwks-file`: an
/// operator's code-flow client that authenticates with private_key_jwt only.
pub fn create_with_keys(
    conn: &mut DbConn,
    name: &str,
    redirect_uris: &[String],
    keys: ClientKeys,
) -> Result<NewClient> {
    let mut metadata = keys_metadata(&keys)?;
    metadata.insert(
        "token_endpoint_auth_method".into(),
        "private_key_jwt".into(),
    );
    // The client is made (its own transaction, with its event), then given
    // its keys; the keys were checked above, so only the database can fail
    // in between.
    let mut made = super::clients::create(conn, name, redirect_uris, false)?;
    db::write_tx(conn, |conn| {
        let client = &mut made.client;
        client.secret_hash = None;
        client.metadata = Some(serde_json::Value::Object(metadata.clone()).to_string());
        client.token_endpoint_auth_method = "private_key_jwt".into();
        diesel::update(clients::table.find(&client.id))
            .set((
                clients::secret_hash.eq(None::<String>),
                clients::metadata.eq(&client.metadata),
                clients::token_endpoint_auth_method.eq(&client.token_endpoint_auth_method),
            ))
            .execute(conn)?;
        Ok::<(), Error>(())
    })?;
    made.secret = None;
    Ok(made)
}
