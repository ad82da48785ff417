//! The person's pages: sign in, sign out, consent, and error pages.

use super::{client_address, html, read_body, redirect, Svc};
use crate::accounts::Workspace;
use crate::credentials::scopes;
use crate::crypto;
use crate::node::login::LoginLimits;
use crate::oauth::authorize::{self, AuthorizationRequest};
use crate::oauth::Params;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

pub(super) const SESSION_COOKIE: &str = "keygate_session";
pub(super) const LOGIN_CSRF_COOKIE: &str = "keygate_login_csrf";
/// Binds a sign-in through the identity provider to the browser that
/// started it (`signin::pending`).
pub(super) const SIGNIN_COOKIE: &str = "keygate_signin";

/// A cookie's name: with the `__Host-` prefix when the issuer is https, so
/// that a browser takes it only from this host, over TLS, for every path
/// (RFC 6265bis §4.1.3.2): no other host of the domain can set or shadow it.
pub(super) fn cookie_name(name: &'static str, secure: bool) -> &'static str {
    match (secure, name) {
        (true, SESSION_COOKIE) => "__Host-keygate_session",
        (true, LOGIN_CSRF_COOKIE) => "__Host-keygate_login_csrf",
        (true, SIGNIN_COOKIE) => "__Host-keygate_signin",
        _ => name,
    }
}

/// Whether this server's issuer is https (its cookies are `Secure`).
pub(super) fn secure_cookies(req: &HttpRequest) -> bool {
    req.app_data::<Svc>().is_some_and(|svc| svc.config.https())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/login")
            .route(web::get().to(login_page))
            .route(web::post().to(login_submit)),
    )
    .route("/logout", web::post().to(logout))
    .route(
        "/",
        web::get().to(|| async { redirect(StatusCode::FOUND, "/settings") }),
    );
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate<'a> {
    title: &'a str,
    message: &'a str,
}

pub fn error_page(status: StatusCode, message: &str) -> HttpResponse {
    let title = match status.as_u16() {
        403 => "Not allowed",
        404 => "Not found",
        413 => "Too large",
        500..=599 => "Something went wrong",
        _ => "This request cannot be completed",
    };
    let Ok(body) = (ErrorTemplate { title, message }).render() else {
        return super::render_failed();
    };
    html(status, body)
}

pub fn internal_error(e: &crate::error::Error) -> HttpResponse {
    if e.is_unavailable() {
        log::warn!("storage unavailable: {e}");
        let mut r = error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "keygate cannot reach its database right now. Try again in a moment.",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return r;
    }
    log::error!("internal error: {e}");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "An internal error occurred.",
    )
}

pub fn session_cookie(req: &HttpRequest) -> Option<String> {
    req.cookie(cookie_name(SESSION_COOKIE, secure_cookies(req)))
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty())
}

pub(super) fn cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build(cookie_name(name, secure), value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .finish()
}

pub(super) fn removal(name: &'static str, secure: bool) -> Cookie<'static> {
    let mut c = cookie(name, String::new(), secure);
    c.make_removal();
    c
}

/// Only local paths of keygate's own flows, never another origin.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control)
                && (n.starts_with("/oauth/authorize?") || n.starts_with("/settings")) =>
        {
            n.to_string()
        }
        _ => "/settings".to_string(),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginTemplate<'a> {
    csrf_token: &'a str,
    next: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    /// "Sign in with NAME" when the identity provider is configured.
    provider_name: Option<&'a str>,
    /// Whether the password form is shown (`KEYGATE_PASSWORD_LOGIN`).
    password_login: bool,
}

fn render_login(
    svc: &Svc,
    status: StatusCode,
    next: &str,
    email: &str,
    error: Option<&str>,
) -> HttpResponse {
    let csrf = crypto::random_token(24);
    let Ok(body) = LoginTemplate {
        csrf_token: &csrf,
        next,
        email,
        error,
        provider_name: svc.signin.as_ref().map(|p| p.settings.name.as_str()),
        password_login: svc.config.password_login,
    }
    .render() else {
        return crate::http::render_failed();
    };
    let mut resp = html(status, body);
    let _ = resp.add_cookie(&cookie(LOGIN_CSRF_COOKIE, csrf, svc.config.https()));
    resp
}

/// How many password hashes are checked at once: two per core keeps every
/// core busy without letting a burst of logins take unbounded memory.
static PASSWORD_CHECKS: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores * 2)
    });

