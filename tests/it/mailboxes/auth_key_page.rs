//! The page of one mailbox auth key: what it shows, the edit of its
//! restrictions without rotating it (refusals keep what was typed and change
//! nothing), and who may see it.

use super::*;

fn new_key(f: &Fixture, address: &str, name: &str) -> (String, String) {
    let db = f.db();
    let mb = db.json(&[
        "mailbox",
        "create",
        "--workspace",
        &f.workspace_id,
        "--address",
        address,
    ]);
    let mailbox_id = mb["id"].as_str().expect("mailbox id").to_string();
    let key = db.json(&[
        "authkey",
        "create",
        "--mailbox",
        &mailbox_id,
        "--name",
        name,
    ]);
    (key["id"].as_str().expect("id").to_string(), mailbox_id)
}

fn restrictions(db: &TestDb, id: &str) -> (String, String) {
    let v = |col: &str| {
        db.text(&format!(
            "SELECT COALESCE(CAST({col} AS TEXT), '') AS v FROM mailbox_auth_keys WHERE id = '{id}'"
        ))
        .expect("the key's row")
    };
    (v("allowed_ips"), v("expires_at"))
}

fn auth_key_page_shows_and_restricts(b: Backend) {
    let f = Fixture::new(b);
    f.db().verified_domain(&f.workspace_id, "example.com");
    let db = f.db();
    let (id, mailbox_id) = new_key(&f, "news@example.com", "Newsletter tool");
    let mut owner = f.owner();
    let list = owner.get(&format!(
        "/settings/mailboxes?workspace={}&mailbox={mailbox_id}",
        f.workspace_id
    ));
    assert!(list
        .body
        .contains(&format!("href=\"/settings/mailbox-auth-keys/{id}\"")));
    let page = owner.get(&format!("/settings/mailbox-auth-keys/{id}"));
    assert_eq!(page.status, 200, "{}", page.body);
    for needed in [
        "Newsletter tool",
        "news@example.com",
        "Any address",
        "Never expires",
        "never used",
        "keygate CLI",
        "Mailbox auth key created",
        "class=\"usage-chart\"",
        "data-copy=\"smtp-username\"",
    ] {
        assert!(page.body.contains(needed), "the page lacks {needed:?}");
    }
    let csrf = hidden(&page.body, "csrf_token").expect("csrf");
    let post = |http: &mut Http, ips: &str, expires: &str, token: &str| {
        http.post_form(
            &format!("/settings/mailbox-auth-keys/{id}"),
            &[
                ("csrf_token", token),
                ("allowed_ips", ips),
                ("expires", expires),
            ],
        )
    };
    let last_day = (chrono::Utc::now().date_naive() + chrono::Duration::days(20))
        .format("%Y-%m-%d")
        .to_string();
    let r = post(&mut owner, "192.0.2.0/24, 2001:db8::/32", &last_day, &csrf);
    assert_eq!(r.status, 303, "{}", r.body);
    let saved = restrictions(db, &id);
    assert!(saved.0.contains("192.0.2.0/24") && saved.0.contains("2001:db8::/32"));
    assert!(!saved.1.is_empty());
    let page = owner.get(&r.location());
    assert!(page.body.contains("Restrictions saved"), "{}", page.body);
    assert!(page.body.contains(&format!("End of {last_day}")));

    // Refusals: the typed values stay, nothing changes.
    let before = restrictions(db, &id);
    for (ips, expires, says) in [
        ("10.0.0.0/40", "", "10.0.0.0/40"),
        ("", "2001-01-01", "past"),
        ("", "tomorrow", "YYYY-MM-DD"),
    ] {
        let r = post(&mut owner, ips, expires, &csrf);
        assert_eq!(r.status, 400, "{ips} {expires}: {}", r.body);
        assert!(r.body.contains("id=\"edit-error\""), "{}", r.body);
        assert!(r.body.contains(says), "{ips} {expires}: no {says:?}");
        assert_eq!(restrictions(db, &id), before);
    }
    let r = post(&mut owner, "", "", "forged");
    assert_eq!(r.status, 403);
    assert_eq!(restrictions(db, &id), before);
}

fn auth_key_page_is_not_found_for_others(b: Backend) {
    let f = Fixture::new(b);
    f.db().verified_domain(&f.workspace_id, "example.com");
    let (id, _) = new_key(&f, "ops@example.com", "Ops relay");
    let (_, member) = f.add_user("member");
    let mut http = f.signed_in(&member);
    let r = http.get(&format!("/settings/mailbox-auth-keys/{id}"));
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(!r.body.contains("Ops relay"));
    let unknown = http.get("/settings/mailbox-auth-keys/00000000-0000-0000-0000-000000000000");
    assert_eq!(unknown.status, 404);
    assert_eq!(r.body.len(), unknown.body.len());
    let r = f
        .server
        .client()
        .get(&format!("/settings/mailbox-auth-keys/{id}"));
    assert_eq!(r.status, 302);
}

both_backends!(
    auth_key_page_shows_and_restricts,
    auth_key_page_is_not_found_for_others,
);
