//! Rate limits: failed logins slowed without enumeration or lock-out, failed bearer
//! checks and failing clients limited, and the limiters' memory bounded.

use super::*;

fn login_from(http: &mut Http, address: &str, email: &str, password: &str) -> Resp {
    http.login_with(email, password, &[("X-Forwarded-For", address)])
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

/// OWASP Denial of Service Cheat Sheet: state kept per caller-chosen key must
/// be bounded. 100,000 made-up client ids at the token
/// endpoint and made-up methods and paths leave the limiters and the request
/// metrics under their caps.
fn memory_stays_bounded_under_made_up_keys(b: Backend) {
    let s = metrics_server(b, &[("KEYGATE_RATE_LIMITS", "on")]);
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
    let m = scrape(&s);
    let tracked = metric(
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
        assert!(metric(&m, "keygate_abuse_tracked_entries", &[("limiter", limiter)]) <= 65_536.0);
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

/// Issue 25 item 5: an identifier longer than any real one is refused before
/// it is looked up, fetched or counted, so hostile 64 KiB client ids neither
/// fill a limiter nor lock anything: every one is the same `invalid_client`.
fn oversized_client_ids_are_refused_uncounted(b: Backend) {
    let s = metrics_server(
        b,
        &[
            ("KEYGATE_RATE_LIMITS", "on"),
            ("KEYGATE_CLIENT_FAILURE_LIMIT", "3"),
        ],
    );
    let tracked = |s: &Server| {
        let m = scrape(s);
        metric(
            &m,
            "keygate_abuse_tracked_entries",
            &[("limiter", "client")],
        )
    };
    let before = tracked(&s);
    let mut http = s.client();
    for i in 0..20 {
        // 60 KiB: the form's limit is 64 KiB.
        let id = format!("https://example.com/{i}/{}", "a".repeat(60 * 1024));
        let r = http.post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
                ("client_id", &id),
            ],
        );
        r.assert_oauth_error(401, "invalid_client");
    }
    assert_eq!(tracked(&s), before, "oversized ids were counted");
}

both_backends!(
    oversized_client_ids_are_refused_uncounted,
    failed_logins_are_slowed_without_enumeration,
    failed_bearer_checks_are_limited_per_address,
    failed_logins_never_lock_out_the_owner,
    failed_logins_do_not_starve_the_pool,
    token_endpoint_limits_failing_clients,
    memory_stays_bounded_under_made_up_keys,
);
