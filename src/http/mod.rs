//! HTTP: thin handlers that parse, call one function of an area, and map the
//! result. One `configure` serves `main` and the tests.

pub mod admin;
pub mod demo;
pub mod gateway;
pub mod leaks;
mod machine;
pub mod oauth;
pub mod observe;
pub mod pages;
pub mod panic;
pub mod registration;
pub mod settings;
pub mod signin;
pub mod v1;
pub mod wellknown;

use crate::node::state::Services;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use std::sync::Arc;

pub type Svc = web::Data<Services>;

/// The largest request body any endpoint reads.
pub const MAX_BODY: usize = 64 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig, config: &crate::config::Config) {
    // `/metrics` is not public (OWASP Top 10 A05, security misconfiguration:
    // it shows traffic, outcomes and pool use): on the main listener only
    // with KEYGATE_METRICS_TOKEN, else on KEYGATE_METRICS_BIND's, else not at
    // all.
    if config.metrics_token.is_some() && config.metrics_bind.is_none() {
        cfg.route("/metrics", web::get().to(metrics));
    }
    // Before the /v1 scope, whose default service would answer these.
    if config.test_panic_routes {
        panic::configure_test_routes(cfg);
    }
    // The router tries services in order: the busiest first (`/v1`, the
    // OAuth endpoints, the gateway check), so that they are matched before
    // any pattern with a variable part (a regular expression) is tried.
    v1::configure(cfg);
    oauth::configure(cfg);
    gateway::configure(cfg);
    admin::configure(cfg);
    wellknown::configure(cfg);
    registration::configure(cfg);
    pages::configure(cfg);
    signin::configure(cfg);
    settings::configure(cfg);
    leaks::configure(cfg);
}

/// Runs a blocking database closure off the async workers, with a pooled
/// connection.
pub async fn with_conn<T, F>(svc: &Svc, f: F) -> Result<T, crate::error::Error>
where
    T: Send + 'static,
    F: FnOnce(&Services, &mut crate::db::DbConn) -> Result<T, crate::error::Error> + Send + 'static,
{
    let svc: Arc<Services> = svc.clone().into_inner();
    match web::block(move || {
        let mut conn = svc.pool.get()?;
        f(&svc, &mut conn)
    })
    .await
    {
        Ok(r) => r,
        Err(_) => Err(crate::error::Error::internal("a database task failed")),
    }
}

pub enum BodyError {
    TooLarge,
    Broken,
}

/// Reads a request body up to `MAX_BODY`.
pub async fn read_body(payload: web::Payload) -> Result<web::Bytes, BodyError> {
    read_body_up_to(payload, MAX_BODY).await
}

/// Reads a request body up to `limit` bytes (for the few endpoints that take
/// more than `MAX_BODY`).
pub async fn read_body_up_to(
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, BodyError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| BodyError::Broken)?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The media type of the request, lower-cased, without parameters.
pub fn media_type(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// The client's address: the TCP peer, or, only when the peer is a trusted
/// proxy (`KEYGATE_TRUSTED_PROXIES`), the right-most untrusted
/// `X-Forwarded-For` entry. The abuse limits, the security log and the key
/// allowlists all take it from here.
pub fn client_ip(svc: &Services, req: &HttpRequest) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr()?.ip();
    if svc.trusted_proxies.is_empty() {
        return Some(crate::credentials::address::normalise(peer));
    }
    let values: Vec<String> = req
        .headers()
        .get_all("x-forwarded-for")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    Some(crate::credentials::address::client_ip(
        peer,
        &values,
        &svc.trusted_proxies,
    ))
}

/// `client_ip` as text, for logs and limiter keys.
pub fn client_address(svc: &Services, req: &HttpRequest) -> String {
    client_ip(svc, req)
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Headers for every HTML page: no framing, no referrer, a strict CSP.
pub fn html(status: StatusCode, body: String) -> HttpResponse {
    let mut resp = HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A redirect: 302 for GET flows, 303 after a form POST.
pub fn redirect(status: StatusCode, location: &str) -> HttpResponse {
    let location =
        HeaderValue::from_str(&location_safe(location)).unwrap_or(HeaderValue::from_static("/"));
    let mut resp = HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish();
    resp.headers_mut().insert(header::LOCATION, location);
    resp
}

/// A URI reference as a header may carry it (RFC 3986 §2.1, RFC 9110 §10.2.2):
/// every byte outside visible ASCII percent-encoded, so a `next` with
/// non-ASCII characters redirects instead of failing.
fn location_safe(location: &str) -> String {
    let mut out = String::with_capacity(location.len());
    for b in location.bytes() {
        if (0x21..=0x7e).contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Adds the headers every response carries; HSTS when the issuer is https.
pub fn default_headers(https: bool) -> actix_web::middleware::DefaultHeaders {
    let mut h = actix_web::middleware::DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"));
    if https {
        h = h.add((
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ));
    }
    h
}

/// Prometheus text format; with `KEYGATE_METRICS_TOKEN` set, only for
/// `Authorization: Bearer <token>` (compared in constant time).
pub async fn metrics(svc: Svc, req: HttpRequest) -> HttpResponse {
    if let Some(token) = &svc.config.metrics_token {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .unwrap_or("");
        if !crate::crypto::ct_eq(presented, token) {
            return HttpResponse::Unauthorized()
                .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\""))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body("a valid metrics token is required\n");
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body({
            if let Some(l) = &svc.limits {
                for (name, limiter) in l.failure_limiters() {
                    crate::metrics::set_abuse_tracked(name, limiter.tracked());
                }
            }
            crate::metrics::render(&svc.pool)
        })
}

/// A page whose template failed to render: a 500 with a fixed page, never an
/// empty one.
pub fn render_failed() -> HttpResponse {
    log::error!("a page template failed to render");
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Something went wrong · keygate</title></head>\
         <body><h1>Something went wrong</h1><p>keygate could not show this page. Try again in a moment.</p></body></html>"
            .to_string(),
    )
}
