//! Events delivered to a receiver over loopback HTTPS (a throwaway CA), each
//! signature verified with the Standard Webhooks library (`standardwebhooks`),
//! not with keygate's code: every change's event, retries with the same id,
//! nothing lost across receiver downtime and a `kill -9`, two nodes.

use crate::https_server::{HttpsServer, Recorded, Reply};
use crate::support::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

const HOOK: &str = "/hook";

/// A keygate node that may deliver to `receiver`.
fn node(db: TestDb, receiver: &HttpsServer, extra: &[(&str, &str)]) -> Server {
    let ca = receiver.ca_file().display().to_string();
    let mut env = vec![
        ("KEYGATE_OUTBOUND_ALLOWED_HOSTS", "127.0.0.1"),
        ("KEYGATE_OUTBOUND_CA_FILE", ca.as_str()),
    ];
    env.extend_from_slice(extra);
    Server::start_with(db, &env)
}

/// Creates an endpoint for `events`; its id and secret.
fn endpoint(admin: &mut Admin, receiver: &HttpsServer, events: Value) -> (String, String) {
    let r = admin.post(
        "/webhooks",
        &json!({"url": receiver.url(HOOK), "events": events}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    let secret = s(&v, "secret");
    assert!(secret.starts_with("whsec_"), "{secret}");
    (s(&v, "id"), secret)
}

/// Verifies one delivery with the library; its body.
fn verified(secret: &str, request: &Recorded) -> Value {
    let mut headers = hyper::header::HeaderMap::new();
    for (k, v) in &request.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            hyper::header::HeaderValue::from_str(v),
        ) {
            headers.append(name, value);
        }
    }
    let hook = standardwebhooks::Webhook::new(secret).expect("a Standard Webhooks secret");
    hook.verify(&request.body, &headers)
        .unwrap_or_else(|e| panic!("signature refused: {e:?}"));
    let body: Value = serde_json::from_slice(&request.body).expect("a JSON body");
    assert_eq!(request.header("webhook-id"), body["id"].as_str());
    body
}

fn wait_for(receiver: &HttpsServer, n: usize, secs: u64) -> Vec<Recorded> {
    let ok = eventually(Duration::from_secs(secs), || {
        receiver.requests(HOOK).len() >= n
    });
    let got = receiver.requests(HOOK);
    assert!(ok, "expected {n} deliveries, got {}", got.len());
    got
}

