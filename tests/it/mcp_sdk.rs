//! A real third-party client: the official MCP TypeScript SDK's OAuth client
//! (tests/node/mcp-client.mjs) against a keygate process. The script starts
//! from a 401 on /v1, discovers RFC 9728 then RFC 8414 metadata, registers
//! (RFC 7591, or a client ID metadata document), runs the code flow with PKCE
//! and `resource`, refreshes, and calls /v1; this test plays the person: it
//! signs in, approves the consent page and hands the code to the script.

use crate::https_server::{HttpsServer, Reply};
use crate::require::require_program;
use crate::support::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

/// A Node script of tests/node that speaks one JSON object per line.
pub(crate) struct Script {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Script {
    fn start(args: &[&str]) -> Script {
        Script::run("mcp-client.mjs", args)
    }

    /// Starts `tests/node/<script>` with `args`.
    pub(crate) fn run(script: &str, args: &[&str]) -> Script {
        let node = require_program("node", "the MCP SDK test");
        let dir = node_dir();
        assert!(
            dir.join("node_modules/@modelcontextprotocol/sdk").is_dir(),
            "the MCP SDK is not installed: run npm ci in tests/node (./scripts/test does)"
        );
        let mut child = Command::new(node)
            .arg(dir.join(script))
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Script { child, lines }
    }

    pub(crate) fn next(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the script said nothing within 60 s");
        let v: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v.get("error").is_none(),
            "the SDK client failed: {}",
            v["error"]
        );
        v
    }

    pub(crate) fn send(&mut self, v: &Value) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{v}").expect("write to the script");
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the script to the end as the fixture's owner; returns its report.
fn run(f: &Fixture, redirect: &str, metadata_url: Option<&str>) -> Value {
    let resource = f.server.url("/v1/workspace");
    let mut args = vec![resource.as_str(), redirect];
    args.extend(metadata_url);
    let mut script = Script::start(&args);
    let authorize = script.next()["authorize"]
        .as_str()
        .expect("authorize URL")
        .to_string();
    let url = url::Url::parse(&authorize).expect("URL");
    let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(
        param(&params, "resource"),
        Some(f.server.url("/v1").as_str())
    );
    assert_eq!(param(&params, "code_challenge_method"), Some("S256"));
    assert!(
        authorize.starts_with(&f.server.url("/oauth/authorize?")),
        "{authorize}"
    );

    let mut owner = f.owner();
    let page = owner.get(&authorize);
    let done = approve_page(f, &mut owner, &page);
    assert!(done.location().starts_with(redirect), "{}", done.location());
    script.send(&json!({"code": code_of(&done)}));
    script.next()["done"].clone()
}

fn check(report: &Value, f: &Fixture) {
    assert_eq!(report["first_status"], 401, "{report}");
    assert_eq!(
        report["resource_metadata"],
        f.server
            .url("/.well-known/oauth-protected-resource")
            .as_str()
    );
    assert_eq!(report["started"], "REDIRECT");
    assert_eq!(report["exchanged"], "AUTHORIZED");
    assert_eq!(report["refreshed"], "AUTHORIZED");
    assert_eq!(report["status_with_token"], 200, "{report}");
    assert_eq!(report["body_with_token"]["name"], "Acme");
    assert_eq!(report["refresh_rotated"], true);
    assert_eq!(report["access_changed"], true);
    assert_eq!(report["status_after_refresh"], 200);
}

fn sdk_registers_with_rfc7591(b: Backend) {
    let f = Fixture::new(b);
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    let report = run(&f, &redirect, None);
    check(&report, &f);
    assert_eq!(report["registrations"], 1);
    assert_eq!(
        report["had_secret"], true,
        "registered as a confidential client"
    );
    let client_id = report["client_id"].as_str().unwrap();
    let kind = f.db().text(&format!(
        "SELECT kind AS v FROM clients WHERE id = '{client_id}'"
    ));
    assert_eq!(kind.as_deref(), Some("dynamic"));
    let apps = f.apps();
    assert_eq!(apps[0]["client_id"], client_id);
    assert_eq!(apps[0]["app_name"], "MCP SDK test client");
}

fn sdk_uses_a_client_id_metadata_document(b: Backend) {
    let https = HttpsServer::start();
    let doc_url = https.url("/mcp/client.json");
    let redirect = "http://127.0.0.1/callback";
    https.set(
        "/mcp/client.json",
        Reply::json(&json!({
            "client_id": doc_url,
            "client_name": "MCP SDK document client",
            "redirect_uris": [redirect],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })),
    );
    let ca = https.ca_file().display().to_string();
    let f = Fixture::with_server(Server::start_with(
        TestDb::new(b),
        &[
            ("KEYGATE_CIMD_CA_FILE", &ca),
            ("KEYGATE_CIMD_ALLOWED_HOSTS", "127.0.0.1"),
        ],
    ));
    let report = run(&f, redirect, Some(&doc_url));
    check(&report, &f);
    assert_eq!(report["registrations"], 0, "no RFC 7591 registration");
    assert_eq!(report["client_id"], doc_url.as_str());
    assert_eq!(report["had_secret"], false);
    let apps = f.apps();
    assert_eq!(apps[0]["client_id"], doc_url.as_str());
    assert_eq!(apps[0]["app_name"], "MCP SDK document client");
    assert_eq!(
        f.db().count("clients"),
        3,
        "no registration besides the fixture's two clients and the document's"
    );
}

both_backends!(
    sdk_registers_with_rfc7591,
    sdk_uses_a_client_id_metadata_document
);
