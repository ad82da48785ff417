//! The part of the code flow that oxide-auth does for keygate: PKCE (RFC 7636)
//! challenge encoding and constant-time verification, S256 only. Kept behind this
//! module so that the engine can be replaced without touching the grants.

use super::error::OAuthError;
use oxide_auth::code_grant::extensions::Pkce;
use oxide_auth::primitives::grant::Value;
use std::borrow::Cow;

/// RFC 7636 §4.1: 43 to 128 characters of [A-Z a-z 0-9 - . _ ~].
fn is_pkce_string(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Validates the authorization request's PKCE parameters and returns the value
/// to store with the code. keygate requires S256 of every client: `plain` is
/// refused, and so is a challenge without a method (RFC 7636 would read it as plain).
pub fn challenge(method: Option<&str>, challenge: Option<&str>) -> Result<String, OAuthError> {
    let challenge = challenge.ok_or_else(|| {
        OAuthError::invalid_request("code_challenge is required (PKCE with S256)")
    })?;
    let method = method.ok_or_else(|| {
        OAuthError::invalid_request("code_challenge_method is required and must be S256")
    })?;
    if method != "S256" {
        return Err(OAuthError::invalid_request(
            "code_challenge_method must be S256; plain is not supported",
        ));
    }
    // The S256 challenge is the base64url SHA-256 of the verifier: 43 characters.
    if challenge.len() != 43 || !is_pkce_string(challenge) {
        return Err(OAuthError::invalid_request(
            "code_challenge must be the 43-character base64url SHA-256 of the verifier",
        ));
    }
    let value = Pkce::required()
        .challenge(Some(Cow::Borrowed(method)), Some(Cow::Borrowed(challenge)))
        .map_err(|_| OAuthError::invalid_request("invalid PKCE parameters"))?;
    match value.and_then(|v| v.into_private_value().ok().flatten()) {
        Some(encoded) => Ok(encoded),
        None => Err(OAuthError::invalid_request("invalid PKCE parameters")),
    }
}

/// Checks a `code_verifier` against the stored challenge, in constant time.
pub fn verify(stored: &str, verifier: &str) -> bool {
    is_pkce_string(verifier)
        && Pkce::required()
            .verify(
                Some(Value::private(Some(stored.to_string()))),
                Some(Cow::Borrowed(verifier)),
            )
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use sha2::{Digest, Sha256};

    #[test]
    fn s256_round_trip_and_refusals() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge_value = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let stored = challenge(Some("S256"), Some(&challenge_value)).unwrap();
        assert!(verify(&stored, verifier));
        assert!(!verify(
            &stored,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj"
        ));
        assert!(!verify(&stored, "short"));
        assert!(challenge(Some("plain"), Some(&challenge_value)).is_err());
        assert!(challenge(None, Some(&challenge_value)).is_err());
        assert!(challenge(Some("S256"), None).is_err());
        assert!(challenge(Some("S256"), Some("abc")).is_err());
    }
}
