//! Sign-ins through the identity provider that must fail: a small provider
//! of our own (tests/it/https_server.rs over https on loopback: discovery,
//! JWKS and a token endpoint that answers hand-signed ID tokens), so each
//! token can be wrong in exactly one way. Each failure is an error page (a
//! 4xx) and starts no session. Also: password login turned off.

use crate::https_server::{HttpsServer, Reply};
use crate::support::*;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

struct FakeProvider {
    https: HttpsServer,
    key: EncodingKey,
}

impl FakeProvider {
    fn start() -> FakeProvider {
        let https = HttpsServer::start();
        let issuer = https.url("");
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        https.set(
            "/.well-known/openid-configuration",
            Reply::json(&json!({
                "issuer": issuer,
                "authorization_endpoint": https.url("/authorize"),
                "token_endpoint": https.url("/token"),
                "jwks_uri": https.url("/jwks"),
                "code_challenge_methods_supported": ["S256"],
            })),
        );
        https.set(
            "/jwks",
            Reply::json(&json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1"}]})),
        );
        FakeProvider {
            https,
            key: EncodingKey::from_ed_der(pkcs8.as_ref()),
        }
    }

    fn issuer(&self) -> String {
        self.https.url("")
    }

    fn claims(&self, nonce: &str, email: &str) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "iss": self.issuer(), "sub": "sub-1", "aud": OIDC_CLIENT_ID, "nonce": nonce,
            "iat": now, "exp": now + 300, "email": email, "email_verified": true,
        })
    }

    fn signed(&self, claims: &Value) -> String {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some("k1".into());
        jsonwebtoken::encode(&h, claims, &self.key).unwrap()
    }

    /// The token endpoint answers `id_token` from now on.
    fn answer(&self, id_token: &str) {
        self.https.set(
            "/token",
            Reply::json(
                &json!({"id_token": id_token, "access_token": "at", "token_type": "Bearer"}),
            ),
        );
    }
}

