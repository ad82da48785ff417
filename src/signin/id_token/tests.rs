use super::*;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};

const ISSUER: &str = "https://idp.example.test";
const CLIENT: &str = "keygate";
const NONCE: &str = "n-0S6_WzA2Mj";

/// jsonwebtoken checks `exp` against the clock, so the tokens are made now.
fn now() -> i64 {
    crate::db::now()
}

/// An Ed25519 key: its signing key and its JWK.
fn ed_key(kid: &str) -> (EncodingKey, Value) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig"});
    (EncodingKey::from_ed_der(pkcs8.as_ref()), jwk)
}

/// A P-256 key and its JWK.
fn ec_key(kid: &str) -> (EncodingKey, Value) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = pair.public_key().as_ref();
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    });
    (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
}

fn claims() -> Value {
    json!({
        "iss": ISSUER, "sub": "user-1", "aud": CLIENT, "nonce": NONCE,
        "iat": now(), "exp": now() + 300,
        "email": "ada@example.test", "email_verified": true,
    })
}

fn sign(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn keys(jwks: &[Value]) -> Keys {
    Keys::parse(json!({ "keys": jwks }).to_string().as_bytes()).unwrap()
}

fn expected() -> Expected<'static> {
    Expected {
        issuer: ISSUER,
        client_id: CLIENT,
        nonce: NONCE,
        now: now(),
    }
}

fn with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

#[test]
fn a_good_token_signed_by_a_key_of_the_set_is_accepted() {
    let (ed, ed_jwk) = ed_key("ed");
    let (ec, ec_jwk) = ec_key("ec");
    let set = keys(&[ed_jwk, ec_jwk]);
    for (alg, kid, key) in [(Algorithm::EdDSA, "ed", &ed), (Algorithm::ES256, "ec", &ec)] {
        let v = verify(&sign(alg, kid, key, &claims()), &set, &expected()).unwrap();
        assert_eq!(v.subject, "user-1");
        assert_eq!(v.email.as_deref(), Some("ada@example.test"));
        assert_eq!(v.email_verified, Some(true));
    }
    // Several audiences need azp to be keygate.
    let many = with(json!({"aud": [CLIENT, "other"], "azp": CLIENT}));
    assert!(verify(&sign(Algorithm::EdDSA, "ed", &ed, &many), &set, &expected()).is_ok());
    // Within the leeway.
    let late = with(json!({"exp": now() - 30, "email_verified": "false"}));
    let v = verify(&sign(Algorithm::EdDSA, "ed", &ed, &late), &set, &expected()).unwrap();
    assert_eq!(v.email_verified, Some(false));
}

#[test]
fn every_wrong_claim_is_refused() {
    let (ed, jwk) = ed_key("ed");
    let set = keys(&[jwk]);
    let refused = |c: Value| verify(&sign(Algorithm::EdDSA, "ed", &ed, &c), &set, &expected());
    for bad in [
        json!({"aud": "another-client"}),
        json!({"aud": [CLIENT, "other"]}),
        json!({"azp": "other"}),
        json!({"iss": "https://evil.example.test"}),
        json!({"iss": format!("{ISSUER}/")}),
        json!({"exp": now() - 61}),
        json!({"exp": null}),
        json!({"iat": now() + 120}),
        json!({"iat": null}),
        json!({"nonce": "another"}),
        json!({"nonce": null}),
        json!({"sub": null}),
        json!({"sub": ""}),
    ] {
        let r = refused(with(bad.clone()));
        assert!(matches!(r, Err(TokenError::Invalid(_))), "{bad} gave {r:?}");
    }
}

#[test]
fn unsigned_hmac_and_unknown_keys_are_refused() {
    let (ed, jwk) = ed_key("ed");
    let set = keys(std::slice::from_ref(&jwk));
    let body = URL_SAFE_NO_PAD.encode(claims().to_string());
    let none = format!("{}.{body}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#));
    assert!(matches!(
        verify(&none, &set, &expected()),
        Err(TokenError::Header(_))
    ));
    let secret = EncodingKey::from_secret(b"the client secret");
    let hs = sign(Algorithm::HS256, "ed", &secret, &claims());
    assert_eq!(
        verify(&hs, &set, &expected()),
        Err(TokenError::Algorithm(Algorithm::HS256))
    );
    let (other, _) = ed_key("other");
    let unknown = sign(Algorithm::EdDSA, "other", &other, &claims());
    assert!(matches!(
        verify(&unknown, &set, &expected()),
        Err(TokenError::UnknownKey(_))
    ));
    // Another key under a kid of the set: the signature fails.
    let forged = sign(Algorithm::EdDSA, "ed", &other, &claims());
    assert!(matches!(
        verify(&forged, &set, &expected()),
        Err(TokenError::Invalid(_))
    ));
    // A key that names another algorithm is not used for this one.
    let mut es_only = jwk;
    es_only["alg"] = json!("ES256");
    let token = sign(Algorithm::EdDSA, "ed", &ed, &claims());
    assert!(verify(&token, &keys(&[es_only]), &expected()).is_err());
}

#[test]
fn a_jwks_keeps_only_signature_keys_it_can_use() {
    let (_, ed) = ed_key("ed");
    let set = keys(&[
        ed,
        json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}),
        json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "use": "enc", "kid": "enc"}),
        json!({"kty": "weird", "kid": "w"}),
    ]);
    assert_eq!(set.len(), 1);
    assert!(set.has_kid("ed") && !set.has_kid("hmac"));
    assert!(Keys::parse(b"{}").is_err());
}
