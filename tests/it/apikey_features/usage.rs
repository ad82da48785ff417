//! Usage of many keys at once is written whole.

use super::*;

/// The usage of a working set larger than one statement's batch is written
/// whole: every key's count, last use, address and day total.
fn usage_of_many_keys_is_written_whole(b: Backend) {
    let f = Fixture::new(b);
    let ws = &f.workspace_id;
    let tokens = bulk_keys(f.db(), ws, 1100, "U");
    let mut api = f.server.client();
    for t in &tokens {
        assert_eq!(api.bearer_get("/v1/workspace", t).status, 200);
    }
    for t in &tokens[..5] {
        assert_eq!(api.bearer_get("/v1/workspace", t).status, 200);
    }
    let db = f.db();
    let bulk = "api_keys WHERE name LIKE 'bulk-%'";
    assert!(
        eventually(Duration::from_secs(10), || {
            db.count(&format!("{bulk} AND usage_count > 0")) == 1100
        }),
        "usage of {} keys written",
        db.count(&format!("{bulk} AND usage_count > 0"))
    );
    assert!(eventually(Duration::from_secs(5), || db
        .count(&format!("{bulk} AND usage_count = 2"))
        == 5));
    assert_eq!(db.count(&format!("{bulk} AND usage_count = 1")), 1095);
    let unstamped = format!("{bulk} AND (last_used_at IS NULL OR last_used_ip IS NULL)");
    assert_eq!(db.count(&unstamped), 0);
    let days = "usage_daily WHERE kind = 'api_key' AND subject_id IN \
                (SELECT id FROM api_keys WHERE name LIKE 'bulk-%')";
    assert_eq!(db.count(days), 1100);
    assert_eq!(db.count(&format!("{days} AND count = 2")), 5);
}

both_backends!(usage_of_many_keys_is_written_whole,);
