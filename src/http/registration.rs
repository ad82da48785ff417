//! `/oauth/register`: RFC 7591 dynamic client registration and RFC 7592's
//! read and delete with the registration access token. Thin handlers; the
//! logic is `oauth::registration::endpoint`.

use super::{client_address, media_type, read_body_up_to, BodyError, Svc};
use crate::credentials::scopes;
use crate::node::state::Services;
use crate::oauth::registration::endpoint::{self, Failure};
use crate::oauth::registration::{Offered, RegistrationError};
use actix_cors::Cors;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

/// The largest registration request read: metadata is a few hundred bytes;
/// RFC 7591 sets no limit, so keygate sets one.
pub const MAX_REGISTRATION_BODY: usize = 16 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Browser-based clients register cross-origin; no cookies are involved.
    let cors = || {
        Cors::default()
            .allow_any_origin()
            .allowed_methods(["GET", "POST", "DELETE"])
            .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .max_age(3600)
    };
    cfg.service(
        web::resource("/oauth/register")
            .wrap(cors())
            .route(web::post().to(register)),
    )
    .service(
        web::resource("/oauth/register/{client_id}")
            .wrap(cors())
            .route(web::get().to(read))
            .route(web::delete().to(delete)),
    );
}

/// RFC 7591 §3.1: `POST /oauth/register` with a JSON object of metadata.
async fn register(svc: Svc, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    if !svc.config.registration_open {
        return json_answer(
            StatusCode::NOT_FOUND,
            &json!({"error": "invalid_request", "error_description": "dynamic client registration is turned off"}),
        );
    }
    let key = limiter_key(&svc, &req);
    if let Some(refused) = over_limits(&svc, &key, true) {
        return refused;
    }
    let body = match metadata_body(&req, payload).await {
        Ok(b) => b,
        Err(e) => return answer(&svc, &key, Ok(Err(e)), StatusCode::CREATED),
    };
    let result = super::with_conn(&svc, move |svc, conn| {
        let offered = Offered::new(scopes::all_names());
        Ok(endpoint::register(
            conn,
            &svc.config.issuer,
            &offered,
            &body,
        ))
    })
    .await;
    answer(&svc, &key, result, StatusCode::CREATED)
}

/// The JSON body of a registration request, at most
/// [`MAX_REGISTRATION_BODY`] bytes.
async fn metadata_body(req: &HttpRequest, payload: web::Payload) -> Result<web::Bytes, Failure> {
    let refuse = |msg: String| Failure::Invalid(RegistrationError::InvalidClientMetadata(msg));
    if media_type(req).as_deref() != Some("application/json") {
        return Err(refuse("the body must be application/json".into()));
    }
    match read_body_up_to(payload, MAX_REGISTRATION_BODY).await {
        Ok(b) => Ok(b),
        Err(BodyError::TooLarge) => Err(Failure::TooLarge(format!(
            "the registration request must be at most {MAX_REGISTRATION_BODY} bytes"
        ))),
        Err(BodyError::Broken) => Err(refuse("unreadable request body".into())),
    }
}

/// RFC 7592 §2.1: `GET /oauth/register/{client_id}` with the token.
async fn read(svc: Svc, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let key = limiter_key(&svc, &req);
    if let Some(refused) = over_limits(&svc, &key, false) {
        return refused;
    }
    let token = bearer(&req);
    let client_id = path.into_inner();
    let result = super::with_conn(&svc, move |svc, conn| {
        Ok(endpoint::read(
            conn,
            &svc.config.issuer,
            &client_id,
            token.as_deref(),
        ))
    })
    .await;
    answer(&svc, &key, result, StatusCode::OK)
}

/// RFC 7592 §2.3: `DELETE /oauth/register/{client_id}` with the token; `204`.
async fn delete(svc: Svc, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let key = limiter_key(&svc, &req);
    if let Some(refused) = over_limits(&svc, &key, false) {
        return refused;
    }
    let token = bearer(&req);
    let address = client_address(&svc, &req);
    let client_id = path.into_inner();
    let result = super::with_conn(&svc, move |svc, conn| {
        let done = endpoint::delete(
            conn,
            &svc.clients,
            &svc.credentials.cache,
            &client_id,
            token.as_deref(),
            Some(&address),
        );
        Ok(done.map(|()| Value::Null))
    })
    .await;
    answer(&svc, &key, result, StatusCode::NO_CONTENT)
}

/// The key of a client address's registration limits (`http::client_ip`);
/// a client metadata document seen for the first time counts against the
/// same quota (`http::oauth`).
pub(super) fn limiter_key(svc: &Services, req: &HttpRequest) -> String {
    let bucket = crate::credentials::address::address_bucket_of(&client_address(svc, req));
    format!("register:{bucket}")
}

/// `429` while an address is backing off after failures, or, for a new
/// registration, when it used its hourly quota of successes.
fn over_limits(svc: &Services, key: &str, registering: bool) -> Option<HttpResponse> {
    let limits = svc.limits.as_ref()?;
    let mut blocked = limits.registration_failures.check(key).err();
    if registering && blocked.is_none() {
        blocked = limits.registrations.check(key).err();
    }
    let secs = blocked?;
    let mut r = json_answer(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({"error": "slow_down", "error_description": "too many registration requests from this address; retry later"}),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    Some(r)
}

/// RFC 6750 §2.1: the registration access token as a bearer token.
fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

fn json_answer(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

/// Maps an endpoint result onto HTTP, counting failures and, for
/// registrations (`201`), successes against the address's limits.
fn answer(
    svc: &Services,
    key: &str,
    result: Result<Result<Value, Failure>, crate::error::Error>,
    success: StatusCode,
) -> HttpResponse {
    let result = result.unwrap_or_else(|e| Err(Failure::Internal(e)));
    count(svc, key, &result, success);
    match result {
        Ok(_) if success == StatusCode::NO_CONTENT => HttpResponse::NoContent()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Ok(body) => json_answer(success, &body),
        Err(Failure::Invalid(e)) => json_answer(StatusCode::BAD_REQUEST, &json!(e)),
        Err(Failure::TooLarge(msg)) => {
            let e = RegistrationError::InvalidClientMetadata(msg);
            json_answer(StatusCode::PAYLOAD_TOO_LARGE, &json!(e))
        }
        Err(Failure::Unauthorized) => {
            let mut r = json_answer(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "invalid_token", "error_description": "a valid registration access token for this client is required"}),
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            r
        }
        Err(Failure::Internal(e)) => {
            let oauth: crate::oauth::error::OAuthError = e.into();
            super::oauth::error_response(&oauth)
        }
    }
}

/// Counts a registration (`201`) against the address's quota, and a refused
/// request or token against its failure limit.
fn count(svc: &Services, key: &str, result: &Result<Value, Failure>, success: StatusCode) {
    let Some(limits) = svc.limits.as_ref() else {
        return;
    };
    match result {
        Ok(_) if success == StatusCode::CREATED => limits.registrations.record(key),
        Err(Failure::Invalid(_) | Failure::Unauthorized) => {
            limits.registration_failures.failure(key)
        }
        _ => {}
    }
}