/// Starts a sign-in from the login page; returns (state, nonce).
fn start(http: &mut Http) -> (String, String) {
    let page = http.get("/login");
    let csrf = hidden(&page.body, "csrf_token").expect("csrf");
    let r = http.post_form(
        "/login/oidc",
        &[("csrf_token", &csrf), ("next", "/settings")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let params = r.location_params();
    assert_eq!(param(&params, "code_challenge_method"), Some("S256"));
    assert_eq!(param(&params, "client_id"), Some(OIDC_CLIENT_ID));
    let state = param(&params, "state").expect("state").to_string();
    (state, param(&params, "nonce").expect("nonce").to_string())
}

fn callback(state: &str) -> String {
    format!("/login/oidc/callback?code=the-code&state={state}")
}

/// Asserts a failed sign-in: the status, a page that says `words`, no session.
fn refused(http: &mut Http, r: &Resp, status: u16, words: &str, case: &str) {
    assert_eq!(r.status, status, "{case}: {}", r.body);
    assert!(r.body.contains(words), "{case}: {}", r.body);
    assert_eq!(http.cookie("keygate_session"), None, "{case}");
    assert_eq!(http.get("/settings").status, 302, "{case}");
}

fn setup(b: Backend, extra: &[(&str, &str)]) -> (Fixture, FakeProvider) {
    let provider = FakeProvider::start();
    let mut env = provider_env(&provider.issuer(), provider.https.ca_file());
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let f = Fixture::with_server(Server::start_with(TestDb::new(b), &env_refs(&env)));
    (f, provider)
}

fn every_bad_id_token_is_refused(b: Backend) {
    let (f, p) = setup(b, &[]);
    let email = f.owner_email.clone();
    let now = chrono::Utc::now().timestamp();
    let with = |nonce: &str, change: Value| {
        let mut c = p.claims(nonce, &email);
        for (k, v) in change.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let other_key = EncodingKey::from_ed_der(
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .unwrap()
            .as_ref(),
    );
    type Make<'a> = Box<dyn Fn(&str) -> String + 'a>;
    let cases: Vec<(&str, Make)> = vec![
        (
            "another audience",
            Box::new(|n| p.signed(&with(n, json!({"aud": "someone-else"})))),
        ),
        (
            "another issuer",
            Box::new(|n| p.signed(&with(n, json!({"iss": "https://evil.example"})))),
        ),
        (
            "expired",
            Box::new(|n| p.signed(&with(n, json!({"exp": now - 120, "iat": now - 400})))),
        ),
        (
            "a wrong nonce",
            Box::new(|n| p.signed(&with(&format!("{n}x"), json!({})))),
        ),
        (
            "unsigned",
            Box::new(|n| {
                let body = URL_SAFE_NO_PAD.encode(p.claims(n, &email).to_string());
                format!(
                    "{}.{body}.",
                    URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#)
                )
            }),
        ),
        (
            "HMAC with the client secret",
            Box::new(|n| {
                let mut h = Header::new(Algorithm::HS256);
                h.kid = Some("k1".into());
                let key = EncodingKey::from_secret(OIDC_CLIENT_SECRET.as_bytes());
                jsonwebtoken::encode(&h, &p.claims(n, &email), &key).unwrap()
            }),
        ),
        (
            "an unknown key",
            Box::new(|n| {
                let mut h = Header::new(Algorithm::EdDSA);
                h.kid = Some("k2".into());
                jsonwebtoken::encode(&h, &p.claims(n, &email), &other_key).unwrap()
            }),
        ),
        (
            "another key under the known kid",
            Box::new(|n| {
                let mut h = Header::new(Algorithm::EdDSA);
                h.kid = Some("k1".into());
                jsonwebtoken::encode(&h, &p.claims(n, &email), &other_key).unwrap()
            }),
        ),
    ];
    for (case, make) in &cases {
        let mut http = f.server.client();
        let (state, nonce) = start(&mut http);
        p.answer(&make(&nonce));
        let r = http.get(&callback(&state));
        refused(&mut http, &r, 400, "could not verify the answer", case);
    }
    // An unknown kid fetched the JWKS again at most once within the minute.
    assert!(p.https.hits("/jwks") <= 2, "{}", p.https.hits("/jwks"));
    assert_eq!(f.db().count("identities"), 0);
    assert!(f.server.logs().contains("audience") || f.server.logs().contains("InvalidAudience"));
}

fn bad_replayed_or_foreign_state_and_provider_errors_are_refused(b: Backend) {
    let (f, p) = setup(b, &[]);
    // A good sign-in through this provider works…
    let mut http = f.server.client();
    let (state, nonce) = start(&mut http);
    let binding = http.cookie("keygate_signin").expect("the browser binding");
    p.answer(&p.signed(&p.claims(&nonce, &f.owner_email)));
    let ok = http.get(&callback(&state));
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.location(), "/settings");
    assert!(http.cookie("keygate_session").is_some());
    // …once: the same callback with the same browser binding again fails.
    let mut replay = f.server.client();
    let cookie = format!("keygate_signin={binding}");
    let r = replay.get_with(&callback(&state), &[("Cookie", &cookie)]);
    refused(&mut replay, &r, 400, "already used", "a replayed callback");

    // A state that is not the one started, or another browser's.
    let mut http = f.server.client();
    let (state, _) = start(&mut http);
    let r = http.get(&callback("not-the-state"));
    refused(&mut http, &r, 400, "already used", "a bad state");
    let mut other = f.server.client();
    let r = other.get(&callback(&state));
    refused(&mut other, &r, 400, "another browser", "another browser");

    // The provider's own refusal.
    let mut http = f.server.client();
    let (state, _) = start(&mut http);
    let r = http.get(&format!(
        "/login/oidc/callback?error=access_denied&error_description=no&state={state}"
    ));
    refused(
        &mut http,
        &r,
        403,
        "did not let you sign in",
        "access_denied",
    );

    // A callback that says it comes from another issuer (RFC 9207).
    let mut http = f.server.client();
    let (state, nonce) = start(&mut http);
    p.answer(&p.signed(&p.claims(&nonce, &f.owner_email)));
    let r = http.get(&format!(
        "{}&iss=https%3A%2F%2Fevil.example",
        callback(&state)
    ));
    refused(&mut http, &r, 400, "could not sign you in", "another iss");

    // An email the provider has not verified.
    let mut http = f.server.client();
    let (state, nonce) = start(&mut http);
    let mut c = p.claims(&nonce, &f.owner_email);
    c["sub"] = json!("sub-2");
    c["email_verified"] = json!(false);
    p.answer(&p.signed(&c));
    let r = http.get(&callback(&state));
    refused(
        &mut http,
        &r,
        403,
        "has not verified",
        "an unverified email",
    );

    // A provider that cannot be reached.
    let mut http = f.server.client();
    let (state, _) = start(&mut http);
    p.https.set("/token", Reply::status(500));
    let r = http.get(&callback(&state));
    refused(
        &mut http,
        &r,
        400,
        "could not verify the answer",
        "a failing token endpoint",
    );
}

fn with_password_login_off_only_the_provider_signs_in(b: Backend) {
    let (f, _p) = setup(b, &[("KEYGATE_PASSWORD_LOGIN", "off")]);
    let mut http = f.server.client();
    let page = http.get("/login");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Sign in with Acme ID"), "{}", page.body);
    assert!(!page.body.contains("name=\"password\""), "{}", page.body);
    let r = http.login(&f.owner_email, PASSWORD);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(http.cookie("keygate_session"), None);
}

fn an_unreachable_provider_is_a_page(b: Backend) {
    let port = free_port();
    let env = provider_env(
        &format!("https://127.0.0.1:{port}"),
        std::path::Path::new("/dev/null"),
    );
    let mut env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k != "KEYGATE_OUTBOUND_CA_FILE")
        .collect();
    env.push(("RUST_LOG".into(), "info".into()));
    let server = Server::start_with(TestDb::new(b), &env_refs(&env));
    let mut http = server.client();
    let page = http.get("/login");
    let csrf = hidden(&page.body, "csrf_token").expect("csrf");
    let r = http.post_form(
        "/login/oidc",
        &[("csrf_token", &csrf), ("next", "/settings")],
    );
    refused(&mut http, &r, 400, "could not reach Acme ID", "unreachable");
    assert_eq!(server.db.count("pending_sign_ins"), 0);
}

both_backends!(
    every_bad_id_token_is_refused,
    bad_replayed_or_foreign_state_and_provider_errors_are_refused,
    with_password_login_off_only_the_provider_signs_in,
    an_unreachable_provider_is_a_page,
);

/// A half-configured provider stops `keygate serve` at start with one line
/// naming the variable, before anything is served.
#[test]
fn bad_provider_settings_stop_the_node_with_one_line() {
    let db = TestDb::new(Backend::Sqlite);
    let full = [
        ("KEYGATE_OIDC_ISSUER", "https://idp.example.com"),
        ("KEYGATE_OIDC_CLIENT_ID", "keygate"),
        ("KEYGATE_OIDC_CLIENT_SECRET", "secret"),
    ];
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![full[0]], "must be set together"),
        (
            vec![
                ("KEYGATE_OIDC_ISSUER", "http://idp.example.com"),
                full[1],
                full[2],
            ],
            "must be an https URL",
        ),
        (
            vec![
                full[0],
                full[1],
                full[2],
                ("KEYGATE_OIDC_CREATE_PEOPLE", "yes"),
            ],
            "KEYGATE_OIDC_CREATE_PEOPLE must be on or off",
        ),
        (
            vec![("KEYGATE_PASSWORD_LOGIN", "off")],
            "nobody could sign in",
        ),
    ];
    for (env, words) in cases {
        let mut cmd = std::process::Command::new(BIN);
        cmd.arg("serve")
            .env("KEYGATE_DATABASE_URL", &db.url)
            .env("KEYGATE_BIND", "127.0.0.1:0")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("run keygate");
        let exited = eventually(std::time::Duration::from_secs(20), || {
            child.try_wait().ok().flatten().is_some()
        });
        if !exited {
            let _ = child.kill();
        }
        let out = child.wait_with_output().expect("wait for keygate");
        assert!(exited, "keygate served with {env:?}");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(words), "{env:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{env:?}: {stderr}");
    }
}
