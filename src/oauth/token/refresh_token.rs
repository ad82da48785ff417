//! `grant_type=refresh_token`: RFC 6749 §6, rotating, with reuse detection
//! (RFC 9700 §4.14.2).

#[allow(unused_imports)]
use super::*;

/// `grant_type=refresh_token` (RFC 6749 §6): rotates on every use; a used one
/// presented again revokes the whole authorization (RFC 9700 §4.14.2).
pub fn refresh_token(
    conn: &mut DbConn,
    config: &Config,
    keys: &KeyRing,
    client: &Client,
    params: &Params,
) -> GrantResult {
    let token = required(params, "refresh_token")?;
    let requested_scope = params.get("scope").map_err(plain)?;
    crate::oauth::check_resource(params, &config.resource()).map_err(plain)?;

    let hash = crypto::sha256_hex(token);
    // The authorization comes along: what a grant needs of it never changes.
    let row: Option<(RefreshRow, Authorization)> = refresh_tokens::table
        .find(&hash)
        .inner_join(authz::table.on(authz::id.eq(refresh_tokens::authorization_id)))
        .select((RefreshRow::as_select(), Authorization::as_select()))
        .first(conn)
        .optional()
        .map_err(internal)?;
    let invalid = |why: &str| plain(OAuthError::invalid_grant(why));
    let Some((row, authorization)) = row else {
        return Err(invalid("the refresh token is invalid"));
    };
    if row.client_id != client.id {
        return Err(invalid("the refresh token was issued to another client"));
    }
    if row.revoked_at.is_some() {
        return Err(invalid("the refresh token has been revoked"));
    }
    if row.used_at.is_some() {
        return Err(replayed(
            conn,
            &row.authorization_id,
            "refresh token",
            authorizations::Cause::RefreshReuse,
        ));
    }
    if row.expires_at < db::now() {
        return Err(invalid("the refresh token has expired"));
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
    let prepared = prepare(config, &authorization, &row.scopes, &access_scopes);
    let outcome = redeem(conn, &authorization, prepared, |conn| {
        let n = diesel::update(
            refresh_tokens::table
                .find(&hash)
                .filter(refresh_tokens::used_at.is_null())
                .filter(refresh_tokens::revoked_at.is_null()),
        )
        .set(refresh_tokens::used_at.eq(db::now()))
        .execute(conn)?;
        Ok(n == 1)
    })
    .map_err(plain)?;
    match outcome {
        Redeemed::Issued(p) => p.finish(config, keys).map_err(plain),
        Redeemed::Refused(e) => Err(plain(e)),
        Redeemed::ApproverGone => Err(approver_gone(conn, &authorization.id)),
        Redeemed::Replayed => Err(replayed(
            conn,
            &row.authorization_id,
            "refresh token",
            authorizations::Cause::RefreshReuse,
        )),
    }
}
