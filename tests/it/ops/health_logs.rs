//! Health and readiness, request ids and the request log, JSON logs.

use super::*;

fn ready(s: &Server) -> Resp {
    let r = s.client().get("/readyz");
    let v = r.json();
    assert!(v["status"].is_string(), "{}", r.body);
    r
}

/// The log lines that mention `needle`, once the server has written them.
fn log_lines(s: &Server, needle: &str) -> Vec<String> {
    eventually(Duration::from_secs(5), || s.logs().contains(needle));
    // A moment more, so that a second line (there must be none) would show.
    std::thread::sleep(Duration::from_millis(200));
    s.logs()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

fn health_and_readiness(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_write");
    let s = &f.server;
    let health = s.client().get("/healthz");
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    let r = ready(s);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "ready");
    assert_eq!(
        s.client()
            .bearer_post_json("/v1/tags", &key, r#"{"name":"before"}"#)
            .status,
        201
    );
    if b == Backend::Sqlite {
        // An embedded database cannot go away under a running process the way a
        // database server can: the outage is exercised on PostgreSQL only.
        return;
    }

    let (_, refresh) = f.tokens("workspace:read");
    assert_eq!(s.client().bearer_get("/v1/tags", &key).status, 200);

    // Take the database away: no new connections, and the open ones ended.
    let name = url::Url::parse(&s.db.url).unwrap().path()[1..].to_string();
    let mut admin = diesel::PgConnection::establish(&postgres_admin_url().unwrap()).unwrap();
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid();"
        ))
        .unwrap();
    let mut last = None;
    let down = eventually(Duration::from_secs(20), || {
        let r = ready(s);
        let done = r.status == 503;
        last = Some(r);
        done
    });
    let r = last.unwrap();
    assert!(down, "/readyz stayed {} with the database away", r.status);
    assert_eq!(r.json()["status"], "not_ready", "{}", r.body);
    // The process is up all the same, and requests that need the database get
    // 503 in their own error shape.
    assert_eq!(s.client().get("/healthz").status, 200);
    s.client().bearer_get("/v1/tags", &key).assert_v1_error(
        503,
        "api_error",
        "service_unavailable",
    );
    let r = f.refresh(&refresh);
    r.assert_oauth_error(503, "temporarily_unavailable");
    assert!(r.header("retry-after").is_some());

    // Bring it back: ready again, without a restart.
    admin
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .unwrap();
    assert!(
        eventually(Duration::from_secs(15), || ready(s).status == 200),
        "/readyz did not recover"
    );
    let mut http = s.client();
    let ws = http.bearer_get("/v1/workspace", &key);
    assert_eq!(ws.status, 200, "{}", ws.body);
    assert_eq!(ws.json()["id"], f.workspace_id.as_str());
    let created = http.bearer_post_json("/v1/tags", &key, r#"{"name":"after"}"#);
    assert_eq!(created.status, 201, "{}", created.body);
    let names = tag_names(s, &key);
    assert!(names.contains(&"before".to_string()) && names.contains(&"after".to_string()));
}

