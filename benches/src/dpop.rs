//! DPoP proofs (RFC 9449) for the benchmark's DPoP scenario: an Ed25519 key
//! (aws-lc-rs, already in keygate's tree) and proofs signed with jsonwebtoken.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use sha2::Digest;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(0);

pub struct Key {
    encoding: EncodingKey,
    jwk: jsonwebtoken::jwk::Jwk,
}

impl Key {
    pub fn new() -> Option<Key> {
        use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).ok()?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).ok()?;
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        let jwk = serde_json::from_value(json!({"kty": "OKP", "crv": "Ed25519", "x": x})).ok()?;
        Some(Key {
            encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
            jwk,
        })
    }

    /// A proof for `method` and `url`, with `ath` of `token` when given.
    pub fn proof(&self, method: &str, url: &str, token: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk.clone());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let jti = format!(
            "{}-{}",
            uuid::Uuid::new_v4(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut claims = json!({"jti": jti, "htm": method, "htu": url, "iat": now});
        if let Some(t) = token {
            claims["ath"] = json!(URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(t.as_bytes())));
        }
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap_or_default()
    }
}

/// The server CPU time of one Ed25519 verification of a proof, in µs, as
/// keygate makes it (jsonwebtoken's verify with a key from the proof's JWK),
/// timed on `cpu` (the server's, between scenarios): the "one signature
/// verification" of the DPoP check's budget, taken in the same run.
pub fn verification_us(cpu: Option<usize>) -> Option<f64> {
    const ROUNDS: u32 = 2_000;
    let key = Key::new()?;
    let proof = key.proof("GET", "https://bench.example/v1/workspace", Some("token"));
    let (input, signature) = proof.rsplit_once('.')?;
    let (input, signature) = (input.to_string(), signature.to_string());
    let jwk = key.jwk.clone();
    std::thread::spawn(move || {
        if let Some(cpu) = cpu {
            crate::measure::pin(0, cpu);
        }
        let started = crate::measure::thread_cpu();
        for _ in 0..ROUNDS {
            let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).ok()?;
            let ok = jsonwebtoken::crypto::verify(
                &signature,
                input.as_bytes(),
                &decoding,
                Algorithm::EdDSA,
            );
            if !matches!(ok, Ok(true)) {
                return None;
            }
        }
        Some((crate::measure::thread_cpu() - started).as_secs_f64() * 1e6 / f64::from(ROUNDS))
    })
    .join()
    .ok()
    .flatten()
}
