//! Identity assertion grants (RFC 7523 §2.1 jwt-bearer with ID-JAG): a
//! workspace trusts an identity provider (`keygate trust`), whose keys are
//! served over loopback HTTPS; every assertion the contract refuses gets its
//! error and changes nothing.

use crate::https_server::{HttpsServer, Reply};
use crate::support::*;
use serde_json::{json, Value};

const IDP: &str = "https://idp.example.com";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

struct Setup {
    f: Fixture,
    key: TestKey,
    _idp: HttpsServer,
    jwks_url: String,
}

fn setup(b: Backend) -> Setup {
    let idp = HttpsServer::start();
    let key = TestKey::es256("idp-1");
    idp.set("/jwks", Reply::json(&jwks(&[&key])));
    let server = Server::start_with(
        TestDb::new(b),
        &[
            ("KEYGATE_CIMD_ALLOWED_HOSTS", "127.0.0.1"),
            ("KEYGATE_CIMD_CA_FILE", idp.ca_file().to_str().unwrap()),
        ],
    );
    let f = Fixture::with_server(server);
    let jwks_url = idp.url("/jwks");
    let trusted = f.db().json(&[
        "trust",
        "add",
        "--workspace",
        &f.workspace_id,
        "--idp-issuer",
        IDP,
        "--jwks-uri",
        &jwks_url,
    ]);
    assert_eq!(trusted["issuer"], IDP);
    assert_eq!(trusted["workspace_id"], f.workspace_id.as_str());
    Setup {
        f,
        key,
        _idp: idp,
        jwks_url,
    }
}

fn claims(t: &Setup, email: &str) -> Value {
    json!({
        "iss": IDP,
        "sub": format!("idp-{}", unique()),
        "email": email,
        "aud": t.f.server.base,
        "client_id": t.f.client_id,
        "exp": now() + 300,
        "iat": now(),
        "jti": unique(),
        "scope": "workspace:read tags:read",
        "resource": t.f.server.url("/v1"),
    })
}

fn sign(t: &Setup, c: &Value) -> String {
    t.key.sign(Some("oauth-id-jag+jwt"), false, c)
}

fn grant(t: &Setup, assertion: &str, extra: &[(&str, &str)]) -> Resp {
    let mut form = vec![("grant_type", JWT_BEARER), ("assertion", assertion)];
    form.extend_from_slice(extra);
    t.f.server
        .client()
        .post_form_with("/oauth/token", &form, &[("Authorization", &t.f.basic())])
}

fn counts(f: &Fixture) -> (i64, i64) {
    (
        f.db().count("authorizations"),
        f.db().count("access_tokens"),
    )
}

fn identity_assertion_grants_a_token(b: Backend) {
    let t = setup(b);
    let f = &t.f;
    let listed = f
        .db()
        .json_lines(&["trust", "list", "--workspace", &f.workspace_id]);
    assert_eq!(listed.len(), 1);
    let assertion = sign(&t, &claims(&t, &f.owner_email));
    let r = grant(&t, &assertion, &[("scope", "tags:read")]);
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert_eq!(body["scope"], "tags:read");
    assert_eq!(body["workspace_id"], f.workspace_id.as_str());
    assert!(body.get("refresh_token").is_none());
    let token = s(&body, "access_token");
    assert_eq!(f.server.client().bearer_get("/v1/tags", &token).status, 200);
    // The same assertion again: its jti is spent.
    let before = counts(f);
    grant(&t, &assertion, &[]).assert_oauth_error(400, "invalid_grant");
    assert_eq!(counts(f), before);
    // Under an authorization row owners see and revoke.
    let row = f.app_row(&f.client_id);
    assert_eq!(row["scopes"], json!(["tags:read"]));
    let page = f.owner().get(&format!(
        "/settings/authorized-apps?workspace={}",
        f.workspace_id
    ));
    assert!(
        page.body
            .contains("via identity provider https://idp.example.com"),
        "{}",
        page.body
    );
    f.db().json(&["apps", "revoke", &s(&row, "id")]);
    assert_eq!(f.server.client().bearer_get("/v1/tags", &token).status, 401);
    // None asked: the assertion's scope.
    let all = grant(&t, &sign(&t, &claims(&t, &f.owner_email)), &[]);
    assert_eq!(all.json()["scope"], "workspace:read tags:read");
    // The person linked to (iss, sub) needs no email.
    f.db().execute(&format!(
        "INSERT INTO identities (issuer, subject, user_id, created_at) VALUES ('{IDP}', 'linked-sub', '{}', 0)",
        f.owner_id
    ));
    let mut linked = claims(&t, "nobody@example.com");
    linked["sub"] = json!("linked-sub");
    let r = grant(&t, &sign(&t, &linked), &[]);
    assert_eq!(r.status, 200, "the linked person: {}", r.body);
    // Removing the trust refuses its assertions.
    let id = s(&listed[0], "id");
    let removed = f.db().json(&["trust", "remove", &id]);
    assert_eq!(removed, json!({"id": id, "removed": true}));
    grant(&t, &sign(&t, &claims(&t, &f.owner_email)), &[]).assert_oauth_error(400, "invalid_grant");
}

