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
use sha2::{Digest, Sha256};

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

/// Checks a proof against `expected` at `now`; `Err` says why, for the log
/// and the `error_description`.
pub fn check_proof(
    proof: &str,
    expected: &Expected,
    now: i64,
) -> std::result::Result<Proven, String> {
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
    jose::verify(&token, &jwk).map_err(|e| e.to_string())?;
    let jkt = jose::thumbprint(&jwk).ok_or("the proof's key has no thumbprint")?;
    let c = &token.claims;
    let jti = jose::str_claim(c, "jti").filter(|j| !j.is_empty() && j.len() <= 256);
    let jti = jti.ok_or("the proof has no jti")?.to_string();
    if jose::str_claim(c, "htm") != Some(expected.htm) {
        return Err("the proof is for another method (htm)".into());
    }
    if !same_url(jose::str_claim(c, "htu").unwrap_or(""), expected.htu) {
        return Err("the proof is for another URL (htu)".into());
    }
    let iat = jose::int_claim(c, "iat").ok_or("the proof has no iat")?;
    if (now - iat).abs() > WINDOW {
        return Err("the proof is too old or too far ahead (iat)".into());
    }
    if let Some(token) = expected.access_token {
        if jose::str_claim(c, "ath") != Some(ath(token).as_str()) {
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
    use super::same_url;

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
