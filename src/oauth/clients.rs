//! OAuth clients: registration (by the operator, by a person in the settings
//! pages, by the client itself through RFC 7591, or through a client ID
//! metadata document), the redirect URI rules, secrets, deletion, and the
//! in-memory client cache.

use super::authorizations;
use super::registration::{self, cimd::ClientDocument, RedirectKind, ValidatedClient};
use crate::credentials::cache::CredentialCache;
use crate::credentials::revocation::{self, Event, EventKind};
use crate::crypto;
use crate::db::schema::{authorizations as authz, clients, consent_requests};
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;
use std::collections::HashMap;

/// How a client came to be registered. Only `Operator` clients were reviewed
/// by whoever runs keygate; the consent page says so for the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    /// `keygate client create`.
    Operator,
    /// A person's developer app, made in the settings pages.
    Developer,
    /// RFC 7591 dynamic client registration at `POST /oauth/register`.
    Dynamic,
    /// A client ID metadata document: the `client_id` is the document's URL.
    MetadataDocument,
    /// A service of one workspace (`client_credentials`), made by the
    /// operator or the workspace's owners and admins.
    Service,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Operator => "operator",
            ClientKind::Developer => "developer",
            ClientKind::Dynamic => "dynamic",
            ClientKind::MetadataDocument => "metadata_document",
            ClientKind::Service => "service",
        }
    }

    /// Unknown values read as the least trusted kind.
    pub fn parse(s: &str) -> ClientKind {
        match s {
            "operator" => ClientKind::Operator,
            "developer" => ClientKind::Developer,
            "metadata_document" => ClientKind::MetadataDocument,
            "service" => ClientKind::Service,
            _ => ClientKind::Dynamic,
        }
    }

    /// Nobody who runs keygate looked at it before people were asked to trust it.
    pub fn unreviewed(self) -> bool {
        !matches!(self, ClientKind::Operator | ClientKind::Service)
    }
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = clients)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub is_public: bool,
    pub redirect_uris: String,
    pub created_at: i64,
    pub kind: String,
    pub owner_user_id: Option<String>,
    /// The registered RFC 7591 metadata (JSON), for self-registered clients.
    pub metadata: Option<String>,
    /// SHA-256 of the RFC 7592 registration access token.
    pub registration_token_hash: Option<String>,
    pub token_endpoint_auth_method: String,
    /// JSON array of grant type names.
    pub grant_types: String,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
}

impl Client {
    pub fn kind(&self) -> ClientKind {
        ClientKind::parse(&self.kind)
    }

    pub fn redirect_uri_list(&self) -> Vec<String> {
        serde_json::from_str(&self.redirect_uris).unwrap_or_default()
    }

    /// RFC 6749 §3.1.2.3 exact matching, except that a registered loopback IP
    /// URI matches any port (RFC 8252 §7.3).
    pub fn redirect_uri_matches(&self, given: &str) -> bool {
        self.redirect_uri_list()
            .iter()
            .any(|registered| redirect_matches(registered, given))
    }

    /// Whether the client registered `grant` (RFC 7591 §2 `grant_types`).
    /// Clients made by the operator or in the settings pages have the code
    /// and refresh grants.
    pub fn allows_grant(&self, grant: &str) -> bool {
        serde_json::from_str::<Vec<String>>(&self.grant_types)
            .map(|g| g.iter().any(|g| g == grant))
            .unwrap_or(false)
    }

    /// Checks a presented secret in constant time. Public clients have none.
    pub fn secret_matches(&self, presented: &str) -> bool {
        match &self.secret_hash {
            Some(hash) => crypto::ct_eq(&crypto::sha256_hex(presented), hash),
            None => false,
        }
    }

    /// The registered metadata as a JSON object (empty when there is none).
    pub fn metadata_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.metadata
            .as_deref()
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_default()
    }

    /// The scopes the client registered (RFC 7591 §2 `scope`), if it limited
    /// itself to some.
    pub fn registered_scopes(&self) -> Option<Vec<String>> {
        let scope = self.metadata_json().get("scope")?.as_str()?.to_string();
        Some(scope.split(' ').map(str::to_string).collect())
    }
}

