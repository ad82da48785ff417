//! Operations: `/metrics` (counters that move with their events, no secret in
//! them, an own listener), `/healthz` and `/readyz` (an outage and the recovery
//! without a restart), request ids and the request log, JSON logs, online
//! backup and restore, shell completions and the examples in every `--help`.

use crate::support::*;
use diesel::connection::SimpleConnection;
use diesel::Connection;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod backup;
mod health_logs;
mod help;
mod metrics;
mod usage;

/// Every tag name a credential sees, walking the pages.
fn tag_names(s: &Server, credential: &str) -> Vec<String> {
    let mut http = s.client();
    let mut names = Vec::new();
    let mut after = String::new();
    loop {
        let r = http.bearer_get(
            &format!("/v1/tags?limit=100&starting_after={after}"),
            credential,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        let data = v["data"].as_array().unwrap();
        for t in data {
            names.push(t["name"].as_str().unwrap().to_string());
        }
        match (v["has_more"].as_bool(), data.last()) {
            (Some(true), Some(last)) => after = last["id"].as_str().unwrap().to_string(),
            _ => return names,
        }
    }
}

/// What the database holds, in a form that shows any change.
fn state(db: &TestDb) -> String {
    db.text(
        "SELECT (SELECT COUNT(*) FROM workspaces) || '/' || (SELECT COUNT(*) FROM api_keys) \
         || '/' || (SELECT MAX(id) FROM workspaces) AS v",
    )
    .unwrap()
}

fn keygate(args: &[&str]) -> CliOut {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("DATABASE_URL")
        // Nothing here may need a database.
        .env("KEYGATE_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .expect("run keygate");
    CliOut::from(out)
}
