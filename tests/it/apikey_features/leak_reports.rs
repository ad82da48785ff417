//! Leaked-credential reports (GitHub secret scanning): a signed report revokes
//! the key everywhere, unsigned or badly signed ones change nothing, the endpoint
//! is absent without verification keys, and a reported mailbox auth key stops.

use super::*;

const KEY_ID: &str = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";

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

const LEAK_URL: &str = "https://github.com/acme/app/blob/main/.env";

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

/// What is wrong with it, the body sent, and the headers sent.
type Attempt<'a> = (&'a str, String, Vec<(&'a str, &'a str)>);

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

/// A reported mailbox auth key stops at once: disabled, its leaked secret
/// replaced so that enabling the key again cannot bring it back; one log row
/// naming where it was found; a replay changes nothing.
fn a_reported_mailbox_auth_key_stops_for_good(b: Backend) {
    let reporter = Reporter::new();
    let f = Fixture::with_server(Server::start_with(TestDb::new(b), &[reporter.env()]));
    let ws = &f.workspace_id;
    f.db().verified_domain(ws, "example.com");
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
);
