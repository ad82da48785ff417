//! Using an API key: refused the moment it expires, usage counted and last use recorded.

use super::*;

fn today() -> String {
    chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}

fn expired_key_is_refused_the_moment_it_expires(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = f.workspace_id.clone();
    // `--expires` is the last day the key works: it ends at 24:00 UTC that day.
    let v = db.create_api_key_expiring(&ws, "short-lived", "read_only", &today());
    assert_eq!(v["expires_at"], format!("{}T00:00:00Z", days_from_today(1)));
    let (id, key) = (s(&v, "id"), s(&v, "key"));
    // Bring the end close, before the key is ever used (and cached).
    let expires_at = chrono::Utc::now().timestamp() + 2;
    db.execute(&format!(
        "UPDATE api_keys SET expires_at = {expires_at} WHERE id = '{id}'"
    ));
    let mut api = f.server.client();
    assert!(works(&mut api, &key), "refused before it expired");
    assert!(works(&mut api, &key));
    assert_eq!(listed(db, &ws, "short-lived")["status"], "active");
    while chrono::Utc::now().timestamp() < expires_at {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(30));
    assert!(!works(&mut api, &key), "an expired key still works");
    assert_eq!(listed(db, &ws, "short-lived")["status"], "expired");
    let page = keys_page(&mut f.owner(), &ws);
    assert!(page.body.contains("status-expired"), "{}", page.body);
    assert!(!works(&mut api, &key));
}

fn usage_counts_and_last_used(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let ws = f.workspace_id.clone();
    let used = s(&db.create_api_key(&ws, "busy", "read_write"), "key");
    db.create_api_key(&ws, "idle", "read_only");
    let mut api = f.server.client();
    let n = 7;
    for i in 0..n {
        let r = match i % 3 {
            0 => api.bearer_get("/v1/workspace", &used),
            1 => api.bearer_get("/v1/tags", &used),
            _ => api.bearer_post_json("/v1/forms", &used, &format!(r#"{{"name":"f{i}"}}"#)),
        };
        assert!(r.status == 200 || r.status == 201, "{}", r.body);
    }
    // Failed attempts are no use of the key.
    let mut broken = used.clone().into_bytes();
    broken[20] = if broken[20] == b'a' { b'b' } else { b'a' };
    assert!(!works(&mut api, &String::from_utf8(broken).unwrap()));
    let start = chrono::Utc::now();
    assert!(
        eventually(Duration::from_secs(5), || listed(db, &ws, "busy")
            ["usage_count"]
            == n),
        "usage not counted: {}",
        listed(db, &ws, "busy")
    );
    // Settle, then make sure the count did not overshoot.
    std::thread::sleep(Duration::from_millis(1200));
    let busy = listed(db, &ws, "busy");
    assert_eq!(busy["usage_count"], n, "{busy}");
    let last = chrono::DateTime::parse_from_rfc3339(&s(&busy, "last_used_at")).unwrap();
    let age = (start - last.with_timezone(&chrono::Utc)).num_seconds();
    assert!((-2..=5).contains(&age), "last_used_at {last} vs {start}");
    let idle = listed(db, &ws, "idle");
    assert_eq!(idle["usage_count"], 0);
    assert_eq!(idle["last_used_at"], Value::Null);
    // The key's page shows the count, and the 30-day chart holds the same
    // requests; the list marks the idle key as never used.
    let list_page = keys_page(&mut f.owner(), &ws);
    assert!(row(&list_page.body, "idle").contains("never used"));
    assert!(!row(&list_page.body, "busy").contains("never used"));
    let busy_id = s(&listed(db, &ws, "busy"), "id");
    let page = f.owner().get(&format!("/settings/api-keys/{busy_id}"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains(&format!("{n} in all, {n} in the last 30 days")),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("{n} requests in the last 30 days")),
        "{}",
        page.body
    );
}

both_backends!(
    expired_key_is_refused_the_moment_it_expires,
    usage_counts_and_last_used,
);
