//! Security headers on HTML pages, HSTS and secure cookies behind HTTPS.

use super::*;

fn html_pages_carry_strict_headers(b: Backend) {
    let f = Fixture::new(b);
    let mut http = f.server.client();
    let login = http.get("/login");
    assert_eq!(login.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(login.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(login.header("x-frame-options"), Some("DENY"));
    let csp = login.header("content-security-policy").expect("CSP");
    for part in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "script-src 'self'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(
        login.header("strict-transport-security").is_none(),
        "no HSTS on an http issuer"
    );
    // JSON endpoints carry the same no-referrer / nosniff headers.
    let meta = http.get("/.well-known/oauth-authorization-server");
    assert_eq!(meta.header("referrer-policy"), Some("no-referrer"));
    // Every response has a request id.
    assert!(meta.header("x-request-id").is_some_and(|v| !v.is_empty()));
}

fn https_issuer_gets_hsts_and_secure_cookies(b: Backend) {
    let port = free_port();
    // The issuer is https (as behind a TLS-terminating proxy); keygate itself listens on
    // http. A trailing slash is dropped from the issuer.
    let f = Fixture::with_server(Server::spawn(
        TestDb::new(b),
        port,
        &[("KEYGATE_ISSUER", "https://id.example.test/")],
    ));
    let s = &f.server;
    let mut http = s.client();
    let login = http.get("/login");
    assert!(login
        .header("strict-transport-security")
        .is_some_and(|h| h.contains("max-age=")));
    let cookie = login.header("set-cookie").unwrap();
    assert!(cookie.to_lowercase().contains("secure"), "{cookie}");
    // `__Host-` names: only this host, over TLS, for every path, no Domain.
    assert!(cookie.starts_with("__Host-keygate_login_csrf="), "{cookie}");
    assert!(cookie.contains("Path=/") && !cookie.to_lowercase().contains("domain="));
    // A session cookie without the prefix (as another host of the domain
    // could set) is not a session.
    let mut owner = s.client();
    let signed_in = owner.login(&f.owner_email, PASSWORD);
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let session = owner
        .cookie("__Host-keygate_session")
        .expect("a __Host- session");
    assert!(owner.cookie("keygate_session").is_none());
    assert_eq!(owner.get("/settings/api-keys").status, 200);
    let mut planted = s.client();
    let plain = format!("keygate_session={session}");
    let r = planted.get_with("/settings/api-keys", &[("Cookie", &plain)]);
    assert_eq!(r.status, 302, "an unprefixed cookie was taken: {}", r.body);
    let meta = http.get("/.well-known/oauth-authorization-server").json();
    assert_eq!(meta["issuer"], "https://id.example.test");
    assert_eq!(
        meta["token_endpoint"],
        "https://id.example.test/oauth/token"
    );
}

both_backends!(
    html_pages_carry_strict_headers,
    https_issuer_gets_hsts_and_secure_cookies,
);
