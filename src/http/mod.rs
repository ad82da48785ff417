//! HTTP: thin handlers that parse, call one function of an area, and map the
//! result. One `configure` serves `main` and the tests.

pub mod demo;
pub mod leaks;
pub mod oauth;
pub mod observe;
pub mod pages;
pub mod settings;
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

pub fn configure(cfg: &mut web::ServiceConfig) {
    if std::env::var("KEYGATE_METRICS_BIND")
        .map(|v| v.is_empty())
        .unwrap_or(true)
    {
        cfg.route("/metrics", web::get().to(metrics));
    }
    wellknown::configure(cfg);
    oauth::configure(cfg);
    pages::configure(cfg);
    settings::configure(cfg);
    v1::configure(cfg);
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
        Err(_) => Err(crate::error::Error::invalid("the worker pool failed")),
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
    HttpResponse::build(status)
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
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

/// Prometheus text format.
pub async fn metrics(svc: Svc) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::render(&svc.pool))
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
