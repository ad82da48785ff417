//! RFC 6749 errors: the `error` codes of §4.1.2.1 and §5.2 (and RFC 7009, 8707).

use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OAuthError {
    pub error: &'static str,
    pub error_description: String,
    /// 401 for `invalid_client`, 503 when storage is away, 400 otherwise.
    #[serde(skip)]
    pub status: u16,
}

macro_rules! codes {
    ($($fn:ident => $code:literal, $status:literal;)*) => {
        impl OAuthError {
            $(pub fn $fn(description: impl Into<String>) -> Self {
                OAuthError { error: $code, error_description: description.into(), status: $status }
            })*
        }
    };
}

codes! {
    invalid_request => "invalid_request", 400;
    invalid_client => "invalid_client", 401;
    invalid_grant => "invalid_grant", 400;
    unauthorized_client => "unauthorized_client", 400;
    unsupported_grant_type => "unsupported_grant_type", 400;
    unsupported_response_type => "unsupported_response_type", 400;
    unsupported_token_type => "unsupported_token_type", 400;
    invalid_scope => "invalid_scope", 400;
    invalid_target => "invalid_target", 400;
    access_denied => "access_denied", 400;
    server_error => "server_error", 500;
    temporarily_unavailable => "temporarily_unavailable", 503;
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
