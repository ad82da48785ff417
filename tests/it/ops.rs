//! Operations: `/metrics` (counters that move with their events, no secret in
//! them, an own listener), `/healthz` and `/readyz` (an outage and the recovery
//! without a restart), request ids and the request log, JSON logs, online
//! backup and restore, shell completions and the examples in every `--help`.

use crate::support::*;
use diesel::connection::SimpleConnection;
use diesel::Connection;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SCOPES: &str = "workspace:read tags:read tags:write";

/// The token the tests' servers require for `/metrics` on the main listener.
pub const METRICS_TOKEN: &str = "metrics-token-for-the-tests";

/// A server whose `/metrics` is on the main listener behind `METRICS_TOKEN`.
pub fn metrics_server(b: Backend, env: &[(&str, &str)]) -> Server {
    let mut all = vec![("KEYGATE_METRICS_TOKEN", METRICS_TOKEN)];
    all.extend_from_slice(env);
    Server::start_with(TestDb::new(b), &all)
}

pub fn scrape(s: &Server) -> String {
    let auth = format!("Bearer {METRICS_TOKEN}");
    let r = s.client().get_with("/metrics", &[("Authorization", &auth)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{:?}",
        r.header("content-type")
    );
    r.body
}

/// The sum of every sample of `name` (Prometheus text format) whose labels
/// include all of `labels`.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, lbls) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let wanted = n == name
                && labels.iter().all(|(k, v)| {
                    let pair = format!("{k}=\"{v}\"");
                    lbls.split(',').any(|p| p == pair)
                });
            if wanted {
                value.parse::<f64>().ok()
            } else {
                None
            }
        })
        .sum()
}

/// How much each named series grew between two scrapes.
fn grew(before: &str, after: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metric(after, name, labels) - metric(before, name, labels)
}