pub struct NewClient {
    pub client: Client,
    /// Shown once; only its hash is stored.
    pub secret: Option<String>,
    /// RFC 7592's registration access token, for dynamic registrations; shown
    /// once, only its hash is stored.
    pub registration_access_token: Option<String>,
}

/// `given` matches `registered` exactly, or with only the port differing when
/// `registered` is an http loopback IP URI (RFC 8252 §7.3).
pub fn redirect_matches(registered: &str, given: &str) -> bool {
    registration::redirect_uri_matches(registered, given)
}

/// Registration rules for every kind of client (RFC 6749 §3.1.2, RFC 8252
/// §7.1, §7.3 and §8.3): `https`, loopback `http` on `127.0.0.1` or `[::1]`,
/// or a private-use scheme in reverse-domain form; no fragment; never
/// `http://localhost`.
pub fn validate_redirect_uri(raw: &str) -> Result<String> {
    registration::classify_redirect_uri(raw)
        .map(|_| raw.to_string())
        .map_err(|e| Error::invalid(e.description().to_string()))
}

/// Where a code sent to `redirect_uri` goes, in words for the consent page and
/// the authorized-apps table (RFC 8252 §7: loopback and private-use URIs reach
/// an app on the person's own device).
pub fn code_destination(redirect_uri: &str) -> String {
    match registration::classify_redirect_uri(redirect_uri) {
        Ok(RedirectKind::Https { host }) => host,
        Ok(RedirectKind::Loopback { host }) => format!("{host} (an app on this device)"),
        Ok(RedirectKind::PrivateUse { scheme }) => format!("{scheme} (an app on this device)"),
        // Registered before today's rules: show what the URL parser sees.
        Err(_) => url::Url::parse(redirect_uri)
            .ok()
            .map(|u| u.host_str().unwrap_or(u.scheme()).to_string())
            .unwrap_or_default(),
    }
}

