//! Protected resources: registering one through the CLI, tokens issued for
//! it (RFC 8707), and the gateway check as a reverse proxy asks it.

use super::db::TestDb;
use super::fixture::{approve_page, pkce, Fixture};
use super::http::{basic, param, Resp};
use super::server::Server;
use serde_json::Value;

impl TestDb {
    /// `keygate --json resource create`, which must succeed.
    pub fn create_resource(&self, identifier: &str, routes: &[&str]) -> Value {
        let mut args = vec![
            "resource",
            "create",
            "--identifier",
            identifier,
            "--name",
            "Acme API",
        ];
        for r in routes {
            args.extend(["--route", r]);
        }
        self.json(&args)
    }
}

/// The client's `client_secret_basic` header for a resource's credentials.
pub fn resource_basic(resource: &Value) -> String {
    basic(
        resource["client_id"].as_str().unwrap(),
        resource["client_secret"].as_str().unwrap(),
    )
}

/// The code flow for the fixture's confidential client with `resource`
/// named at the authorization request; returns the consent page and the
/// token response.
pub fn resource_tokens(f: &Fixture, resource: &str, scope: &str) -> (Resp, Value) {
    let (verifier, challenge) = pkce();
    let mut http = f.owner();
    let query = format!(
        "{}&{}",
        f.authorize_query(&f.client_id, scope, &challenge),
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("resource", resource)
            .finish()
    );
    let page = http.get(&format!("/oauth/authorize?{query}"));
    let done = approve_page(f, &mut http, &page);
    let params = done.location_params();
    let code = param(&params, "code").expect("a code");
    let r = f.exchange(code, &verifier);
    assert_eq!(r.status, 200, "token: {}", r.body);
    (page, r.json())
}

/// Introspection with a resource's credentials; the JSON answer.
pub fn introspect_as(server: &Server, resource: &Value, token: &str) -> Value {
    let r = server.client().post_form_with(
        "/oauth/introspect",
        &[("token", token)],
        &[("Authorization", &resource_basic(resource))],
    );
    assert_eq!(r.status, 200, "introspect: {}", r.body);
    r.json()
}

/// `GET /gateway/check?resource=…` as nginx's `auth_request` sends it.
pub fn gateway_check(
    server: &Server,
    resource: &str,
    method: &str,
    uri: &str,
    credential: Option<&str>,
) -> Resp {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("resource", resource)
        .finish();
    let auth = credential.map(|c| format!("Bearer {c}"));
    let mut headers = vec![("X-Original-Method", method), ("X-Original-URI", uri)];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    server
        .client()
        .get_with(&format!("/gateway/check?{query}"), &headers)
}
