//! Client ID metadata documents and what an unauthenticated caller can make
//! keygate do with them (issue 25, item 3): no client row before a person
//! approves, first sightings counted against the registration quota,
//! `KEYGATE_CIMD=off`, fetches limited per address and per node, and errors
//! that say nothing of the fetch.

use crate::cimd_flow::{document, keygate_for};
use crate::https_server::{HttpsServer, Reply};
use crate::registration::register;
use crate::support::*;
use serde_json::json;

const REDIRECT: &str = "http://127.0.0.1/callback";

/// Whether keygate has a `clients` row for this id.
fn has_row(f: &Fixture, client_id: &str) -> bool {
    f.db()
        .text(&format!(
            "SELECT id AS v FROM clients WHERE id = '{client_id}'"
        ))
        .is_some()
}

/// A document client's authorization request, without a session, from
/// `address` (through the trusted proxy's `X-Forwarded-For`) when given.
fn authorize_anon(f: &Fixture, client_id: &str, address: Option<&str>) -> Resp {
    let (_, challenge) = pkce();
    let path = authorize_path(client_id, REDIRECT, "workspace:read", &challenge);
    let mut http = f.server.client();
    match address {
        Some(a) => http.get_with(&path, &[("X-Forwarded-For", a)]),
        None => http.get(&path),
    }
}

fn goes_to_login(r: &Resp) -> bool {
    r.status == 302 && r.location().starts_with("/login?")
}

/// An over-limit authorization request: a `429` page, never a redirect.
fn assert_too_many(r: &Resp) {
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("location").is_none());
    assert!(r.header("retry-after").is_some());
}

fn no_row_until_a_person_approves(b: Backend) {
    let https = HttpsServer::start();
    let client_id = https.url("/app.json");
    https.set("/app.json", Reply::json(&document(&client_id, REDIRECT)));
    // Documents do not depend on RFC 7591 registration being open.
    let f = keygate_for(&https, b, &[("KEYGATE_REGISTRATION", "off")]);

    // A token request for a client nobody approved: refused, nothing fetched,
    // no row.
    let (verifier, challenge) = pkce();
    exchange_public(&f.server, &client_id, "made-up", REDIRECT, &verifier)
        .assert_oauth_error(401, "invalid_client");
    f.server
        .client()
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client_id),
                ("refresh_token", "made-up"),
            ],
        )
        .assert_oauth_error(401, "invalid_client");
    assert_eq!(https.hits("/app.json"), 0, "fetched for a token request");
    assert!(!has_row(&f, &client_id));

    // The authorization request before any session: validated, no row.
    let path = authorize_path(&client_id, REDIRECT, "workspace:read", &challenge);
    assert!(goes_to_login(&f.server.client().get(&path)));
    assert!(!has_row(&f, &client_id), "a row before any session");

    // The consent page shown to a person: still none.
    let mut owner = f.owner();
    let page = owner.get(&path);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Doc App"), "{}", page.body);
    assert!(!has_row(&f, &client_id), "a row before approval");
    exchange_public(&f.server, &client_id, "made-up", REDIRECT, &verifier)
        .assert_oauth_error(401, "invalid_client");
    assert!(!has_row(&f, &client_id));

    // A denial writes none either.
    let denied = owner.post_form(
        "/oauth/authorize",
        &[
            ("consent_id", &hidden(&page.body, "consent_id").unwrap()),
            ("csrf_token", &hidden(&page.body, "csrf_token").unwrap()),
            ("decision", "deny"),
        ],
    );
    assert_eq!(denied.status, 303, "{}", denied.body);
    assert!(denied.location().contains("error=access_denied"));
    assert!(!has_row(&f, &client_id), "a row after a denial");

    // Approval writes it, and the client works.
    let page = owner.get(&path);
    let code = code_of(&approve_page(&f, &mut owner, &page));
    assert!(has_row(&f, &client_id), "no row after approval");
    let kind = f.db().text(&format!(
        "SELECT kind AS v FROM clients WHERE id = '{client_id}'"
    ));
    assert_eq!(kind.as_deref(), Some("metadata_document"));
    let t = exchange_public(&f.server, &client_id, &code, REDIRECT, &verifier);
    assert_eq!(t.status, 200, "{}", t.body);
    assert_eq!(https.hits("/app.json"), 1);
}

