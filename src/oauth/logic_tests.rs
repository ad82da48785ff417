//! Logic tests without HTTP, as Kanidm tests its `idm` layer: each test opens a
//! fresh SQLite file through `db::connect` (which runs the migrations) and calls
//! the functions the handlers, pages and CLI call. They pin the rules that must
//! hold whatever the transport: single-use codes and refresh tokens (RFC 6749
//! §4.1.2, RFC 9700 §4.14.2), revocation (RFC 7009), introspection (RFC 7662),
//! the security-log rows, and the API key lifecycle.

use super::authorizations::{self, Cause};
use super::clients::{self, ClientCache, NewClient};
use super::error::OAuthError;
use super::introspect::{self, Introspection};
use super::token::TokenResponse;
use super::{authorize, revoke, token, Issuer, Params};
use crate::accounts::{self, audit, Plan, Role};
use crate::apikeys::{self, Access};
use crate::config::Config;
use crate::credentials::bearer::{self, Lookup, Principal};
use crate::credentials::Credentials;
use crate::db::{self, Pool};
use crate::error::Error;
use base64::Engine;
use sha2::Digest;

/// Two tests of `$body` (a function of a [`Node`]): on SQLite, and on
/// PostgreSQL when the tests have one (`KEYGATE_TEST_POSTGRES_URL`).
macro_rules! on_both_engines {
    ($sqlite:ident, $postgres:ident, $body:path) => {
        #[test]
        fn $sqlite() {
            $body(Node::new());
        }

        #[test]
        fn $postgres() {
            if let Some(n) = Node::postgres() {
                $body(n);
            }
        }
    };
}

mod statements;

const ISSUER: &str = crate::credentials::testkit::ISSUER;
const REDIRECT: &str = "https://crm.example.test/callback";
const SCOPE: &str = "workspace:read tags:write";
const PASSWORD: &str = "correct horse battery";

/// One node over a fresh database: what `node::state::Services` holds, with an
/// ephemeral signing key, and a workspace with its owner and two confidential
/// clients.
struct Node {
    /// The database, removed when the node is dropped.
    _db: crate::db::testkit::TestDb,
    pool: Pool,
    config: Config,
    credentials: Credentials,
    clients: ClientCache,
    writes: db::group::Group,
    resources: crate::resources::Registry,
    workspace: String,
    owner: String,
    client: NewClient,
    other: NewClient,
}

impl Node {
    fn new() -> Node {
        Node::on(crate::db::testkit::TestDb::new())
    }

    /// The same on a fresh PostgreSQL database, when the tests have one.
    fn postgres() -> Option<Node> {
        crate::db::testkit::TestDb::postgres().map(Node::on)
    }

    fn on(db: crate::db::testkit::TestDb) -> Node {
        let pool = db.pool();
        let config = Config::defaults(db.url.clone(), ISSUER.to_string());
        let stored = crate::credentials::Stored {
            keys: &crate::apikeys::stored::KEYS,
            tokens: &crate::oauth::authorizations::TOKENS,
        };
        let credentials = Credentials {
            access_token_ttl: config.access_token_ttl,
            ..crate::credentials::testkit::credentials(stored, None)
        };
        let mut conn = pool.get().expect("connection");
        let ws = accounts::create_workspace(&mut conn, "Acme", Plan::Pro).unwrap();
        let owner = accounts::create_user(&mut conn, "owner@example.test", PASSWORD).unwrap();
        accounts::add_member(&mut conn, &ws.id, &owner.id, Role::Owner).unwrap();
        let client = clients::create(&mut conn, "Acme CRM", &[REDIRECT.into()], false).unwrap();
        let other = clients::create(&mut conn, "Other App", &[REDIRECT.into()], false).unwrap();
        drop(conn);
        Node {
            _db: db,
            pool,
            config,
            credentials,
            clients: ClientCache::default(),
            writes: Default::default(),
            resources: crate::resources::Registry::new(std::time::Duration::from_secs(60)),
            workspace: ws.id,
            owner: owner.id,
            client,
            other,
        }
    }

