//! DPoP proofs (RFC 9449 §4.3): a JWT of type `dpop+jwt`, signed with the key
//! in its own header, naming the request's method (`htm`) and URL (`htu`),
//! recent (`iat` within [`WINDOW`]), with a `jti` never seen before within
//! that window on any node (`replay`), and, with an access token, its hash
//! (`ath`) and the key it is bound to (`cnf.jkt`). The check is CPU only
//! (one signature verification); the replay check is the caller's one
//! database write ([`use_jti`]), or its share of a write for the proofs that
//! arrive together on one node ([`proof_use`], `replay::Queue`). The token endpoint, `/v1` and the gateway
//! check all use [`check_proof`]; the gateway passes the original request's
//! method and URL.

use super::jose;
use super::replay;
use crate::db::DbConn;
use crate::error::Result;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// How far from now a proof's `iat` may be, either way.
pub const WINDOW: i64 = 300;

/// The proof's `typ`.
pub const TYP: &str = "dpop+jwt";

/// The algorithms accepted for proofs (metadata
/// `dpop_signing_alg_values_supported`).
pub const ALGORITHMS: &[&str] = jose::ALGORITHMS;

/// What the proof must match.
pub struct Expected<'a> {
    /// The request's method.
    pub htm: &'a str,
    /// The request's URL (its query and fragment are ignored).
    pub htu: &'a str,
    /// The access token presented with it (`ath`); `None` at the token endpoint.
    pub access_token: Option<&'a str>,
    /// The key the token is bound to (`cnf.jkt`), if any.
    pub jkt: Option<&'a str>,
}

/// A proof that passed: its key's thumbprint, its `jti` and `iat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proven {
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
}

/// The keys of proofs verified on this node, by the SHA-256 of their
/// header's text (a header may be kilobytes; its digest is 32 bytes): a
/// client signs each proof with one key in the same header, so its next
/// proofs skip reading the header, the JWK and the thumbprint again (the
/// signature is verified every time). An entry is only made by a proof whose
/// signature verified; bounded at [`ProofKeys::MAX`], emptied when full.
#[derive(Default)]
pub struct ProofKeys {
    keys: std::sync::Mutex<HashMap<[u8; 32], Arc<ProofKey>>>,
}

/// What a proof's header says, once read and its key made.
struct ProofKey {
    alg: Algorithm,
    key: DecodingKey,
    jkt: String,
}

