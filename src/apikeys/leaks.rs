//! Leaked-key reports from GitHub's secret-scanning partner program.
//!
//! When GitHub finds something that looks like a keygate credential in a
//! public repository, gist or issue, it `POST`s a report to
//! `/api-keys/leaks` (GitHub's "Secret scanning partner program" docs):
//!
//! - the body is a JSON array of `{"token","type","url","source"}`, one
//!   element per match (`type` is the token type name registered with GitHub,
//!   `url` where it was found, `source` e.g. `content`, `commit`, `gist`);
//! - it is signed over the raw body bytes with ECDSA P-256 / SHA-256 (FIPS
//!   186-4), the signature, base64 of its ASN.1 DER `Ecdsa-Sig-Value` (RFC
//!   3279 §2.2.3), in `Github-Public-Key-Signature`, and the id of the signing
//!   key in `Github-Public-Key-Identifier`;
//! - GitHub publishes its keys as `{"public_keys":[{"key_identifier","key",
//!   "is_current"}]}`, `key` a PEM `PUBLIC KEY` (SubjectPublicKeyInfo, RFC
//!   5480), at `https://api.github.com/meta/public_keys/secret_scanning`.
//!   keygate reads a copy from the file named by
//!   `KEYGATE_LEAK_REPORT_KEYS`, so verification never depends on reaching
//!   GitHub, and an operator decides when new keys are trusted;
//! - the answer lists `{"token_hash","token_type","label"}` per token, the
//!   hash the hex SHA-256 of the token (which is also how keygate stores keys,
//!   so the answer discloses nothing GitHub does not already hold).
//!
//! This module holds the pieces without I/O against the database: the
//! trusted keys ([`LeakReportKeys`]), the signature check
//! ([`LeakReportKeys::verify`]), the body parser ([`parse_report`]), the
//! answer rows ([`LeakAnswer`]), the token shapes ([`token_kind`]) and the
//! regular expressions registered with GitHub ([`KEY_PATTERNS`]).
//!
//! # Credential formats
//!
//! Both are `PREFIX`, a 10-character public id, `_`, 32 random characters
//! and a 6-character checksum, every character but the separators base62
//! (`[0-9A-Za-z]`), 53 in all. The checksum is the CRC-32 (IEEE, as `crc32fast`) of everything
//! before it, written as a fixed-width 6-digit base62 number. A scanner can
//! check it offline, so noise that merely matches the pattern is discarded
//! without a report, and a typo'd key is refused without a database query.
//!
//! | credential | prefix | GitHub token type |
//! |---|---|---|
//! | API key (see `apikeys`) | `kgk_` | `keygate_api_key` |
//! | mailbox auth key (SMTP), proposed | `kgm_` | `keygate_mailbox_auth_key` |
//!
//! The mailbox auth key mirrors the API key exactly, with its own prefix, so
//! one scanner rule shape, one checksum routine and one length cover both,
//! and the prefix alone routes a reported token to the right table. `kgm_`
//! ("keygate mailbox") is distinct from the API key's `kgk_` and from the
//! OAuth client secret's `kgs_`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use thiserror::Error;

/// Header with the base64 DER signature over the raw body.
pub const SIGNATURE_HEADER: &str = "Github-Public-Key-Signature";
/// Header with the `key_identifier` of the key that signed.
pub const KEY_IDENTIFIER_HEADER: &str = "Github-Public-Key-Identifier";

/// The largest report body accepted: 1 MiB. The server must cap the body at
/// this size before reading it (actix `PayloadConfig` / `web::Bytes` limit);
/// [`parse_report`] checks it again.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// The most reports one request may carry. GitHub batches matches; 10,000
/// is far above a real batch and bounds the revocations one request causes.
pub const MAX_REPORT_ENTRIES: usize = 10_000;
/// The largest trusted keys file read (GitHub's holds a handful of keys).
pub const MAX_KEYS_FILE_BYTES: u64 = 1 << 20;
/// A DER P-256 signature is at most 72 bytes, 96 in base64; anything much
/// longer is refused before decoding.
const MAX_SIGNATURE_B64_LEN: usize = 256;