    fn issuer(&self) -> Issuer<'_> {
        Issuer {
            config: &self.config,
            credentials: &self.credentials,
            clients: &self.clients,
            writes: &self.writes,
            resources: &self.resources,
            extras: None,
        }
    }

    /// The workspace owner, acting without a client address.
    fn actor(&self) -> audit::Actor<'_> {
        audit::Actor {
            id: &self.owner,
            client_address: None,
        }
    }

    /// A connection of its own, outside the pool.
    fn fresh_conn(&self) -> db::DbConn {
        self._db.conn()
    }

    fn conn(&self) -> r2d2::PooledConnection<db::ConnectionManager> {
        self.pool.get().expect("connection")
    }

    /// A person of the workspace with a role; returns their id.
    fn person(&self, email: &str, role: Role) -> String {
        let mut conn = self.conn();
        let user = accounts::create_user(&mut conn, email, PASSWORD).unwrap();
        accounts::add_member(&mut conn, &self.workspace, &user.id, role).unwrap();
        user.id
    }

    /// The authorization endpoint's steps for the confidential client: validate
    /// the request, hold it for the session, and answer it: approved as
    /// `user`. Returns the code, its PKCE verifier and the authorization's id.
    fn approve(&self, user: &str) -> Result<(String, String, String), Error> {
        self.approve_with(user, &[])
    }

    /// [`Node::approve`] with more request parameters (`resource`).
    fn approve_with(
        &self,
        user: &str,
        extra: &[(&str, &str)],
    ) -> Result<(String, String, String), Error> {
        let (held_id, verifier) = self.hold(extra);
        match self.answer(user, &held_id) {
            authorize::Answered::Approved(_, approved) => {
                Ok((approved.code, verifier, approved.authorization.id))
            }
            authorize::Answered::Refused(msg) => Err(Error::Forbidden(msg)),
            _ => panic!("the held request was not there, once"),
        }
    }

    /// The authorization endpoint's first steps for the confidential
    /// client: validate the request and hold it for the session. Returns the
    /// held request's id and the PKCE verifier.
    fn hold(&self, extra: &[(&str, &str)]) -> (String, String) {
        let mut conn = self.conn();
        let verifier = format!("{}{}", db::new_id(), db::new_id());
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", &self.client.client.id),
            ("redirect_uri", REDIRECT),
            ("scope", SCOPE),
            ("state", "st"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ];
        pairs.extend_from_slice(extra);
        let query = form(&pairs);
        let req = authorize::validate(&mut conn, &self.config, &query).expect("a valid request");
        let held_id =
            authorize::hold(&mut conn, &self.writes, &self.config, "session-hash", &req).unwrap();
        (held_id, verifier)
    }

    /// The held request answered: approved for the workspace as `user`.
    fn answer(&self, user: &str, held_id: &str) -> authorize::Answered {
        let answer = authorize::Answer::Approve {
            workspace_id: &self.workspace,
        };
        authorize::answer(
            &mut self.conn(),
            &self.writes,
            &self.config,
            "session-hash",
            user,
            held_id,
            answer,
        )
        .expect("answered")
    }

    /// `client_id` and `client_secret` of a client, as form parameters.
    fn auth(c: &NewClient) -> [(&'static str, &str); 2] {
        [
            ("client_id", c.client.id.as_str()),
            ("client_secret", c.secret.as_deref().expect("a secret")),
        ]
    }

    /// The token endpoint, as the confidential client.
    fn token(&self, grant: &[(&str, &str)]) -> Result<TokenResponse, OAuthError> {
        let mut all = grant.to_vec();
        all.extend(Node::auth(&self.client));
        token::grant(&self.issuer(), &mut self.conn(), None, &form(&all))
    }

    fn exchange(&self, code: &str, verifier: &str) -> Result<TokenResponse, OAuthError> {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
    }

    fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, OAuthError> {
        self.refresh_on(&mut self.conn(), refresh_token)
    }

    /// [`Node::refresh`] on a connection of the caller's.
    fn refresh_on(
        &self,
        conn: &mut db::DbConn,
        refresh_token: &str,
    ) -> Result<TokenResponse, OAuthError> {
        let mut all = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        all.extend(Node::auth(&self.client));
        token::grant(&self.issuer(), conn, None, &form(&all))
    }

    /// An approved and exchanged authorization: (access, refresh, authorization id).
    fn tokens(&self, user: &str) -> (String, String, String) {
        let (code, verifier, id) = self.approve(user).expect("approved");
        let t = self.exchange(&code, &verifier).expect("the first exchange");
        (
            t.access_token,
            t.refresh_token.expect("a refresh token"),
            id,
        )
    }

    fn introspect(&self, as_client: &NewClient, token: &str, hint: Option<&str>) -> Introspection {
        let mut all = vec![("token", token)];
        all.extend(hint.map(|h| ("token_type_hint", h)));
        all.extend(Node::auth(as_client));
        introspect::request(&self.issuer(), &mut self.conn(), None, &form(&all))
            .expect("introspection answers")
    }

    /// The one bearer check's slow path (signature, then the stored rows).
    fn stored(&self, credential: &str) -> Option<Principal> {
        bearer::check_stored(&self.credentials, &mut self.conn(), credential).unwrap()
    }

    fn cached_valid(&self, credential: &str) -> bool {
        matches!(
            bearer::check_cached(&self.credentials, credential),
            Lookup::Found(_)
        )
    }

    fn revoked_at(&self, authorization: &str) -> Option<i64> {
        authorizations::find(&mut self.conn(), authorization)
            .unwrap()
            .revoked_at
    }

    /// The security-log rows with this action, oldest first.
    fn log(&self, action: &str) -> Vec<audit::AuditEvent> {
        let mut rows: Vec<_> = audit::list(&mut self.conn(), &self.workspace, 1000)
            .unwrap()
            .into_iter()
            .filter(|e| e.action == action)
            .collect();
        rows.reverse();
        rows
    }
}

