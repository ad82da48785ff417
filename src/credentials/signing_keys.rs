//! Access-token signing keys: Ed25519 (EdDSA), generated on first start and kept in
//! the database so that every node signs and verifies with the same set. Older keys
//! stay published until every token they signed has expired.

use crate::config::MasterKey;
use crate::db::schema::signing_keys;
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::prelude::*;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::RwLock;

pub const ALGORITHM: &str = "EdDSA";

#[derive(Queryable, Selectable, Insertable, Clone)]
#[diesel(table_name = signing_keys)]
struct SigningKeyRow {
    kid: String,
    algorithm: String,
    private_key: String,
    public_key: String,
    created_at: i64,
    retired_at: Option<i64>,
}

/// The claims of an RFC 9068 access token.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub scope: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub workspace_id: String,
    /// RFC 9449 §6: the DPoP key the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// RFC 7800 `cnf` with RFC 9449's `jkt`: the SHA-256 thumbprint of the key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Confirmation {
    pub jkt: String,
}

/// The active key, parsed once (jsonwebtoken's `encode` parses a PKCS #8
/// key at every call, a ninth of a token's signing), with its JOSE header
/// encoded once: the header of every access token it signs is the same.
struct Signer {
    pair: Ed25519KeyPair,
    /// `{"typ":"at+jwt","alg":"EdDSA","kid":…}`, base64url.
    header: String,
}

impl Signer {
    fn new(kid: &str, pkcs8: &[u8]) -> Result<Signer> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .map_err(|_| Error::invalid("the stored signing key is corrupt"))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".to_string());
        header.kid = Some(kid.to_string());
        let json = serde_json::to_vec(&header)
            .map_err(|e| Error::internal(format!("a JOSE header: {e}")))?;
        Ok(Signer {
            pair,
            header: URL_SAFE_NO_PAD.encode(json),
        })
    }

    /// The JWS compact serialisation of `claims` (RFC 7515 §7.1): the
    /// header, the claims and the Ed25519 signature of the two, base64url.
    fn sign(&self, claims: &AccessClaims) -> Result<String> {
        let json =
            serde_json::to_vec(claims).map_err(|e| Error::internal(format!("claims: {e}")))?;
        let mut token = String::with_capacity(self.header.len() + 2 * json.len() + 90);
        token.push_str(&self.header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(json, &mut token);
        let signature = self.pair.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);
        Ok(token)
    }
}

struct Published {
    kid: String,
    /// Raw 32-byte public key, base64url (the JWK `x`).
    x: String,
    decoding: DecodingKey,
}

struct Inner {
    signer: Signer,
    published: Vec<Published>,
}

pub struct KeyRing {
    inner: RwLock<Inner>,
    /// What the stored keys are sealed under (`Config::master_key`).
    master_key: Option<MasterKey>,
    validation: Validation,
    /// Unix seconds of the last reload for an unknown `kid`.
    last_reload: std::sync::atomic::AtomicI64,
}

/// The least time between two reloads of the key set for unknown `kid`s.
const RELOAD_INTERVAL_SECS: i64 = 1;

fn generate(master_key: Option<&MasterKey>) -> Result<SigningKeyRow> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| Error::invalid("could not generate a signing key"))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| Error::invalid("could not read the generated signing key"))?;
    Ok(SigningKeyRow {
        kid: crate::crypto::random_token(12),
        algorithm: ALGORITHM.to_string(),
        private_key: crate::credentials::sealing::seal(pkcs8.as_ref(), master_key)
            .map_err(Error::Invalid)?,
        public_key: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        created_at: db::now(),
        retired_at: None,
    })
}

/// How the stored keys stand against `KEYGATE_MASTER_KEY`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sealing {
    /// Keys sealed under the master key (after this call).
    pub sealed: usize,
    /// Of those, keys that were in clear and were sealed now.
    pub sealed_now: usize,
    /// Keys in clear (only without a master key).
    pub clear: usize,
}

