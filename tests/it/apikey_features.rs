//! API key features through the real server: leak reports in GitHub's
//! secret-scanning partner format, address allowlists (IPv4, IPv6, behind a
//! trusted proxy and behind an untrusted one), rotation with a grace period on
//! two nodes, custom scopes on every `/v1` route, the settings forms, and the
//! CLI's refusals.

use crate::support::*;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- helpers

const KEY_ID: &str = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";
const LEAK_URL: &str = "https://github.com/acme/app/blob/main/.env";

/// A stand-in for GitHub: a P-256 key whose public half is in a keys file.
struct Reporter {
    key: SigningKey,
    dir: PathBuf,
    file: String,
}

impl Reporter {
    fn new() -> Reporter {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let pem = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("pem");
        let dir = std::env::temp_dir().join(format!("keygate-leaks-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("github-keys.json");
        let doc =
            json!({"public_keys": [{"key_identifier": KEY_ID, "key": pem, "is_current": true}]});
        std::fs::write(&path, doc.to_string()).expect("write keys file");
        Reporter {
            key,
            dir,
            file: path.display().to_string(),
        }
    }

    fn env(&self) -> (&'static str, &str) {
        ("KEYGATE_LEAK_REPORT_KEYS", self.file.as_str())
    }

    fn sign(&self, body: &str) -> String {
        let sig: Signature = self.key.sign(body.as_bytes());
        STANDARD.encode(sig.to_der().as_bytes())
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn post_report(server: &Server, body: &str, headers: &[(&str, &str)]) -> Resp {
    let mut h = vec![("Content-Type", "application/json")];
    h.extend_from_slice(headers);
    server.client().send("POST", "/api-keys/leaks", &h, body)
}

fn signed_report(r: &Reporter, server: &Server, body: &str) -> Resp {
    let sig = r.sign(body);
    post_report(
        server,
        body,
        &[
            ("Github-Public-Key-Identifier", KEY_ID),
            ("Github-Public-Key-Signature", &sig),
        ],
    )
}

fn report_body(tokens: &[&str]) -> String {
    let entries: Vec<Value> = tokens
        .iter()
        .map(|t| {
            let kind = if t.starts_with("kgm_") {
                "keygate_mailbox_auth_key"
            } else {
                "keygate_api_key"
            };
            json!({"token": t, "type": kind, "url": LEAK_URL, "source": "content"})
        })
        .collect();
    Value::Array(entries).to_string()
}

fn sha_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn base62_6(mut n: u32) -> String {
    const A: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = A[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("ascii")
}

/// A well-formed credential (shape and checksum) that keygate never issued.
fn credential(prefix: &str, public_id: &str, secret: &str) -> String {
    let body = format!("{prefix}{public_id}_{secret}");
    let sum = base62_6(crc32fast::hash(body.as_bytes()));
    body + &sum
}

fn random_credential(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let secret = uuid::Uuid::new_v4().simple().to_string();
    credential(prefix, &id[..10], &secret)
}

fn s(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field} in {v}"))
        .to_string()
}

fn create(db: &TestDb, ws: &str, name: &str, extra: &[&str]) -> Value {
    let mut args = vec!["apikey", "create", "--workspace", ws, "--name", name];
    args.extend_from_slice(extra);
    db.json(&args)
}

fn listed(db: &TestDb, ws: &str, id: &str) -> Value {
    db.json_lines(&["apikey", "list", "--workspace", ws])
        .into_iter()
        .find(|k| k["id"] == id)
        .unwrap_or_else(|| panic!("key {id} not listed"))
}

fn audit(db: &TestDb, ws: &str) -> Vec<Value> {
    db.json_lines(&["audit", "list", "--workspace", ws])
}

fn secret_hash(db: &TestDb, id: &str) -> Option<String> {
    db.text(&format!(
        "SELECT secret_hash AS v FROM api_keys WHERE id = '{id}'"
    ))
}

fn unix(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("RFC 3339")
        .timestamp()
}

fn now_secs_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

/// A second node on the same database and issuer.
fn second_node(f: &Fixture, env: &[(&str, &str)]) -> Server {
    let mut all = vec![("KEYGATE_ISSUER", f.server.base.as_str())];
    all.extend_from_slice(env);
    Server::spawn(TestDb::reuse(f.db()), free_port(), &all)
}

// ---------------------------------------------------------------- leak reports

fn a_signed_report_revokes_the_key_on_every_node(b: Backend) {
    let reporter = Reporter::new();
    let f = Fixture::with_server(Server::start_with(TestDb::new(b), &[reporter.env()]));
    let node_b = second_node(&f, &[reporter.env()]);
    let ws = &f.workspace_id;
    let leaked = create(f.db(), ws, "leaked", &["--access", "read_write"]);
    let kept = create(f.db(), ws, "kept", &["--access", "read_only"]);
    let (leaked_key, kept_key) = (s(&leaked, "key"), s(&kept, "key"));
    for node in [&f.server, &node_b] {
        assert_eq!(node.v1_status(&leaked_key), 200);
        assert_eq!(node.v1_status(&kept_key), 200);
    }
    let unknown_api = random_credential("kgk_");
    let mailbox = random_credential("kgm_");
    let tokens = [
        leaked_key.as_str(),
        unknown_api.as_str(),
        mailbox.as_str(),
        "not-a-keygate-token",
    ];
    let body = report_body(&tokens);
    let r = signed_report(&reporter, &f.server, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let rows = r.json();
    let rows = rows.as_array().expect("an array");
    assert_eq!(rows.len(), 4);
    for (row, token) in rows.iter().zip(tokens) {
        assert_eq!(row["token_hash"], sha_hex(token).as_str());
        let fields: Vec<&String> = row.as_object().expect("object").keys().collect();
        assert_eq!(fields.len(), 3, "{row}");
    }
    assert_eq!(rows[0]["token_type"], "keygate_api_key");
    assert_eq!(rows[0]["label"], "true_positive");
    assert_eq!(rows[1]["label"], "false_positive");
    assert_eq!(rows[2]["token_type"], "keygate_mailbox_auth_key");
    assert_eq!(
        rows[2]["label"], "false_positive",
        "a well-formed mailbox auth key keygate never issued"
    );
    assert_eq!(rows[3]["label"], "false_positive");

    // Revoked at once on the node that took the report, within a second on the other.
    assert_eq!(f.server.v1_status(&leaked_key), 401);
    assert!(
        eventually(Duration::from_secs(1), || node_b.v1_status(&leaked_key)
            == 401),
        "node B still accepts a leaked key"
    );
    assert_eq!(f.server.v1_status(&kept_key), 200);
    assert_eq!(node_b.v1_status(&kept_key), 200);
    assert_eq!(listed(f.db(), ws, &s(&leaked, "id"))["status"], "revoked");

    // One security-log row, with where it was found.
    let leak_rows = |db: &TestDb| -> Vec<Value> {
        audit(db, ws)
            .into_iter()
            .filter(|e| e["action"] == "api_key.revoked_leaked")
            .collect()
    };
    let logged = leak_rows(f.db());
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0]["subject"], leaked["id"]);
    let detail = s(&logged[0], "detail");
    assert!(
        detail.contains(LEAK_URL) && detail.contains("content"),
        "{detail}"
    );

    // A replay is harmless: the same answer, no second row, nothing else revoked.
    let again = signed_report(&reporter, &node_b, &body);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json(), r.json());
    assert_eq!(leak_rows(f.db()).len(), 1);
    assert_eq!(f.server.v1_status(&kept_key), 200);

    // The security log page shows the row and its URL.
    let mut owner = f.owner();
    let page = owner.get(&format!("/settings/security-log?workspace={ws}"));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("reported leaked"), "{}", page.body);
    assert!(page.body.contains(LEAK_URL));
}

/// What is wrong with it, the body sent, and the headers sent.
type Attempt<'a> = (&'a str, String, Vec<(&'a str, &'a str)>);

