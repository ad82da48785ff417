//! Signing in through the product's identity provider: `POST /login/oidc`
//! (the login page's "Sign in with NAME") and `GET /login/oidc/callback`
//! (where the provider sends the person back). The rules are in `signin`;
//! here the form is checked, cookies are set, and each failure becomes a page
//! in plain words, its detail in the log.

use super::pages::{
    cookie, error_page, field, form_of, internal_error, login_csrf_ok, removal, safe_next,
    secure_cookies, signed_in, SIGNIN_COOKIE,
};
use super::{client_address, read_body, redirect, Svc};
use crate::signin::{self, Failure};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/login/oidc", web::post().to(start))
        .route("/login/oidc/callback", web::get().to(callback));
}

const NOT_CONFIGURED: &str = "Signing in through an identity provider is not set up here.";

async fn start(svc: Svc, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let Some(provider) = svc.signin.as_ref() else {
        return error_page(StatusCode::NOT_FOUND, NOT_CONFIGURED);
    };
    let Ok(body) = read_body(payload).await else {
        return error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    };
    let form = form_of(&body);
    if !login_csrf_ok(&req, &form) {
        return error_page(
            StatusCode::FORBIDDEN,
            "The sign-in form expired. Go back to the sign-in page and try again.",
        );
    }
    let next = safe_next(Some(field(&form, "next")));
    let address = client_address(&svc, &req);
    match signin::begin(provider, &svc.pool, &next, &address).await {
        Ok(begun) => {
            let mut resp = redirect(StatusCode::SEE_OTHER, &begun.location);
            let mut c = cookie(SIGNIN_COOKIE, begun.browser, svc.config.https());
            c.set_max_age(actix_web::cookie::time::Duration::seconds(
                signin::pending::TTL,
            ));
            let _ = resp.add_cookie(&c);
            resp
        }
        Err(failure) => failed(&svc, &req, failure),
    }
}

#[derive(serde::Deserialize)]
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
}

async fn callback(svc: Svc, req: HttpRequest, q: web::Query<CallbackQuery>) -> HttpResponse {
    let Some(provider) = svc.signin.as_ref() else {
        return error_page(StatusCode::NOT_FOUND, NOT_CONFIGURED);
    };
    let q = q.into_inner();
    let browser = req
        .cookie(super::pages::cookie_name(
            SIGNIN_COOKIE,
            secure_cookies(&req),
        ))
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    let (Some(state), false) = (q.state.filter(|s| !s.is_empty()), browser.is_empty()) else {
        return failed(&svc, &req, Failure::State);
    };
    let cb = signin::Callback {
        state,
        code: q.code,
        error: q.error,
        error_description: q.error_description,
        iss: q.iss,
        browser,
        client_address: client_address(&svc, &req),
    };
    match signin::finish(provider, &svc.pool, svc.config.session_ttl, cb).await {
        Ok(done) => {
            log::info!(
                "person {} signed in through {} ({:?})",
                done.user_id,
                provider.settings.issuer,
                done.found
            );
            let mut resp = signed_in(&svc, &done.next, done.session_cookie);
            let _ = resp.add_removal_cookie(&removal(SIGNIN_COOKIE, svc.config.https()));
            resp
        }
        Err(failure) => failed(&svc, &req, failure),
    }
}

/// The page of a failed sign-in: the detail in the log, plain words on the
/// page, the browser's attempt cookie removed, no session.
fn failed(svc: &Svc, req: &HttpRequest, failure: Failure) -> HttpResponse {
    let name = svc
        .signin
        .as_ref()
        .map_or("the identity provider", |p| p.settings.name.as_str());
    if let Failure::Store(e) = &failure {
        return internal_error(e);
    }
    // The detail may hold the provider's (or a caller's) text: one line.
    let detail: String = failure
        .to_string()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(1000)
        .collect();
    log::warn!(
        "sign-in through the identity provider failed from {}: {detail}",
        client_address(svc, req)
    );
    let (status, words) = words(&failure, name);
    let mut resp = error_page(status, &words);
    let _ = resp.add_removal_cookie(&removal(SIGNIN_COOKIE, svc.config.https()));
    resp
}

/// What the person is told, and the status (every failure is the person's
/// request that cannot be completed: a 4xx).
fn words(failure: &Failure, name: &str) -> (StatusCode, String) {
    let again = "Go back to the sign-in page and try again.";
    match failure {
        Failure::Denied(_) => (
            StatusCode::FORBIDDEN,
            format!("{name} did not let you sign in (the request was denied). You are not signed in."),
        ),
        Failure::Provider(_) => (
            StatusCode::BAD_REQUEST,
            format!("{name} could not sign you in. {again}"),
        ),
        Failure::State => (
            StatusCode::BAD_REQUEST,
            format!("This sign-in has expired, was already used, or was started in another browser. {again}"),
        ),
        Failure::Unreachable(_) => (
            StatusCode::BAD_REQUEST,
            format!("keygate could not reach {name} to sign you in. Try again in a moment."),
        ),
        Failure::Token(_) => (
            StatusCode::BAD_REQUEST,
            format!("keygate could not verify the answer from {name}, so you are not signed in. {again}"),
        ),
        Failure::UnverifiedEmail => (
            StatusCode::FORBIDDEN,
            format!("{name} has not verified the email address of your account, so keygate cannot tell which account is yours. Verify your email address there, then try again."),
        ),
        Failure::UnknownAccount => (
            StatusCode::FORBIDDEN,
            format!("This {name} account is unknown to keygate. Ask an administrator of your workspace to add you."),
        ),
        Failure::Disabled => (
            StatusCode::FORBIDDEN,
            "This account is disabled.".to_string(),
        ),
        Failure::TooMany => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-ins were started from your address. Wait a few minutes and try again.".to_string(),
        ),
        Failure::Store(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again in a moment.".to_string(),
        ),
    }
}