fn refused_identity_assertions(b: Backend) {
    let t = setup(b);
    let f = &t.f;
    // Another workspace trusts another issuer with the same keys; the owner
    // of the fixture's workspace is no member there.
    let other_ws = f.db().create_workspace("Elsewhere");
    let other_owner = f
        .db()
        .create_user(&format!("o-{}@example.com", &unique()[..6]));
    f.db().add_member(&other_ws, &other_owner, "owner");
    f.db().json(&[
        "trust",
        "add",
        "--workspace",
        &other_ws,
        "--idp-issuer",
        "https://idp2.example.com",
        "--jwks-uri",
        &t.jwks_url,
    ]);
    let (_, member_email) = f.add_user("member");
    let stranger = TestKey::es256("idp-1");
    let edit = |change: &dyn Fn(&mut Value)| {
        let mut c = claims(&t, &f.owner_email);
        change(&mut c);
        c
    };
    let good = claims(&t, &f.owner_email);
    let cases: Vec<(&str, String)> = vec![
        ("expired", sign(&t, &edit(&|c| c["exp"] = json!(now() - 1)))),
        (
            "iat in the future",
            sign(&t, &edit(&|c| c["iat"] = json!(now() + 600))),
        ),
        (
            "wrong audience",
            sign(
                &t,
                &edit(&|c| c["aud"] = json!("https://other.example.com")),
            ),
        ),
        (
            "untrusted issuer",
            sign(&t, &edit(&|c| c["iss"] = json!("https://evil.example.com"))),
        ),
        (
            "another workspace's issuer",
            sign(&t, &edit(&|c| c["iss"] = json!("https://idp2.example.com"))),
        ),
        (
            "a plain member",
            sign(&t, &edit(&|c| c["email"] = json!(member_email))),
        ),
        (
            "an unknown person",
            sign(&t, &edit(&|c| c["email"] = json!("nobody@example.com"))),
        ),
        (
            "another client",
            sign(&t, &edit(&|c| c["client_id"] = json!(f.public_client_id))),
        ),
        (
            "no jti",
            sign(
                &t,
                &edit(&|c| {
                    c.as_object_mut().unwrap().remove("jti");
                }),
            ),
        ),
        ("wrong typ", t.key.sign(Some("JWT"), false, &good)),
        (
            "alg none",
            unsigned(
                &json!({"alg": "none", "typ": "oauth-id-jag+jwt", "kid": "idp-1"}),
                &good,
            ),
        ),
        (
            "HMAC keyed with the public key",
            t.key.hmac_with_public_key(&good),
        ),
        (
            "another key",
            stranger.sign(Some("oauth-id-jag+jwt"), false, &good),
        ),
    ];
    let before = counts(f);
    for (what, assertion) in cases {
        let r = grant(&t, &assertion, &[]);
        assert_eq!(r.status, 400, "{what}: {}", r.body);
        assert_eq!(r.json()["error"], "invalid_grant", "{what}");
    }
    let fresh = || sign(&t, &claims(&t, &f.owner_email));
    grant(&t, &fresh(), &[("scope", "forms:write")]).assert_oauth_error(400, "invalid_scope");
    let foreign = sign(
        &t,
        &edit(&|c| c["resource"] = json!("https://api.example.com")),
    );
    grant(&t, &foreign, &[]).assert_oauth_error(400, "invalid_target");
    grant(&t, &fresh(), &[("resource", "https://api.example.com")])
        .assert_oauth_error(400, "invalid_target");
    // A client that does not authenticate.
    let public = f.server.client().post_form(
        "/oauth/token",
        &[
            ("grant_type", JWT_BEARER),
            ("assertion", &fresh()),
            ("client_id", &f.public_client_id),
        ],
    );
    public.assert_oauth_error(400, "unauthorized_client");
    assert_eq!(counts(f), before, "a refused assertion changes nothing");
    // The CLI refuses bad input and changes nothing.
    let trusts = f.db().count("trusted_issuers");
    for args in [
        vec![
            "trust",
            "add",
            "--workspace",
            &f.workspace_id,
            "--idp-issuer",
            "http://idp.example.com",
            "--jwks-uri",
            &t.jwks_url,
        ],
        vec![
            "trust",
            "add",
            "--workspace",
            &f.workspace_id,
            "--idp-issuer",
            IDP,
            "--jwks-uri",
            "http://idp.example.com/jwks",
        ],
        vec![
            "trust",
            "add",
            "--workspace",
            &f.workspace_id,
            "--idp-issuer",
            IDP,
            "--jwks-uri",
            &t.jwks_url,
        ],
        vec![
            "trust",
            "add",
            "--workspace",
            "no-such-workspace",
            "--idp-issuer",
            IDP,
            "--jwks-uri",
            &t.jwks_url,
        ],
        vec!["trust", "remove", "no-such-id"],
    ] {
        assert_ne!(f.db().cli(&args).code, 0, "{args:?} must be refused");
    }
    assert_eq!(f.db().count("trusted_issuers"), trusts);
}

both_backends!(
    identity_assertion_grants_a_token,
    refused_identity_assertions
);
