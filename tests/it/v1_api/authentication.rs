//! /v1 authentication: credentials only from the bearer header, missing, invalid
//! and expired credentials.

use super::*;

/// The contract's 401: exact body; `WWW-Authenticate: Bearer …` with the RFC
/// 9728 metadata URL, and `error="invalid_token"` exactly when a credential was
/// sent.
fn assert_401(s: &Server, r: &Resp, credential_sent: bool, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.body);
    assert_eq!(r.json(), unauthenticated_body(), "{what}");
    let www = r
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("{what}: no WWW-Authenticate"));
    assert!(www.starts_with("Bearer"), "{what}: {www}");
    let metadata = format!(
        "resource_metadata=\"{}/.well-known/oauth-protected-resource\"",
        s.base
    );
    assert!(www.contains(&metadata), "{what}: {www}");
    assert_eq!(
        www.contains("error=\"invalid_token\""),
        credential_sent,
        "{what}: {www}"
    );
    if !credential_sent {
        assert!(!www.contains("error="), "{what}: {www}");
    }
}

fn b64json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn decode_segment(s: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).expect("base64url")).expect("JSON")
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = if key.len() > 64 {
        Sha256::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(64, 0);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

// ---------------------------------------------------------------- tests

fn credentials_only_from_the_bearer_header(b: Backend) {
    let f = Fixture::new(b);
    let server = &f.server;
    let key = f.api_key("read_write");
    let (token, _) = f.tokens(ALL_SCOPES);
    let mut http = server.client();
    for cred in [&key, &token] {
        // The one way that works, with the scheme in any case (RFC 9110 §11.1).
        assert_eq!(http.bearer_get("/v1/workspace", cred).status, 200);
        for scheme in ["bearer", "BEARER"] {
            let auth = format!("{scheme} {cred}");
            let r = http.get_with("/v1/workspace", &[("Authorization", &auth)]);
            assert_eq!(r.status, 200, "{scheme}: {}", r.body);
        }
        // Query parameters are not read.
        for q in ["access_token", "api_key", "key", "token"] {
            let r = http.get(&format!("/v1/workspace?{q}={cred}"));
            assert_eq!(r.status, 401, "?{q}=: {}", r.body);
            assert_eq!(r.json(), unauthenticated_body());
            let r = http.send(
                "POST",
                &format!("/v1/tags?{q}={cred}"),
                &[("Content-Type", "application/json")],
                r#"{"name":"via-query"}"#,
            );
            assert_eq!(r.status, 401, "POST ?{q}=: {}", r.body);
        }
        // Nor other headers.
        for header in [
            "X-Api-Key",
            "Api-Key",
            "X-Auth-Token",
            "Proxy-Authorization",
        ] {
            let r = http.get_with("/v1/workspace", &[(header, cred)]);
            assert_401(server, &r, false, header);
            let bearer = format!("Bearer {cred}");
            let r = http.get_with("/v1/workspace", &[(header, &bearer)]);
            assert_401(server, &r, false, header);
        }
        // Nor cookies.
        for name in ["api_key", "access_token", "keygate_session", "token"] {
            let c = format!("{name}={cred}");
            let r = http.get_with("/v1/workspace", &[("Cookie", &c)]);
            assert_401(server, &r, false, name);
        }
        // Nor other schemes, nor a bare credential, in Authorization.
        for auth in [
            format!("Token {cred}"),
            format!("Basic {cred}"),
            basic(cred, ""),
            basic("", cred),
            format!("ApiKey {cred}"),
            cred.to_string(),
            format!("Bearer{cred}"),
            format!("Bearer {cred} {cred}"),
            format!("Bearer {cred}, Bearer {cred}"),
        ] {
            let r = http.get_with("/v1/workspace", &[("Authorization", &auth)]);
            assert_401(server, &r, true, &auth);
        }
    }
    // Nothing was created through a query parameter.
    assert_eq!(f.db().count("tags"), 0);
}

fn missing_credential(b: Backend) {
    let f = Fixture::new(b);
    let mut http = f.server.client();
    for (method, path) in [
        ("GET", "/v1/workspace"),
        ("GET", "/v1/tags"),
        ("GET", "/v1/forms"),
        ("POST", "/v1/tags"),
        ("POST", "/v1/forms"),
    ] {
        let r = http.send(
            method,
            path,
            &[("Content-Type", "application/json")],
            if method == "POST" {
                r#"{"name":"x"}"#
            } else {
                ""
            },
        );
        assert_401(&f.server, &r, false, path);
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert!(r
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")));
    }
    // The metadata the header points to describes this resource.
    let pr = http.get("/.well-known/oauth-protected-resource").json();
    assert_eq!(pr["resource"], format!("{}/v1", f.server.base));
    assert_eq!(f.db().count("tags") + f.db().count("forms"), 0);
}

fn invalid_credentials(b: Backend) {
    let f = Fixture::new(b);
    let server = &f.server;
    let db = f.db();
    let ws = f.workspace_id.clone();
    let mut http = server.client();
    let valid = f.api_key("read_write");
    let (token, _) = f.tokens(ALL_SCOPES);
    assert_eq!(http.bearer_get("/v1/workspace", &token).status, 200);

    let mut cases: Vec<(String, String)> = Vec::new();
    // Malformed.
    for junk in [
        "x",
        "kgk_",
        "kgk_short",
        "kgk_AbCdEfGhIj_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa000000",
        "not-a-key-at-all",
        "a.b.c",
        "..",
        "eyJhbGciOiJFZERTQSJ9.e30.",
        "null",
    ] {
        cases.push((format!("malformed {junk}"), junk.to_string()));
    }
    let mut typo = valid.clone().into_bytes();
    typo[25] = if typo[25] == b'a' { b'b' } else { b'a' };
    cases.push(("key with a typo".into(), String::from_utf8(typo).unwrap()));
    cases.push((
        "truncated token".into(),
        token[..token.len() - 3].to_string(),
    ));
    cases.push(("token plus junk".into(), format!("{token}x")));
    cases.push(("a very long credential".into(), "a".repeat(5000)));

    // Unknown: a well-formed key whose row is gone (never used, so not cached).
    let gone = db.create_api_key(&ws, "gone", "read_write");
    db.execute(&format!(
        "DELETE FROM api_keys WHERE id = '{}'",
        s(&gone, "id")
    ));
    cases.push(("unknown key".into(), s(&gone, "key")));

    // Revoked: a key used (cached) then revoked; an access token revoked.
    let revoked = db.create_api_key(&ws, "revoked", "read_write");
    assert_eq!(
        http.bearer_get("/v1/workspace", &s(&revoked, "key")).status,
        200
    );
    db.json(&["apikey", "revoke", &s(&revoked, "id")]);
    cases.push(("revoked key".into(), s(&revoked, "key")));
    let (revoked_token, _) = f.tokens(ALL_SCOPES);
    assert_eq!(http.bearer_get("/v1/tags", &revoked_token).status, 200);
    let r = server.client().post_form_with(
        "/oauth/revoke",
        &[("token", &revoked_token)],
        &[("Authorization", &f.basic())],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    cases.push(("revoked access token".into(), revoked_token));

    // Expired: a key whose expiry has passed.
    let expired = db.create_api_key(&ws, "expired", "read_write");
    db.execute(&format!(
        "UPDATE api_keys SET expires_at = {} WHERE id = '{}'",
        chrono::Utc::now().timestamp() - 1,
        s(&expired, "id")
    ));
    cases.push(("expired key".into(), s(&expired, "key")));

    // Forged tokens: a changed payload, alg none, HS256 with the public key.
    let parts: Vec<&str> = token.split('.').collect();
    let header = decode_segment(parts[0]);
    let mut claims = decode_segment(parts[1]);
    claims["scope"] = json!(ALL_SCOPES);
    claims["workspace_id"] = json!("someone-else");
    claims["exp"] = json!(claims["exp"].as_i64().unwrap() + 100_000);
    let forged_payload = b64json(&claims);
    cases.push((
        "token with a changed payload".into(),
        format!("{}.{}.{}", parts[0], forged_payload, parts[2]),
    ));
    let none = json!({"alg": "none", "typ": "at+jwt", "kid": header["kid"]});
    cases.push((
        "alg none".into(),
        format!("{}.{}.", b64json(&none), parts[1]),
    ));
    cases.push((
        "alg none with the old signature".into(),
        format!("{}.{}.{}", b64json(&none), parts[1], parts[2]),
    ));
    let jwks = http.get("/.well-known/jwks.json").json();
    let x = s(&jwks["keys"][0], "x");
    for (label, secret) in [
        ("HS256 keyed with the JWK x", x.as_bytes().to_vec()),
        (
            "HS256 keyed with the public key bytes",
            URL_SAFE_NO_PAD.decode(&x).unwrap(),
        ),
    ] {
        let h = json!({"alg": "HS256", "typ": "at+jwt", "kid": header["kid"]});
        let signing_input = format!("{}.{}", b64json(&h), parts[1]);
        let sig = URL_SAFE_NO_PAD.encode(hmac_sha256(&secret, signing_input.as_bytes()));
        cases.push((label.into(), format!("{signing_input}.{sig}")));
    }
    cases.push((
        "signature from another token".into(),
        format!("{}.{}.{}", parts[0], parts[1], {
            let (other, _) = f.tokens("tags:read");
            other.split('.').nth(2).unwrap().to_string()
        }),
    ));

    for (label, cred) in &cases {
        for (method, path) in [("GET", "/v1/workspace"), ("POST", "/v1/tags")] {
            let auth = format!("Bearer {cred}");
            let r = http.send(
                method,
                path,
                &[
                    ("Authorization", &auth),
                    ("Content-Type", "application/json"),
                ],
                if method == "POST" {
                    r#"{"name":"should-not-exist"}"#
                } else {
                    ""
                },
            );
            assert_401(server, &r, true, label);
        }
    }
    assert_eq!(db.count("tags"), 0, "a refused credential created data");
    // The valid ones still work.
    assert_eq!(http.bearer_get("/v1/workspace", &valid).status, 200);
    assert_eq!(http.bearer_get("/v1/workspace", &token).status, 200);
}

fn expired_access_token(b: Backend) {
    let server = Server::start_with(TestDb::new(b), &[("KEYGATE_ACCESS_TOKEN_TTL", "1")]);
    let f = Fixture::with_server(server);
    let (token, _) = f.tokens(ALL_SCOPES);
    let mut http = f.server.client();
    let claims = decode_segment(token.split('.').nth(1).unwrap());
    let exp = claims["exp"].as_i64().unwrap();
    let r = http.bearer_get("/v1/workspace", &token);
    if chrono::Utc::now().timestamp() < exp {
        assert_eq!(r.status, 200, "{}", r.body);
    }
    while chrono::Utc::now().timestamp() < exp + 1 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let r = http.bearer_get("/v1/workspace", &token);
    assert_401(&f.server, &r, true, "expired access token");
}

both_backends!(
    credentials_only_from_the_bearer_header,
    missing_credential,
    invalid_credentials,
    expired_access_token,
);
