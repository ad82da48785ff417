//! What a browser and a client app do over several requests: signing in, and
//! the authorization code flow with PKCE (authorize → consent → token).

use crate::http::{form, Conn, FORM};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A PKCE verifier and its S256 challenge (RFC 7636 §4.1–4.2).
pub fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The value of a hidden form field of a page.
fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// Signs in with a password as the login page does; returns the session
/// cookie (`keygate_session=…`).
pub fn login(conn: &mut Conn, email: &str, password: &str) -> Result<String, String> {
    let page = conn.send("GET", "/login", &[], "");
    let csrf = page
        .cookie("keygate_login_csrf")
        .ok_or("no login CSRF cookie")?;
    let r = conn.send(
        "POST",
        "/login",
        &[("Cookie", &format!("keygate_login_csrf={csrf}")), FORM],
        &form(&[
            ("email", email),
            ("password", password),
            ("csrf_token", &csrf),
            ("next", "/settings"),
        ]),
    );
    let session = r.cookie("keygate_session").ok_or("login failed")?;
    Ok(format!("keygate_session={session}"))
}

/// Who goes through the flow: a signed-in owner, the client and the
/// workspace the owner approves it for.
pub struct Flow {
    /// The owner's session cookie.
    pub cookie: String,
    pub client_id: String,
    /// The client's `Authorization: Basic …`.
    pub basic: String,
    pub workspace_id: String,
    pub redirect_uri: String,
}

/// authorize → consent → approve → token; returns the token response.
pub fn flow(conn: &mut Conn, f: &Flow) -> Option<Value> {
    let (verifier, challenge) = pkce();
    let q = form(&[
        ("response_type", "code"),
        ("client_id", &f.client_id),
        ("redirect_uri", &f.redirect_uri),
        ("scope", "workspace:read tags:read"),
        ("state", "s"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let page = conn.send(
        "GET",
        &format!("/oauth/authorize?{q}"),
        &[("Cookie", &f.cookie)],
        "",
    );
    let html = String::from_utf8_lossy(&page.body);
    let consent_id = hidden(&html, "consent_id")?;
    let csrf = hidden(&html, "csrf_token")?;
    let body = form(&[
        ("consent_id", &consent_id),
        ("csrf_token", &csrf),
        ("workspace_id", &f.workspace_id),
        ("decision", "approve"),
    ]);
    let r = conn.send(
        "POST",
        "/oauth/authorize",
        &[("Cookie", &f.cookie), FORM],
        &body,
    );
    let location = r.header("location")?.to_string();
    let url = url::Url::parse(&location).ok()?;
    let code = url.query_pairs().find(|(k, _)| k == "code")?.1.into_owned();
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &f.redirect_uri),
        ("code_verifier", &verifier),
    ]);
    let t = conn.send(
        "POST",
        "/oauth/token",
        &[("Authorization", &f.basic), FORM],
        &body,
    );
    (t.status == 200).then(|| t.json())
}
