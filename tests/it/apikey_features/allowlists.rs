//! IP allowlists on API keys: allow and refuse, over IPv6, behind a trusted proxy.

use super::*;

// ---------------------------------------------------------------- allowlists

fn v1_from(server: &Server, key: &str, forwarded: Option<&str>) -> Resp {
    let auth = format!("Bearer {key}");
    let mut headers = vec![("Authorization", auth.as_str())];
    if let Some(xff) = forwarded {
        headers.push(("X-Forwarded-For", xff));
    }
    server.client().get_with("/v1/workspace", &headers)
}

fn assert_ip_refused(r: &Resp) {
    r.assert_v1_error(403, "permission_error", "ip_not_allowed");
}

fn allowlists_allow_and_refuse(b: Backend) {
    let f = Fixture::new(b);
    let ws = &f.workspace_id;
    let db = f.db();
    let here = create(
        db,
        ws,
        "here",
        &["--access", "read_only", "--allow-ip", "127.0.0.1"],
    );
    assert_eq!(here["allowed_ips"], json!(["127.0.0.1/32"]));
    let elsewhere = create(
        db,
        ws,
        "elsewhere",
        &[
            "--access",
            "read_only",
            "--allow-ip",
            "192.0.2.0/24",
            "--allow-ip",
            "2001:db8::/32",
        ],
    );
    assert_eq!(
        elsewhere["allowed_ips"],
        json!(["192.0.2.0/24", "2001:db8::/32"])
    );
    let anywhere = create(db, ws, "anywhere", &["--access", "read_only"]);
    assert!(anywhere["allowed_ips"].is_null());
    assert_eq!(v1_from(&f.server, &s(&here, "key"), None).status, 200);
    assert_eq!(v1_from(&f.server, &s(&anywhere, "key"), None).status, 200);
    // Refused after authentication, from the cache as well as on a miss.
    for _ in 0..2 {
        assert_ip_refused(&v1_from(&f.server, &s(&elsewhere, "key"), None));
    }
    // A forged X-Forwarded-For from an untrusted peer changes nothing.
    assert_ip_refused(&v1_from(
        &f.server,
        &s(&elsewhere, "key"),
        Some("192.0.2.7"),
    ));
    assert_eq!(
        v1_from(&f.server, &s(&here, "key"), Some("203.0.113.9")).status,
        200
    );
    // A stored allowlist that no longer parses refuses the key (fail closed).
    let broken = create(
        db,
        ws,
        "broken",
        &["--access", "read_only", "--allow-ip", "127.0.0.1"],
    );
    db.execute(&format!(
        "UPDATE api_keys SET allowed_ips = 'not-an-address' WHERE id = '{}'",
        s(&broken, "id")
    ));
    assert_ip_refused(&v1_from(&f.server, &s(&broken, "key"), None));
    // A wrong key is still a 401 whatever the address.
    let r = v1_from(&f.server, &random_credential("kgk_"), None);
    r.assert_v1_error(401, "authentication_error", "invalid_api_key");
    // The last address is recorded with the usage counts.
    let id = s(&here, "id");
    assert!(
        eventually(Duration::from_secs(5), || listed(db, ws, &id)
            ["last_used_ip"]
            == "127.0.0.1"),
        "{}",
        listed(db, ws, &id)
    );
    assert!(listed(db, ws, &s(&elsewhere, "id"))["last_used_ip"].is_null());
}

fn allowlists_over_ipv6(b: Backend) {
    let f = Fixture::with_server(Server::start_ipv6(TestDb::new(b), &[]));
    let ws = &f.workspace_id;
    let db = f.db();
    let v6 = create(
        db,
        ws,
        "v6",
        &["--access", "read_only", "--allow-ip", "::1/128"],
    );
    let v4 = create(
        db,
        ws,
        "v4",
        &["--access", "read_only", "--allow-ip", "127.0.0.0/8"],
    );
    assert!(f.server.base.contains("[::1]"));
    assert_eq!(v1_from(&f.server, &s(&v6, "key"), None).status, 200);
    assert_ip_refused(&v1_from(&f.server, &s(&v4, "key"), None));
    let id = s(&v6, "id");
    assert!(
        eventually(Duration::from_secs(5), || listed(db, ws, &id)
            ["last_used_ip"]
            == "::1"),
        "{}",
        listed(db, ws, &id)
    );
}

fn allowlists_behind_a_trusted_proxy(b: Backend) {
    let server = Server::start_with(
        TestDb::new(b),
        &[("KEYGATE_TRUSTED_PROXIES", "127.0.0.1/32")],
    );
    let f = Fixture::with_server(server);
    let ws = &f.workspace_id;
    let db = f.db();
    let key = create(
        db,
        ws,
        "behind",
        &["--access", "read_only", "--allow-ip", "198.51.100.0/24"],
    );
    let k = s(&key, "key");
    assert_eq!(v1_from(&f.server, &k, Some("198.51.100.7")).status, 200);
    // The right-most untrusted entry is the client: forged entries on its left
    // do not help, and one on its right is the client itself.
    assert_eq!(
        v1_from(&f.server, &k, Some("203.0.113.66, 198.51.100.7")).status,
        200
    );
    assert_ip_refused(&v1_from(&f.server, &k, Some("198.51.100.7, 203.0.113.66")));
    // No header: the proxy itself is the client.
    assert_ip_refused(&v1_from(&f.server, &k, None));
    let id = s(&key, "id");
    assert!(
        eventually(Duration::from_secs(5), || listed(db, ws, &id)
            ["last_used_ip"]
            == "198.51.100.7"),
        "{}",
        listed(db, ws, &id)
    );
}

both_backends!(
    allowlists_allow_and_refuse,
    allowlists_over_ipv6,
    allowlists_behind_a_trusted_proxy,
);
