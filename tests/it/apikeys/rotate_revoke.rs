//! Rotating and revoking an API key, in the pages and in the CLI.

use super::*;

fn rotate_and_revoke_in_the_pages(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = f.workspace_id.clone();
    let mut owner = f.owner();
    let r = generate(&mut owner, &ws, "crm-sync", "read_write", "");
    let old = shown_key(&r.body).expect("key");
    let row = listed(db, &ws, "crm-sync");
    let id = s(&row, "id");
    let prefix = s(&row, "prefix");
    let mut api = f.server.client();
    assert!(works(&mut api, &old), "cached before the rotation");

    // Rotate: the new secret shown once; the old one refused at once.
    let csrf = csrf_of(&mut owner, &ws);
    let r = rotate_in_page(&mut owner, &id, &csrf);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let new = shown_key(&r.body).expect("the rotated key is shown");
    assert_ne!(new, old);
    assert!(
        new.starts_with(&prefix),
        "the prefix changed: {new} {prefix}"
    );
    assert!(!works(&mut api, &old), "the old secret still works");
    assert!(works(&mut api, &new));
    assert!(!works(&mut api, &old));
    let after = listed(db, &ws, "crm-sync");
    assert_eq!(after["id"], id.as_str());
    assert_eq!(after["prefix"], prefix.as_str());
    assert_eq!(after["status"], "active");
    assert_ne!(secret_hash(db, &id), new);
    let page = keys_page(&mut owner, &ws);
    assert!(!page.body.contains(&new) && !page.body.contains(&old));
    assert!(page.body.contains(&name_cell("crm-sync")));

    // Revoke with the wrong name typed: refused, the key still works.
    for typed in ["", "crm", "CRM-SYNC", "crm-sync2"] {
        let r = revoke_in_page(&mut owner, &id, &csrf, typed);
        assert!(r.status >= 400 && r.status < 500, "{typed:?}: {}", r.status);
        assert!(r.body.contains("type the key"), "{}", r.body);
        assert!(works(&mut api, &new), "revoked with {typed:?}");
    }
    assert_eq!(listed(db, &ws, "crm-sync")["status"], "active");

    // Revoke with the name typed: refused at once.
    let r = revoke_in_page(&mut owner, &id, &csrf, "crm-sync");
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        r.location().contains("notice=key_revoked"),
        "{}",
        r.location()
    );
    assert!(!works(&mut api, &new), "a revoked key still works");
    assert_eq!(listed(db, &ws, "crm-sync")["status"], "revoked");
    let page = owner.get(&r.location());
    assert_eq!(page.status, 200);
    assert!(page.body.contains("revoked"));
    assert!(
        !page
            .body
            .contains(&format!("/settings/api-keys/{id}/rotate")),
        "a revoked key is offered for rotation"
    );

    // A revoked key cannot be rotated, in the page or the CLI, nor revoked again.
    let hash = secret_hash(db, &id);
    let r = rotate_in_page(&mut owner, &id, &csrf);
    assert!(
        matches!(r.status, 400 | 409),
        "rotated a revoked key: {} {}",
        r.status,
        r.body
    );
    assert!(shown_key(&r.body).is_none());
    db.cli(&["apikey", "rotate", &id]).assert_refused("revoked");
    assert_eq!(secret_hash(db, &id), hash);
    assert_eq!(listed(db, &ws, "crm-sync")["status"], "revoked");
    assert!(!works(&mut api, &new) && !works(&mut api, &old));
    let r = revoke_in_page(&mut owner, &id, &csrf, "crm-sync");
    assert!(r.status >= 400 && r.status < 500, "{}", r.status);
    // Unknown ids.
    let r = rotate_in_page(&mut owner, "no-such-key", &csrf);
    assert_eq!(r.status, 404);
}

fn rotate_and_revoke_in_the_cli(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let v = db.create_api_key(&f.workspace_id, "crm-sync", "read_only");
    let (id, old, prefix) = (s(&v, "id"), s(&v, "key"), s(&v, "prefix"));
    let mut api = f.server.client();
    assert!(works(&mut api, &old));

    let r = db.json(&["apikey", "rotate", &id]);
    assert_eq!(r["id"], id.as_str());
    assert_eq!(r["prefix"], prefix.as_str());
    assert_eq!(r["access"], "read_only");
    let new = s(&r, "key");
    assert_ne!(new, old);
    assert!(new.starts_with(&prefix));
    // Right after the command returns, on the running server.
    assert!(!works(&mut api, &old), "the old secret still works");
    assert!(works(&mut api, &new));

    let r = db.json(&["apikey", "revoke", &id]);
    assert_eq!(r, serde_json::json!({"id": id, "status": "revoked"}));
    assert!(!works(&mut api, &new), "a revoked key still works");
    assert_eq!(listed(db, &f.workspace_id, "crm-sync")["status"], "revoked");
    db.cli(&["apikey", "rotate", &id]).assert_refused("revoked");
    db.cli(&["apikey", "revoke", &id]).assert_refused("revoked");
    db.cli(&["apikey", "rotate", "no-such-key"])
        .assert_refused("no-such-key");
    assert!(!works(&mut api, &new));
}

both_backends!(rotate_and_revoke_in_the_pages, rotate_and_revoke_in_the_cli,);
