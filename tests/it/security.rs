//! Security properties that cut across endpoints: headers, abuse limits, size
//! limits, secrets in logs and at rest, clean shutdown.

use crate::support::*;
use std::time::Duration;

fn html_pages_carry_strict_headers(b: Backend) {
    let f = Fixture::new(b);
    let mut http = f.server.client();
    let login = http.get("/login");
    assert_eq!(login.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(login.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(login.header("x-frame-options"), Some("DENY"));
    let csp = login.header("content-security-policy").expect("CSP");
    for part in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "script-src 'self'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(
        login.header("strict-transport-security").is_none(),
        "no HSTS on an http issuer"
    );
    // JSON endpoints carry the same no-referrer / nosniff headers.
    let meta = http.get("/.well-known/oauth-authorization-server");
    assert_eq!(meta.header("referrer-policy"), Some("no-referrer"));
    // Every response has a request id.
    assert!(meta.header("x-request-id").is_some_and(|v| !v.is_empty()));
}

fn https_issuer_gets_hsts_and_secure_cookies(b: Backend) {
    let port = free_port();
    // The issuer is https (as behind a TLS-terminating proxy); keygate itself listens on
    // http. A trailing slash is dropped from the issuer.
    let s = Server::spawn(
        TestDb::new(b),
        port,
        &[("KEYGATE_ISSUER", "https://id.example.test/")],
    );
    let mut http = s.client();
    let login = http.get("/login");
    assert!(login
        .header("strict-transport-security")
        .is_some_and(|h| h.contains("max-age=")));
    let cookie = login.header("set-cookie").unwrap();
    assert!(cookie.to_lowercase().contains("secure"), "{cookie}");
    let meta = http.get("/.well-known/oauth-authorization-server").json();
    assert_eq!(meta["issuer"], "https://id.example.test");
    assert_eq!(
        meta["token_endpoint"],
        "https://id.example.test/oauth/token"
    );
}

fn failed_logins_are_slowed_without_enumeration(b: Backend) {
    let db = TestDb::new(b);
    let s = Server::start_with(
        db,
        &[
            ("KEYGATE_RATE_LIMITS", "on"),
            ("KEYGATE_LOGIN_FAILURE_LIMIT", "3"),
        ],
    );
    let f = Fixture::with_server(s);
    let mut http = f.server.client();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(http.login(&f.owner_email, "wrong password").status);
    }
    assert_eq!(&statuses[..2], &[401, 401]);
    let limited = http.login(&f.owner_email, "wrong password");
    assert_eq!(limited.status, 429, "{statuses:?}");
    assert!(limited.header("retry-after").is_some());
    // An unknown account is treated the same way: no enumeration.
    let mut other = f.server.client();
    let mut unknown = Vec::new();
    for _ in 0..5 {
        unknown.push(other.login("nobody@example.com", "wrong password").status);
    }
    assert_eq!(unknown.last(), Some(&429), "{unknown:?}");
    // Another account is not affected by this one's failures.
    let (_, admin_email) = f.add_user("admin");
    assert_eq!(f.server.client().login(&admin_email, PASSWORD).status, 303);
}

