//! openid-client (npm), an unmodified client library, through Node
//! (tests/node/machine-client.mjs): private_key_jwt with RS256 and PS256
//! keys, client credentials with DPoP (ES256 and EdDSA proofs), a DPoP call
//! to /v1 and introspection with `cnf`.

use crate::require::require_program;
use crate::support::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn openid_client_with_private_key_jwt_and_dpop(b: Backend) {
    let node = require_program("node", "the openid-client test");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    assert!(
        dir.join("node_modules/openid-client").is_dir(),
        "openid-client is not installed: run npm ci in tests/node (./scripts/test does)"
    );
    let mut child = Command::new(node)
        .arg(dir.join("machine-client.mjs"))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || -> Value {
        let line = lines.next().expect("a line from the script").unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    };
    let keys = next();
    let f = Fixture::new(b);
    let path = std::env::temp_dir().join(format!("jwks-{}.json", unique()));
    std::fs::write(&path, keys["jwks"].to_string()).unwrap();
    let created = f.db().json(&[
        "client",
        "create",
        "--name",
        "Node agent",
        "--workspace",
        &f.workspace_id,
        "--grant",
        "client_credentials",
        "--scope",
        "workspace:read",
        "--jwks-file",
        path.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&path);
    let stdin = child.stdin.as_mut().unwrap();
    let ask = json!({"issuer": f.server.base, "client_id": created["client_id"]});
    writeln!(stdin, "{ask}").unwrap();
    let out = next();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        out.get("error").is_none(),
        "openid-client failed: {}",
        out["error"]
    );
    assert_eq!(
        out["token_type"].as_str().map(str::to_lowercase).as_deref(),
        Some("dpop")
    );
    assert_eq!(out["api_status"], 200);
    assert_eq!(out["workspace_id"], f.workspace_id.as_str());
    assert_eq!(out["active"], true);
    assert!(out["jkt"].as_str().is_some_and(|j| !j.is_empty()), "{out}");
    assert_eq!(
        out["ps256_token_type"]
            .as_str()
            .map(str::to_lowercase)
            .as_deref(),
        Some("dpop")
    );
    assert_eq!(out["eddsa_api_status"], 200);
}

both_backends!(openid_client_with_private_key_jwt_and_dpop);
