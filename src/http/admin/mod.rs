//! `/admin/v1`: the product's back end. Thin handlers: authenticate the admin
//! token, parse the body (unknown members refused), run one area function,
//! render. Errors use the `/v1` envelope; every `POST` honours
//! `Idempotency-Key` (`admin::idempotency`).

mod credentials;
mod people;
mod webhooks;
mod workspaces;

use super::{media_type, read_body, with_conn, BodyError, Svc};
use crate::accounts::audit::Actor;
use crate::admin::idempotency::{self, Begin, Scope};
use crate::admin::tokens::{self, AdminToken};
use crate::db::paging::Paging;
use crate::db::DbConn;
use crate::error::Error;
use crate::node::state::Services;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin/v1")
            .configure(workspaces::routes)
            .configure(people::routes)
            .configure(credentials::routes)
            .configure(webhooks::routes)
            .default_service(web::to(not_found)),
    );
}

async fn not_found() -> HttpResponse {
    AdminError::new(StatusCode::NOT_FOUND, "not_found", "No such endpoint.").error_response()
}

/// An error in the `/v1` envelope.
#[derive(Debug)]
pub struct AdminError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl AdminError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AdminError {
            status,
            code,
            message: message.into(),
        }
    }
    fn invalid(message: impl Into<String>) -> Self {
        AdminError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
    fn kind(&self) -> &'static str {
        match self.status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            s if s.is_server_error() => "api_error",
            _ => "invalid_request_error",
        }
    }
}

impl From<Error> for AdminError {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid(m) => AdminError::invalid(m),
            Error::NotFound(m) => AdminError::new(StatusCode::NOT_FOUND, "not_found", m),
            Error::Conflict(m) => AdminError::new(StatusCode::CONFLICT, "conflict", m),
            Error::Forbidden(m) => AdminError::new(StatusCode::CONFLICT, "conflict", m),
            e if e.is_unavailable() => AdminError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "The database is unavailable; try again shortly.",
            ),
            e => {
                log::error!("admin API: {e}");
                AdminError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "Something went wrong on keygate's side.",
                )
            }
        }
    }
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.code)
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut b = HttpResponse::build(self.status);
        b.insert_header((header::CACHE_CONTROL, "no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            b.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"keygate-admin\""));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            b.insert_header((header::RETRY_AFTER, "1"));
        }
        b.json(serde_json::json!({"error": {
            "type": self.kind(), "code": self.code, "message": self.message,
        }}))
    }
}

pub type Answer = Result<HttpResponse, AdminError>;

/// The admin token that calls, and from where.
pub struct Caller {
    token: AdminToken,
    actor_id: String,
    address: Option<String>,
}

impl Caller {
    fn actor(&self) -> Actor<'_> {
        Actor {
            id: &self.actor_id,
            client_address: self.address.as_deref(),
        }
    }
}

/// `Authorization: Bearer kga_…` of a live admin token, else `401`.
async fn caller(svc: &Svc, req: &HttpRequest) -> Result<Caller, AdminError> {
    let refused = || {
        AdminError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_admin_token",
            "A valid admin token is required.",
        )
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|v| v.trim().to_string())
        .ok_or_else(refused)?;
    let token = with_conn(svc, move |_, conn| tokens::authenticate(conn, &presented))
        .await?
        .ok_or_else(refused)?;
    Ok(Caller {
        actor_id: token.actor_id(),
        token,
        address: super::client_ip(svc, req).map(|ip| ip.to_string()),
    })
}

/// `?limit=&cursor=` and the lookups `?external_id=`, `?email=`.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
    external_id: Option<String>,
    email: Option<String>,
}

fn list_query(req: &HttpRequest) -> Result<(Paging, ListQuery), AdminError> {
    let q = web::Query::<ListQuery>::from_query(req.query_string())
        .map_err(|e| AdminError::invalid(format!("The query string is not valid: {e}")))?
        .into_inner();
    let paging =
        Paging::parse(q.limit.as_deref(), q.cursor.as_deref()).map_err(AdminError::invalid)?;
    Ok((paging, q))
}

/// A JSON object body as `T` (unknown members, wrong types and bodies over
/// 64 KiB are `400`), and its bytes (for `Idempotency-Key`).
/// A body the endpoint does not read but `Idempotency-Key` compares: up to
/// 64 KiB, else `400` like any other admin request.
async fn raw_body(payload: web::Payload) -> Result<web::Bytes, AdminError> {
    read_body(payload).await.map_err(|e| match e {
        BodyError::TooLarge => AdminError::invalid("The request body is larger than 64 KiB."),
        BodyError::Broken => AdminError::invalid("The request body could not be read."),
    })
}