fn failed_bearer_checks_are_limited_per_address(b: Backend) {
    let db = TestDb::new(b);
    let s = Server::start_with(
        db,
        &[
            ("KEYGATE_RATE_LIMITS", "on"),
            ("KEYGATE_BEARER_FAILURE_LIMIT", "5"),
        ],
    );
    let f = Fixture::with_server(s);
    let key = f.api_key("read_only");
    let mut http = f.server.client();
    // A client that keeps succeeding is never slowed.
    for _ in 0..20 {
        assert_eq!(http.bearer_get("/v1/workspace", &key).status, 200);
    }
    // Five failures (the configured limit) lock the address out…
    for i in 0..5 {
        let fake = format!("kgk_AAAAAAAAAA_{}{:06}", "B".repeat(32), i);
        http.bearer_get("/v1/workspace", &fake).assert_v1_error(
            401,
            "authentication_error",
            "invalid_api_key",
        );
    }
    // …for unknown credentials of every kind.
    // The real key with its last character changed (a key may end in 'x').
    let last = if key.ends_with('x') { 'y' } else { 'x' };
    let altered = format!("{}{last}", &key[..key.len() - 1]);
    for fake in ["kgk_x", "a.b.c", &altered] {
        let r = http.bearer_get("/v1/workspace", fake);
        r.assert_v1_error(429, "rate_limit_error", "rate_limited");
        assert!(r
            .header("retry-after")
            .is_some_and(|s| s.parse::<u64>().is_ok()));
    }
    // The good key, already verified, still works from the same address.
    assert_eq!(http.bearer_get("/v1/workspace", &key).status, 200);
    // So do valid credentials this node has never seen (not cached yet): an
    // API key and an access token. The address is limited for failures only.
    let fresh = f.api_key("read_only");
    assert_eq!(http.bearer_get("/v1/workspace", &fresh).status, 200);
    let (access, _) = f.tokens("workspace:read");
    assert_eq!(http.bearer_get("/v1/workspace", &access).status, 200);
    // …and the garbage is still refused with 429.
    http.bearer_get("/v1/workspace", "kgk_x").assert_v1_error(
        429,
        "rate_limit_error",
        "rate_limited",
    );
}

/// Signs in through the login form as a client at `address` (behind a
/// trusted proxy that sets `X-Forwarded-For`).
fn login_from(http: &mut Http, address: &str, email: &str, password: &str) -> Resp {
    let xff = [("X-Forwarded-For", address)];
    let page = http.get_with("/login", &xff);
    assert_eq!(page.status, 200, "login page: {}", page.body);
    let csrf = hidden(&page.body, "csrf_token").expect("CSRF token");
    http.post_form_with(
        "/login",
        &[
            ("email", email),
            ("password", password),
            ("csrf_token", &csrf),
            ("next", "/settings"),
        ],
        &xff,
    )
}

/// OWASP Authentication Cheat Sheet: a lock-out must not let an attacker lock
/// the owner out. Failures count per (account, address): the attacker's
/// address is stopped, the owner signing in from elsewhere is not.
fn failed_logins_never_lock_out_the_owner(b: Backend) {
    let s = Server::start_with(
        TestDb::new(b),
        &[
            ("KEYGATE_RATE_LIMITS", "on"),
            ("KEYGATE_LOGIN_FAILURE_LIMIT", "3"),
            ("KEYGATE_TRUSTED_PROXIES", "127.0.0.1/32"),
        ],
    );
    let f = Fixture::with_server(s);
    let attacker = "203.0.113.7";
    let mut evil = f.server.client();
    let statuses: Vec<u16> = (0..6)
        .map(|_| login_from(&mut evil, attacker, &f.owner_email, "guess").status)
        .collect();
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // The attacker's address is stopped before any password is checked, so
    // guessing from it ends there, even with the right password.
    assert_eq!(
        login_from(&mut evil, attacker, &f.owner_email, PASSWORD).status,
        429
    );
    // The owner, from their own address, signs in with the right password.
    let mut owner = f.server.client();
    let r = login_from(&mut owner, "198.51.100.2", &f.owner_email, PASSWORD);
    assert_eq!(r.status, 303, "{}", r.body);

    // An address that fails across many accounts (12 = 4 × the limit) gets
    // 429 for every further attempt, a right password included (anything
    // else would tell a sprayer which guess was right); the people behind it
    // sign in from elsewhere, or once the block has passed.
    let (_, member) = f.add_user("member");
    let shared = "192.0.2.10";
    let mut crowd = f.server.client();
    for i in 0..14 {
        let _ = login_from(&mut crowd, shared, &format!("victim{i}@example.com"), "x");
    }
    assert_eq!(
        login_from(&mut crowd, shared, "victim99@example.com", "x").status,
        429
    );
    let mut colleague = f.server.client();
    let r = login_from(&mut colleague, shared, &member, PASSWORD);
    assert_eq!(r.status, 429, "{}", r.body);
    let r = login_from(&mut colleague, "192.0.2.11", &member, PASSWORD);
    assert_eq!(r.status, 303, "{}", r.body);
}

