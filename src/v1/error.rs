//! `/v1` errors, named after the contract's `code`s (as `oauth::error` names
//! RFC 6749's). Each carries what its `message` says; the HTTP status, the
//! envelope's `type` and the headers of each are chosen in `http::v1` only.

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V1Error {
    /// No valid credential: missing (`credential_sent: false`), malformed,
    /// unknown, expired or revoked.
    InvalidApiKey {
        credential_sent: bool,
    },
    /// An access token bound to a DPoP key (RFC 9449 §7) presented without
    /// a good proof, or a DPoP presentation of a credential bound to no key:
    /// the `error` of the `DPoP` challenge (`invalid_token` or
    /// `invalid_dpop_proof`).
    InvalidDpop(&'static str),
    /// Too many failed checks from this client address; retry after that many seconds.
    RateLimited {
        retry_after: u64,
    },
    /// A valid API key used from outside its address allowlist.
    IpNotAllowed,
    /// A valid credential without this scope.
    InsufficientScope(String),
    /// A valid credential, but no route of the resource allows the request
    /// (a gateway check): refused as a missing scope.
    NoRoute,
    /// The workspace's plan does not include what was asked.
    PlanUpgradeRequired(String),
    /// The database cannot be reached, or the revocation feed is stale.
    ServiceUnavailable,
    InternalError,
    ParameterInvalid(String),
    ParameterMissing(String),
    InvalidContentType,
    InvalidJson(&'static str),
    InvalidBody,
    PayloadTooLarge,
    AddressTaken(String),
    /// A sending domain not verified, or an address outside the workspace's
    /// verified domains (or taken in another workspace: the same words).
    DomainNotVerified(String),
    ResourceAlreadyExists(String),
    ResourceMissing(String),
    NotFound(&'static str),
    MethodNotAllowed,
}

impl V1Error {
    /// The `code` on the wire.
    pub fn code(&self) -> &'static str {
        match self {
            V1Error::InvalidApiKey { .. } | V1Error::InvalidDpop(_) => "invalid_api_key",
            V1Error::RateLimited { .. } => "rate_limited",
            V1Error::IpNotAllowed => "ip_not_allowed",
            V1Error::InsufficientScope(_) | V1Error::NoRoute => "insufficient_scope",
            V1Error::PlanUpgradeRequired(_) => "plan_upgrade_required",
            V1Error::ServiceUnavailable => "service_unavailable",
            V1Error::InternalError => "internal_error",
            V1Error::ParameterInvalid(_) => "parameter_invalid",
            V1Error::ParameterMissing(_) => "parameter_missing",
            V1Error::InvalidContentType => "invalid_content_type",
            V1Error::InvalidJson(_) => "invalid_json",
            V1Error::InvalidBody => "invalid_body",
            V1Error::PayloadTooLarge => "payload_too_large",
            V1Error::AddressTaken(_) => "address_taken",
            V1Error::DomainNotVerified(_) => "domain_not_verified",
            V1Error::ResourceAlreadyExists(_) => "resource_already_exists",
            V1Error::ResourceMissing(_) => "resource_missing",
            V1Error::NotFound(_) => "not_found",
            V1Error::MethodNotAllowed => "method_not_allowed",
        }
    }

    /// The `message` on the wire.
    pub fn message(&self) -> Cow<'_, str> {
        match self {
            V1Error::InvalidApiKey { .. } => "A valid workspace API key is required.".into(),
            V1Error::InvalidDpop(_) => {
                "This access token is bound to a key: send it as DPoP with a valid proof.".into()
            }
            V1Error::RateLimited { .. } => {
                "Too many failed authentication attempts. Retry later.".into()
            }
            V1Error::IpNotAllowed => "This API key may not be used from this address.".into(),
            V1Error::InsufficientScope(scope) => {
                format!("This credential does not have the {scope} scope.").into()
            }
            V1Error::NoRoute => "No route of this resource allows this request.".into(),
            V1Error::ServiceUnavailable => {
                "The service is temporarily unavailable. Retry shortly.".into()
            }
            V1Error::InternalError => "An internal error occurred.".into(),
            V1Error::InvalidContentType => {
                "The request body must be JSON (Content-Type: application/json).".into()
            }
            V1Error::InvalidBody => "The request body must be a JSON object.".into(),
            V1Error::PayloadTooLarge => "The request body is too large.".into(),
            V1Error::MethodNotAllowed => "This method is not allowed on this endpoint.".into(),
            V1Error::InvalidJson(m) | V1Error::NotFound(m) => Cow::Borrowed(m),
            V1Error::PlanUpgradeRequired(m)
            | V1Error::ParameterInvalid(m)
            | V1Error::ParameterMissing(m)
            | V1Error::AddressTaken(m)
            | V1Error::DomainNotVerified(m)
            | V1Error::ResourceAlreadyExists(m)
            | V1Error::ResourceMissing(m) => Cow::Borrowed(m),
        }
    }
}

impl std::fmt::Display for V1Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

/// The domain's errors as `/v1` shows them; a database that is away is `503`,
/// a fault of the server `500` (logged, never shown).
impl From<crate::error::Error> for V1Error {
    fn from(e: crate::error::Error) -> Self {
        use crate::error::Error;
        match e {
            Error::Conflict(m) => V1Error::ResourceAlreadyExists(m),
            Error::Invalid(m) => V1Error::ParameterInvalid(m),
            Error::NotFound(m) => V1Error::ResourceMissing(m),
            Error::NotVerified(m) => V1Error::DomainNotVerified(format!("{m}.")),
            e if e.is_unavailable() => V1Error::ServiceUnavailable,
            e => {
                log::error!("internal error on /v1: {e}");
                V1Error::InternalError
            }
        }
    }
}