fn checked_redirect_uris(redirect_uris: &[String]) -> Result<Vec<String>> {
    if redirect_uris.is_empty() {
        return Err(Error::invalid("at least one redirect URI is required"));
    }
    if redirect_uris.len() > registration::metadata::MAX_REDIRECT_URIS {
        return Err(Error::invalid(format!(
            "at most {} redirect URIs are allowed",
            registration::metadata::MAX_REDIRECT_URIS
        )));
    }
    let mut uris = Vec::with_capacity(redirect_uris.len());
    for raw in redirect_uris {
        let uri = validate_redirect_uri(raw)?;
        if !uris.contains(&uri) {
            uris.push(uri);
        }
    }
    Ok(uris)
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

const DEFAULT_GRANTS: &str = r#"["authorization_code","refresh_token"]"#;

fn new_secret() -> String {
    format!("kgs_{}", crypto::random_alphanumeric(40))
}

/// A client row with the fields every kind shares.
fn base_row(
    kind: ClientKind,
    name: String,
    uris: &[String],
    public: bool,
) -> (Client, Option<String>) {
    let secret = (!public).then(new_secret);
    let now = db::now();
    let client = Client {
        id: db::new_id(),
        name,
        secret_hash: secret.as_deref().map(crypto::sha256_hex),
        is_public: public,
        redirect_uris: to_json(&uris),
        created_at: now,
        kind: kind.as_str().to_string(),
        owner_user_id: None,
        metadata: None,
        registration_token_hash: None,
        token_endpoint_auth_method: if public {
            "none"
        } else {
            "client_secret_basic"
        }
        .to_string(),
        grant_types: DEFAULT_GRANTS.to_string(),
        updated_at: now,
        deleted_at: None,
    };
    (client, secret)
}

/// A new client and its `client.registered` event, in one transaction.
fn insert(conn: &mut DbConn, client: &Client) -> Result<()> {
    db::write_tx(conn, |conn| insert_in_tx(conn, client))
}

/// Inside a transaction: writes a new client's row and its
/// `client.registered` event (of no workspace: clients are the server's).
pub(super) fn insert_in_tx(conn: &mut DbConn, client: &Client) -> Result<()> {
    diesel::insert_into(clients::table)
        .values(client)
        .execute(conn)?;
    let actor = match (&client.owner_user_id, client.kind()) {
        (Some(owner), _) => crate::events::Actor {
            kind: "person",
            id: owner.clone(),
            name: crate::accounts::emails_of(conn, std::slice::from_ref(owner))?.remove(owner),
        },
        (None, ClientKind::Operator) => crate::events::Actor {
            kind: "cli",
            id: crate::accounts::audit::CLI_ACTOR.to_string(),
            name: Some("keygate CLI".into()),
        },
        (None, kind) => crate::events::Actor::system(kind.as_str(), None),
    };
    let data = serde_json::json!({
        "client": {"id": client.id, "name": client.name, "kind": client.kind, "public": client.is_public},
    });
    crate::events::record(conn, None, "client.registered", &actor, data)?;
    Ok(())
}

/// `keygate client create`: a client the operator registered.
pub fn create(
    conn: &mut DbConn,
    name: &str,
    redirect_uris: &[String],
    public: bool,
) -> Result<NewClient> {
    let name = crate::accounts::validate_name("client name", name)?;
    let uris = checked_redirect_uris(redirect_uris)?;
    let (client, secret) = base_row(ClientKind::Operator, name, &uris, public);
    insert(conn, &client)?;
    Ok(NewClient {
        client,
        secret,
        registration_access_token: None,
    })
}

/// The longest client id keygate accepts: its own ids are short, and a
/// metadata document's URL fits well within it. A longer one is refused as
/// an unknown client before it is looked up, fetched or counted.
pub const MAX_CLIENT_ID_BYTES: usize = 2048;

/// The most developer apps one person keeps (deleted ones do not count): a
/// bound on what one account can make, as the registration quota is for
/// anonymous callers.
pub const MAX_DEVELOPER_APPS: i64 = 25;

/// A developer app of the settings pages, owned by the person who made it.
pub fn create_developer_app(
    conn: &mut DbConn,
    owner_user_id: &str,
    name: &str,
    redirect_uris: &[String],
    public: bool,
) -> Result<NewClient> {
    let name = crate::accounts::validate_name("app name", name)?;
    let uris = checked_redirect_uris(redirect_uris)?;
    let kept: i64 = clients::table
        .filter(clients::owner_user_id.eq(owner_user_id))
        .filter(clients::deleted_at.is_null())
        .count()
        .get_result(conn)?;
    if kept >= MAX_DEVELOPER_APPS {
        return Err(Error::invalid(format!(
            "you have {MAX_DEVELOPER_APPS} developer apps, the most one person may keep; \
             delete one you no longer use first"
        )));
    }
    let (mut client, secret) = base_row(ClientKind::Developer, name, &uris, public);
    client.owner_user_id = Some(owner_user_id.to_string());
    insert(conn, &client)?;
    Ok(NewClient {
        client,
        secret,
        registration_access_token: None,
    })
}

/// RFC 7591 §3.2.1: stores a validated registration with a new client id, a
/// secret for confidential clients, and the RFC 7592 registration access
/// token (hashed).
pub fn register_dynamic(conn: &mut DbConn, validated: &ValidatedClient) -> Result<NewClient> {
    let public = validated.is_public();
    // A private_key_jwt client proves itself with its keys: no secret.
    let keyed = validated.token_endpoint_auth_method == registration::AuthMethod::PrivateKeyJwt;
    let (mut client, secret) = base_row(
        ClientKind::Dynamic,
        validated.client_name.clone(),
        &validated.redirect_uris,
        public,
    );
    let token = format!("kgr_{}", crypto::random_token(32));
    client.metadata = Some(to_json(validated));
    client.registration_token_hash = Some(crypto::sha256_hex(&token));
    client.token_endpoint_auth_method = validated.token_endpoint_auth_method.as_str().to_string();
    client.grant_types = to_json(&validated.grant_types);
    let secret = secret.filter(|_| !keyed);
    if keyed {
        client.secret_hash = None;
    }
    insert(conn, &client)?;
    Ok(NewClient {
        client,
        secret,
        registration_access_token: Some(token),
    })
}

/// The row a metadata document's client has (or would have): its id is the
/// URL.
pub fn document_row(doc: &ClientDocument) -> Client {
    let now = db::now();
    Client {
        id: doc.client_id.clone(),
        name: doc.client_name.clone(),
        secret_hash: None,
        is_public: true,
        redirect_uris: to_json(&doc.redirect_uris),
        created_at: now,
        kind: ClientKind::MetadataDocument.as_str().to_string(),
        owner_user_id: None,
        metadata: Some(to_json(doc)),
        registration_token_hash: None,
        token_endpoint_auth_method: doc.token_endpoint_auth_method().as_str().into(),
        grant_types: to_json(&doc.grant_types),
        updated_at: now,
        deleted_at: None,
    }
}

fn document_refused() -> Error {
    Error::forbidden("This application was removed by the operator of keygate.")
}

/// The client of a fetched metadata document as the authorization endpoint
/// shows it, read only: no row is written before a person approves (the row
/// may not exist). A client the operator deleted stays refused (`Forbidden`),
/// whatever its document says.
pub fn check_document(conn: &mut DbConn, doc: &ClientDocument) -> Result<Client> {
    match find_any(conn, &doc.client_id)? {
        Some(c) if c.deleted_at.is_some() || c.kind() != ClientKind::MetadataDocument => {
            Err(document_refused())
        }
        _ => Ok(document_row(doc)),
    }
}

/// The client of a metadata document a person approved: its row is made
/// (authorizations refer to it by the URL) or brought up to date. A client
/// the operator deleted stays refused (`Forbidden`).
pub fn save_document(conn: &mut DbConn, doc: &ClientDocument) -> Result<Client> {
    sync_document(conn, doc, true)?.ok_or_else(document_refused)
}

/// The row of an approved metadata-document client brought up to date with
/// its document; `None` when there is no row: such a client was never
/// approved, and this never makes one (the token endpoint).
pub fn refresh_document(conn: &mut DbConn, doc: &ClientDocument) -> Result<Option<Client>> {
    sync_document(conn, doc, false)
}

fn sync_document(conn: &mut DbConn, doc: &ClientDocument, create: bool) -> Result<Option<Client>> {
    let fresh = document_row(doc);
    let current = |c: &Client| {
        c.name == fresh.name
            && c.redirect_uris == fresh.redirect_uris
            && c.metadata == fresh.metadata
    };
    for _ in 0..2 {
        match find_any(conn, &doc.client_id)? {
            Some(c) if c.deleted_at.is_some() || c.kind() != ClientKind::MetadataDocument => {
                return Err(document_refused())
            }
            Some(c) if current(&c) => return Ok(Some(c)),
            Some(_) => {
                let now = db::now();
                diesel::update(clients::table.find(&doc.client_id))
                    .set((
                        clients::name.eq(&fresh.name),
                        clients::redirect_uris.eq(&fresh.redirect_uris),
                        clients::metadata.eq(&fresh.metadata),
                        clients::grant_types.eq(&fresh.grant_types),
                        clients::token_endpoint_auth_method.eq(&fresh.token_endpoint_auth_method),
                        clients::updated_at.eq(now),
                    ))
                    .execute(conn)?;
            }
            None if !create => return Ok(None),
            None => match db::write_tx(conn, |conn| insert_in_tx(conn, &fresh)) {
                Ok(()) => return Ok(Some(fresh)),
                // Another request made the row first: read it again.
                Err(Error::Db(e)) if db::is_unique_violation(&e) => continue,
                Err(e) => return Err(e),
            },
        }
    }
    find(conn, &doc.client_id)?
        .map(Some)
        .ok_or_else(document_refused)
}

/// A client that is not deleted.
pub fn find(conn: &mut DbConn, id: &str) -> Result<Option<Client>> {
    Ok(clients::table
        .find(id)
        .filter(clients::deleted_at.is_null())
        .select(Client::as_select())
        .first(conn)
        .optional()?)
}

/// The condition "the client `id` exists and is not deleted" ([`find`]), for
/// a statement to carry.
pub fn live(id: &str) -> [db::Piece<'_>; 3] {
    use db::Piece::{Sql, Text};
    [
        Sql("EXISTS (SELECT 1 FROM clients WHERE clients.id = "),
        Text(id),
        Sql(" AND clients.deleted_at IS NULL)"),
    ]
}

/// A client, deleted or not.
pub fn find_any(conn: &mut DbConn, id: &str) -> Result<Option<Client>> {
    Ok(clients::table
        .find(id)
        .select(Client::as_select())
        .first(conn)
        .optional()?)
}

/// Every client that is not deleted, oldest first, with its number of active
/// authorizations (`keygate client list`).
pub fn list_all(conn: &mut DbConn) -> Result<Vec<(Client, i64)>> {
    let all: Vec<Client> = clients::table
        .filter(clients::deleted_at.is_null())
        .order(clients::created_at.asc())
        .select(Client::as_select())
        .load(conn)?;
    let counts: Vec<(String, i64)> = authz::table
        .filter(authz::revoked_at.is_null())
        .group_by(authz::client_id)
        .select((authz::client_id, diesel::dsl::count_star()))
        .load(conn)?;
    let counts: std::collections::HashMap<String, i64> = counts.into_iter().collect();
    Ok(all
        .into_iter()
        .map(|c| {
            let n = counts.get(&c.id).copied().unwrap_or(0);
            (c, n)
        })
        .collect())
}

/// A person's developer apps, newest first.
pub fn list_developer_apps(conn: &mut DbConn, owner_user_id: &str) -> Result<Vec<Client>> {
    Ok(clients::table
        .filter(clients::owner_user_id.eq(owner_user_id))
        .filter(clients::kind.eq(ClientKind::Developer.as_str()))
        .filter(clients::deleted_at.is_null())
        .order(clients::created_at.desc())
        .select(Client::as_select())
        .load(conn)?)
}

/// A new secret for a confidential client; the old one stops at once, on
/// every node (the cache entry is dropped here and, by a revocation event, on
/// the others).
pub fn rotate_secret(conn: &mut DbConn, cache: &ClientCache, id: &str) -> Result<(Client, String)> {
    let secret = new_secret();
    let client = db::write_tx(conn, |conn| {
        let Some(client) = find(conn, id)? else {
            return Err(Error::not_found(format!("no client with id {id:?}")));
        };
        if client.is_public {
            return Err(Error::conflict("a public client has no secret to rotate"));
        }
        diesel::update(clients::table.find(id))
            .set((
                clients::secret_hash.eq(crypto::sha256_hex(&secret)),
                clients::updated_at.eq(db::now()),
            ))
            .execute(conn)?;
        revocation::record(conn, &[client_event(id)])?;
        Ok(client)
    })?;
    cache.remove(id);
    Ok((client, secret))
}

/// What deleting a client did.
pub struct Deleted {
    pub client: Client,
    /// How many active authorizations were revoked.
    pub revoked: usize,
}

/// Deletes a client: in one transaction, every active authorization of it is
/// revoked (each with its security-log row in its workspace) and the client
/// is marked deleted, with the revocation events for its access tokens and
/// for the client itself; then this node's caches are corrected at once and
/// the other nodes' through the events. Data is kept: the authorizations stay
/// listed as revoked. `actor` goes into the security log.
pub fn delete(
    conn: &mut DbConn,
    clients_cache: &ClientCache,
    credentials: &CredentialCache,
    id: &str,
    actor: &str,
    address: Option<&str>,
) -> Result<Deleted> {
    let (client, revoked, events) = db::write_tx(conn, |conn| {
        let Some(client) = find(conn, id)? else {
            return Err(Error::not_found(format!("no client with id {id:?}")));
        };
        let now = db::now();
        diesel::update(clients::table.find(id))
            .set((
                clients::deleted_at.eq(now),
                clients::updated_at.eq(now),
                clients::secret_hash.eq(None::<String>),
                clients::registration_token_hash.eq(None::<String>),
            ))
            .execute(conn)?;
        let active: Vec<(String, String)> = authz::table
            .filter(authz::client_id.eq(id))
            .filter(authz::revoked_at.is_null())
            .select((authz::id, authz::workspace_id))
            .load(conn)?;
        let mut events = Vec::new();
        let by = crate::accounts::audit::Actor {
            id: actor,
            client_address: address,
        };
        for (authorization_id, workspace_id) in &active {
            let action = "app.revoked_client_deleted";
            let ended =
                authorizations::revoke_in_tx(conn, authorization_id, workspace_id, action, by);
            events.extend(ended?);
        }
        diesel::delete(consent_requests::table.filter(consent_requests::client_id.eq(id)))
            .execute(conn)?;
        let client_event = client_event(id);
        revocation::record(conn, std::slice::from_ref(&client_event))?;
        events.push(client_event);
        Ok((client, active.len(), events))
    })?;
    crate::metrics::METRICS
        .revocations
        .with_label_values(&["authorization"])
        .inc_by(revoked as u64);
    clients_cache.remove(id);
    credentials.apply(&events);
    Ok(Deleted { client, revoked })
}

fn client_event(id: &str) -> Event {
    Event {
        kind: EventKind::Client,
        subject: id.to_string(),
        expires_at: db::now() + 3600,
    }
}

/// The client ids that revocation events say changed (a rotated secret, a
/// deleted client): the node drops them from its caches.
pub fn changed_clients(events: &[Event]) -> impl Iterator<Item = &str> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::Client)
        .map(|e| e.subject.as_str())
}

