//! Secrets: none in the logs, signing keys sealed with the master key.

use super::*;

const MASTER: &str = "a long random master key for the sealing test";

/// `keygate` against `db` with `KEYGATE_MASTER_KEY` set (`Some`) or removed.
fn cli_with_master(db: &TestDb, master: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env("KEYGATE_DATABASE_URL", &db.url)
        .env_remove("KEYGATE_MASTER_KEY");
    if let Some(m) = master {
        cmd.env("KEYGATE_MASTER_KEY", m);
    }
    cmd.output().expect("run keygate")
}

fn logs_hold_no_secrets(b: Backend) {
    let s = Server::start_with(TestDb::new(b), &[("RUST_LOG", "debug")]);
    let f = Fixture::with_server(s);
    let (verifier, challenge) = pkce();
    let mut owner = f.owner();
    let params = f.approve(
        &mut owner,
        &f.client_id,
        "workspace:read tags:read",
        &challenge,
    );
    let code = param(&params, "code").unwrap().to_string();
    let t = f.exchange(&code, &verifier).json();
    let access = t["access_token"].as_str().unwrap().to_string();
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    let refreshed = f.refresh(&refresh).json();
    let key = f.api_key("read_only");
    assert_eq!(f.server.v1_status(&key), 200);
    assert_eq!(f.server.v1_status(&access), 200);
    let _ = f.introspect(&access);
    let session = owner.cookie("keygate_session").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let logs = f.server.logs();
    assert!(
        logs.contains("/oauth/token"),
        "request lines are logged: {logs}"
    );
    for secret in [
        code.as_str(),
        verifier.as_str(),
        access.as_str(),
        refresh.as_str(),
        refreshed["refresh_token"].as_str().unwrap(),
        key.as_str(),
        f.client_secret.as_str(),
        PASSWORD,
        session.as_str(),
    ] {
        assert!(
            !logs.contains(secret),
            "a secret appears in the logs: {secret}"
        );
    }
}

fn signing_keys_sealed_with_master_key(b: Backend) {
    let db = TestDb::new(b);
    let url = db.url.clone();
    let mut s = Server::start_with(
        db,
        &[(
            "KEYGATE_MASTER_KEY",
            "a long random master key for the test",
        )],
    );
    let stored =
        s.db.text("SELECT private_key AS v FROM signing_keys")
            .unwrap();
    assert!(
        stored.starts_with("enc1:"),
        "private key stored in clear: {}",
        &stored[..10]
    );
    let jwks = s.client().get("/.well-known/jwks.json").body;
    assert!(!jwks.contains(&stored[5..20]));
    assert!(s.terminate().success());
    // The wrong master key is refused at start, with a clear error.
    let out = std::process::Command::new(BIN)
        .arg("serve")
        .env("KEYGATE_DATABASE_URL", &url)
        .env("KEYGATE_BIND", format!("127.0.0.1:{}", free_port()))
        .env("KEYGATE_MASTER_KEY", "not the same key")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("KEYGATE_MASTER_KEY"));
}

/// OWASP Cryptographic Storage Cheat Sheet: keys at rest are encrypted, and
/// sealed and clear keys never mix. A node with the master key seals keys
/// stored earlier in clear, in place; without it, sealed keys stop the start
/// and a rotation with one clear line.
fn clear_signing_keys_are_sealed_and_never_mixed(b: Backend) {
    let f = Fixture::new(b);
    let clear_keys = "signing_keys WHERE private_key NOT LIKE 'enc1:%'";
    // Keys made before a master key existed: the first, and one rotated in.
    assert_eq!(
        cli_with_master(f.db(), None, &["keys", "rotate"])
            .status
            .code(),
        Some(0)
    );
    let clear_private = f
        .db()
        .text("SELECT private_key AS v FROM signing_keys ORDER BY created_at LIMIT 1")
        .unwrap();
    let clear_public = f
        .db()
        .text("SELECT public_key AS v FROM signing_keys ORDER BY created_at LIMIT 1")
        .unwrap();
    let Fixture { mut server, .. } = f;
    assert!(server.terminate().success());
    let db = TestDb::reuse(&server.db);
    assert_eq!(db.count(clear_keys), 2);

    // A node with the master key seals them in place, says so, and still
    // serves (the same keys, now sealed).
    let mut s = Server::start_with(TestDb::reuse(&db), &[("KEYGATE_MASTER_KEY", MASTER)]);
    assert_eq!(db.count(clear_keys), 0, "keys left in clear");
    assert_eq!(db.count("signing_keys"), 2);
    assert!(s.logs().contains("sealed now"), "{}", s.logs());
    let jwks = s.client().get("/.well-known/jwks.json").json();
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));
    // An older node writes a key in clear: the next node with the master key
    // (or this one, at its next key reload) seals it; it is never used in clear.
    db.execute(&format!(
        "INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at, retired_at) \
         VALUES ('from-an-old-node', 'EdDSA', '{clear_private}', '{clear_public}', 1, 2)"
    ));
    assert!(s.terminate().success());
    let mut s = Server::start_with(TestDb::reuse(&db), &[("KEYGATE_MASTER_KEY", MASTER)]);
    assert_eq!(db.count(clear_keys), 0, "a clear key was accepted");
    assert!(s.terminate().success());

    // Without the master key, `keys rotate` is refused with one line and
    // writes nothing.
    let out = cli_with_master(&db, None, &["keys", "rotate"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("KEYGATE_MASTER_KEY"), "{stderr}");
    assert_eq!(db.count("signing_keys"), 3);
    assert_eq!(db.count(clear_keys), 0);
    // …and so is a rotation under another master key.
    let out = cli_with_master(&db, Some("not the same key"), &["keys", "rotate"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KEYGATE_MASTER_KEY"));
    assert_eq!(db.count("signing_keys"), 3);
    // With it, a rotation adds a sealed key.
    let out = cli_with_master(&db, Some(MASTER), &["keys", "rotate"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(db.count("signing_keys"), 4);
    assert_eq!(db.count(clear_keys), 0);

    // A node without the master key does not start on sealed keys.
    let out = std::process::Command::new(BIN)
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env_remove("KEYGATE_MASTER_KEY")
        .env("KEYGATE_DATABASE_URL", &db.url)
        .env("KEYGATE_BIND", format!("127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sealed") && stderr.contains("KEYGATE_MASTER_KEY"),
        "{stderr}"
    );
    drop(server);
}

both_backends!(
    logs_hold_no_secrets,
    signing_keys_sealed_with_master_key,
    clear_signing_keys_are_sealed_and_never_mixed,
);
