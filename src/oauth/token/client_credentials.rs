//! `grant_type=client_credentials` (RFC 6749 §4.4): a service client gets a
//! token for its workspace, under its authorization there, with no person
//! present and no refresh token.

#[allow(unused_imports)]
use super::*;
use crate::oauth::service_clients;

/// RFC 6749 §4.4.2: the scopes asked for within those registered (none
/// asked: all of them); `sub` is the client itself.
pub fn client_credentials(conn: &mut DbConn, cx: &Grant, params: &Params) -> GrantResult {
    if !cx.client.allows_grant(service_clients::GRANT) {
        return Err(plain(OAuthError::unauthorized_client(
            "this client may not use the client_credentials grant",
        )));
    }
    let named = crate::oauth::named_resource(params, &cx.config.resource()).map_err(plain)?;
    let resource = machine_resource(conn, cx.config, named)?;
    let requested = params.get("scope").map_err(plain)?;
    let Some(authorization) =
        service_clients::active_authorization(conn, &cx.client.id).map_err(internal)?
    else {
        return Err(plain(OAuthError::unauthorized_client(
            "this service's authorization in its workspace has been revoked",
        )));
    };
    let access_scopes = within(&authorization.scopes, requested).map_err(plain)?;
    // The token's audience: the resource named (RFC 8707), else `/v1`.
    let for_token = Authorization {
        resource,
        ..authorization.clone()
    };
    let mut prepared = prepare(cx.config, &for_token, None, &access_scopes);
    prepared.claims.sub = cx.client.id.clone();
    issue_standing(conn, cx, &authorization, prepared)
}

/// The scopes of a token: those asked for, each within `granted` (else
/// `invalid_scope`); none asked: all of `granted`.
pub(super) fn within(granted: &str, requested: Option<&str>) -> Result<String, OAuthError> {
    let Some(requested) = requested else {
        return Ok(granted.to_string());
    };
    let wanted = scopes::parse(Some(requested))?;
    let granted = scopes::split(granted);
    if let Some(extra) = wanted.iter().find(|w| !granted.iter().any(|g| g == *w)) {
        return Err(OAuthError::invalid_scope(format!(
            "scope {extra:?} is not among the scopes granted here"
        )));
    }
    Ok(scopes::join(&wanted))
}

/// Issues a token under a standing authorization (nothing is spent): the
/// authorization must still be active and its approver still manage the
/// workspace, as for every grant.
pub(super) fn issue_standing(
    conn: &mut DbConn,
    cx: &Grant,
    authorization: &Authorization,
    prepared: Prepared,
) -> GrantResult {
    let prepared = bind(prepared, cx);
    let outcome = redeem(conn, cx.writes, authorization.clone(), prepared, None).map_err(plain)?;
    match outcome {
        Redeemed::Issued(p) => Ok(p.issued(cx.config)),
        Redeemed::Refused(e) => Err(plain(e)),
        Redeemed::ApproverGone => Err(approver_gone(conn, &authorization.id)),
        Redeemed::Replayed => Err(plain(OAuthError::invalid_grant("already used"))),
    }
}
