//! SMTP logins through the real Postfix: refused for keys of a failed or
//! removed domain, from outside a key's address allowlist, after its last
//! day; a failed domain that verifies again works again.

use super::*;
use crate::postfix::{free_port as smtp_free_port, submit, Auth, Postfix};
use std::net::SocketAddr;

fn smtp_follows_domains_allowlists_and_expiry(b: Backend) {
    let mut dns = Dnsmasq::start(&[]);
    let port = smtp_free_port();
    let bind = format!("127.0.0.1:{port}");
    let schedule = [
        ("KEYGATE_SASL_BIND", bind.as_str()),
        ("KEYGATE_DOMAIN_RECHECK_SECS", "1"),
        ("KEYGATE_DOMAIN_FAIL_AFTER_SECS", "2"),
    ];
    let f = server_with_dns(b, &dns.server(), &schedule);
    let db = f.db();
    let ws = &f.workspace_id;
    let d = add(db, ws, "mail.test");
    publish(&mut dns, &[record(&d)]);
    assert_eq!(verify_cli(db, &dns.server(), &s(&d, "id")).code, 0);
    let m = s(
        &db.json(&[
            "mailbox",
            "create",
            "--workspace",
            ws,
            "--address",
            "team@mail.test",
        ]),
        "id",
    );
    let key = |name: &str, extra: &[&str]| {
        let mut args = vec!["authkey", "create", "--mailbox", m.as_str(), "--name", name];
        args.extend_from_slice(extra);
        db.json(&args)
    };
    let plain = s(&key("plain", &[]), "key");
    let here = s(
        &key(
            "here",
            &["--allow-ip", "127.0.0.0/8", "--allow-ip", "2001:db8::/32"],
        ),
        "key",
    );
    let elsewhere_key = key("elsewhere", &["--allow-ip", "192.0.2.0/24"]);
    let elsewhere = s(&elsewhere_key, "key");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let expired = key("expired", &["--expires", &today]);
    // The last day passed (as time would): refused from its first login.
    db.execute(&format!(
        "UPDATE mailbox_auth_keys SET expires_at = 1000 WHERE id = '{}'",
        s(&expired, "id")
    ));
    db.cli(&[
        "authkey",
        "create",
        "--mailbox",
        &m,
        "--name",
        "x",
        "--expires",
        "2001-01-01",
    ])
    .assert_refused("in the past");
    db.cli(&[
        "authkey",
        "create",
        "--mailbox",
        &m,
        "--name",
        "x",
        "--allow-ip",
        "10.0.0.1/8",
    ])
    .assert_refused("host bits");

    let listed_keys = db.json_lines(&["authkey", "list", "--mailbox", &m]);
    let here_row = listed_keys
        .iter()
        .find(|k| k["name"] == "here")
        .expect("here");
    assert_eq!(
        here_row["allowed_ips"],
        serde_json::json!(["127.0.0.0/8", "2001:db8::/32"])
    );
    assert!(here_row["expires_at"].is_null());
    let plain_row = listed_keys
        .iter()
        .find(|k| k["name"] == "plain")
        .expect("plain");
    assert!(plain_row["allowed_ips"].is_null());

    let postfix = Postfix::start(SocketAddr::from(([127, 0, 0, 1], port)));
    let login = |k: &str| {
        submit(
            postfix.smtp,
            Auth::Plain,
            "team@mail.test",
            k,
            "team@mail.test",
        )
    };
    let code = |k: &str| login(k).code("AUTH");
    assert_eq!(code(&plain), Some(235), "{}", postfix.maillog());
    assert_eq!(code(&here), Some(235));
    assert_eq!(code(&elsewhere), Some(535));
    assert_eq!(code(&s(&expired, "key")), Some(535));

    // The allowlist edited in the settings page: a bad one is refused and
    // changes nothing; a good one applies from the next login.
    let mut owner = f.owner();
    let page = owner.get(&format!("/settings/mailboxes?workspace={ws}&mailbox={m}"));
    assert!(page.body.contains("192.0.2.0/24"), "{}", page.body);
    let token = hidden(&page.body, "csrf_token").expect("csrf");
    let path = format!(
        "/settings/mailbox-auth-keys/{}/restrict",
        s(&elsewhere_key, "id")
    );
    let r = owner.post_form(
        &path,
        &[
            ("csrf_token", &token),
            ("allowed_ips", "nope"),
            ("expires", ""),
        ],
    );
    assert!(
        flash_error(&r.body).is_some_and(|e| e.contains("not an IP address")),
        "{}",
        r.body
    );
    assert_eq!(code(&elsewhere), Some(535));
    let ips = [
        ("csrf_token", token.as_str()),
        ("allowed_ips", "192.0.2.0/24, 127.0.0.1"),
        ("expires", ""),
    ];
    assert_eq!(owner.post_form(&path, &ips).status, 303);
    assert_eq!(code(&elsewhere), Some(235));

    // The record gone: the background check fails the domain, and its keys stop.
    publish(&mut dns, &[]);
    let failed = eventually(Duration::from_secs(20), || {
        listed(db, ws, "mail.test")["status"] == "failed"
    });
    assert!(failed, "{}", f.server.logs());
    assert!(eventually(Duration::from_secs(5), || code(&plain) == Some(535)));
    let mut http = f.server.client();
    let ro = f.api_key("read_only");
    let shown = http.bearer_get("/v1/domains", &ro).json();
    assert_eq!(shown["data"][0]["status"], "failed");
    // Back: verified again by the background check, and the keys work.
    publish(&mut dns, &[record(&d)]);
    assert!(eventually(Duration::from_secs(20), || {
        listed(db, ws, "mail.test")["status"] == "verified"
    }));
    assert!(eventually(Duration::from_secs(5), || code(&plain) == Some(235)));
    let log = actions_on(db, ws, &s(&d, "id"));
    assert_eq!(
        &log[..3],
        ["domain.verified", "domain.failed", "domain.verified"],
        "{log:?}"
    );

    // The domain removed: its mailbox goes, and so do its keys.
    db.json(&["domain", "remove", &s(&d, "id")]);
    assert_eq!(code(&plain), Some(535));
    assert_eq!(code(&here), Some(535));
}

both_backends!(smtp_follows_domains_allowlists_and_expiry);
