//! Sending domains through the real server, with a real DNS server started by
//! the tests (`support::dns`): verification by DNS (CLI, `/v1`, settings),
//! large answers over TCP, SERVFAIL and timeouts, a domain claimed by two
//! workspaces, bad names; mailboxes only in verified domains; and SMTP logins
//! through the real Postfix refused for keys of removed or failed domains,
//! outside their address allowlist, or past their last day.

use crate::support::dns::{Dnsmasq, ServFail, Silent};
use crate::support::*;
use serde_json::Value;
use std::time::Duration;

mod mailboxes;
mod smtp;
mod verification;

/// A server asking `dns` for records.
fn server_with_dns(b: Backend, dns: &str, extra: &[(&str, &str)]) -> Fixture {
    let mut env = vec![("KEYGATE_DNS_SERVER", dns)];
    env.extend_from_slice(extra);
    Fixture::with_server(Server::start_with(TestDb::new(b), &env))
}

fn s(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
        .to_string()
}

/// `domain add` (pending); the printed object.
fn add(db: &TestDb, ws: &str, domain: &str) -> Value {
    db.json(&["domain", "add", "--workspace", ws, "--domain", domain])
}

/// The workspace's domains (`domain list`), by domain.
fn listed(db: &TestDb, ws: &str, domain: &str) -> Value {
    db.json_lines(&["domain", "list", "--workspace", ws])
        .into_iter()
        .find(|d| d["domain"] == domain)
        .unwrap_or_else(|| panic!("{domain} not listed"))
}

/// `domain verify ID` asking `dns`.
fn verify_cli(db: &TestDb, dns: &str, id: &str) -> CliOut {
    db.cli_env(
        &["--json", "domain", "verify", id],
        &[("KEYGATE_DNS_SERVER", dns)],
    )
}

/// The record a domain asks for, as dnsmasq takes it.
fn record(d: &Value) -> (String, String) {
    (s(d, "txt_name"), s(d, "txt_value"))
}

fn publish(dns: &mut Dnsmasq, records: &[(String, String)]) {
    let refs: Vec<(&str, &str)> = records
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    dns.publish(&refs);
}

/// The security log's actions for `subject`.
fn actions_on(db: &TestDb, ws: &str, subject: &str) -> Vec<String> {
    db.json_lines(&["audit", "list", "--workspace", ws, "--limit", "200"])
        .into_iter()
        .filter(|e| e["subject"] == subject)
        .map(|e| s(&e, "action"))
        .collect()
}

/// The settings page's CSRF token for the owner.
fn csrf(http: &mut Http, ws: &str) -> String {
    let page = http.get(&format!("/settings/mailboxes?workspace={ws}"));
    hidden(&page.body, "csrf_token").expect("the page has a CSRF token")
}

/// The page's error flash, if any.
fn flash_error(body: &str) -> Option<String> {
    let start = body.find("<p class=\"flash error\" role=\"alert\">")?;
    let rest = &body[start..];
    let open = rest.find('>')? + 1;
    let close = rest.find("</p>")?;
    Some(rest[open..close].to_string())
}
