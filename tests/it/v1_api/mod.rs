//! The protected API `/v1`: the one bearer check (API keys and OAuth access
//! tokens, only from `Authorization: Bearer`), scopes, workspace isolation, the
//! tags and forms resources, and the error envelope for every way a request can
//! be wrong, including a deterministic fuzz of headers and bodies.

use crate::support::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

mod access;
mod authentication;
mod fuzz;
mod resources;

const ALL_SCOPES: &str = "workspace:read tags:read tags:write forms:read forms:write";

// ---------------------------------------------------------------- helpers

fn unauthenticated_body() -> Value {
    json!({"error": {
        "type": "authentication_error",
        "code": "invalid_api_key",
        "message": "A valid workspace API key is required."
    }})
}

/// Any `/v1` error: a JSON envelope with a status, type, code and message.
fn assert_envelope(r: &Resp, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{:?}",
        r.headers
    );
    let v = r.json();
    let e = &v["error"];
    for field in ["type", "code", "message"] {
        assert!(
            e[field].as_str().is_some_and(|x| !x.is_empty()),
            "no {field}: {}",
            r.body
        );
    }
    assert_eq!(v.as_object().unwrap().len(), 1, "{}", r.body);
    v
}

fn create(http: &mut Http, path: &str, credential: &str, name: &str) -> Value {
    let r = http.bearer_post_json(path, credential, &json!({ "name": name }).to_string());
    assert_eq!(r.status, 201, "create {name:?} at {path}: {}", r.body);
    r.json()
}

fn names(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|o| s(o, "name"))
        .collect()
}

fn list(http: &mut Http, path: &str, credential: &str) -> Value {
    let r = http.bearer_get(path, credential);
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json()
}