fn first_sightings_count_against_the_registration_quota(b: Backend) {
    let https = HttpsServer::start();
    let f = keygate_for(
        &https,
        b,
        &[
            ("KEYGATE_RATE_LIMITS", "on"),
            ("KEYGATE_REGISTRATION_LIMIT", "2"),
        ],
    );
    let ids: Vec<String> = ["/a.json", "/b.json", "/c.json"]
        .iter()
        .map(|p| {
            let id = https.url(p);
            https.set(p, Reply::json(&document(&id, REDIRECT)));
            id
        })
        .collect();
    assert!(goes_to_login(&authorize_anon(&f, &ids[0], None)));
    assert!(goes_to_login(&authorize_anon(&f, &ids[1], None)));
    // A document already seen (cached) costs nothing more.
    assert!(goes_to_login(&authorize_anon(&f, &ids[0], None)));
    // The third new client from this address is over the quota: not fetched.
    assert_too_many(&authorize_anon(&f, &ids[2], None));
    assert_eq!(https.hits("/c.json"), 0);
    // It is the registration quota: RFC 7591 registration is refused too.
    let r = register(
        &f.server,
        &json!({"client_name": "X", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}),
    );
    assert_eq!(r.status, 429, "{}", r.body);
    for id in &ids {
        assert!(!has_row(&f, id));
    }
}

fn documents_can_be_turned_off(b: Backend) {
    let https = HttpsServer::start();
    let client_id = https.url("/app.json");
    https.set("/app.json", Reply::json(&document(&client_id, REDIRECT)));
    let f = keygate_for(&https, b, &[("KEYGATE_CIMD", "off")]);

    let meta = f
        .server
        .client()
        .get("/.well-known/oauth-authorization-server")
        .json();
    assert_eq!(meta["client_id_metadata_document_supported"], json!(false));

    // An unknown client: an error page, nothing fetched.
    let r = authorize_anon(&f, &client_id, None);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.header("location").is_none());
    assert!(r.body.contains("unknown client_id"), "{}", r.body);
    let (verifier, _) = pkce();
    exchange_public(&f.server, &client_id, "made-up", REDIRECT, &verifier)
        .assert_oauth_error(401, "invalid_client");
    assert_eq!(https.connections(), 0, "something was fetched");
    assert!(!has_row(&f, &client_id));
}

/// A document that never works (failures are never cached, so every use
/// fetches), and keygate with abuse limits on, one fetch `limit` set, and
/// client addresses taken from `X-Forwarded-For`.
fn failing_document(b: Backend, limit: (&str, &str)) -> (HttpsServer, String, Fixture) {
    let https = HttpsServer::start();
    let client_id = https.url("/gone.json");
    https.set("/gone.json", Reply::status(404));
    let env = [
        ("KEYGATE_RATE_LIMITS", "on"),
        limit,
        ("KEYGATE_TRUSTED_PROXIES", "127.0.0.1/32"),
    ];
    let f = keygate_for(&https, b, &env);
    (https, client_id, f)
}

fn fetches_are_limited_per_address(b: Backend) {
    let (https, client_id, f) = failing_document(b, ("KEYGATE_CIMD_FETCH_LIMIT", "3"));
    for _ in 0..3 {
        let r = authorize_anon(&f, &client_id, Some("203.0.113.7"));
        assert_eq!(r.status, 400, "{}", r.body);
    }
    assert_eq!(https.hits("/gone.json"), 3);
    for _ in 0..3 {
        assert_too_many(&authorize_anon(&f, &client_id, Some("203.0.113.7")));
    }
    assert_eq!(https.hits("/gone.json"), 3, "fetched over the limit");
    // Another address has its own budget.
    let r = authorize_anon(&f, &client_id, Some("198.51.100.9"));
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(https.hits("/gone.json"), 4);
}

