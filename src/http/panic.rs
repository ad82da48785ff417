//! The last line of defence: a handler that panics is answered with a 500 in
//! its boundary's own shape (the `/v1` envelope, RFC 6749's JSON at the
//! client endpoints, an HTML page elsewhere), never a dropped connection.
//! Every parser on the attack surface is written not to panic; this only
//! keeps a bug from becoming a different answer (OWASP Error Handling Cheat
//! Sheet: fail safely, reveal nothing).

use super::{oauth, pages, v1};
use crate::oauth::error::OAuthError;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse, ResponseError};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;

/// The client endpoints that answer in RFC 6749's JSON (§5.2).
const OAUTH_JSON: [&str; 4] = [
    "/oauth/token",
    "/oauth/revoke",
    "/oauth/introspect",
    "/oauth/register",
];

pub async fn catch_panic(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // The request cannot be kept (routing needs it unshared), so what the
    // answer needs is taken now.
    let fault = Panicked {
        path: req.path().to_string(),
        method: req.method().to_string(),
        request_id: req
            .extensions()
            .get::<super::observe::RequestId>()
            .map(|id| id.0.clone()),
    };
    match AssertUnwindSafe(next.call(req)).catch_unwind().await {
        Ok(result) => result,
        Err(_) => {
            log::error!(
                "a request handler panicked ({} {}); answered 500",
                fault.method,
                fault.path_label()
            );
            Err(fault.into())
        }
    }
}

/// A handler that panicked, answered by actix through `ResponseError`.
#[derive(Debug)]
struct Panicked {
    path: String,
    method: String,
    request_id: Option<String>,
}

impl Panicked {
    /// The boundary, never the path itself (it may carry an id).
    fn path_label(&self) -> &'static str {
        match boundary(&self.path) {
            Boundary::V1 => "/v1",
            Boundary::OAuthJson => "/oauth",
            Boundary::Page => "page",
        }
    }
}

impl std::fmt::Display for Panicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a request handler panicked")
    }
}

impl ResponseError for Panicked {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
    fn error_response(&self) -> HttpResponse {
        let mut resp = internal_error_for(&self.path);
        // The headers the middleware outside would have added.
        let h = resp.headers_mut();
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        if let Some(v) = self
            .request_id
            .as_deref()
            .and_then(|id| HeaderValue::from_str(id).ok())
        {
            h.insert(HeaderName::from_static("x-request-id"), v);
        }
        resp
    }
}

enum Boundary {
    V1,
    OAuthJson,
    Page,
}

fn boundary(path: &str) -> Boundary {
    let under = |prefix: &str| {
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    if under("/v1") {
        Boundary::V1
    } else if OAUTH_JSON.iter().any(|p| under(p)) {
        Boundary::OAuthJson
    } else {
        Boundary::Page
    }
}

/// A 500 in the shape of the boundary that owns `path`.
fn internal_error_for(path: &str) -> HttpResponse {
    match boundary(path) {
        Boundary::V1 => v1::internal_error_response(),
        Boundary::OAuthJson => oauth::error_response(&OAuthError::server_error("internal error")),
        Boundary::Page => pages::error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An internal error occurred. Try again in a moment.",
        ),
    }
}

/// Routes that panic, one per boundary, so the tests can prove the answer
/// above (`KEYGATE_TEST_PANIC_ROUTE=1`, `Config::test_panic_routes`); never
/// in production.
pub fn configure_test_routes(cfg: &mut web::ServiceConfig) {
    async fn panics() -> HttpResponse {
        panic!("KEYGATE_TEST_PANIC_ROUTE: a handler panicked on purpose")
    }
    for path in ["/v1/_panic", "/oauth/token/_panic", "/_panic"] {
        cfg.route(path, web::get().to(panics));
    }
}
