//! Hostile, panicking and oversized requests: no worker crashes, answers keep their shape.

use super::*;

/// Sends raw bytes as one HTTP/1.1 request and returns the status and the body.
fn raw_request(s: &Server, request: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = s.base.trim_start_matches("http://");
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(request).expect("send");
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no HTTP answer to {:?}: {text:?}",
                String::from_utf8_lossy(request)
            )
        });
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn unescape_pct(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// No input makes a worker panic or answer 500: every parser on the attack
/// surface (paths, headers, cookies, base64, tokens, form fields, `next`) gets
/// multi-byte, invalid UTF-8 and truncated input (OWASP Input Validation).
fn hostile_inputs_never_crash_a_worker(b: Backend) {
    let f = Fixture::new(b);
    // A signed-in person sent to a `next` with non-ASCII characters.
    let mut owner = f.owner();
    for next in [
        "/settings/%C3%A9t%C3%A9",
        "/settings/\u{1F600}",
        "/oauth/authorize?x=%E2%82%AC",
    ] {
        let path = format!(
            "/login?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("next", &unescape_pct(next))
                .finish()
        );
        let r = owner.get(&path);
        assert_eq!(r.status, 302, "{next}: {}", r.body);
        assert!(r.location().is_ascii() && r.location().starts_with('/'));
    }
    // Signing in with such a `next`.
    let mut http = f.server.client();
    let page = http.get("/login");
    let csrf = hidden(&page.body, "csrf_token").unwrap();
    let r = http.post_form(
        "/login",
        &[
            ("email", f.owner_email.as_str()),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
            ("next", "/settings/\u{e9}\u{20ac}"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location().starts_with("/settings/"), "{}", r.location());

    let host = f.server.base.trim_start_matches("http://").to_string();
    let req = |line: &str, headers: &[&[u8]]| -> Vec<u8> {
        let mut r =
            format!("{line} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n").into_bytes();
        for h in headers {
            r.extend_from_slice(h);
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(b"\r\n");
        r
    };
    let basic_garbage = |raw: &[u8]| {
        use base64::Engine;
        let mut h = b"Authorization: Basic ".to_vec();
        h.extend_from_slice(
            base64::engine::general_purpose::STANDARD
                .encode(raw)
                .as_bytes(),
        );
        h
    };
    let token_post = |auth: Vec<u8>, body: &[u8]| {
        let mut r = format!(
            "POST /oauth/token HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(&auth);
        r.extend_from_slice(b"\r\n\r\n");
        r.extend_from_slice(body);
        r
    };
    let cases: Vec<Vec<u8>> = vec![
        req(
            "GET /v1/workspace",
            &["Authorization: Bearer kgk_\u{e9}\u{e9}\u{e9}".as_bytes()],
        ),
        req(
            "GET /v1/workspace",
            &[b"Authorization: Bearer kgk_\xff\xfe"],
        ),
        req(
            "GET /v1/workspace",
            &["Authorization: B\u{e9}arer x".as_bytes()],
        ),
        req(
            "GET /v1/workspace",
            &["Authorization: Bearer \u{e9}.\u{e9}.\u{e9}".as_bytes()],
        ),
        req("GET /v1/workspace", &[b"Authorization: Bearer"]),
        req("GET /v1/%FF%FE", &[]),
        req("GET /v1/tags?limit=%C3%A9&starting_after=%FF", &[]),
        req(
            "GET /healthz",
            &["X-Request-Id: \u{e9}\u{1F600}".as_bytes()],
        ),
        req("GET /healthz", &[b"X-Request-Id: \xff"]),
        req(
            "GET /login",
            &["Cookie: keygate_session=\u{e9}; keygate_login_csrf=\u{1F600}".as_bytes()],
        ),
        req("GET /settings", &[b"Cookie: keygate_session=\xff\xfe"]),
        req(
            "GET /settings/api-keys",
            &["Cookie: keygate_session=\u{e9}".as_bytes()],
        ),
        req("GET /login?next=%FF%FE", &[]),
        req("GET /login?next=/settings%C3", &[]),
        req("GET /oauth/authorize?client_id=%FF&redirect_uri=%C3", &[]),
        req("GET /oauth/authorize?client_id=\u{e9}", &[]),
        req("GET /.well-known/oauth-authorization-server/%C3%A9", &[]),
        token_post(
            basic_garbage("\u{e9}:\u{1F600}".as_bytes()),
            b"grant_type=refresh_token&refresh_token=x",
        ),
        token_post(
            basic_garbage(b"\xff\xfe:\xc3"),
            b"grant_type=refresh_token&refresh_token=x",
        ),
        token_post(basic_garbage(b"%E9%:%"), b"grant_type=refresh_token"),
        token_post(
            b"Authorization: Basic \xc3\xa9".to_vec(),
            b"grant_type=refresh_token",
        ),
        token_post(
            b"Authorization: Basic".to_vec(),
            b"grant_type=refresh_token",
        ),
        token_post(
            Vec::new(),
            b"grant_type=authorization_code&client_id=%FF&code=%C3&code_verifier=\xff",
        ),
        token_post(
            Vec::new(),
            "grant_type=\u{e9}&client_id=\u{1F600}".as_bytes(),
        ),
    ];
    for case in &cases {
        let (status, body) = raw_request(&f.server, case);
        assert!(
            status < 500,
            "{status} for {:?}: {body}",
            String::from_utf8_lossy(case)
        );
    }
    assert_eq!(http.get("/healthz").status, 200);
    assert!(
        !f.server.logs().contains("panicked"),
        "a worker panicked: {}",
        f.server.logs()
    );
}

/// A handler that panics anyway is a 500 in its boundary's shape, and the
/// worker keeps serving.
fn panicking_handlers_answer_500_in_their_shape(b: Backend) {
    let s = Server::start_with(TestDb::new(b), &[("KEYGATE_TEST_PANIC_ROUTE", "1")]);
    let mut http = s.client();
    for _ in 0..3 {
        http.get("/v1/_panic")
            .assert_v1_error(500, "api_error", "internal_error");
        let r = http.get("/oauth/token/_panic");
        assert_eq!(r.status, 500, "{}", r.body);
        assert_eq!(r.json()["error"], "server_error", "{}", r.body);
        let r = http.get("/_panic");
        assert_eq!(r.status, 500, "{}", r.body);
        assert!(r
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/html")));
        assert!(r.body.contains("Something went wrong"), "{}", r.body);
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert!(r.header("x-request-id").is_some());
    }
    assert_eq!(http.get("/healthz").status, 200);
    assert!(
        s.logs().contains("a request handler panicked"),
        "{}",
        s.logs()
    );
    // Without the variable the routes do not exist.
    let plain = Server::start(b);
    plain
        .client()
        .get("/v1/_panic")
        .assert_v1_error(404, "invalid_request_error", "not_found");
}

fn oversized_requests_get_clear_errors(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_write");
    let mut http = f.server.client();
    let big = format!("{{\"name\":\"{}\"}}", "x".repeat(70_000));
    http.bearer_post_json("/v1/tags", &key, &big)
        .assert_v1_error(413, "invalid_request_error", "payload_too_large");
    let big_form = format!(
        "grant_type=refresh_token&refresh_token={}",
        "x".repeat(70_000)
    );
    let auth = f.basic();
    let r = http.send(
        "POST",
        "/oauth/token",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &big_form,
    );
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"], "invalid_request");
    // A very long URL is refused, not a crash; the server still answers after.
    let long = format!("/v1/tags?limit={}", "1".repeat(40_000));
    let r = http.bearer_get(&long, &key);
    assert!((400..500).contains(&r.status), "status {}", r.status);
    assert_eq!(http.get("/healthz").status, 200);
    // Nothing was written by the refused requests.
    assert_eq!(f.db().count("tags"), 0);
}

both_backends!(
    hostile_inputs_never_crash_a_worker,
    panicking_handlers_answer_500_in_their_shape,
    oversized_requests_get_clear_errors,
);