/// The API key prefix; must equal `apikeys::KEY_PREFIX`.
pub const API_KEY_PREFIX: &str = "kgk_";
/// The mailbox auth key prefix (see the module documentation).
pub const MAILBOX_AUTH_KEY_PREFIX: &str = "kgm_";
/// The token type names registered with GitHub.
pub const API_KEY_TOKEN_TYPE: &str = "keygate_api_key";
pub const MAILBOX_AUTH_KEY_TOKEN_TYPE: &str = "keygate_mailbox_auth_key";

const PUBLIC_ID_LEN: usize = 10;
const SECRET_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
const PREFIX_LEN: usize = 4;
/// Length of either credential.
pub const CREDENTIAL_LEN: usize = PREFIX_LEN + PUBLIC_ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;

/// A pattern a secret scanner registers for one keygate credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPattern {
    /// The token type name GitHub sends back in a report's `type`.
    pub token_type: &'static str,
    /// The literal prefix, for scanners that pre-filter on one.
    pub prefix: &'static str,
    /// The regular expression (RE2 / Rust `regex` / PCRE compatible: no
    /// look-around), bounded by `\b` so a key inside a longer word of base62
    /// characters is not matched.
    pub regex: &'static str,
}

/// What a scanner needs to find keygate credentials. The checksum (module
/// documentation) is the post-processing step that tells a key from noise.
pub const KEY_PATTERNS: &[KeyPattern] = &[
    KeyPattern {
        token_type: API_KEY_TOKEN_TYPE,
        prefix: API_KEY_PREFIX,
        regex: r"\bkgk_[0-9A-Za-z]{10}_[0-9A-Za-z]{38}\b",
    },
    KeyPattern {
        token_type: MAILBOX_AUTH_KEY_TOKEN_TYPE,
        prefix: MAILBOX_AUTH_KEY_PREFIX,
        regex: r"\bkgm_[0-9A-Za-z]{10}_[0-9A-Za-z]{38}\b",
    },
];

/// Which keygate credential a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    ApiKey,
    MailboxAuthKey,
}