fn request_ids_and_the_request_log(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_only");
    let s = &f.server;
    let mut http = s.client();
    let path = "/.well-known/oauth-authorization-server";

    // Every response has one, fresh each time.
    let a = http.get(path);
    let b2 = http.get(path);
    let id_a = a.header("x-request-id").expect("X-Request-Id").to_string();
    assert!(!id_a.is_empty() && id_a.len() <= 64);
    assert_ne!(Some(id_a.as_str()), b2.header("x-request-id"));
    // A sane incoming id is kept…
    let sane = "ops-trace_0123456789";
    let r = http.get_with(path, &[("X-Request-Id", sane)]);
    assert_eq!(r.header("x-request-id"), Some(sane));
    // …an insane one is replaced.
    let long = "a".repeat(200);
    for insane in [long.as_str(), "has spaces in it", "semi;colon", "quote\"d"] {
        let r = http.get_with(path, &[("X-Request-Id", insane)]);
        let id = r.header("x-request-id").expect("X-Request-Id");
        assert_ne!(id, insane);
        assert!(
            !id.is_empty() && id.len() <= 64 && !id.contains(' '),
            "{id}"
        );
    }

    // One line per request: method, route pattern, status and the request id,
    // never the query string or a credential.
    let id = "ops-log-line-1";
    let r = http.get_with(
        "/v1/tags?limit=5&note=query-text-here",
        &[
            ("X-Request-Id", id),
            ("Authorization", &format!("Bearer {key}")),
        ],
    );
    assert_eq!(r.status, 200);
    let lines = log_lines(s, id);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    for part in ["GET", "/v1/tags", " 200 ", id] {
        assert!(line.contains(part), "{part:?} missing from {line:?}");
    }
    for secret in ["query-text-here", "limit=5", &key[..12]] {
        assert!(!line.contains(secret), "{secret:?} logged: {line:?}");
    }
    // A route with a parameter is logged by its pattern, not the path.
    let id = "ops-log-line-2";
    let r = http.post_form_with(
        "/settings/api-keys/01900000-dead-7000-8000-00000000beef/revoke",
        &[("csrf_token", "x")],
        &[("X-Request-Id", id)],
    );
    let lines = log_lines(s, id);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    let status = format!(" {} ", r.status);
    for part in ["POST", "/settings/api-keys/{id}/revoke", &status, id] {
        assert!(line.contains(part), "{part:?} missing from {line:?}");
    }
    assert!(!line.contains("dead-7000"), "{line}");
    // An unknown path is logged as unmatched.
    let id = "ops-log-line-3";
    assert_eq!(
        http.get_with("/no/such/path", &[("X-Request-Id", id)])
            .status,
        404
    );
    let lines = log_lines(s, id);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("GET") && lines[0].contains(" 404 "));
    assert!(!lines[0].contains("/no/such/path"), "{}", lines[0]);
}

fn json_logs(b: Backend) {
    let mut s = Server::start_with(TestDb::new(b), &[("KEYGATE_LOG_FORMAT", "json")]);
    let mut http = s.client();
    let id = "ops-json-log-1";
    assert_eq!(
        http.get_with("/.well-known/jwks.json", &[("X-Request-Id", id)])
            .status,
        200
    );
    assert_eq!(http.bearer_get("/v1/workspace", "kgk_nope").status, 401);
    assert!(eventually(Duration::from_secs(5), || s.logs().contains(id)));
    assert!(s.terminate().success());
    assert!(eventually(Duration::from_secs(5), || s
        .logs()
        .contains("keygate stopped")));
    let logs = s.logs();
    let mut request_lines = 0;
    for line in logs.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line:?}"));
        for field in ["ts", "level", "target", "msg"] {
            assert!(v[field].is_string(), "no {field} in {line}");
        }
        assert!(
            chrono::DateTime::parse_from_rfc3339(v["ts"].as_str().unwrap()).is_ok(),
            "{line}"
        );
        if v["msg"].as_str().unwrap().contains(id) {
            request_lines += 1;
            assert_eq!(v["level"], "INFO");
            assert!(v["msg"]
                .as_str()
                .unwrap()
                .contains("/.well-known/jwks.json"));
        }
    }
    assert_eq!(request_lines, 1, "{logs}");
}

/// Issue 25 item 7: a trusted-proxy range wider than /24 (IPv4) or /64
/// (IPv6) lets every address in it name any client, so the start warns of
/// it; a proxy's own address does not.
fn wide_trusted_proxy_ranges_are_warned_of(b: Backend) {
    let s = Server::start_with(
        TestDb::new(b),
        &[(
            "KEYGATE_TRUSTED_PROXIES",
            "10.0.0.0/8, 192.0.2.10, fd00::/8, 2001:db8::/64",
        )],
    );
    assert!(
        eventually(Duration::from_secs(5), || s
            .logs()
            .contains("fd00::/8 is wider")),
        "{}",
        s.logs()
    );
    let logs = s.logs();
    assert!(logs.contains("10.0.0.0/8 is wider than /24"), "{logs}");
    assert!(!logs.contains("192.0.2.10/32 is wider"), "{logs}");
    assert!(!logs.contains("2001:db8::/64 is wider"), "{logs}");
}

both_backends!(
    health_and_readiness,
    request_ids_and_the_request_log,
    json_logs,
    wide_trusted_proxy_ranges_are_warned_of,
);