fn form(pairs: &[(&str, &str)]) -> Params {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    Params::parse(body.as_bytes())
}

fn assert_invalid_grant(r: Result<TokenResponse, OAuthError>, what: &str) {
    match r {
        Err(e) => assert_eq!(e.code(), "invalid_grant", "{what}: {e}"),
        Ok(t) => panic!("{what}: tokens were issued ({t:?})"),
    }
}

#[test]
fn a_code_used_twice_revokes_its_authorization() {
    let n = Node::new();
    let (code, verifier, id) = n.approve(&n.owner).unwrap();
    let first = n.exchange(&code, &verifier).expect("the first exchange");
    assert_eq!(first.workspace_id, n.workspace);
    assert_eq!(first.scope, SCOPE);
    assert!(matches!(
        n.stored(&first.access_token),
        Some(Principal::AccessToken(_))
    ));
    assert!(n.cached_valid(&first.access_token), "the check caches it");
    assert!(n.log("app.revoked_code_replay").is_empty());

    assert_invalid_grant(n.exchange(&code, &verifier), "the replayed code");
    assert!(n.revoked_at(&id).is_some(), "the authorization lives on");
    // What the first exchange issued ends too, in this node's cache at once.
    assert!(!n.cached_valid(&first.access_token));
    assert!(n.stored(&first.access_token).is_none());
    assert_invalid_grant(
        n.refresh(first.refresh_token.as_deref().unwrap()),
        "the first refresh token",
    );
    let log = n.log("app.revoked_code_replay");
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].subject, id);
    assert_eq!(log[0].actor, n.client.client.id);
    assert!(n.log("app.revoked").is_empty());
}

#[test]
fn a_reused_refresh_token_revokes_the_whole_authorization() {
    let n = Node::new();
    let (a1, r1, id) = n.tokens(&n.owner);
    let second = n.refresh(&r1).expect("the first refresh");
    assert_ne!(
        second.refresh_token.as_deref(),
        Some(r1.as_str()),
        "refresh tokens rotate"
    );
    assert!(n.stored(&second.access_token).is_some());
    assert!(
        n.stored(&a1).is_some(),
        "rotation alone ends no access token"
    );
    assert!(n.revoked_at(&id).is_none());

    assert_invalid_grant(n.refresh(&r1), "the reused refresh token");
    assert!(n.revoked_at(&id).is_some());
    for (what, access) in [("the first", &a1), ("the second", &second.access_token)] {
        assert!(
            n.stored(access).is_none(),
            "{what} access token still works"
        );
        assert!(!n.cached_valid(access), "{what} access token is cached");
    }
    assert_invalid_grant(
        n.refresh(second.refresh_token.as_deref().unwrap()),
        "the newest refresh token of a revoked authorization",
    );
    let log = n.log("app.revoked_refresh_reuse");
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].subject, id);
    assert_eq!(log[0].actor, n.client.client.id);
}

