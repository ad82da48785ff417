//! API key features through the real server: leak reports in GitHub's
//! secret-scanning partner format, address allowlists (IPv4, IPv6, behind a
//! trusted proxy and behind an untrusted one), rotation with a grace period on
//! two nodes, custom scopes on every `/v1` route, the settings forms, and the
//! CLI's refusals.

use crate::support::*;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod allowlists;
mod cli_refusals;
mod leak_reports;
mod rotation;
mod scopes;
mod settings;
mod usage;

// ---------------------------------------------------------------- helpers

fn sha_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn base62_6(mut n: u32) -> String {
    const A: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = A[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("ascii")
}

/// A well-formed credential (shape and checksum) that keygate never issued.
fn credential(prefix: &str, public_id: &str, secret: &str) -> String {
    let body = format!("{prefix}{public_id}_{secret}");
    let sum = base62_6(crc32fast::hash(body.as_bytes()));
    body + &sum
}

fn random_credential(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let secret = uuid::Uuid::new_v4().simple().to_string();
    credential(prefix, &id[..10], &secret)
}

fn create(db: &TestDb, ws: &str, name: &str, extra: &[&str]) -> Value {
    let mut args = vec!["apikey", "create", "--workspace", ws, "--name", name];
    args.extend_from_slice(extra);
    db.json(&args)
}

fn listed(db: &TestDb, ws: &str, id: &str) -> Value {
    db.json_lines(&["apikey", "list", "--workspace", ws])
        .into_iter()
        .find(|k| k["id"] == id)
        .unwrap_or_else(|| panic!("key {id} not listed"))
}

fn audit(db: &TestDb, ws: &str) -> Vec<Value> {
    db.json_lines(&["audit", "list", "--workspace", ws])
}

fn secret_hash(db: &TestDb, id: &str) -> Option<String> {
    db.text(&format!(
        "SELECT secret_hash AS v FROM api_keys WHERE id = '{id}'"
    ))
}

/// `n` read-only keys written straight into the table (the CLI would take
/// minutes), their public ids starting with `tag`; their tokens.
fn bulk_keys(db: &TestDb, ws: &str, n: usize, tag: &str) -> Vec<String> {
    let now = chrono::Utc::now().timestamp();
    let mut values = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..n {
        let public_id = format!("{tag}{i:09}");
        let token = credential(
            "kgk_",
            &public_id,
            &uuid::Uuid::new_v4().simple().to_string(),
        );
        values.push(format!(
            "('{}', '{ws}', 'bulk-{i}', '{public_id}', '{}', 'read_only', 'cli', {now}, 0)",
            uuid::Uuid::new_v4(),
            sha_hex(&token)
        ));
        tokens.push(token);
    }
    db.execute(&format!(
        "INSERT INTO api_keys (id, workspace_id, name, public_id, secret_hash, access, created_by, created_at, usage_count) VALUES {}",
        values.join(",")
    ));
    tokens
}
