//! The `keygate` command line: every admin command's success and its refusals
//! (non-zero, one line on stderr, nothing on stdout, no row changed), `--json`,
//! the database URL's precedence and spellings, `serve` on a database it cannot
//! open, and the CLI's revocations taking effect on a running server.

use crate::support::*;
use serde_json::Value;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod apikeys;
mod clients;
mod database;
mod members;
mod output;
mod workspaces_users;

/// Every table a command could write to.
const TABLES: &[&str] = &[
    "workspaces",
    "users",
    "memberships",
    "clients",
    "authorizations",
    "auth_codes",
    "refresh_tokens",
    "access_tokens",
    "api_keys",
    "tags",
    "forms",
    "audit_events",
    "signing_keys",
    "revocation_events",
    "sessions",
    "consent_requests",
    "usage_daily",
];

/// The row count of every table, read in one query: `table=n, …`.
fn snapshot(db: &TestDb) -> String {
    let parts: Vec<String> = TABLES
        .iter()
        .map(|t| format!("'{t}=' || CAST((SELECT COUNT(*) FROM {t}) AS TEXT)"))
        .collect();
    db.text(&format!("SELECT {} AS v", parts.join(" || ', ' || ")))
        .expect("row counts")
}

/// Runs a command that must be refused, once plainly and once with `--json`:
/// each time non-zero, one line on stderr mentioning `mentions`, nothing on
/// stdout, and not one row added or removed anywhere.
fn refused(db: &TestDb, args: &[&str], stdin: Option<&str>, mentions: &str) {
    let before = snapshot(db);
    for json in [false, true] {
        let mut all: Vec<&str> = if json { vec!["--json"] } else { vec![] };
        all.extend_from_slice(args);
        let out = db.cli_stdin(&all, stdin);
        eprintln!("keygate {all:?} -> {out:?}");
        out.assert_refused(mentions);
        assert_eq!(snapshot(db), before, "keygate {all:?} changed rows");
    }
}

fn assert_uuid(v: &Value) -> String {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("id is not a string: {v}"));
    assert!(
        s.len() == 36 && uuid::Uuid::parse_str(s).is_ok(),
        "not a UUID: {s:?}"
    );
    s.to_string()
}

fn assert_time(v: &Value) -> String {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("time is not a string: {v}"));
    assert!(
        s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        "not RFC 3339 UTC: {s:?}"
    );
    s.to_string()
}

/// Human-readable output: something, and not JSON.
fn assert_human(out: &CliOut) {
    assert_eq!(out.code, 0, "failed: {}", out.stderr);
    assert!(out.stderr.is_empty(), "wrote to stderr: {}", out.stderr);
    assert!(!out.stdout.trim().is_empty(), "printed nothing");
    for line in out.stdout.lines() {
        assert!(
            serde_json::from_str::<Value>(line).is_err() || line.trim().is_empty(),
            "human output is JSON: {line:?}"
        );
    }
}

fn workspace(db: &TestDb, name: &str) -> String {
    assert_uuid(&serde_json::json!(db.create_workspace(name)))
}

fn user(db: &TestDb, email: &str) -> String {
    let id = db.create_user(email);
    assert_uuid(&serde_json::json!(id))
}