/// Brings the stored keys in line with `KEYGATE_MASTER_KEY`, or refuses:
/// - with it set, every key in clear is sealed in place (a conditional
///   `UPDATE`, so nodes starting together seal each key once), and every
///   sealed key must open with it (a wrong master key is an error);
/// - without it, any sealed key is an error: the node cannot sign, and a
///   rotation would add a key in clear beside them.
pub fn seal_stored(conn: &mut DbConn, master_key: Option<&MasterKey>) -> Result<Sealing> {
    let rows: Vec<(String, String)> = signing_keys::table
        .select((signing_keys::kid, signing_keys::private_key))
        .load(conn)?;
    let sealing = master_key.is_some();
    let mut out = Sealing::default();
    for (kid, stored) in rows {
        let is_sealed = crate::credentials::sealing::is_sealed(&stored);
        match (sealing, is_sealed) {
            (false, true) => {
                return Err(Error::invalid(
                    "the signing keys are sealed: set KEYGATE_MASTER_KEY to the key they were sealed with",
                ))
            }
            (false, false) => out.clear += 1,
            (true, true) => {
                // Proves the master key is the one they were sealed with.
                crate::credentials::sealing::open(&stored, master_key).map_err(Error::Invalid)?;
                out.sealed += 1;
            }
            (true, false) => {
                let plain = crate::credentials::sealing::open_clear(&stored).map_err(|e| {
                    Error::invalid(format!("cannot seal signing key {kid}: {e}"))
                })?;
                let sealed = crate::credentials::sealing::seal(&plain, master_key).map_err(|e| {
                    Error::invalid(format!("cannot seal signing key {kid}: {e}"))
                })?;
                diesel::update(
                    signing_keys::table
                        .filter(signing_keys::kid.eq(&kid))
                        .filter(signing_keys::private_key.eq(&stored)),
                )
                .set(signing_keys::private_key.eq(&sealed))
                .execute(conn)?;
                out.sealed += 1;
                out.sealed_now += 1;
            }
        }
    }
    Ok(out)
}

/// Adds a new signing key; older ones stop signing but stay published for
/// `keep_secs` (the access token lifetime). Returns the new key id. Refused
/// when the new key would not be stored like the others (see `seal_stored`).
pub fn rotate(conn: &mut DbConn, master_key: Option<&MasterKey>) -> Result<String> {
    seal_stored(conn, master_key)?;
    let row = generate(master_key)?;
    db::write_tx(conn, |conn| {
        diesel::update(signing_keys::table.filter(signing_keys::retired_at.is_null()))
            .set(signing_keys::retired_at.eq(db::now()))
            .execute(conn)?;
        diesel::insert_into(signing_keys::table)
            .values(&row)
            .execute(conn)?;
        Ok::<_, Error>(())
    })?;
    Ok(row.kid)
}

fn load_rows(conn: &mut DbConn, keep_secs: i64) -> Result<Vec<SigningKeyRow>> {
    let cutoff = db::now() - keep_secs;
    Ok(signing_keys::table
        .filter(
            signing_keys::retired_at
                .is_null()
                .or(signing_keys::retired_at.gt(cutoff)),
        )
        .order(signing_keys::created_at.desc())
        .select(SigningKeyRow::as_select())
        .load(conn)?)
}

fn build(rows: Vec<SigningKeyRow>, master_key: Option<&MasterKey>) -> Result<Inner> {
    let active = rows
        .iter()
        .find(|r| r.retired_at.is_none())
        .or(rows.first())
        .ok_or_else(|| Error::not_found("no signing key"))?;
    let der = crate::credentials::sealing::open(&active.private_key, master_key)
        .map_err(Error::Invalid)?;
    let signer = Signer::new(&active.kid, &der)?;
    let mut published = Vec::new();
    for r in &rows {
        if r.algorithm != ALGORITHM {
            continue;
        }
        let decoding = DecodingKey::from_ed_components(&r.public_key)
            .map_err(|_| Error::invalid("a stored public key is corrupt"))?;
        published.push(Published {
            kid: r.kid.clone(),
            x: r.public_key.clone(),
            decoding,
        });
    }
    Ok(Inner { signer, published })
}

#[derive(Debug, PartialEq, Eq)]
pub enum VerifyError {
    Malformed,
    UnknownKey,
    Invalid,
}

/// RFC 9068 §4: signature, issuer and expiry, with no leeway. The audience
/// must be present; which one is accepted is the check's to say (`/v1`
/// takes `{issuer}/v1`, a registered resource its own identifier).
fn validation(issuer: &str) -> Validation {
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[issuer]);
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 0;
    validation
}

impl KeyRing {
    /// Loads the keys, creating the first one when there is none.
    pub fn load(
        conn: &mut DbConn,
        issuer: &str,
        keep_secs: i64,
        master_key: Option<MasterKey>,
    ) -> Result<KeyRing> {
        let sealing = seal_stored(conn, master_key.as_ref())?;
        if sealing.sealed > 0 {
            log::info!(
                "signing keys: {} sealed with KEYGATE_MASTER_KEY ({} were stored in clear and sealed now)",
                sealing.sealed,
                sealing.sealed_now
            );
        }
        let mut rows = load_rows(conn, keep_secs)?;
        if rows.iter().all(|r| r.retired_at.is_some()) {
            rotate(conn, master_key.as_ref())?;
            rows = load_rows(conn, keep_secs)?;
        }
        Ok(KeyRing {
            inner: RwLock::new(build(rows, master_key.as_ref())?),
            master_key,
            validation: validation(issuer),
            last_reload: Default::default(),
        })
    }

