//! What the token, revocation and introspection endpoints prepare before
//! their blocking work starts: the keys of a client that authenticates with
//! an assertion (`private_key_jwt`), fetched through the outbound client when
//! the client publishes them at a URL; and, at the token endpoint, the key of
//! a DPoP proof.

use super::{with_conn, Svc};
use crate::credentials::dpop;
use crate::oauth::client_assertion::{self, AssertionKeys, KeySource};
use crate::oauth::error::OAuthError;
use crate::oauth::{Extras, Params};
use actix_web::HttpRequest;
use std::sync::Arc;

/// The extras of a request; `None` when it needs none. `dpop_url`: the URL
/// a DPoP proof must name (the token endpoint), where proofs are read.
pub(super) async fn extras(
    svc: &Svc,
    req: &HttpRequest,
    params: &Params,
    dpop_url: Option<&str>,
) -> Result<Option<Extras>, OAuthError> {
    let mut extras = Extras::default();
    if let Some(url) = dpop_url {
        extras.dpop = token_endpoint_proof(&svc.credentials.proof_keys, req, url)?;
    }
    if let Some((client_id, kid)) = client_assertion::claimed(params) {
        extras.assertion_keys = assertion_keys(svc, &client_id, kid.as_deref()).await?;
    }
    if let Some((issuer, kid)) = crate::oauth::token::jwt_bearer::claimed_issuer(params) {
        extras.idp_keys = idp_keys(svc, issuer, kid).await?;
    }
    let needed =
        extras.dpop.is_some() || extras.assertion_keys.is_some() || !extras.idp_keys.is_empty();
    Ok(needed.then_some(extras))
}

/// The key sets of every workspace's trust of `issuer` that could be
/// fetched (a set that could not be is left out: the grant then finds no key).
async fn idp_keys(
    svc: &Svc,
    issuer: String,
    kid: Option<String>,
) -> Result<Vec<(String, Arc<jsonwebtoken::jwk::JwkSet>)>, OAuthError> {
    let rows = with_conn(svc, move |_, conn| {
        crate::oauth::trust::trusting(conn, &issuer)
    })
    .await?;
    let mut urls: Vec<String> = rows.into_iter().map(|r| r.jwks_uri).collect();
    urls.sort();
    urls.dedup();
    let mut sets = Vec::new();
    for url in urls.into_iter().take(5) {
        if let Ok(set) = svc.jwks.get(&url, kid.as_deref()).await {
            sets.push((url, set));
        }
    }
    Ok(sets)
}

/// RFC 9449 §5: the request's DPoP proof, if it sent one, checked (its `jti`
/// is recorded by the grant once the client has authenticated); a bad proof
/// (or several) is `invalid_dpop_proof`.
fn token_endpoint_proof(
    keys: &dpop::ProofKeys,
    req: &HttpRequest,
    url: &str,
) -> Result<Option<dpop::Proven>, OAuthError> {
    let mut proofs = req.headers().get_all("dpop");
    let Some(first) = proofs.next() else {
        return Ok(None);
    };
    if proofs.next().is_some() {
        return Err(OAuthError::invalid_dpop_proof("send one DPoP proof"));
    }
    let proof = first
        .to_str()
        .map_err(|_| OAuthError::invalid_dpop_proof("unreadable DPoP header"))?;
    let expected = dpop::Expected {
        htm: "POST",
        htu: url,
        access_token: None,
        jkt: None,
    };
    dpop::check_proof(keys, proof, &expected, crate::db::now())
        .map(Some)
        .map_err(OAuthError::invalid_dpop_proof)
}

/// The keys of the client an assertion names; `None` when keygate knows no
/// such client or it has no keys (authentication then fails as for any
/// unknown client).
async fn assertion_keys(
    svc: &Svc,
    client_id: &str,
    kid: Option<&str>,
) -> Result<Option<AssertionKeys>, OAuthError> {
    if client_id.len() > crate::oauth::clients::MAX_CLIENT_ID_BYTES {
        return Ok(None);
    }
    let client = match svc.clients.get(client_id) {
        Some(c) => Some((*c).clone()),
        None => {
            let id = client_id.to_string();
            with_conn(svc, move |_, conn| crate::oauth::clients::find(conn, &id)).await?
        }
    };
    let Some(client) = client else {
        return Ok(None);
    };
    let set =
        match client_assertion::key_source(&client) {
            None => return Ok(None),
            Some(KeySource::Inline(set)) => Arc::new(set),
            Some(KeySource::Url(url)) => svc.jwks.get(&url, kid).await.map_err(|e| {
                OAuthError::invalid_client(format!("client assertion refused: {e}"))
            })?,
        };
    Ok(Some(AssertionKeys {
        client_id: client.id,
        set,
    }))
}