#[test]
fn revoking_a_refresh_token_ends_its_access_tokens() {
    let n = Node::new();
    let (access, refresh, id) = n.tokens(&n.owner);
    assert!(n.stored(&access).is_some());
    assert!(n.cached_valid(&access));
    let revoke_as = |c: &NewClient| {
        let mut all = vec![
            ("token", refresh.as_str()),
            ("token_type_hint", "refresh_token"),
        ];
        all.extend(Node::auth(c));
        revoke::request(&n.issuer(), &mut n.conn(), None, &form(&all))
    };

    // Another client's token: a silent success that revokes nothing (RFC 7009 §2.2).
    revoke_as(&n.other).expect("a foreign token is no error");
    assert!(n.revoked_at(&id).is_none());
    assert!(n.stored(&access).is_some());
    assert!(n.log("app.revoked_by_client").is_empty());

    revoke_as(&n.client).expect("revoked");
    assert!(n.revoked_at(&id).is_some());
    assert!(!n.cached_valid(&access), "the cache still holds the token");
    assert!(n.stored(&access).is_none());
    assert_invalid_grant(n.refresh(&refresh), "the revoked refresh token");
    let log = n.log("app.revoked_by_client");
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].subject, id);
    assert_eq!(log[0].actor, n.client.client.id);

    // Revoking again is a success and writes no second row.
    revoke_as(&n.client).expect("revoked again");
    assert_eq!(n.log("app.revoked_by_client").len(), 1);
}

#[test]
fn introspection_shows_a_client_its_own_live_tokens_only() {
    let n = Node::new();
    let (access, refresh, id) = n.tokens(&n.owner);
    let own = n.introspect(&n.client, &access, None);
    assert!(own.active, "{own:?}");
    assert_eq!(own.client_id.as_deref(), Some(n.client.client.id.as_str()));
    assert_eq!(own.workspace_id.as_deref(), Some(n.workspace.as_str()));
    assert_eq!(own.sub.as_deref(), Some(n.owner.as_str()));
    assert_eq!(own.scope.as_deref(), Some(SCOPE));
    assert_eq!(own.iss.as_deref(), Some(ISSUER));
    assert_eq!(own.aud, Some(format!("{ISSUER}/v1")));
    assert!(
        n.introspect(&n.client, &refresh, Some("refresh_token"))
            .active
    );
    // The hint orders the search; it does not decide the answer.
    assert!(n.introspect(&n.client, &refresh, None).active);
    assert!(
        n.introspect(&n.client, &access, Some("refresh_token"))
            .active
    );

    for token in [&access, &refresh] {
        assert_eq!(
            n.introspect(&n.other, token, None),
            Introspection::inactive(),
            "another client sees a token of this one"
        );
    }
    assert_eq!(
        n.introspect(&n.client, "not-a-token", None),
        Introspection::inactive()
    );

    // A public client may not introspect (RFC 7662 §2.1: the caller authenticates).
    let public = clients::create(&mut n.conn(), "Mobile", &[REDIRECT.into()], true).unwrap();
    let r = introspect::request(
        &n.issuer(),
        &mut n.conn(),
        None,
        &form(&[("token", &access), ("client_id", &public.client.id)]),
    );
    assert_eq!(r.map_err(|e| e.code()), Err("invalid_client"));

    authorizations::revoke(
        &mut n.conn(),
        &n.credentials.cache,
        &id,
        Cause::Person(n.actor()),
    )
    .unwrap();
    for token in [&access, &refresh] {
        assert_eq!(
            n.introspect(&n.client, token, None),
            Introspection::inactive()
        );
    }
}

#[test]
fn a_person_revoking_an_app_is_logged_once() {
    let n = Node::new();
    let (access, _, id) = n.tokens(&n.owner);
    let by_owner = Cause::Person(audit::Actor {
        id: &n.owner,
        client_address: Some("203.0.113.7"),
    });
    let revoked = authorizations::revoke(&mut n.conn(), &n.credentials.cache, &id, by_owner)
        .expect("revoked");
    let at = revoked.revoked_at.expect("revoked_at set");
    assert_eq!(revoked.status(), "revoked");
    assert!(!n.cached_valid(&access));
    assert!(n.stored(&access).is_none());
    let log = n.log("app.revoked");
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].subject, id);
    assert_eq!(log[0].actor, n.owner);
    assert_eq!(log[0].client_address.as_deref(), Some("203.0.113.7"));

    // Idempotent: the second revocation changes nothing and logs nothing.
    let again = authorizations::revoke(&mut n.conn(), &n.credentials.cache, &id, by_owner)
        .expect("revoking twice is no error");
    assert_eq!(again.revoked_at, Some(at));
    assert_eq!(n.log("app.revoked").len(), 1);
}