#[derive(serde::Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn login_page(svc: Svc, req: HttpRequest, q: web::Query<NextQuery>) -> HttpResponse {
    let next = safe_next(q.next.as_deref());
    if let Some(c) = session_cookie(&req) {
        if let Ok(Some(_)) = super::with_conn(&svc, move |_, conn| {
            crate::accounts::sessions::resolve(conn, &c)
        })
        .await
        {
            return redirect(StatusCode::FOUND, &next);
        }
    }
    render_login(&svc, StatusCode::OK, &next, "", None)
}

pub(super) fn form_of(body: &[u8]) -> Params {
    Params::parse(body)
}

pub(super) fn field<'a>(p: &'a Params, name: &str) -> &'a str {
    p.get(name).ok().flatten().unwrap_or("")
}

/// The login form, its CSRF token checked against the login cookie.
struct LoginForm {
    next: String,
    email: String,
    password: String,
}

/// Whether a login page form's CSRF token matches the login cookie.
pub(super) fn login_csrf_ok(req: &HttpRequest, form: &Params) -> bool {
    let expected = req
        .cookie(cookie_name(LOGIN_CSRF_COOKIE, secure_cookies(req)))
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    !expected.is_empty() && crypto::ct_eq(&expected, field(form, "csrf_token"))
}

/// The login form, and whether its CSRF token matches the login cookie.
fn login_form(req: &HttpRequest, body: &[u8]) -> (LoginForm, bool) {
    let form = form_of(body);
    let csrf_ok = login_csrf_ok(req, &form);
    let login = LoginForm {
        next: safe_next(Some(field(&form, "next"))),
        email: field(&form, "email").trim().to_lowercase(),
        password: field(&form, "password").to_string(),
    };
    (login, csrf_ok)
}

/// The longest email address (RFC 5321's path limit): a longer one is
/// refused as a wrong password, before it is looked up or counted.
const MAX_EMAIL_BYTES: usize = 254;

/// The user if the password is theirs. argon2id runs with no database
/// connection held, and at most a few at a time (each takes ~19 MiB): a burst
/// of logins waits here, holding nothing that the token endpoint or /v1 need.
async fn check_login(
    svc: &Svc,
    email: String,
    password: String,
) -> Result<Option<crate::accounts::User>, crate::error::Error> {
    let user = super::with_conn(svc, move |_, conn| {
        crate::accounts::find_user_by_email(conn, &email)
    })
    .await?;
    let _permit = PASSWORD_CHECKS
        .acquire()
        .await
        .map_err(|_| crate::error::Error::internal("password checks closed"))?;
    web::block(move || crate::accounts::check_password(user, &password))
        .await
        .map_err(|_| crate::error::Error::internal("a password check failed"))
}

async fn login_submit(svc: Svc, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let Ok(body) = read_body(payload).await else {
        return error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    };
    let (form, csrf_ok) = login_form(&req, &body);
    let again = |status, why| render_login(&svc, status, &form.next, &form.email, Some(why));
    if !svc.config.password_login {
        return again(
            StatusCode::FORBIDDEN,
            "Signing in with a password is turned off here.",
        );
    }
    if !csrf_ok {
        return again(
            StatusCode::FORBIDDEN,
            "The form expired. Please sign in again.",
        );
    }
    let address = client_address(&svc, &req);
    let limits = LoginLimits::new(svc.limits.as_ref(), &form.email, &address);
    let user = match verified(&svc, &limits, &form).await {
        Ok(user) => user,
        Err(Refused::TooMany(secs)) => return too_many_logins(&svc, &form.next, &form.email, secs),
        Err(Refused::Wrong) => {
            return again(StatusCode::UNAUTHORIZED, "Incorrect email or password.")
        }
        Err(Refused::Fault(e)) => return internal_error(&e),
    };
    let started = super::with_conn(&svc, move |svc, conn| {
        crate::accounts::sessions::start(conn, &user.id, svc.config.session_ttl)
    })
    .await;
    match started {
        Ok((cookie_value, _)) => {
            limits.succeeded();
            signed_in(&svc, &form.next, cookie_value)
        }
        Err(e) => internal_error(&e),
    }
}

/// Why a login is refused.
enum Refused {
    /// The abuse limits hold it back for this many seconds.
    TooMany(u64),
    Wrong,
    Fault(crate::error::Error),
}

