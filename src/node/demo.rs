//! `keygate demo`: a workspace, an owner and a public client to try the flow in a
//! browser, plus a callback page that shows the code and how to exchange it.

use crate::accounts::{self, Plan, Role};
use crate::config::Config;
use crate::db::DbConn;
use crate::error::Result;
use crate::oauth::clients;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

pub const EMAIL: &str = "owner@demo.keygate.local";
/// A demo account on the operator's own machine; printed by `keygate demo`.
pub const PASSWORD: &str = "demo-owner-pw";
const CLIENT_NAME: &str = "keygate demo app";
/// A fixed verifier so the printed authorize URL and curl line fit together.
pub const VERIFIER: &str = "keygate-demo-verifier-0123456789-abcdefghijklmnop";

pub struct Demo {
    pub workspace_id: String,
    pub client_id: String,
    pub redirect_uri: String,
}

pub fn redirect_uri(config: &Config) -> String {
    format!("{}/demo/callback", config.issuer)
}

pub fn challenge() -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()))
}

/// Creates what is absent; returns what exists.
pub fn seed(conn: &mut DbConn, config: &Config) -> Result<Demo> {
    let user = match accounts::find_user_by_email(conn, EMAIL)? {
        Some(u) => u,
        None => accounts::create_user(conn, EMAIL, PASSWORD)?,
    };
    let workspaces = accounts::workspaces_of(conn, &user.id)?;
    let workspace_id = match workspaces.first() {
        Some((w, _)) => w.id.clone(),
        None => {
            let ws = accounts::create_workspace(conn, "Demo workspace", Plan::Pro)?;
            accounts::add_member(conn, &ws.id, &user.id, Role::Owner)?;
            ws.id
        }
    };
    let redirect = redirect_uri(config);
    let existing = clients::find_id_by_name(conn, CLIENT_NAME, Some(&redirect))?;
    let client_id = match existing {
        Some(id) => id,
        None => {
            clients::create(conn, CLIENT_NAME, std::slice::from_ref(&redirect), true)?
                .client
                .id
        }
    };
    Ok(Demo {
        workspace_id,
        client_id,
        redirect_uri: redirect,
    })
}

pub fn authorize_url(config: &Config, demo: &Demo) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &demo.client_id)
        .append_pair("redirect_uri", &demo.redirect_uri)
        .append_pair("scope", "workspace:read tags:read tags:write")
        .append_pair("state", "demo")
        .append_pair("code_challenge", &challenge())
        .append_pair("code_challenge_method", "S256")
        .finish();
    format!("{}/oauth/authorize?{q}", config.issuer)
}

/// The demo client's id, if it was seeded.
pub fn client_id(conn: &mut DbConn) -> Result<Option<String>> {
    clients::find_id_by_name(conn, CLIENT_NAME, None)
}