#[test]
fn removing_a_member_revokes_the_apps_they_authorized() {
    let n = Node::new();
    let admin = n.person("admin@example.test", Role::Admin);
    let (admin_access, admin_refresh, admin_app) = n.tokens(&admin);
    let (owner_access, _, owner_app) = n.tokens(&n.owner);

    let revoked = authorizations::remove_member(
        &mut n.conn(),
        &n.credentials.cache,
        &n.workspace,
        &admin,
        &n.owner,
    )
    .expect("removed");
    assert_eq!(revoked, 1);
    assert_eq!(
        accounts::role_in(&mut n.conn(), &n.workspace, &admin).unwrap(),
        None
    );
    assert!(n.revoked_at(&admin_app).is_some());
    assert!(n.stored(&admin_access).is_none());
    assert_invalid_grant(n.refresh(&admin_refresh), "the removed member's app");
    // The owner's own authorization is not theirs to lose.
    assert!(n.revoked_at(&owner_app).is_none());
    assert!(n.stored(&owner_access).is_some());
    let log = n.log("member.removed");
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].subject, admin);
    assert_eq!(log[0].actor, n.owner);
}

#[test]
fn only_owners_and_admins_may_authorize_apps() {
    let n = Node::new();
    let member = n.person("member@example.test", Role::Member);
    let refused = n.approve(&member);
    assert!(
        matches!(refused, Err(Error::Forbidden(_))),
        "a member authorized an app: {:?}",
        refused.map(|(_, _, id)| id)
    );
    let outsider = accounts::create_user(&mut n.conn(), "out@example.test", PASSWORD).unwrap();
    assert!(matches!(n.approve(&outsider.id), Err(Error::Forbidden(_))));
    assert!(
        authorizations::list_for_workspace(&mut n.conn(), &n.workspace)
            .unwrap()
            .is_empty()
    );
    assert!(n.log("app.authorized").is_empty());

    let admin = n.person("admin@example.test", Role::Admin);
    n.approve(&admin).expect("an admin may");
    assert_eq!(n.log("app.authorized").len(), 1);
}

#[test]
fn an_api_key_works_until_rotated_or_revoked() {
    let n = Node::new();
    let mut conn = n.conn();
    let cache = &n.credentials.cache;
    let issued = apikeys::create(
        &mut conn,
        &n.workspace,
        "crm-sync",
        Access::ReadWrite,
        None,
        n.actor(),
    )
    .expect("created");
    drop(conn);
    let id = issued.key.id.clone();
    let first = issued.secret;
    match n.stored(&first) {
        Some(Principal::ApiKey(k)) => {
            assert_eq!(k.id, id);
            assert_eq!(k.workspace_id, n.workspace);
        }
        other => panic!("the new key is refused: {:?}", other.map(|p| p.kind())),
    }
    assert!(n.cached_valid(&first), "the check caches it");

    let rotated = apikeys::rotate(&mut n.conn(), cache, &id, n.actor()).expect("rotated");
    let second = rotated.secret;
    assert_ne!(second, first);
    assert!(!n.cached_valid(&first), "the old secret is still cached");
    assert!(n.stored(&first).is_none(), "the old secret still works");
    assert!(matches!(n.stored(&second), Some(Principal::ApiKey(_))));

    apikeys::revoke(&mut n.conn(), cache, &id, n.actor()).expect("revoked");
    assert!(!n.cached_valid(&second));
    assert!(n.stored(&second).is_none(), "a revoked key still works");
    assert!(matches!(
        apikeys::rotate(&mut n.conn(), cache, &id, n.actor()),
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        apikeys::revoke(&mut n.conn(), cache, &id, n.actor()),
        Err(Error::Conflict(_))
    ));
    for action in ["api_key.generated", "api_key.rotated", "api_key.revoked"] {
        let log = n.log(action);
        assert_eq!(log.len(), 1, "{action}: {log:?}");
        assert_eq!(log[0].subject, id);
    }
}

