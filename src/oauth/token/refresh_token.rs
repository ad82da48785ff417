//! `grant_type=refresh_token`: RFC 6749 §6, rotating, with reuse detection
//! (RFC 9700 §4.14.2).

#[allow(unused_imports)]
use super::*;

/// `grant_type=refresh_token` (RFC 6749 §6): rotates on every use; a used one
/// presented again revokes the whole authorization (RFC 9700 §4.14.2).
pub fn refresh_token(conn: &mut DbConn, cx: &Grant, params: &Params) -> GrantResult {
    // RFC 6749 §5.2: a client that did not register the grant may not use it.
    if !cx.client.allows_grant("refresh_token") {
        return Err(plain(OAuthError::unauthorized_client(
            "this client did not register the refresh_token grant",
        )));
    }
    let token = required(params, "refresh_token")?;
    let requested_scope = params.get("scope").map_err(plain)?;

    let hash = crypto::sha256_hex(token);
    let (row, authorization) = find_spendable::<RefreshRow>(conn, cx.client, &hash)?;
    same_resource(params, cx.config, &authorization)?;
    // RFC 9449 §5: a bound refresh token needs a proof with its key.
    if row.jkt.is_some() && row.jkt.as_deref() != cx.dpop_jkt {
        return Err(plain(OAuthError::invalid_grant(
            "this refresh token is bound to a DPoP key: send a proof signed with it",
        )));
    }
    // RFC 6749 §6: a narrower scope may be asked for; never a wider one.
    let granted = scopes::split(&row.scopes);
    let access_scopes = match requested_scope {
        None => row.scopes.clone(),
        Some(s) => {
            let wanted = scopes::parse(Some(s)).map_err(|e| plain(e.into()))?;
            if let Some(extra) = wanted.iter().find(|w| !granted.iter().any(|g| g == *w)) {
                return Err(plain(OAuthError::invalid_scope(format!(
                    "scope {extra:?} was not granted to this refresh token"
                ))));
            }
            scopes::join(&wanted)
        }
    };
    let prepared = prepare(cx.config, &authorization, Some(&row.scopes), &access_scopes);
    spend::<RefreshRow>(conn, cx, &authorization, &hash, prepared)
}
