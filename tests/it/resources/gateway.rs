//! `GET /gateway/check` over HTTP, as a reverse proxy asks it: the identity
//! headers of an allowed request, and otherwise exactly what `/v1` answers
//! (status, envelope, `WWW-Authenticate` naming the resource's own RFC 9728
//! document, which keygate serves), for keys and tokens alike; garbage
//! forwarded URIs never make a 500.

use crate::support::*;
use std::io::{Read, Write};
use std::time::Duration;

const API: &str = "https://api.example.com";
const ROUTES: &[&str] = &[
    "GET /tags tags:read",
    "POST /tags tags:write",
    "* /health -",
];

fn allowed_requests_carry_the_identity(b: Backend) {
    let f = Fixture::new(b);
    let api = f.db().create_resource(API, ROUTES);
    let key_row = f.db().create_api_key(&f.workspace_id, "gw", "read_only");
    let key = s(&key_row, "key");
    let r = gateway_check(&f.server, API, "GET", "/tags/7?page=2", Some(&key));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.is_empty());
    assert_eq!(
        r.header("x-keygate-workspace-id"),
        Some(f.workspace_id.as_str())
    );
    let credential = format!("api_key:{}", s(&key_row, "id"));
    assert_eq!(r.header("x-keygate-credential"), Some(credential.as_str()));
    assert!(r
        .header("x-keygate-scopes")
        .unwrap()
        .split(' ')
        .any(|s| s == "tags:read"));
    assert_eq!(r.header("x-keygate-client-id"), None);
    assert_eq!(r.header("x-keygate-subject"), None);

    let (_, tokens) = resource_tokens(&f, API, "tags:read tags:write");
    let access = s(&tokens, "access_token");
    let r = gateway_check(&f.server, API, "POST", "/tags", Some(&access));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-keygate-client-id"), Some(f.client_id.as_str()));
    assert_eq!(r.header("x-keygate-subject"), Some(f.owner_id.as_str()));
    assert_eq!(r.header("x-keygate-scopes"), Some("tags:read tags:write"));
    let app = f.app_row(&f.client_id);
    let credential = format!("authorization:{}", s(&app, "id"));
    assert_eq!(r.header("x-keygate-credential"), Some(credential.as_str()));
    // Traefik's headers are read too.
    let query = format!("/gateway/check?resource={API}");
    let auth = format!("Bearer {key}");
    let r = f.server.client().get_with(
        &query,
        &[
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", "/tags"),
            ("Authorization", &auth),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // Envoy's ext_authz asks with the original request's method.
    let r = f.server.client().send(
        "POST",
        &query,
        &[
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", "/tags"),
            ("Authorization", &auth),
        ],
        "a body the check never reads",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // Uses count as on /v1.
    assert!(eventually(Duration::from_secs(5), || {
        let keys = f
            .db()
            .json_lines(&["apikey", "list", "--workspace", &f.workspace_id]);
        keys.iter()
            .any(|k| k["id"] == key_row["id"] && k["usage_count"].as_i64() >= Some(3))
    }));
    // The resource's metadata names this issuer and its routes' scopes.
    let metadata = f.server.client().get(&format!(
        "/.well-known/oauth-protected-resource/gateway/{}",
        s(&api, "id")
    ));
    assert_eq!(metadata.status, 200);
    let m = metadata.json();
    assert_eq!(m["resource"], API);
    assert_eq!(m["authorization_servers"][0], f.server.base.as_str());
    assert_eq!(
        m["scopes_supported"],
        serde_json::json!(["tags:read", "tags:write"])
    );
    let missing = f
        .server
        .client()
        .get("/.well-known/oauth-protected-resource/gateway/nope");
    assert_eq!(missing.status, 404);
}

fn refusals_are_the_v1_answers(b: Backend) {
    let f = Fixture::new(b);
    let api = f.db().create_resource(API, ROUTES);
    let metadata = f.server.url(&format!(
        "/.well-known/oauth-protected-resource/gateway/{}",
        s(&api, "id")
    ));
    let key = f.api_key("read_only");
    let r = gateway_check(&f.server, API, "GET", "/tags", None);
    r.assert_v1_error(401, "authentication_error", "invalid_api_key");
    let w = r.header("www-authenticate").unwrap();
    assert!(w.starts_with("Bearer"), "{w}");
    assert!(
        w.contains(&format!("resource_metadata=\"{metadata}\"")),
        "{w}"
    );
    let r = gateway_check(&f.server, API, "GET", "/tags", Some("kg_not_a_key"));
    r.assert_v1_error(401, "authentication_error", "invalid_api_key");
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_token"));
    let r = gateway_check(&f.server, API, "POST", "/tags", Some(&key));
    r.assert_v1_error(403, "permission_error", "insufficient_scope");
    let r = gateway_check(&f.server, API, "GET", "/forms", Some(&key));
    r.assert_v1_error(403, "permission_error", "insufficient_scope");
    // A /v1 token is refused as /v1 refuses another resource's.
    let (v1_token, _) = f.tokens("tags:read");
    let r = gateway_check(&f.server, API, "GET", "/tags", Some(&v1_token));
    r.assert_v1_error(401, "authentication_error", "invalid_api_key");
    // Missing or unknown resource: 400 whatever the credential.
    for path in [
        "/gateway/check".to_string(),
        "/gateway/check?resource=https%3A%2F%2Funknown.example.com".to_string(),
        format!("/gateway/check?resource={API}&resource={API}"),
    ] {
        let auth = format!("Bearer {key}");
        let r = f.server.client().get_with(
            &path,
            &[
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "/tags"),
                ("Authorization", &auth),
            ],
        );
        r.assert_v1_error(
            400,
            "invalid_request_error",
            r.json()["error"]["code"].as_str().unwrap(),
        );
    }
}

fn an_allowlisted_key_is_refused_elsewhere(b: Backend) {
    let s_ = Server::start_with(TestDb::new(b), &[("KEYGATE_TRUSTED_PROXIES", "127.0.0.1")]);
    let f = Fixture::with_server(s_);
    f.db().create_resource(API, ROUTES);
    let row = f.db().json(&[
        "apikey",
        "create",
        "--workspace",
        &f.workspace_id,
        "--name",
        "office",
        "--access",
        "read_only",
        "--allow-ip",
        "192.0.2.0/24",
    ]);
    let key = s(&row, "key");
    let query = format!("/gateway/check?resource={API}");
    let auth = format!("Bearer {key}");
    let from = |ip: &str| {
        f.server.client().get_with(
            &query,
            &[
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "/tags"),
                ("Authorization", &auth),
                ("X-Forwarded-For", ip),
            ],
        )
    };
    from("198.51.100.7").assert_v1_error(403, "permission_error", "ip_not_allowed");
    assert_eq!(from("192.0.2.10").status, 200);
}