#[test]
fn a_free_workspace_gets_no_api_key() {
    let n = Node::new();
    let mut conn = n.conn();
    let free = accounts::create_workspace(&mut conn, "Tiny", Plan::Free).unwrap();
    let r = apikeys::create(
        &mut conn,
        &free.id,
        "crm-sync",
        Access::ReadOnly,
        None,
        n.actor(),
    );
    assert!(
        matches!(r, Err(Error::Forbidden(_))),
        "{:?}",
        r.map(|k| k.key.id)
    );
}

// ---- protected resources (RFC 8707) and introspection by a resource ----

const API: &str = "https://api.example.test/mcp";

impl Node {
    fn register(&self, identifier: &str) -> crate::resources::Created {
        let new = crate::resources::NewResource {
            identifier,
            name: "Acme MCP",
            routes: &["* / -".to_string()],
        };
        let v1 = self.config.resource();
        let created = crate::resources::create(&mut self.conn(), &v1, &new).expect("registered");
        // What the node's feed reader does with the `resource` event.
        self.resources.forget();
        created
    }

    /// Deletes a registered API (ending what was granted for it) and drops
    /// the node's copy of the registry.
    fn delete_resource(&self, api: &crate::resources::Created) {
        let revoke = authorizations::revoke_for_resource;
        crate::resources::delete(
            &mut self.conn(),
            &self.credentials.cache,
            &api.resource.id,
            revoke,
        )
        .expect("deleted");
        self.resources.forget();
    }

    /// Introspection with a resource's credentials.
    fn introspect_as(&self, r: &crate::resources::Created, token: &str) -> Introspection {
        let params = form(&[
            ("token", token),
            ("client_id", &r.resource.client_id),
            ("client_secret", &r.secret),
        ]);
        introspect::request(&self.issuer(), &mut self.conn(), None, &params)
            .expect("introspection answers")
    }
}

#[test]
fn a_resource_gets_tokens_of_its_own_audience_and_sees_every_key() {
    let n = Node::new();
    let api = n.register(API);
    let other = n.register("https://other.example.test");
    let (code, verifier, id) = n.approve_with(&n.owner, &[("resource", API)]).unwrap();
    assert_eq!(
        authorizations::find(&mut n.conn(), &id)
            .unwrap()
            .resource
            .as_deref(),
        Some(API)
    );
    // The token request may name no resource, or the one authorized only.
    let wrong = n.token(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", &verifier),
        ("resource", &n.config.resource()),
    ]);
    assert_eq!(wrong.unwrap_err().code(), "invalid_target");
    let t = n.exchange(&code, &verifier).expect("exchanged");
    let claims = n.credentials.keys.verify(&t.access_token).unwrap();
    assert_eq!(claims.aud, API);
    // Its resource sees it; another resource does not; the client does.
    let seen = n.introspect_as(&api, &t.access_token);
    assert!(seen.active);
    assert_eq!(seen.token_type, Some("access_token"));
    assert_eq!(seen.client_id.as_deref(), Some(n.client.client.id.as_str()));
    assert_eq!(seen.sub.as_deref(), Some(n.owner.as_str()));
    assert!(!n.introspect_as(&other, &t.access_token).active);
    let by_client = n.introspect(&n.client, &t.access_token, None);
    assert_eq!(by_client.aud.as_deref(), Some(API));
    let refresh_seen = n.introspect(&n.client, t.refresh_token.as_deref().unwrap(), None);
    assert_eq!(refresh_seen.aud.as_deref(), Some(API));
    // A refresh keeps the resource; a /v1 token is not the resource's.
    let refreshed = n.refresh(t.refresh_token.as_deref().unwrap()).unwrap();
    assert_eq!(
        n.credentials
            .keys
            .verify(&refreshed.access_token)
            .unwrap()
            .aud,
        API
    );
    let (v1_token, _, _) = n.tokens(&n.owner);
    assert!(!n.introspect_as(&api, &v1_token).active);
    // Every live API key, with its id and no expiry.
    let key = apikeys::create_key(
        &mut n.conn(),
        &apikeys::NewKey {
            workspace_id: &n.workspace,
            name: "mcp",
            access: Access::ReadOnly,
            expires_at: None,
            allowed_ips: None,
            mailbox_id: None,
        },
        n.actor(),
    )
    .unwrap();
    let k = n.introspect_as(&other, &key.secret);
    assert!(k.active);
    assert_eq!(k.token_type, Some("api_key"));
    assert_eq!(k.key_id.as_deref(), Some(key.key.id.as_str()));
    assert_eq!(k.exp, None);
    assert_eq!(k.workspace_id.as_deref(), Some(n.workspace.as_str()));
    // A resource's credentials obtain no tokens.
    let params = form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", "x"),
        ("client_id", &api.resource.client_id),
        ("client_secret", &api.secret),
    ]);
    let refused = token::grant(&n.issuer(), &mut n.conn(), None, &params);
    assert_eq!(refused.unwrap_err().code(), "unauthorized_client");
    let params = form(&[
        ("token", &key.secret),
        ("client_id", &api.resource.client_id),
        ("client_secret", "wrong"),
    ]);
    let wrong = introspect::request(&n.issuer(), &mut n.conn(), None, &params);
    assert_eq!(wrong.unwrap_err().code(), "invalid_client");
}

