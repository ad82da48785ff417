//! OAuth errors, named after their codes: RFC 6749 §4.1.2.1 and §5.2, RFC 7009
//! §2.2.1 (`unsupported_token_type`), RFC 8707 §2 (`invalid_target`), and
//! RFC 8628 §3.5's `slow_down` for a caller held back by the abuse limits.
//! Each variant carries its `error_description`. The HTTP status of each is
//! chosen in `http::oauth` only.

use serde::ser::{Serialize, SerializeStruct, Serializer};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthError {
    InvalidRequest(String),
    InvalidClient(String),
    InvalidGrant(String),
    UnauthorizedClient(String),
    UnsupportedGrantType(String),
    UnsupportedResponseType(String),
    UnsupportedTokenType(String),
    InvalidScope(String),
    InvalidTarget(String),
    /// RFC 9449 §5: a DPoP proof at the token endpoint that does not pass.
    InvalidDpopProof(String),
    AccessDenied(String),
    SlowDown(String),
    ServerError(String),
    TemporarilyUnavailable(String),
}

macro_rules! codes {
    ($($fn:ident => $variant:ident, $code:literal;)*) => {
        impl OAuthError {
            $(pub fn $fn(description: impl Into<String>) -> Self {
                OAuthError::$variant(description.into())
            })*

            /// The `error` code on the wire.
            pub fn code(&self) -> &'static str {
                match self { $(OAuthError::$variant(_) => $code,)* }
            }

            /// The `error_description` on the wire.
            pub fn description(&self) -> &str {
                match self { $(OAuthError::$variant(d) => d,)* }
            }
        }
    };
}

codes! {
    invalid_request => InvalidRequest, "invalid_request";
    invalid_client => InvalidClient, "invalid_client";
    invalid_grant => InvalidGrant, "invalid_grant";
    unauthorized_client => UnauthorizedClient, "unauthorized_client";
    unsupported_grant_type => UnsupportedGrantType, "unsupported_grant_type";
    unsupported_response_type => UnsupportedResponseType, "unsupported_response_type";
    unsupported_token_type => UnsupportedTokenType, "unsupported_token_type";
    invalid_scope => InvalidScope, "invalid_scope";
    invalid_target => InvalidTarget, "invalid_target";
    invalid_dpop_proof => InvalidDpopProof, "invalid_dpop_proof";
    access_denied => AccessDenied, "access_denied";
    slow_down => SlowDown, "slow_down";
    server_error => ServerError, "server_error";
    temporarily_unavailable => TemporarilyUnavailable, "temporarily_unavailable";
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.description())
    }
}

/// RFC 6749 §5.2: `{"error": …, "error_description": …}`.
impl Serialize for OAuthError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("OAuthError", 2)?;
        st.serialize_field("error", self.code())?;
        st.serialize_field("error_description", self.description())?;
        st.end()
    }
}

impl From<crate::error::Error> for OAuthError {
    fn from(e: crate::error::Error) -> Self {
        if e.is_unavailable() {
            log::warn!("storage unavailable: {e}");
            OAuthError::temporarily_unavailable("the service is temporarily unavailable; try again")
        } else {
            log::error!("internal error: {e}");
            OAuthError::server_error("internal error")
        }
    }
}

impl From<diesel::result::Error> for OAuthError {
    fn from(e: diesel::result::Error) -> Self {
        crate::error::Error::from(e).into()
    }
}

impl From<crate::credentials::scopes::UnknownScope> for OAuthError {
    fn from(e: crate::credentials::scopes::UnknownScope) -> Self {
        OAuthError::InvalidScope(e.0)
    }
}
