//! The product's identity provider for sign-in tests: node-oidc-provider
//! (tests/node/oidc-provider.mjs) started on a free loopback port over https
//! with a throwaway CA, and the keygate settings that point at it.

use super::server::free_port;
use super::tls::{issue, TlsAgent};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const OIDC_CLIENT_ID: &str = "keygate-test";
pub const OIDC_CLIENT_SECRET: &str = "a client secret with spaces & symbols";

/// A running node-oidc-provider; stopped (and its files removed) on drop.
pub struct OidcProvider {
    child: Child,
    pub issuer: String,
    pub ca_pem: String,
    /// See [`super::tls::Issued::spki_sha256`] (a browser's trust in it).
    pub spki_sha256: String,
    files: Vec<PathBuf>,
}

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

impl OidcProvider {
    /// Starts the provider with keygate (at `keygate_base`) as its client and
    /// `accounts` (`{SUB: {"email", "email_verified"}}`) as its people.
    pub fn start(keygate_base: &str, accounts: serde_json::Value) -> OidcProvider {
        OidcProvider::start_with(keygate_base, accounts, serde_json::json!({}))
    }

    /// [`OidcProvider::start`] with more settings of the script:
    /// `{"alg": "PS256"}` (RS256, PS256, ES256 or EdDSA) signs ID tokens so,
    /// `{"email_only_at_userinfo": true}` leaves the email out of them.
    pub fn start_with(
        keygate_base: &str,
        accounts: serde_json::Value,
        settings: serde_json::Value,
    ) -> OidcProvider {
        let node = crate::require::require_program("node", "the identity provider tests");
        let dir = node_dir();
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "oidc-provider is not installed: run npm ci in tests/node (./scripts/test does)"
        );
        let issued = issue();
        let tag = format!("{}-{}", std::process::id(), super::unique());
        let write = |what: &str, text: &str| {
            let path = std::env::temp_dir().join(format!("keygate-oidc-{tag}-{what}.pem"));
            std::fs::write(&path, text).expect("write a PEM file");
            path
        };
        let files = vec![
            write("ca", &issued.ca_pem),
            write("cert", &issued.chain_pem),
            write("key", &issued.key_pem),
        ];
        let mut config = serde_json::json!({
            "client_id": OIDC_CLIENT_ID,
            "client_secret": OIDC_CLIENT_SECRET,
            "redirect_uri": format!("{keygate_base}/login/oidc/callback"),
            "accounts": accounts,
        });
        for (k, v) in settings.as_object().into_iter().flatten() {
            config[k] = v.clone();
        }
        // Node under a loaded machine has once stayed silent past the wait
        // (CI, 2 cores): such a provider is ended and one more started, on
        // a fresh port.
        let mut started = None;
        for attempt in 1..=2 {
            let port = free_port();
            let mut child = Command::new(&node)
                .arg(dir.join("oidc-provider.mjs"))
                .arg(port.to_string())
                .arg(&files[1])
                .arg(&files[2])
                .arg(config.to_string())
                .current_dir(&dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start node");
            let stdout = child.stdout.take().expect("stdout");
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
            match rx.recv_timeout(Duration::from_secs(45)) {
                Ok(line) => {
                    started = Some((child, line));
                    break;
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    assert!(
                        attempt < 2,
                        "the provider did not start within 45 s, twice: {e}"
                    );
                    eprintln!("the provider did not start within 45 s ({e}): starting another");
                }
            }
        }
        let (child, line) = started.expect("a provider started");
        let v: serde_json::Value = serde_json::from_str(&line).expect("the provider's first line");
        OidcProvider {
            child,
            issuer: v["issuer"].as_str().expect("issuer").to_string(),
            ca_pem: issued.ca_pem,
            spki_sha256: issued.spki_sha256,
            files,
        }
    }

    /// keygate's settings for this provider.
    pub fn keygate_env(&self) -> Vec<(String, String)> {
        provider_env(&self.issuer, &self.files[0])
    }

    /// The person's browser on the provider's side.
    pub fn agent(&self) -> TlsAgent {
        TlsAgent::new(&self.ca_pem)
    }
}

/// The settings that make keygate sign people in with the provider at
/// `issuer` whose certificate `ca_file`'s CA signed (loopback allowed).
pub fn provider_env(issuer: &str, ca_file: &std::path::Path) -> Vec<(String, String)> {
    [
        ("KEYGATE_OIDC_ISSUER", issuer.to_string()),
        ("KEYGATE_OIDC_CLIENT_ID", OIDC_CLIENT_ID.to_string()),
        ("KEYGATE_OIDC_CLIENT_SECRET", OIDC_CLIENT_SECRET.to_string()),
        ("KEYGATE_OIDC_NAME", "Acme ID".to_string()),
        (
            "KEYGATE_OUTBOUND_ALLOWED_HOSTS",
            "127.0.0.1,localhost".to_string(),
        ),
        ("KEYGATE_OUTBOUND_CA_FILE", ca_file.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// `env` as the server takes it.
pub fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}
