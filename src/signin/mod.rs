//! Signing in through the product's identity provider: keygate as an OpenID
//! Connect relying party of one provider (`KEYGATE_OIDC_*`), the code flow
//! with PKCE S256, `state` and `nonce`.
//!
//! - [`begin`]: discovery, a new attempt kept server-side ([`pending`],
//!   bound to the browser by a cookie), and the provider's URL to go to;
//! - [`finish`]: the callback: the attempt taken once, the code exchanged,
//!   the ID token verified ([`id_token`]), the email from it or UserInfo, the
//!   person found or linked ([`person`]) and their session started.
//!
//! Everything that reaches the provider goes through [`provider`] and the one
//! outbound client; the checks are pure functions tested without HTTP.

pub mod discovery;
pub mod id_token;
pub mod pending;
pub mod person;
pub mod provider;

pub use person::Found;
pub use provider::Provider;

use crate::db::{DbConn, Pool};

/// Why a sign-in through the provider did not happen. The detail of each is
/// for the server's log; the person is told in plain words (`http::signin`).
#[derive(Debug)]
pub enum Failure {
    /// The person (or the provider for them) refused: `access_denied`.
    Denied(String),
    /// The provider answered the callback with another error, or a callback
    /// that is no answer of the provider's.
    Provider(String),
    /// No attempt has this `state` for this browser: unknown, expired,
    /// already used, or started in another browser.
    State,
    /// The provider could not be reached or its documents are not usable.
    Unreachable(String),
    /// The code exchange or the ID token failed.
    Token(String),
    /// The email matches a person (or would make one), but the provider does
    /// not say it is verified.
    UnverifiedEmail,
    /// Nobody in keygate is this account, and none is made.
    UnknownAccount,
    Disabled,
    /// This client address has too many unfinished sign-ins.
    TooMany,
    Store(crate::error::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Denied(e) | Failure::Provider(e) => {
                write!(f, "the provider answered the callback with {e}")
            }
            Failure::State => {
                f.write_str("the state is unknown, expired, used or another browser's")
            }
            Failure::Unreachable(e) => write!(f, "the provider is unreachable or unusable: {e}"),
            Failure::Token(e) => write!(f, "{e}"),
            Failure::UnverifiedEmail => {
                f.write_str("the provider does not say the email is verified")
            }
            Failure::UnknownAccount => f.write_str("no keygate person is this account"),
            Failure::Disabled => f.write_str("the person is disabled"),
            Failure::TooMany => f.write_str("too many unfinished sign-ins from this address"),
            Failure::Store(e) => write!(f, "{e}"),
        }
    }
}

/// A started sign-in: where to send the browser, and the cookie that binds
/// the attempt to it.
pub struct Begun {
    pub location: String,
    pub browser: String,
}

/// Starts a sign-in that will lead to `next` (already made safe by the
/// caller).
pub async fn begin(
    provider: &Provider,
    pool: &Pool,
    next: &str,
    client_address: &str,
) -> Result<Begun, Failure> {
    let m = provider.metadata().await.map_err(Failure::Unreachable)?;
    let (next, address) = (next.to_string(), client_address.to_string());
    let started = blocking(pool, move |conn| Ok(pending::start(conn, &next, &address)?))
        .await?
        .ok_or(Failure::TooMany)?;
    Ok(Begun {
        location: provider.authorization_url(
            &m,
            &started.state,
            &started.nonce,
            &started.pkce_verifier,
        ),
        browser: started.browser,
    })
}

/// What the provider's redirect to the callback carried, and who brought it.
pub struct Callback {
    pub state: String,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// RFC 9207's `iss`, when the provider sends it: it must be the provider.
    pub iss: Option<String>,
    /// The value of the cookie set by [`begin`].
    pub browser: String,
    pub client_address: String,
}

/// The signed-in person's session and where they go on.
pub struct Finished {
    pub session_cookie: String,
    pub next: String,
    pub user_id: String,
    pub found: Found,
}

