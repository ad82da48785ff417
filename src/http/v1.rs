//! `/v1`: the one bearer check (API key or access token, only from
//! `Authorization: Bearer`) and the workspace resources, with the contract's
//! error envelopes for every outcome.

use super::{client_address, read_body, BodyError, Svc};
use crate::accounts::audit::Actor;
use crate::credentials::bearer::{self, Lookup, Principal};
use crate::v1::{self as logic, Resource};
use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use std::future::Future;
use std::pin::Pin;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            .service(
                web::resource("/workspace")
                    .route(web::get().to(workspace))
                    .default_service(web::to(|| async { not_allowed("GET") })),
            )
            .service(
                web::resource("/tags")
                    .route(web::get().to(list_tags))
                    .route(web::post().to(create_tag))
                    .default_service(web::to(|| async { not_allowed("GET, POST") })),
            )
            .service(
                web::resource("/forms")
                    .route(web::get().to(list_forms))
                    .route(web::post().to(create_form))
                    .default_service(web::to(|| async { not_allowed("GET, POST") })),
            )
            .service(
                web::resource("/mailboxes")
                    .route(web::get().to(list_mailboxes))
                    .route(web::post().to(create_mailbox))
                    .default_service(web::to(|| async { not_allowed("GET, POST") })),
            )
            .service(
                web::resource("/mailboxes/{id}")
                    .route(web::get().to(get_mailbox))
                    .route(web::delete().to(delete_mailbox))
                    .default_service(web::to(|| async { not_allowed("GET, DELETE") })),
            )
            .default_service(web::to(not_found)),
    );
}

/// The contract's error envelope.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    code: &'static str,
    message: String,
    www_authenticate: Option<String>,
    retry_after: Option<u64>,
}

/// The contract's error envelope: `{"error": {"type", "code", "message"}}`.
#[derive(serde::Serialize)]
struct Envelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'static str,
    message: &'a str,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.code)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut b = HttpResponse::build(self.status);
        b.insert_header((header::CACHE_CONTROL, "no-store"));
        if let Some(w) = &self.www_authenticate {
            b.insert_header((header::WWW_AUTHENTICATE, w.as_str()));
        }
        if let Some(s) = self.retry_after {
            b.insert_header((header::RETRY_AFTER, s));
        }
        b.json(Envelope {
            error: ErrorBody {
                kind: self.kind,
                code: self.code,
                message: &self.message,
            },
        })
    }
}

fn invalid_request(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        kind: "invalid_request_error",
        code,
        message: message.into(),
        www_authenticate: None,
        retry_after: None,
    }
}

fn unauthenticated(svc: &Svc, credential_sent: bool) -> ApiError {
    let metadata = format!("{}/.well-known/oauth-protected-resource", svc.config.issuer);
    let www = if credential_sent {
        format!(
            "Bearer realm=\"keygate\", error=\"invalid_token\", error_description=\"The credential is invalid, expired or revoked\", resource_metadata=\"{metadata}\""
        )
    } else {
        format!("Bearer realm=\"keygate\", resource_metadata=\"{metadata}\"")
    };
    ApiError {
        status: StatusCode::UNAUTHORIZED,
        kind: "authentication_error",
        code: "invalid_api_key",
        message: "A valid workspace API key is required.".into(),
        www_authenticate: Some(www),
        retry_after: None,
    }
}

fn unavailable() -> ApiError {
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        kind: "api_error",
        code: "service_unavailable",
        message: "The service is temporarily unavailable. Retry shortly.".into(),
        www_authenticate: None,
        retry_after: Some(1),
    }
}

fn internal() -> ApiError {
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        kind: "api_error",
        code: "internal_error",
        message: "An internal error occurred.".into(),
        www_authenticate: None,
        retry_after: None,
    }
}

/// A 500 in the envelope (for the panic guard in `http::panic`).
pub fn internal_error_response() -> HttpResponse {
    internal().error_response()
}

fn from_domain(e: crate::error::Error) -> ApiError {
    match e {
        crate::error::Error::Conflict(m) => {
            invalid_request(StatusCode::CONFLICT, "resource_already_exists", m)
        }
        crate::error::Error::Invalid(m) => {
            invalid_request(StatusCode::BAD_REQUEST, "parameter_invalid", m)
        }
        crate::error::Error::NotFound(m) => {
            invalid_request(StatusCode::NOT_FOUND, "resource_missing", m)
        }
        e if e.is_unavailable() => unavailable(),
        e => {
            log::error!("internal error on /v1: {e}");
            internal()
        }
    }
}

/// The credential, only from `Authorization: Bearer <credential>`.
fn bearer_credential(req: &HttpRequest) -> Result<Option<&str>, ()> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ())?;
    let (scheme, credential) = value.split_once(' ').ok_or(())?;
    let credential = credential.trim();
    if !scheme.eq_ignore_ascii_case("bearer")
        || credential.is_empty()
        || credential.contains(' ')
        || credential.len() > 4096
    {
        return Err(());
    }
    Ok(Some(credential))
}

