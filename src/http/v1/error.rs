//! The one place a [`V1Error`] becomes HTTP: its status, the contract's
//! envelope `{"error": {"type", "code", "message"}}` and its headers.

use crate::v1::V1Error;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

/// A `/v1` error on its way out, with the RFC 9728 metadata document a `401`
/// names (`None` only for errors that are never a `401`).
#[derive(Debug)]
pub struct ApiError {
    error: V1Error,
    resource_metadata: Option<String>,
}

impl ApiError {
    pub fn naming(error: V1Error, resource_metadata: String) -> ApiError {
        ApiError {
            error,
            resource_metadata: Some(resource_metadata),
        }
    }
}

impl From<V1Error> for ApiError {
    fn from(error: V1Error) -> Self {
        ApiError {
            error,
            resource_metadata: None,
        }
    }
}

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

pub fn status_of(e: &V1Error) -> StatusCode {
    match e {
        V1Error::InvalidApiKey { .. } | V1Error::InvalidDpop(_) => StatusCode::UNAUTHORIZED,
        V1Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        V1Error::IpNotAllowed
        | V1Error::InsufficientScope(_)
        | V1Error::NoRoute
        | V1Error::PlanUpgradeRequired(_) => StatusCode::FORBIDDEN,
        V1Error::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        V1Error::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        V1Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        V1Error::ResourceAlreadyExists(_) => StatusCode::CONFLICT,
        V1Error::ResourceMissing(_) | V1Error::NotFound(_) => StatusCode::NOT_FOUND,
        V1Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        V1Error::ParameterInvalid(_)
        | V1Error::ParameterMissing(_)
        | V1Error::InvalidContentType
        | V1Error::InvalidJson(_)
        | V1Error::InvalidBody
        | V1Error::AddressTaken(_)
        | V1Error::DomainNotVerified(_) => StatusCode::BAD_REQUEST,
    }
}

/// The envelope's `type`.
fn kind_of(e: &V1Error) -> &'static str {
    match status_of(e) {
        StatusCode::UNAUTHORIZED => "authentication_error",
        StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
        StatusCode::FORBIDDEN => "permission_error",
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::INTERNAL_SERVER_ERROR => "api_error",
        _ => "invalid_request_error",
    }
}

/// RFC 6750 §3 and RFC 9728 §5.1 for a `401`; RFC 6750 §3.1 for a missing scope.
fn www_authenticate(e: &V1Error, resource_metadata: Option<&str>) -> Option<String> {
    match e {
        V1Error::InvalidApiKey { credential_sent } => {
            let mut w = String::from("Bearer realm=\"keygate\"");
            if *credential_sent {
                w.push_str(", error=\"invalid_token\", error_description=\"The credential is invalid, expired or revoked\"");
            }
            if let Some(url) = resource_metadata {
                w.push_str(&format!(", resource_metadata=\"{url}\""));
            }
            Some(w)
        }
        V1Error::InvalidDpop(error) => {
            let algs = crate::credentials::dpop::ALGORITHMS.join(" ");
            let mut w = format!("DPoP error=\"{error}\", algs=\"{algs}\"");
            if let Some(url) = resource_metadata {
                w.push_str(&format!(", resource_metadata=\"{url}\""));
            }
            Some(w)
        }
        V1Error::InsufficientScope(scope) => Some(format!(
            "Bearer error=\"insufficient_scope\", scope=\"{scope}\""
        )),
        V1Error::NoRoute => Some("Bearer error=\"insufficient_scope\"".to_string()),
        _ => None,
    }
}

fn retry_after(e: &V1Error) -> Option<u64> {
    match e {
        V1Error::RateLimited { retry_after } => Some(*retry_after),
        V1Error::ServiceUnavailable => Some(1),
        _ => None,
    }
}

/// `e` as the contract answers it; a `401` names `resource_metadata`.
pub fn response(e: &V1Error, resource_metadata: Option<&str>) -> HttpResponse {
    let mut b = HttpResponse::build(status_of(e));
    b.insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(w) = www_authenticate(e, resource_metadata) {
        b.insert_header((header::WWW_AUTHENTICATE, w));
    }
    if let Some(s) = retry_after(e) {
        b.insert_header((header::RETRY_AFTER, s));
    }
    b.json(Envelope {
        error: ErrorBody {
            kind: kind_of(e),
            code: e.code(),
            message: &e.message(),
        },
    })
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", status_of(&self.error), self.error.code())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status_of(&self.error)
    }
    fn error_response(&self) -> HttpResponse {
        response(&self.error, self.resource_metadata.as_deref())
    }
}