impl TokenKind {
    pub fn token_type(self) -> &'static str {
        match self {
            TokenKind::ApiKey => API_KEY_TOKEN_TYPE,
            TokenKind::MailboxAuthKey => MAILBOX_AUTH_KEY_TOKEN_TYPE,
        }
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The checksum of a credential body: CRC-32 as 6 fixed-width base62 digits
/// (the same encoding as `crypto::base62_u32`).
pub fn credential_checksum(body: &str) -> [u8; CHECKSUM_LEN] {
    let mut n = crc32fast::hash(body.as_bytes());
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// Which credential `token` is, if it has one's exact shape and its checksum
/// holds; `None` for anything else. Offline: says nothing about whether the
/// key exists, so the caller still looks up its hash.
pub fn token_kind(token: &str) -> Option<TokenKind> {
    let bytes = token.as_bytes();
    if bytes.len() != CREDENTIAL_LEN || !bytes.iter().all(u8::is_ascii) {
        return None;
    }
    let kind = if token.starts_with(API_KEY_PREFIX) {
        TokenKind::ApiKey
    } else if token.starts_with(MAILBOX_AUTH_KEY_PREFIX) {
        TokenKind::MailboxAuthKey
    } else {
        return None;
    };
    let separator = PREFIX_LEN + PUBLIC_ID_LEN;
    let shape_ok = bytes.iter().enumerate().skip(PREFIX_LEN).all(|(i, b)| {
        if i == separator {
            *b == b'_'
        } else {
            b.is_ascii_alphanumeric()
        }
    });
    if !shape_ok {
        return None;
    }
    // All ASCII, so every index is a character boundary.
    let (body, sum) = token.split_at_checked(CREDENTIAL_LEN - CHECKSUM_LEN)?;
    (credential_checksum(body) == sum.as_bytes()).then_some(kind)
}

/// Why a trusted keys file was refused.
#[derive(Debug, Error)]
pub enum LeakKeysError {
    #[error("cannot read the leak report keys file: {0}")]
    Read(#[from] std::io::Error),
    #[error("the leak report keys file is larger than {MAX_KEYS_FILE_BYTES} bytes")]
    TooLarge,
    #[error("the leak report keys file is not GitHub's public_keys JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the leak report keys file lists no keys")]
    NoKeys,
    #[error("a leak report key has an empty key_identifier")]
    EmptyIdentifier,
    #[error("the leak report key {0:?} is listed twice")]
    DuplicateIdentifier(String),
    #[error("the leak report key {id:?} is not a PEM P-256 public key: {reason}")]
    BadKey { id: String, reason: String },
}

/// Why a report's signature was refused. The endpoint answers `401` for
/// every variant (and logs which one); a sender learns nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LeakAuthError {
    #[error("the report has no signature or key identifier")]
    Missing,
    #[error("the report is signed with an unknown key")]
    UnknownKey,
    #[error("the report's signature is not base64 DER")]
    MalformedSignature,
    #[error("the report's signature does not verify")]
    BadSignature,
}

/// Why a (correctly signed) report body was refused; the endpoint answers
/// `400`.
#[derive(Debug, Error)]
pub enum ReportError {
    #[error("the report is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("the report has more than {MAX_REPORT_ENTRIES} entries")]
    TooManyEntries,
    #[error("the report is not a JSON array of {{\"token\",\"type\",\"url\",\"source\"}}: {0}")]
    Malformed(serde_json::Error),
}

#[derive(Deserialize)]
struct KeysFile {
    public_keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
struct KeyEntry {
    key_identifier: String,
    key: String,
    #[serde(default)]
    is_current: bool,
}

#[derive(Debug)]
struct TrustedKey {
    key: VerifyingKey,
    is_current: bool,
}

/// GitHub's public keys, by `key_identifier`. Cheap to clone.
///
/// Every listed key verifies, current or not: GitHub names the signing key
/// in each request, and during a rotation reports signed with the outgoing
/// key are still genuine. `is_current` is kept for display only. To stop
/// trusting a key, remove it from the file.
#[derive(Debug, Clone)]
pub struct LeakReportKeys {
    keys: Arc<HashMap<String, TrustedKey>>,
}

impl LeakReportKeys {
    /// Parses GitHub's `{"public_keys":[…]}` document (unknown members are
    /// ignored, as in GitHub's own API response). Every key must be a PEM
    /// SubjectPublicKeyInfo on P-256; one bad or duplicated key refuses the
    /// whole file, so a broken rotation is noticed at start-up.
    pub fn from_json(json: &[u8]) -> Result<Self, LeakKeysError> {
        let file: KeysFile = serde_json::from_slice(json)?;
        let mut keys = HashMap::with_capacity(file.public_keys.len());
        for entry in file.public_keys {
            if entry.key_identifier.is_empty() {
                return Err(LeakKeysError::EmptyIdentifier);
            }
            let key = VerifyingKey::from_public_key_pem(entry.key.trim()).map_err(|e| {
                LeakKeysError::BadKey {
                    id: entry.key_identifier.clone(),
                    reason: e.to_string(),
                }
            })?;
            let trusted = TrustedKey {
                key,
                is_current: entry.is_current,
            };
            if keys.insert(entry.key_identifier.clone(), trusted).is_some() {
                return Err(LeakKeysError::DuplicateIdentifier(entry.key_identifier));
            }
        }
        if keys.is_empty() {
            return Err(LeakKeysError::NoKeys);
        }
        Ok(Self {
            keys: Arc::new(keys),
        })
    }

    /// Reads and parses the keys file at `path` (at most
    /// [`MAX_KEYS_FILE_BYTES`]).
    pub fn load(path: &Path) -> Result<Self, LeakKeysError> {
        let mut buf = Vec::new();
        std::fs::File::open(path)?
            .take(MAX_KEYS_FILE_BYTES + 1)
            .read_to_end(&mut buf)?;
        if buf.len() as u64 > MAX_KEYS_FILE_BYTES {
            return Err(LeakKeysError::TooLarge);
        }
        Self::from_json(&buf)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The identifiers with their `is_current` flag, sorted (for logs).
    pub fn identifiers(&self) -> Vec<(&str, bool)> {
        let mut ids: Vec<(&str, bool)> = self
            .keys
            .iter()
            .map(|(id, k)| (id.as_str(), k.is_current))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Checks the signature `signature_b64` (standard base64, padded, of a
    /// DER ECDSA signature) made by the key `key_identifier` over `raw_body`,
    /// exactly the bytes received: verify before parsing, never a
    /// re-serialisation. Both low- and high-S signatures are accepted, as
    /// FIPS 186-4 does (GitHub does not promise low-S).
    pub fn verify(
        &self,
        key_identifier: &str,
        signature_b64: &str,
        raw_body: &[u8],
    ) -> Result<(), LeakAuthError> {
        let signature_b64 = signature_b64.trim_matches(|c: char| c.is_ascii_whitespace());
        if key_identifier.is_empty() || signature_b64.is_empty() {
            return Err(LeakAuthError::Missing);
        }
        let trusted = self
            .keys
            .get(key_identifier)
            .ok_or(LeakAuthError::UnknownKey)?;
        if signature_b64.len() > MAX_SIGNATURE_B64_LEN {
            return Err(LeakAuthError::MalformedSignature);
        }
        let der = STANDARD
            .decode(signature_b64)
            .map_err(|_| LeakAuthError::MalformedSignature)?;
        let signature = Signature::from_der(&der).map_err(|_| LeakAuthError::MalformedSignature)?;
        trusted
            .key
            .verify(raw_body, &signature)
            .map_err(|_| LeakAuthError::BadSignature)
    }

    /// [`verify`](Self::verify) from optional header values: a missing
    /// header is [`LeakAuthError::Missing`].
    pub fn verify_headers(
        &self,
        key_identifier: Option<&str>,
        signature_b64: Option<&str>,
        raw_body: &[u8],
    ) -> Result<(), LeakAuthError> {
        match (key_identifier, signature_b64) {
            (Some(id), Some(sig)) => self.verify(id, sig, raw_body),
            _ => Err(LeakAuthError::Missing),
        }
    }
}

/// One reported match. Unknown members are ignored; `token` and `type` must
/// be strings, `url` and `source` strings or absent/null.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LeakReport {
    pub token: String,
    #[serde(rename = "type")]
    pub token_type: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
}

impl LeakReport {
    /// Hex SHA-256 of the token: the answer's `token_hash`, and the value to
    /// look the key up by (keygate stores the SHA-256 of the whole key).
    pub fn token_hash(&self) -> String {
        sha256_hex(self.token.as_bytes())
    }

    /// The keygate credential the token has the shape of, checksum included.
    pub fn kind(&self) -> Option<TokenKind> {
        token_kind(&self.token)
    }
}

fn sha256_hex(data: &[u8]) -> String {
    crate::crypto::hex(&crate::crypto::sha256(data))
}

/// A report element, which must be a JSON object: serde's derived structs
/// would also take a positional array (`["token","type"]`), which is not
/// GitHub's format.
struct ReportObject(LeakReport);

impl<'de> Deserialize<'de> for ReportObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = LeakReport;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a report object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                LeakReport::deserialize(MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(ObjectVisitor).map(ReportObject)
    }
}

/// A JSON array read element by element, refusing more than
/// [`MAX_REPORT_ENTRIES`] before allocating for them.
struct BoundedReports<'a> {
    too_many: &'a Cell<bool>,
}

impl<'de> Visitor<'de> for BoundedReports<'_> {
    type Value = Vec<LeakReport>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of at most {MAX_REPORT_ENTRIES} reports")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while out.len() < MAX_REPORT_ENTRIES {
            match seq.next_element::<ReportObject>()? {
                Some(ReportObject(report)) => out.push(report),
                None => return Ok(out),
            }
        }
        if seq.next_element::<IgnoredAny>()?.is_some() {
            self.too_many.set(true);
            return Err(de::Error::custom("too many reports"));
        }
        Ok(out)
    }
}

