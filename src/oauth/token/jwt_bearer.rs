//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` (RFC 7523 §2.1)
//! with identity assertions (the identity assertion JWT authorization grant,
//! "ID-JAG", of MCP's enterprise-managed authorization): an identity provider
//! a workspace trusts vouches for one of its owners or admins, so the client
//! gets a token for that workspace with no consent screen. The token (no
//! refresh token) stands on a new authorization row, which owners see and
//! revoke like any other.

#[allow(unused_imports)]
use super::*;
use crate::accounts::audit::Actor;
use crate::credentials::change::Change;
use crate::credentials::jose::{self, Unverified};
use crate::credentials::replay;
use crate::oauth::trust::{self, TrustedIssuer};

/// The grant type.
pub const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The `typ` of an identity assertion.
pub const TYP: &str = "oauth-id-jag+jwt";

/// The leeway on `iat` for clocks that disagree.
const LEEWAY: i64 = 60;

/// The issuer an identity assertion names and its `kid` (unverified: to
/// fetch the issuer's keys before the grant runs).
pub fn claimed_issuer(params: &Params) -> Option<(String, Option<String>)> {
    if params.get("grant_type").ok().flatten() != Some(GRANT) {
        return None;
    }
    let token = jose::parse(params.get("assertion").ok().flatten()?).ok()?;
    let iss = jose::str_claim(&token.claims, "iss")?.to_string();
    Some((iss, token.header.kid.clone()))
}

fn refused(why: impl Into<String>) -> (OAuthError, Vec<Event>) {
    plain(OAuthError::invalid_grant(why))
}

/// RFC 7523 §3 and the ID-JAG draft: every check, then a new authorization
/// of the client by the person in the one workspace that trusts the issuer
/// and where the person may authorize apps, and a token under it.
pub fn jwt_bearer(conn: &mut DbConn, cx: &Grant, params: &Params) -> GrantResult {
    if cx.client.is_public || cx.client.kind() == crate::oauth::clients::ClientKind::Service {
        return Err(plain(OAuthError::unauthorized_client(
            "identity assertions are for confidential apps that act for people",
        )));
    }
    let assertion = required(params, "assertion")?;
    let named = crate::oauth::named_resource(params, &cx.config.resource()).map_err(plain)?;
    let token = jose::parse(assertion).map_err(|e| refused(e.to_string()))?;
    let checked = check_assertion(cx, &token)?;
    let trusts = trust::trusting(conn, &checked.issuer).map_err(internal)?;
    if trusts.is_empty() {
        return Err(refused(
            "the assertion's issuer is not trusted by any workspace",
        ));
    }
    verify_signature(cx, &token, &trusts)?;
    let (trusted, user_id) = person(conn, &trusts, &token)?;
    let resource = machine_resource(conn, cx.config, resource_of(named, &token)?)?;
    let scope = scopes_of(params, &token)?;
    let jti = jose::str_claim(&token.claims, "jti").unwrap_or_default();
    let fresh = replay::use_once(
        conn,
        replay::Kind::IdentityAssertion,
        &checked.issuer,
        jti,
        checked.exp,
    )
    .map_err(internal)?;
    if !fresh {
        return Err(refused("this assertion (its jti) was already used"));
    }
    let grant = (&trusted, user_id.as_str(), scope.as_str(), resource);
    let authorization = authorize(conn, cx, grant).map_err(internal)?;
    let prepared = prepare(cx.config, &authorization, None, &scope);
    client_credentials::issue_standing(conn, cx, &authorization, prepared)
}

struct Checked {
    issuer: String,
    exp: i64,
}

/// The header and claims that need no database: `typ`, `aud`, `client_id`,
/// `exp`, `iat`, `jti`, `resource`.
fn check_assertion(cx: &Grant, token: &Unverified) -> Result<Checked, (OAuthError, Vec<Event>)> {
    if !token
        .header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(TYP))
    {
        return Err(refused(format!("the assertion's typ must be {TYP}")));
    }
    let c = &token.claims;
    let issuer = jose::str_claim(c, "iss").ok_or_else(|| refused("iss is required"))?;
    if !jose::audience_has(c, &[cx.config.issuer.as_str()]) {
        return Err(refused("aud must be this issuer"));
    }
    if jose::str_claim(c, "client_id") != Some(cx.client.id.as_str()) {
        return Err(refused("the assertion was issued to another client"));
    }
    let now = db::now();
    let exp = jose::int_claim(c, "exp").ok_or_else(|| refused("exp is required"))?;
    if exp <= now {
        return Err(refused("the assertion has expired"));
    }
    if jose::int_claim(c, "iat").is_none_or(|iat| iat > now + LEEWAY) {
        return Err(refused("iat is required and must not be in the future"));
    }
    if jose::str_claim(c, "jti").is_none_or(|j| j.is_empty() || j.len() > 256) {
        return Err(refused("jti is required"));
    }
    if c.get("resource").is_some_and(|r| !r.is_string()) {
        return Err(plain(OAuthError::invalid_target(
            "the assertion's resource must be one URL",
        )));
    }
    Ok(Checked {
        issuer: issuer.to_string(),
        exp,
    })
}

