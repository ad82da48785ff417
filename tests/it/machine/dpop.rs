//! DPoP (RFC 9449): bound tokens at the token endpoint, on `/v1` and in
//! introspection, a public client's bound refresh token, and every proof the
//! contract refuses.

use super::client_credentials::{introspect_as, service};
use crate::support::*;
use serde_json::{json, Value};

/// A proof by `key` for `method` and `url`, with `ath` of `token` if given.
pub fn proof(key: &TestKey, method: &str, url: &str, token: Option<&str>) -> String {
    key.sign(Some("dpop+jwt"), true, &proof_claims(method, url, token))
}

fn proof_claims(method: &str, url: &str, token: Option<&str>) -> Value {
    let mut c = json!({
        "jti": unique(),
        "htm": method,
        "htu": url,
        "iat": now(),
    });
    if let Some(t) = token {
        c["ath"] = json!(ath(t));
    }
    c
}

/// A client-credentials token bound to `key`.
fn bound_token(f: &Fixture, id: &str, secret: &str, key: &TestKey) -> Resp {
    let p = proof(key, "POST", &f.server.url("/oauth/token"), None);
    f.server.client().post_form_with(
        "/oauth/token",
        &[("grant_type", "client_credentials")],
        &[("Authorization", &basic(id, secret)), ("DPoP", &p)],
    )
}

fn dpop_get(f: &Fixture, path: &str, token: &str, proof: Option<&str>) -> Resp {
    let auth = format!("DPoP {token}");
    let mut headers = vec![("Authorization", auth.as_str())];
    if let Some(p) = proof {
        headers.push(("DPoP", p));
    }
    f.server.client().get_with(path, &headers)
}

fn assert_dpop_refused(r: &Resp, error: &str, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.body);
    let w = r.header("www-authenticate").unwrap_or_default();
    assert!(
        w.starts_with("DPoP ") && w.contains(&format!("error=\"{error}\"")),
        "{what}: {w}"
    );
}

fn dpop_bound_tokens_on_v1(b: Backend) {
    let f = Fixture::new(b);
    let created = service(&f, &["workspace:read", "tags:read"]);
    let (id, secret) = (s(&created, "client_id"), s(&created, "client_secret"));
    let key = TestKey::es256("dpop");
    let r = bound_token(&f, &id, &secret, &key);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["token_type"], "DPoP");
    let token = s(&r.json(), "access_token");
    let seen = introspect_as(&f, &id, &secret, &token);
    assert_eq!(seen["cnf"]["jkt"], key.thumbprint().as_str());

    let url = f.server.url("/v1/workspace");
    let good = proof(&key, "GET", &url, Some(&token));
    assert_eq!(
        dpop_get(&f, "/v1/workspace", &token, Some(&good)).status,
        200
    );
    // The same proof again: a replay.
    let again = dpop_get(&f, "/v1/workspace", &token, Some(&good));
    assert_dpop_refused(&again, "invalid_dpop_proof", "replayed proof");

    let other_key = TestKey::es256("other");
    let mut old = proof_claims("GET", &url, Some(&token));
    old["iat"] = json!(now() - 400);
    let cases = vec![
        ("another method", proof(&key, "POST", &url, Some(&token))),
        (
            "another URL",
            proof(&key, "GET", &f.server.url("/v1/tags"), Some(&token)),
        ),
        (
            "another token",
            proof(&key, "GET", &url, Some("not-this-token")),
        ),
        ("another key", proof(&other_key, "GET", &url, Some(&token))),
        ("no ath", proof(&key, "GET", &url, None)),
        ("too old", key.sign(Some("dpop+jwt"), true, &old)),
        (
            "wrong typ",
            key.sign(Some("JWT"), true, &proof_claims("GET", &url, Some(&token))),
        ),
        (
            "alg none",
            unsigned(
                &json!({"alg": "none", "typ": "dpop+jwt", "jwk": key.public_jwk()}),
                &proof_claims("GET", &url, Some(&token)),
            ),
        ),
    ];
    for (what, p) in cases {
        assert_dpop_refused(
            &dpop_get(&f, "/v1/workspace", &token, Some(&p)),
            "invalid_dpop_proof",
            what,
        );
    }
    assert_dpop_refused(
        &dpop_get(&f, "/v1/workspace", &token, None),
        "invalid_dpop_proof",
        "no proof",
    );
    // The bound token as Bearer.
    let bearer = f.server.client().bearer_get("/v1/workspace", &token);
    assert_dpop_refused(&bearer, "invalid_token", "DPoP token sent as Bearer");
    // An unbound credential with the DPoP scheme.
    let plain = s(
        &f.server
            .client()
            .post_form_with(
                "/oauth/token",
                &[("grant_type", "client_credentials")],
                &[("Authorization", &basic(&id, &secret))],
            )
            .json(),
        "access_token",
    );
    let p = proof(&key, "GET", &url, Some(&plain));
    assert_dpop_refused(
        &dpop_get(&f, "/v1/workspace", &plain, Some(&p)),
        "invalid_token",
        "unbound token as DPoP",
    );
    // Still good with a fresh proof.
    let fresh = proof(&key, "GET", &url, Some(&token));
    assert_eq!(
        dpop_get(&f, "/v1/workspace", &token, Some(&fresh)).status,
        200
    );
}

