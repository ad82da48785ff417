//! API keys: the whole lifecycle, in the CLI and the settings pages: generate,
//! show once, list, search, rotate, revoke, expire, count usage, and every refusal
//! (duplicates, past dates, secret-looking names, members, forged forms, plans).

use crate::support::*;
use serde_json::Value;
use std::time::Duration;

mod create;
mod key_page;
mod list;
mod refusals;
mod rotate_revoke;
mod usage;

fn days_from_today(n: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(n))
        .format("%Y-%m-%d")
        .to_string()
}

fn keys_page(http: &mut Http, ws: &str) -> Resp {
    http.get(&format!("/settings/api-keys?workspace={ws}"))
}

/// Loads the keys page for its CSRF token, then posts the generate form.
fn generate(http: &mut Http, ws: &str, name: &str, access: &str, expires: &str) -> Resp {
    let page = keys_page(http, ws);
    assert_eq!(page.status, 200, "keys page: {}", page.body);
    let csrf = hidden(&page.body, "csrf_token").expect("the page has a CSRF token");
    http.post_form(
        "/settings/api-keys",
        &[
            ("csrf_token", &csrf),
            ("workspace_id", ws),
            ("name", name),
            ("access", access),
            ("expires", expires),
        ],
    )
}

fn csrf_of(http: &mut Http, ws: &str) -> String {
    let page = keys_page(http, ws);
    hidden(&page.body, "csrf_token").expect("csrf_token")
}

fn rotate_in_page(http: &mut Http, id: &str, csrf: &str) -> Resp {
    http.post_form(
        &format!("/settings/api-keys/{id}/rotate"),
        &[("csrf_token", csrf)],
    )
}

fn revoke_in_page(http: &mut Http, id: &str, csrf: &str, typed: &str) -> Resp {
    http.post_form(
        &format!("/settings/api-keys/{id}/revoke"),
        &[("csrf_token", csrf), ("confirm_name", typed)],
    )
}

fn list(db: &TestDb, ws: &str) -> Vec<Value> {
    db.json_lines(&["apikey", "list", "--workspace", ws])
}

fn listed(db: &TestDb, ws: &str, name: &str) -> Value {
    list(db, ws)
        .into_iter()
        .find(|k| k["name"] == name)
        .unwrap_or_else(|| panic!("no key named {name:?} in the list"))
}

/// `GET /v1/workspace` with the key: 200 or the contract's 401.
fn works(http: &mut Http, key: &str) -> bool {
    let r = http.bearer_get("/v1/workspace", key);
    match r.status {
        200 => true,
        401 => {
            r.assert_v1_error(401, "authentication_error", "invalid_api_key");
            assert!(
                r.header("www-authenticate")
                    .is_some_and(|w| w.starts_with("Bearer") && w.contains("invalid_token")),
                "{:?}",
                r.headers
            );
            false
        }
        other => panic!("unexpected status {other}: {}", r.body),
    }
}

/// The table row of the key with that name in the keys page.
fn row(html: &str, name: &str) -> String {
    let at = html
        .find(&name_cell(name))
        .unwrap_or_else(|| panic!("no row for {name:?}"));
    let start = html[..at].rfind("<tr>").expect("<tr>");
    let end = at + html[at..].find("</tr>").expect("</tr>");
    html[start..end].to_string()
}

/// A key's name as the list shows it: a link to the key's page.
fn name_cell(name: &str) -> String {
    format!(">{name}</a>")
}

/// A table cell's text, whatever the cell's attributes.
fn cell(text: &str) -> String {
    format!(">{text}</td>")
}

fn secret_hash(db: &TestDb, id: &str) -> String {
    db.text(&format!(
        "SELECT secret_hash AS v FROM api_keys WHERE id = '{id}'"
    ))
    .expect("the key's row")
}
