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

both_backends!(mailboxes_only_in_verified_domains);
