//! Prometheus metrics: counts of events without secrets, not public, on their own listener.

use super::*;

const SCOPES: &str = "workspace:read tags:read tags:write";

/// How much each named series grew between two scrapes.
fn grew(before: &str, after: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metric(after, name, labels) - metric(before, name, labels)
}

fn metrics_count_events_and_hold_no_secrets(b: Backend) {
    let f = Fixture::with_server(metrics_server(b, &[]));
    let key = f.api_key("read_write");
    let (access, refresh) = f.tokens(SCOPES);
    let mut http = f.server.client();
    let m0 = scrape(&f.server);

    // Requests per route pattern, method and status.
    for _ in 0..3 {
        assert_eq!(
            http.get("/.well-known/oauth-authorization-server").status,
            200
        );
    }
    // An authorization code exchanged once (ok), then again (invalid_grant).
    let (code, verifier) = f.code(SCOPES);
    assert_eq!(f.exchange(&code, &verifier).status, 200);
    f.exchange(&code, &verifier)
        .assert_oauth_error(400, "invalid_grant");
    // /v1 with an API key (a miss, then hits), an access token and a bad credential.
    for _ in 0..4 {
        assert_eq!(http.bearer_get("/v1/workspace", &key).status, 200);
    }
    assert_eq!(http.bearer_get("/v1/workspace", &access).status, 200);
    http.bearer_get("/v1/workspace", "kgk_not_a_real_key")
        .assert_v1_error(401, "authentication_error", "invalid_api_key");
    // A revocation at /oauth/revoke.
    let r = http.post_form_with(
        "/oauth/revoke",
        &[("token", &access)],
        &[("Authorization", &f.basic())],
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let m1 = scrape(&f.server);
    let route = [
        ("route", "/.well-known/oauth-authorization-server"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert_eq!(grew(&m0, &m1, "keygate_http_requests_total", &route), 3.0);
    assert!(
        metric(
            &m1,
            "keygate_http_request_duration_seconds_count",
            &route[..2]
        ) >= 3.0
    );
    let grants = "keygate_token_grants_total";
    let code_ok = [("grant_type", "authorization_code"), ("outcome", "ok")];
    let code_bad = [
        ("grant_type", "authorization_code"),
        ("outcome", "invalid_grant"),
    ];
    assert_eq!(grew(&m0, &m1, grants, &code_ok), 1.0, "{m1}");
    assert_eq!(grew(&m0, &m1, grants, &code_bad), 1.0, "{m1}");
    let auths = "keygate_v1_authentications_total";
    let key_ok = [("kind", "api_key"), ("outcome", "ok")];
    let token_ok = [("kind", "access_token"), ("outcome", "ok")];
    assert_eq!(grew(&m0, &m1, auths, &key_ok), 4.0, "{m1}");
    assert_eq!(grew(&m0, &m1, auths, &token_ok), 1.0, "{m1}");
    assert_eq!(grew(&m0, &m1, auths, &[("outcome", "invalid")]), 1.0);
    assert_eq!(
        grew(&m0, &m1, "keygate_revocations_total", &[("what", "token")]),
        1.0,
        "{m1}"
    );
    let cache = "keygate_credential_cache_lookups_total";
    // Four calls: one miss, then hits. A read that the revocation feed's poll
    // overtakes (it re-applies the code replay's events) is not cached, which
    // can cost one more miss; two hits at the least show the cache at work.
    assert!(
        grew(&m0, &m1, cache, &[("result", "hit")]) >= 2.0,
        "repeated /v1 calls are served from the cache: {m1}"
    );
    for state in ["idle", "in_use"] {
        assert!(
            m1.lines().any(
                |l| l.starts_with(&format!("keygate_db_pool_connections{{state=\"{state}\"}}"))
            ),
            "no pool gauge {state}: {m1}"
        );
    }
    assert!(metric(&m1, "keygate_db_pool_connections", &[]) >= 1.0);

    // Labels carry routes, kinds and outcomes: never an id or a secret.
    for secret in [
        f.client_id.as_str(),
        f.client_secret.as_str(),
        f.public_client_id.as_str(),
        f.workspace_id.as_str(),
        f.owner_id.as_str(),
        f.owner_email.as_str(),
        key.as_str(),
        &key[..12],
        access.as_str(),
        refresh.as_str(),
        code.as_str(),
        verifier.as_str(),
    ] {
        assert!(!m1.contains(secret), "/metrics shows {secret:?}");
    }
}

/// `/metrics` is not on the public listener by default (OWASP Top 10 A05);
/// with KEYGATE_METRICS_TOKEN it is, for that bearer token only.
fn metrics_are_not_public(b: Backend) {
    let s = Server::start(b);
    assert_eq!(s.client().get("/metrics").status, 404);
    assert!(s.logs().contains("/metrics is off"), "{}", s.logs());
    let s = metrics_server(b, &[]);
    let mut http = s.client();
    let r = http.get("/metrics");
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .is_some_and(|w| w.starts_with("Bearer")));
    for wrong in ["Bearer wrong", "Basic bWV0cmljcw==", "Bearer"] {
        let r = http.get_with("/metrics", &[("Authorization", wrong)]);
        assert_eq!(r.status, 401, "{wrong}");
        assert!(!r.body.contains("keygate_"));
    }
    assert!(scrape(&s).contains("keygate_http_requests_total"));
}

fn metrics_on_their_own_listener(b: Backend) {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let s = Server::start_with(TestDb::new(b), &[("KEYGATE_METRICS_BIND", &bind)]);
    assert_eq!(s.client().get("/metrics").status, 404);
    let url = format!("http://{bind}/metrics");
    let mut http = Http::new(&format!("http://{bind}"));
    assert!(
        eventually(Duration::from_secs(10), || {
            ureq::get(&url)
                .timeout(Duration::from_secs(2))
                .call()
                .is_ok()
        }),
        "no metrics listener on {bind}"
    );
    // It counts the main listener's requests (the 404 above among them).
    let r = http.get("/metrics");
    assert_eq!(r.status, 200);
    assert!(
        metric(
            &r.body,
            "keygate_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ) >= 1.0,
        "{}",
        r.body
    );
    // The metrics listener serves nothing else.
    assert_eq!(http.get("/.well-known/jwks.json").status, 404);
    assert_eq!(http.get("/healthz").status, 404);
}

both_backends!(
    metrics_count_events_and_hold_no_secrets,
    metrics_are_not_public,
    metrics_on_their_own_listener,
);