/// An authenticated `/v1` caller, and the client address it called from
/// (`http::client_ip`), which usage keeps as the key's last.
pub struct Caller(pub Principal, pub Option<std::net::IpAddr>);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let svc = req.app_data::<Svc>().cloned().ok_or_else(internal)?;
            let credential = match bearer_credential(&req) {
                Ok(Some(c)) => c,
                Ok(None) => return Err(unauthenticated(&svc, false)),
                Err(()) => return Err(fail(&svc, &req)),
            };
            let found = verify(&svc, credential).await?;
            let m = &*crate::metrics::V1;
            match found {
                // The allowlist is checked after authentication, from the
                // cached key: a valid key used from elsewhere is a 403, not a
                // failed authentication (and it counts no failure).
                Some(p) => {
                    let ip = super::client_ip(&svc, &req);
                    let allowed = p.allows_address(ip);
                    m.outcome(p.kind(), allowed).inc();
                    if !allowed {
                        return Err(ip_not_allowed());
                    }
                    Ok(Caller(p, ip))
                }
                None => {
                    m.invalid.inc();
                    Err(fail(&svc, &req))
                }
            }
        })
    }
}

/// The bearer check: memory first, the database on a miss. Verify first,
/// throttle only what failed: a valid credential is never refused because of
/// failures from the same address (many callers share one behind a proxy or
/// NAT). An API key costs one hash and an indexed read, an access token one
/// signature check. `None`: not a valid credential.
async fn verify(svc: &Svc, credential: &str) -> Result<Option<Principal>, ApiError> {
    let m = &*crate::metrics::V1;
    match bearer::check_cached(&svc.credentials, credential) {
        Lookup::Found(p) => {
            m.cache_hit.inc();
            Ok(Some(p))
        }
        Lookup::Invalid => Ok(None),
        // The revocation feed is stale, so memory may be out of date: refuse
        // every credential, good or not, until it is read again.
        Lookup::Unavailable => Err(unavailable()),
        Lookup::Miss => {
            m.cache_miss.inc();
            let credential = credential.to_string();
            super::with_conn(svc, move |svc, conn| {
                bearer::check_stored(&svc.credentials, conn, &credential)
            })
            .await
            .map_err(from_domain)
        }
    }
}

fn ip_not_allowed() -> ApiError {
    ApiError {
        status: StatusCode::FORBIDDEN,
        kind: "permission_error",
        code: "ip_not_allowed",
        message: "This API key may not be used from this address.".into(),
        www_authenticate: None,
        retry_after: None,
    }
}

fn rate_limited(secs: u64) -> ApiError {
    ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        kind: "rate_limit_error",
        code: "rate_limited",
        message: "Too many failed authentication attempts. Retry later.".into(),
        www_authenticate: None,
        retry_after: Some(secs),
    }
}

/// A failed bearer check, counted against the client address. An address over
/// its limit gets 429 for further failures only (OWASP Authentication Cheat
/// Sheet: lock-outs must not become a denial of service for others).
fn fail(svc: &Svc, req: &HttpRequest) -> ApiError {
    if let Some(limits) = &svc.limits {
        let address = client_address(svc, req);
        if let Err(secs) = limits.bearer_address.check(&address) {
            return rate_limited(secs);
        }
        limits.bearer_address.failure(&address);
    }
    unauthenticated(svc, true)
}

/// The scope check; a request that passes it counts as a use of the credential.
fn require(svc: &Svc, caller: &Caller, scope: &str) -> Result<(), ApiError> {
    if caller.0.has_scope(scope) {
        bearer::record_use_from(&svc.credentials, &caller.0, caller.1);
        Ok(())
    } else {
        Err(ApiError {
            status: StatusCode::FORBIDDEN,
            kind: "permission_error",
            code: "insufficient_scope",
            message: format!("This credential does not have the {scope} scope."),
            www_authenticate: Some(format!(
                "Bearer error=\"insufficient_scope\", scope=\"{scope}\""
            )),
            retry_after: None,
        })
    }
}

async fn workspace(svc: Svc, caller: Caller) -> Result<HttpResponse, ApiError> {
    require(&svc, &caller, "workspace:read")?;
    let id = caller.0.workspace_id();
    // Names never change once a workspace exists: read it from memory after
    // the first time.
    let name = match svc.credentials.cache.workspace_name(id) {
        Some(name) => name,
        None => {
            let ws_id = id.to_string();
            let ws = super::with_conn(&svc, move |_, conn| {
                crate::accounts::find_workspace(conn, &ws_id)
            })
            .await
            .map_err(from_domain)?;
            svc.credentials.cache.put_workspace_name(&ws.id, &ws.name);
            ws.name.into()
        }
    };
    Ok(HttpResponse::Ok().json(logic::WorkspaceBody { id, name: &name }))
}