/// Finishes a sign-in (see the module's steps).
pub async fn finish(
    provider: &Provider,
    pool: &Pool,
    session_ttl: i64,
    cb: Callback,
) -> Result<Finished, Failure> {
    let (state, browser) = (cb.state.clone(), cb.browser.clone());
    let pending = blocking(pool, move |conn| Ok(pending::take(conn, &state, &browser)?))
        .await?
        .ok_or(Failure::State)?;
    let code = code_of(provider, &cb)?;
    let m = provider.metadata().await.map_err(Failure::Unreachable)?;
    let tokens = provider
        .exchange(&m, &code, &pending.pkce_verifier)
        .await
        .map_err(Failure::Token)?;
    let verified = verified_token(provider, &m, &tokens.id_token, &pending.nonce).await?;
    let (email, email_verified) = email_of(provider, &m, &verified, tokens.access_token).await?;
    let s = &provider.settings;
    let (issuer, create_people, address) = (s.issuer.clone(), s.create_people, cb.client_address);
    let signed_in = blocking(pool, move |conn| {
        let claimed = person::Claimed {
            issuer: &issuer,
            subject: &verified.subject,
            email: email.as_deref(),
            email_verified,
        };
        person::sign_in(conn, &claimed, create_people, session_ttl, &address)
    })
    .await?;
    Ok(Finished {
        session_cookie: signed_in.session_cookie,
        next: pending.next,
        user_id: signed_in.user.id,
        found: signed_in.found,
    })
}

/// The callback's code, unless it came from another issuer (RFC 9207) or
/// carries the provider's error.
fn code_of(provider: &Provider, cb: &Callback) -> Result<String, Failure> {
    if let Some(iss) = cb.iss.as_ref().filter(|i| **i != provider.settings.issuer) {
        return Err(Failure::Provider(format!(
            "a callback from another issuer ({iss:?}, RFC 9207)"
        )));
    }
    if let Some(e) = &cb.error {
        let detail = format!("{e} {}", cb.error_description.as_deref().unwrap_or(""));
        return Err(match e.as_str() {
            "access_denied" => Failure::Denied(detail),
            _ => Failure::Provider(detail),
        });
    }
    cb.code
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Failure::Provider("a callback with neither code nor error".into()))
}

/// The ID token verified against the provider's keys (fetched again once for
/// an unknown `kid`).
async fn verified_token(
    provider: &Provider,
    m: &discovery::Metadata,
    token: &str,
    nonce: &str,
) -> Result<id_token::Verified, Failure> {
    let bad = |e: id_token::TokenError| Failure::Token(e.to_string());
    let hint = id_token::key_hint(token).map_err(bad)?;
    let keys = provider
        .keys(&m.jwks_uri, hint.kid.as_deref())
        .await
        .map_err(Failure::Unreachable)?;
    let expected = id_token::Expected {
        issuer: &provider.settings.issuer,
        client_id: &provider.settings.client_id,
        nonce,
        now: crate::db::now(),
    };
    id_token::verify(token, &keys, &expected).map_err(bad)
}

/// `email` and `email_verified` from the ID token, else from UserInfo.
async fn email_of(
    provider: &Provider,
    m: &discovery::Metadata,
    v: &id_token::Verified,
    access_token: Option<String>,
) -> Result<(Option<String>, bool), Failure> {
    if let (Some(email), Some(verified)) = (&v.email, v.email_verified) {
        return Ok((Some(email.clone()), verified));
    }
    let Some(at) = access_token else {
        return Ok((v.email.clone(), v.email_verified.unwrap_or(false)));
    };
    let info = provider
        .userinfo(m, &at, &v.subject)
        .await
        .map_err(Failure::Token)?;
    // The pair comes from one place: UserInfo when it names an email.
    if info.email.is_some() {
        return Ok((info.email, info.email_verified.unwrap_or(false)));
    }
    Ok((v.email.clone(), v.email_verified.unwrap_or(false)))
}

/// Runs database work off the async workers.
async fn blocking<T, F>(pool: &Pool, f: F) -> Result<T, Failure>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn) -> Result<T, Failure> + Send + 'static,
{
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().map_err(crate::error::Error::from)?;
        f(&mut conn)
    })
    .await
    .unwrap_or_else(|_| {
        Err(Failure::Store(crate::error::Error::internal(
            "a database task failed",
        )))
    })
}
