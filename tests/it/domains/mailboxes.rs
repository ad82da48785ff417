//! Mailboxes only in the workspace's verified domains: the same refusal for
//! an address outside them and one taken in another workspace, on the CLI,
//! `/v1` and the settings page; removing a domain deletes its mailboxes.

use super::*;

/// `text` with `address` written as `ADDRESS`.
fn apart_from(text: &str, address: &str) -> String {
    text.replace(address, "ADDRESS")
}

fn mailboxes_only_in_verified_domains(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = &f.workspace_id;
    let other = db.create_workspace("Other");
    db.verified_domain(ws, "mine.test");
    db.verified_domain(&other, "theirs.test");
    add(db, ws, "pending.test");
    db.json(&[
        "mailbox",
        "create",
        "--workspace",
        &other,
        "--address",
        "taken@theirs.test",
    ]);
    // A domain the other workspace let lapse (failed), now verified here: its
    // old mailbox's address is still taken there.
    db.verified_domain(&other, "lapsed.test");
    db.json(&[
        "mailbox",
        "create",
        "--workspace",
        &other,
        "--address",
        "kept@lapsed.test",
    ]);
    db.execute("UPDATE sending_domains SET status = 'failed' WHERE domain = 'lapsed.test'");
    db.verified_domain(ws, "lapsed.test");
    let before = (db.count("mailboxes"), db.count("audit_events"));

    // The CLI: one line, the same apart from the address.
    let cli = |address: &str| {
        let out = db.cli(&["mailbox", "create", "--workspace", ws, "--address", address]);
        out.assert_refused("not in a domain this workspace has verified");
        apart_from(&out.stderr, address)
    };
    let outside = [
        "a@nowhere.test",
        "b@pending.test",
        "taken@theirs.test",
        "Taken@THEIRS.test",
        "kept@lapsed.test",
        "KEPT@lapsed.test",
    ];
    let said: Vec<String> = outside.iter().map(|a| cli(a)).collect();
    assert!(said.iter().all(|l| l == &said[0]), "{said:?}");

    // /v1: 400 domain_not_verified, the bodies the same apart from the address.
    let mut http = f.server.client();
    let rw = f.api_key("read_write");
    let bodies: Vec<String> = outside
        .iter()
        .map(|a| {
            let r =
                http.bearer_post_json("/v1/mailboxes", &rw, &format!("{{\"address\":\"{a}\"}}"));
            r.assert_v1_error(400, "invalid_request_error", "domain_not_verified");
            apart_from(&r.body, a)
        })
        .collect();
    assert!(bodies.iter().all(|b| b == &bodies[0]), "{bodies:?}");

    // The settings page: the same error, apart from the address.
    let mut owner = f.owner();
    let token = csrf(&mut owner, ws);
    let shown: Vec<String> = outside
        .iter()
        .map(|a| {
            let r = owner.post_form(
                "/settings/mailboxes",
                &[("csrf_token", &token), ("workspace_id", ws), ("address", a)],
            );
            apart_from(&flash_error(&r.body).expect("an error"), a)
        })
        .collect();
    assert!(shown.iter().all(|s| s == &shown[0]), "{shown:?}");
    assert!(shown[0].contains("not in a domain"), "{}", shown[0]);
    assert_eq!(
        (db.count("mailboxes"), db.count("audit_events")),
        (before.0, before.1 + 1)
    );

    // In a verified domain: created; taken in the same workspace: said plainly.
    let m = db.json(&[
        "mailbox",
        "create",
        "--workspace",
        ws,
        "--address",
        "Sales@Mine.test",
    ]);
    db.cli(&[
        "mailbox",
        "create",
        "--workspace",
        ws,
        "--address",
        "sales@mine.TEST",
    ])
    .assert_refused("already taken");
    let key = db.json(&[
        "authkey",
        "create",
        "--mailbox",
        &s(&m, "id"),
        "--name",
        "CRM",
    ]);
    // Domains are the workspace's: a key restricted to one mailbox sees none.
    let restricted = db.json(&[
        "apikey",
        "create",
        "--workspace",
        ws,
        "--name",
        "one",
        "--access",
        "read_write",
        "--mailbox",
        &s(&m, "id"),
    ]);
    http.bearer_get("/v1/domains", &s(&restricted, "key"))
        .assert_v1_error(403, "permission_error", "insufficient_scope");

    // Removing the domain deletes its mailboxes (and their keys) as `mailbox delete` does.
    let domain = listed(db, ws, "mine.test");
    let gone = db.json(&["domain", "remove", &s(&domain, "id")]);
    assert_eq!(gone["removed"], true);
    let left = db.json_lines(&["mailbox", "list", "--workspace", ws]);
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(db.count("mailbox_auth_keys"), 0);
    let log = actions_on(db, ws, &s(&m, "id"));
    assert_eq!(log, ["mailbox.deleted", "mailbox.created"]);
    assert_eq!(
        actions_on(db, ws, &s(&key, "id"))[0],
        "mailbox_auth_key.deleted"
    );
    assert_eq!(actions_on(db, ws, &s(&domain, "id"))[0], "domain.removed");
    // The other workspace's mailbox is untouched.
    assert_eq!(
        db.json_lines(&["mailbox", "list", "--workspace", &other])
            .len(),
        2
    );
}