#[test]
fn unknown_or_several_resources_are_invalid_target() {
    let n = Node::new();
    n.register(API);
    let v1 = n.config.resource();
    for extra in [
        vec![("resource", "https://unknown.example.test")],
        vec![("resource", API), ("resource", v1.as_str())],
    ] {
        let mut conn = n.conn();
        let (_, challenge) = ("", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", n.client.client.id.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ];
        pairs.extend(extra);
        match authorize::validate(&mut conn, &n.config, &form(&pairs)) {
            Err(authorize::Rejection::Redirect { error, .. }) => {
                assert_eq!(error.code(), "invalid_target")
            }
            other => panic!("not refused: {:?}", other.map(|r| r.resource)),
        }
    }
    // One trailing slash is ignored; /v1 named is /v1.
    let with_slash = format!("{API}/");
    let (_, _, id) = n
        .approve_with(&n.owner, &[("resource", &with_slash)])
        .unwrap();
    let a = authorizations::find(&mut n.conn(), &id).unwrap();
    assert_eq!(a.resource.as_deref(), Some(API));
    let (_, _, id) = n.approve_with(&n.owner, &[("resource", &v1)]).unwrap();
    assert_eq!(
        authorizations::find(&mut n.conn(), &id).unwrap().resource,
        None
    );
}

#[test]
fn deleting_a_resource_ends_its_authorizations_and_credentials() {
    let n = Node::new();
    let api = n.register(API);
    let (code, verifier, id) = n.approve_with(&n.owner, &[("resource", API)]).unwrap();
    let t = n.exchange(&code, &verifier).unwrap();
    assert!(n.introspect_as(&api, &t.access_token).active);
    n.delete_resource(&api);
    assert!(n.revoked_at(&id).is_some());
    assert!(!n.introspect(&n.client, &t.access_token, None).active);
    assert_eq!(n.log("app.revoked_resource_deleted").len(), 1);
    let params = form(&[
        ("token", &t.access_token),
        ("client_id", &api.resource.client_id),
        ("client_secret", &api.secret),
    ]);
    let gone = introspect::request(&n.issuer(), &mut n.conn(), None, &params);
    assert_eq!(gone.unwrap_err().code(), "invalid_client");
    // The identifier is free again; the old tokens stay revoked.
    let again = n.register(API);
    assert!(!n.introspect_as(&again, &t.access_token).active);
}

/// A client revoking its access token: the token stops, its revocation event
/// and its log row are written once, and a foreign or repeated revocation
/// writes nothing; on both engines (PostgreSQL writes it as one statement).
fn revoking_an_access_token_writes_its_event_and_row_once(n: Node) {
    let (access, _, id) = n.tokens(&n.owner);
    let events = || {
        crate::credentials::revocation::read(&mut n.conn(), Default::default())
            .expect("the feed")
            .events
            .len()
    };
    let before = events();
    let revoke_as = |c: &NewClient, conn: &mut db::DbConn| {
        let mut all = vec![("token", access.as_str())];
        all.extend(Node::auth(c));
        revoke::request(&n.issuer(), conn, None, &form(&all))
    };
    revoke_as(&n.other, &mut n.conn()).expect("a foreign token is no error");
    assert!(n.stored(&access).is_some());
    assert_eq!(events(), before);

    let mut conn = n.conn();
    let run = statements::run(&mut conn, |conn| {
        revoke_as(&n.client, conn).expect("revoked")
    });
    if n._db.url.starts_with("postgres") {
        // The client's lookup aside, the revocation is one statement.
        let writes: Vec<_> = run.iter().filter(|s| !s.starts_with("SELECT")).collect();
        assert_eq!(writes.len(), 1, "{run:#?}");
        assert!(
            writes[0].starts_with("WITH u AS (UPDATE access_tokens"),
            "{run:#?}"
        );
    }
    drop(conn);
    assert!(n.stored(&access).is_none(), "revoked");
    assert!(!n.cached_valid(&access), "revoked in this node's cache");
    assert_eq!(events(), before + 1);
    let log = n.log("access_token.revoked_by_client");
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].actor, n.client.client.id);
    assert!(n.revoked_at(&id).is_none(), "the authorization lives on");

    revoke_as(&n.client, &mut n.conn()).expect("revoked again");
    assert_eq!(events(), before + 1);
    assert_eq!(n.log("access_token.revoked_by_client").len(), 1);
}