/// Password hashing (argon2id, ~15 ms) runs with no database connection held:
/// a burst of failed logins cannot exhaust the pool and starve the token
/// endpoint and `/v1` (OWASP Denial of Service Cheat Sheet).
fn failed_logins_do_not_starve_the_pool(b: Backend) {
    let s = Server::start_with(TestDb::new(b), &[("KEYGATE_DB_POOL_SIZE", "1")]);
    let f = Fixture::with_server(s);
    let key = f.api_key("read_only");
    let (_, mut refresh) = f.tokens("workspace:read");
    // Each attacker holds a login form (and its CSRF cookie), then all post a
    // wrong password at once, three times over.
    const ATTACKERS: usize = 80;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(ATTACKERS + 1));
    let storm: Vec<_> = (0..ATTACKERS)
        .map(|_| {
            let mut http = f.server.client();
            let email = f.owner_email.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let page = http.get("/login");
                let mut csrf = hidden(&page.body, "csrf_token").expect("CSRF token");
                barrier.wait();
                let mut statuses = Vec::new();
                for _ in 0..3 {
                    let r = http.post_form(
                        "/login",
                        &[
                            ("email", email.as_str()),
                            ("password", "wrong password"),
                            ("csrf_token", &csrf),
                        ],
                    );
                    statuses.push(r.status);
                    // Each answer carries a new login form.
                    match hidden(&r.body, "csrf_token") {
                        Some(c) => csrf = c,
                        None => break,
                    }
                }
                statuses
            })
        })
        .collect();
    barrier.wait();
    let mut http = f.server.client();
    let mut answers = Vec::new();
    while storm.iter().any(|t| !t.is_finished()) {
        // /v1/tags reads the database on every call.
        let r = http.bearer_get("/v1/tags", &key);
        answers.push(("v1", r.status, r.body));
        let r = f.refresh(&refresh);
        if r.status == 200 {
            refresh = r.json()["refresh_token"].as_str().unwrap().to_string();
        }
        answers.push(("token", r.status, r.body));
    }
    assert!(answers.len() >= 2);
    for (what, status, body) in &answers {
        assert_eq!(*status, 200, "{what} during the login storm: {body}");
    }
    for t in storm {
        let statuses = t.join().expect("login thread");
        assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    }
}