/// After the upgrade, a domain two workspaces' mailboxes shared is pending in
/// both (the migration's data step, recreated here): the start says so in the
/// log, both keep sending until one verifies it by DNS, then only that one.
fn the_upgrade_keeps_shared_domains_sending_until_one_verifies(b: Backend) {
    let mut dns = Dnsmasq::start(&[]);
    let db = TestDb::new(b);
    let (one, two) = (db.create_workspace("One"), db.create_workspace("Two"));
    let mut keys = Vec::new();
    for (ws, address) in [(&one, "a@shared.test"), (&two, "b@shared.test")] {
        db.verified_domain(ws, "shared.test");
        let m = db.json(&["mailbox", "create", "--workspace", ws, "--address", address]);
        let k = db.json(&[
            "authkey",
            "create",
            "--mailbox",
            &s(&m, "id"),
            "--name",
            "CRM",
        ]);
        keys.push((address, s(&k, "key")));
        db.execute(&format!(
            "UPDATE sending_domains SET status = 'pending', by_operator = FALSE, \
             verified_at = NULL, created_by = 'upgrade' WHERE workspace_id = '{ws}'"
        ));
    }
    let port = crate::postfix::free_port();
    let bind = format!("127.0.0.1:{port}");
    let env = [
        ("KEYGATE_SASL_BIND", bind.as_str()),
        ("KEYGATE_DNS_SERVER", &dns.server()),
    ];
    let server = Server::start_with(db, &env);
    let logs = server.logs();
    assert!(
        logs.contains("sending domain shared.test needs attention"),
        "{logs}"
    );
    let login = |(address, key): &(&str, String)| {
        crate::mailboxes::smtp::sasl_auth(port, "192.0.2.1", address, key).0
    };
    assert!(
        keys.iter().all(|k| login(k).starts_with("OK")),
        "both keep sending"
    );

    // One verifies it by DNS: its mailbox sends, the other's is refused.
    let db = &server.db;
    let theirs = listed(db, &one, "shared.test");
    let token = db
        .text(&format!(
            "SELECT token AS v FROM sending_domains WHERE id = '{}'",
            s(&theirs, "id")
        ))
        .expect("token");
    let name = "_keygate-challenge.shared.test".to_string();
    publish(&mut dns, &[(name, format!("keygate-verification={token}"))]);
    assert_eq!(verify_cli(db, &dns.server(), &s(&theirs, "id")).code, 0);
    assert!(login(&keys[0]).starts_with("OK"));
    assert!(login(&keys[1]).starts_with("FAIL"), "{}", login(&keys[1]));
}

both_backends!(
    mailboxes_only_in_verified_domains,
    the_upgrade_keeps_shared_domains_sending_until_one_verifies,
);