fn every_change_is_delivered_signed_with_its_actor_and_no_secret(b: Backend) {
    let receiver = HttpsServer::start();
    receiver.set(HOOK, Reply::status(200));
    let server = node(TestDb::new(b), &receiver, &[]);
    let mut admin = Admin::new(&server);
    let (id, secret) = endpoint(&mut admin, &receiver, json!([]));
    let ws = s(&admin.workspace("Hooked"), "id");
    let ada = s(&admin.person("ada@example.com"), "id");
    admin.send(
        "PUT",
        &format!("/workspaces/{ws}/members/{ada}"),
        &json!({"role": "owner"}),
        &[],
    );
    let key = server.db.create_api_key(&ws, "crm", "read_only");
    server.db.json(&["apikey", "revoke", &s(&key, "id")]);
    let client = server
        .db
        .create_client("Hook App", "https://app.example.com/cb");

    let got = wait_for(&receiver, 4, 10);
    let bodies: Vec<Value> = got.iter().map(|r| verified(&secret, r)).collect();
    let of = |t: &str| {
        bodies
            .iter()
            .find(|b| b["type"] == t)
            .cloned()
            .unwrap_or_default()
    };
    let mut types: Vec<&str> = bodies.iter().filter_map(|b| b["type"].as_str()).collect();
    types.sort();
    assert_eq!(
        types,
        [
            "api_key.created",
            "api_key.revoked",
            "client.registered",
            "member.added"
        ]
    );
    let registered = of("client.registered");
    assert_eq!(registered["workspace_id"], Value::Null);
    assert_eq!(registered["data"]["client"]["id"], client["client_id"]);
    assert_eq!(registered["data"]["client"]["name"], "Hook App");
    assert_eq!(registered["data"]["actor"]["kind"], "cli");
    let added = &of("member.added");
    assert_eq!(added["workspace_id"], ws.as_str());
    assert_eq!(
        added["data"]["person"],
        json!({"id": ada, "email": "ada@example.com"})
    );
    assert_eq!(added["data"]["role"], "owner");
    assert_eq!(added["data"]["actor"]["kind"], "admin_token");
    assert_eq!(added["data"]["actor"]["name"], "product-backend");
    let created = of("api_key.created");
    assert_eq!(created["data"]["api_key"]["name"], "crm");
    assert_eq!(
        created["data"]["actor"],
        json!({"kind": "cli", "id": "cli", "name": "keygate CLI"})
    );
    for (body, request) in bodies.iter().zip(&got) {
        assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        let raw = String::from_utf8_lossy(&request.body);
        for secret_like in ["kgk_", "kga_", "whsec_", "hash"] {
            assert!(!raw.contains(secret_like), "{raw}");
        }
    }
    assert!(eventually(Duration::from_secs(3), || {
        let d = admin.get(&format!("/webhooks/{id}/deliveries")).json();
        d["data"][0]["status"] == "delivered"
    }));
    let deliveries = admin.get(&format!("/webhooks/{id}/deliveries")).json();
    for d in deliveries["data"].as_array().unwrap() {
        assert_eq!(
            (d["status"].as_str(), d["attempts"].as_i64()),
            (Some("delivered"), Some(1))
        );
        assert_eq!(d["last_status_code"], 200);
    }

    // The CLI shows the same endpoint and deliveries, and deletes it.
    let listed = server.db.json_lines(&["webhook", "list"]);
    assert_eq!(
        (listed[0]["id"].as_str(), listed[0]["events"].clone()),
        (Some(id.as_str()), json!(["*"]))
    );
    assert!(listed[0].get("secret").is_none());
    let lines = server.db.json_lines(&["webhook", "deliveries", &id]);
    assert_eq!(lines.len(), 4);
    assert!(lines.iter().all(|l| l["status"] == "delivered"));
    assert_eq!(server.db.json(&["webhook", "delete", &id])["deleted"], true);
    assert_eq!(server.db.count("webhook_deliveries"), 0);
}

