//! A protected resource's own credentials at the issuer (CONTRACT.md,
//! "Protected resources and gateways"): they authenticate at the
//! introspection endpoint, where they see every live API key and the access
//! tokens issued for that resource, and obtain no tokens.
//!
//! Introspection by a resource is served by the `/v1` bearer check's own
//! machinery (`credentials::bearer`: the same cache, the same revocation
//! bound), and counts as a use of the credential, as a `/v1` request does.

use super::client_auth::basic_credentials;
use super::error::OAuthError;
use super::introspect::Introspection;
use super::{Issuer, Params};
use crate::credentials::bearer::{self, Lookup, Principal};
use crate::db::DbConn;
use crate::resources::registry::Snapshot;
use crate::resources::{self, Resource};
use std::sync::Arc;

/// The client id presented (Basic header, else the form), when it is a
/// resource's.
fn resource_client_id(header: Option<&str>, params: &Params) -> Option<String> {
    let id = match header {
        Some(h) => basic_credentials(h).map(|(id, _)| id),
        None => params.get("client_id").ok().flatten().map(str::to_string),
    }?;
    resources::is_client_id(&id).then_some(id)
}

/// RFC 6749 §2.3.1 with a resource's credentials: `client_secret_basic` or
/// `client_secret_post`, one of them.
fn authenticate_in(
    snapshot: &Snapshot,
    header: Option<&str>,
    params: &Params,
) -> Result<Arc<Resource>, OAuthError> {
    let failed = || OAuthError::invalid_client("client authentication failed");
    let (id, secret) = match header {
        Some(h) => {
            let (id, secret) = basic_credentials(h).ok_or_else(failed)?;
            if params.get("client_secret")?.is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not several",
                ));
            }
            (id, secret)
        }
        None => {
            let id = params.get("client_id")?.ok_or_else(failed)?;
            let secret = params.get("client_secret")?.ok_or_else(failed)?;
            (id.to_string(), secret.to_string())
        }
    };
    match snapshot.by_client_id(&id) {
        Some(r) if r.secret_matches(&secret) => Ok(r.clone()),
        _ => Err(failed()),
    }
}

/// `Some` when the caller presented a resource's client id: the resource,
/// if its credentials are good (`invalid_client` otherwise).
pub fn authenticate(
    issuer: &Issuer,
    conn: &mut DbConn,
    header: Option<&str>,
    params: &Params,
) -> Option<Result<Arc<Resource>, OAuthError>> {
    resource_client_id(header, params)?;
    Some(
        issuer
            .resources
            .current(conn)
            .map_err(OAuthError::from)
            .and_then(|s| authenticate_in(&s, header, params)),
    )
}

/// RFC 7662 §2.2 for `resource`: its access tokens and every API key.
fn describe(resource: &Resource, principal: &Principal) -> Introspection {
    match principal {
        Principal::ApiKey(k) => Introspection {
            active: true,
            scope: Some(k.scopes.join(" ")),
            exp: k.expires_at,
            token_type: Some("api_key"),
            workspace_id: Some(k.workspace_id.clone()),
            key_id: Some(k.id.clone()),
            ..Introspection::inactive()
        },
        Principal::AccessToken(t) if principal.serves(&resource.identifier) => Introspection {
            active: true,
            scope: Some(t.scopes.join(" ")),
            client_id: Some(t.client_id.clone()),
            sub: Some(t.sub.clone()),
            exp: Some(t.exp),
            iat: Some(t.iat),
            aud: Some(t.aud.clone()),
            jti: Some(t.jti.clone()),
            token_type: Some("access_token"),
            workspace_id: Some(t.workspace_id.clone()),
            // DPoP (RFC 9449 §6.2): a bound token's key, which the
            // resource checks the request's proof against.
            cnf: (t.jkt.clone()).map(|jkt| crate::credentials::signing_keys::Confirmation { jkt }),
            ..Introspection::inactive()
        },
        Principal::AccessToken(_) => Introspection::inactive(),
    }
}

/// What a resource learns of `token`, once authenticated; a use of an active
/// credential is counted.
fn answer(issuer: &Issuer, resource: &Resource, principal: Option<Principal>) -> Introspection {
    let Some(p) = principal else {
        return Introspection::inactive();
    };
    let v = describe(resource, &p);
    if v.active {
        let mut v = v;
        v.iss = Some(issuer.config.issuer.clone());
        bearer::record_use(issuer.credentials, &p);
        return v;
    }
    v
}

/// The steady state, from memory alone: the resources cached and the
/// credential cached (or certainly invalid). `None`: not a resource's
/// credentials, or the database must be asked.
pub fn introspect_from_memory(
    issuer: &Issuer,
    header: Option<&str>,
    params: &Params,
) -> Option<Result<Introspection, OAuthError>> {
    resource_client_id(header, params)?;
    let snapshot = issuer.resources.cached()?;
    let resource = match authenticate_in(&snapshot, header, params) {
        Ok(r) => r,
        Err(e) => return Some(Err(e)),
    };
    let token = params.get("token").ok().flatten()?;
    match bearer::check_cached(issuer.credentials, token) {
        Lookup::Found(p) => Some(Ok(answer(issuer, &resource, Some(p)))),
        Lookup::Invalid => Some(Ok(Introspection::inactive())),
        Lookup::Miss | Lookup::Unavailable => None,
    }
}

/// Introspection by a resource (RFC 7662 §2.1); `None`: not a resource's
/// credentials. A stale feed sends every credential to the database, the
/// authority.
pub fn introspect(
    issuer: &Issuer,
    conn: &mut DbConn,
    header: Option<&str>,
    params: &Params,
) -> Option<Result<Introspection, OAuthError>> {
    let resource = match authenticate(issuer, conn, header, params)? {
        Ok(r) => r,
        Err(e) => return Some(Err(e)),
    };
    Some((|| {
        let token = params
            .get("token")?
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        let principal = match bearer::check_cached(issuer.credentials, token) {
            Lookup::Found(p) => Some(p),
            Lookup::Invalid => None,
            Lookup::Miss | Lookup::Unavailable => {
                bearer::check_stored(issuer.credentials, conn, token)?
            }
        };
        Ok(answer(issuer, &resource, principal))
    })())
}