fn unsigned_or_badly_signed_reports_change_nothing(b: Backend) {
    let reporter = Reporter::new();
    let f = Fixture::with_server(Server::start_with(TestDb::new(b), &[reporter.env()]));
    let ws = &f.workspace_id;
    let key = s(
        &create(f.db(), ws, "target", &["--access", "read_only"]),
        "key",
    );
    let body = report_body(&[&key]);
    let good = reporter.sign(&body);
    let other = Reporter::new();
    let foreign = other.sign(&body);
    let changed = body.replace("content", "commit");
    let audit_before = audit(f.db(), ws).len();
    let cases: Vec<Attempt> = vec![
        (
            "signed by another key",
            body.clone(),
            vec![
                ("Github-Public-Key-Identifier", KEY_ID),
                ("Github-Public-Key-Signature", &foreign),
            ],
        ),
        (
            "unknown key id",
            body.clone(),
            vec![
                ("Github-Public-Key-Identifier", "someone-else"),
                ("Github-Public-Key-Signature", &good),
            ],
        ),
        (
            "body changed after signing",
            changed,
            vec![
                ("Github-Public-Key-Identifier", KEY_ID),
                ("Github-Public-Key-Signature", &good),
            ],
        ),
        ("no signature at all", body.clone(), vec![]),
        (
            "no key id",
            body.clone(),
            vec![("Github-Public-Key-Signature", &good)],
        ),
        (
            "no signature",
            body.clone(),
            vec![("Github-Public-Key-Identifier", KEY_ID)],
        ),
        (
            "a signature that is not base64 DER",
            body.clone(),
            vec![
                ("Github-Public-Key-Identifier", KEY_ID),
                ("Github-Public-Key-Signature", "bm90IGEgc2lnbmF0dXJl"),
            ],
        ),
    ];
    for (what, body, headers) in cases {
        let r = post_report(&f.server, &body, &headers);
        r.assert_v1_error(401, "authentication_error", "invalid_signature");
        assert_eq!(f.server.v1_status(&key), 200, "{what}: the key was touched");
    }
    assert_eq!(audit(f.db(), ws).len(), audit_before);
    assert_eq!(f.db().count("api_keys WHERE revoked_at IS NOT NULL"), 0);
    // A correctly signed body that is not a report is a 400, and changes nothing.
    let junk = "{\"token\": \"x\"}";
    let r = signed_report(&reporter, &f.server, junk);
    r.assert_v1_error(400, "invalid_request_error", "invalid_report");
    // The real signature still works afterwards.
    let r = signed_report(&reporter, &f.server, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()[0]["label"], "true_positive");
    assert_eq!(f.server.v1_status(&key), 401);
}

