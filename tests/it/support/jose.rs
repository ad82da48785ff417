//! Keys and hand-built JWTs for the machine-client tests: client assertions,
//! DPoP proofs and identity assertions, signed with jsonwebtoken (ES256 and
//! EdDSA keys made by rcgen), and the malformed ones no library would make
//! (`alg: none`, HMAC keyed with a public key).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::Digest;

/// A signing key with its public JWK.
pub struct TestKey {
    pub alg: Algorithm,
    pub kid: String,
    encoding: EncodingKey,
    /// The public JWK, with `kid`.
    pub jwk: Value,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl TestKey {
    pub fn es256(kid: &str) -> TestKey {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let raw = pair.public_key_raw();
        TestKey {
            alg: Algorithm::ES256,
            kid: kid.into(),
            encoding: EncodingKey::from_ec_der(&pair.serialize_der()),
            jwk: json!({"kty": "EC", "crv": "P-256", "x": b64(&raw[1..33]), "y": b64(&raw[33..65]), "kid": kid}),
        }
    }

    pub fn ed25519(kid: &str) -> TestKey {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        TestKey {
            alg: Algorithm::EdDSA,
            kid: kid.into(),
            encoding: EncodingKey::from_ed_der(&pair.serialize_der()),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key_raw()), "kid": kid}),
        }
    }

    /// The JWK without `kid` (what a DPoP proof carries).
    pub fn public_jwk(&self) -> Value {
        let mut j = self.jwk.clone();
        j.as_object_mut().unwrap().remove("kid");
        j
    }

    /// The RFC 7638 thumbprint of the key.
    pub fn thumbprint(&self) -> String {
        let j = &self.jwk;
        let canonical = match j["kty"].as_str().unwrap() {
            "EC" => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                j["crv"].as_str().unwrap(),
                j["x"].as_str().unwrap(),
                j["y"].as_str().unwrap()
            ),
            _ => format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                j["x"].as_str().unwrap()
            ),
        };
        b64(&sha2::Sha256::digest(canonical.as_bytes()))
    }

    /// A JWT with this key: `typ` and `jwk` in the header when given.
    pub fn sign(&self, typ: Option<&str>, embed_jwk: bool, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.typ = typ.map(str::to_string);
        if embed_jwk {
            header.jwk = Some(serde_json::from_value(self.public_jwk()).unwrap());
        } else {
            header.kid = Some(self.kid.clone());
        }
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }

    /// A JWT whose header names the algorithm `alg_name` (e.g. RFC 9864's
    /// `Ed25519`), signed with this key.
    pub fn sign_as(&self, alg_name: &str, claims: &Value) -> String {
        let header = json!({"alg": alg_name, "kid": self.kid});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &self.encoding, self.alg).unwrap();
        format!("{input}.{sig}")
    }

    /// The same claims as an HS256 JWT keyed with this public key's JWK
    /// text: the algorithm-confusion attack.
    pub fn hmac_with_public_key(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        let secret = EncodingKey::from_secret(self.jwk.to_string().as_bytes());
        jsonwebtoken::encode(&header, claims, &secret).unwrap()
    }
}

/// A JWT with `alg: none` and no signature.
pub fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// A JWK Set of these keys.
pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// RFC 7523 §3 claims of a client assertion from `client_id` to `aud`.
pub fn assertion_claims(client_id: &str, aud: &str) -> Value {
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "exp": now() + 120,
        "iat": now(),
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

/// The form members of a client assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The SHA-256 of an access token, base64url (a DPoP proof's `ath`).
pub fn ath(token: &str) -> String {
    b64(&sha2::Sha256::digest(token.as_bytes()))
}