    /// A key ring with one fresh key and no database (for tests and fuzzing).
    pub fn ephemeral(issuer: &str) -> Result<KeyRing> {
        Ok(KeyRing {
            inner: RwLock::new(build(vec![generate(None)?], None)?),
            master_key: None,
            validation: validation(issuer),
            last_reload: Default::default(),
        })
    }

    /// Re-reads the key set for a token signed with an unknown `kid`, at most
    /// once per `RELOAD_INTERVAL_SECS`: made-up `kid`s cannot turn every request
    /// into a database read. `false` when a reload was not due.
    pub fn reload_if_due(&self, conn: &mut DbConn, keep_secs: i64) -> Result<bool> {
        let now = db::now();
        let last = self.last_reload.load(std::sync::atomic::Ordering::Relaxed);
        if now - last < RELOAD_INTERVAL_SECS
            || self
                .last_reload
                .compare_exchange(
                    last,
                    now,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_err()
        {
            return Ok(false);
        }
        self.reload(conn, keep_secs)?;
        Ok(true)
    }

    /// Re-reads the key set (after a rotation on another node).
    pub fn reload(&self, conn: &mut DbConn, keep_secs: i64) -> Result<()> {
        // A key written in clear since (by an older node) is sealed before use.
        let sealing = seal_stored(conn, self.master_key.as_ref())?;
        if sealing.sealed_now > 0 {
            log::info!(
                "signing keys: {} stored in clear were sealed with KEYGATE_MASTER_KEY",
                sealing.sealed_now
            );
        }
        let rows = load_rows(conn, keep_secs)?;
        if rows.is_empty() {
            return Ok(());
        }
        let inner = build(rows, self.master_key.as_ref())?;
        if let Ok(mut guard) = self.inner.write() {
            *guard = inner;
        }
        Ok(())
    }

    pub fn sign(&self, claims: &AccessClaims) -> Result<String> {
        let guard = self
            .inner
            .read()
            .map_err(|_| Error::invalid("key ring poisoned"))?;
        guard.signer.sign(claims)
    }

    /// Verifies signature, `typ` (RFC 9068 §4), issuer, audience and expiry.
    pub fn verify(&self, token: &str) -> std::result::Result<AccessClaims, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if header.alg != Algorithm::EdDSA
            || !header.typ.as_deref().is_some_and(|t| {
                t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
            })
        {
            return Err(VerifyError::Invalid);
        }
        let kid = header.kid.ok_or(VerifyError::Invalid)?;
        let guard = self.inner.read().map_err(|_| VerifyError::Invalid)?;
        let key = guard
            .published
            .iter()
            .find(|p| p.kid == kid)
            .ok_or(VerifyError::UnknownKey)?;
        jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| VerifyError::Invalid)
    }

    /// The JWK Set (RFC 7517): public keys only.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = match self.inner.read() {
            Ok(guard) => guard
                .published
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "kty": "OKP",
                        "crv": "Ed25519",
                        "x": p.x,
                        "kid": p.kid,
                        "use": "sig",
                        "alg": ALGORITHM,
                    })
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        serde_json::json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ed25519 signatures are deterministic: the signer's token must be
    /// jsonwebtoken's `encode`'s, byte for byte, and verify.
    #[test]
    fn a_token_is_what_jsonwebtoken_encodes() {
        let row = generate(None).expect("a key");
        let der = crate::credentials::sealing::open(&row.private_key, None).expect("open");
        let signer = Signer::new(&row.kid, &der).expect("the signer");
        let claims = AccessClaims {
            iss: "https://id.example.test".into(),
            sub: "user-1".into(),
            aud: "https://id.example.test/v1".into(),
            client_id: "client-1".into(),
            scope: "tags:read forms:write".into(),
            jti: "jti-1".into(),
            iat: 1_800_000_000,
            exp: 1_800_000_900,
            workspace_id: "ws-1".into(),
            cnf: Some(Confirmation {
                jkt: "thumb\"print\\".into(),
            }),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".to_string());
        header.kid = Some(row.kid.clone());
        let key = jsonwebtoken::EncodingKey::from_ed_der(&der);
        let expected = jsonwebtoken::encode(&header, &claims, &key).expect("encode");
        assert_eq!(signer.sign(&claims).expect("signed"), expected);
    }
}
