//! `grant_type=authorization_code`: RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.6).

#[allow(unused_imports)]
use super::*;

/// `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6).
pub fn authorization_code(
    conn: &mut DbConn,
    config: &Config,
    keys: &KeyRing,
    client: &Client,
    params: &Params,
) -> GrantResult {
    let code = required(params, "code")?;
    let redirect_uri = required(params, "redirect_uri")?;
    // PKCE (RFC 7636 §4.5) is required of every client.
    let verifier = required(params, "code_verifier")?;
    crate::oauth::check_resource(params, &config.resource()).map_err(plain)?;

    let code_hash = crypto::sha256_hex(code);
    // The authorization comes along: what a grant needs of it never changes.
    let row: Option<(CodeRow, Authorization)> = auth_codes::table
        .find(&code_hash)
        .inner_join(authz::table.on(authz::id.eq(auth_codes::authorization_id)))
        .select((CodeRow::as_select(), Authorization::as_select()))
        .first(conn)
        .optional()
        .map_err(internal)?;
    let invalid = |why: &str| plain(OAuthError::invalid_grant(why));
    let Some((row, authorization)) = row else {
        return Err(invalid("the authorization code is invalid"));
    };
    if row.client_id != client.id {
        return Err(invalid(
            "the authorization code was issued to another client",
        ));
    }
    if row.used_at.is_some() {
        return Err(replayed(
            conn,
            &row.authorization_id,
            "authorization code",
            authorizations::Cause::CodeReplay,
        ));
    }
    if row.expires_at < db::now() {
        return Err(invalid("the authorization code has expired"));
    }
    if row.redirect_uri != redirect_uri {
        return Err(invalid(
            "redirect_uri does not match the authorization request",
        ));
    }
    if !engine::verify(&row.code_challenge, verifier) {
        return Err(invalid(
            "the code_verifier does not match the code_challenge",
        ));
    }
    let granted = authorization.scopes.clone();
    let prepared = prepare(config, &authorization, &granted, &granted);
    let outcome = redeem(conn, &authorization, prepared, |conn| {
        let n = diesel::update(
            auth_codes::table
                .find(&code_hash)
                .filter(auth_codes::used_at.is_null()),
        )
        .set(auth_codes::used_at.eq(db::now()))
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
            "authorization code",
            authorizations::Cause::CodeReplay,
        )),
    }
}
