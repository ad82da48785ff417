//! A workspace with an owner, a confidential and a public client over a running
//! server, and the OAuth steps a client application takes with it.

use super::db::{Backend, TestDb};
use super::http::{basic, hidden, param, Http, Resp};
use super::server::{free_port, Server};
use super::unique;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = format!("{}{}", unique(), unique());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub const PASSWORD: &str = "correct horse battery";
pub const REDIRECT: &str = "http://127.0.0.1:9/callback";
pub const WORKSPACE_NAME: &str = "Acme";
/// The confidential client's name, as the consent and settings pages show it.
pub const APP_NAME: &str = "Acme CRM";

/// A workspace with an owner, a confidential and a public client, over a server.
pub struct Fixture {
    pub server: Server,
    pub workspace_id: String,
    pub owner_id: String,
    pub owner_email: String,
    pub client_id: String,
    pub client_secret: String,
    pub public_client_id: String,
    /// Where both clients are registered to be sent back.
    pub redirect_uri: String,
}

impl Fixture {
    pub fn new(backend: Backend) -> Fixture {
        Fixture::with_server(Server::start(backend))
    }

    pub fn with_server(server: Server) -> Fixture {
        Fixture::with_redirect(server, REDIRECT)
    }

    /// The fixture with the clients registered for another redirect URI (the
    /// browser tests' callback server).
    pub fn with_redirect(server: Server, redirect_uri: &str) -> Fixture {
        let db = &server.db;
        let ws_id = db.create_workspace(WORKSPACE_NAME);
        let email = format!("owner-{}@example.com", &unique()[..8]);
        let user_id = db.create_user(&email);
        db.add_member(&ws_id, &user_id, "owner");
        let client = db.create_client(APP_NAME, redirect_uri);
        let public = db.create_public_client("Acme Mobile", redirect_uri);
        Fixture {
            workspace_id: ws_id,
            owner_id: user_id,
            owner_email: email,
            client_id: client["client_id"].as_str().unwrap().to_string(),
            client_secret: client["client_secret"].as_str().unwrap().to_string(),
            public_client_id: public["client_id"].as_str().unwrap().to_string(),
            redirect_uri: redirect_uri.to_string(),
            server,
        }
    }

    pub fn db(&self) -> &TestDb {
        &self.server.db
    }

    /// A person signed in through the login form.
    pub fn signed_in(&self, email: &str) -> Http {
        let mut http = self.server.client();
        let r = http.login(email, PASSWORD);
        assert_eq!(r.status, 303, "login failed: {}", r.body);
        http
    }

    pub fn owner(&self) -> Http {
        self.signed_in(&self.owner_email)
    }

    /// Adds a user with a role in the fixture's workspace; returns (id, email).
    pub fn add_user(&self, role: &str) -> (String, String) {
        let email = format!("{role}-{}@example.com", &unique()[..8]);
        let id = self.db().create_user(&email);
        self.db().add_member(&self.workspace_id, &id, role);
        (id, email)
    }

    pub fn authorize_query(&self, client_id: &str, scope: &str, challenge: &str) -> String {
        self.authorize_query_with_state(client_id, scope, "xyz-state", challenge)
    }