/// The resource the token is for: the one the request names, else the
/// assertion's (RFC 8707, ID-JAG §4.3); both present, they must agree.
fn resource_of<'a>(
    named: Option<&'a str>,
    token: &'a Unverified,
) -> Result<Option<&'a str>, (OAuthError, Vec<Event>)> {
    let asserted = jose::str_claim(&token.claims, "resource");
    match (named, asserted) {
        (Some(n), Some(a)) if !crate::resources::identifier::same(n, a) => Err(plain(
            OAuthError::invalid_target("the request names another resource than the assertion"),
        )),
        (Some(n), _) => Ok(Some(n)),
        (None, a) => Ok(a),
    }
}

/// The signature, by a key of a set a trusting workspace named.
fn verify_signature(
    cx: &Grant,
    token: &Unverified,
    trusts: &[TrustedIssuer],
) -> Result<(), (OAuthError, Vec<Event>)> {
    let sets = cx.idp_keys;
    let verified = trusts.iter().any(|t| {
        sets.iter()
            .filter(|(url, _)| *url == t.jwks_uri)
            .filter_map(|(_, set)| jose::select(set, token))
            .any(|jwk| jose::verify(token, jwk).is_ok())
    });
    if verified {
        Ok(())
    } else {
        Err(refused(
            "the assertion's signature does not verify with the issuer's keys",
        ))
    }
}

/// The person the assertion names (linked to `iss` and `sub`, else by
/// `email`) in the one trusting workspace where they may authorize apps.
fn person(
    conn: &mut DbConn,
    trusts: &[TrustedIssuer],
    token: &Unverified,
) -> Result<(TrustedIssuer, String), (OAuthError, Vec<Event>)> {
    let c = &token.claims;
    let (iss, sub) = (
        jose::str_claim(c, "iss").unwrap_or_default(),
        jose::str_claim(c, "sub"),
    );
    let linked = match sub {
        Some(sub) => trust::linked_person(conn, iss, sub).map_err(internal)?,
        None => return Err(refused("sub is required")),
    };
    let by_email = match (linked.is_none(), jose::str_claim(c, "email")) {
        (true, Some(email)) => crate::accounts::find_user_by_email(conn, email)
            .map_err(internal)?
            .map(|u| u.id),
        _ => None,
    };
    let Some(user_id) = linked.or(by_email) else {
        return Err(refused("the assertion names no person keygate knows"));
    };
    let mut found = Vec::new();
    for t in trusts {
        let role = crate::accounts::role_in(conn, &t.workspace_id, &user_id).map_err(internal)?;
        if role.is_some_and(crate::accounts::Role::can_manage) {
            found.push(t.clone());
        }
    }
    match found.len() {
        1 => Ok((found.remove(0), user_id)),
        0 => Err(refused(
            "the person may not authorize apps in a workspace that trusts this issuer",
        )),
        _ => Err(refused(
            "the person manages several workspaces that trust this issuer",
        )),
    }
}

/// The token's scopes: the request's (none: the assertion's), within the
/// assertion's `scope`.
fn scopes_of(params: &Params, token: &Unverified) -> Result<String, (OAuthError, Vec<Event>)> {
    let granted = jose::str_claim(&token.claims, "scope").unwrap_or_default();
    let requested = params.get("scope").map_err(plain)?;
    let wanted = requested.unwrap_or(granted);
    if wanted.trim().is_empty() {
        return Err(plain(OAuthError::invalid_scope(
            "the assertion grants no scope",
        )));
    }
    let parsed = scopes::parse(Some(wanted)).map_err(|e| plain(e.into()))?;
    client_credentials::within(granted, Some(&scopes::join(&parsed))).map_err(plain)
}

/// A new authorization of the client by the person in the workspace,
/// logged as made through the identity provider.
fn authorize(
    conn: &mut DbConn,
    cx: &Grant,
    (trusted, user_id, scope, resource): (&TrustedIssuer, &str, &str, Option<String>),
) -> crate::error::Result<Authorization> {
    db::write_tx(conn, |conn| {
        let authorization = Authorization::new(
            &cx.client.id,
            (&trusted.workspace_id, user_id),
            scope,
            resource,
        )
        .record(conn)?;
        let by = Actor {
            id: user_id,
            client_address: None,
        };
        let detail = format!("via identity provider {}", trusted.issuer);
        Change::new(&authorization.id, "app.authorized", by).record(
            conn,
            &trusted.workspace_id,
            Some(&detail),
        )?;
        Ok(authorization)
    })
}
