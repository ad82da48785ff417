//! Client ID metadata documents through the real server: keygate fetches the
//! document of a URL `client_id` from a loopback HTTPS server (trusted through
//! KEYGATE_CIMD_CA_FILE, allowed through KEYGATE_CIMD_ALLOWED_HOSTS) at the
//! authorization and token endpoints. A bad document is an error page before
//! any login, never a redirect, and says nothing of the fetch itself (no
//! address, no connection detail: those are in the log). A client has no row
//! until a person approves it.

use crate::https_server::{HttpsServer, Reply};
use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

const PATH: &str = "/clients/app.json";
const REDIRECT_DOC: &str = "http://127.0.0.1/callback";

pub(crate) fn document(client_id: &str, redirect: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "Doc App",
        "client_uri": "https://docapp.example.com",
        "redirect_uris": [redirect],
        // Real documents list more than keygate offers (ChatGPT's does).
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_method": "client_secret_post",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "none"],
        "software_statement": "ignored",
    })
}

pub(crate) fn keygate_for(https: &HttpsServer, b: Backend, extra: &[(&str, &str)]) -> Fixture {
    let ca = https.ca_file().display().to_string();
    let mut env = vec![
        ("KEYGATE_CIMD_CA_FILE", ca.as_str()),
        ("KEYGATE_CIMD_ALLOWED_HOSTS", "127.0.0.1"),
    ];
    env.extend_from_slice(extra);
    Fixture::with_server(Server::start_with(TestDb::new(b), &env))
}

/// The authorization request of the document's client, without a session: a
/// refused document is a page, never a redirect, and never the login page.
fn refused_before_login(f: &Fixture, client_id: &str, mentions: &str) {
    let (_, challenge) = pkce();
    let r = f.server.client().get(&authorize_path(
        client_id,
        "http://127.0.0.1:5000/callback",
        "workspace:read",
        &challenge,
    ));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.header("location").is_none(),
        "redirected: {:?}",
        r.header("location")
    );
    assert!(r.body.contains(mentions), "{mentions:?} not in {}", r.body);
}

fn a_good_document_runs_the_whole_flow(b: Backend) {
    let https = HttpsServer::start();
    let client_id = https.url(PATH);
    https.set(PATH, Reply::json(&document(&client_id, REDIRECT_DOC)));
    let f = keygate_for(&https, b, &[]);

    let (verifier, challenge) = pkce();
    // RFC 8252 §7.3: a loopback redirect URI with any port.
    let redirect = "http://127.0.0.1:43210/callback";
    let path = authorize_path(&client_id, redirect, "workspace:read tags:read", &challenge);
    // Validated before login: a good request goes to /login.
    let anon = f.server.client().get(&path);
    assert_eq!(anon.status, 302);
    assert!(
        anon.location().starts_with("/login?"),
        "{}",
        anon.location()
    );
    // A redirect URI the document does not list: a page.
    let mut owner = f.owner();
    let bad = owner.get(&authorize_path(
        &client_id,
        "http://127.0.0.1/other",
        "workspace:read",
        &challenge,
    ));
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.header("location").is_none());

    let page = owner.get(&path);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Doc App"), "{}", page.body);
    assert!(
        page.body.contains("its details come from 127.0.0.1"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("127.0.0.1 (an app on this device)"),
        "{}",
        page.body
    );
    let code = code_of(&approve_page(&f, &mut owner, &page));
    let t = exchange_public(&f.server, &client_id, &code, redirect, &verifier);
    assert_eq!(t.status, 200, "{}", t.body);
    let v = t.json();
    let access = v["access_token"].as_str().unwrap();
    assert_eq!(f.server.v1_status(access), 200);
    let refreshed = f.server.client().post_form(
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", v["refresh_token"].as_str().unwrap()),
        ],
    );
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);

    // The authorization stores the URL as its client id.
    let apps = f.apps();
    assert_eq!(apps[0]["client_id"], client_id.as_str());
    assert_eq!(apps[0]["app_name"], "Doc App");
    let kind = f.db().text(&format!(
        "SELECT kind AS v FROM clients WHERE id = '{client_id}'"
    ));
    assert_eq!(kind.as_deref(), Some("metadata_document"));
    // A document client has no secret: a secret is refused.
    let with_secret = f.server.client().post_form_with(
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        &[("Authorization", &basic(&client_id, "guess"))],
    );
    with_secret.assert_oauth_error(401, "invalid_client");
    assert_eq!(
        https.hits(PATH),
        1,
        "the document came from the cache after the first fetch"
    );

    // The operator deletes it: its authorizations end, and its URL stays refused.
    let d = f.db().json(&["client", "delete", &client_id]);
    assert_eq!(d["revoked_authorizations"], 1);
    f.server
        .client()
        .bearer_get("/v1/workspace", access)
        .assert_v1_error(401, "authentication_error", "invalid_api_key");
    let again = owner.get(&path);
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(
        again.body.contains("removed by the operator"),
        "{}",
        again.body
    );
}