    pub fn authorize_query_with_state(
        &self,
        client_id: &str,
        scope: &str,
        state: &str,
        challenge: &str,
    ) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", scope)
            .append_pair("state", state)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .finish()
    }

    /// Runs authorize → consent → approve as the signed-in person; returns the
    /// redirect's parameters.
    pub fn approve(
        &self,
        http: &mut Http,
        client_id: &str,
        scope: &str,
        challenge: &str,
    ) -> Vec<(String, String)> {
        let page = http.get(&format!(
            "/oauth/authorize?{}",
            self.authorize_query(client_id, scope, challenge)
        ));
        let r = approve_consent(http, &page, &self.workspace_id);
        assert!(
            r.location().starts_with(&self.redirect_uri),
            "redirected to {}",
            r.location()
        );
        r.location_params()
    }

    /// The workspace's authorized-apps rows (`apps list --json`).
    pub fn apps(&self) -> Vec<Value> {
        self.db()
            .json_lines(&["apps", "list", "--workspace", &self.workspace_id])
    }

    /// The authorized-apps row of `client_id` in the workspace.
    pub fn app_row(&self, client_id: &str) -> Value {
        self.apps()
            .into_iter()
            .find(|a| a["client_id"] == client_id)
            .unwrap_or_else(|| panic!("no authorized app of client {client_id}"))
    }

    /// A code for the confidential client, with its verifier.
    pub fn code(&self, scope: &str) -> (String, String) {
        let (verifier, challenge) = pkce();
        let mut http = self.owner();
        let params = self.approve(&mut http, &self.client_id, scope, &challenge);
        (param(&params, "code").expect("code").to_string(), verifier)
    }

    /// Exchanges a code as the confidential client (client_secret_basic).
    pub fn exchange(&self, code: &str, verifier: &str) -> Resp {
        self.server.client().post_form_with(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.redirect_uri),
                ("code_verifier", verifier),
            ],
            &[("Authorization", &self.basic())],
        )
    }

    pub fn basic(&self) -> String {
        basic(&self.client_id, &self.client_secret)
    }

    /// Tokens for the confidential client: (access, refresh).
    pub fn tokens(&self, scope: &str) -> (String, String) {
        tokens_approved_by(self, &self.owner_email, scope)
    }

    pub fn refresh(&self, refresh_token: &str) -> Resp {
        self.server.client().post_form_with(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
            &[("Authorization", &self.basic())],
        )
    }

    pub fn introspect(&self, token: &str) -> Value {
        let r = self.server.client().post_form_with(
            "/oauth/introspect",
            &[("token", token)],
            &[("Authorization", &self.basic())],
        );
        assert_eq!(r.status, 200, "introspect: {}", r.body);
        r.json()
    }

    pub fn api_key(&self, access: &str) -> String {
        let name = format!("key-{}", &unique()[..6]);
        let v = self.db().create_api_key(&self.workspace_id, &name, access);
        v["key"].as_str().unwrap().to_string()
    }
}

/// Approves the consent page `page` for `workspace_id` as the signed-in
/// person; the 303 back to the app.
pub fn approve_consent(http: &mut Http, page: &Resp, workspace_id: &str) -> Resp {
    assert_eq!(page.status, 200, "consent page: {}", page.body);
    let consent_id = hidden(&page.body, "consent_id").expect("consent_id");
    let csrf = hidden(&page.body, "csrf_token").expect("csrf_token");
    let r = http.post_form(
        "/oauth/authorize",
        &[
            ("consent_id", &consent_id),
            ("csrf_token", &csrf),
            ("workspace_id", workspace_id),
            ("decision", "approve"),
        ],
    );
    assert_eq!(r.status, 303, "approve: {}", r.body);
    r
}

/// Approves the consent page `page` for the fixture's workspace; the 303.
pub fn approve_page(f: &Fixture, http: &mut Http, page: &Resp) -> Resp {
    approve_consent(http, page, &f.workspace_id)
}

/// Exchanges a code as a public client (`none`).
pub fn exchange_public(
    server: &Server,
    client_id: &str,
    code: &str,
    redirect: &str,
    verifier: &str,
) -> Resp {
    server.client().post_form(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ],
    )
}

/// Tokens from a consent that `email` approved for the fixture's confidential client.
/// The code flow for the confidential client, approved by `email`: (access, refresh).
pub fn tokens_approved_by(f: &Fixture, email: &str, scope: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let mut http = f.signed_in(email);
    let params = f.approve(&mut http, &f.client_id, scope, &challenge);
    let code = param(&params, "code").expect("code");
    let r = f.exchange(code, &verifier);
    assert_eq!(r.status, 200, "token: {}", r.body);
    let v = r.json();
    (
        v["access_token"].as_str().unwrap().to_string(),
        v["refresh_token"].as_str().unwrap().to_string(),
    )
}

/// A second keygate process on the fixture's database, with the same issuer.
/// A second node on the same database and issuer.
pub fn second_node(f: &Fixture, env: &[(&str, &str)]) -> Server {
    let mut all = vec![("KEYGATE_ISSUER", f.server.base.as_str())];
    all.extend_from_slice(env);
    Server::spawn(TestDb::reuse(f.db()), free_port(), &all)
}
