//! The ID token's checks (OpenID Connect Core 1.0 §3.1.3.7), with
//! jsonwebtoken doing the signature and the registered claims: signed by a
//! key of the provider's JWKS with an asymmetric algorithm (never `none`,
//! never HMAC: a client secret is no key of the provider's), `iss` exactly the
//! provider, `aud` holding keygate's client id (and `azp` that id when there
//! are several audiences), `exp` and `iat` within 60 s of clock leeway, and
//! the `nonce` of the sign-in that asked for it.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// The clock leeway on `exp` and `iat`, in seconds.
pub const LEEWAY: u64 = 60;

/// The most keys of a JWKS kept (a larger set is cut, not refused).
pub const MAX_KEYS: usize = 50;

/// The algorithms an ID token may be signed with: every asymmetric one
/// jsonwebtoken verifies.
pub const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The signing keys of a JWKS that keygate can use.
#[derive(Clone, Default)]
pub struct Keys {
    keys: Vec<Jwk>,
}

impl Keys {
    /// The set's signature keys (keys for encryption, of unknown types or
    /// symmetric ones are left out), at most [`MAX_KEYS`].
    pub fn parse(body: &[u8]) -> Result<Keys, String> {
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<serde_json::Value>,
        }
        let set: Set =
            serde_json::from_slice(body).map_err(|e| format!("the JWKS is not valid: {e}"))?;
        let keys = set
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
            .filter(|k| !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption)))
            .filter(|k| {
                !matches!(
                    k.algorithm,
                    AlgorithmParameters::OctetKey(_) | AlgorithmParameters::Other(_)
                )
            })
            .take(MAX_KEYS)
            .collect();
        Ok(Keys { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a key with this `kid` is in the set.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys
            .iter()
            .any(|k| k.common.key_id.as_deref() == Some(kid))
    }

    /// The keys that may have signed a token with `kid` (all when the token
    /// names none) and `alg`.
    fn candidates(&self, kid: Option<&str>, alg: Algorithm) -> Vec<DecodingKey> {
        self.keys
            .iter()
            .filter(|k| kid.is_none() || k.common.key_id.as_deref() == kid)
            .filter(|k| fits(k, alg))
            .filter_map(|k| DecodingKey::from_jwk(k).ok())
            .collect()
    }
}

/// Whether `key` is of the type and curve `alg` needs and, when it names an
/// algorithm, names `alg`.
fn fits(key: &Jwk, alg: Algorithm) -> bool {
    if let Some(named) = key.common.key_algorithm {
        let named = serde_json::to_value(named).ok();
        let named = named.as_ref().and_then(|v| v.as_str());
        if named.and_then(|n| n.parse::<Algorithm>().ok()) != Some(alg) {
            return false;
        }
    }
    match (&key.algorithm, alg) {
        (AlgorithmParameters::RSA(_), a) => matches!(
            a,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES384) => p.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
            p.curve == EllipticCurve::Ed25519
        }
        _ => false,
    }
}

/// What the token's header says about its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyHint {
    pub kid: Option<String>,
    pub alg: Algorithm,
}

/// Why a token was refused, for the log (the person sees one plain sentence).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the ID token's header cannot be read, or its algorithm is not allowed: {0}")]
    Header(String),
    #[error("the ID token is signed with {0:?}, which is never accepted")]
    Algorithm(Algorithm),
    #[error("no key of the provider's JWKS has the ID token's kid {0:?}")]
    UnknownKey(String),
    #[error("the ID token is not valid: {0}")]
    Invalid(String),
}

/// The header's key id and algorithm, when the algorithm is one of
/// [`ALGORITHMS`] (`none` does not even parse).
pub fn key_hint(token: &str) -> Result<KeyHint, TokenError> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| TokenError::Header(e.to_string()))?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(TokenError::Algorithm(header.alg));
    }
    Ok(KeyHint {
        kid: header.kid,
        alg: header.alg,
    })
}

/// `email_verified` as a boolean, or the string some providers send.
#[derive(Deserialize, Clone, Debug)]
#[serde(untagged)]
pub enum Flag {
    Bool(bool),
    Text(String),
}

impl Flag {
    pub fn is_true(&self) -> bool {
        match self {
            Flag::Bool(b) => *b,
            Flag::Text(t) => t == "true",
        }
    }
}

#[derive(Deserialize, Clone, Debug)]
struct Claims {
    sub: String,
    /// One string or several; jsonwebtoken has checked that it holds ours.
    aud: serde_json::Value,
    iat: i64,
    nonce: Option<String>,
    azp: Option<String>,
    email: Option<String>,
    email_verified: Option<Flag>,
}

/// A verified ID token's claims that keygate uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub subject: String,
    pub email: Option<String>,
    /// `None` when the token does not say.
    pub email_verified: Option<bool>,
}

/// What the token must be.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    /// Unix seconds.
    pub now: i64,
}

/// Verifies `token` with `keys` (see the module's rules).
pub fn verify(token: &str, keys: &Keys, expected: &Expected<'_>) -> Result<Verified, TokenError> {
    let hint = key_hint(token)?;
    let candidates = keys.candidates(hint.kid.as_deref(), hint.alg);
    if candidates.is_empty() {
        return Err(TokenError::UnknownKey(hint.kid.unwrap_or_default()));
    }
    let mut validation = Validation::new(hint.alg);
    validation.leeway = LEEWAY;
    validation.set_issuer(&[expected.issuer]);
    validation.set_audience(&[expected.client_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let mut last = String::new();
    for key in &candidates {
        match jsonwebtoken::decode::<Claims>(token, key, &validation) {
            Ok(data) => return check_claims(data.claims, expected),
            Err(e) => last = e.to_string(),
        }
    }
    Err(TokenError::Invalid(last))
}

/// The claims jsonwebtoken leaves to us: `iat`, `azp`, `nonce`, `sub`.
fn check_claims(c: Claims, expected: &Expected<'_>) -> Result<Verified, TokenError> {
    let invalid = |why: &str| Err(TokenError::Invalid(why.to_string()));
    if c.iat > expected.now + LEEWAY as i64 {
        return invalid("it was issued in the future (iat)");
    }
    let several = c.aud.as_array().is_some_and(|a| a.len() > 1);
    match c.azp.as_deref() {
        Some(azp) if azp != expected.client_id => return invalid("azp is another client"),
        None if several => return invalid("several audiences and no azp"),
        _ => {}
    }
    match c.nonce.as_deref() {
        Some(n) if crate::crypto::ct_eq(n, expected.nonce) => {}
        Some(_) => return invalid("the nonce is not the sign-in's"),
        None => return invalid("it has no nonce"),
    }
    if c.sub.is_empty() || c.sub.len() > 255 {
        return invalid("sub is empty or longer than 255 characters");
    }
    Ok(Verified {
        subject: c.sub,
        email: c.email,
        email_verified: c.email_verified.map(|f| f.is_true()),
    })
}

#[cfg(test)]
mod tests;