fn bad_documents_are_error_pages(b: Backend) {
    let https = HttpsServer::start();
    let f = keygate_for(&https, b, &[]);
    let id = |p: &str| https.url(p);

    https.set(
        "/mismatch.json",
        Reply::json(&document(
            "https://elsewhere.example/app.json",
            REDIRECT_DOC,
        )),
    );
    refused_before_login(&f, &id("/mismatch.json"), "client_id is not the URL");

    // What went wrong with the fetch is in the log only.
    const NOT_FETCHED: &str = "could not be fetched";
    https.set("/moved.json", Reply::redirect(302, &id("/mismatch.json")));
    refused_before_login(&f, &id("/moved.json"), NOT_FETCHED);

    let big = id("/big.json");
    https.set(
        "/big.json",
        Reply::json_of_size(document(&big, REDIRECT_DOC), 6 * 1024),
    );
    refused_before_login(&f, &big, NOT_FETCHED);

    let slow = id("/slow.json");
    https.set(
        "/slow.json",
        Reply::json(&document(&slow, REDIRECT_DOC)).delay(Duration::from_secs(7)),
    );
    let started = std::time::Instant::now();
    refused_before_login(&f, &slow, NOT_FETCHED);
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "waited {:?}",
        started.elapsed()
    );

    refused_before_login(&f, &id("/missing.json"), NOT_FETCHED);
    // The details are in the log (read from the process by another thread).
    for detail in ["redirect", "larger than", "took too long", "status 404"] {
        assert!(
            eventually(Duration::from_secs(3), || f.server.logs().contains(detail)),
            "{detail:?} not in the log"
        );
    }

    let text = id("/text.json");
    https.set("/text.json", Reply::raw(200, "application/json", "[1, 2]"));
    refused_before_login(&f, &text, "not a JSON object");

    // Errors are never cached: the document fixed, the same URL works.
    https.set(
        "/mismatch.json",
        Reply::json(&document(&id("/mismatch.json"), REDIRECT_DOC)),
    );
    let (_, challenge) = pkce();
    let r = f.server.client().get(&authorize_path(
        &id("/mismatch.json"),
        REDIRECT_DOC,
        "workspace:read",
        &challenge,
    ));
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(r.location().starts_with("/login?"));
    assert_eq!(f.db().count("authorizations"), 0);
}

fn a_private_address_is_not_fetched(b: Backend) {
    let https = HttpsServer::start();
    let client_id = https.url(PATH);
    https.set(PATH, Reply::json(&document(&client_id, REDIRECT_DOC)));
    // The CA is trusted, but 127.0.0.1 is not allow-listed.
    let ca = https.ca_file().display().to_string();
    let f = Fixture::with_server(Server::start_with(
        TestDb::new(b),
        &[
            ("KEYGATE_CIMD_CA_FILE", &ca),
            ("KEYGATE_CIMD_ALLOWED_HOSTS", ""),
        ],
    ));
    refused_before_login(&f, &client_id, "could not be fetched");
    assert!(
        eventually(Duration::from_secs(3), || f
            .server
            .logs()
            .contains("special-use address")),
        "{}",
        f.server.logs()
    );
    assert_eq!(https.connections(), 0, "nothing was connected to");
    // Nor at the token endpoint.
    let r = exchange_public(&f.server, &client_id, "code", REDIRECT_DOC, "verifier");
    r.assert_oauth_error(401, "invalid_client");
}

fn a_changed_document_is_read_after_the_cache_expires(b: Backend) {
    let https = HttpsServer::start();
    let client_id = https.url(PATH);
    https.set(
        PATH,
        Reply::json(&document(&client_id, "https://old.example.com/cb")),
    );
    let f = keygate_for(&https, b, &[("KEYGATE_CIMD_CACHE_TTL", "1")]);
    let mut owner = f.owner();
    let (verifier, challenge) = pkce();
    let old = authorize_path(
        &client_id,
        "https://old.example.com/cb",
        "workspace:read",
        &challenge,
    );
    let new = authorize_path(
        &client_id,
        "https://new.example.com/cb",
        "workspace:read",
        &challenge,
    );
    let page = owner.get(&old);
    assert_eq!(page.status, 200, "{}", page.body);
    let code = code_of(&approve_page(&f, &mut owner, &page));

    let mut changed = document(&client_id, "https://new.example.com/cb");
    changed["client_name"] = json!("Doc App 2");
    https.set(PATH, Reply::json(&changed));
    std::thread::sleep(Duration::from_millis(1500));
    let refused = owner.get(&old);
    assert_eq!(
        refused.status, 400,
        "the old redirect URI still works: {}",
        refused.body
    );
    let page = owner.get(&new);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Doc App 2"), "{}", page.body);
    // The row is brought up to date when a person approves the new document.
    approve_page(&f, &mut owner, &page);
    let name = f.db().text(&format!(
        "SELECT name AS v FROM clients WHERE id = '{client_id}'"
    ));
    assert_eq!(name.as_deref(), Some("Doc App 2"));
    assert!(https.hits(PATH) >= 2);

    // A document that went away stops the client at the token endpoint too.
    https.set(PATH, Reply::status(404));
    std::thread::sleep(Duration::from_millis(1500));
    let r = exchange_public(
        &f.server,
        &client_id,
        &code,
        "https://old.example.com/cb",
        &verifier,
    );
    r.assert_oauth_error(401, "invalid_client");
}

both_backends!(
    a_good_document_runs_the_whole_flow,
    bad_documents_are_error_pages,
    a_private_address_is_not_fetched,
    a_changed_document_is_read_after_the_cache_expires,
);