on_both_engines!(
    revoking_an_access_token_on_sqlite,
    revoking_an_access_token_on_postgresql,
    revoking_an_access_token_writes_its_event_and_row_once
);

/// Answering a held request on both engines (PostgreSQL writes an approval
/// as one statement): each refusal names its reason, spends the request and
/// writes nothing else; an approval is answered once.
fn answering_a_held_request(mut n: Node) {
    use authorize::Answered;
    let refused = |a: Answered| match a {
        Answered::Refused(msg) => msg,
        Answered::Expired => panic!("not refused: expired"),
        Answered::Denied(_) => panic!("not refused: denied"),
        Answered::Approved(..) => panic!("not refused: approved"),
    };
    let expired = |a: Answered| assert!(matches!(a, Answered::Expired), "not expired");
    // A plain member may not approve.
    let member = n.person("member@example.test", Role::Member);
    let (held, _) = n.hold(&[]);
    assert!(refused(n.answer(&member, &held)).contains("only owners and admins"));
    expired(n.answer(&n.owner, &held));
    // An API deleted while the person decided.
    let api = n.register(API);
    let (held, _) = n.hold(&[("resource", API)]);
    n.delete_resource(&api);
    assert!(refused(n.answer(&n.owner, &held)).contains("The API this application asked for"));
    expired(n.answer(&n.owner, &held));
    assert!(n.log("app.authorized").is_empty(), "nothing authorized");
    // Approved: once, logged once, and the code works.
    let (held, verifier) = n.hold(&[]);
    let mut conn = n.conn();
    let run = statements::run(&mut conn, |conn| {
        let answer = authorize::Answer::Approve {
            workspace_id: &n.workspace,
        };
        let answered = authorize::answer(
            conn,
            &n.writes,
            &n.config,
            "session-hash",
            &n.owner,
            &held,
            answer,
        );
        let Ok(Answered::Approved(_, approved)) = answered else {
            panic!("not approved");
        };
        assert!(
            n.exchange(&approved.code, &verifier).is_ok(),
            "the code works"
        );
    });
    drop(conn);
    if n._db.url.starts_with("postgres") {
        // The held request's read, whether a webhook endpoint wants the
        // event, then the approval: one statement.
        let approval: Vec<_> = run
            .iter()
            .filter(|s| s.starts_with("WITH d AS (DELETE"))
            .collect();
        assert_eq!(approval.len(), 1, "{run:#?}");
        assert!(!run.iter().any(|s| s == "BEGIN"), "{run:#?}");
    }
    expired(n.answer(&n.owner, &held));
    assert_eq!(n.log("app.authorized").len(), 1);
    // The application deleted while the person decided: its held requests
    // go with it.
    let (held, _) = n.hold(&[]);
    let client = n.client.client.id.clone();
    clients::delete(
        &mut n.conn(),
        &n.clients,
        &n.credentials.cache,
        &client,
        "cli",
        None,
    )
    .expect("deleted");
    expired(n.answer(&n.owner, &held));
    // A request answered after it expired.
    n.config.consent_ttl = -1;
    n.client = clients::create(&mut n.conn(), "Acme CRM 2", &[REDIRECT.into()], false).unwrap();
    let (held, _) = n.hold(&[]);
    expired(n.answer(&n.owner, &held));
    assert_eq!(n.log("app.authorized").len(), 1);
}

on_both_engines!(
    answering_a_held_request_on_sqlite,
    answering_a_held_request_on_postgresql,
    answering_a_held_request
);
