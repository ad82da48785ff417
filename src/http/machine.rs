//! What the token, revocation and introspection endpoints prepare before
//! their blocking work starts: the keys of a client that authenticates with
//! an assertion (`private_key_jwt`), fetched through the outbound client when
//! the client publishes them at a URL; and, at the token endpoint, the key of
//! a DPoP proof.

use super::{with_conn, Svc};
use crate::oauth::client_assertion::{self, AssertionKeys, KeySource};
use crate::oauth::error::OAuthError;
use crate::oauth::{Extras, Params};
use std::sync::Arc;

/// The extras of a request; `None` when it needs none.
pub(super) async fn extras(svc: &Svc, params: &Params) -> Result<Option<Extras>, OAuthError> {
    let Some((client_id, kid)) = client_assertion::claimed(params) else {
        return Ok(None);
    };
    let assertion_keys = assertion_keys(svc, &client_id, kid.as_deref()).await?;
    Ok(Some(Extras {
        assertion_keys,
        ..Extras::default()
    }))
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
