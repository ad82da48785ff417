//! node-oidc-provider beside keygate, in the same run and placement: its
//! introspection of a client credentials token, for the performance issue's
//! "introspection ≥ 10 × node-oidc-provider per request". Needs `node` and
//! the tests' npm packages (`./scripts/test` installs them); without them the
//! comparison is skipped, with a word why.

use crate::http::{form, Conn, FORM};
use crate::load::{self, Stats};
use crate::nodes::{free_port, Nodes};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long node-oidc-provider is loaded before it is measured.
const WARM_UP: Duration = Duration::from_secs(3);

/// The scenario's name in the report.
pub const NAME: &str = "introspection (node-oidc-provider)";

/// The tests' npm packages, which hold oidc-provider.
fn node_modules() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/node/node_modules")
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node/oidc-provider.mjs")
}

/// Starts node-oidc-provider, takes one token per connection and loads its
/// introspection endpoint for `duration`; `Ok(None)`: it could not run here.
pub fn introspection(
    pin: bool,
    connections: usize,
    duration: Duration,
) -> Result<Option<Stats>, String> {
    let modules = node_modules();
    if !modules.join("oidc-provider").is_dir() {
        eprintln!(
            "node-oidc-provider comparison skipped: no {} (./scripts/test installs it)",
            modules.join("oidc-provider").display()
        );
        return Ok(None);
    }
    let port = free_port()?;
    let child = Command::new("node")
        .arg(script())
        .arg(port.to_string())
        .arg(&modules)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("node-oidc-provider comparison skipped: `node` could not be started");
        return Ok(None);
    };
    // It prints its issuer once it listens. Its output stays open while it
    // runs: a closed pipe would end it at its next write.
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    stdout.read_line(&mut line).map_err(|e| e.to_string())?;
    let http = format!("127.0.0.1:{port}");
    let nodes = Nodes::external(child, http.clone(), pin);
    if line.trim().is_empty() {
        return Err("node-oidc-provider did not start".into());
    }
    let basic = format!("Basic {}", STANDARD.encode("bench:bench-secret"));
    let mut c = Conn::open(&http).map_err(|e| e.to_string())?;
    let mut states = Vec::new();
    for _ in 0..connections {
        let r = c.send(
            "POST",
            "/token",
            &[("Authorization", &basic), FORM],
            "grant_type=client_credentials",
        );
        let token = r.json()["access_token"]
            .as_str()
            .ok_or("node-oidc-provider issued no token")?
            .to_string();
        states.push((basic.clone(), form(&[("token", &token)])));
    }
    // Node compiles its hot paths while it runs: a first load, not
    // measured, so that the measured one finds it warm.
    let warm = load::run(NAME, &nodes, WARM_UP, states.clone(), introspect);
    if warm.requests == 0 {
        return Err("node-oidc-provider answered no introspection".into());
    }
    let stats = load::run(NAME, &nodes, duration, states, introspect);
    drop(nodes);
    drop(stdout);
    Ok(Some(stats))
}

fn introspect(c: &mut Conn, state: &mut (String, String)) -> Option<bool> {
    crate::scenarios::introspect_at(c, "/token/introspection", state)
}