fn a_failed_delivery_is_retried_with_the_same_id_and_a_fresh_signature(b: Backend) {
    let receiver = HttpsServer::start();
    receiver.set(HOOK, Reply::status(500));
    let server = node(TestDb::new(b), &receiver, &[]);
    let mut admin = Admin::new(&server);
    let (id, secret) = endpoint(&mut admin, &receiver, json!(["api_key.created"]));
    let ws = s(&admin.workspace("Retry"), "id");
    server.db.create_api_key(&ws, "k", "read_only");
    let first = wait_for(&receiver, 1, 10);
    // The outcome is written once the answer is read.
    assert!(eventually(Duration::from_secs(3), || {
        let d = admin.get(&format!("/webhooks/{id}/deliveries")).json();
        let d = &d["data"][0];
        d["status"] == "pending" && d["attempts"] == 1 && d["last_status_code"] == 500
    }));
    receiver.set(HOOK, Reply::status(204));
    // The first retry comes about 5 s later.
    let both = wait_for(&receiver, 2, 15);
    let (a, b2) = (verified(&secret, &both[0]), verified(&secret, &both[1]));
    assert_eq!(a["id"], b2["id"], "the same webhook-id");
    assert_eq!(a, b2, "the same body");
    assert_eq!(first.len(), 1);
    assert!(eventually(Duration::from_secs(3), || {
        let d = admin.get(&format!("/webhooks/{id}/deliveries")).json();
        d["data"][0]["status"] == "delivered" && d["data"][0]["attempts"] == 2
    }));
    // Only the types asked for are sent.
    server.db.json(&[
        "apikey",
        "revoke",
        &server.db.texts("SELECT id AS v FROM api_keys")[0],
    ]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(receiver.requests(HOOK).len(), 2);
}

fn nothing_is_lost_across_receiver_downtime_and_a_kill(b: Backend) {
    let receiver = HttpsServer::start();
    receiver.set(HOOK, Reply::status(503));
    let db = TestDb::new(b);
    let server = node(TestDb::reuse(&db), &receiver, &[]);
    let mut admin = Admin::new(&server);
    let (_, secret) = endpoint(&mut admin, &receiver, json!(["api_key.created"]));
    let ws = s(&admin.workspace("Durable"), "id");
    drop(admin);
    drop(server); // kill -9: nothing in memory survives
    for i in 0..5 {
        db.create_api_key(&ws, &format!("k{i}"), "read_only");
    }
    let server = node(TestDb::reuse(&db), &receiver, &[]);
    wait_for(&receiver, 5, 10); // the receiver is down: five failures
    receiver.set(HOOK, Reply::status(200));
    let all = wait_for(&receiver, 10, 20);
    let delivered: HashSet<String> = all[5..]
        .iter()
        .map(|r| s(&verified(&secret, r), "id"))
        .collect();
    let failed: HashSet<String> = all[..5]
        .iter()
        .map(|r| s(&verified(&secret, r), "id"))
        .collect();
    assert_eq!(delivered.len(), 5);
    assert_eq!(delivered, failed, "each event retried under its own id");
    drop(server);
}

fn two_nodes_deliver_each_event_once(b: Backend) {
    if b == Backend::Sqlite {
        return; // SQLite has one writer; this is PostgreSQL's SKIP LOCKED
    }
    let receiver = HttpsServer::start();
    receiver.set(HOOK, Reply::status(200).delay(Duration::from_millis(200)));
    let one = node(TestDb::new(b), &receiver, &[]);
    let two = node(TestDb::reuse(&one.db), &receiver, &[]);
    let mut admin = Admin::new(&one);
    let (_, secret) = endpoint(&mut admin, &receiver, json!(["member.added"]));
    let ws = s(&admin.workspace("Both"), "id");
    let mut other = Admin::with_token(&two, admin.token.clone());
    for i in 0..20 {
        let who = s(&admin.person(&format!("p{i}@example.com")), "id");
        let via = if i % 2 == 0 { &mut admin } else { &mut other };
        let r = via.send(
            "PUT",
            &format!("/workspaces/{ws}/members/{who}"),
            &json!({"role": "member"}),
            &[],
        );
        assert_eq!(r.status, 201);
    }
    let got = wait_for(&receiver, 20, 20);
    std::thread::sleep(Duration::from_secs(2));
    let got_after = receiver.requests(HOOK);
    assert_eq!(got_after.len(), 20, "no attempt was sent twice");
    let ids: HashSet<String> = got.iter().map(|r| s(&verified(&secret, r), "id")).collect();
    assert_eq!(ids.len(), 20);
}

fn an_expiring_key_is_announced_once(b: Backend) {
    let receiver = HttpsServer::start();
    receiver.set(HOOK, Reply::status(200));
    let server = node(
        TestDb::new(b),
        &receiver,
        &[("KEYGATE_HOUSEKEEPING_SECS", "1")],
    );
    let mut admin = Admin::new(&server);
    let (_, secret) = endpoint(&mut admin, &receiver, json!(["api_key.expiring"]));
    let ws = s(&admin.workspace("Soon"), "id");
    let day = (chrono::Utc::now() + chrono::Duration::days(3))
        .format("%Y-%m-%d")
        .to_string();
    let later = (chrono::Utc::now() + chrono::Duration::days(60))
        .format("%Y-%m-%d")
        .to_string();
    let key = server
        .db
        .create_api_key_expiring(&ws, "soon", "read_only", &day);
    server
        .db
        .create_api_key_expiring(&ws, "later", "read_only", &later);
    let got = wait_for(&receiver, 1, 10);
    let body = verified(&secret, &got[0]);
    assert_eq!(body["type"], "api_key.expiring");
    assert_eq!(body["data"]["api_key"]["id"], key["id"]);
    assert_eq!(body["data"]["actor"]["kind"], "system");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(receiver.requests(HOOK).len(), 1, "once per key");
}

fn the_cli_refuses_urls_it_may_not_reach(b: Backend) {
    let db = TestDb::new(b);
    for (url, says) in [
        ("http://example.com/hook", "https"),
        ("https://127.0.0.1:9/hook", "special-use"),
        ("https://[::1]/hook", "special-use"),
        ("https://169.254.169.254/latest", "special-use"),
        ("not a url", "not a URL"),
    ] {
        db.cli(&["webhook", "create", "--url", url])
            .assert_refused(says);
    }
    db.cli(&[
        "webhook",
        "create",
        "--url",
        "https://example.com/",
        "--event",
        "nope",
    ])
    .assert_refused("unknown event type");
    assert_eq!(db.count("webhook_endpoints"), 0);
}

fn apps_and_mailbox_auth_keys_send_their_events(b: Backend) {
    let receiver = HttpsServer::start();
    receiver.set(HOOK, Reply::status(200));
    let f = Fixture::with_server(node(TestDb::new(b), &receiver, &[]));
    let mut admin = Admin::new(&f.server);
    let (_, secret) = endpoint(
        &mut admin,
        &receiver,
        json!([
            "authorization.created",
            "authorization.revoked",
            "mailbox_auth_key.created"
        ]),
    );
    f.tokens("workspace:read");
    let app = s(&f.apps()[0], "id");
    f.db().json(&["apps", "revoke", &app]);
    let mailbox = f.db().json(&[
        "mailbox",
        "create",
        "--workspace",
        &f.workspace_id,
        "--address",
        "sales@example.com",
    ]);
    f.db().json(&[
        "authkey",
        "create",
        "--mailbox",
        &s(&mailbox, "id"),
        "--name",
        "CRM",
    ]);
    let got = wait_for(&receiver, 3, 10);
    let bodies: Vec<Value> = got.iter().map(|r| verified(&secret, r)).collect();
    let of = |t: &str| {
        bodies
            .iter()
            .find(|b| b["type"] == t)
            .cloned()
            .unwrap_or_default()
    };
    let created = of("authorization.created");
    assert_eq!(
        created["data"]["authorization"],
        json!({"id": app, "app_name": APP_NAME})
    );
    assert_eq!(created["data"]["actor"]["kind"], "person");
    assert_eq!(created["data"]["actor"]["name"], f.owner_email.as_str());
    assert_eq!(of("authorization.revoked")["data"]["actor"]["kind"], "cli");
    assert_eq!(
        of("mailbox_auth_key.created")["data"]["mailbox_auth_key"]["name"],
        "CRM (sales@example.com)"
    );
    for r in &got {
        let raw = String::from_utf8_lossy(&r.body);
        assert!(!raw.contains("kgm_") && !raw.contains("eyJ"), "{raw}");
    }
}

both_backends!(
    apps_and_mailbox_auth_keys_send_their_events,
    every_change_is_delivered_signed_with_its_actor_and_no_secret,
    a_failed_delivery_is_retried_with_the_same_id_and_a_fresh_signature,
    nothing_is_lost_across_receiver_downtime_and_a_kill,
    two_nodes_deliver_each_event_once,
    an_expiring_key_is_announced_once,
    the_cli_refuses_urls_it_may_not_reach,
);
