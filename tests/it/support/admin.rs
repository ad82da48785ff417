//! The admin API as the product's back end speaks it: an admin token made
//! with the CLI, and JSON requests with it.

use super::db::TestDb;
use super::http::{Http, Resp};
use super::server::Server;
use serde_json::Value;

impl TestDb {
    /// `keygate admin-token create --name NAME`: the token.
    pub fn admin_token(&self, name: &str) -> String {
        let v = self.json(&["admin-token", "create", "--name", name]);
        v["token"].as_str().expect("token").to_string()
    }
}

/// A client of `/admin/v1` with one admin token.
pub struct Admin {
    pub http: Http,
    pub token: String,
}

impl Admin {
    /// A new admin token on `server`'s database, and a client with it.
    pub fn new(server: &Server) -> Admin {
        Admin::with_token(server, server.db.admin_token("product-backend"))
    }

    pub fn with_token(server: &Server, token: String) -> Admin {
        Admin {
            http: server.client(),
            token,
        }
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    pub fn get(&mut self, path: &str) -> Resp {
        let auth = self.auth();
        self.http
            .get_with(&format!("/admin/v1{path}"), &[("Authorization", &auth)])
    }

    /// A JSON request; `extra` headers are added (e.g. `Idempotency-Key`).
    pub fn send(&mut self, method: &str, path: &str, body: &Value, extra: &[(&str, &str)]) -> Resp {
        self.send_raw(method, path, &body.to_string(), extra)
    }

    pub fn send_raw(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
        extra: &[(&str, &str)],
    ) -> Resp {
        let auth = self.auth();
        let mut headers = vec![
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        headers.extend_from_slice(extra);
        self.http
            .send(method, &format!("/admin/v1{path}"), &headers, body)
    }

    pub fn post(&mut self, path: &str, body: &Value) -> Resp {
        self.send("POST", path, body, &[])
    }

    pub fn delete(&mut self, path: &str) -> Resp {
        let auth = self.auth();
        self.http.send(
            "DELETE",
            &format!("/admin/v1{path}"),
            &[("Authorization", &auth)],
            "",
        )
    }

    /// Creates a workspace; its object.
    pub fn workspace(&mut self, name: &str) -> Value {
        let r = self.post("/workspaces", &serde_json::json!({"name": name}));
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()
    }

    /// Creates a person without a password; their object.
    pub fn person(&mut self, email: &str) -> Value {
        let r = self.post("/people", &serde_json::json!({"email": email}));
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()
    }

    /// Every row of a list, page by page with `limit`.
    pub fn all(&mut self, path: &str, limit: u32) -> Vec<Value> {
        let mut rows = Vec::new();
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
                None => format!("{path}{sep}limit={limit}"),
            };
            let r = self.get(&url);
            assert_eq!(r.status, 200, "{}", r.body);
            let v = r.json();
            rows.extend(v["data"].as_array().expect("data").iter().cloned());
            match v["next_cursor"].as_str() {
                Some(c) => {
                    assert_eq!(v["has_more"], true);
                    cursor = Some(c.to_string())
                }
                None => {
                    assert_eq!(v["has_more"], false);
                    return rows;
                }
            }
        }
    }
}

/// Asserts the `/v1` error envelope with `status` and `code`.
pub fn assert_admin_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "body: {}", r.body);
    let v = r.json();
    assert_eq!(v["error"]["code"], code, "body: {}", r.body);
    assert!(v["error"]["type"].is_string() && v["error"]["message"].is_string());
}
