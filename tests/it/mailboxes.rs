//! Mailboxes and mailbox auth keys, through the real server: the CLI (shapes and
//! every refusal), `/v1/mailboxes` and mailbox-restricted API keys, the settings
//! Mailboxes tab, and SMTP AUTH through a real Postfix asking keygate's
//! Dovecot-protocol listener, on one node and across two.

use crate::postfix::{free_port as smtp_free_port, submit, Auth, Postfix};
use crate::support::*;
use base64::Engine;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- helpers

fn s(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field} in {v}"))
        .to_string()
}

/// The member names of a JSON object, sorted.
fn members(v: &Value) -> Vec<String> {
    let mut names: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn create_mailbox(db: &TestDb, ws: &str, address: &str) -> String {
    let v = db.json(&["mailbox", "create", "--workspace", ws, "--address", address]);
    s(&v, "id")
}

/// (key id, full key)
fn create_auth_key(db: &TestDb, mailbox: &str, name: &str) -> (String, String) {
    let v = db.json(&["authkey", "create", "--mailbox", mailbox, "--name", name]);
    (s(&v, "id"), s(&v, "key"))
}

fn auth_keys(db: &TestDb, mailbox: &str) -> Vec<Value> {
    db.json_lines(&["authkey", "list", "--mailbox", mailbox])
}

fn auth_key(db: &TestDb, mailbox: &str, id: &str) -> Value {
    auth_keys(db, mailbox)
        .into_iter()
        .find(|k| k["id"] == id)
        .unwrap_or_else(|| panic!("no auth key {id} in the list"))
}

/// Row counts of every table a refused command could have touched.
fn counts(db: &TestDb) -> Vec<i64> {
    ["mailboxes", "mailbox_auth_keys", "api_keys", "audit_events"]
        .iter()
        .map(|t| db.count(t))
        .collect()
}

/// A server whose SASL listener is on a port of its own; returns it with the port.
fn fixture_with_sasl(b: Backend, extra: &[(&str, &str)]) -> (Fixture, u16) {
    let port = smtp_free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut env = vec![("KEYGATE_SASL_BIND", bind.as_str())];
    env.extend_from_slice(extra);
    let f = Fixture::with_server(Server::start_with(TestDb::new(b), &env));
    (f, port)
}

fn sasl_addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// One `AUTH PLAIN` straight to the SASL listener, as Postfix would send it, with
/// the client address `rip`. Returns the answer line and how long it took.
fn sasl_auth(port: u16, rip: &str, user: &str, key: &str) -> (String, Duration) {
    let s = TcpStream::connect(sasl_addr(port)).expect("connect to the SASL listener");
    s.set_read_timeout(Some(Duration::from_secs(15))).ok();
    let mut reader = BufReader::new(s.try_clone().expect("clone"));
    let mut writer = s;
    writer
        .write_all(b"VERSION\t1\t0\nCPID\t4242\n")
        .expect("handshake");
    let mut line = String::new();
    loop {
        line.clear();
        assert!(reader.read_line(&mut line).expect("read") > 0, "closed");
        if line.trim_end() == "DONE" {
            break;
        }
    }
    let resp = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{key}"));
    let started = Instant::now();
    writer
        .write_all(
            format!(
                "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip={rip}\tresp={resp}\n"
            )
            .as_bytes(),
        )
        .expect("auth");
    line.clear();
    // A closed connection (no answer) reads as an empty line.
    let _ = reader.read_line(&mut line);
    (line.trim_end().to_string(), started.elapsed())
}

/// The full key in a "save your key" page (input id="new-key").
fn shown_key(html: &str) -> Option<String> {
    let at = html.find("id=\"new-key\"")?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let v = tag.find("value=\"")? + "value=\"".len();
    let end = tag[v..].find('"')? + v;
    Some(unescape(&tag[v..end]))
}

fn mailboxes_page(http: &mut Http, ws: &str, mailbox: Option<&str>) -> Resp {
    match mailbox {
        Some(m) => http.get(&format!("/settings/mailboxes?workspace={ws}&mailbox={m}")),
        None => http.get(&format!("/settings/mailboxes?workspace={ws}")),
    }
}

fn csrf(http: &mut Http, ws: &str) -> String {
    let page = mailboxes_page(http, ws, None);
    hidden(&page.body, "csrf_token").expect("the page has a CSRF token")
}

/// The `mailbox` parameter of a redirect back to the page.
fn mailbox_of(location: &str) -> String {
    let url = url::Url::parse(&format!("http://x{location}")).expect("location");
    url.query_pairs()
        .find(|(k, _)| k == "mailbox")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no mailbox in {location}"))
}

// ---------------------------------------------------------------- CLI

fn mailbox_cli_lifecycle(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = &f.workspace_id;

    let m = db.json(&[
        "mailbox",
        "create",
        "--workspace",
        ws,
        "--address",
        " Sales@Example.com ",
    ]);
    assert_eq!(
        members(&m),
        sorted(&["id", "workspace_id", "address", "created_at"])
    );
    assert_eq!(m["address"], "Sales@Example.com", "kept as given, trimmed");
    assert_eq!(m["workspace_id"], ws.as_str());
    let mb = s(&m, "id");
    assert!(uuid::Uuid::parse_str(&mb).is_ok());
    assert!(chrono::DateTime::parse_from_rfc3339(&s(&m, "created_at")).is_ok());

    let k = db.json(&[
        "authkey",
        "create",
        "--mailbox",
        &mb,
        "--name",
        "Outreach Primary",
    ]);
    assert_eq!(
        members(&k),
        sorted(&["id", "mailbox_id", "address", "name", "key", "prefix"])
    );
    let (kid, key) = (s(&k, "id"), s(&k, "key"));
    assert_eq!(k["mailbox_id"], mb.as_str());
    assert_eq!(k["address"], "Sales@Example.com");
    assert!(key.starts_with("kgm_") && key.len() == 53, "{key}");
    assert!(key.starts_with(&s(&k, "prefix")));
    assert_eq!(s(&k, "prefix").len(), 14);
    let hash = db
        .text(&format!(
            "SELECT secret_hash AS v FROM mailbox_auth_keys WHERE id = '{kid}'"
        ))
        .expect("row");
    assert_ne!(hash, key, "only a hash is stored");
    assert!(!hash.contains(&key[15..]));
    create_auth_key(db, &mb, "CRM");

    let listed = auth_key(db, &mb, &kid);
    assert_eq!(
        members(&listed),
        sorted(&[
            "id",
            "mailbox_id",
            "name",
            "prefix",
            "created_at",
            "last_used_at",
            "usage_count",
            "status"
        ])
    );
    assert_eq!(listed["status"], "active");
    assert_eq!(listed["usage_count"], 0);
    assert_eq!(listed["last_used_at"], Value::Null);
    assert_eq!(listed["name"], "Outreach Primary");
    let names: Vec<String> = auth_keys(db, &mb).iter().map(|k| s(k, "name")).collect();
    assert_eq!(names, ["CRM", "Outreach Primary"], "newest first");

    let lines = db.json_lines(&["mailbox", "list", "--workspace", ws]);
    assert_eq!(lines.len(), 1);
    assert_eq!(
        members(&lines[0]),
        sorted(&["id", "workspace_id", "address", "created_at", "active_keys"])
    );
    assert_eq!(lines[0]["active_keys"], 2);

    let d = db.json(&["authkey", "disable", &kid]);
    assert_eq!(d, serde_json::json!({"id": kid, "status": "disabled"}));
    assert_eq!(auth_key(db, &mb, &kid)["status"], "disabled");
    assert_eq!(
        db.json_lines(&["mailbox", "list", "--workspace", ws])[0]["active_keys"],
        1
    );
    let e = db.json(&["authkey", "enable", &kid]);
    assert_eq!(e, serde_json::json!({"id": kid, "status": "active"}));

    let r = db.json(&["authkey", "rotate", &kid]);
    assert_eq!(members(&r), sorted(&["id", "key", "prefix"]));
    assert_eq!(r["id"], kid.as_str());
    assert_ne!(s(&r, "key"), key);
    assert_eq!(r["prefix"], k["prefix"], "same key, new secret");

    let gone = db.json(&["authkey", "delete", &kid]);
    assert_eq!(gone, serde_json::json!({"id": kid, "deleted": true}));
    assert_eq!(auth_keys(db, &mb).len(), 1);

    let gone = db.json(&["mailbox", "delete", &mb]);
    assert_eq!(gone, serde_json::json!({"id": mb, "deleted": true}));
    assert_eq!(db.count("mailboxes"), 0);
    assert_eq!(db.count("mailbox_auth_keys"), 0, "its keys went with it");

    let actions: Vec<String> = db
        .json_lines(&["audit", "list", "--workspace", ws])
        .iter()
        .map(|e| s(e, "action"))
        .collect();
    for a in [
        "mailbox.created",
        "mailbox_auth_key.created",
        "mailbox_auth_key.disabled",
        "mailbox_auth_key.enabled",
        "mailbox_auth_key.rotated",
        "mailbox_auth_key.deleted",
        "mailbox.deleted",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} not in {actions:?}");
    }
}

