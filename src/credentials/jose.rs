//! The JOSE pieces keygate verifies from others: client assertions
//! (private_key_jwt), DPoP proofs and identity assertions. Signatures are
//! verified by jsonwebtoken (never here); this module only picks the
//! algorithm and the key, and refuses what must never be accepted: `none`,
//! HMAC (a public key used as a shared secret), a key of another family,
//! a JWK holding a private part.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::Value;

/// The most keys a client's JWK Set may hold.
pub const MAX_KEYS: usize = 10;

/// The most bytes of a JWT keygate looks at.
pub const MAX_JWT_BYTES: usize = 8 * 1024;

/// The algorithms accepted for client assertions, DPoP proofs and identity
/// assertions (RFC 9864 names EdDSA over Ed25519 `Ed25519`).
pub const ALGORITHMS: &[&str] = &["ES256", "EdDSA", "Ed25519", "RS256", "PS256"];

/// An accepted algorithm name as jsonwebtoken's; `None` for every other
/// (`none`, HMAC, and the rest).
pub fn accepted_alg(name: &str) -> Option<Algorithm> {
    match name {
        "ES256" => Some(Algorithm::ES256),
        "EdDSA" | "Ed25519" => Some(Algorithm::EdDSA),
        "RS256" => Some(Algorithm::RS256),
        "PS256" => Some(Algorithm::PS256),
        _ => None,
    }
}

/// The protected header members keygate reads.
#[derive(Deserialize, Debug, Clone)]
pub struct JoseHeader {
    pub alg: String,
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    pub kid: Option<String>,
    /// A DPoP proof's public key (RFC 9449 §4.2).
    #[serde(default)]
    pub jwk: Option<Value>,
}

/// A compact JWS split and decoded, its signature not yet checked.
pub struct Unverified {
    pub header: JoseHeader,
    pub alg: Algorithm,
    pub claims: serde_json::Map<String, Value>,
    signing_input: String,
    signature: String,
}

/// Why a JWT was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoseError {
    Malformed(&'static str),
    Algorithm(String),
    Key(&'static str),
    Signature,
}

impl std::fmt::Display for JoseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JoseError::Malformed(why) => write!(f, "malformed JWT: {why}"),
            JoseError::Algorithm(a) => write!(
                f,
                "the algorithm {a:?} is not accepted (accepted: {})",
                ALGORITHMS.join(", ")
            ),
            JoseError::Key(why) => write!(f, "{why}"),
            JoseError::Signature => write!(f, "the signature does not verify"),
        }
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A compact JWS's three parts (header, claims, signature), within
/// [`MAX_JWT_BYTES`].
pub fn split(token: &str) -> Result<(&str, &str, &str), JoseError> {
    if token.len() > MAX_JWT_BYTES {
        return Err(JoseError::Malformed("too long"));
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(c), Some(s), None) => Ok((h, c, s)),
        _ => Err(JoseError::Malformed("not three parts")),
    }
}

/// The claims part of a JWS, decoded.
pub fn claims_of(part: &str) -> Result<serde_json::Map<String, Value>, JoseError> {
    decode_json(part).ok_or(JoseError::Malformed("bad claims"))
}

/// Splits and decodes a compact JWS; refuses any algorithm but the accepted
/// ones before a key is even looked for.
pub fn parse(token: &str) -> Result<Unverified, JoseError> {
    let (h, c, s) = split(token)?;
    let header: JoseHeader = decode_json(h).ok_or(JoseError::Malformed("bad header"))?;
    let alg = accepted_alg(&header.alg).ok_or_else(|| JoseError::Algorithm(header.alg.clone()))?;
    let claims = claims_of(c)?;
    Ok(Unverified {
        header,
        alg,
        claims,
        signing_input: format!("{h}.{c}"),
        signature: s.to_string(),
    })
}

/// A public JWK from JSON: `alg` (whose newer values jsonwebtoken may not
/// know) is left out, a private part or a symmetric key is refused.
pub fn public_jwk(v: &Value) -> Result<Jwk, JoseError> {
    let mut v = v.clone();
    let obj = v
        .as_object_mut()
        .ok_or(JoseError::Key("a JWK is not an object"))?;
    if obj.contains_key("d") || obj.contains_key("k") {
        return Err(JoseError::Key("a JWK must hold a public key only"));
    }
    obj.remove("alg");
    let jwk: Jwk = serde_json::from_value(v).map_err(|_| JoseError::Key("unreadable JWK"))?;
    match jwk.algorithm {
        AlgorithmParameters::OctetKey(_) | AlgorithmParameters::Other(_) => {
            Err(JoseError::Key("unsupported key type"))
        }
        _ => Ok(jwk),
    }
}

/// Verifies the signature with `jwk` (whose family must be the algorithm's).
pub fn verify(token: &Unverified, jwk: &Jwk) -> Result<(), JoseError> {
    let key = decoding_key(jwk, token.alg)?;
    verify_with(&token.signing_input, &token.signature, token.alg, &key)
}

/// The key of `jwk` for `alg`, whose family it must be.
pub fn decoding_key(jwk: &Jwk, alg: Algorithm) -> Result<DecodingKey, JoseError> {
    let key = DecodingKey::from_jwk(jwk).map_err(|_| JoseError::Key("unusable key"))?;
    if key.family() != alg.family() {
        return Err(JoseError::Key("the key does not fit the algorithm"));
    }
    Ok(key)
}

