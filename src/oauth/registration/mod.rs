//! Apps that register themselves: the logic, without storage or HTTP.
//!
//! * [`metadata`]: RFC 7591 client metadata, as posted to the registration
//!   endpoint, and its validation (redirect URIs per RFC 8252, grant and response
//!   types, auth method, name, scope), plus the redirect-URI matching rule of
//!   registered apps.
//! * [`cimd`]: client ID metadata documents
//!   (draft-ietf-oauth-client-id-metadata-document): recognising a `client_id`
//!   that is a URL, fetching it safely (special-use addresses refused before
//!   connecting, no redirects, size and time caps), validating and caching it.
//!
//! * [`endpoint`]: the registration endpoint itself (RFC 7591 §3, RFC 7592 §2),
//!   storing clients through `oauth::clients`.
//!
//! [`metadata`] depends on no other keygate module and [`cimd`] only on the
//! outbound HTTPS client ([`crate::outbound`]); [`endpoint`] is where they
//! meet storage.

pub mod cimd;
pub mod endpoint;
pub mod metadata;

pub use metadata::{
    classify_redirect_uri, redirect_uri_matches, validate, AuthMethod, ClientMetadataRequest,
    GrantType, Offered, RedirectKind, ResponseType, ValidatedClient,
};

use serde::ser::SerializeMap;

/// A registration refused, with the two error codes of RFC 7591 §3.2.2.
///
/// Serialises to the error response body of §3.2.2,
/// `{"error": "...", "error_description": "..."}`; the HTTP status is `400`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    /// `invalid_redirect_uri`: one or more redirect URIs is unacceptable.
    #[error("invalid_redirect_uri: {0}")]
    InvalidRedirectUri(String),
    /// `invalid_client_metadata`: any other metadata member is unacceptable,
    /// or the body is not a JSON object of the right shape.
    #[error("invalid_client_metadata: {0}")]
    InvalidClientMetadata(String),
}

impl RegistrationError {
    /// The `error` code of RFC 7591 §3.2.2.
    pub fn error_code(&self) -> &'static str {
        match self {
            RegistrationError::InvalidRedirectUri(_) => "invalid_redirect_uri",
            RegistrationError::InvalidClientMetadata(_) => "invalid_client_metadata",
        }
    }

    /// The human-readable `error_description`.
    pub fn description(&self) -> &str {
        match self {
            RegistrationError::InvalidRedirectUri(d)
            | RegistrationError::InvalidClientMetadata(d) => d,
        }
    }

    pub(crate) fn redirect(msg: impl Into<String>) -> Self {
        RegistrationError::InvalidRedirectUri(msg.into())
    }

    pub(crate) fn metadata(msg: impl Into<String>) -> Self {
        RegistrationError::InvalidClientMetadata(msg.into())
    }
}

impl serde::Serialize for RegistrationError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("error", self.error_code())?;
        map.serialize_entry("error_description", self.description())?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_serialise_as_rfc7591_error_responses() {
        let e = RegistrationError::InvalidRedirectUri("no fragment allowed".into());
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"error": "invalid_redirect_uri", "error_description": "no fragment allowed"})
        );
        let e = RegistrationError::InvalidClientMetadata("bad scope".into());
        assert_eq!(e.error_code(), "invalid_client_metadata");
        assert_eq!(e.description(), "bad scope");
        assert_eq!(
            serde_json::to_value(&e).unwrap()["error"],
            "invalid_client_metadata"
        );
    }
}