/// Parses a report body (after [`LeakReportKeys::verify`]): a JSON array of
/// at most [`MAX_REPORT_ENTRIES`] reports, at most [`MAX_BODY_BYTES`]. An
/// empty array is valid and answers `[]`. Duplicates are kept: each gets its
/// answer row.
pub fn parse_report(raw_body: &[u8]) -> Result<Vec<LeakReport>, ReportError> {
    if raw_body.len() > MAX_BODY_BYTES {
        return Err(ReportError::TooLarge);
    }
    let too_many = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(raw_body);
    let parsed = de
        .deserialize_seq(BoundedReports {
            too_many: &too_many,
        })
        .and_then(|reports| de.end().map(|()| reports));
    match parsed {
        Ok(reports) => Ok(reports),
        Err(_) if too_many.get() => Err(ReportError::TooManyEntries),
        Err(e) => Err(ReportError::Malformed(e)),
    }
}

/// GitHub's verdict on a reported token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// The token is a real keygate credential.
    TruePositive,
    /// Anything else (wrong shape, bad checksum, not on record).
    FalsePositive,
}

/// One row of the answer, serialised as
/// `{"token_hash","token_type","label"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeakAnswer {
    pub token_hash: String,
    pub token_type: String,
    pub label: Label,
}

impl LeakAnswer {
    /// The row for `report`; `real` is the caller's verdict from its
    /// database lookup by [`LeakReport::token_hash`].
    pub fn new(report: &LeakReport, real: bool) -> Self {
        Self {
            token_hash: report.token_hash(),
            token_type: report.token_type.clone(),
            label: if real {
                Label::TruePositive
            } else {
                Label::FalsePositive
            },
        }
    }
}