fn token_requests_share_the_fetch_limit(b: Backend) {
    let https = HttpsServer::start();
    let client_id = https.url("/app.json");
    https.set("/app.json", Reply::json(&document(&client_id, REDIRECT)));
    // Nothing cached: every request fetches the document again.
    let f = keygate_for(
        &https,
        b,
        &[
            ("KEYGATE_RATE_LIMITS", "on"),
            ("KEYGATE_CIMD_FETCH_LIMIT", "3"),
            ("KEYGATE_CIMD_CACHE_TTL", "0"),
        ],
    );
    let mut owner = f.owner();
    let (verifier, challenge) = pkce();
    let page = owner.get(&authorize_path(
        &client_id,
        REDIRECT,
        "workspace:read",
        &challenge,
    ));
    let code = code_of(&approve_page(&f, &mut owner, &page));
    let t = exchange_public(&f.server, &client_id, &code, REDIRECT, &verifier);
    assert_eq!(t.status, 200, "{}", t.body);
    let refresh = |token: &str| {
        f.server.client().post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client_id),
                ("refresh_token", token),
            ],
        )
    };
    let r = refresh(t.json()["refresh_token"].as_str().unwrap());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(https.hits("/app.json"), 3);
    // The fourth fetch from this address in the minute: 429, not fetched.
    let over = refresh(r.json()["refresh_token"].as_str().unwrap());
    over.assert_oauth_error(429, "slow_down");
    assert!(over.header("retry-after").is_some());
    assert_eq!(https.hits("/app.json"), 3);
}

fn fetches_are_limited_per_node(b: Backend) {
    let (https, client_id, f) = failing_document(b, ("KEYGATE_CIMD_FETCH_RATE", "2"));
    // Ten addresses, each well within its own budget, in well under a second
    // or two: at most two fetches a second for all of them together.
    let started = std::time::Instant::now();
    let statuses: Vec<u16> = (1..=10)
        .map(|i| authorize_anon(&f, &client_id, Some(&format!("203.0.113.{i}"))).status)
        .collect();
    let seconds = started.elapsed().as_secs() + 1;
    let hits = https.hits("/gone.json") as u64;
    assert!(hits <= 2 * seconds, "{hits} fetches in {seconds} s");
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 400 || *s == 429),
        "{statuses:?}"
    );
}

fn fetch_errors_say_nothing_of_the_fetch(b: Backend) {
    let https = HttpsServer::start();
    // localhost resolves to loopback and is not allow-listed (127.0.0.1 is).
    let forbidden = https.localhost_url("/app.json");
    https.set("/app.json", Reply::json(&document(&forbidden, REDIRECT)));
    let closed = format!("https://127.0.0.1:{}/app.json", free_port());
    let f = keygate_for(&https, b, &[]);

    for (client_id, detail) in [
        (&forbidden, "special-use address"),
        (&closed, "cannot connect"),
    ] {
        let r = authorize_anon(&f, client_id, None);
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains("could not be fetched"), "{}", r.body);
        let page = r.body.to_lowercase();
        for secret in [
            "127.0.0.1",
            "special-use",
            "resolves",
            "connect",
            "refused",
            "os error",
        ] {
            // The closed port's URL itself is not shown either.
            assert!(!page.contains(secret), "{secret:?} shown: {}", r.body);
        }
        assert!(
            eventually(std::time::Duration::from_secs(2), || f
                .server
                .logs()
                .contains(detail)),
            "{detail:?} not in the log"
        );
    }
    assert_eq!(https.connections(), 0);
}

both_backends!(
    no_row_until_a_person_approves,
    first_sightings_count_against_the_registration_quota,
    documents_can_be_turned_off,
    fetches_are_limited_per_address,
    token_requests_share_the_fetch_limit,
    fetches_are_limited_per_node,
    fetch_errors_say_nothing_of_the_fetch,
);