impl ProofKeys {
    /// Headers kept at most.
    pub const MAX: usize = 4096;

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<ProofKey>>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, header: &[u8; 32]) -> Option<Arc<ProofKey>> {
        self.lock().get(header).cloned()
    }

    fn keep(&self, header: [u8; 32], key: Arc<ProofKey>) {
        let mut keys = self.lock();
        if keys.len() >= Self::MAX {
            keys.clear();
        }
        keys.insert(header, key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Reads a proof's header: its `typ`, algorithm and key.
fn header_key(proof: &str) -> std::result::Result<ProofKey, String> {
    let token = jose::parse(proof).map_err(|e| e.to_string())?;
    if !token
        .header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(TYP))
    {
        return Err(format!("the proof's typ must be {TYP}"));
    }
    let raw = token
        .header
        .jwk
        .as_ref()
        .ok_or("the proof's header has no jwk")?;
    let jwk = jose::public_jwk(raw).map_err(|e| e.to_string())?;
    let key = jose::decoding_key(&jwk, token.alg).map_err(|e| e.to_string())?;
    let jkt = jose::thumbprint(&jwk).ok_or("the proof's key has no thumbprint")?;
    Ok(ProofKey {
        alg: token.alg,
        key,
        jkt,
    })
}

/// Checks a proof against `expected` at `now`; `Err` says why, for the log
/// and the `error_description`. `keys`: the node's [`ProofKeys`].
pub fn check_proof(
    keys: &ProofKeys,
    proof: &str,
    expected: &Expected,
    now: i64,
) -> std::result::Result<Proven, String> {
    let (header, claims, signature) = jose::split(proof).map_err(|e| e.to_string())?;
    let signing_input = &proof[..header.len() + 1 + claims.len()];
    let header = Sha256::digest(header.as_bytes()).into();
    let (key, known) = match keys.get(&header) {
        Some(key) => (key, true),
        None => (Arc::new(header_key(proof)?), false),
    };
    let c = jose::claims_of(claims).map_err(|e| e.to_string())?;
    jose::verify_with(signing_input, signature, key.alg, &key.key).map_err(|e| e.to_string())?;
    if !known {
        keys.keep(header, key.clone());
    }
    let jkt = key.jkt.clone();
    let jti = jose::str_claim(&c, "jti").filter(|j| !j.is_empty() && j.len() <= 256);
    let jti = jti.ok_or("the proof has no jti")?.to_string();
    if jose::str_claim(&c, "htm") != Some(expected.htm) {
        return Err("the proof is for another method (htm)".into());
    }
    if !same_url(jose::str_claim(&c, "htu").unwrap_or(""), expected.htu) {
        return Err("the proof is for another URL (htu)".into());
    }
    let iat = jose::int_claim(&c, "iat").ok_or("the proof has no iat")?;
    if (now - iat).abs() > WINDOW {
        return Err("the proof is too old or too far ahead (iat)".into());
    }
    if let Some(token) = expected.access_token {
        if jose::str_claim(&c, "ath") != Some(ath(token).as_str()) {
            return Err("the proof is for another access token (ath)".into());
        }
    }
    if expected.jkt.is_some_and(|bound| bound != jkt) {
        return Err("the proof is signed with another key than the token's".into());
    }
    Ok(Proven { jkt, jti, iat })
}

/// RFC 9449 §4.3: `htu` compared without query and fragment, after the
/// normalisation of RFC 3986 §6.2.2 and §6.2.3 that URL parsing does.
fn same_url(given: &str, expected: &str) -> bool {
    let bare = |s: &str| s.split(['?', '#']).next().unwrap_or_default().len();
    // The same text is the same URL, when it is one (a client sends the URL
    // it was given): one parse instead of two.
    if given[..bare(given)] == expected[..bare(expected)] {
        return url::Url::parse(expected).is_ok();
    }
    let strip = |s: &str| {
        url::Url::parse(s).ok().map(|mut u| {
            u.set_query(None);
            u.set_fragment(None);
            u
        })
    };
    matches!((strip(given), strip(expected)), (Some(a), Some(b)) if a == b)
}

/// The `ath` of an access token: its SHA-256, base64url.
pub fn ath(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

/// Records a proof's `jti` for the window it could be replayed in; `false`
/// for a replay (seen on this node or another).
pub fn use_jti(conn: &mut DbConn, proven: &Proven) -> Result<bool> {
    Ok(replay::use_each(conn, &[proof_use(proven)])?[0])
}

/// A proof's use, to be recorded with others ([`replay::Queue`]).
pub fn proof_use(proven: &Proven) -> replay::Use {
    // The last moment the proof is accepted (`check_proof`), from the proof
    // alone: a replay of it names the same.
    let until = proven.iat + WINDOW;
    replay::Use::new(replay::Kind::DpopProof, &proven.jkt, &proven.jti, until)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    use jsonwebtoken::{EncodingKey, Header};

    /// An Ed25519 key and its public JWK.
    fn key() -> (EncodingKey, serde_json::Value) {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x});
        (EncodingKey::from_ed_der(pkcs8.as_ref()), jwk)
    }

    const URL: &str = "https://id.example.com/v1/workspace";

    /// A proof signed by `signer` whose header carries `jwk`.
    fn proof(signer: &EncodingKey, jwk: &serde_json::Value, jti: &str) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(TYP.into());
        header.jwk = Some(serde_json::from_value(jwk.clone()).expect("jwk"));
        let claims =
            serde_json::json!({"jti": jti, "htm": "GET", "htu": URL, "iat": crate::db::now()});
        jsonwebtoken::encode(&header, &claims, signer).expect("signed")
    }

    fn expected() -> Expected<'static> {
        Expected {
            htm: "GET",
            htu: URL,
            access_token: None,
            jkt: None,
        }
    }

    #[test]
    fn a_known_header_skips_reading_its_key_but_never_the_signature() {
        let keys = ProofKeys::default();
        let now = crate::db::now();
        let (signer, jwk) = key();
        let first = check_proof(&keys, &proof(&signer, &jwk, "a"), &expected(), now).unwrap();
        assert_eq!(keys.len(), 1, "the verified proof's header is kept");
        let second = check_proof(&keys, &proof(&signer, &jwk, "b"), &expected(), now).unwrap();
        assert_eq!((second.jkt, second.jti.as_str()), (first.jkt, "b"));
        // Someone else's key signing under the known header: refused.
        let (thief, _) = key();
        let forged = proof(&thief, &jwk, "c");
        assert!(check_proof(&keys, &forged, &expected(), now).is_err());
        // A proof that fails its signature leaves nothing behind.
        let (other, other_jwk) = key();
        let bad = proof(&other, &other_jwk, "d");
        let (h, c, _) = jose::split(&bad).unwrap();
        let tampered = format!("{h}.{c}.{}", URL_SAFE_NO_PAD.encode([0u8; 64]));
        assert!(check_proof(&keys, &tampered, &expected(), now).is_err());
        assert_eq!(keys.len(), 1);
        // A known header does not excuse the claims.
        let other_url = Expected {
            htu: "https://id.example.com/v1/tags",
            ..expected()
        };
        assert!(check_proof(&keys, &proof(&signer, &jwk, "e"), &other_url, now).is_err());
    }

    #[test]
    fn the_known_headers_are_bounded() {
        let keys = ProofKeys::default();
        let (signer, jwk) = key();
        let kept = Arc::new(header_key(&proof(&signer, &jwk, "x")).unwrap());
        for i in 0..ProofKeys::MAX {
            keys.keep(crate::crypto::sha256(&i.to_le_bytes()), kept.clone());
        }
        assert_eq!(keys.len(), ProofKeys::MAX);
        keys.keep(crate::crypto::sha256(b"one more"), kept);
        assert_eq!(keys.len(), 1, "emptied when full");
    }

    #[test]
    fn htu_ignores_query_fragment_and_case_of_host() {
        assert!(same_url(
            "https://ID.example.com/v1/tags?x=1#f",
            "https://id.example.com/v1/tags"
        ));
        assert!(same_url(
            "https://id.example.com:443/v1",
            "https://id.example.com/v1"
        ));
        assert!(!same_url(
            "https://id.example.com/v1/forms",
            "https://id.example.com/v1/tags"
        ));
        assert!(!same_url(
            "http://id.example.com/v1",
            "https://id.example.com/v1"
        ));
        assert!(!same_url("", "https://id.example.com/v1"));
        // The same text: the same URL, when it is one.
        assert!(same_url(
            "https://id.example.com/v1/tags?x=1",
            "https://id.example.com/v1/tags#f"
        ));
        assert!(!same_url("not a url", "not a url"));
        assert!(!same_url("", ""));
    }
}