fn bad_proofs_at_the_token_endpoint(b: Backend) {
    let f = Fixture::new(b);
    let created = service(&f, &["workspace:read"]);
    let (id, secret) = (s(&created, "client_id"), s(&created, "client_secret"));
    let key = TestKey::ed25519("dpop");
    let token_url = f.server.url("/oauth/token");
    let reused = proof(&key, "POST", &token_url, None);
    let first = f.server.client().post_form_with(
        "/oauth/token",
        &[("grant_type", "client_credentials")],
        &[("Authorization", &basic(&id, &secret)), ("DPoP", &reused)],
    );
    assert_eq!(first.status, 200, "{}", first.body);
    let before = f.db().count("access_tokens");
    let cases = vec![
        ("replayed", reused),
        (
            "another URL",
            proof(&key, "POST", &f.server.url("/oauth/revoke"), None),
        ),
        ("another method", proof(&key, "GET", &token_url, None)),
        (
            "HMAC",
            key.hmac_with_public_key(&proof_claims("POST", &token_url, None)),
        ),
        ("not a JWT", "nope".to_string()),
    ];
    for (what, p) in cases {
        let r = f.server.client().post_form_with(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            &[("Authorization", &basic(&id, &secret)), ("DPoP", &p)],
        );
        assert_eq!(r.status, 400, "{what}: {}", r.body);
        assert_eq!(r.json()["error"], "invalid_dpop_proof", "{what}");
    }
    assert_eq!(f.db().count("access_tokens"), before, "nothing issued");
}

fn public_clients_get_bound_refresh_tokens(b: Backend) {
    let f = Fixture::new(b);
    let key = TestKey::es256("device");
    let (verifier, challenge) = pkce();
    let mut http = f.owner();
    let params = f.approve(&mut http, &f.public_client_id, "workspace:read", &challenge);
    let code = param(&params, "code").unwrap().to_string();
    let token_url = f.server.url("/oauth/token");
    let refresh = |rt: &str, proof: Option<String>| {
        let mut headers = Vec::new();
        let p = proof.unwrap_or_default();
        if !p.is_empty() {
            headers.push(("DPoP", p.as_str()));
        }
        f.server.client().post_form_with(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", &f.public_client_id),
            ],
            &headers,
        )
    };
    let p = proof(&key, "POST", &token_url, None);
    let r = f.server.client().post_form_with(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &f.public_client_id),
            ("code", &code),
            ("redirect_uri", &f.redirect_uri),
            ("code_verifier", &verifier),
        ],
        &[("DPoP", &p)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["token_type"], "DPoP");
    let rt = s(&r.json(), "refresh_token");
    refresh(&rt, None).assert_oauth_error(400, "invalid_grant");
    let stranger = TestKey::es256("thief");
    refresh(&rt, Some(proof(&stranger, "POST", &token_url, None)))
        .assert_oauth_error(400, "invalid_grant");
    let ok = refresh(&rt, Some(proof(&key, "POST", &token_url, None)));
    assert_eq!(ok.status, 200, "the same key refreshes: {}", ok.body);
    assert_eq!(ok.json()["token_type"], "DPoP");
    let next = s(&ok.json(), "refresh_token");
    refresh(&next, None).assert_oauth_error(400, "invalid_grant");
}

/// A proof is used once across every node, at once: its use is recorded in
/// the shared database before the request is answered, so the same proof at
/// another node a moment later is a replay; and of the same proof sent to
/// both nodes at the same time, exactly one request passes.
fn a_proof_is_used_once_across_nodes(b: Backend) {
    let f = Fixture::new(b);
    let created = service(&f, &["workspace:read"]);
    let (id, secret) = (s(&created, "client_id"), s(&created, "client_secret"));
    let key = TestKey::es256("dpop");
    let token = s(&bound_token(&f, &id, &secret, &key).json(), "access_token");
    let node_b = crate::support::second_node(&f, &[]);
    // Proofs name the issuer's URL, whichever node serves them.
    let url = f.server.url("/v1/workspace");
    let at = |node: &Server, p: &str| {
        let auth = format!("DPoP {token}");
        node.client()
            .get_with("/v1/workspace", &[("Authorization", &auth), ("DPoP", p)])
    };

    let p = proof(&key, "GET", &url, Some(&token));
    assert_eq!(at(&f.server, &p).status, 200);
    assert_dpop_refused(&at(&node_b, &p), "invalid_dpop_proof", "replay at node B");
    let p = proof(&key, "GET", &url, Some(&token));
    assert_eq!(at(&node_b, &p).status, 200);
    assert_dpop_refused(&at(&f.server, &p), "invalid_dpop_proof", "replay at node A");

    // Concurrent uses: distinct proofs all pass; one proof sent many times
    // at once, to both nodes, passes once.
    let nodes = [&f.server, &node_b];
    for round in 0..3 {
        let same = proof(&key, "GET", &url, Some(&token));
        let statuses: Vec<(bool, u16)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..16)
                .map(|i| {
                    let (node, same, key, url) = (nodes[i % 2], &same, &key, &url);
                    let (at, token) = (&at, &token);
                    scope.spawn(move || {
                        let replay = i % 4 != 0;
                        let p = if replay {
                            same.clone()
                        } else {
                            proof(key, "GET", url, Some(token))
                        };
                        (replay, at(node, &p).status)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let fresh_ok = statuses.iter().filter(|(r, st)| !r && *st == 200).count();
        assert_eq!(
            fresh_ok, 4,
            "round {round}: every distinct proof passes: {statuses:?}"
        );
        let same_ok = statuses.iter().filter(|(r, st)| *r && *st == 200).count();
        assert_eq!(
            same_ok, 1,
            "round {round}: one proof passes once: {statuses:?}"
        );
        assert!(
            statuses.iter().all(|(_, st)| *st == 200 || *st == 401),
            "round {round}: {statuses:?}"
        );
    }
}

both_backends!(
    a_proof_is_used_once_across_nodes,
    dpop_bound_tokens_on_v1,
    bad_proofs_at_the_token_endpoint,
    public_clients_get_bound_refresh_tokens
);