/// Verifies `signature` over `signing_input` (`header.claims`) with a key
/// from [`decoding_key`].
pub fn verify_with(
    signing_input: &str,
    signature: &str,
    alg: Algorithm,
    key: &DecodingKey,
) -> Result<(), JoseError> {
    match jsonwebtoken::crypto::verify(signature, signing_input.as_bytes(), key, alg) {
        Ok(true) => Ok(()),
        _ => Err(JoseError::Signature),
    }
}

/// The RFC 7638 SHA-256 thumbprint of a public JWK, base64url.
pub fn thumbprint(jwk: &Jwk) -> Option<String> {
    jwk.thumbprint(ThumbprintHash::SHA256).ok()
}

/// A client's or an identity provider's JWK Set, each key usable.
pub fn parse_jwks(v: &Value) -> Result<JwkSet, String> {
    let keys = v
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("a JWK Set is an object with a \"keys\" array")?;
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(format!("a JWK Set holds 1 to {MAX_KEYS} keys"));
    }
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        out.push(public_jwk(k).map_err(|e| e.to_string())?);
    }
    Ok(JwkSet { keys: out })
}

/// Checks a JWK Set given inline (RFC 7591 `jwks`).
pub fn check_jwks(v: &Value) -> Result<(), String> {
    parse_jwks(v).map(|_| ())
}

/// Checks a JWK Set URL: `https`, a host, no fragment.
pub fn check_jwks_uri(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|_| format!("{raw:?} is not a URL"))?;
    if url.scheme() != "https" || url.host_str().is_none() || url.fragment().is_some() {
        return Err(format!(
            "the JWK Set URL {raw:?} must be an https URL without fragment"
        ));
    }
    Ok(())
}

/// The key of `set` a JWT names by `kid`, else its only key of the
/// algorithm's family.
pub fn select<'a>(set: &'a JwkSet, token: &Unverified) -> Option<&'a Jwk> {
    if let Some(kid) = &token.header.kid {
        return set.find(kid);
    }
    let family = token.alg.family();
    let mut fitting = set
        .keys
        .iter()
        .filter(|k| DecodingKey::from_jwk(k).is_ok_and(|d| d.family() == family));
    let first = fitting.next()?;
    fitting.next().is_none().then_some(first)
}

/// A claim as a string.
pub fn str_claim<'a>(claims: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

/// A claim as a number of seconds.
pub fn int_claim(claims: &serde_json::Map<String, Value>, name: &str) -> Option<i64> {
    claims
        .get(name)
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
}

/// Whether `aud` (a string or an array) names `wanted`.
pub fn audience_has(claims: &serde_json::Map<String, Value>, wanted: &[&str]) -> bool {
    match claims.get("aud") {
        Some(Value::String(s)) => wanted.contains(&s.as_str()),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .any(|s| wanted.contains(&s)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    fn token(header: Value) -> String {
        format!("{}.{}.c2ln", b64(&header), b64(&json!({"sub": "x"})))
    }

    #[test]
    fn only_the_four_algorithms_are_accepted() {
        for alg in ["ES256", "EdDSA", "Ed25519", "RS256", "PS256"] {
            assert!(parse(&token(json!({"alg": alg}))).is_ok(), "{alg}");
        }
        assert_eq!(accepted_alg("Ed25519"), Some(Algorithm::EdDSA));
        for alg in ["none", "HS256", "HS512", "ES384", "RS512", "", "NONE"] {
            assert!(
                matches!(
                    parse(&token(json!({"alg": alg}))),
                    Err(JoseError::Algorithm(_))
                ),
                "{alg}"
            );
        }
        assert!(parse("a.b").is_err());
        assert!(parse("a.b.c.d").is_err());
        assert!(parse(&"x".repeat(MAX_JWT_BYTES + 1)).is_err());
    }

    #[test]
    fn private_and_symmetric_keys_are_refused() {
        let ec = json!({"kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        assert!(public_jwk(&ec).is_ok());
        let mut private = ec.clone();
        private["d"] = json!("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI");
        assert!(public_jwk(&private).is_err());
        assert!(public_jwk(&json!({"kty": "oct", "k": "c2VjcmV0"})).is_err());
        // A newer `alg` value jsonwebtoken may not know is left out.
        let mut named = ec.clone();
        named["alg"] = json!("ESP256");
        assert!(public_jwk(&named).is_ok());
    }

    #[test]
    fn a_key_of_another_family_never_verifies() {
        let ec = json!({"kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        let jwk = public_jwk(&ec).unwrap();
        let t = parse(&token(json!({"alg": "EdDSA"}))).unwrap();
        assert_eq!(
            verify(&t, &jwk),
            Err(JoseError::Key("the key does not fit the algorithm"))
        );
        let t = parse(&token(json!({"alg": "ES256"}))).unwrap();
        assert_eq!(verify(&t, &jwk), Err(JoseError::Signature));
    }

    #[test]
    fn jwks_uri_is_https_without_fragment() {
        assert!(check_jwks_uri("https://idp.example.com/jwks").is_ok());
        assert!(check_jwks_uri("http://idp.example.com/jwks").is_err());
        assert!(check_jwks_uri("https://idp.example.com/jwks#x").is_err());
        assert!(check_jwks_uri("not a url").is_err());
        assert!(check_jwks(&json!({"keys": []})).is_err());
    }
}
