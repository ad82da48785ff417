//! The protected API `/v1`: the one bearer check (API keys and OAuth access
//! tokens, only from `Authorization: Bearer`), scopes, workspace isolation, the
//! tags and forms resources, and the error envelope for every way a request can
//! be wrong, including a deterministic fuzz of headers and bodies.

use crate::support::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const ALL_SCOPES: &str = "workspace:read tags:read tags:write forms:read forms:write";

// ---------------------------------------------------------------- helpers

fn unauthenticated_body() -> Value {
    json!({"error": {
        "type": "authentication_error",
        "code": "invalid_api_key",
        "message": "A valid workspace API key is required."
    }})
}

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

/// Any `/v1` error: a JSON envelope with a status, type, code and message.
fn assert_envelope(r: &Resp, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{:?}",
        r.headers
    );
    let v = r.json();
    let e = &v["error"];
    for field in ["type", "code", "message"] {
        assert!(
            e[field].as_str().is_some_and(|x| !x.is_empty()),
            "no {field}: {}",
            r.body
        );
    }
    assert_eq!(v.as_object().unwrap().len(), 1, "{}", r.body);
    v
}

fn s(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field} in {v}"))
        .to_string()
}

/// An access token for a workspace of the fixture's owner (Fixture::approve
/// always picks the fixture's workspace).
fn token_for(f: &Fixture, workspace_id: &str, scope: &str) -> String {
    let (verifier, challenge) = pkce();
    let mut http = f.owner();
    let page = http.get(&format!(
        "/oauth/authorize?{}",
        f.authorize_query(&f.client_id, scope, &challenge)
    ));
    let r = approve_consent(&mut http, &page, workspace_id);
    let params = r.location_params();
    let code = param(&params, "code").expect("code").to_string();
    let t = f.exchange(&code, &verifier);
    assert_eq!(t.status, 200, "token: {}", t.body);
    let v = t.json();
    assert_eq!(v["workspace_id"], workspace_id);
    s(&v, "access_token")
}

/// A second workspace with the fixture's owner as its owner.
fn second_workspace(f: &Fixture) -> String {
    let ws = f.db().create_workspace("Globex");
    f.db().add_member(&ws, &f.owner_id, "owner");
    ws
}

fn create(http: &mut Http, path: &str, credential: &str, name: &str) -> Value {
    let r = http.bearer_post_json(path, credential, &json!({ "name": name }).to_string());
    assert_eq!(r.status, 201, "create {name:?} at {path}: {}", r.body);
    r.json()
}

fn names(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|o| s(o, "name"))
        .collect()
}