/// How long a self-registered client that nobody authorized is kept.
pub const UNUSED_SELF_REGISTERED_TTL: i64 = 30 * 24 * 3600;

/// Housekeeping: removes self-registered clients (RFC 7591 and metadata
/// documents) older than 30 days that were never authorized, and deleted
/// clients nothing refers to any more (but a deleted metadata-document
/// client, which blocks its URL). Returns how many rows went.
pub fn remove_unused(conn: &mut DbConn, now: i64) -> Result<usize> {
    let referenced = authz::table.select(authz::client_id);
    let stale: Vec<String> = clients::table
        .filter(
            clients::kind
                .eq_any([
                    ClientKind::Dynamic.as_str(),
                    ClientKind::MetadataDocument.as_str(),
                ])
                .and(clients::created_at.lt(now - UNUSED_SELF_REGISTERED_TTL))
                .and(clients::deleted_at.is_null())
                // A deleted metadata-document client stays, as the operator's
                // block on its URL.
                .or(clients::deleted_at
                    .is_not_null()
                    .and(clients::kind.ne(ClientKind::MetadataDocument.as_str()))),
        )
        .filter(clients::id.ne_all(referenced))
        .select(clients::id)
        .limit(500)
        .load(conn)?;
    if stale.is_empty() {
        return Ok(0);
    }
    db::write_tx(conn, |conn| {
        diesel::delete(consent_requests::table.filter(consent_requests::client_id.eq_any(&stale)))
            .execute(conn)?;
        // Checked again inside the transaction: an approval may have just
        // made an authorization.
        let referenced = authz::table.select(authz::client_id);
        Ok::<_, Error>(
            diesel::delete(
                clients::table
                    .filter(clients::id.eq_any(&stale))
                    .filter(clients::id.ne_all(referenced)),
            )
            .execute(conn)?,
        )
    })
}