#[derive(serde::Deserialize)]
struct ListQuery {
    limit: Option<String>,
    starting_after: Option<String>,
}

/// `limit` and `starting_after` of a list request.
fn page_params(req: &HttpRequest) -> Result<(i64, Option<String>), ApiError> {
    let q = web::Query::<ListQuery>::from_query(req.query_string()).map_err(|_| {
        invalid_request(
            StatusCode::BAD_REQUEST,
            "parameter_invalid",
            "The query string could not be read.",
        )
    })?;
    let limit = match q.limit.as_deref() {
        None => logic::DEFAULT_LIMIT,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if (1..=logic::MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(invalid_request(
                    StatusCode::BAD_REQUEST,
                    "parameter_invalid",
                    format!(
                        "limit must be a whole number from 1 to {}.",
                        logic::MAX_LIMIT
                    ),
                ))
            }
        },
    };
    let after = match q.starting_after.as_deref() {
        None | Some("") => None,
        Some(a) if uuid::Uuid::parse_str(a).is_ok() => Some(a.to_string()),
        Some(_) => {
            return Err(invalid_request(
                StatusCode::BAD_REQUEST,
                "parameter_invalid",
                "starting_after must be an id from a previous page.",
            ))
        }
    };
    Ok((limit, after))
}

async fn list(
    svc: Svc,
    caller: Caller,
    req: HttpRequest,
    resource: Resource,
) -> Result<HttpResponse, ApiError> {
    require(&svc, &caller, resource.read_scope())?;
    let (limit, after) = page_params(&req)?;
    let ws = caller.0.workspace_id().to_string();
    let page = super::with_conn(&svc, move |_, conn| {
        logic::list(conn, resource, &ws, limit, after.as_deref())
    })
    .await
    .map_err(from_domain)?;
    Ok(HttpResponse::Ok().json(page))
}

/// Reads `{"<field>": "…"}` with a clear error for every way it can be wrong.
async fn read_field(
    req: &HttpRequest,
    payload: web::Payload,
    field: &str,
) -> Result<String, ApiError> {
    let bad = |code, msg: &str| invalid_request(StatusCode::BAD_REQUEST, code, msg);
    let object = read_object(req, payload).await?;
    match object.get(field) {
        None | Some(serde_json::Value::Null) => {
            Err(bad("parameter_missing", &format!("{field} is required.")))
        }
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(bad(
            "parameter_invalid",
            &format!("{field} must be a string."),
        )),
    }
}

/// Reads a JSON object body, with a clear error for every way it can be wrong.
async fn read_object(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    let bad = |code, msg: &str| invalid_request(StatusCode::BAD_REQUEST, code, msg);
    if super::media_type(req).as_deref() != Some("application/json") {
        return Err(bad(
            "invalid_content_type",
            "The request body must be JSON (Content-Type: application/json).",
        ));
    }
    let body = read_body(payload).await.map_err(|e| match e {
        BodyError::TooLarge => invalid_request(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "The request body is too large.",
        ),
        BodyError::Broken => bad("invalid_json", "The request body could not be read."),
    })?;
    match serde_json::from_slice(&body) {
        Ok(serde_json::Value::Object(object)) => Ok(object),
        Ok(_) => Err(bad(
            "invalid_body",
            "The request body must be a JSON object.",
        )),
        Err(_) => Err(bad("invalid_json", "The request body is not valid JSON.")),
    }
}

/// Reads `{"name": "…"}` with a clear error for every way it can be wrong.
async fn read_name(req: &HttpRequest, payload: web::Payload) -> Result<String, ApiError> {
    let name = read_field(req, payload, "name").await?;
    // One rule for names, the accounts' own.
    crate::accounts::validate_name("name", &name).map_err(|e| {
        invalid_request(
            StatusCode::BAD_REQUEST,
            "parameter_invalid",
            format!("{e}."),
        )
    })
}

async fn create(
    svc: Svc,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
    resource: Resource,
) -> Result<HttpResponse, ApiError> {
    require(&svc, &caller, resource.write_scope())?;
    let name = read_name(&req, payload).await?;
    let ws = caller.0.workspace_id().to_string();
    let item = super::with_conn(&svc, move |_, conn| {
        logic::create(conn, resource, &ws, &name)
    })
    .await
    .map_err(from_domain)?;
    Ok(HttpResponse::Created().json(item))
}