fn list(http: &mut Http, path: &str, credential: &str) -> Value {
    let r = http.bearer_get(path, credential);
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json()
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

fn scopes_decide_what_a_credential_may_do(b: Backend) {
    let f = Fixture::new(b);
    let mut http = f.server.client();
    let forbidden = |r: Resp, what: &str| {
        assert_eq!(r.status, 403, "{what}: {}", r.body);
        r.assert_v1_error(403, "permission_error", "insufficient_scope");
    };

    // read_only: every *:read scope, nothing else.
    let ro = f.api_key("read_only");
    for path in ["/v1/workspace", "/v1/tags", "/v1/forms"] {
        assert_eq!(http.bearer_get(path, &ro).status, 200, "{path}");
    }
    for path in ["/v1/tags", "/v1/forms"] {
        forbidden(
            http.bearer_post_json(path, &ro, r#"{"name":"ro"}"#),
            "read_only POST",
        );
        // Even a bad body is refused for the scope, not read.
        forbidden(http.bearer_post_json(path, &ro, "not json"), "bad body");
    }
    // read_write: all scopes.
    let rw = f.api_key("read_write");
    for path in ["/v1/workspace", "/v1/tags", "/v1/forms"] {
        assert_eq!(http.bearer_get(path, &rw).status, 200, "{path}");
    }
    create(&mut http, "/v1/tags", &rw, "rw-tag");
    create(&mut http, "/v1/forms", &rw, "rw-form");

    // OAuth tokens: exactly the scopes granted.
    let (tags_read, _) = f.tokens("tags:read");
    assert_eq!(http.bearer_get("/v1/tags", &tags_read).status, 200);
    forbidden(
        http.bearer_post_json("/v1/tags", &tags_read, r#"{"name":"t"}"#),
        "tags:read POST tags",
    );
    forbidden(http.bearer_get("/v1/forms", &tags_read), "tags:read forms");
    forbidden(
        http.bearer_get("/v1/workspace", &tags_read),
        "tags:read workspace",
    );
    let (forms_write, _) = f.tokens("forms:write");
    create(&mut http, "/v1/forms", &forms_write, "by-app");
    forbidden(
        http.bearer_get("/v1/forms", &forms_write),
        "forms:write GET forms",
    );
    forbidden(
        http.bearer_post_json("/v1/tags", &forms_write, r#"{"name":"t"}"#),
        "forms:write POST tags",
    );
    let (default_scope, _) = f.tokens("workspace:read");
    assert_eq!(http.bearer_get("/v1/workspace", &default_scope).status, 200);
    for path in ["/v1/tags", "/v1/forms"] {
        forbidden(http.bearer_get(path, &default_scope), path);
        forbidden(
            http.bearer_post_json(path, &default_scope, r#"{"name":"t"}"#),
            path,
        );
    }
    assert_eq!(f.db().count("tags"), 1);
    assert_eq!(f.db().count("forms"), 2);
}

fn workspaces_are_isolated(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws1 = f.workspace_id.clone();
    let ws2 = second_workspace(&f);
    let k1 = f.api_key("read_write");
    let k2 = s(&db.create_api_key(&ws2, "globex-key", "read_write"), "key");
    let t1 = token_for(&f, &ws1, ALL_SCOPES);
    let t2 = token_for(&f, &ws2, ALL_SCOPES);
    let mut http = f.server.client();

    let creds = [
        ("k1", k1.as_str(), ws1.as_str(), "Acme"),
        ("t1", t1.as_str(), ws1.as_str(), "Acme"),
        ("k2", k2.as_str(), ws2.as_str(), "Globex"),
        ("t2", t2.as_str(), ws2.as_str(), "Globex"),
    ];
    for (label, cred, ws, name) in creds {
        let w = list(&mut http, "/v1/workspace", cred);
        assert_eq!(w, json!({"id": ws, "name": name}), "{label}");
    }
    // Data created through each credential, and one name in both workspaces.
    let mut ids = std::collections::HashMap::new();
    for path in ["/v1/tags", "/v1/forms"] {
        for (label, cred, _, _) in creds {
            let o = create(&mut http, path, cred, &format!("{label}-item"));
            ids.insert((path, label), s(&o, "id"));
        }
        let a = create(&mut http, path, &k1, "shared");
        let b2 = create(&mut http, path, &t2, "shared");
        assert_ne!(a["id"], b2["id"]);
        // A body naming the other workspace changes nothing.
        let r = http.bearer_post_json(
            path,
            &k1,
            &json!({"name": "sneaky", "workspace_id": ws2}).to_string(),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    for path in ["/v1/tags", "/v1/forms"] {
        let expected1 = vec!["sneaky", "shared", "t1-item", "k1-item"];
        let expected2 = vec!["shared", "t2-item", "k2-item"];
        for (label, cred, ws, _) in creds {
            let l = list(&mut http, path, cred);
            let got = names(&l);
            let want = if ws == ws1 { &expected1 } else { &expected2 };
            assert_eq!(&got, want, "{label} {path}");
            // A query naming the other workspace changes nothing either.
            let other = if ws == ws1 { &ws2 } else { &ws1 };
            let q = list(
                &mut http,
                &format!("{path}?workspace_id={other}&workspace={other}"),
                cred,
            );
            assert_eq!(names(&q), got, "{label} {path} ?workspace_id");
            // A cursor from the other workspace shows nothing of it.
            let foreign = if ws == ws1 {
                &ids[&(path, "k2")]
            } else {
                &ids[&(path, "k1")]
            };
            let r = http.bearer_get(&format!("{path}?starting_after={foreign}"), cred);
            if r.status == 200 {
                for n in names(&r.json()) {
                    assert!(want.contains(&n.as_str()), "{label}: {n} leaked");
                }
            } else {
                assert_envelope(&r, r.status);
                assert!(r.status == 400 || r.status == 404, "{}", r.status);
            }
        }
    }
    for (ws, n) in [(&ws1, 4), (&ws2, 3)] {
        assert_eq!(db.count(&format!("tags WHERE workspace_id = '{ws}'")), n);
        assert_eq!(db.count(&format!("forms WHERE workspace_id = '{ws}'")), n);
    }
}

fn lists_and_creates(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_write");
    let mut http = f.server.client();
    for path in ["/v1/tags", "/v1/forms"] {
        let empty = http.bearer_get(path, &key);
        assert_eq!(empty.status, 200);
        assert!(empty
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")));
        assert_eq!(empty.json(), json!({"data": [], "has_more": false}));

        let before = chrono::Utc::now().timestamp();
        let mut created = Vec::new();
        for name in ["alpha", "Café ☕ 日本", "gamma"] {
            let r = http.bearer_post_json(path, &key, &json!({ "name": name }).to_string());
            assert_eq!(r.status, 201, "{}", r.body);
            assert!(r
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/json")));
            let o = r.json();
            let obj = o.as_object().unwrap();
            let mut fields: Vec<&str> = obj.keys().map(String::as_str).collect();
            fields.sort();
            assert_eq!(fields, ["created_at", "id", "name"], "{o}");
            assert_eq!(o["name"], name);
            assert!(!s(&o, "id").is_empty());
            let at = chrono::DateTime::parse_from_rfc3339(&s(&o, "created_at"))
                .unwrap_or_else(|e| panic!("created_at {o}: {e}"));
            assert!((before - 1..=before + 30).contains(&at.timestamp()), "{o}");
            assert!(s(&o, "created_at").ends_with('Z'), "not UTC: {o}");
            created.push(o);
        }
        // Newest first; the objects as created.
        let l = list(&mut http, path, &key);
        let mut newest_first = created.clone();
        newest_first.reverse();
        assert_eq!(l, json!({"data": newest_first, "has_more": false}));
    }
    // Tags and forms are separate collections.
    let tags = list(&mut http, "/v1/tags", &key);
    let forms = list(&mut http, "/v1/forms", &key);
    assert_eq!(names(&tags), names(&forms));
    assert_ne!(tags["data"][0]["id"], forms["data"][0]["id"]);
    assert_eq!(f.db().count("tags"), 3);
    assert_eq!(f.db().count("forms"), 3);
}

fn pagination(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_write");
    let (token, _) = f.tokens(ALL_SCOPES);
    let mut http = f.server.client();
    for (path, cred) in [("/v1/tags", key.as_str()), ("/v1/forms", token.as_str())] {
        let mut ids = Vec::new();
        for i in 1..=5 {
            ids.push(s(
                &create(&mut http, path, cred, &format!("item-{i}")),
                "id",
            ));
        }
        ids.reverse(); // newest first
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let url = match &after {
                None => format!("{path}?limit=2"),
                Some(a) => format!("{path}?limit=2&starting_after={a}"),
            };
            let page = list(&mut http, &url, cred);
            let data = page["data"].as_array().unwrap();
            assert!(data.len() <= 2, "{page}");
            seen.extend(data.iter().map(|o| s(o, "id")));
            pages += 1;
            let more = page["has_more"].as_bool().expect("has_more");
            if !more {
                break;
            }
            assert!(!data.is_empty());
            after = Some(s(data.last().unwrap(), "id"));
            assert!(pages < 10, "pagination does not end");
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, ids, "every item exactly once, newest first");

        for (q, n, more) in [
            ("limit=5", 5, false),
            ("limit=4", 4, true),
            ("limit=100", 5, false),
            ("limit=1", 1, true),
            ("", 5, false),
        ] {
            let page = list(&mut http, &format!("{path}?{q}"), cred);
            assert_eq!(page["data"].as_array().unwrap().len(), n, "{q}");
            assert_eq!(page["has_more"], more, "{q}");
        }
        let last = list(
            &mut http,
            &format!("{path}?starting_after={}", ids[4]),
            cred,
        );
        assert_eq!(last, json!({"data": [], "has_more": false}));

        for bad in [
            "limit=0",
            "limit=101",
            "limit=x",
            "limit=-1",
            "limit=1.5",
            "limit=99999999999999999999",
            "starting_after=not-an-id",
        ] {
            let r = http.bearer_get(&format!("{path}?{bad}"), cred);
            let v = assert_envelope(&r, 400);
            assert_eq!(v["error"]["type"], "invalid_request_error", "{bad}");
        }
    }
}

fn bad_bodies(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_write");
    let mut http = f.server.client();
    let auth = format!("Bearer {key}");
    let long = "a".repeat(101);
    let long_multibyte = "é".repeat(101);
    let cases: Vec<(&str, Option<&str>, String)> = vec![
        ("not JSON", Some("application/json"), "{".into()),
        ("empty body", Some("application/json"), String::new()),
        (
            "form body as JSON",
            Some("application/json"),
            "name=x".into(),
        ),
        ("text/plain", Some("text/plain"), r#"{"name":"x"}"#.into()),
        (
            "form content type",
            Some("application/x-www-form-urlencoded"),
            "name=x".into(),
        ),
        ("no content type", None, r#"{"name":"x"}"#.into()),
        (
            "JSON array",
            Some("application/json"),
            r#"[{"name":"x"}]"#.into(),
        ),
        ("empty array", Some("application/json"), "[]".into()),
        ("JSON string", Some("application/json"), r#""x""#.into()),
        ("JSON number", Some("application/json"), "42".into()),
        ("JSON null", Some("application/json"), "null".into()),
        ("missing name", Some("application/json"), "{}".into()),
        (
            "other field",
            Some("application/json"),
            r#"{"nom":"x"}"#.into(),
        ),
        (
            "name number",
            Some("application/json"),
            r#"{"name":42}"#.into(),
        ),
        (
            "name null",
            Some("application/json"),
            r#"{"name":null}"#.into(),
        ),
        (
            "name bool",
            Some("application/json"),
            r#"{"name":true}"#.into(),
        ),
        (
            "name array",
            Some("application/json"),
            r#"{"name":["x"]}"#.into(),
        ),
        (
            "name object",
            Some("application/json"),
            r#"{"name":{"a":1}}"#.into(),
        ),
        (
            "empty name",
            Some("application/json"),
            r#"{"name":""}"#.into(),
        ),
        (
            "blank name",
            Some("application/json"),
            r#"{"name":"   "}"#.into(),
        ),
        (
            "whitespace name",
            Some("application/json"),
            r#"{"name":"\t\n "}"#.into(),
        ),
        (
            "101 chars",
            Some("application/json"),
            json!({ "name": long }).to_string(),
        ),
        (
            "101 multibyte chars",
            Some("application/json"),
            json!({ "name": long_multibyte }).to_string(),
        ),
        (
            "NUL in name",
            Some("application/json"),
            r#"{"name":"a\u0000b"}"#.into(),
        ),
        (
            "trailing garbage",
            Some("application/json"),
            r#"{"name":"x"} y"#.into(),
        ),
    ];
    for path in ["/v1/tags", "/v1/forms"] {
        for (label, ctype, body) in &cases {
            let mut headers = vec![("Authorization", auth.as_str())];
            if let Some(c) = ctype {
                headers.push(("Content-Type", c));
            }
            let r = http.send("POST", path, &headers, body);
            let v = assert_envelope(&r, 400);
            assert_eq!(v["error"]["type"], "invalid_request_error", "{label}");
        }
    }
    assert_eq!(f.db().count("tags") + f.db().count("forms"), 0);

    // The limits themselves are fine.
    let hundred = "a".repeat(100);
    let o = create(&mut http, "/v1/tags", &key, &hundred);
    assert_eq!(o["name"], hundred.as_str());
    let hundred_multibyte = "é".repeat(100);
    let o = create(&mut http, "/v1/forms", &key, &hundred_multibyte);
    assert_eq!(o["name"], hundred_multibyte.as_str());
    let r = http.send(
        "POST",
        "/v1/tags",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json; charset=utf-8"),
        ],
        r#"{"name":"with charset","extra":[1,2,3]}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

fn duplicate_names_conflict(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_write");
    let (token, _) = f.tokens(ALL_SCOPES);
    let mut http = f.server.client();
    for path in ["/v1/tags", "/v1/forms"] {
        create(&mut http, path, &key, "newsletter");
        for cred in [&key, &token] {
            let r = http.bearer_post_json(path, cred, r#"{"name":"newsletter"}"#);
            assert_envelope(&r, 409);
        }
        assert_eq!(names(&list(&mut http, path, &key)), ["newsletter"]);
    }
    // Racing creates of one name: one wins, the others conflict; never a 5xx.
    let base = f.server.base.clone();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let base = base.clone();
            let key = key.clone();
            std::thread::spawn(move || {
                let mut http = Http::new(&base);
                http.bearer_post_json("/v1/tags", &key, r#"{"name":"race"}"#)
            })
        })
        .collect();
    let results: Vec<Resp> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let won = results.iter().filter(|r| r.status == 201).count();
    for r in &results {
        if r.status != 201 {
            assert_envelope(r, 409);
        }
    }
    assert_eq!(won, 1, "{results:?}");
    assert_eq!(f.db().count("tags"), 2);
}

fn unknown_paths_methods_and_large_bodies(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_write");
    let mut http = f.server.client();
    let auth = format!("Bearer {key}");
    for path in ["/v1/nope", "/v1/tags/123", "/v1/workspace/x", "/v1/Tags"] {
        for headers in [vec![], vec![("Authorization", auth.as_str())]] {
            let r = http.get_with(path, &headers);
            assert_envelope(&r, 404);
        }
    }
    for (method, path) in [
        ("DELETE", "/v1/tags"),
        ("PUT", "/v1/tags"),
        ("PATCH", "/v1/forms"),
        ("DELETE", "/v1/forms"),
        ("POST", "/v1/workspace"),
        ("DELETE", "/v1/workspace"),
    ] {
        let r = http.send(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            r#"{"name":"x"}"#,
        );
        assert_envelope(&r, 405);
    }
    // Bodies: up to 64 KiB is read; more is 413.
    let body_of = |len: usize| {
        let head = r#"{"name":"big","pad":""#;
        let tail = r#""}"#;
        format!("{head}{}{tail}", " ".repeat(len - head.len() - tail.len()))
    };
    let exact = body_of(64 * 1024);
    assert_eq!(exact.len(), 65536);
    let r = http.bearer_post_json("/v1/tags", &key, &exact);
    assert_eq!(r.status, 201, "a 64 KiB body: {}", r.body);
    for len in [64 * 1024 + 1, 70 * 1024] {
        let r = http.bearer_post_json("/v1/forms", &key, &body_of(len));
        let v = assert_envelope(&r, 413);
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
    assert_eq!(f.db().count("forms"), 0);
    assert_eq!(f.db().count("tags"), 1);
    // The server is still fine.
    assert_eq!(http.bearer_get("/v1/tags", &key).status, 200);
}

// ---------------------------------------------------------------- fuzz

/// xorshift64*: deterministic, no crates.
struct Rng(u64);

impl Rng {
    /// Spreads any seed (splitmix64) so that small seeds start well too.
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    /// Printable ASCII, space and tab: what a header value may hold.
    fn header_text(&mut self, max: usize) -> String {
        let n = self.below(max + 1);
        (0..n)
            .map(|_| {
                if self.below(20) == 0 {
                    '\t'
                } else {
                    (b' ' + self.below(95) as u8) as char
                }
            })
            .collect()
    }
    /// Anything at all, including control and non-ASCII characters.
    fn any_text(&mut self, max: usize) -> String {
        let n = self.below(max + 1);
        (0..n)
            .map(|_| match self.below(4) {
                0 => char::from_u32(self.below(0x20) as u32).unwrap(),
                1 => char::from_u32(0x80 + self.below(0x2000) as u32).unwrap_or('?'),
                2 => *self.pick(&['"', '\\', '{', '}', '[', ']', ':', ',', 'n', 'u']),
                _ => (b' ' + self.below(95) as u8) as char,
            })
            .collect()
    }
    fn json_value(&mut self, depth: usize) -> Value {
        match self.below(if depth > 3 { 5 } else { 8 }) {
            0 => Value::Null,
            1 => json!(self.below(2) == 0),
            2 => json!(self.next() as i64),
            3 => json!(self.any_text(40)),
            4 => json!(self.next() as f64 / 7.0),
            5 => Value::Array(
                (0..self.below(4))
                    .map(|_| self.json_value(depth + 1))
                    .collect(),
            ),
            _ => {
                let mut m = serde_json::Map::new();
                for _ in 0..self.below(4) {
                    let k = if self.below(2) == 0 {
                        "name".to_string()
                    } else {
                        self.any_text(8)
                    };
                    m.insert(k, self.json_value(depth + 1));
                }
                Value::Object(m)
            }
        }
    }
}

fn mutate(rng: &mut Rng, s: &str) -> String {
    let mut c: Vec<char> = s.chars().collect();
    if c.is_empty() {
        return "x".into();
    }
    match rng.below(6) {
        0 => {
            let i = rng.below(c.len());
            c[i] = (b'!' + rng.below(94) as u8) as char;
        }
        1 => {
            c.remove(rng.below(c.len()));
        }
        2 => c.insert(rng.below(c.len() + 1), (b'0' + rng.below(75) as u8) as char),
        3 => c.truncate(rng.below(c.len())),
        4 => {
            let i = rng.below(c.len());
            c[i] = if c[i].is_ascii_lowercase() {
                c[i].to_ascii_uppercase()
            } else {
                c[i].to_ascii_lowercase()
            };
        }
        _ => c.extend(['.', 'e', 'y', 'J']),
    }
    c.into_iter().collect()
}

/// Whether an Authorization value is `Bearer` (any case) and one of the valid
/// credentials.
fn presents_valid(auth: &str, valid: &[&str]) -> bool {
    let a = auth.trim_matches([' ', '\t']);
    match a.split_once(' ') {
        Some((scheme, cred)) if scheme.eq_ignore_ascii_case("bearer") => {
            valid.contains(&cred.trim())
        }
        _ => false,
    }
}

fn check_documented(r: &Resp, what: &str) {
    assert!(
        [200, 201, 400, 401, 403, 404, 405, 409, 413].contains(&r.status),
        "{what}: undocumented status {}: {}",
        r.status,
        r.body
    );
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}: not JSON ({:?}): {}",
        r.header("content-type"),
        r.body
    );
    let v: Value = serde_json::from_str(&r.body)
        .unwrap_or_else(|e| panic!("{what}: body not JSON ({e}): {:?}", r.body));
    match r.status {
        200 => {
            let list = v["data"].is_array() && v["has_more"].is_boolean();
            let workspace = v["id"].is_string() && v["name"].is_string();
            assert!(list || workspace, "{what}: {v}");
        }
        201 => {
            for field in ["id", "name", "created_at"] {
                assert!(v[field].is_string(), "{what}: {v}");
            }
        }
        401 => assert_eq!(v, unauthenticated_body(), "{what}"),
        _ => {
            for field in ["type", "code", "message"] {
                assert!(v["error"][field].is_string(), "{what}: {v}");
            }
        }
    }
}

fn fuzzed_requests_get_documented_answers(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_write");
    let ro = f.api_key("read_only");
    let (token, _) = f.tokens(ALL_SCOPES);
    let mut http = f.server.client();
    // A fixed seed, so that a failure repeats; KEYGATE_FUZZ_SEED explores others.
    let seed = std::env::var("KEYGATE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| *s != 0)
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    let mut rng = Rng::new(seed);
    let mut created = 0;

    // 1. Authorization headers.
    for i in 0..150 {
        let auth = match rng.below(8) {
            0 => rng.header_text(80),
            1 => format!("Bearer {}", rng.header_text(120)),
            2 => format!("Bearer {}", mutate(&mut rng, &key)),
            3 => format!("Bearer {}", mutate(&mut rng, &token)),
            4 => {
                let cut = rng.below(token.len());
                format!("Bearer {}", &token[..cut])
            }
            5 => format!(
                "{} {}",
                rng.pick(&["Bearer", "bearer", "Basic", "Token", "", "Bearer:", "Bearer\t"]),
                rng.pick(&[key.as_str(), ro.as_str(), token.as_str(), "", " "])
            ),
            6 => format!(
                "Bearer kgk_{}",
                rng.header_text(60).replace([' ', '\t'], "")
            ),
            _ => {
                let parts: Vec<&str> = token.split('.').collect();
                let junk = rng.header_text(30).replace([' ', '\t'], "");
                let mut p: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
                let which = rng.below(3);
                p[which] = junk;
                format!("Bearer {}", p.join("."))
            }
        };
        let (method, path) = *rng.pick(&[
            ("GET", "/v1/workspace"),
            ("GET", "/v1/tags"),
            ("GET", "/v1/forms?limit=3"),
            ("POST", "/v1/tags"),
            ("POST", "/v1/forms"),
            ("DELETE", "/v1/tags"),
            ("GET", "/v1/nope"),
        ]);
        let body = format!(r#"{{"name":"auth-fuzz-{i}"}}"#);
        let r = http.send(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            if method == "POST" { &body } else { "" },
        );
        let what = format!("#{i} {method} {path} Authorization: {auth:?}");
        check_documented(&r, &what);
        // Only an exact valid credential gets past the check.
        let real_route = !(method == "DELETE" || path == "/v1/nope");
        if real_route && !presents_valid(&auth, &[&key, &ro, &token]) {
            assert_eq!(r.status, 401, "{what}: {}", r.body);
        }
        if r.status == 201 && path == "/v1/tags" {
            created += 1;
        }
    }

    // 2. Bodies and content types, with a valid key.
    for i in 0..150 {
        let ctype = match rng.below(6) {
            0 => None,
            1 => Some(rng.header_text(30)),
            2 => Some(
                rng.pick(&[
                    "text/plain",
                    "application/x-www-form-urlencoded",
                    "multipart/form-data; boundary=x",
                    "application/jsonx",
                    "APPLICATION/JSON",
                    "application/json; charset=latin1",
                ])
                .to_string(),
            ),
            _ => Some("application/json".to_string()),
        };
        let body = match rng.below(7) {
            0 => rng.any_text(200),
            1 => rng.json_value(0).to_string(),
            2 => json!({ "name": rng.json_value(2) }).to_string(),
            3 => json!({ "name": rng.any_text(120) }).to_string(),
            4 => {
                let depth = 1 + rng.below(400);
                format!("{}{}", "[".repeat(depth), "]".repeat(depth))
            }
            5 => {
                let mut s = json!({ "name": format!("body-fuzz-{i}") }).to_string();
                s.truncate(rng.below(s.len() + 1));
                s
            }
            _ => json!({ "name": format!("body-fuzz-{}", rng.below(40)) }).to_string(),
        };
        let auth = format!("Bearer {key}");
        let mut headers = vec![("Authorization", auth.as_str())];
        if let Some(c) = &ctype {
            headers.push(("Content-Type", c.as_str()));
        }
        let r = http.send("POST", "/v1/tags", &headers, &body);
        check_documented(&r, &format!("#{i} Content-Type {ctype:?} body {body:?}"));
        if r.status == 201 {
            created += 1;
        }
    }
    assert!(created >= 3, "the fuzz hardly created anything: {created}");
    // Every 201 made exactly one row, and the server is still healthy.
    assert_eq!(f.db().count("tags"), created);
    let all = list(&mut http, "/v1/tags?limit=100", &key);
    assert!(all["data"].as_array().unwrap().len() as i64 <= created);
    assert_eq!(http.get("/healthz").status, 200);
}

/// Each `/v1` call with an OAuth token is a use of its authorization: the
/// authorized-apps row's last use moves and the day's count grows (written
/// in batches by the node's background task).
fn token_use_is_counted_for_its_app(b: Backend) {
    let f = Fixture::new(b);
    let token = token_for(&f, &f.workspace_id, "workspace:read");
    let db = f.db();
    let id = s(&f.app_row(&f.client_id), "id");
    db.execute(&format!(
        "UPDATE authorizations SET last_used_at = 1 WHERE id = '{id}'"
    ));
    let before = chrono::Utc::now().timestamp() - 2;
    for _ in 0..3 {
        assert_eq!(f.server.v1_status(&token), 200);
    }
    let counted =
        format!("usage_daily WHERE kind = 'authorization' AND subject_id = '{id}' AND count = 3");
    assert!(
        eventually(std::time::Duration::from_secs(5), || db.count(&counted)
            == 1),
        "three uses not counted for the authorization"
    );
    let last = s(&f.app_row(&f.client_id), "last_used_at");
    let last = chrono::DateTime::parse_from_rfc3339(&last).expect("rfc3339");
    assert!(last.timestamp() >= before, "last use {last} not moved");
}

both_backends!(
    token_use_is_counted_for_its_app,
    credentials_only_from_the_bearer_header,
    missing_credential,
    invalid_credentials,
    expired_access_token,
    scopes_decide_what_a_credential_may_do,
    workspaces_are_isolated,
    lists_and_creates,
    pagination,
    bad_bodies,
    duplicate_names_conflict,
    unknown_paths_methods_and_large_bodies,
    fuzzed_requests_get_documented_answers,
);