/// The id of a client named `name` (with `redirect_uri` among its redirect
/// URIs, when given): how the demo finds the client it seeded.
pub fn find_id_by_name(
    conn: &mut DbConn,
    name: &str,
    redirect_uri: Option<&str>,
) -> Result<Option<String>> {
    let mut query = clients::table
        .filter(clients::name.eq(name))
        .select(clients::id)
        .into_boxed();
    if let Some(uri) = redirect_uri {
        query = query.filter(clients::redirect_uris.like(format!("%{uri}%")));
    }
    Ok(query.first::<String>(conn).optional()?)
}

/// The names of the clients among `ids`, for the security log.
pub fn names_of(conn: &mut DbConn, ids: &[String]) -> Result<HashMap<String, String>> {
    let named = clients::table.filter(clients::id.eq_any(ids));
    Ok(db::id_map(
        conn,
        named.select((clients::id, clients::name)),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_match_and_loopback_ports() {
        assert!(redirect_matches(
            "https://app.example/cb",
            "https://app.example/cb"
        ));
        assert!(!redirect_matches(
            "https://app.example/cb",
            "https://app.example/cb/"
        ));
        assert!(!redirect_matches(
            "https://app.example/cb",
            "https://app.example/cb?x=1"
        ));
        assert!(!redirect_matches(
            "https://app.example/cb",
            "https://app.example:444/cb"
        ));
        assert!(redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:53123/cb"
        ));
        assert!(redirect_matches(
            "http://127.0.0.1:8000/cb",
            "http://127.0.0.1:9/cb"
        ));
        assert!(redirect_matches("http://[::1]/cb", "http://[::1]:7000/cb"));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:99999/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:80/cbx"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1.evil.example/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:80@evil.example/cb"
        ));
        assert!(!redirect_matches(
            "http://localhost/cb",
            "http://localhost:8080/cb"
        ));
    }

    #[test]
    fn registration_rules() {
        assert!(validate_redirect_uri("https://app.example/cb").is_ok());
        assert!(validate_redirect_uri("http://127.0.0.1/cb").is_ok());
        assert!(validate_redirect_uri("http://[::1]:3000/cb").is_ok());
        // RFC 8252 §8.3.
        assert!(validate_redirect_uri("http://localhost:3000/cb").is_err());
        assert!(validate_redirect_uri("com.example.app:/cb").is_ok());
        assert!(validate_redirect_uri("http://app.example/cb").is_err());
        assert!(validate_redirect_uri("https://app.example/cb#x").is_err());
        assert!(validate_redirect_uri("not a url").is_err());
        assert!(validate_redirect_uri("javascript:alert(1)").is_err());
        assert!(validate_redirect_uri("https://u:p@app.example/cb").is_err());
    }
}

