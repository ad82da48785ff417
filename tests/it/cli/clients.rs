//! `keygate client` and `keygate apps`: creating clients, refusals, and revoking
//! an app's tokens.

use super::*;

fn client_create(b: Backend) {
    let db = TestDb::new(b);
    let v = db.json(&[
        "client",
        "create",
        "--name",
        "Acme CRM",
        "--redirect-uri",
        "https://crm.example.com/callback",
        "--redirect-uri",
        "http://127.0.0.1/cb",
        "--redirect-uri",
        "http://[::1]:8000/cb",
        "--redirect-uri",
        "com.example.app:/oauth",
        "--redirect-uri",
        "https://crm.example.com/callback?tenant=1",
    ]);
    let id = assert_uuid(&v["client_id"]);
    let secret = v["client_secret"].as_str().expect("client_secret");
    assert!(secret.len() >= 32, "{secret}");
    let stored = db
        .text(&format!(
            "SELECT redirect_uris AS v FROM clients WHERE id = '{id}'"
        ))
        .unwrap();
    for uri in [
        "https://crm.example.com/callback",
        "http://127.0.0.1/cb",
        "com.example.app:/oauth",
        "tenant=1",
    ] {
        assert!(stored.contains(uri), "{uri} not in {stored}");
    }
    let hash = db
        .text(&format!(
            "SELECT secret_hash AS v FROM clients WHERE id = '{id}'"
        ))
        .unwrap();
    assert!(
        !hash.contains(secret),
        "the client secret is stored in clear"
    );

    let public = db.json(&[
        "client",
        "create",
        "--name",
        "Acme Mobile",
        "--redirect-uri",
        "com.example.app:/oauth",
        "--public",
    ]);
    let public_id = assert_uuid(&public["client_id"]);
    assert!(
        public.get("client_secret").is_none(),
        "a public client got a secret: {public}"
    );
    assert_ne!(public_id, id);
    assert_eq!(db.count("clients"), 2);

    // `--json` after the subcommand, too.
    let out = db.cli(&[
        "client",
        "create",
        "--name",
        "Late flag",
        "--redirect-uri",
        "https://x.example.com/cb",
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.is_empty());
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    assert_uuid(&v["client_id"]);
    assert!(v["client_secret"].is_string());
    assert_eq!(db.count("clients"), 3);
}

fn client_refusals(b: Backend) {
    let db = TestDb::new(b);
    db.json(&["migrate"]);
    let good = "https://crm.example.com/callback";
    let create = |name: &str, uris: &[&str], public: bool| -> Vec<String> {
        let mut a = vec!["client", "create", "--name", name];
        for u in uris {
            a.push("--redirect-uri");
            a.push(u);
        }
        if public {
            a.push("--public");
        }
        a.into_iter().map(str::to_string).collect()
    };
    let run = |args: Vec<String>, mentions: &str| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&db, &a, None, mentions);
    };
    run(create("", &[good], false), "name");
    run(create("  ", &[good], true), "name");
    run(create(&"n".repeat(101), &[good], false), "100");
    for bad in [
        "not a url",
        "",
        "/callback",
        "crm.example.com/callback",
        "https://",
        "http://crm.example.com/callback",
        "http://192.168.1.10/callback",
        "https://crm.example.com/callback#frag",
        "https://crm.example.com/callback#",
        "http://127.0.0.1/cb#x",
        "javascript:alert(1)",
        "https://user:pass@crm.example.com/callback",
        // RFC 8252 §8.3: loopback by IP literal only.
        "http://localhost:3000/cb",
        "myapp:/cb",
    ] {
        run(create("Acme CRM", &[bad], false), "redirect");
        run(create("Acme CRM", &[bad], true), "redirect");
        // One bad URI among good ones refuses the whole client.
        run(create("Acme CRM", &[good, bad], false), "redirect");
    }
    assert_eq!(db.count("clients"), 0);
}

fn apps_and_audit_refusals(b: Backend) {
    let db = TestDb::new(b);
    let ws = workspace(&db, "Acme");
    let unknown = uuid::Uuid::new_v4().to_string();
    // A workspace with no authorizations lists none.
    let out = db.cli(&["--json", "apps", "list", "--workspace", &ws]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.trim().is_empty() && out.stderr.is_empty(),
        "{out:?}"
    );
    refused(
        &db,
        &["apps", "list", "--workspace", &unknown],
        None,
        "workspace",
    );
    refused(&db, &["apps", "revoke", &unknown], None, "authorization");
    refused(&db, &["apps", "revoke", "nope"], None, "authorization");
    refused(
        &db,
        &["audit", "list", "--workspace", &unknown],
        None,
        "workspace",
    );
}

fn apps_revoke_ends_tokens(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let (access, refresh) = f.tokens("workspace:read");
    let (other_access, other_refresh) = f.tokens("workspace:read");
    let apps = db.json_lines(&["apps", "list", "--workspace", &f.workspace_id]);
    assert_eq!(apps.len(), 2);
    // Newest first: the second approval is the first line.
    let newest = assert_uuid(&apps[0]["id"]);
    let oldest = assert_uuid(&apps[1]["id"]);

    let out = db.cli(&["apps", "revoke", &oldest, "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    assert_eq!(v["id"], oldest.as_str());
    assert_eq!(v["status"], "revoked");

    let mut http = f.server.client();
    http.bearer_get("/v1/workspace", &access).assert_v1_error(
        401,
        "authentication_error",
        "invalid_api_key",
    );
    f.refresh(&refresh).assert_oauth_error(400, "invalid_grant");
    assert_eq!(f.introspect(&access)["active"], false);
    // The other authorization is untouched.
    assert_eq!(http.bearer_get("/v1/workspace", &other_access).status, 200);
    assert_eq!(f.refresh(&other_refresh).status, 200);

    let apps = db.json_lines(&["apps", "list", "--workspace", &f.workspace_id]);
    let status = |id: &str| {
        apps.iter()
            .find(|a| a["id"] == id)
            .map(|a| a["status"].clone())
    };
    assert_eq!(status(&oldest), Some(Value::from("revoked")));
    assert_eq!(status(&newest), Some(Value::from("active")));
    // The revocation is in the security log.
    let events = db.json_lines(&["audit", "list", "--workspace", &f.workspace_id]);
    assert!(
        events.iter().any(|e| e["subject"] == oldest.as_str()),
        "{events:?}"
    );
    assert_human(&db.cli(&["apps", "list", "--workspace", &f.workspace_id]));
}

both_backends!(
    client_create,
    client_refusals,
    apps_and_audit_refusals,
    apps_revoke_ends_tokens,
);