fn mailbox_cli_refusals_change_nothing(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = f.workspace_id.clone();
    let other_ws = s(&db.json(&["workspace", "create", "--name", "Other"]), "id");
    let free_ws = s(
        &db.json(&["workspace", "create", "--name", "Free", "--plan", "free"]),
        "id",
    );
    let mb = create_mailbox(db, &ws, "ops@example.com");
    let (kid, _) = create_auth_key(db, &mb, "CRM");
    db.json(&["authkey", "disable", &kid]);
    let before = counts(db);
    let unknown = uuid::Uuid::now_v7().to_string();

    let refused: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "mailbox",
                "create",
                "--workspace",
                &unknown,
                "--address",
                "a@example.com",
            ],
            "no workspace",
        ),
        (
            vec![
                "mailbox",
                "create",
                "--workspace",
                &ws,
                "--address",
                "not-an-address",
            ],
            "invalid mailbox address",
        ),
        (
            vec![
                "mailbox",
                "create",
                "--workspace",
                &ws,
                "--address",
                "a@localhost",
            ],
            "invalid mailbox address",
        ),
        (
            vec!["mailbox", "create", "--workspace", &ws, "--address", ""],
            "must not be empty",
        ),
        (
            vec![
                "mailbox",
                "create",
                "--workspace",
                &ws,
                "--address",
                "OPS@Example.COM",
            ],
            "already taken",
        ),
        (
            vec![
                "mailbox",
                "create",
                "--workspace",
                &other_ws,
                "--address",
                "ops@example.com",
            ],
            "already taken",
        ),
        (
            vec![
                "mailbox",
                "create",
                "--workspace",
                &free_ws,
                "--address",
                "f@example.com",
            ],
            "upgrade required",
        ),
        (
            vec!["mailbox", "list", "--workspace", &unknown],
            "no workspace",
        ),
        (vec!["mailbox", "delete", &unknown], "no mailbox"),
        (
            vec!["authkey", "create", "--mailbox", &unknown, "--name", "x"],
            "no mailbox",
        ),
        (
            vec!["authkey", "create", "--mailbox", &mb, "--name", "CRM"],
            "already exists",
        ),
        (
            vec!["authkey", "create", "--mailbox", &mb, "--name", "  "],
            "must not be empty",
        ),
        (
            vec![
                "authkey",
                "create",
                "--mailbox",
                &mb,
                "--name",
                "kgm_AbCdEfGhIj_x",
            ],
            "looks like a secret",
        ),
        (vec!["authkey", "list", "--mailbox", &unknown], "no mailbox"),
        (vec!["authkey", "disable", &kid], "already disabled"),
        (vec!["authkey", "rotate", &kid], "cannot be rotated"),
        (vec!["authkey", "disable", &unknown], "no mailbox auth key"),
        (vec!["authkey", "enable", &unknown], "no mailbox auth key"),
        (vec!["authkey", "rotate", &unknown], "no mailbox auth key"),
        (vec!["authkey", "delete", &unknown], "no mailbox auth key"),
        (
            vec![
                "apikey",
                "create",
                "--workspace",
                &ws,
                "--name",
                "r",
                "--access",
                "read_only",
                "--mailbox",
                &unknown,
            ],
            "no mailbox",
        ),
        (
            vec![
                "apikey",
                "create",
                "--workspace",
                &other_ws,
                "--name",
                "r",
                "--access",
                "read_only",
                "--mailbox",
                &mb,
            ],
            "no mailbox",
        ),
    ];
    for (args, mentions) in &refused {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        db.cli(&all).assert_refused(mentions);
        assert_eq!(counts(db), before, "keygate {args:?} changed something");
    }
    db.json(&["authkey", "enable", &kid]);
    db.cli(&["authkey", "enable", &kid])
        .assert_refused("not disabled");
    // A command line that is itself wrong is a usage error.
    assert_eq!(db.cli(&["mailbox", "create", "--workspace", &ws]).code, 2);
}

