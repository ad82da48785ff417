//! Verifying a domain by DNS: the record published, wrong, missing, too large
//! for UDP, SERVFAIL and no answer; one holder per domain; bad names.

use super::*;

fn verified_by_dns_through_cli_v1_and_settings(b: Backend) {
    let mut dns = Dnsmasq::start(&[]);
    let f = server_with_dns(b, &dns.server(), &[]);
    let db = f.db();
    let ws = &f.workspace_id;

    // Added: pending, with the record to publish (the name normalised).
    let d = add(db, ws, " Example.TEST. ");
    let mut keys: Vec<&String> = d.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "domain",
            "id",
            "status",
            "txt_name",
            "txt_value",
            "workspace_id"
        ]
    );
    assert_eq!(d["domain"], "example.test");
    assert_eq!(d["status"], "pending");
    assert_eq!(d["txt_name"], "_keygate-challenge.example.test");
    let value = s(&d, "txt_value");
    assert!(
        value.starts_with("keygate-verification=") && value.len() > 40,
        "{value}"
    );
    let id = s(&d, "id");
    let (name, value) = record(&d);

    // Not published: one line with the record expected and what DNS said; nothing changes.
    let before = db.count("audit_events");
    let out = verify_cli(db, &dns.server(), &id);
    out.assert_refused("no TXT record");
    assert!(
        out.stderr.contains(&name) && out.stderr.contains(&value),
        "{}",
        out.stderr
    );
    // Another value there: said as such.
    publish(
        &mut dns,
        &[(name.clone(), "keygate-verification=wrong".into())],
    );
    let out = verify_cli(db, &dns.server(), &id);
    out.assert_refused("keygate-verification=wrong");
    assert_eq!(listed(db, ws, "example.test")["status"], "pending");
    assert_eq!(db.count("audit_events"), before);

    // Published (beside another record): verified.
    publish(
        &mut dns,
        &[
            (name.clone(), value.clone()),
            (name.clone(), "v=spf1 -all".into()),
        ],
    );
    let out = verify_cli(db, &dns.server(), &id);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    assert_eq!(
        v,
        serde_json::json!({"id": id, "domain": "example.test", "status": "verified"})
    );
    let row = listed(db, ws, "example.test");
    assert_eq!(row["status"], "verified");
    assert!(row["verified_at"].is_string(), "{row}");
    assert_eq!(actions_on(db, ws, &id), ["domain.verified", "domain.added"]);

    // /v1: the list, a new domain, its verification failing then succeeding.
    let mut http = f.server.client();
    let (rw, ro) = (f.api_key("read_write"), f.api_key("read_only"));
    let list = http.bearer_get("/v1/domains", &ro);
    assert_eq!(list.status, 200, "{}", list.body);
    let first = &list.json()["data"][0];
    let mut members: Vec<&String> = first.as_object().expect("object").keys().collect();
    members.sort();
    assert_eq!(
        members,
        [
            "domain",
            "id",
            "status",
            "txt_name",
            "txt_value",
            "verified_at"
        ]
    );
    http.bearer_post_json("/v1/domains", &ro, r#"{"domain":"mail.example.test"}"#)
        .assert_v1_error(403, "permission_error", "insufficient_scope");
    let made = http.bearer_post_json("/v1/domains", &rw, r#"{"domain":"Mail.Example.test"}"#);
    assert_eq!(made.status, 201, "{}", made.body);
    let sub = made.json();
    assert_eq!(
        (sub["status"].as_str(), sub["verified_at"].is_null()),
        (Some("pending"), true)
    );
    let verify = format!("/v1/domains/{}/verify", s(&sub, "id"));
    let refused = http.bearer_post_json(&verify, &rw, "");
    refused.assert_v1_error(400, "invalid_request_error", "domain_not_verified");
    assert!(
        refused
            .body
            .contains("_keygate-challenge.mail.example.test"),
        "{}",
        refused.body
    );
    publish(&mut dns, &[(name.clone(), value.clone()), record(&sub)]);
    let ok = http.bearer_post_json(&verify, &rw, "");
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["status"], "verified");

    // The settings page: the record with copy buttons, Verify, its answer.
    let mut owner = f.owner();
    let page = owner.get(&format!("/settings/mailboxes?workspace={ws}"));
    assert!(page.body.contains("Sending domains") && page.body.contains("data-copy=\"txt-value-"));
    let token = csrf(&mut owner, ws);
    let r = owner.post_form(
        "/settings/domains",
        &[
            ("csrf_token", &token),
            ("workspace_id", ws),
            ("domain", "news.example.test"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let all = http.bearer_get("/v1/domains", &ro).json();
    let news = all["data"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|d| d["domain"] == "news.example.test")
        .expect("news.example.test")
        .clone();
    let path = format!("/settings/domains/{}/verify", s(&news, "id"));
    let r = owner.post_form(&path, &[("csrf_token", &token)]);
    let said = flash_error(&r.body).expect("an error on the page");
    assert!(
        said.contains("_keygate-challenge.news.example.test") && said.contains("no TXT record"),
        "{said}"
    );
    assert!(owner.post_form(&path, &[("csrf_token", "forged")]).status >= 400);
    publish(&mut dns, &[(name, value), record(&sub), record(&news)]);
    let r = owner.post_form(&path, &[("csrf_token", &token)]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(listed(db, ws, "news.example.test")["status"], "verified");
}

fn large_answers_servfail_and_timeouts(b: Backend) {
    let mut dns = Dnsmasq::start(&[]);
    let f = server_with_dns(b, &dns.server(), &[]);
    let db = f.db();
    let ws = &f.workspace_id;
    let d = add(db, ws, "big.test");
    let (name, value) = record(&d);
    let id = s(&d, "id");

    // No answer, and an error answer: one clear line each; nothing changes.
    let before = db.count("audit_events");
    let broken = ServFail::start();
    verify_cli(db, &broken.server(), &id).assert_refused("SERVFAIL");
    let silent = Silent::start();
    verify_cli(db, &silent.server(), &id).assert_refused("did not answer");
    assert_eq!(listed(db, ws, "big.test")["status"], "pending");
    assert_eq!(db.count("audit_events"), before);

    // An answer far over UDP's size: truncated, asked again over TCP, found
    // among the others.
    let mut records: Vec<(String, String)> = (0..12)
        .map(|i| (name.clone(), format!("filler-{i}-{}", "x".repeat(200))))
        .collect();
    records.insert(6, (name, value));
    publish(&mut dns, &records);
    let mut http = f.server.client();
    let rw = f.api_key("read_write");
    let ok = http.bearer_post_json(&format!("/v1/domains/{id}/verify"), &rw, "");
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["status"], "verified");
}

fn a_domain_has_one_holder(b: Backend) {
    let mut dns = Dnsmasq::start(&[]);
    let f = server_with_dns(b, &dns.server(), &[]);
    let db = f.db();
    let first = &f.workspace_id;
    let second = db.create_workspace("Second");
    let third = db.create_workspace("Third");
    let mine = add(db, first, "shared.test");
    let theirs = add(db, &second, "shared.test");
    assert_ne!(mine["txt_value"], theirs["txt_value"]);
    publish(&mut dns, &[record(&mine), record(&theirs)]);
    assert_eq!(verify_cli(db, &dns.server(), &s(&mine, "id")).code, 0);

    // The second may not verify it, even with its own record published, and
    // is told only that; the operator cannot override it either.
    let out = verify_cli(db, &dns.server(), &s(&theirs, "id"));
    out.assert_refused("cannot be verified for this workspace");
    assert!(
        !out.stderr.contains(&s(&theirs, "txt_value")),
        "{}",
        out.stderr
    );
    let forced = db.cli(&[
        "domain",
        "add",
        "--workspace",
        &third,
        "--domain",
        "shared.test",
        "--verified",
    ]);
    forced.assert_refused("cannot be verified for this workspace");
    assert_eq!(listed(db, &second, "shared.test")["status"], "pending");
    assert_eq!(listed(db, first, "shared.test")["status"], "verified");
    let none = db.json_lines(&["domain", "list", "--workspace", &third]);
    assert!(none.is_empty(), "{none:?}");
    // The same domain twice in one workspace is refused.
    db.cli(&[
        "domain",
        "add",
        "--workspace",
        first,
        "--domain",
        "SHARED.test",
    ])
    .assert_refused("already added");

    // Once the first removes it, the second verifies it.
    let gone = db.json(&["domain", "remove", &s(&mine, "id")]);
    assert_eq!(
        gone,
        serde_json::json!({"id": s(&mine, "id"), "removed": true})
    );
    assert_eq!(verify_cli(db, &dns.server(), &s(&theirs, "id")).code, 0);
}

fn bad_domains_change_nothing(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = &f.workspace_id;
    let long = format!("{}.test", "a".repeat(300));
    let before = db.count("audit_events");
    for (bad, why) in [
        ("a..b.test", "empty label"),
        (long.as_str(), "253 characters"),
        ("a@b", "not an address"),
        ("аpple.test", "mixes scripts"),
        ("аррӏе.com", "looks like"),
        ("localhost", "two labels"),
        ("192.0.2.1", "IP address"),
        ("", "must not be empty"),
    ] {
        db.cli(&["domain", "add", "--workspace", ws, "--domain", bad])
            .assert_refused(why);
    }
    let unknown = uuid::Uuid::now_v7().to_string();
    for (args, why) in [
        (vec!["domain", "verify", unknown.as_str()], "no domain"),
        (vec!["domain", "remove", unknown.as_str()], "no domain"),
        (
            vec!["domain", "list", "--workspace", unknown.as_str()],
            "no workspace",
        ),
        (
            vec![
                "domain",
                "add",
                "--workspace",
                unknown.as_str(),
                "--domain",
                "x.test",
            ],
            "no workspace",
        ),
    ] {
        db.cli(&args).assert_refused(why);
    }
    let mut http = f.server.client();
    let rw = f.api_key("read_write");
    http.bearer_post_json("/v1/domains", &rw, r#"{"domain":"a..b.test"}"#)
        .assert_v1_error(400, "invalid_request_error", "parameter_invalid");
    let mut owner = f.owner();
    let token = csrf(&mut owner, ws);
    let r = owner.post_form(
        "/settings/domains",
        &[
            ("csrf_token", &token),
            ("workspace_id", ws),
            ("domain", "аpple.test"),
        ],
    );
    assert!(
        flash_error(&r.body).is_some_and(|e| e.contains("mixes scripts")),
        "{}",
        r.body
    );
    // A member may not add one (owners and admins only).
    let (_, member_email) = f.add_user("member");
    let mut member = f.signed_in(&member_email);
    let mine = csrf(&mut member, ws);
    let r = member.post_form(
        "/settings/domains",
        &[
            ("csrf_token", &mine),
            ("workspace_id", ws),
            ("domain", "ok.test"),
        ],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(db.count("sending_domains"), 0);
    assert_eq!(
        db.count("audit_events"),
        before + 2,
        "an API key made and a member added, nothing else"
    );
    // An internationalized name is kept as its A-label.
    assert_eq!(add(db, ws, "Bücher.test")["domain"], "xn--bcher-kva.test");
}

both_backends!(
    verified_by_dns_through_cli_v1_and_settings,
    large_answers_servfail_and_timeouts,
    a_domain_has_one_holder,
    bad_domains_change_nothing,
);