/// Clients by id, in memory, so that client authentication on the token,
/// revocation and introspection endpoints needs no database read. Bounded:
/// beyond `MAX_CACHED` entries the map is emptied and refilled from the
/// database. An entry is dropped when its client changes or is deleted (the
/// revocation events), all of them when the node missed events (a gap in the
/// feed), and each is read from the database again after `max_age` (the
/// credentials' maximum age, `KEYGATE_CREDENTIAL_CACHE_SECS`), events or not.
pub struct ClientCache {
    map: std::sync::RwLock<std::collections::HashMap<String, CachedClient>>,
    max_age: std::time::Duration,
}

struct CachedClient {
    client: std::sync::Arc<Client>,
    read_at: std::time::Instant,
}

const MAX_CACHED: usize = 100_000;

impl Default for ClientCache {
    /// With the default maximum age of credentials (60 s).
    fn default() -> ClientCache {
        ClientCache::new(std::time::Duration::from_secs(60))
    }
}

impl ClientCache {
    pub fn new(max_age: std::time::Duration) -> ClientCache {
        ClientCache {
            map: Default::default(),
            max_age,
        }
    }

    pub fn get(&self, id: &str) -> Option<std::sync::Arc<Client>> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .filter(|c| c.read_at.elapsed() < self.max_age)
            .map(|c| c.client.clone())
    }

    pub fn put(&self, client: &Client) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_CACHED {
            map.clear();
        }
        map.insert(
            client.id.clone(),
            CachedClient {
                client: std::sync::Arc::new(client.clone()),
                read_at: std::time::Instant::now(),
            },
        );
    }

    pub fn remove(&self, id: &str) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Forgets every client (the revocation feed had a gap or was stale):
    /// each is read from the database again when next used.
    pub fn clear(&self) {
        self.map.write().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Drops the entries too old to serve.
    pub fn prune(&self) {
        let max_age = self.max_age;
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, c| c.read_at.elapsed() < max_age);
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;
    use std::time::Duration;

    fn client(id: &str) -> Client {
        Client {
            id: id.to_string(),
            name: "App".to_string(),
            secret_hash: Some(crypto::sha256_hex("kgs_secret")),
            is_public: false,
            redirect_uris: "[]".to_string(),
            created_at: 0,
            kind: "admin".to_string(),
            owner_user_id: None,
            metadata: None,
            registration_token_hash: None,
            token_endpoint_auth_method: "client_secret_basic".to_string(),
            grant_types: DEFAULT_GRANTS.to_string(),
            updated_at: 0,
            deleted_at: None,
        }
    }

    #[test]
    fn entries_have_a_maximum_age_and_clear_forgets_them() {
        let cache = ClientCache::new(Duration::from_millis(50));
        cache.put(&client("a"));
        cache.put(&client("b"));
        assert!(cache.get("a").is_some());
        cache.clear();
        assert!(cache.get("a").is_none() && cache.get("b").is_none());
        cache.put(&client("a"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get("a").is_none(), "served past its maximum age");
        cache.prune();
        assert!(cache.map.read().unwrap().is_empty());
    }
}