async fn list_tags(svc: Svc, caller: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    list(svc, caller, req, Resource::Tags).await
}
async fn create_tag(
    svc: Svc,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    create(svc, caller, req, payload, Resource::Tags).await
}
async fn list_forms(svc: Svc, caller: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    list(svc, caller, req, Resource::Forms).await
}
async fn create_form(
    svc: Svc,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    create(svc, caller, req, payload, Resource::Forms).await
}

async fn not_found() -> HttpResponse {
    invalid_request(StatusCode::NOT_FOUND, "not_found", "No such endpoint.").error_response()
}

fn not_allowed(allow: &'static str) -> HttpResponse {
    let mut r = method_not_allowed_error().error_response();
    r.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    r
}

fn method_not_allowed_error() -> ApiError {
    invalid_request(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This method is not allowed on this endpoint.",
    )
}

// ------------------------------------------------------------ /v1/mailboxes
//
// The contract's codes: an unknown id, or another workspace's, is `404
// not_found`; a bad or taken address is `400`. A key restricted to one mailbox
// holds only `mailboxes:read` and sees only that mailbox.

fn mailbox_error(e: crate::error::Error) -> ApiError {
    use crate::error::Error;
    match e {
        Error::NotFound(_) => {
            invalid_request(StatusCode::NOT_FOUND, "not_found", "No such mailbox.")
        }
        Error::Invalid(m) => invalid_request(
            StatusCode::BAD_REQUEST,
            "parameter_invalid",
            format!("{m}."),
        ),
        Error::Conflict(m) => {
            invalid_request(StatusCode::BAD_REQUEST, "address_taken", format!("{m}."))
        }
        Error::Forbidden(m) => ApiError {
            status: StatusCode::FORBIDDEN,
            kind: "permission_error",
            code: "plan_upgrade_required",
            message: format!("{m}."),
            www_authenticate: None,
            retry_after: None,
        },
        e => from_domain(e),
    }
}

async fn list_mailboxes(
    svc: Svc,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    require(&svc, &caller, "mailboxes:read")?;
    let (limit, after) = page_params(&req)?;
    let ws = caller.0.workspace_id().to_string();
    let only = caller.0.mailbox_id().map(str::to_string);
    let page = super::with_conn(&svc, move |_, conn| {
        crate::mailboxes::api::list(conn, &ws, only.as_deref(), limit, after.as_deref())
    })
    .await
    .map_err(mailbox_error)?;
    Ok(HttpResponse::Ok().json(page))
}

async fn get_mailbox(
    svc: Svc,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    require(&svc, &caller, "mailboxes:read")?;
    let ws = caller.0.workspace_id().to_string();
    let only = caller.0.mailbox_id().map(str::to_string);
    let id = path.into_inner();
    let mailbox = super::with_conn(&svc, move |_, conn| {
        crate::mailboxes::api::get(conn, &ws, only.as_deref(), &id)
    })
    .await
    .map_err(mailbox_error)?;
    Ok(HttpResponse::Ok().json(mailbox))
}

async fn create_mailbox(
    svc: Svc,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    require(&svc, &caller, "mailboxes:write")?;
    let address = read_field(&req, payload, "address").await?;
    let (ws, actor) = (caller.0.workspace_id().to_string(), caller.0.actor());
    let from = client_address(&svc, &req);
    let mailbox = super::with_conn(&svc, move |_, conn| {
        let by = Actor {
            id: &actor,
            client_address: Some(&from),
        };
        crate::mailboxes::api::create(conn, &ws, &address, by)
    })
    .await
    .map_err(mailbox_error)?;
    Ok(HttpResponse::Created().json(mailbox))
}

async fn delete_mailbox(
    svc: Svc,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    require(&svc, &caller, "mailboxes:write")?;
    let (ws, actor) = (caller.0.workspace_id().to_string(), caller.0.actor());
    let (id, from) = (path.into_inner(), client_address(&svc, &req));
    super::with_conn(&svc, move |svc, conn| {
        let by = Actor {
            id: &actor,
            client_address: Some(&from),
        };
        crate::mailboxes::api::delete(conn, &svc.credentials.cache, &ws, &id, by)
    })
    .await
    .map_err(mailbox_error)?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::bearer_credential;
    use actix_web::http::header::{HeaderValue, AUTHORIZATION};
    use proptest::prelude::*;

    proptest! {
        // The Authorization header of /v1, as any bytes a client can send.
        #[test]
        fn bearer_header_never_panics(value in proptest::collection::vec(any::<u8>(), 0..200), text in "\\PC*") {
            let mut candidates = vec![value];
            candidates.push(text.clone().into_bytes());
            candidates.push(format!("Bearer {text}").into_bytes());
            for bytes in candidates {
                let Ok(v) = HeaderValue::from_bytes(&bytes) else { continue };
                let req = actix_web::test::TestRequest::default()
                    .insert_header((AUTHORIZATION, v))
                    .to_http_request();
                let _ = bearer_credential(&req);
            }
        }
    }
}