fn too_many_failures_are_429(b: Backend) {
    let env = [
        ("KEYGATE_RATE_LIMITS", "on"),
        ("KEYGATE_BEARER_FAILURE_LIMIT", "3"),
    ];
    let f = Fixture::with_server(Server::start_with(TestDb::new(b), &env));
    f.db().create_resource(API, ROUTES);
    let statuses: Vec<u16> = (0..5)
        .map(|_| gateway_check(&f.server, API, "GET", "/tags", Some("kg_nope")).status)
        .collect();
    assert_eq!(statuses[..3], [401, 401, 401]);
    let r = gateway_check(&f.server, API, "GET", "/tags", Some("kg_nope"));
    r.assert_v1_error(429, "rate_limit_error", "rate_limited");
    assert!(r.header("retry-after").is_some());
}

/// One raw request: bytes no HTTP client library would send.
fn raw_status(server: &Server, head: &[u8]) -> u16 {
    let addr = server.base.trim_start_matches("http://");
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(head).unwrap();
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn garbage_uris_never_make_a_500(b: Backend) {
    let f = Fixture::new(b);
    f.db().create_resource(API, &["* / -"]);
    let key = f.api_key("read_only");
    let long = format!("/{}", "a".repeat(8 * 1024));
    for uri in ["/%", "/%zz/x", "tags", "", "/a\tb", long.as_str()] {
        let r = gateway_check(&f.server, API, "GET", uri, Some(&key));
        assert!(
            [400, 403].contains(&r.status),
            "{uri:.40?}: {} {}",
            r.status,
            r.body
        );
    }
    let r = gateway_check(&f.server, API, "GET", "/%zz", None);
    assert_eq!(r.status, 401, "no credential: 401 before any route");
    // Non-ASCII bytes in the forwarded URI, as a proxy may pass them on.
    let head = format!(
        "GET /gateway/check?resource={API} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nX-Original-Method: GET\r\nX-Original-URI: /caf\u{e9}/\r\n\r\n"
    );
    let status = raw_status(&f.server, head.as_bytes());
    assert_eq!(status, 403);
    let mut bytes = format!(
        "GET /gateway/check?resource={API} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nX-Original-Method: GET\r\nX-Original-URI: /"
    )
    .into_bytes();
    bytes.extend_from_slice(&[0xff, 0xfe, 0x80]);
    bytes.extend_from_slice(b"\r\n\r\n");
    assert_eq!(raw_status(&f.server, &bytes), 403);
}

both_backends!(
    allowed_requests_carry_the_identity,
    refusals_are_the_v1_answers,
    an_allowlisted_key_is_refused_elsewhere,
    too_many_failures_are_429,
    garbage_uris_never_make_a_500
);
