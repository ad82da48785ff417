//! `grant_type=authorization_code`: RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.6).

#[allow(unused_imports)]
use super::*;

/// `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6).
pub fn authorization_code(conn: &mut DbConn, cx: &Grant, params: &Params) -> GrantResult {
    let code = required(params, "code")?;
    let redirect_uri = required(params, "redirect_uri")?;
    // PKCE (RFC 7636 §4.5) is required of every client.
    let verifier = required(params, "code_verifier")?;

    let code_hash = crypto::sha256_hex(code);
    let (row, authorization) = find_spendable::<CodeRow>(conn, cx.client, &code_hash)?;
    same_resource(params, cx.config, &authorization)?;
    let invalid = |why: &str| plain(OAuthError::invalid_grant(why));
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
    let refresh_scopes = cx
        .client
        .allows_grant("refresh_token")
        .then_some(granted.as_str());
    let prepared = prepare(cx.config, &authorization, refresh_scopes, &granted);
    spend::<CodeRow>(conn, cx, &authorization, &code_hash, prepared)
}
