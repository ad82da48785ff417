//! Mailboxes and mailbox auth keys, through the real server: the CLI (shapes and
//! every refusal), `/v1/mailboxes` and mailbox-restricted API keys, the settings
//! Mailboxes tab, and SMTP AUTH through a real Postfix asking keygate's
//! Dovecot-protocol listener, on one node and across two.

use crate::postfix::{free_port as smtp_free_port, submit, Auth, Postfix};
use crate::support::*;
use base64::Engine;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

mod auth_key_page;
mod cli;
mod settings;
pub(crate) mod smtp;
mod v1;

/// The member names of a JSON object, sorted.
fn members(v: &Value) -> Vec<String> {
    let mut names: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn create_mailbox(db: &TestDb, ws: &str, address: &str) -> String {
    let v = db.json(&["mailbox", "create", "--workspace", ws, "--address", address]);
    s(&v, "id")
}

/// (key id, full key)
fn create_auth_key(db: &TestDb, mailbox: &str, name: &str) -> (String, String) {
    let v = db.json(&["authkey", "create", "--mailbox", mailbox, "--name", name]);
    (s(&v, "id"), s(&v, "key"))
}

fn auth_keys(db: &TestDb, mailbox: &str) -> Vec<Value> {
    db.json_lines(&["authkey", "list", "--mailbox", mailbox])
}

fn auth_key(db: &TestDb, mailbox: &str, id: &str) -> Value {
    auth_keys(db, mailbox)
        .into_iter()
        .find(|k| k["id"] == id)
        .unwrap_or_else(|| panic!("no auth key {id} in the list"))
}

/// Row counts of every table a refused command could have touched.
fn counts(db: &TestDb) -> Vec<i64> {
    ["mailboxes", "mailbox_auth_keys", "api_keys", "audit_events"]
        .iter()
        .map(|t| db.count(t))
        .collect()
}

fn mailboxes_page(http: &mut Http, ws: &str, mailbox: Option<&str>) -> Resp {
    match mailbox {
        Some(m) => http.get(&format!("/settings/mailboxes?workspace={ws}&mailbox={m}")),
        None => http.get(&format!("/settings/mailboxes?workspace={ws}")),
    }
}

fn csrf(http: &mut Http, ws: &str) -> String {
    let page = mailboxes_page(http, ws, None);
    hidden(&page.body, "csrf_token").expect("the page has a CSRF token")
}