fn metrics_count_events_and_hold_no_secrets(b: Backend) {
    let f = Fixture::with_server(metrics_server(b, &[]));
    let key = f.api_key("read_write");
    let (access, refresh) = f.tokens(SCOPES);
    let mut http = f.server.client();
    let m0 = scrape(&f.server);

    // Requests per route pattern, method and status.
    for _ in 0..3 {
        assert_eq!(
            http.get("/.well-known/oauth-authorization-server").status,
            200
        );
    }
    // An authorization code exchanged once (ok), then again (invalid_grant).
    let (code, verifier) = f.code(SCOPES);
    assert_eq!(f.exchange(&code, &verifier).status, 200);
    f.exchange(&code, &verifier)
        .assert_oauth_error(400, "invalid_grant");
    // /v1 with an API key (a miss, then hits), an access token and a bad credential.
    for _ in 0..4 {
        assert_eq!(http.bearer_get("/v1/workspace", &key).status, 200);
    }
    assert_eq!(http.bearer_get("/v1/workspace", &access).status, 200);
    http.bearer_get("/v1/workspace", "kgk_not_a_real_key")
        .assert_v1_error(401, "authentication_error", "invalid_api_key");
    // A revocation at /oauth/revoke.
    let r = http.post_form_with(
        "/oauth/revoke",
        &[("token", &access)],
        &[("Authorization", &f.basic())],
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let m1 = scrape(&f.server);
    let route = [
        ("route", "/.well-known/oauth-authorization-server"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert_eq!(grew(&m0, &m1, "keygate_http_requests_total", &route), 3.0);
    assert!(
        metric(
            &m1,
            "keygate_http_request_duration_seconds_count",
            &route[..2]
        ) >= 3.0
    );
    let grants = "keygate_token_grants_total";
    let code_ok = [("grant_type", "authorization_code"), ("outcome", "ok")];
    let code_bad = [
        ("grant_type", "authorization_code"),
        ("outcome", "invalid_grant"),
    ];
    assert_eq!(grew(&m0, &m1, grants, &code_ok), 1.0, "{m1}");
    assert_eq!(grew(&m0, &m1, grants, &code_bad), 1.0, "{m1}");
    let auths = "keygate_v1_authentications_total";
    let key_ok = [("kind", "api_key"), ("outcome", "ok")];
    let token_ok = [("kind", "access_token"), ("outcome", "ok")];
    assert_eq!(grew(&m0, &m1, auths, &key_ok), 4.0, "{m1}");
    assert_eq!(grew(&m0, &m1, auths, &token_ok), 1.0, "{m1}");
    assert_eq!(grew(&m0, &m1, auths, &[("outcome", "invalid")]), 1.0);
    assert_eq!(
        grew(&m0, &m1, "keygate_revocations_total", &[("what", "token")]),
        1.0,
        "{m1}"
    );
    let cache = "keygate_credential_cache_lookups_total";
    // Four calls: one miss, then hits. A read that the revocation feed's poll
    // overtakes (it re-applies the code replay's events) is not cached, which
    // can cost one more miss; two hits at the least show the cache at work.
    assert!(
        grew(&m0, &m1, cache, &[("result", "hit")]) >= 2.0,
        "repeated /v1 calls are served from the cache: {m1}"
    );
    for state in ["idle", "in_use"] {
        assert!(
            m1.lines().any(
                |l| l.starts_with(&format!("keygate_db_pool_connections{{state=\"{state}\"}}"))
            ),
            "no pool gauge {state}: {m1}"
        );
    }
    assert!(metric(&m1, "keygate_db_pool_connections", &[]) >= 1.0);

    // Labels carry routes, kinds and outcomes: never an id or a secret.
    for secret in [
        f.client_id.as_str(),
        f.client_secret.as_str(),
        f.public_client_id.as_str(),
        f.workspace_id.as_str(),
        f.owner_id.as_str(),
        f.owner_email.as_str(),
        key.as_str(),
        &key[..12],
        access.as_str(),
        refresh.as_str(),
        code.as_str(),
        verifier.as_str(),
    ] {
        assert!(!m1.contains(secret), "/metrics shows {secret:?}");
    }
}

/// `/metrics` is not on the public listener by default (OWASP Top 10 A05);
/// with KEYGATE_METRICS_TOKEN it is, for that bearer token only.
fn metrics_are_not_public(b: Backend) {
    let s = Server::start(b);
    assert_eq!(s.client().get("/metrics").status, 404);
    assert!(s.logs().contains("/metrics is off"), "{}", s.logs());
    let s = metrics_server(b, &[]);
    let mut http = s.client();
    let r = http.get("/metrics");
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .is_some_and(|w| w.starts_with("Bearer")));
    for wrong in ["Bearer wrong", "Basic bWV0cmljcw==", "Bearer"] {
        let r = http.get_with("/metrics", &[("Authorization", wrong)]);
        assert_eq!(r.status, 401, "{wrong}");
        assert!(!r.body.contains("keygate_"));
    }
    assert!(scrape(&s).contains("keygate_http_requests_total"));
}

fn metrics_on_their_own_listener(b: Backend) {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let s = Server::start_with(TestDb::new(b), &[("KEYGATE_METRICS_BIND", &bind)]);
    assert_eq!(s.client().get("/metrics").status, 404);
    let url = format!("http://{bind}/metrics");
    let mut http = Http::new(&format!("http://{bind}"));
    assert!(
        eventually(Duration::from_secs(10), || {
            ureq::get(&url)
                .timeout(Duration::from_secs(2))
                .call()
                .is_ok()
        }),
        "no metrics listener on {bind}"
    );
    // It counts the main listener's requests (the 404 above among them).
    let r = http.get("/metrics");
    assert_eq!(r.status, 200);
    assert!(
        metric(
            &r.body,
            "keygate_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ) >= 1.0,
        "{}",
        r.body
    );
    // The metrics listener serves nothing else.
    assert_eq!(http.get("/.well-known/jwks.json").status, 404);
    assert_eq!(http.get("/healthz").status, 404);
}

fn ready(s: &Server) -> Resp {
    let r = s.client().get("/readyz");
    let v = r.json();
    assert!(v["status"].is_string(), "{}", r.body);
    r
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

/// Every tag name a credential sees, walking the pages.
fn tag_names(s: &Server, credential: &str) -> Vec<String> {
    let mut http = s.client();
    let mut names = Vec::new();
    let mut after = String::new();
    loop {
        let r = http.bearer_get(
            &format!("/v1/tags?limit=100&starting_after={after}"),
            credential,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        let data = v["data"].as_array().unwrap();
        for t in data {
            names.push(t["name"].as_str().unwrap().to_string());
        }
        match (v["has_more"].as_bool(), data.last()) {
            (Some(true), Some(last)) => after = last["id"].as_str().unwrap().to_string(),
            _ => return names,
        }
    }
}

/// A scratch directory, removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("keygate-ops-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn backup_under_load_then_restore() {
    let f = Fixture::new(Backend::Sqlite);
    let key = f.api_key("read_write");
    let reader = f.api_key("read_only");
    let mut http = f.server.client();
    for i in 1..=5 {
        let r = http.bearer_post_json("/v1/tags", &key, &format!(r#"{{"name":"before-{i}"}}"#));
        assert_eq!(r.status, 201, "{}", r.body);
    }

    // Writes go on through /v1 while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, done, key) = (stop.clone(), done.clone(), key.clone());
        let mut http = f.server.client();
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let r =
                    http.bearer_post_json("/v1/tags", &key, &format!(r#"{{"name":"load-{i}"}}"#));
                assert_eq!(
                    r.status, 201,
                    "a write failed during the backup: {}",
                    r.body
                );
                done.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    assert!(eventually(Duration::from_secs(10), || done
        .load(Ordering::SeqCst)
        >= 5));
    let scratch = Scratch::new();
    let file = scratch.path("keygate-backup.db");
    let done_before = done.load(Ordering::SeqCst);
    let out = f.db().json(&["backup", "--to", &file]);
    let done_after = done.load(Ordering::SeqCst);
    eprintln!("writes: {done_before} before the backup, {done_after} by its end");
    assert_eq!(out["backup"], file.as_str());
    let bytes = std::fs::metadata(&file).unwrap().len();
    assert!(bytes > 0);
    assert_eq!(out["bytes"].as_u64(), Some(bytes));
    // The server goes on writing after the backup.
    assert!(eventually(Duration::from_secs(10), || done
        .load(Ordering::SeqCst)
        >= done_after + 5));
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("the writer saw no failure");

    // Restore into a fresh database and serve it.
    let fresh = TestDb::new(Backend::Sqlite);
    let restored = f
        .db()
        .json(&["restore", "--from", &file, "--database-url", &fresh.url]);
    assert_eq!(restored["restored"], file.as_str());
    assert_eq!(restored["bytes"].as_u64(), Some(bytes));
    let restored_path = fresh.url.trim_start_matches("sqlite://").to_string();
    assert_eq!(restored["database"], restored_path.as_str());
    let s2 = Server::start_with(fresh, &[]);
    let mut http2 = s2.client();
    for credential in [&key, &reader] {
        let ws = http2.bearer_get("/v1/workspace", credential);
        assert_eq!(ws.status, 200, "{}", ws.body);
        assert_eq!(ws.json()["id"], f.workspace_id.as_str());
    }
    // Everything written before the backup started is there; nothing written
    // after it ended is.
    let names = tag_names(&s2, &reader);
    for i in 1..=5 {
        assert!(names.contains(&format!("before-{i}")), "{names:?}");
    }
    let load = names.iter().filter(|n| n.starts_with("load-")).count();
    assert!(
        (done_before..=done_after + 1).contains(&load),
        "{load} load tags, {done_before} written before the backup, {done_after} by its end"
    );
    for i in 1..=done_before {
        assert!(names.contains(&format!("load-{i}")), "load-{i} missing");
    }
    // The restored node takes writes.
    assert_eq!(
        http2
            .bearer_post_json("/v1/tags", &key, r#"{"name":"after-restore"}"#)
            .status,
        201
    );
}

/// Runs a command that must be refused: exit 1, one line on stderr that
/// mentions `mentions`, nothing on stdout (with and without `--json`).
fn refused(db: &TestDb, args: &[&str], mentions: &str) {
    for json in [false, true] {
        let mut all: Vec<&str> = if json { vec!["--json"] } else { vec![] };
        all.extend_from_slice(args);
        let out = db.cli(&all);
        out.assert_refused(mentions);
        assert_eq!(out.code, 1, "{out:?}");
    }
}

/// What the database holds, in a form that shows any change.
fn state(db: &TestDb) -> String {
    db.text(
        "SELECT (SELECT COUNT(*) FROM workspaces) || '/' || (SELECT COUNT(*) FROM api_keys) \
         || '/' || (SELECT MAX(id) FROM workspaces) AS v",
    )
    .unwrap()
}

fn backup_and_restore_refusals(b: Backend) {
    let db = TestDb::new(b);
    let ws = db.create_workspace("Kept");
    let scratch = Scratch::new();
    let file = scratch.path("backup.db");
    if b == Backend::Postgres {
        refused(&db, &["backup", "--to", &file], "pg_dump");
        assert!(!Path::new(&file).exists());
        std::fs::write(&file, "anything").unwrap();
        refused(&db, &["restore", "--from", &file], "pg_restore");
        assert_eq!(db.count("workspaces"), 1);
        return;
    }
    let before = state(&db);
    assert!(before.ends_with(ws.as_str()), "{before}");
    let db_path = PathBuf::from(db.url.trim_start_matches("sqlite://"));
    let db_dir = db_path.parent().unwrap().to_path_buf();

    // Backing up over an existing file.
    std::fs::write(&file, "keep me").unwrap();
    refused(&db, &["backup", "--to", &file], "already exists");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    // Into a directory that does not exist.
    let nowhere = scratch.path("no/such/dir/backup.db");
    refused(&db, &["backup", "--to", &nowhere], "no/such/dir");
    assert!(!Path::new(&nowhere).exists());

    // Restoring from things that are not keygate backups.
    let text = scratch.path("notes.txt");
    std::fs::write(&text, "not a database at all\n").unwrap();
    refused(&db, &["restore", "--from", &text], "not a SQLite database");
    let empty = scratch.path("empty.db");
    std::fs::write(&empty, "").unwrap();
    refused(&db, &["restore", "--from", &empty], "not a SQLite database");
    refused(
        &db,
        &["restore", "--from", &scratch.path("missing.db")],
        "missing.db",
    );
    refused(
        &db,
        &["restore", "--from", &scratch.0.display().to_string()],
        "not a file",
    );
    let other = scratch.path("other.db");
    diesel::SqliteConnection::establish(&other)
        .unwrap()
        .batch_execute("CREATE TABLE things (x TEXT); INSERT INTO things VALUES ('a');")
        .unwrap();
    refused(
        &db,
        &["restore", "--from", &other],
        "not a keygate database",
    );
    // A damaged backup fails the integrity check.
    let good = scratch.path("good.db");
    db.json(&["backup", "--to", &good]);
    let mut bytes = std::fs::read(&good).unwrap();
    assert!(bytes.len() > 40_000, "{}", bytes.len());
    for b in &mut bytes[8192..40_000] {
        *b = 0x5a;
    }
    let damaged = scratch.path("damaged.db");
    std::fs::write(&damaged, &bytes).unwrap();
    refused(&db, &["restore", "--from", &damaged], "damaged.db");

    // Nothing changed, and no temporary file was left beside the database.
    assert_eq!(state(&db), before);
    let leftovers: Vec<String> = std::fs::read_dir(&db_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("restore"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The good backup restores over the existing database, stale journal files
    // and all, and brings back what it held.
    db.create_workspace("After the backup");
    assert_eq!(db.count("workspaces"), 2);
    std::fs::write(db_dir.join("keygate.db-journal"), "stale").unwrap();
    let out = db.json(&["restore", "--from", &good]);
    assert_eq!(out["restored"], good.as_str());
    assert!(!db_dir.join("keygate.db-journal").exists());
    assert_eq!(state(&db), before);
}

#[test]
fn restore_refuses_a_database_in_use() {
    let db = TestDb::new(Backend::Sqlite);
    db.create_workspace("Live");
    // In WAL mode every open connection holds a shared lock on the file, which
    // is how restore sees a running keygate.
    db.execute("PRAGMA journal_mode = WAL");
    let s = Server::start_with(db, &[]);
    let scratch = Scratch::new();
    let file = scratch.path("live-backup.db");
    s.db.json(&["backup", "--to", &file]);
    let before = state(&s.db);
    refused(&s.db, &["restore", "--from", &file], "stop keygate");
    assert_eq!(state(&s.db), before);
    let r = s.client().get("/readyz");
    assert_eq!(r.status, 200, "{}", r.body);
}

fn keygate(args: &[&str]) -> CliOut {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("DATABASE_URL")
        // Nothing here may need a database.
        .env("KEYGATE_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .expect("run keygate");
    CliOut {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn shell_completions() {
    let bash = keygate(&["completions", "bash"]);
    assert_eq!(bash.code, 0, "{}", bash.stderr);
    assert!(bash.stdout.contains("keygate") && bash.stdout.contains("apikey"));
    assert!(bash.stdout.contains("complete"));
    for shell in ["zsh", "fish"] {
        let out = keygate(&["completions", shell]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.contains("apikey"), "{shell}");
    }
    let unknown = keygate(&["completions", "tcsh"]);
    assert_eq!(unknown.code, 2);
    assert!(unknown.stdout.is_empty());
    assert!(unknown.stderr.contains("tcsh"));
}

/// The subcommands a `--help` lists (without `help` itself).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn every_help_has_an_example() {
    let mut queue: Vec<Vec<String>> = vec![vec![]];
    let mut seen = 0;
    while let Some(path) = queue.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = keygate(&args);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        assert!(
            out.stdout.contains("Example"),
            "keygate {args:?} has no example:\n{}",
            out.stdout
        );
        seen += 1;
        for sub in subcommands(&out.stdout) {
            let mut next = path.clone();
            next.push(sub);
            queue.push(next);
        }
    }
    // keygate itself, its commands and theirs.
    assert!(seen >= 25, "only {seen} help pages");
}

/// Daily usage per key, kept 90 days, from the CLI.
fn daily_usage_of_a_key(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_only");
    let id = f
        .db()
        .json_lines(&["apikey", "list", "--workspace", &f.workspace_id])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut http = f.server.client();
    for _ in 0..3 {
        assert_eq!(http.bearer_get("/v1/workspace", &key).status, 200);
    }
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(eventually(std::time::Duration::from_secs(5), || {
        let lines = f.db().json_lines(&["apikey", "usage", &id, "--days", "7"]);
        lines.len() == 7 && lines[6]["date"] == today.as_str() && lines[6]["count"] == 3
    }));
    let lines = f.db().json_lines(&["apikey", "usage", &id, "--days", "7"]);
    assert!(lines[..6].iter().all(|l| l["count"] == 0));
    let dates: Vec<&str> = lines.iter().map(|l| l["date"].as_str().unwrap()).collect();
    let mut sorted = dates.clone();
    sorted.sort();
    assert_eq!(dates, sorted, "oldest first");
    f.db()
        .cli(&["apikey", "usage", &id, "--days", "91"])
        .assert_refused("--days");
    f.db()
        .cli(&["apikey", "usage", "no-such-key"])
        .assert_refused("no API key");
}

both_backends!(
    daily_usage_of_a_key,
    metrics_count_events_and_hold_no_secrets,
    metrics_are_not_public,
    metrics_on_their_own_listener,
    health_and_readiness,
    request_ids_and_the_request_log,
    json_logs,
    backup_and_restore_refusals,
);
