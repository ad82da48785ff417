//! Discovery, keys and health.

use super::Svc;
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde_json::json;
use std::time::Duration;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/.well-known/oauth-authorization-server",
        web::get().to(authorization_server),
    )
    // RFC 8414 §3.1: for an issuer with a path (`https://host/tenant`) the
    // metadata is at `/.well-known/oauth-authorization-server/tenant`.
    .route(
        "/.well-known/oauth-authorization-server/{path:.*}",
        web::get().to(authorization_server_at_path),
    )
    .route("/.well-known/jwks.json", web::get().to(jwks))
    .route(
        "/.well-known/oauth-protected-resource",
        web::get().to(protected_resource),
    )
    // RFC 9728 §3.1: the resource `{issuer}/v1`'s path after the well-known
    // name (`/v1`, or `/tenant/v1` for an issuer with a path).
    .route(
        "/.well-known/oauth-protected-resource/{path:.*}",
        web::get().to(protected_resource_at_path),
    )
    .route("/healthz", web::get().to(healthz))
    .route("/readyz", web::get().to(readyz))
    .route("/openapi.json", web::get().to(openapi))
    .route("/static/keygate.css", web::get().to(stylesheet))
    .route("/static/keygate.js", web::get().to(script));
}

fn public_json(value: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .json(value)
}

async fn authorization_server(svc: Svc) -> HttpResponse {
    public_json(crate::oauth::metadata::authorization_server(&svc.config))
}

/// The path of the issuer URL, without its slashes (`tenant`), or "".
fn issuer_path(issuer: &str) -> String {
    url::Url::parse(issuer)
        .map(|u| u.path().trim_matches('/').to_string())
        .unwrap_or_default()
}

async fn authorization_server_at_path(svc: Svc, path: web::Path<String>) -> HttpResponse {
    let own = issuer_path(&svc.config.issuer);
    if own.is_empty() || path.trim_end_matches('/') != own {
        return HttpResponse::NotFound().finish();
    }
    authorization_server(svc).await
}

async fn protected_resource_at_path(svc: Svc, path: web::Path<String>) -> HttpResponse {
    let own = issuer_path(&svc.config.issuer);
    let resource = if own.is_empty() {
        "v1".to_string()
    } else {
        format!("{own}/v1")
    };
    let asked = path.trim_end_matches('/');
    // `/v1` stays served for an issuer with a path too, as before.
    if asked != resource && asked != "v1" {
        return HttpResponse::NotFound().finish();
    }
    protected_resource(svc).await
}

async fn protected_resource(svc: Svc) -> HttpResponse {
    public_json(crate::oauth::metadata::protected_resource(&svc.config))
}

async fn jwks(svc: Svc) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=60"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .content_type("application/jwk-set+json")
        .body(svc.credentials.keys.jwks().to_string())
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// A revocation feed not read for this long (or the stale bound, if shorter)
/// takes the node out of rotation: it polls every 100 ms, so this is a feed
/// that keeps failing, not one slow read.
const FEED_LAG: Duration = Duration::from_secs(5);

/// Ready when the database answers, its migrations are current and the
/// revocation feed is being read (a node that cannot read it will refuse
/// credentials once it is stale, and may be serving revoked ones until then).
/// The revocation feed's state for `/readyz`: `ok`, `behind` (not read for a
/// while: revocations on other nodes are not being applied) or `stale` (past
/// the bound: `/v1` refuses credentials), with the reason.
fn feed_state(svc: &crate::node::state::Services) -> (&'static str, Option<String>) {
    let cache = &svc.credentials.cache;
    let age = cache.feed_age();
    if !cache.feed_fresh() {
        let reason = format!(
            "the revocation feed was last read {} s ago, past the {} s bound: /v1 refuses credentials until it is read again",
            age.as_secs(),
            cache.stale_after().as_secs()
        );
        ("stale", Some(reason))
    } else if age > FEED_LAG.min(cache.stale_after()) {
        let reason = format!(
            "the revocation feed was last read {} ms ago: revocations made on other nodes are not being applied",
            age.as_millis()
        );
        ("behind", Some(reason))
    } else {
        ("ok", None)
    }
}

/// `/readyz`'s own budget for a connection: a load balancer's health check
/// gets its answer well within its timeout, whatever the pool's wait.
const READY_BUDGET: Duration = Duration::from_millis(1000);

/// Whether the database answers within `READY_BUDGET` with its migrations
/// current (at once `Err` while it is known to be away).
async fn database_current(svc: &Svc) -> Result<bool, crate::error::Error> {
    let svc = svc.clone().into_inner();
    web::block(move || {
        let mut conn = svc.pool.get_within(READY_BUDGET)?;
        Ok(crate::db::migrations_current(&mut conn))
    })
    .await
    .unwrap_or_else(|_| Err(crate::error::Error::internal("a database task failed")))
}

/// Typed `/readyz` body.
#[derive(serde::Serialize)]
struct Readiness {
    status: &'static str,
    database: &'static str,
    revocation_feed: &'static str,
    revocation_feed_age_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

async fn readyz(svc: Svc) -> HttpResponse {
    let (feed, feed_reason) = feed_state(&svc);
    let age = svc.credentials.cache.feed_age();
    let current = database_current(&svc).await;
    let (database, database_reason) = match current {
        Ok(true) => ("ok", None),
        Ok(false) => (
            "migrations pending",
            Some("the database has migrations pending"),
        ),
        Err(_) => ("unavailable", Some("the database does not answer")),
    };
    let reasons: Vec<&str> = database_reason
        .into_iter()
        .chain(feed_reason.as_deref())
        .collect();
    let body = Readiness {
        status: if reasons.is_empty() {
            "ready"
        } else {
            "not_ready"
        },
        database,
        revocation_feed: feed,
        revocation_feed_age_ms: u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
        reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
    };
    if body.reason.is_none() {
        return HttpResponse::Ok().json(body);
    }
    HttpResponse::ServiceUnavailable().json(body)
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../static/keygate.css"))
}

async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../static/keygate.js"))
}

/// The OpenAPI 3.1 document of `/v1` and the OAuth endpoints.
async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(include_str!("../../static/openapi.json"))
}
