//! SIGTERM drains requests and exits cleanly.

use super::*;

fn sigterm_drains_and_exits_cleanly(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_only");
    let mut http = f.server.client();
    for _ in 0..5 {
        assert_eq!(http.bearer_get("/v1/workspace", &key).status, 200);
    }
    let Fixture {
        mut server,
        workspace_id,
        ..
    } = f;
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    // Usage counted in memory was written on the way out.
    let rows = server
        .db
        .json_lines(&["apikey", "list", "--workspace", &workspace_id]);
    assert_eq!(rows[0]["usage_count"], 5);
}

both_backends!(sigterm_drains_and_exits_cleanly,);