fn token_endpoint_limits_failing_clients(b: Backend) {
    let db = TestDb::new(b);
    let s = Server::start_with(
        db,
        &[
            ("KEYGATE_RATE_LIMITS", "on"),
            ("KEYGATE_CLIENT_FAILURE_LIMIT", "3"),
        ],
    );
    let f = Fixture::with_server(s);
    let mut http = f.server.client();
    let wrong = basic(&f.client_id, "wrong");
    let mut last = 0;
    for _ in 0..6 {
        last = http
            .post_form_with(
                "/oauth/token",
                &[("grant_type", "refresh_token"), ("refresh_token", "x")],
                &[("Authorization", &wrong)],
            )
            .status;
    }
    assert_eq!(last, 429);
    // Failures made in a client's name do not lock the real client out: a
    // request that authenticates and succeeds is never slowed.
    let (code, verifier) = f.code("workspace:read");
    assert_eq!(f.exchange(&code, &verifier).status, 200);
    // Varying the wrong secret does not escape the count.
    let r = http.post_form_with(
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        &[("Authorization", &basic(&f.client_id, "another wrong one"))],
    );
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    // Another client is not slowed.
    let (code, verifier) = {
        let (verifier, challenge) = pkce();
        let mut owner = f.owner();
        let params = f.approve(
            &mut owner,
            &f.public_client_id,
            "workspace:read",
            &challenge,
        );
        (param(&params, "code").unwrap().to_string(), verifier)
    };
    let r = http.post_form(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", &f.public_client_id),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

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

fn unescape_pct(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Sends `requests` over one keep-alive connection, pipelined in batches, and
/// returns the status of each answer.
fn pipeline(s: &Server, requests: &[Vec<u8>]) -> Vec<u16> {
    pipeline_to(&s.base, requests)
}

fn pipeline_to(base: &str, requests: &[Vec<u8>]) -> Vec<u16> {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut statuses = Vec::with_capacity(requests.len());
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    for batch in requests.chunks(256) {
        tcp.write_all(&batch.concat()).expect("send");
        let want = statuses.len() + batch.len();
        while statuses.len() < want {
            // One whole answer at the front of the buffer?
            let parsed = buf
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .and_then(|end| {
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(Some(0), |v| v.trim().parse().ok())?;
                    (buf.len() >= end + 4 + length).then_some((status, end + 4 + length))
                });
            match parsed {
                Some((status, used)) => {
                    statuses.push(status);
                    buf.drain(..used);
                }
                None => {
                    let n = tcp.read(&mut chunk).expect("read");
                    assert!(n > 0, "connection closed after {} answers", statuses.len());
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }
    statuses
}

/// OWASP Denial of Service Cheat Sheet: state kept per caller-chosen key must
/// be bounded. 100,000 made-up client ids at the token
/// endpoint and made-up methods and paths leave the limiters and the request
/// metrics under their caps.
fn memory_stays_bounded_under_made_up_keys(b: Backend) {
    let s = crate::ops::metrics_server(b, &[("KEYGATE_RATE_LIMITS", "on")]);
    let host = s.base.trim_start_matches("http://").to_string();
    let started = std::time::Instant::now();
    const CLIENTS: usize = 100_000;
    const CONNECTIONS: usize = 4;
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let host = host.clone();
            let base = s.base.clone();
            std::thread::spawn(move || {
                let requests: Vec<Vec<u8>> = (0..CLIENTS / CONNECTIONS)
                    .map(|i| {
                        let body = format!(
                            "grant_type=refresh_token&refresh_token=x&client_id=made-up-{c}-{i}-{}",
                            uuid::Uuid::new_v4().simple()
                        );
                        format!(
                            "POST /oauth/token HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .into_bytes()
                    })
                    .collect();
                pipeline_to(&base, &requests)
            })
        })
        .collect();
    // Made-up methods and paths, alongside.
    let odd: Vec<Vec<u8>> = (0..5_000)
        .map(|i| {
            format!("XMETHOD{i} /made/up/{i} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n")
                .into_bytes()
        })
        .collect();
    let odd_statuses = pipeline(&s, &odd);
    assert!(
        odd_statuses.iter().all(|s| (400..500).contains(s)),
        "made-up methods: {:?}",
        &odd_statuses[..5]
    );
    for w in workers {
        let statuses = w.join().expect("client thread");
        assert_eq!(statuses.len(), CLIENTS / CONNECTIONS);
        // Each is an unknown client: 401, or 429 once that id has failed enough.
        assert!(
            statuses.iter().all(|s| *s == 401 || *s == 429),
            "{:?}",
            &statuses[..5]
        );
    }
    let m = crate::ops::scrape(&s);
    let tracked = crate::ops::metric(
        &m,
        "keygate_abuse_tracked_entries",
        &[("limiter", "client")],
    );
    assert!(
        tracked > 1_000.0,
        "the client limiter tracked the failures: {tracked}\n{m}"
    );
    assert!(
        tracked <= 65_536.0,
        "the client limiter is over its cap: {tracked}"
    );
    for limiter in ["login_account", "login_address", "bearer_address"] {
        assert!(
            crate::ops::metric(&m, "keygate_abuse_tracked_entries", &[("limiter", limiter)])
                <= 65_536.0
        );
    }
    let series = m
        .lines()
        .filter(|l| l.starts_with("keygate_http_requests_total{"))
        .count();
    assert!(series <= 64, "{series} request series:\n{m}");
    assert!(m.contains("method=\"other\""), "{m}");
    assert!(!m.contains("XMETHOD") && !m.contains("made-up") && !m.contains("/made/up"));
    eprintln!("100,000 made-up clients in {:?}", started.elapsed());
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

fn logs_hold_no_secrets(b: Backend) {
    let s = Server::start_with(TestDb::new(b), &[("RUST_LOG", "debug")]);
    let f = Fixture::with_server(s);
    let (verifier, challenge) = pkce();
    let mut owner = f.owner();
    let params = f.approve(
        &mut owner,
        &f.client_id,
        "workspace:read tags:read",
        &challenge,
    );
    let code = param(&params, "code").unwrap().to_string();
    let t = f.exchange(&code, &verifier).json();
    let access = t["access_token"].as_str().unwrap().to_string();
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    let refreshed = f.refresh(&refresh).json();
    let key = f.api_key("read_only");
    assert_eq!(f.server.v1_status(&key), 200);
    assert_eq!(f.server.v1_status(&access), 200);
    let _ = f.introspect(&access);
    let session = owner.cookie("keygate_session").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let logs = f.server.logs();
    assert!(
        logs.contains("/oauth/token"),
        "request lines are logged: {logs}"
    );
    for secret in [
        code.as_str(),
        verifier.as_str(),
        access.as_str(),
        refresh.as_str(),
        refreshed["refresh_token"].as_str().unwrap(),
        key.as_str(),
        f.client_secret.as_str(),
        PASSWORD,
        session.as_str(),
    ] {
        assert!(
            !logs.contains(secret),
            "a secret appears in the logs: {secret}"
        );
    }
}

fn signing_keys_sealed_with_master_key(b: Backend) {
    let db = TestDb::new(b);
    let url = db.url.clone();
    let mut s = Server::start_with(
        db,
        &[(
            "KEYGATE_MASTER_KEY",
            "a long random master key for the test",
        )],
    );
    let stored =
        s.db.text("SELECT private_key AS v FROM signing_keys")
            .unwrap();
    assert!(
        stored.starts_with("enc1:"),
        "private key stored in clear: {}",
        &stored[..10]
    );
    let jwks = s.client().get("/.well-known/jwks.json").body;
    assert!(!jwks.contains(&stored[5..20]));
    assert!(s.terminate().success());
    // The wrong master key is refused at start, with a clear error.
    let out = std::process::Command::new(BIN)
        .arg("serve")
        .env("KEYGATE_DATABASE_URL", &url)
        .env("KEYGATE_BIND", format!("127.0.0.1:{}", free_port()))
        .env("KEYGATE_MASTER_KEY", "not the same key")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("KEYGATE_MASTER_KEY"));
}

const MASTER: &str = "a long random master key for the sealing test";

/// `keygate` against `db` with `KEYGATE_MASTER_KEY` set (`Some`) or removed.
fn cli_with_master(db: &TestDb, master: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env("KEYGATE_DATABASE_URL", &db.url)
        .env_remove("KEYGATE_MASTER_KEY");
    if let Some(m) = master {
        cmd.env("KEYGATE_MASTER_KEY", m);
    }
    cmd.output().expect("run keygate")
}

/// OWASP Cryptographic Storage Cheat Sheet: keys at rest are encrypted, and
/// sealed and clear keys never mix. A node with the master key seals keys
/// stored earlier in clear, in place; without it, sealed keys stop the start
/// and a rotation with one clear line.
fn clear_signing_keys_are_sealed_and_never_mixed(b: Backend) {
    let f = Fixture::new(b);
    let clear_keys = "signing_keys WHERE private_key NOT LIKE 'enc1:%'";
    // Keys made before a master key existed: the first, and one rotated in.
    assert_eq!(
        cli_with_master(f.db(), None, &["keys", "rotate"])
            .status
            .code(),
        Some(0)
    );
    let clear_private = f
        .db()
        .text("SELECT private_key AS v FROM signing_keys ORDER BY created_at LIMIT 1")
        .unwrap();
    let clear_public = f
        .db()
        .text("SELECT public_key AS v FROM signing_keys ORDER BY created_at LIMIT 1")
        .unwrap();
    let Fixture { mut server, .. } = f;
    assert!(server.terminate().success());
    let db = TestDb::reuse(&server.db);
    assert_eq!(db.count(clear_keys), 2);

    // A node with the master key seals them in place, says so, and still
    // serves (the same keys, now sealed).
    let mut s = Server::start_with(TestDb::reuse(&db), &[("KEYGATE_MASTER_KEY", MASTER)]);
    assert_eq!(db.count(clear_keys), 0, "keys left in clear");
    assert_eq!(db.count("signing_keys"), 2);
    assert!(s.logs().contains("sealed now"), "{}", s.logs());
    let jwks = s.client().get("/.well-known/jwks.json").json();
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));
    // An older node writes a key in clear: the next node with the master key
    // (or this one, at its next key reload) seals it; it is never used in clear.
    db.execute(&format!(
        "INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at, retired_at) \
         VALUES ('from-an-old-node', 'EdDSA', '{clear_private}', '{clear_public}', 1, 2)"
    ));
    assert!(s.terminate().success());
    let mut s = Server::start_with(TestDb::reuse(&db), &[("KEYGATE_MASTER_KEY", MASTER)]);
    assert_eq!(db.count(clear_keys), 0, "a clear key was accepted");
    assert!(s.terminate().success());

    // Without the master key, `keys rotate` is refused with one line and
    // writes nothing.
    let out = cli_with_master(&db, None, &["keys", "rotate"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("KEYGATE_MASTER_KEY"), "{stderr}");
    assert_eq!(db.count("signing_keys"), 3);
    assert_eq!(db.count(clear_keys), 0);
    // …and so is a rotation under another master key.
    let out = cli_with_master(&db, Some("not the same key"), &["keys", "rotate"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KEYGATE_MASTER_KEY"));
    assert_eq!(db.count("signing_keys"), 3);
    // With it, a rotation adds a sealed key.
    let out = cli_with_master(&db, Some(MASTER), &["keys", "rotate"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(db.count("signing_keys"), 4);
    assert_eq!(db.count(clear_keys), 0);

    // A node without the master key does not start on sealed keys.
    let out = std::process::Command::new(BIN)
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env_remove("KEYGATE_MASTER_KEY")
        .env("KEYGATE_DATABASE_URL", &db.url)
        .env("KEYGATE_BIND", format!("127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sealed") && stderr.contains("KEYGATE_MASTER_KEY"),
        "{stderr}"
    );
    drop(server);
}

/// OWASP Authorization Cheat Sheet (IDOR): an id that exists in another
/// workspace answers exactly like an unknown id, with or without a session
/// and a valid CSRF token, so the settings pages confirm nothing about other
/// workspaces.
fn other_workspaces_ids_answer_like_unknown_ids(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    f.api_key("read_only");
    let key_id = db.json_lines(&["apikey", "list", "--workspace", &f.workspace_id])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let _ = f.tokens("workspace:read");
    let app_id = db.json_lines(&["apps", "list", "--workspace", &f.workspace_id])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The owner of another workspace, signed in, with their own CSRF token.
    let other = db.json(&["workspace", "create", "--name", "Globex"]);
    let other_ws = other["id"].as_str().unwrap().to_string();
    let email = format!(
        "globex-{}@example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let user = db.create_user(&email);
    db.json(&[
        "member",
        "add",
        "--workspace",
        &other_ws,
        "--user",
        &user,
        "--role",
        "owner",
    ]);
    let mut outsider = f.signed_in(&email);
    let page = outsider.get("/settings/api-keys");
    let csrf = hidden(&page.body, "csrf_token").expect("CSRF token");
    let unknown = uuid::Uuid::now_v7().to_string();

    let post = |http: &mut Http, path: String, csrf: &str, extra: &[(&str, &str)]| {
        let mut form = vec![
            ("csrf_token", csrf),
            ("confirm", "yes"),
            ("confirm_name", "x"),
        ];
        form.extend_from_slice(extra);
        let r = http.post_form(&path, &form);
        (r.status, r.header("location").map(str::to_string), r.body)
    };
    let mut anon = f.server.client();
    for (existing, missing) in [
        (
            format!("/settings/api-keys/{key_id}/rotate"),
            format!("/settings/api-keys/{unknown}/rotate"),
        ),
        (
            format!("/settings/api-keys/{key_id}/revoke"),
            format!("/settings/api-keys/{unknown}/revoke"),
        ),
        (
            format!("/settings/authorized-apps/{app_id}/revoke"),
            format!("/settings/authorized-apps/{unknown}/revoke"),
        ),
    ] {
        let a = post(&mut outsider, existing.clone(), &csrf, &[]);
        let b = post(&mut outsider, missing.clone(), &csrf, &[]);
        assert_eq!(a.0, 404, "{existing}: {}", a.2);
        assert_eq!(a, b, "{existing} and {missing} answer differently");
        // A forged CSRF token, and no session at all: alike too.
        let a = post(&mut outsider, existing.clone(), "forged", &[]);
        let b = post(&mut outsider, missing.clone(), "forged", &[]);
        assert_eq!(a, b, "{existing} with a forged CSRF token");
        let a = post(&mut anon, existing.clone(), "forged", &[]);
        let b = post(&mut anon, missing.clone(), "forged", &[]);
        assert_eq!(a, b, "{existing} without a session");
    }
    // Generating a key "in" another workspace, or an unknown one.
    let a = post(
        &mut outsider,
        "/settings/api-keys".into(),
        &csrf,
        &[
            ("workspace_id", &f.workspace_id),
            ("name", "intruder"),
            ("access", "read_write"),
            ("expires", ""),
        ],
    );
    let b = post(
        &mut outsider,
        "/settings/api-keys".into(),
        &csrf,
        &[
            ("workspace_id", &unknown),
            ("name", "intruder"),
            ("access", "read_write"),
            ("expires", ""),
        ],
    );
    assert_eq!(a.0, 404, "{}", a.2);
    assert_eq!(a, b);
    // Nothing changed.
    assert_eq!(db.count("api_keys"), 1);
    assert_eq!(
        db.json_lines(&["apps", "list", "--workspace", &f.workspace_id])[0]["status"],
        "active"
    );
}

fn sigterm_drains_and_exits_cleanly(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_only");
    let mut http = f.server.client();
    for _ in 0..5 {
        assert_eq!(http.bearer_get("/v1/workspace", &key).status, 200);
    }
    let Fixture {
        mut server,
        workspace_id,
        ..
    } = f;
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    // Usage counted in memory was written on the way out.
    let rows = server
        .db
        .json_lines(&["apikey", "list", "--workspace", &workspace_id]);
    assert_eq!(rows[0]["usage_count"], 5);
}

both_backends!(
    html_pages_carry_strict_headers,
    https_issuer_gets_hsts_and_secure_cookies,
    failed_logins_are_slowed_without_enumeration,
    failed_bearer_checks_are_limited_per_address,
    failed_logins_never_lock_out_the_owner,
    failed_logins_do_not_starve_the_pool,
    token_endpoint_limits_failing_clients,
    hostile_inputs_never_crash_a_worker,
    panicking_handlers_answer_500_in_their_shape,
    oversized_requests_get_clear_errors,
    logs_hold_no_secrets,
    signing_keys_sealed_with_master_key,
    clear_signing_keys_are_sealed_and_never_mixed,
    other_workspaces_ids_answer_like_unknown_ids,
    sigterm_drains_and_exits_cleanly,
    memory_stays_bounded_under_made_up_keys,
);