fn the_endpoint_is_absent_without_keys(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_only");
    let body = report_body(&[&key]);
    let r = post_report(
        &f.server,
        &body,
        &[
            ("Github-Public-Key-Identifier", KEY_ID),
            ("Github-Public-Key-Signature", "AAAA"),
        ],
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(f.server.v1_status(&key), 200);
    // A keys file that does not parse stops the node at start, with the reason.
    let dir = std::env::temp_dir().join(format!("keygate-badkeys-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("keys.json");
    std::fs::write(&path, "{\"public_keys\": []}").expect("write");
    let mut child = std::process::Command::new(BIN)
        .arg("serve")
        .env("KEYGATE_DATABASE_URL", &f.db().url)
        .env("KEYGATE_BIND", "127.0.0.1:0")
        .env("KEYGATE_LEAK_REPORT_KEYS", &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run keygate");
    // It must stop by itself; a node that serves anyway is killed and fails the test.
    let exited = eventually(Duration::from_secs(20), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("wait for keygate");
    assert!(exited, "keygate served with an unreadable keys file");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("KEYGATE_LEAK_REPORT_KEYS"), "{stderr}");
}

/// `n` read-only keys written straight into the table (the CLI would take
/// minutes), their public ids starting with `tag`; their tokens.
fn bulk_keys(db: &TestDb, ws: &str, n: usize, tag: &str) -> Vec<String> {
    let now = chrono::Utc::now().timestamp();
    let mut values = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..n {
        let public_id = format!("{tag}{i:09}");
        let token = credential(
            "kgk_",
            &public_id,
            &uuid::Uuid::new_v4().simple().to_string(),
        );
        values.push(format!(
            "('{}', '{ws}', 'bulk-{i}', '{public_id}', '{}', 'read_only', 'cli', {now}, 0)",
            uuid::Uuid::new_v4(),
            sha_hex(&token)
        ));
        tokens.push(token);
    }
    db.execute(&format!(
        "INSERT INTO api_keys (id, workspace_id, name, public_id, secret_hash, access, created_by, created_at, usage_count) VALUES {}",
        values.join(",")
    ));
    tokens
}

/// The usage of a working set larger than one statement's batch is written
/// whole: every key's count, last use, address and day total.
fn usage_of_many_keys_is_written_whole(b: Backend) {
    let f = Fixture::new(b);
    let ws = &f.workspace_id;
    let tokens = bulk_keys(f.db(), ws, 1100, "U");
    let mut api = f.server.client();
    for t in &tokens {
        assert_eq!(api.bearer_get("/v1/workspace", t).status, 200);
    }
    for t in &tokens[..5] {
        assert_eq!(api.bearer_get("/v1/workspace", t).status, 200);
    }
    let db = f.db();
    let bulk = "api_keys WHERE name LIKE 'bulk-%'";
    assert!(
        eventually(Duration::from_secs(10), || {
            db.count(&format!("{bulk} AND usage_count > 0")) == 1100
        }),
        "usage of {} keys written",
        db.count(&format!("{bulk} AND usage_count > 0"))
    );
    assert!(eventually(Duration::from_secs(5), || db
        .count(&format!("{bulk} AND usage_count = 2"))
        == 5));
    assert_eq!(db.count(&format!("{bulk} AND usage_count = 1")), 1095);
    let unstamped = format!("{bulk} AND (last_used_at IS NULL OR last_used_ip IS NULL)");
    assert_eq!(db.count(&unstamped), 0);
    let days = "usage_daily WHERE kind = 'api_key' AND subject_id IN \
                (SELECT id FROM api_keys WHERE name LIKE 'bulk-%')";
    assert_eq!(db.count(days), 1100);
    assert_eq!(db.count(&format!("{days} AND count = 2")), 5);
}

fn a_thousand_token_batch(b: Backend) {
    let reporter = Reporter::new();
    let f = Fixture::with_server(Server::start_with(TestDb::new(b), &[reporter.env()]));
    let ws = &f.workspace_id;
    // 1,000 keys written straight into the table (the CLI would take minutes).
    let tokens = bulk_keys(f.db(), ws, 1000, "B");
    assert_eq!(f.server.v1_status(&tokens[999]), 200);
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let body = report_body(&refs);
    let started = Instant::now();
    let r = signed_report(&reporter, &f.server, &body);
    let took = started.elapsed();
    assert_eq!(r.status, 200, "{}", r.body);
    let rows = r.json();
    let rows = rows.as_array().expect("array");
    assert_eq!(rows.len(), 1000);
    assert!(rows.iter().all(|row| row["label"] == "true_positive"));
    assert!(took < Duration::from_secs(10), "1,000 tokens took {took:?}");
    eprintln!("a 1,000-token report took {took:?}");
    assert_eq!(f.db().count("api_keys WHERE revoked_at IS NOT NULL"), 1000);
    assert_eq!(
        f.db()
            .count("audit_events WHERE action = 'api_key.revoked_leaked'"),
        1000
    );
    assert_eq!(f.server.v1_status(&tokens[999]), 401);
    assert_eq!(f.server.v1_status(&tokens[0]), 401);
}

// ---------------------------------------------------------------- allowlists

fn v1_from(server: &Server, key: &str, forwarded: Option<&str>) -> Resp {
    let auth = format!("Bearer {key}");
    let mut headers = vec![("Authorization", auth.as_str())];
    if let Some(xff) = forwarded {
        headers.push(("X-Forwarded-For", xff));
    }
    server.client().get_with("/v1/workspace", &headers)
}

fn assert_ip_refused(r: &Resp) {
    r.assert_v1_error(403, "permission_error", "ip_not_allowed");
}

fn allowlists_allow_and_refuse(b: Backend) {
    let f = Fixture::new(b);
    let ws = &f.workspace_id;
    let db = f.db();
    let here = create(
        db,
        ws,
        "here",
        &["--access", "read_only", "--allow-ip", "127.0.0.1"],
    );
    assert_eq!(here["allowed_ips"], json!(["127.0.0.1/32"]));
    let elsewhere = create(
        db,
        ws,
        "elsewhere",
        &[
            "--access",
            "read_only",
            "--allow-ip",
            "192.0.2.0/24",
            "--allow-ip",
            "2001:db8::/32",
        ],
    );
    assert_eq!(
        elsewhere["allowed_ips"],
        json!(["192.0.2.0/24", "2001:db8::/32"])
    );
    let anywhere = create(db, ws, "anywhere", &["--access", "read_only"]);
    assert!(anywhere["allowed_ips"].is_null());
    assert_eq!(v1_from(&f.server, &s(&here, "key"), None).status, 200);
    assert_eq!(v1_from(&f.server, &s(&anywhere, "key"), None).status, 200);
    // Refused after authentication, from the cache as well as on a miss.
    for _ in 0..2 {
        assert_ip_refused(&v1_from(&f.server, &s(&elsewhere, "key"), None));
    }
    // A forged X-Forwarded-For from an untrusted peer changes nothing.
    assert_ip_refused(&v1_from(
        &f.server,
        &s(&elsewhere, "key"),
        Some("192.0.2.7"),
    ));
    assert_eq!(
        v1_from(&f.server, &s(&here, "key"), Some("203.0.113.9")).status,
        200
    );
    // A stored allowlist that no longer parses refuses the key (fail closed).
    let broken = create(
        db,
        ws,
        "broken",
        &["--access", "read_only", "--allow-ip", "127.0.0.1"],
    );
    db.execute(&format!(
        "UPDATE api_keys SET allowed_ips = 'not-an-address' WHERE id = '{}'",
        s(&broken, "id")
    ));
    assert_ip_refused(&v1_from(&f.server, &s(&broken, "key"), None));
    // A wrong key is still a 401 whatever the address.
    let r = v1_from(&f.server, &random_credential("kgk_"), None);
    r.assert_v1_error(401, "authentication_error", "invalid_api_key");
    // The last address is recorded with the usage counts.
    let id = s(&here, "id");
    assert!(
        eventually(Duration::from_secs(5), || listed(db, ws, &id)
            ["last_used_ip"]
            == "127.0.0.1"),
        "{}",
        listed(db, ws, &id)
    );
    assert!(listed(db, ws, &s(&elsewhere, "id"))["last_used_ip"].is_null());
}

fn allowlists_over_ipv6(b: Backend) {
    let f = Fixture::with_server(Server::start_ipv6(TestDb::new(b), &[]));
    let ws = &f.workspace_id;
    let db = f.db();
    let v6 = create(
        db,
        ws,
        "v6",
        &["--access", "read_only", "--allow-ip", "::1/128"],
    );
    let v4 = create(
        db,
        ws,
        "v4",
        &["--access", "read_only", "--allow-ip", "127.0.0.0/8"],
    );
    assert!(f.server.base.contains("[::1]"));
    assert_eq!(v1_from(&f.server, &s(&v6, "key"), None).status, 200);
    assert_ip_refused(&v1_from(&f.server, &s(&v4, "key"), None));
    let id = s(&v6, "id");
    assert!(
        eventually(Duration::from_secs(5), || listed(db, ws, &id)
            ["last_used_ip"]
            == "::1"),
        "{}",
        listed(db, ws, &id)
    );
}

fn allowlists_behind_a_trusted_proxy(b: Backend) {
    let server = Server::start_with(
        TestDb::new(b),
        &[("KEYGATE_TRUSTED_PROXIES", "127.0.0.1/32")],
    );
    let f = Fixture::with_server(server);
    let ws = &f.workspace_id;
    let db = f.db();
    let key = create(
        db,
        ws,
        "behind",
        &["--access", "read_only", "--allow-ip", "198.51.100.0/24"],
    );
    let k = s(&key, "key");
    assert_eq!(v1_from(&f.server, &k, Some("198.51.100.7")).status, 200);
    // The right-most untrusted entry is the client: forged entries on its left
    // do not help, and one on its right is the client itself.
    assert_eq!(
        v1_from(&f.server, &k, Some("203.0.113.66, 198.51.100.7")).status,
        200
    );
    assert_ip_refused(&v1_from(&f.server, &k, Some("198.51.100.7, 203.0.113.66")));
    // No header: the proxy itself is the client.
    assert_ip_refused(&v1_from(&f.server, &k, None));
    let id = s(&key, "id");
    assert!(
        eventually(Duration::from_secs(5), || listed(db, ws, &id)
            ["last_used_ip"]
            == "198.51.100.7"),
        "{}",
        listed(db, ws, &id)
    );
}

// ---------------------------------------------------------------- rotation with grace

fn rotation_with_a_grace_period_on_two_nodes(b: Backend) {
    let env = [("KEYGATE_HOUSEKEEPING_SECS", "1")];
    let f = Fixture::with_server(Server::start_with(TestDb::new(b), &env));
    let node_b = second_node(&f, &env);
    let ws = &f.workspace_id;
    let db = f.db();
    let created = create(db, ws, "graceful", &["--access", "read_only"]);
    let (id, old) = (s(&created, "id"), s(&created, "key"));
    // Both nodes hold the old secret in memory.
    assert_eq!(f.server.v1_status(&old), 200);
    assert_eq!(node_b.v1_status(&old), 200);

    let rotated = db.json(&["apikey", "rotate", &id, "--grace", "4s"]);
    let new = s(&rotated, "key");
    let end = unix(&s(&rotated, "previous_secret_expires_at"));
    assert_eq!(
        listed(db, ws, &id)["previous_secret_expires_at"],
        rotated["previous_secret_expires_at"]
    );
    // Before the end: both secrets work on both nodes (twice: miss, then cache).
    for _ in 0..2 {
        for node in [&f.server, &node_b] {
            assert!((now_secs_f64() as i64) < end, "the test ran too slowly");
            assert_eq!(node.v1_status(&old), 200);
            assert_eq!(node.v1_status(&new), 200);
        }
    }
    // At the end it stops, on every node, without anyone telling them.
    let wait = end as f64 - now_secs_f64();
    if wait > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(wait));
    }
    assert!(
        eventually(Duration::from_millis(500), || f.server.v1_status(&old)
            == 401
            && node_b.v1_status(&old) == 401),
        "the old secret outlived its grace period"
    );
    assert_eq!(f.server.v1_status(&new), 200);
    assert_eq!(node_b.v1_status(&new), 200);
    // Housekeeping forgets the replaced secret.
    assert!(eventually(Duration::from_secs(5), || db
        .text(&format!(
            "SELECT previous_secret_hash AS v FROM api_keys WHERE id = '{id}'"
        ))
        .is_none()));
    assert!(listed(db, ws, &id)["previous_secret_expires_at"].is_null());

    // A rotation without --grace ends a grace period in progress at once.
    let second = db.json(&["apikey", "rotate", &id, "--grace", "1h"]);
    let third = db.json(&["apikey", "rotate", &id]);
    assert!(third["previous_secret_expires_at"].is_null());
    for node in [&f.server, &node_b] {
        assert_eq!(node.v1_status(&new), 401);
        assert_eq!(node.v1_status(&s(&second, "key")), 401);
        assert_eq!(node.v1_status(&s(&third, "key")), 200);
    }
    // The security log says until when the old secret worked.
    assert!(audit(db, ws)
        .iter()
        .any(|e| e["action"] == "api_key.rotated"
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("the old secret works until"))));
}

// ---------------------------------------------------------------- custom scopes

fn custom_scopes_on_every_route(b: Backend) {
    let f = Fixture::new(b);
    let ws = &f.workspace_id;
    let db = f.db();
    let v = create(
        db,
        ws,
        "custom",
        &[
            "--access",
            "custom",
            "--scope",
            "forms:write",
            "--scope",
            "tags:read",
        ],
    );
    assert_eq!(v["access"], "custom");
    assert_eq!(v["scopes"], json!(["tags:read", "forms:write"]));
    let listed_v = listed(db, ws, &s(&v, "id"));
    assert_eq!(listed_v["access"], "custom");
    assert_eq!(listed_v["scopes"], json!(["tags:read", "forms:write"]));
    // The fixed levels list their scopes too, unchanged.
    let ro = create(db, ws, "ro", &["--access", "read_only"]);
    assert_eq!(ro["access"], "read_only");
    assert!(ro["scopes"]
        .as_array()
        .expect("scopes")
        .iter()
        .all(|s| s.as_str().is_some_and(|s| s.ends_with(":read"))));

    let key = s(&v, "key");
    let mut http = f.server.client();
    let refused = |r: Resp| r.assert_v1_error(403, "permission_error", "insufficient_scope");
    refused(http.bearer_get("/v1/workspace", &key));
    assert_eq!(http.bearer_get("/v1/tags", &key).status, 200);
    refused(http.bearer_post_json("/v1/tags", &key, "{\"name\":\"t1\"}"));
    refused(http.bearer_get("/v1/forms", &key));
    let made = http.bearer_post_json("/v1/forms", &key, "{\"name\":\"f1\"}");
    assert_eq!(made.status, 201, "{}", made.body);

    let only_ws = create(
        db,
        ws,
        "only-ws",
        &["--access", "custom", "--scope", "workspace:read"],
    );
    let k = s(&only_ws, "key");
    assert_eq!(http.bearer_get("/v1/workspace", &k).status, 200);
    refused(http.bearer_get("/v1/tags", &k));
    refused(http.bearer_post_json("/v1/tags", &k, "{\"name\":\"t2\"}"));
    refused(http.bearer_get("/v1/forms", &k));
    refused(http.bearer_post_json("/v1/forms", &k, "{\"name\":\"f2\"}"));
}

// ---------------------------------------------------------------- settings pages

fn keys_page(http: &mut Http, ws: &str, query: &str) -> Resp {
    http.get(&format!("/settings/api-keys?workspace={ws}{query}"))
}

fn shown_key(html: &str) -> Option<String> {
    let at = html.find("id=\"new-key\"")?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[at..tag_end];
    let v = tag.find("value=\"")? + "value=\"".len();
    let end = tag[v..].find('"')? + v;
    Some(unescape(&tag[v..end]))
}

fn settings_forms_for_the_new_features(b: Backend) {
    let f = Fixture::new(b);
    let ws = f.workspace_id.clone();
    let db = f.db();
    let mut owner = f.owner();
    let page = keys_page(&mut owner, &ws, "");
    assert_eq!(page.status, 200);
    for scope in [
        "workspace:read",
        "tags:read",
        "tags:write",
        "forms:read",
        "forms:write",
    ] {
        assert!(
            page.body
                .contains(&format!("name=\"scope\" value=\"{scope}\"")),
            "no checkbox for {scope}"
        );
    }
    let csrf = hidden(&page.body, "csrf_token").expect("csrf");
    let r = owner.post_form(
        "/settings/api-keys",
        &[
            ("csrf_token", &csrf),
            ("workspace_id", &ws),
            ("name", "page-custom"),
            ("access", "custom"),
            ("scope", "tags:read"),
            ("scope", "tags:write"),
            ("expires", ""),
            ("allowed_ips", "127.0.0.1, 2001:db8::/32"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let key = shown_key(&r.body).expect("the key is shown");
    let mut http = f.server.client();
    assert_eq!(http.bearer_get("/v1/tags", &key).status, 200);
    assert_eq!(http.bearer_get("/v1/forms", &key).status, 403);
    let row = db
        .json_lines(&["apikey", "list", "--workspace", &ws])
        .into_iter()
        .find(|k| k["name"] == "page-custom")
        .expect("listed");
    assert_eq!(row["scopes"], json!(["tags:read", "tags:write"]));
    assert_eq!(row["allowed_ips"], json!(["127.0.0.1/32", "2001:db8::/32"]));

    // Bad addresses and an empty custom choice re-show the form with the reason.
    for (fields, says) in [
        (vec![("access", "custom")], "scope"),
        (
            vec![("access", "read_only"), ("allowed_ips", "203.0.113.7/24")],
            "203.0.113.0/24",
        ),
        (
            vec![("access", "read_only"), ("allowed_ips", "example.com")],
            "example.com",
        ),
    ] {
        let n = db.count("api_keys");
        let mut form = vec![
            ("csrf_token", csrf.as_str()),
            ("workspace_id", ws.as_str()),
            ("name", "refused"),
        ];
        form.extend(fields);
        let r = owner.post_form("/settings/api-keys", &form);
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains(says), "the page does not say {says:?}");
        assert_eq!(db.count("api_keys"), n);
    }

    // A key ending within 7 days is labelled in words and can be filtered.
    let soon = (chrono::Utc::now().date_naive() + chrono::Duration::days(3))
        .format("%Y-%m-%d")
        .to_string();
    create(
        db,
        &ws,
        "ends-soon",
        &["--access", "read_only", "--expires", &soon],
    );
    let page = keys_page(&mut owner, &ws, "");
    assert!(page.body.contains("Expires soon"));
    let filtered = keys_page(&mut owner, &ws, "&status=expiring");
    assert!(filtered.body.contains(">ends-soon</td>"));
    assert!(!filtered.body.contains(">page-custom</td>"));
    assert_eq!(filtered.body.matches("Expires soon</span>").count(), 1);
    let cli = db.json_lines(&["apikey", "list", "--workspace", &ws, "--status", "expiring"]);
    assert_eq!(cli.len(), 1);
    assert_eq!(cli[0]["name"], "ends-soon");
    assert_eq!(cli[0]["expiring_soon"], true);

    // Rotate with a grace period chosen in the page.
    let id = s(&row, "id");
    let r = owner.post_form(
        &format!("/settings/api-keys/{id}/rotate"),
        &[("csrf_token", &csrf), ("grace", "1h")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("keeps working until"), "{}", r.body);
    let new = shown_key(&r.body).expect("new key");
    assert_eq!(http.bearer_get("/v1/tags", &key).status, 200);
    assert_eq!(http.bearer_get("/v1/tags", &new).status, 200);
    let page = keys_page(&mut owner, &ws, "");
    assert!(page.body.contains("old secret works until"));
    let r = owner.post_form(
        &format!("/settings/api-keys/{id}/rotate"),
        &[("csrf_token", &csrf), ("grace", "45d")],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("30 days"));
    assert_eq!(http.bearer_get("/v1/tags", &new).status, 200);
    // The last address shows in the list.
    assert!(eventually(Duration::from_secs(5), || keys_page(
        &mut owner, &ws, ""
    )
    .body
    .contains("<code>127.0.0.1</code>")));
}

// ---------------------------------------------------------------- CLI refusals

fn every_bad_cli_input_is_refused_and_changes_nothing(b: Backend) {
    let db = TestDb::new(b);
    let ws = s(&db.json(&["workspace", "create", "--name", "Acme"]), "id");
    let kept = create(&db, &ws, "kept", &["--access", "read_only"]);
    let id = s(&kept, "id");
    let revoked = create(&db, &ws, "gone", &["--access", "read_only"]);
    db.json(&["apikey", "revoke", &s(&revoked, "id")]);
    let keys = db.count("api_keys");
    let events = db.count("audit_events");
    let hash = secret_hash(&db, &id);
    let base = [
        "apikey",
        "create",
        "--workspace",
        ws.as_str(),
        "--name",
        "new",
    ];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--access", "custom"], "scope"),
        (
            vec!["--access", "custom", "--scope", "tags:delete"],
            "tags:delete",
        ),
        (vec!["--access", "custom", "--scope", ""], "scope"),
        (
            vec!["--access", "read_only", "--scope", "tags:read"],
            "custom",
        ),
        (vec!["--access", "everything"], "access"),
        (
            vec!["--access", "read_only", "--allow-ip", "nope"],
            "allow-ip",
        ),
        (
            vec!["--access", "read_only", "--allow-ip", "203.0.113.7/24"],
            "203.0.113.0/24",
        ),
        (vec!["--access", "read_only", "--allow-ip", ""], "allow-ip"),
        (
            vec!["--access", "read_only", "--allow-ip", "1.2.3.4:80"],
            "allow-ip",
        ),
        (
            vec!["--access", "read_only", "--allow-ip", "10.0.0.0/33"],
            "allow-ip",
        ),
    ];
    for (extra, mentions) in cases {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(extra);
        db.cli(&args).assert_refused(mentions);
    }
    for grace in ["0s", "31d", "1w", "", "--grace=-1h", "1h30m", "soon"] {
        let arg = if grace.starts_with("--") {
            grace.to_string()
        } else {
            format!("--grace={grace}")
        };
        db.cli(&["apikey", "rotate", &id, &arg])
            .assert_refused("grace");
    }
    let unknown = uuid::Uuid::new_v4().to_string();
    db.cli(&["apikey", "rotate", &unknown, "--grace", "1h"])
        .assert_refused("no API key");
    db.cli(&["apikey", "rotate", &s(&revoked, "id"), "--grace", "1h"])
        .assert_refused("revoked");
    db.cli(&["apikey", "list", "--workspace", &ws, "--status", "soon"])
        .assert_refused("status");
    assert_eq!(db.count("api_keys"), keys);
    assert_eq!(db.count("audit_events"), events);
    assert_eq!(secret_hash(&db, &id), hash);
    assert!(db
        .text(&format!(
            "SELECT previous_secret_hash AS v FROM api_keys WHERE id = '{id}'"
        ))
        .is_none());
}

/// A reported mailbox auth key stops at once: disabled, its leaked secret
/// replaced so that enabling the key again cannot bring it back; one log row
/// naming where it was found; a replay changes nothing.
fn a_reported_mailbox_auth_key_stops_for_good(b: Backend) {
    let reporter = Reporter::new();
    let f = Fixture::with_server(Server::start_with(TestDb::new(b), &[reporter.env()]));
    let ws = &f.workspace_id;
    let mailbox = f.db().json(&[
        "mailbox",
        "create",
        "--workspace",
        ws,
        "--address",
        "sales@example.com",
    ]);
    let mailbox_id = s(&mailbox, "id");
    let leaked = f.db().json(&[
        "authkey",
        "create",
        "--mailbox",
        &mailbox_id,
        "--name",
        "CRM",
    ]);
    let kept = f.db().json(&[
        "authkey",
        "create",
        "--mailbox",
        &mailbox_id,
        "--name",
        "Other",
    ]);
    let (leaked_key, leaked_id) = (s(&leaked, "key"), s(&leaked, "id"));
    let hash_before = f.db().text(&format!(
        "SELECT secret_hash AS v FROM mailbox_auth_keys WHERE id = '{leaked_id}'"
    ));
    let body = report_body(&[leaked_key.as_str()]);
    let r = signed_report(&reporter, &f.server, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()[0]["label"], "true_positive", "{}", r.body);
    assert_eq!(r.json()[0]["token_type"], "keygate_mailbox_auth_key");

    let keys = f
        .db()
        .json_lines(&["authkey", "list", "--mailbox", &mailbox_id]);
    let status_of = |id: &str| {
        keys.iter()
            .find(|k| k["id"] == id)
            .map(|k| k["status"].clone())
            .unwrap_or_default()
    };
    assert_eq!(status_of(&leaked_id), "disabled");
    assert_eq!(
        status_of(&s(&kept, "id")),
        "active",
        "only the leaked key stops"
    );
    // Its secret is public: the key can never be enabled again.
    f.db()
        .cli(&["authkey", "enable", &leaked_id])
        .assert_refused("reported leaked");
    let keys = f
        .db()
        .json_lines(&["authkey", "list", "--mailbox", &mailbox_id]);
    assert!(keys
        .iter()
        .any(|k| k["id"] == leaked_id.as_str() && k["status"] == "disabled"));
    let hash_after = f.db().text(&format!(
        "SELECT secret_hash AS v FROM mailbox_auth_keys WHERE id = '{leaked_id}'"
    ));
    assert_eq!(
        hash_after, hash_before,
        "the record of the leaked secret stays"
    );

    let logged = |db: &TestDb| -> Vec<Value> {
        audit(db, ws)
            .into_iter()
            .filter(|e| e["action"] == "mailbox_auth_key.leaked")
            .collect()
    };
    let rows = logged(f.db());
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["subject"], leaked_id.as_str());
    assert!(s(&rows[0], "detail").contains(LEAK_URL), "{:?}", rows[0]);

    // A replay: still a true positive, no second row.
    let again = signed_report(&reporter, &f.server, &body);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()[0]["label"], "true_positive");
    assert_eq!(logged(f.db()).len(), 1);
}

both_backends!(
    a_signed_report_revokes_the_key_on_every_node,
    a_reported_mailbox_auth_key_stops_for_good,
    unsigned_or_badly_signed_reports_change_nothing,
    the_endpoint_is_absent_without_keys,
    a_thousand_token_batch,
    usage_of_many_keys_is_written_whole,
    allowlists_allow_and_refuse,
    allowlists_over_ipv6,
    allowlists_behind_a_trusted_proxy,
    rotation_with_a_grace_period_on_two_nodes,
    custom_scopes_on_every_route,
    settings_forms_for_the_new_features,
    every_bad_cli_input_is_refused_and_changes_nothing,
);