/// The answer body, one row per report in order; `is_real` decides each
/// label (it is where the endpoint revokes and logs).
pub fn answer_rows<F>(reports: &[LeakReport], mut is_real: F) -> Vec<LeakAnswer>
where
    F: FnMut(&LeakReport) -> bool,
{
    reports
        .iter()
        .map(|r| LeakAnswer::new(r, is_real(r)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::SigningKey;
    use p256::pkcs8::{EncodePublicKey, LineEnding};
    use proptest::prelude::*;

    const KEY_ID: &str = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";

    struct Signer256 {
        key: SigningKey,
        keys: LeakReportKeys,
    }

    fn fresh() -> Signer256 {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let pem = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("pem");
        let doc = serde_json::json!({
            "public_keys": [
                {"key_identifier": KEY_ID, "key": pem, "is_current": true},
            ]
        });
        let keys = LeakReportKeys::from_json(doc.to_string().as_bytes()).expect("keys");
        Signer256 { key, keys }
    }

    fn sign(key: &SigningKey, body: &[u8]) -> String {
        let sig: Signature = key.sign(body);
        STANDARD.encode(sig.to_der().as_bytes())
    }

    const BODY: &[u8] = br#"[{"token":"kgk_x","type":"keygate_api_key","url":"https://github.com/o/r/blob/main/a.env","source":"content"}]"#;

    #[test]
    fn a_signed_report_verifies() {
        let s = fresh();
        let sig = sign(&s.key, BODY);
        assert_eq!(s.keys.verify(KEY_ID, &sig, BODY), Ok(()));
        assert_eq!(
            s.keys.verify_headers(Some(KEY_ID), Some(&sig), BODY),
            Ok(())
        );
        assert_eq!(s.keys.len(), 1);
        assert_eq!(s.keys.identifiers(), vec![(KEY_ID, true)]);
    }

    #[test]
    fn high_s_signatures_verify_too() {
        let s = fresh();
        let sig: Signature = s.key.sign(BODY);
        let (r, low_s) = sig.split_scalars();
        let flipped = Signature::from_scalars(r, -low_s).expect("flipped");
        for variant in [sig, flipped] {
            let b64 = STANDARD.encode(variant.to_der().as_bytes());
            assert_eq!(s.keys.verify(KEY_ID, &b64, BODY), Ok(()));
        }
    }

    #[test]
    fn anything_else_is_refused() {
        let s = fresh();
        let sig = sign(&s.key, BODY);
        let mut changed = BODY.to_vec();
        changed[3] ^= 1;
        assert_eq!(
            s.keys.verify(KEY_ID, &sig, &changed),
            Err(LeakAuthError::BadSignature)
        );
        // Reserialising is not the same body: whitespace matters.
        let mut spaced = BODY.to_vec();
        spaced.push(b'\n');
        assert_eq!(
            s.keys.verify(KEY_ID, &sig, &spaced),
            Err(LeakAuthError::BadSignature)
        );
        assert_eq!(
            s.keys.verify("other", &sig, BODY),
            Err(LeakAuthError::UnknownKey)
        );
        assert_eq!(s.keys.verify(KEY_ID, "", BODY), Err(LeakAuthError::Missing));
        assert_eq!(s.keys.verify("", &sig, BODY), Err(LeakAuthError::Missing));
        assert_eq!(
            s.keys.verify_headers(Some(KEY_ID), None, BODY),
            Err(LeakAuthError::Missing)
        );
        assert_eq!(
            s.keys.verify_headers(None, Some(&sig), BODY),
            Err(LeakAuthError::Missing)
        );
        for bad in ["not base64!", "AAAA", "MEUCIQ", "é", &"A".repeat(4000)] {
            assert_eq!(
                s.keys.verify(KEY_ID, bad, BODY),
                Err(LeakAuthError::MalformedSignature),
                "{bad}"
            );
        }
        // Another key's signature, and a raw (r||s, not DER) signature.
        let other = SigningKey::random(&mut rand::rngs::OsRng);
        assert_eq!(
            s.keys.verify(KEY_ID, &sign(&other, BODY), BODY),
            Err(LeakAuthError::BadSignature)
        );
        let raw: Signature = s.key.sign(BODY);
        assert_eq!(
            s.keys
                .verify(KEY_ID, &STANDARD.encode(raw.to_bytes()), BODY),
            Err(LeakAuthError::MalformedSignature)
        );
    }

    #[test]
    fn keys_file_edge_cases() {
        let s = fresh();
        let pem = s
            .key
            .verifying_key()
            .to_public_key_pem(LineEnding::CRLF)
            .expect("pem");
        let with = |keys: serde_json::Value| {
            LeakReportKeys::from_json(
                serde_json::json!({ "public_keys": keys })
                    .to_string()
                    .as_bytes(),
            )
        };
        // Extra members and a non-current key are fine.
        let ok = with(serde_json::json!([
            {"key_identifier": "a", "key": pem, "is_current": false, "extra": 1},
            {"key_identifier": "b", "key": pem},
        ]))
        .expect("two keys");
        assert_eq!(ok.identifiers(), vec![("a", false), ("b", false)]);
        assert!(matches!(
            with(serde_json::json!([])),
            Err(LeakKeysError::NoKeys)
        ));
        assert!(matches!(
            with(
                serde_json::json!([{"key_identifier": "a", "key": pem}, {"key_identifier": "a", "key": pem}])
            ),
            Err(LeakKeysError::DuplicateIdentifier(_))
        ));
        assert!(matches!(
            with(serde_json::json!([{"key_identifier": "", "key": pem}])),
            Err(LeakKeysError::EmptyIdentifier)
        ));
        assert!(matches!(
            with(
                serde_json::json!([{"key_identifier": "a", "key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}])
            ),
            Err(LeakKeysError::BadKey { .. })
        ));
        assert!(matches!(
            with(serde_json::json!([{"key_identifier": "a", "key": 5}])),
            Err(LeakKeysError::Json(_))
        ));
        assert!(matches!(
            LeakReportKeys::from_json(b"[]"),
            Err(LeakKeysError::Json(_))
        ));
        // A P-384 key is not a P-256 key (a fixed SubjectPublicKeyInfo).
        let p384 = "-----BEGIN PUBLIC KEY-----\n\
            MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEQp2hZvT17HFPI3nt1Zfj+vP2PxlwacbC\n\
            rqblbvQuYMaPwkYgFyiurdh/kaDk/t9Bya7fFKFcLHD3/4T02xdAm4ZOASAWuGal\n\
            TyHhE5i8rhwMktp2Aeb0189yzwqemfZ1\n-----END PUBLIC KEY-----";
        assert!(matches!(
            with(serde_json::json!([{"key_identifier": "a", "key": p384}])),
            Err(LeakKeysError::BadKey { .. })
        ));
    }

    #[test]
    fn keys_file_is_read_from_disk() {
        let s = fresh();
        let pem = s
            .key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("pem");
        let dir = std::env::temp_dir().join(format!("keygate-leaks-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("keys.json");
        let doc = serde_json::json!({"public_keys": [{"key_identifier": KEY_ID, "key": pem, "is_current": true}]});
        std::fs::write(&path, doc.to_string()).expect("write");
        let keys = LeakReportKeys::load(&path).expect("load");
        assert_eq!(keys.verify(KEY_ID, &sign(&s.key, BODY), BODY), Ok(()));
        std::fs::write(&path, vec![b' '; MAX_KEYS_FILE_BYTES as usize + 1]).expect("write");
        assert!(matches!(
            LeakReportKeys::load(&path),
            Err(LeakKeysError::TooLarge)
        ));
        assert!(matches!(
            LeakReportKeys::load(&dir.join("missing.json")),
            Err(LeakKeysError::Read(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn reports_parse_and_answer() {
        let body = br#"[
            {"token":"t1","type":"keygate_api_key","url":"https://github.com/o/r","source":"content","extra":{"deep":[1,2]}},
            {"token":"t2","type":"keygate_mailbox_auth_key"},
            {"token":"t2","type":"keygate_mailbox_auth_key","url":null}
        ]"#;
        let reports = parse_report(body).expect("reports");
        assert_eq!(reports.len(), 3);
        assert_eq!(reports[0].url.as_deref(), Some("https://github.com/o/r"));
        assert_eq!(reports[0].source.as_deref(), Some("content"));
        assert_eq!(reports[1].url, None);
        let rows = answer_rows(&reports, |r| r.token == "t1");
        let json = serde_json::to_value(&rows).expect("json");
        assert_eq!(
            json[0],
            serde_json::json!({
                "token_hash": sha256_hex(b"t1"),
                "token_type": "keygate_api_key",
                "label": "true_positive",
            })
        );
        assert_eq!(json[1]["label"], "false_positive");
        assert_eq!(json[2]["token_hash"], json[1]["token_hash"]);
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(parse_report(b"[]").expect("empty").is_empty());
        assert!(parse_report(b" [ ] \n").expect("spaces").is_empty());
    }

    #[test]
    fn malformed_reports_are_refused() {
        for bad in [
            &b""[..],
            b"{}",
            b"null",
            b"\"x\"",
            b"[1]",
            b"[[\"t\",\"keygate_api_key\"]]",
            b"[{}]",
            b"[{\"token\":\"t\"}]",
            b"[{\"type\":\"t\"}]",
            b"[{\"token\":5,\"type\":\"t\"}]",
            b"[{\"token\":\"t\",\"type\":[]}]",
            b"[{\"token\":\"t\",\"type\":\"t\",\"url\":7}]",
            b"[{\"token\":\"t\",\"type\":\"t\",\"source\":{}}]",
            b"[{\"token\":\"t\",\"token\":\"u\",\"type\":\"t\"}]",
            b"[{\"token\":\"t\",\"type\":\"t\"}] []",
            b"[{\"token\":\"t\",\"type\":\"t\"},]",
            b"[{\"token\":\"\xff\",\"type\":\"t\"}]",
        ] {
            assert!(
                matches!(parse_report(bad), Err(ReportError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = format!("[{}]", "[".repeat(10_000));
        assert!(matches!(
            parse_report(deep.as_bytes()),
            Err(ReportError::Malformed(_))
        ));
    }

    #[test]
    fn huge_reports_are_refused() {
        let entry = r#"{"token":"t","type":"x"}"#;
        let at_cap = format!("[{}]", vec![entry; MAX_REPORT_ENTRIES].join(","));
        assert_eq!(
            parse_report(at_cap.as_bytes()).expect("at the cap").len(),
            MAX_REPORT_ENTRIES
        );
        let over = format!("[{}]", vec![entry; MAX_REPORT_ENTRIES + 1].join(","));
        assert!(matches!(
            parse_report(over.as_bytes()),
            Err(ReportError::TooManyEntries)
        ));
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert!(matches!(parse_report(&big), Err(ReportError::TooLarge)));
    }

    /// A key in the format of `apikeys` (shape + checksum), built here.
    fn credential(prefix: &str, public_id: &str, secret: &str) -> String {
        let body = format!("{prefix}{public_id}_{secret}");
        let sum = credential_checksum(&body);
        body + std::str::from_utf8(&sum).expect("ascii")
    }

    const SECRET: &str = "abcdefghijklmnopqrstuvwxyz012345";

    #[test]
    fn checksum_encoding_matches_the_api_keys() {
        // The same fixed-width base62 as `crypto::base62_u32`.
        assert_eq!(crc32fast::hash(b""), 0);
        assert_eq!(&credential_checksum(""), b"000000");
        // crc32("123456789") = 0xCBF43926 (the CRC-32 check value).
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
        assert_eq!(&credential_checksum("123456789"), b"3jZRME");
        // Produced by `apikeys::format_for_tests("AbCdEf0123", SECRET)`, which
        // `apikeys::parse` accepts: the two implementations agree.
        let from_apikeys = "kgk_AbCdEf0123_abcdefghijklmnopqrstuvwxyz0123450lSuQb";
        assert_eq!(
            credential(API_KEY_PREFIX, "AbCdEf0123", SECRET),
            from_apikeys
        );
        assert_eq!(token_kind(from_apikeys), Some(TokenKind::ApiKey));
    }

    #[test]
    fn token_kinds_need_shape_and_checksum() {
        let api = credential(API_KEY_PREFIX, "AbCdEf0123", SECRET);
        let mailbox = credential(MAILBOX_AUTH_KEY_PREFIX, "AbCdEf0123", SECRET);
        assert_eq!(api.len(), CREDENTIAL_LEN);
        assert_eq!(token_kind(&api), Some(TokenKind::ApiKey));
        assert_eq!(token_kind(&mailbox), Some(TokenKind::MailboxAuthKey));
        assert_eq!(TokenKind::ApiKey.token_type(), API_KEY_TOKEN_TYPE);
        // The same body under the other prefix has another checksum.
        let swapped = format!("kgm_{}", api.trim_start_matches("kgk_"));
        assert_eq!(token_kind(&swapped), None);
        let mut typo = api.clone().into_bytes();
        typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
        assert_eq!(token_kind(&String::from_utf8(typo).expect("ascii")), None);
        assert_eq!(token_kind(&format!("{api}x")), None);
        assert_eq!(token_kind(""), None);
        assert_eq!(token_kind("kgs_abc"), None);
        let multibyte = format!("kgk_{}a", "é".repeat((CREDENTIAL_LEN - 5) / 2));
        assert_eq!(multibyte.len(), CREDENTIAL_LEN);
        assert_eq!(token_kind(&multibyte), None);
    }

    #[test]
    fn patterns_find_keys_in_text() {
        let api = credential(API_KEY_PREFIX, "AbCdEf0123", SECRET);
        let mailbox = credential(MAILBOX_AUTH_KEY_PREFIX, "ZZZZZZZZZZ", SECRET);
        let text =
            format!("KEYGATE_KEY={api}\nsmtp_password: \"{mailbox}\"\nkgk_short_1\nx{api}\n{api}0");
        let mut found = Vec::new();
        for p in KEY_PATTERNS {
            let re = regex::Regex::new(p.regex).expect("pattern compiles");
            assert!(p.regex.contains(p.prefix));
            for m in re.find_iter(&text) {
                found.push((p.token_type, m.as_str().to_string()));
            }
        }
        assert_eq!(
            found,
            vec![
                (API_KEY_TOKEN_TYPE, api.clone()),
                (MAILBOX_AUTH_KEY_TOKEN_TYPE, mailbox.clone()),
            ]
        );
        for (_, token) in &found {
            assert!(token_kind(token).is_some());
        }
    }

    proptest! {
        #[test]
        fn parse_report_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_report(&body);
        }

        #[test]
        fn parse_report_never_panics_on_json_like(body in "[\\[\\]{}\",:a-z0-9 \\\\]{0,200}") {
            let _ = parse_report(body.as_bytes());
        }

        #[test]
        fn token_kind_never_panics(token in "\\PC*") {
            let _ = token_kind(&token);
        }

        #[test]
        fn verify_never_panics(id in "\\PC{0,70}", sig in "\\PC{0,120}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let keys = test_keys();
            prop_assert!(keys.verify(&id, &sig, &body).is_err());
            prop_assert!(keys.verify(KEY_ID, &sig, &body).is_err());
        }

        #[test]
        fn well_formed_credentials_are_recognised(id in "[0-9A-Za-z]{10}", secret in "[0-9A-Za-z]{32}") {
            let api = credential(API_KEY_PREFIX, &id, &secret);
            prop_assert_eq!(token_kind(&api), Some(TokenKind::ApiKey));
            let mailbox = credential(MAILBOX_AUTH_KEY_PREFIX, &id, &secret);
            prop_assert_eq!(token_kind(&mailbox), Some(TokenKind::MailboxAuthKey));
        }
    }

    fn test_keys() -> &'static LeakReportKeys {
        static KEYS: std::sync::OnceLock<LeakReportKeys> = std::sync::OnceLock::new();
        KEYS.get_or_init(|| fresh().keys)
    }
}