/// The person whose email and password the form holds, within the abuse
/// limits (`LoginLimits`): an address over its limit is refused before any
/// check, an oversized identifier before it is looked up or counted, and the
/// account's delay is waited before the password is checked.
async fn verified(
    svc: &Svc,
    limits: &LoginLimits<'_>,
    form: &LoginForm,
) -> Result<crate::accounts::User, Refused> {
    limits.before().map_err(Refused::TooMany)?;
    if form.email.len() > MAX_EMAIL_BYTES
        || form.password.len() > crate::accounts::MAX_PASSWORD_BYTES
    {
        return Err(Refused::Wrong);
    }
    let delay = limits.delay();
    if !delay.is_zero() {
        actix_web::rt::time::sleep(delay).await;
    }
    match check_login(svc, form.email.clone(), form.password.clone()).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(limits
            .failed()
            .map_or_else(Refused::TooMany, |()| Refused::Wrong)),
        Err(e) => Err(Refused::Fault(e)),
    }
}

/// The answer to a good login: the session cookie, the login's CSRF cookie
/// removed, and on to `next`.
pub(super) fn signed_in(svc: &Svc, next: &str, session: String) -> HttpResponse {
    let mut resp = redirect(StatusCode::SEE_OTHER, next);
    let secure = svc.config.https();
    let _ = resp.add_cookie(&cookie(SESSION_COOKIE, session, secure));
    let _ = resp.add_removal_cookie(&removal(LOGIN_CSRF_COOKIE, secure));
    resp
}