// ---------------------------------------------------------------- /v1

fn v1_mailboxes(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let mut http = f.server.client();
    let rw = f.api_key("read_write");
    let ro = f.api_key("read_only");

    let r = http.bearer_post_json("/v1/mailboxes", &rw, r#"{"address":"Ops@Example.com"}"#);
    assert_eq!(r.status, 201, "{}", r.body);
    let m = r.json();
    assert_eq!(members(&m), sorted(&["id", "address", "created_at"]));
    assert_eq!(m["address"], "Ops@Example.com");
    let id = s(&m, "id");

    // Bad input: a clear 400 each, and nothing changes.
    let before = counts(db);
    for (body, code) in [
        (r#"{"address":"ops@EXAMPLE.com"}"#, "address_taken"),
        (r#"{"address":"nope"}"#, "parameter_invalid"),
        (r#"{"address":""}"#, "parameter_invalid"),
        (r#"{"address":7}"#, "parameter_invalid"),
        (r#"{}"#, "parameter_missing"),
        (r#"[]"#, "invalid_body"),
        ("not json", "invalid_json"),
    ] {
        http.bearer_post_json("/v1/mailboxes", &rw, body)
            .assert_v1_error(400, "invalid_request_error", code);
    }
    let auth = format!("Bearer {rw}");
    http.send(
        "POST",
        "/v1/mailboxes",
        &[("Authorization", &auth), ("Content-Type", "text/plain")],
        "{}",
    )
    .assert_v1_error(400, "invalid_request_error", "invalid_content_type");
    http.bearer_post_json("/v1/mailboxes", &ro, r#"{"address":"x@example.com"}"#)
        .assert_v1_error(403, "permission_error", "insufficient_scope");
    assert_eq!(counts(db), before);

    let list = http.bearer_get("/v1/mailboxes", &ro);
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.json()["data"][0]["id"], id.as_str());
    assert_eq!(list.json()["has_more"], false);
    http.bearer_post_json("/v1/mailboxes", &rw, r#"{"address":"second@example.com"}"#);
    let page = http.bearer_get("/v1/mailboxes?limit=1", &ro).json();
    assert_eq!(
        page["data"][0]["address"], "second@example.com",
        "newest first"
    );
    assert_eq!(page["has_more"], true);
    let one = http.bearer_get(&format!("/v1/mailboxes/{id}"), &ro);
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.json(), m);

    // Another workspace's mailbox is as unknown as a made-up id.
    let other_ws = s(&db.json(&["workspace", "create", "--name", "Other"]), "id");
    let theirs = create_mailbox(db, &other_ws, "theirs@example.com");
    let unknown = uuid::Uuid::now_v7().to_string();
    for path in [
        format!("/v1/mailboxes/{theirs}"),
        format!("/v1/mailboxes/{unknown}"),
        "/v1/mailboxes/x".into(),
    ] {
        http.bearer_get(&path, &rw)
            .assert_v1_error(404, "invalid_request_error", "not_found");
        http.send("DELETE", &path, &[("Authorization", &auth)], "")
            .assert_v1_error(404, "invalid_request_error", "not_found");
    }
    assert_eq!(db.count("mailboxes"), 3);

    // An OAuth token with the mailbox scopes, whose consent page says them in words.
    let (_, challenge) = pkce();
    let mut owner = f.owner();
    let consent = owner.get(&format!(
        "/oauth/authorize?{}",
        f.authorize_query(&f.client_id, "mailboxes:read mailboxes:write", &challenge)
    ));
    assert!(
        consent.body.contains("See your mailboxes"),
        "{}",
        consent.body
    );
    assert!(consent.body.contains("Create and delete mailboxes"));
    let (token, _) = f.tokens("mailboxes:read");
    assert_eq!(http.bearer_get("/v1/mailboxes", &token).status, 200);
    http.bearer_post_json("/v1/mailboxes", &token, r#"{"address":"t@example.com"}"#)
        .assert_v1_error(403, "permission_error", "insufficient_scope");
    let meta = http.get("/.well-known/oauth-authorization-server").json();
    for scope in ["mailboxes:read", "mailboxes:write"] {
        assert!(meta["scopes_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == scope));
    }

    // Delete: 204, its keys go, and it is gone.
    create_auth_key(db, &id, "CRM");
    let d = http.send(
        "DELETE",
        &format!("/v1/mailboxes/{id}"),
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(d.status, 204, "{}", d.body);
    assert!(d.body.is_empty());
    http.bearer_get(&format!("/v1/mailboxes/{id}"), &rw)
        .assert_v1_error(404, "invalid_request_error", "not_found");
    assert_eq!(db.count("mailbox_auth_keys"), 0);
    let log = db.json_lines(&["audit", "list", "--workspace", &f.workspace_id]);
    assert!(log.iter().any(|e| e["action"] == "mailbox.deleted"
        && e["subject"] == id.as_str()
        && s(e, "actor").starts_with("api_key:")
        && e["client_address"] == "127.0.0.1"));
}

fn v1_mailbox_restricted_keys(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = &f.workspace_id;
    let mut http = f.server.client();
    let mine = create_mailbox(db, ws, "mine@example.com");
    let sibling = create_mailbox(db, ws, "sibling@example.com");

    let workspace_key = db.json(&[
        "apikey",
        "create",
        "--workspace",
        ws,
        "--name",
        "w",
        "--access",
        "read_write",
    ]);
    assert_eq!(workspace_key["mailbox_id"], Value::Null);
    let v = db.json(&[
        "apikey",
        "create",
        "--workspace",
        ws,
        "--name",
        "only-mine",
        "--access",
        "read_write",
        "--mailbox",
        &mine,
    ]);
    assert_eq!(v["mailbox_id"], mine.as_str());
    let key = s(&v, "key");
    let listed = db
        .json_lines(&["apikey", "list", "--workspace", ws])
        .into_iter()
        .find(|k| k["name"] == "only-mine")
        .expect("listed");
    assert_eq!(listed["mailbox_id"], mine.as_str());

    // It sees and reads only its mailbox.
    let list = http.bearer_get("/v1/mailboxes", &key);
    assert_eq!(list.status, 200, "{}", list.body);
    let ids: Vec<String> = list.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| s(m, "id"))
        .collect();
    assert_eq!(ids, std::slice::from_ref(&mine));
    assert_eq!(
        http.bearer_get(&format!("/v1/mailboxes/{mine}"), &key)
            .status,
        200
    );
    http.bearer_get(&format!("/v1/mailboxes/{sibling}"), &key)
        .assert_v1_error(404, "invalid_request_error", "not_found");

    // It never creates or deletes mailboxes, and nothing else is in its scope.
    let auth = format!("Bearer {key}");
    http.bearer_post_json("/v1/mailboxes", &key, r#"{"address":"new@example.com"}"#)
        .assert_v1_error(403, "permission_error", "insufficient_scope");
    http.send(
        "DELETE",
        &format!("/v1/mailboxes/{mine}"),
        &[("Authorization", &auth)],
        "",
    )
    .assert_v1_error(403, "permission_error", "insufficient_scope");
    for path in ["/v1/workspace", "/v1/tags", "/v1/forms"] {
        http.bearer_get(path, &key)
            .assert_v1_error(403, "permission_error", "insufficient_scope");
    }
    http.bearer_post_json("/v1/tags", &key, r#"{"name":"t"}"#)
        .assert_v1_error(403, "permission_error", "insufficient_scope");
    assert_eq!(db.count("mailboxes"), 2);

    // Deleting its mailbox revokes it: at once on this node, and for good.
    db.json(&["mailbox", "delete", &mine]);
    let r = http.bearer_get("/v1/mailboxes", &key);
    r.assert_v1_error(401, "authentication_error", "invalid_api_key");
    let listed = db
        .json_lines(&["apikey", "list", "--workspace", ws])
        .into_iter()
        .find(|k| k["name"] == "only-mine")
        .expect("listed");
    assert_eq!(listed["status"], "revoked");
    let w = s(&workspace_key, "key");
    assert_eq!(
        http.bearer_get("/v1/workspace", &w).status,
        200,
        "a workspace key is untouched"
    );
    let log = db.json_lines(&["audit", "list", "--workspace", ws]);
    assert!(log
        .iter()
        .any(|e| e["action"] == "api_key.revoked" && e["subject"] == listed["id"]));
}

// ---------------------------------------------------------------- settings

fn settings_mailboxes_tab(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = f.workspace_id.clone();
    let mut owner = f.owner();

    let page = mailboxes_page(&mut owner, &ws, None);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("aria-current=\"page\">Mailboxes</a>"));
    assert!(page.body.contains("No mailboxes yet."));
    let token = csrf(&mut owner, &ws);

    let r = owner.post_form(
        "/settings/mailboxes",
        &[
            ("csrf_token", &token),
            ("workspace_id", &ws),
            ("address", "Team@Example.com"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let mb = mailbox_of(&r.location());
    let before = counts(db);
    for (address, says) in [
        ("team@EXAMPLE.com", "already taken"),
        ("team", "invalid mailbox address"),
    ] {
        let r = owner.post_form(
            "/settings/mailboxes",
            &[
                ("csrf_token", &token),
                ("workspace_id", &ws),
                ("address", address),
            ],
        );
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains(says), "{}", r.body);
        assert!(
            r.body.contains(&format!("value=\"{}\"", address)),
            "what was typed is kept"
        );
    }
    assert_eq!(counts(db), before);

    // The mailbox: SMTP details (the issuer's host), and Create Auth Key.
    let page = mailboxes_page(&mut owner, &ws, Some(&mb));
    assert_eq!(page.status, 200, "{}", page.body);
    for text in [
        "Team@Example.com",
        "<code id=\"smtp-host\">127.0.0.1</code>",
        "587",
        "Create Auth Key",
        "your auth key",
    ] {
        assert!(page.body.contains(text), "{text} not on the page");
    }
    let r = owner.post_form(
        &format!("/settings/mailboxes/{mb}/auth-keys"),
        &[("csrf_token", &token), ("name", "Outreach Primary")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let key = shown_key(&r.body).expect("the key is shown");
    assert!(key.starts_with("kgm_"));
    assert_eq!(r.body.matches(&key).count(), 1, "shown once");
    assert!(r.body.contains("data-copy=\"new-key\""), "a copy button");
    let listed = auth_keys(db, &mb);
    assert_eq!(listed.len(), 1);
    let kid = s(&listed[0], "id");
    assert!(key.starts_with(&s(&listed[0], "prefix")));
    let page = mailboxes_page(&mut owner, &ws, Some(&mb));
    assert!(!page.body.contains(&key), "never shown again");
    assert!(page.body.contains(&f.owner_email), "the creator");

    let r = owner.post_form(
        &format!("/settings/mailboxes/{mb}/auth-keys"),
        &[("csrf_token", &token), ("name", "Outreach Primary")],
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("already exists"));

    // Disable, enable, rotate, delete (typed name).
    let act = |http: &mut Http, action: &str, extra: &[(&str, &str)]| {
        let mut form = vec![("csrf_token", token.as_str())];
        form.extend_from_slice(extra);
        http.post_form(
            &format!("/settings/mailbox-auth-keys/{kid}/{action}"),
            &form,
        )
    };
    assert_eq!(act(&mut owner, "disable", &[]).status, 303);
    assert_eq!(auth_key(db, &mb, &kid)["status"], "disabled");
    let again = act(&mut owner, "disable", &[]);
    assert_eq!(again.status, 400);
    assert!(again.body.contains("already disabled"));
    assert!(act(&mut owner, "rotate", &[])
        .body
        .contains("cannot be rotated"));
    assert_eq!(act(&mut owner, "enable", &[]).status, 303);
    assert_eq!(auth_key(db, &mb, &kid)["status"], "active");
    let r = act(&mut owner, "rotate", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let rotated = shown_key(&r.body).expect("the new secret");
    assert_ne!(rotated, key);
    let r = act(&mut owner, "delete", &[("confirm_name", "Outreach")]);
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("name exactly: Outreach Primary"),
        "{}",
        r.body
    );
    assert_eq!(auth_keys(db, &mb).len(), 1);
    assert_eq!(
        act(
            &mut owner,
            "delete",
            &[("confirm_name", "Outreach Primary")]
        )
        .status,
        303
    );
    assert!(auth_keys(db, &mb).is_empty());

    // The API key form offers the mailbox.
    let keys = owner.get(&format!("/settings/api-keys?workspace={ws}"));
    assert!(keys
        .body
        .contains(&format!("<option value=\"{mb}\">Team@Example.com</option>")));
    let r = owner.post_form(
        "/settings/api-keys",
        &[
            ("csrf_token", &token),
            ("workspace_id", &ws),
            ("name", "team-only"),
            ("access", "read_only"),
            ("expires", ""),
            ("mailbox_id", &mb),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let restricted = shown_key(&r.body).expect("the API key");
    let mut api = f.server.client();
    assert_eq!(
        api.bearer_get(&format!("/v1/mailboxes/{mb}"), &restricted)
            .status,
        200
    );
    api.bearer_get("/v1/workspace", &restricted)
        .assert_v1_error(403, "permission_error", "insufficient_scope");

    // Members, forged forms and other workspaces are refused; nothing changes.
    let (_, member_email) = f.add_user("member");
    let mut member = f.signed_in(&member_email);
    assert_eq!(mailboxes_page(&mut member, &ws, None).status, 403);
    let member_token =
        hidden(&mailboxes_page(&mut member, &ws, None).body, "csrf_token").expect("csrf");
    let before = counts(db);
    let r = member.post_form(
        "/settings/mailboxes",
        &[
            ("csrf_token", &member_token),
            ("workspace_id", &ws),
            ("address", "m@example.com"),
        ],
    );
    assert_eq!(r.status, 403);
    let r = owner.post_form(
        "/settings/mailboxes",
        &[
            ("csrf_token", "forged"),
            ("workspace_id", &ws),
            ("address", "f@example.com"),
        ],
    );
    assert_eq!(r.status, 403);
    let r = member.post_form(
        &format!("/settings/mailboxes/{mb}/delete"),
        &[
            ("csrf_token", &member_token),
            ("confirm_address", "Team@Example.com"),
        ],
    );
    assert_eq!(r.status, 403);
    assert_eq!(counts(db), before);

    // An unknown id tells nobody more than a known one: the session and the
    // CSRF token are checked first, and only a manager learns it is unknown.
    let unknown = uuid::Uuid::new_v4().to_string();
    let r = owner.post_form(
        &format!("/settings/mailboxes/{mb}/auth-keys"),
        &[("csrf_token", &token), ("name", "Probe")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let live = s(&auth_keys(db, &mb)[0], "id");
    let before = counts(db);
    for (known_path, unknown_path) in [
        (
            format!("/settings/mailboxes/{mb}/delete"),
            format!("/settings/mailboxes/{unknown}/delete"),
        ),
        (
            format!("/settings/mailbox-auth-keys/{live}/disable"),
            format!("/settings/mailbox-auth-keys/{unknown}/disable"),
        ),
    ] {
        let mut anonymous = f.server.client();
        let on_known = anonymous.post_form(&known_path, &[("csrf_token", "x")]);
        let on_unknown = anonymous.post_form(&unknown_path, &[("csrf_token", "x")]);
        assert_ne!(on_unknown.status, 404, "{unknown_path}");
        assert_eq!(on_unknown.status, on_known.status, "{unknown_path}");
        assert_eq!(on_unknown.header("location"), on_known.header("location"));
        let forged = owner.post_form(&unknown_path, &[("csrf_token", "forged")]);
        assert_eq!(forged.status, 403, "{unknown_path}");
        assert!(forged.body.contains("CSRF"), "{}", forged.body);
        let r = owner.post_form(&unknown_path, &[("csrf_token", &token)]);
        assert_eq!(r.status, 404, "{unknown_path}");
    }
    assert_eq!(counts(db), before);

    // Delete the mailbox (typed address); its restricted API key stops.
    let r = owner.post_form(
        &format!("/settings/mailboxes/{mb}/delete"),
        &[("csrf_token", &token), ("confirm_address", "team")],
    );
    assert_eq!(r.status, 400);
    assert_eq!(db.count("mailboxes"), 1);
    let r = owner.post_form(
        &format!("/settings/mailboxes/{mb}/delete"),
        &[
            ("csrf_token", &token),
            ("confirm_address", "Team@Example.com"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(db.count("mailboxes"), 0);
    api.bearer_get(&format!("/v1/mailboxes/{mb}"), &restricted)
        .assert_v1_error(401, "authentication_error", "invalid_api_key");
    let log = db.json_lines(&["audit", "list", "--workspace", &ws]);
    assert!(log.iter().any(|e| e["action"] == "mailbox.created"
        && e["actor"] == f.owner_id.as_str()
        && e["client_address"] == "127.0.0.1"));

    // A plan without API access: the page says so and creation is refused.
    db.json(&["workspace", "set-plan", &ws, "--plan", "free"]);
    let page = mailboxes_page(&mut owner, &ws, None);
    assert!(page.body.contains("Upgrade required"), "{}", page.body);
    let r = owner.post_form(
        "/settings/mailboxes",
        &[
            ("csrf_token", &token),
            ("workspace_id", &ws),
            ("address", "late@example.com"),
        ],
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("upgrade required"));
    assert_eq!(db.count("mailboxes"), 0);
}

// ---------------------------------------------------------------- SMTP

fn smtp_auth_through_postfix(b: Backend) {
    let (f, port) = fixture_with_sasl(b, &[]);
    let db = f.db();
    let ws = &f.workspace_id;
    let postfix = Postfix::start(sasl_addr(port));
    let smtp = postfix.smtp;
    let log = || postfix.maillog();
    let mb = create_mailbox(db, ws, "Sender@Example.test");
    let (k1_id, k1) = create_auth_key(db, &mb, "CRM");
    let (k2_id, k2) = create_auth_key(db, &mb, "Sequencer");
    let other = create_mailbox(db, ws, "other@example.test");
    let (_, other_key) = create_auth_key(db, &other, "CRM");
    let auth = |mech: Auth, user: &str, key: &str, from: &str| submit(smtp, mech, user, key, from);
    // The AUTH answer to a PLAIN login as the mailbox, sending as itself.
    let as_sender = |key: &str| {
        auth(
            Auth::Plain,
            "Sender@Example.test",
            key,
            "Sender@Example.test",
        )
        .code("AUTH")
    };

    // The right key: 235 and the message is accepted, whatever the username's case.
    let s = auth(
        Auth::Plain,
        "Sender@Example.test",
        &k1,
        "Sender@Example.test",
    );
    assert_eq!(s.code("AUTH"), Some(235), "{}\n{}", s.transcript, log());
    assert_eq!(s.code("DATA"), Some(250), "{}\n{}", s.transcript, log());
    let s = auth(
        Auth::Login,
        "sender@example.TEST",
        &k2,
        "sender@example.test",
    );
    assert_eq!(s.code("AUTH"), Some(235), "{}\n{}", s.transcript, log());
    assert_eq!(s.code("DATA"), Some(250), "{}\n{}", s.transcript, log());

    // Wrong keys: 535.
    let mut typo = k1.clone().into_bytes();
    typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    for (user, key) in [
        ("Sender@Example.test", typo.as_str()),
        ("Sender@Example.test", "not a key"),
        ("Sender@Example.test", other_key.as_str()),
        ("nobody@example.test", k1.as_str()),
    ] {
        let s = auth(Auth::Plain, user, key, user);
        assert_eq!(
            s.code("AUTH"),
            Some(535),
            "{user} {key}\n{}\n{}",
            s.transcript,
            log()
        );
    }

    // After a good login, MAIL FROM another address is refused.
    let s = auth(
        Auth::Plain,
        "Sender@Example.test",
        &k1,
        "other@example.test",
    );
    assert_eq!(s.code("AUTH"), Some(235), "{}", s.transcript);
    assert_eq!(s.code("MAIL"), Some(553), "{}\n{}", s.transcript, log());
    assert_eq!(s.code("DATA"), None);

    // Disabled: refused at the next authentication; the mailbox's other key works.
    db.json(&["authkey", "disable", &k1_id]);
    assert_eq!(as_sender(&k1), Some(535));
    assert_eq!(as_sender(&k2), Some(235));
    db.json(&["authkey", "enable", &k1_id]);
    assert_eq!(as_sender(&k1), Some(235));

    // Rotated away: the old secret fails, the new one works.
    let rotated = s_key(&db.json(&["authkey", "rotate", &k1_id]));
    assert_eq!(as_sender(&k1), Some(535));
    assert_eq!(as_sender(&rotated), Some(235));

    // Deleted: refused.
    db.json(&["authkey", "delete", &k1_id]);
    assert_eq!(as_sender(&rotated), Some(535));

    // Usage is counted (batched, written within about a second).
    assert!(
        eventually(Duration::from_secs(5), || {
            let k = auth_key(db, &mb, &k2_id);
            k["usage_count"].as_i64() == Some(2) && k["last_used_at"].is_string()
        }),
        "{:?}",
        auth_key(db, &mb, &k2_id)
    );

    // The mailbox deleted: its remaining key fails too.
    db.json(&["mailbox", "delete", &mb]);
    assert_eq!(as_sender(&k2), Some(535));
    assert_eq!(
        auth(
            Auth::Plain,
            "other@example.test",
            &other_key,
            "other@example.test"
        )
        .code("AUTH"),
        Some(235)
    );
}

fn s_key(v: &Value) -> String {
    s(v, "key")
}

/// A change made on one node is refused at the next authentication on another.
fn smtp_changes_reach_a_second_node(b: Backend) {
    let (f, port_a) = fixture_with_sasl(b, &[]);
    let db = f.db();
    let port_b = smtp_free_port();
    let bind_b = format!("127.0.0.1:{port_b}");
    let _node_b = Server::spawn(
        TestDb::reuse(db),
        free_port(),
        &[("KEYGATE_SASL_BIND", &bind_b)],
    );
    let via_a = Postfix::start(sasl_addr(port_a));
    let via_b = Postfix::start(sasl_addr(port_b));
    let mb = create_mailbox(db, &f.workspace_id, "team@example.test");
    let (kid, key) = create_auth_key(db, &mb, "CRM");
    let code = |p: &Postfix, key: &str| {
        submit(
            p.smtp,
            Auth::Plain,
            "team@example.test",
            key,
            "team@example.test",
        )
        .code("AUTH")
    };
    // Both nodes have verified (and cached) the key.
    assert_eq!(code(&via_a, &key), Some(235), "{}", via_a.maillog());
    assert_eq!(code(&via_b, &key), Some(235), "{}", via_b.maillog());

    // Disabled from the CLI (which waits for the nodes' revocation poll).
    db.json(&["authkey", "disable", &kid]);
    assert_eq!(code(&via_a, &key), Some(535));
    assert_eq!(code(&via_b, &key), Some(535));
    db.json(&["authkey", "enable", &kid]);
    assert_eq!(code(&via_b, &key), Some(235));

    // Disabled in node A's settings page: A at once, B within its 100 ms poll.
    let mut owner = f.owner();
    let token = csrf(&mut owner, &f.workspace_id);
    let r = owner.post_form(
        &format!("/settings/mailbox-auth-keys/{kid}/disable"),
        &[("csrf_token", &token)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(code(&via_a, &key), Some(535));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(code(&via_b, &key), Some(535));
}

/// Failures are limited per (mailbox, client address) and only failures: the
/// right key passes at once however many wrong ones came before it.
fn smtp_failures_are_limited_but_never_the_right_key(b: Backend) {
    let (f, port) = fixture_with_sasl(
        b,
        &[
            ("KEYGATE_RATE_LIMITS", "on"),
            ("KEYGATE_SMTP_FAILURE_LIMIT", "3"),
        ],
    );
    let db = f.db();
    let mb = create_mailbox(db, &f.workspace_id, "limited@example.test");
    let (_, key) = create_auth_key(db, &mb, "CRM");
    let user = "limited@example.test";
    let (ok, _) = sasl_auth(port, "192.0.2.1", user, &key);
    assert!(ok.starts_with("OK\t1\tuser=limited@example.test"), "{ok}");
    for _ in 0..3 {
        let (a, took) = sasl_auth(port, "192.0.2.1", user, "wrong");
        assert!(a.starts_with("FAIL\t1"), "{a}");
        assert!(took < Duration::from_millis(800), "{took:?}");
    }
    let (a, took) = sasl_auth(port, "192.0.2.1", user, "wrong");
    assert!(a.starts_with("FAIL\t1"), "{a}");
    assert!(
        took >= Duration::from_millis(900),
        "over the limit, failures wait: {took:?}"
    );
    let (a, took) = sasl_auth(port, "192.0.2.1", user, &key);
    assert!(a.starts_with("OK\t1"), "{a}");
    assert!(
        took < Duration::from_millis(800),
        "the right key is never slowed: {took:?}"
    );
    let (a, took) = sasl_auth(port, "192.0.2.2", user, "wrong");
    assert!(
        a.starts_with("FAIL\t1") && took < Duration::from_millis(800),
        "another address: {a} {took:?}"
    );
    let (a, took) = sasl_auth(port, "192.0.2.1", "else@example.test", "wrong");
    assert!(
        a.starts_with("FAIL\t1") && took < Duration::from_millis(800),
        "another mailbox: {a} {took:?}"
    );
}

/// A key that cannot be checked because the database is away is not called
/// wrong: the listener closes the connection unanswered (Postfix answers `454`,
/// try again), and the same key works once the database is back.
fn smtp_database_away_is_try_again_not_a_wrong_key(b: Backend) {
    if b == Backend::Sqlite {
        // An embedded database cannot go away under a running process the way a
        // database server can: the outage is exercised on PostgreSQL only.
        return;
    }
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let (f, port) = fixture_with_sasl(b, &[]);
    let db = f.db();
    let mb = create_mailbox(db, &f.workspace_id, "away@example.test");
    let (_, key) = create_auth_key(db, &mb, "CRM");
    let name = url::Url::parse(&db.url).expect("url").path()[1..].to_string();
    let mut admin = diesel::PgConnection::establish(&postgres_admin_url().expect("admin url"))
        .expect("connect as admin");
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid();"
        ))
        .expect("take the database away");
    let (answer, _) = sasl_auth(port, "192.0.2.9", "away@example.test", &key);
    assert_eq!(answer, "", "closed without an answer, not FAIL");
    admin
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .expect("bring the database back");
    assert!(
        eventually(Duration::from_secs(15), || {
            sasl_auth(port, "192.0.2.9", "away@example.test", &key)
                .0
                .starts_with("OK\t1\tuser=away@example.test")
        }),
        "{}",
        f.server.logs()
    );
}

/// `KEYGATE_SASL_BIND` is checked before serving (a bad value fails at once),
/// a unix socket exists while keygate serves and is gone once it stopped.
#[test]
fn sasl_bind_fails_fast_and_stops_with_the_server() {
    let db = TestDb::new(Backend::Sqlite);
    let started = Instant::now();
    let out = std::process::Command::new(BIN)
        .arg("serve")
        .env("KEYGATE_DATABASE_URL", &db.url)
        .env("KEYGATE_BIND", format!("127.0.0.1:{}", free_port()))
        .env("KEYGATE_SASL_BIND", "smtp.example.com:12345")
        .output()
        .expect("run keygate");
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("KEYGATE_SASL_BIND"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));

    let dir = std::env::temp_dir().join(format!("keygate-sasl-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let socket = dir.join("auth");
    let bind = format!("unix:{}", socket.display());
    let mut server = Server::start_with(TestDb::reuse(&db), &[("KEYGATE_SASL_BIND", &bind)]);
    assert!(
        eventually(Duration::from_secs(5), || socket.exists()),
        "{}",
        server.logs()
    );
    let mut conn = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
    conn.write_all(b"VERSION\t1\t0\nCPID\t1\n").expect("write");
    let mut first = String::new();
    BufReader::new(conn).read_line(&mut first).expect("read");
    assert!(first.starts_with("VERSION\t1\t"), "{first}");
    assert!(server.terminate().success());
    assert!(!socket.exists(), "the socket is removed on shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}

both_backends!(
    mailbox_cli_lifecycle,
    mailbox_cli_refusals_change_nothing,
    v1_mailboxes,
    v1_mailbox_restricted_keys,
    settings_mailboxes_tab,
    smtp_auth_through_postfix,
    smtp_changes_reach_a_second_node,
    smtp_failures_are_limited_but_never_the_right_key,
    smtp_database_away_is_try_again_not_a_wrong_key,
);
