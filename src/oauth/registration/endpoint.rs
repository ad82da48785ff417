//! The registration endpoint: RFC 7591 §3 (register) and RFC 7592 §2 (read and
//! delete with the registration access token). The wire shapes are built
//! here; `crate::http::registration` only maps them onto HTTP.

use super::{metadata, ClientMetadataRequest, Offered, RegistrationError};
use crate::credentials::cache::CredentialCache;
use crate::crypto;
use crate::db::DbConn;
use crate::error::Error;
use crate::oauth::clients::{self, Client, ClientCache, ClientKind, NewClient};
use serde_json::{json, Value};

/// Why a request to the registration endpoint failed.
#[derive(Debug)]
pub enum Failure {
    /// RFC 7591 §3.2.2: `400` with `invalid_redirect_uri` or
    /// `invalid_client_metadata`.
    Invalid(RegistrationError),
    /// RFC 7592 §2: a missing or wrong registration access token, or an
    /// unknown client; `401`, the same for all so existence is not revealed.
    Unauthorized,
    /// The request body is over the endpoint's size cap (`413`).
    TooLarge(String),
    /// Storage failed.
    Internal(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Internal(e)
    }
}

/// `{issuer}/oauth/register/{client_id}` (RFC 7592 §3's
/// `registration_client_uri`).
pub fn registration_client_uri(issuer: &str, client_id: &str) -> String {
    format!(
        "{issuer}/oauth/register/{}",
        url::form_urlencoded::byte_serialize(client_id.as_bytes()).collect::<String>()
    )
}

/// The client information response (RFC 7591 §3.2.1, RFC 7592 §3): the
/// registered metadata plus `client_id`, `client_id_issued_at`, the secret
/// when one was just made (with `client_secret_expires_at: 0`, never
/// expires), and the RFC 7592 members.
pub fn client_information(issuer: &str, client: &Client, new: Option<&NewClient>) -> Value {
    let mut out = client.metadata_json();
    out.insert("client_id".into(), json!(client.id));
    out.insert("client_id_issued_at".into(), json!(client.created_at));
    if let Some(secret) = new.and_then(|n| n.secret.as_deref()) {
        out.insert("client_secret".into(), json!(secret));
        out.insert("client_secret_expires_at".into(), json!(0));
    }
    out.insert(
        "registration_client_uri".into(),
        json!(registration_client_uri(issuer, &client.id)),
    );
    if let Some(token) = new.and_then(|n| n.registration_access_token.as_deref()) {
        out.insert("registration_access_token".into(), json!(token));
    }
    Value::Object(out)
}

/// RFC 7591 §3.1: parses and validates the metadata, stores the client, and
/// answers with its information (`201`).
pub fn register(
    conn: &mut DbConn,
    issuer: &str,
    offered: &Offered,
    body: &[u8],
) -> Result<Value, Failure> {
    let request = ClientMetadataRequest::from_json(body).map_err(Failure::Invalid)?;
    let validated = metadata::validate(&request, offered).map_err(Failure::Invalid)?;
    let new = clients::register_dynamic(conn, &validated)?;
    log::info!(
        "registered client {} ({:?}) through RFC 7591",
        new.client.id,
        new.client.name
    );
    Ok(client_information(issuer, &new.client, Some(&new)))
}

/// The client a registration access token belongs to (RFC 7592 §2): compared
/// as SHA-256 hashes in constant time; an unknown client costs the same
/// comparison, and answers the same, as a wrong token.
fn authorized(conn: &mut DbConn, client_id: &str, token: Option<&str>) -> Result<Client, Failure> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(Failure::Unauthorized);
    };
    let presented = crypto::sha256_hex(token);
    let client = clients::find(conn, client_id)?.filter(|c| c.kind() == ClientKind::Dynamic);
    let stored = client
        .as_ref()
        .and_then(|c| c.registration_token_hash.clone())
        .unwrap_or_else(|| "0".repeat(presented.len()));
    match client {
        Some(c) if crypto::ct_eq(&presented, &stored) => Ok(c),
        _ => Err(Failure::Unauthorized),
    }
}

/// RFC 7592 §2.1: the current client information.
pub fn read(
    conn: &mut DbConn,
    issuer: &str,
    client_id: &str,
    token: Option<&str>,
) -> Result<Value, Failure> {
    let client = authorized(conn, client_id, token)?;
    Ok(client_information(issuer, &client, None))
}

/// RFC 7592 §2.3: deletes the registration; every authorization of the
/// client is revoked with it (`204`).
pub fn delete(
    conn: &mut DbConn,
    clients_cache: &ClientCache,
    credentials: &CredentialCache,
    client_id: &str,
    token: Option<&str>,
    address: Option<&str>,
) -> Result<(), Failure> {
    let client = authorized(conn, client_id, token)?;
    clients::delete(
        conn,
        clients_cache,
        credentials,
        &client.id,
        &client.id,
        address,
    )?;
    Ok(())
}
