//! The API key list in the settings page: search and filter.

use super::*;

fn search_and_filter_the_list(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = f.workspace_id.clone();
    let mut owner = f.owner();
    assert_eq!(
        generate(&mut owner, &ws, "crm-sync", "read_write", "").status,
        200
    );
    let backup = db.create_api_key(&ws, "CRM backup", "read_only");
    let billing = db.create_api_key(&ws, "billing-export", "read_only");
    let report = db.create_api_key(&ws, "old-report", "read_only");
    db.json(&["apikey", "revoke", &s(&billing, "id")]);
    db.execute(&format!(
        "UPDATE api_keys SET expires_at = {} WHERE id = '{}'",
        chrono::Utc::now().timestamp() - 60,
        s(&report, "id")
    ));
    let all = ["crm-sync", "CRM backup", "billing-export", "old-report"];

    let mut check = |query: &str, expected: &[&str]| {
        let page = owner.get(&format!("/settings/api-keys?workspace={ws}&{query}"));
        assert_eq!(page.status, 200, "{query}: {}", page.body);
        for name in all {
            assert_eq!(
                page.body.contains(&name_cell(name)),
                expected.contains(&name),
                "{query}: {name}"
            );
        }
        if expected.is_empty() {
            assert!(page.body.contains("No API keys match this search"));
        }
    };
    check("", &all);
    check("q=crm", &["crm-sync", "CRM backup"]);
    check("q=CRM", &["crm-sync", "CRM backup"]);
    check("q=billing", &["billing-export"]);
    check("q=nothing-like-this", &[]);
    check("status=active", &["crm-sync", "CRM backup"]);
    check("status=expired", &["old-report"]);
    check("status=revoked", &["billing-export"]);
    check("q=crm&status=revoked", &[]);
    check("q=report&status=expired", &["old-report"]);
    // By creator, by workspace name, by prefix.
    let local_part = f.owner_email.split('@').next().unwrap().to_string();
    check(&format!("q={local_part}"), &["crm-sync"]);
    check(
        "q=keygate+CLI",
        &["CRM backup", "billing-export", "old-report"],
    );
    check("q=acme", &all);
    check(&format!("q={}", s(&backup, "prefix")), &["CRM backup"]);
    // The search box keeps what was asked.
    let page = owner.get(&format!(
        "/settings/api-keys?workspace={ws}&q=crm&status=revoked"
    ));
    assert!(page.body.contains("value=\"crm\""));
    assert!(page.body.contains("<option value=\"revoked\" selected>"));

    // The CLI's list filters the same way.
    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["apikey", "list", "--workspace", ws.as_str()];
        all.extend_from_slice(args);
        db.json_lines(&all).iter().map(|k| s(k, "name")).collect()
    };
    assert_eq!(names(&["--status", "revoked"]), ["billing-export"]);
    assert_eq!(names(&["--status", "expired"]), ["old-report"]);
    let mut active = names(&["--status", "active"]);
    active.sort();
    assert_eq!(active, ["CRM backup", "crm-sync"]);
    assert_eq!(names(&["--search", "billing"]), ["billing-export"]);
    // Newest first.
    assert_eq!(
        names(&[]),
        ["old-report", "billing-export", "CRM backup", "crm-sync"]
    );
    db.cli(&["apikey", "list", "--workspace", &ws, "--status", "bogus"])
        .assert_refused("status");
}

both_backends!(search_and_filter_the_list,);
