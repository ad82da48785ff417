//! Daily usage of an API key.

use super::*;

/// Daily usage per key, kept 90 days, from the CLI.
fn daily_usage_of_a_key(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_only");
    let id = f
        .db()
        .json_lines(&["apikey", "list", "--workspace", &f.workspace_id])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut http = f.server.client();
    for _ in 0..3 {
        assert_eq!(http.bearer_get("/v1/workspace", &key).status, 200);
    }
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(eventually(std::time::Duration::from_secs(5), || {
        let lines = f.db().json_lines(&["apikey", "usage", &id, "--days", "7"]);
        lines.len() == 7 && lines[6]["date"] == today.as_str() && lines[6]["count"] == 3
    }));
    let lines = f.db().json_lines(&["apikey", "usage", &id, "--days", "7"]);
    assert!(lines[..6].iter().all(|l| l["count"] == 0));
    let dates: Vec<&str> = lines.iter().map(|l| l["date"].as_str().unwrap()).collect();
    let mut sorted = dates.clone();
    sorted.sort();
    assert_eq!(dates, sorted, "oldest first");
    f.db()
        .cli(&["apikey", "usage", &id, "--days", "91"])
        .assert_refused("--days");
    f.db()
        .cli(&["apikey", "usage", "no-such-key"])
        .assert_refused("no API key");
}

both_backends!(daily_usage_of_a_key,);