fn too_many_logins(svc: &Svc, next: &str, email: &str, secs: u64) -> HttpResponse {
    let mut r = render_login(
        svc,
        StatusCode::TOO_MANY_REQUESTS,
        next,
        email,
        Some("Too many failed sign-in attempts. Wait a moment and try again."),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    r
}

async fn logout(svc: Svc, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let Ok(body) = read_body(payload).await else {
        return error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    };
    let form = form_of(&body);
    let next = field(&form, "next").to_string();
    let presented = field(&form, "csrf_token").to_string();
    let Some(c) = session_cookie(&req) else {
        return redirect(StatusCode::SEE_OTHER, "/login");
    };
    let ended = super::with_conn(&svc, move |_, conn| {
        let Some((session, _)) = crate::accounts::sessions::resolve(conn, &c)? else {
            return Ok(true);
        };
        if !crypto::ct_eq(&session.csrf_token, &presented) {
            return Ok(false);
        }
        crate::accounts::sessions::end(conn, &session.id_hash)?;
        Ok(true)
    })
    .await;
    match ended {
        Ok(true) => {
            let mut resp = redirect(StatusCode::SEE_OTHER, &login_again(&next));
            let _ = resp.add_removal_cookie(&removal(SESSION_COOKIE, svc.config.https()));
            resp
        }
        Ok(false) => error_page(
            StatusCode::FORBIDDEN,
            "The sign-out form expired. Reload the page and try again.",
        ),
        Err(e) => internal_error(&e),
    }
}

/// Where signing out leads: the login page, back to `next` if one was given.
fn login_again(next: &str) -> String {
    if next.is_empty() {
        return "/login".to_string();
    }
    let n = safe_next(Some(next));
    format!(
        "/login?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &n)
            .finish()
    )
}

/// What the consent page shows.
pub struct ConsentView {
    pub request: AuthorizationRequest,
    pub consent_id: String,
    pub csrf_token: String,
    pub user_email: String,
    pub workspaces: Vec<Workspace>,
}

struct ScopeLine {
    name: &'static str,
    description: &'static str,
    writes: bool,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentTemplate<'a> {
    app_name: &'a str,
    redirect_host: String,
    /// Set for apps nobody who runs keygate reviewed: how they were registered.
    unreviewed: Option<String>,
    scopes: Vec<ScopeLine>,
    /// The registered API the access is for (RFC 8707): name and identifier;
    /// `None` for keygate's own API.
    resource: Option<(&'a str, &'a str)>,
    workspaces: &'a [Workspace],
    consent_id: &'a str,
    csrf_token: &'a str,
    user_email: &'a str,
    switch_next: String,
}

pub fn consent_page(view: &ConsentView, query: &str) -> HttpResponse {
    let redirect_host = crate::oauth::clients::code_destination(&view.request.redirect_uri);
    let lines = view
        .request
        .scopes
        .iter()
        .filter_map(|s| scopes::info(s))
        .map(|s| ScopeLine {
            name: s.name,
            description: s.description,
            writes: s.writes,
        })
        .collect();
    let Ok(body) = ConsentTemplate {
        app_name: &view.request.client.name,
        redirect_host,
        unreviewed: unreviewed_note(&view.request.client),
        scopes: lines,
        resource: (view.request.resource.as_ref())
            .map(|r| (r.name.as_str(), r.identifier.as_str())),
        workspaces: &view.workspaces,
        consent_id: &view.consent_id,
        csrf_token: &view.csrf_token,
        user_email: &view.user_email,
        switch_next: format!("/oauth/authorize?{query}"),
    }
    .render() else {
        return crate::http::render_failed();
    };
    html(StatusCode::OK, body)
}

/// How an app nobody reviewed came to be registered, for the consent page
/// and the authorized-apps table; `None` for the operator's own clients.
pub fn unreviewed_note(client: &crate::oauth::clients::Client) -> Option<String> {
    use crate::oauth::clients::ClientKind;
    match client.kind() {
        ClientKind::Operator | ClientKind::Service => None,
        ClientKind::Developer => Some(
            "This app was registered by a keygate user in their developer settings; it has not been reviewed."
                .into(),
        ),
        ClientKind::Dynamic => Some(
            "This app registered itself with keygate; it has not been reviewed.".into(),
        ),
        ClientKind::MetadataDocument => Some(format!(
            "This app registered itself: its details come from {}; it has not been reviewed.",
            url::Url::parse(&client.id)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default()
        )),
    }
}

const SESSION_ENDED: &str = "Your session has ended. Return to the application and start again.";

/// The person's answer on the consent page: their session and its CSRF token
/// are checked here; `oauth::authorize::decide` does the rest.
pub async fn consent_decision(svc: Svc, req: HttpRequest, form: Params) -> HttpResponse {
    let Some(cookie_value) = session_cookie(&req) else {
        return error_page(StatusCode::FORBIDDEN, SESSION_ENDED);
    };
    let result = super::with_conn(&svc, move |svc, conn| {
        let Some((session, user)) = crate::accounts::sessions::resolve(conn, &cookie_value)? else {
            return Ok(Err((StatusCode::FORBIDDEN, SESSION_ENDED.to_string())));
        };
        if !crypto::ct_eq(&session.csrf_token, field(&form, "csrf_token")) {
            let msg =
                "The form could not be verified (CSRF). Return to the application and start again.";
            return Ok(Err((StatusCode::FORBIDDEN, msg.to_string())));
        }
        let answer = match field(&form, "decision") {
            "approve" => authorize::Answer::Approve {
                workspace_id: field(&form, "workspace_id"),
            },
            _ => authorize::Answer::Deny,
        };
        let consent_id = field(&form, "consent_id");
        authorize::decide(
            conn,
            &svc.writes,
            &svc.config,
            &session.id_hash,
            &user.id,
            consent_id,
            answer,
        )
        .map(Ok)
    })
    .await;
    decision_page(result)
}

/// The page (or redirect back to the app) that answers a consent decision.
fn decision_page(
    result: Result<Result<authorize::Decided, (StatusCode, String)>, crate::error::Error>,
) -> HttpResponse {
    match result {
        Ok(Ok(authorize::Decided::Redirect(location))) => redirect(StatusCode::SEE_OTHER, &location),
        Ok(Ok(authorize::Decided::Expired)) => error_page(
            StatusCode::BAD_REQUEST,
            "This authorization request has expired or was already answered. Return to the application and start again.",
        ),
        Ok(Ok(authorize::Decided::Refused(msg))) => error_page(StatusCode::FORBIDDEN, &msg),
        Ok(Err((status, msg))) => error_page(status, &msg),
        Err(e) => internal_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // `next` of login: any Unicode is either one of keygate's own paths or
        // `/settings`, and always becomes a valid Location header.
        #[test]
        fn next_never_panics_and_stays_local(next in "\\PC*", tail in "\\PC{0,40}") {
            for n in [next.clone(), format!("/settings{tail}"), format!("/oauth/authorize?{tail}")] {
                let safe = safe_next(Some(&n));
                prop_assert!(safe.starts_with('/') && !safe.starts_with("//"));
                let r = redirect(StatusCode::SEE_OTHER, &safe);
                let location = r.headers().get(header::LOCATION).map(|v| v.to_str().is_ok());
                prop_assert_eq!(location, Some(true));
            }
        }
    }

    #[test]
    fn non_ascii_next_is_percent_encoded() {
        let r = redirect(StatusCode::FOUND, &safe_next(Some("/settings/\u{e9}")));
        assert_eq!(
            r.headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok()),
            Some("/settings/%C3%A9")
        );
    }
}