async fn json_body<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<(T, web::Bytes), AdminError> {
    if media_type(req).as_deref() != Some("application/json") {
        return Err(AdminError::invalid(
            "The request body must be JSON (Content-Type: application/json).",
        ));
    }
    let raw = raw_body(payload).await?;
    let value: Value = serde_json::from_slice(&raw)
        .map_err(|_| AdminError::invalid("The request body is not valid JSON."))?;
    if !value.is_object() {
        return Err(AdminError::invalid(
            "The request body must be a JSON object.",
        ));
    }
    let parsed = serde_json::from_value(value)
        .map_err(|e| AdminError::invalid(format!("The request body is not valid: {e}.")))?;
    Ok((parsed, raw))
}

/// What a change answers: its status and body, and the body a retry with
/// the same `Idempotency-Key` gets (the same without any secret).
pub struct Made {
    status: StatusCode,
    body: Value,
    kept: Value,
}

impl Made {
    fn created(body: Value) -> Made {
        Made::of(StatusCode::CREATED, body)
    }
    fn ok(body: Value) -> Made {
        Made::of(StatusCode::OK, body)
    }
    fn of(status: StatusCode, body: Value) -> Made {
        Made {
            status,
            kept: body.clone(),
            body,
        }
    }
    /// Leaves `field` (a secret) out of what a retry gets.
    fn secret(mut self, field: &str) -> Made {
        if let Value::Object(map) = &mut self.kept {
            map.remove(field);
        }
        self
    }
}

fn json(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// A POST that acts on the resource its path names and takes no body of its
/// own (rotate, revoke): the body is read, up to 64 KiB, only for
/// `Idempotency-Key`.
async fn action<F>(
    svc: &Svc,
    req: &HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    act: F,
) -> Answer
where
    F: FnOnce(&Services, &mut DbConn, Actor, &str) -> Result<Made, Error> + Send + 'static,
{
    let caller = caller(svc, req).await?;
    let raw = raw_body(payload).await?;
    let id = id.into_inner();
    post(svc, req, caller, raw, move |svc, conn, by| {
        act(svc, conn, by, &id)
    })
    .await
}

/// Runs a `POST`'s change, honouring `Idempotency-Key` (scoped to the admin
/// token and the path).
async fn post<F>(svc: &Svc, req: &HttpRequest, caller: Caller, raw: web::Bytes, make: F) -> Answer
where
    F: FnOnce(&Services, &mut DbConn, Actor) -> Result<Made, Error> + Send + 'static,
{
    let key = match req.headers().get("idempotency-key") {
        None => None,
        Some(v) => Some(idempotency::check_key(v.to_str().unwrap_or("\u{0}"))?),
    };
    let scope = key.map(|key| Scope {
        token_id: caller.token.id.clone(),
        path: req.path().to_string(),
        key,
    });
    let made = with_conn(svc, move |svc, conn| {
        if let Some(scope) = &scope {
            if let Begin::Replay(status, body) = idempotency::begin(conn, scope, &raw)? {
                let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                return Ok(Made::of(status, body));
            }
        }
        match make(svc, conn, caller.actor()) {
            Ok(made) => {
                if let Some(scope) = &scope {
                    idempotency::complete(
                        conn,
                        scope,
                        made.status.as_u16(),
                        &made.kept.to_string(),
                    )?;
                }
                Ok(made)
            }
            Err(e) => {
                if let Some(scope) = &scope {
                    let _ = idempotency::release(conn, scope);
                }
                Err(e)
            }
        }
    })
    .await?;
    Ok(json(made.status, &made.body))
}

/// Runs a change that is not a `POST` (`PATCH`, `PUT`, `DELETE`).
async fn change<F>(svc: &Svc, caller: Caller, make: F) -> Answer
where
    F: FnOnce(&Services, &mut DbConn, Actor) -> Result<Made, Error> + Send + 'static,
{
    let made = with_conn(svc, move |svc, conn| make(svc, conn, caller.actor())).await?;
    if made.status == StatusCode::NO_CONTENT {
        return Ok(HttpResponse::NoContent().finish());
    }
    Ok(json(made.status, &made.body))
}

/// Runs a read.
async fn read<F>(svc: &Svc, load: F) -> Answer
where
    F: FnOnce(&Services, &mut DbConn) -> Result<Value, Error> + Send + 'static,
{
    let body = with_conn(svc, load).await?;
    Ok(json(StatusCode::OK, &body))
}

fn gone() -> Made {
    Made::of(StatusCode::NO_CONTENT, Value::Null)
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}
