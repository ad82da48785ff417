//! Client authentication at the token, revocation and introspection endpoints
//! (RFC 6749 §2.3): `client_secret_basic`, `client_secret_post`, and `none` for
//! public clients, which identify themselves with `client_id`.

use super::clients::{self, Client, ClientCache};
use super::error::OAuthError;
use super::Params;
use crate::db::DbConn;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Allow {
    /// Public clients may identify themselves with `client_id` alone.
    PublicToo,
    /// Confidential clients only (introspection).
    ConfidentialOnly,
}

/// The credentials of an HTTP Basic header. RFC 6749 §2.3.1: id and secret are
/// form-urlencoded before base64, so both are decoded after it.
pub(crate) fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(rest.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // One form-urlencoded value each: `+` is a space, then `%XX` escapes.
    let unescape = |s: &str| -> Option<String> {
        let spaced = s.replace('+', " ");
        let value = percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .ok()?;
        Some(value.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

/// Who is calling, looking the client up in the database.
pub fn authenticate(
    conn: &mut DbConn,
    authorization_header: Option<&str>,
    params: &Params,
    allow: Allow,
) -> Result<Client, OAuthError> {
    authenticate_with(
        |id| Ok(clients::find(conn, id)?),
        authorization_header,
        params,
        allow,
    )
}

/// Who is calling, with the client found by `find`. `Err` carries
/// `invalid_client` (401) or `invalid_request`.
pub fn authenticate_with(
    find: impl FnOnce(&str) -> Result<Option<Client>, OAuthError>,
    authorization_header: Option<&str>,
    params: &Params,
    allow: Allow,
) -> Result<Client, OAuthError> {
    let body_id = params.get("client_id")?;
    let body_secret = params.get("client_secret")?;
    let failed = || OAuthError::invalid_client("client authentication failed");

    let used = match authorization_header {
        Some(_) => "client_secret_basic",
        None => "client_secret_post",
    };
    let (client_id, secret) = match authorization_header {
        Some(h) => {
            let (id, secret) = basic_credentials(h).ok_or_else(|| {
                OAuthError::invalid_client("unsupported or malformed Authorization header")
            })?;
            if body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not several",
                ));
            }
            if body_id.is_some_and(|b| b != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the authenticated client",
                ));
            }
            (id, Some(secret))
        }
        None => match body_id {
            Some(id) => (id.to_string(), body_secret.map(str::to_string)),
            None => {
                return Err(OAuthError::invalid_client(
                    "client authentication is required",
                ))
            }
        },
    };
    let client = find(&client_id)?.ok_or_else(failed)?;
    match (client.is_public, secret) {
        (false, Some(secret)) if client.secret_matches(&secret) => registered_method(client, used),
        (false, _) => Err(failed()),
        // A public client has no secret; some libraries still send Basic with an
        // empty one, which identifies the client just as `client_id` does.
        // A document that lists private_key_jwt and not none must use it.
        (true, _) if client.token_endpoint_auth_method == "private_key_jwt" => Err(
            OAuthError::invalid_client("this client authenticates with private_key_jwt"),
        ),
        (true, None) if allow == Allow::PublicToo => Ok(client),
        (true, Some(s)) if s.is_empty() && allow == Allow::PublicToo => Ok(client),
        (true, None) => Err(OAuthError::invalid_client(
            "public clients cannot use this endpoint",
        )),
        (true, Some(_)) => Err(failed()),
    }
}

/// A client that registered itself (RFC 7591 §2 `token_endpoint_auth_method`)
/// authenticates with the method it registered and no other; the clients
/// the operator and the settings pages make may use either secret method.
fn registered_method(client: Client, used: &str) -> Result<Client, OAuthError> {
    if client.kind() == clients::ClientKind::Dynamic && client.token_endpoint_auth_method != used {
        return Err(OAuthError::invalid_client(format!(
            "this client registered token_endpoint_auth_method {}",
            client.token_endpoint_auth_method
        )));
    }
    Ok(client)
}

/// Client authentication with the client looked up in memory first, then in the
/// database (and remembered).
pub fn authenticate_with_cache(
    cache: &ClientCache,
    conn: &mut crate::db::DbConn,
    header: Option<&str>,
    params: &Params,
    allow: Allow,
) -> Result<Client, OAuthError> {
    authenticate_with(
        |id| {
            if let Some(c) = cache.get(id) {
                return Ok(Some((*c).clone()));
            }
            let found = super::clients::find(conn, id)?;
            if let Some(c) = &found {
                cache.put(c);
            }
            Ok(found)
        },
        header,
        params,
        allow,
    )
}

/// The client of a metadata document fetched for this request, brought up to
/// date in the database and this node's cache before it authenticates
/// (`none`: such clients are public). Only a client a person approved has a
/// row, and this never makes one: any other (never approved, or deleted by
/// the operator) is `invalid_client`.
pub fn document_client(
    cache: &ClientCache,
    conn: &mut crate::db::DbConn,
    document: &super::registration::cimd::ClientDocument,
) -> Result<Client, OAuthError> {
    match clients::refresh_document(conn, document) {
        Ok(Some(client)) => {
            cache.put(&client);
            Ok(client)
        }
        Ok(None) => {
            cache.remove(&document.client_id);
            Err(OAuthError::invalid_client("unknown client"))
        }
        Err(crate::error::Error::Forbidden(msg)) => {
            cache.remove(&document.client_id);
            Err(OAuthError::invalid_client(msg))
        }
        Err(e) => Err(e.into()),
    }
}

/// Client authentication from memory only; `None` when the client is not cached.
pub fn authenticate_from_memory(
    cache: &ClientCache,
    header: Option<&str>,
    params: &Params,
    allow: Allow,
) -> Option<Result<Client, OAuthError>> {
    let mut missed = false;
    let result = authenticate_with(
        |id| {
            let c = cache.get(id).map(|c| (*c).clone());
            missed = c.is_none();
            Ok(c)
        },
        header,
        params,
        allow,
    );
    (!missed).then_some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_is_form_decoded() {
        // "my%2Did:s%7Ecret" base64
        let h = format!("Basic {}", STANDARD.encode("my%2Did:s%7Ecret+x"));
        assert_eq!(
            basic_credentials(&h),
            Some(("my-id".into(), "s~cret x".into()))
        );
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
        // Each part is one value: `&` and `=` are characters of it.
        let h = format!("Basic {}", STANDARD.encode("a&b=c:x=y&z%26"));
        assert_eq!(
            basic_credentials(&h),
            Some(("a&b=c".into(), "x=y&z&".into()))
        );
        // An escape that is no UTF-8 is a malformed header.
        let h = format!("Basic {}", STANDARD.encode("id:%FF"));
        assert_eq!(basic_credentials(&h), None);
    }
}
