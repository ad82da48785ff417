//! `private_key_jwt` (RFC 7523 §2.2, RFC 7521 §4.2): a client proves itself
//! with a JWT signed by one of its keys (its JWK Set given at registration,
//! or published at its `jwks_uri`). The HTTP layer fetches the keys before
//! the request's blocking work starts ([`AssertionKeys`]); this module
//! checks the assertion: the algorithm and key (`credentials::jose`), `iss` =
//! `sub` = the client, `aud` this issuer or its token endpoint, `exp` in the
//! future and at most [`MAX_LIFETIME`] ahead, and `jti` used once on every
//! node (`credentials::replay`). Every failure is `invalid_client`.

use super::clients::Client;
use super::error::OAuthError;
use super::{Issuer, Params};
use crate::credentials::jose::{self, Unverified};
use crate::credentials::replay;
use crate::db::{self, DbConn};
use jsonwebtoken::jwk::JwkSet;
use std::sync::Arc;

/// RFC 7523 §2.2's `client_assertion_type`.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The furthest ahead an assertion's `exp` may be.
pub const MAX_LIFETIME: i64 = 3600;

/// The leeway for clocks that disagree, on `iat` and `nbf`.
const LEEWAY: i64 = 60;

/// The longest `jti` kept.
const MAX_JTI: usize = 256;

/// The keys of the client an assertion names, obtained before the blocking
/// work (fetched, or from the registration).
#[derive(Clone, Debug)]
pub struct AssertionKeys {
    pub client_id: String,
    pub set: Arc<JwkSet>,
}

/// Where a client's keys are.
pub enum KeySource {
    Inline(JwkSet),
    Url(String),
}

/// The assertion a request carries (`client_assertion_type` and
/// `client_assertion`, both or neither).
pub fn presented(params: &Params) -> Result<Option<&str>, OAuthError> {
    match (
        params.get("client_assertion_type")?,
        params.get("client_assertion")?,
    ) {
        (None, None) => Ok(None),
        (Some(ASSERTION_TYPE), Some(a)) => Ok(Some(a)),
        (Some(ASSERTION_TYPE), None) => Err(OAuthError::invalid_request(
            "client_assertion is required with client_assertion_type",
        )),
        (Some(other), _) => Err(OAuthError::invalid_client(format!(
            "client_assertion_type {other:?} is not supported; use {ASSERTION_TYPE}"
        ))),
        (None, Some(_)) => Err(OAuthError::invalid_request(
            "client_assertion_type is required with client_assertion",
        )),
    }
}

/// The client an assertion claims to come from (its `sub`, unverified: to
/// find its keys), and the `kid` it names.
pub fn claimed(params: &Params) -> Option<(String, Option<String>)> {
    let assertion = presented(params).ok().flatten()?;
    let token = jose::parse(assertion).ok()?;
    let sub = jose::str_claim(&token.claims, "sub")?.to_string();
    Some((sub, token.header.kid.clone()))
}

/// Where the keys of a client registered for private_key_jwt are; `None`
/// for any other client.
pub fn key_source(client: &Client) -> Option<KeySource> {
    // A metadata document keeps a jwks_uri only when it lists
    // private_key_jwt (it may list none as well).
    let document = client.kind() == super::clients::ClientKind::MetadataDocument;
    if client.token_endpoint_auth_method != "private_key_jwt" && !document {
        return None;
    }
    let metadata = client.metadata_json();
    if let Some(url) = metadata.get("jwks_uri").and_then(|v| v.as_str()) {
        return Some(KeySource::Url(url.to_string()));
    }
    let set = jose::parse_jwks(metadata.get("jwks")?).ok()?;
    Some(KeySource::Inline(set))
}

fn failed(why: impl std::fmt::Display) -> OAuthError {
    OAuthError::invalid_client(format!("client assertion refused: {why}"))
}

/// Authenticates the client of `assertion`; `Err` is `invalid_client` (or
/// `invalid_request` for a request that mixes methods).
pub fn authenticate(
    issuer: &Issuer,
    conn: &mut DbConn,
    authorization_header: Option<&str>,
    params: &Params,
    assertion: &str,
) -> Result<Client, OAuthError> {
    if authorization_header.is_some() || params.get("client_secret")?.is_some() {
        return Err(OAuthError::invalid_request(
            "use one client authentication method, not several",
        ));
    }
    let token = jose::parse(assertion).map_err(failed)?;
    let client_id = jose::str_claim(&token.claims, "sub")
        .ok_or_else(|| failed("sub is required"))?
        .to_string();
    if params.get("client_id")?.is_some_and(|id| id != client_id) {
        return Err(failed("client_id differs from the assertion's sub"));
    }
    let client = find(issuer, conn, &client_id)?;
    let keys = issuer
        .extras
        .and_then(|e| e.assertion_keys.as_ref())
        .filter(|k| k.client_id == client.id)
        .ok_or_else(|| failed("this client has no keys for private_key_jwt"))?;
    let exp = check_claims(issuer, &token, &client.id)?;
    let jwk = jose::select(&keys.set, &token)
        .ok_or_else(|| failed("no key of the client's JWK Set fits the assertion"))?;
    jose::verify(&token, jwk).map_err(failed)?;
    let jti = jose::str_claim(&token.claims, "jti").unwrap_or_default();
    if !replay::use_once(conn, replay::Kind::ClientAssertion, &client.id, jti, exp)? {
        return Err(failed("this assertion (its jti) was already used"));
    }
    Ok(client)
}

/// The client, from memory or the database.
fn find(issuer: &Issuer, conn: &mut DbConn, id: &str) -> Result<Client, OAuthError> {
    if let Some(c) = issuer.clients.get(id) {
        return Ok((*c).clone());
    }
    let found = super::clients::find(conn, id)?.ok_or_else(|| failed("unknown client"))?;
    issuer.clients.put(&found);
    Ok(found)
}

/// RFC 7523 §3: `iss` and `sub` the client, `aud` this issuer or its token
/// endpoint, `exp` soon, `jti` present. Answers `exp`.
fn check_claims(issuer: &Issuer, token: &Unverified, client_id: &str) -> Result<i64, OAuthError> {
    let c = &token.claims;
    if jose::str_claim(c, "iss") != Some(client_id) {
        return Err(failed("iss must be the client_id"));
    }
    let base = &issuer.config.issuer;
    let token_endpoint = format!("{base}/oauth/token");
    if !jose::audience_has(c, &[base.as_str(), token_endpoint.as_str()]) {
        return Err(failed("aud must be this issuer or its token endpoint"));
    }
    let now = db::now();
    let exp = jose::int_claim(c, "exp").ok_or_else(|| failed("exp is required"))?;
    if exp <= now {
        return Err(failed("the assertion has expired"));
    }
    if exp > now + MAX_LIFETIME {
        return Err(failed("exp is more than 60 minutes ahead"));
    }
    if jose::int_claim(c, "nbf").is_some_and(|nbf| nbf > now + LEEWAY) {
        return Err(failed("the assertion is not valid yet"));
    }
    if jose::int_claim(c, "iat").is_some_and(|iat| iat > now + LEEWAY) {
        return Err(failed("iat is in the future"));
    }
    match jose::str_claim(c, "jti") {
        Some(j) if !j.is_empty() && j.len() <= MAX_JTI => Ok(exp),
        _ => Err(failed("jti is required")),
    }
}
