//! The contract's revocation bound (`/v1`): a revoked credential is refused on
//! every node within 1 s while the nodes reach the database; a node that cannot
//! reach it serves from memory for at most the stale bound after it last read
//! the revocation feed, then answers 503 (and `/readyz` 503) until the database
//! is back, and recovers by itself. Also: cached credentials have a maximum age,
//! a node away longer than the events' retention forgets its cache, and an
//! event that commits after later ones is not missed.
//!
//! Cutting one node off needs a database server: those tests run on PostgreSQL
//! only, each node under a role of its own. On SQLite the same logic is covered
//! by the unit tests of `credentials::cache` and `credentials::revocation`.

use crate::support::*;
use diesel::connection::SimpleConnection;
use diesel::Connection;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Runs each named test against KEYGATE_TEST_POSTGRES_URL, and says so when it
/// is not set.
macro_rules! postgres_only {
    ($($name:ident),* $(,)?) => {
        mod postgres_only {
            $( #[test] fn $name() {
                if $crate::support::postgres_admin_url().is_none() {
                    eprintln!("KEYGATE_TEST_POSTGRES_URL is not set: PostgreSQL-only test not run");
                    return;
                }
                super::$name()
            } )*
        }
    };
}

/// One BIGINT column `n` of the first row of a query on PostgreSQL.
fn pg_number(url: &str, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut c = diesel::PgConnection::establish(url).expect("connect");
    diesel::RunQueryDsl::get_result::<N>(diesel::sql_query(sql), &mut c)
        .expect("query")
        .n
}

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// A PostgreSQL role for one node, with what keygate needs on the test
/// database, so that this node alone can be cut off from the database.
struct NodeRole {
    name: String,
    /// The test database, as the administrator.
    admin_url: String,
    /// The test database, as this role.
    url: String,
}

impl NodeRole {
    fn create(db: &TestDb) -> NodeRole {
        let name = format!("keygate_node_{}", short_id());
        let password = short_id();
        let database = url::Url::parse(&db.url).unwrap().path()[1..].to_string();
        db.execute(&format!(
            "CREATE ROLE {name} LOGIN PASSWORD '{password}'; \
             GRANT CONNECT ON DATABASE {database} TO {name}; \
             GRANT USAGE, CREATE ON SCHEMA public TO {name}; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {name}; \
             GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {name};"
        ));
        let mut url = url::Url::parse(&db.url).unwrap();
        url.set_username(&name).unwrap();
        url.set_password(Some(&password)).unwrap();
        NodeRole {
            name,
            admin_url: db.url.clone(),
            url: url.to_string(),
        }
    }

    fn admin(&self, sql: &str) {
        let mut c = diesel::PgConnection::establish(&self.admin_url).expect("connect as admin");
        c.batch_execute(sql).expect("admin SQL");
    }

    fn backends(&self) -> i64 {
        pg_number(
            &self.admin_url,
            &format!(
                "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE usename = '{}'",
                self.name
            ),
        )
    }

    /// No new connections, and the open ones ended. Returns once none is left.
    fn cut_off(&self) -> Instant {
        self.admin(&format!(
            "ALTER ROLE {0} NOLOGIN; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{0}';",
            self.name
        ));
        assert!(
            eventually(Duration::from_secs(5), || self.backends() == 0),
            "the node's connections did not end"
        );
        Instant::now()
    }

    fn restore(&self) {
        self.admin(&format!("ALTER ROLE {} LOGIN", self.name));
    }

    /// A node of the fixture's issuer on the fixture's database, as this role.
    fn node(&self, f: &Fixture, env: &[(&str, &str)]) -> Server {
        let mut db = TestDb::reuse(f.db());
        db.url = self.url.clone();
        let mut all = vec![("KEYGATE_ISSUER", f.server.base.as_str())];
        all.extend_from_slice(env);
        Server::spawn(db, free_port(), &all)
    }
}

impl Drop for NodeRole {
    fn drop(&mut self) {
        // Best effort: the node using it has been stopped by now.
        let name = &self.name;
        if let Ok(mut c) = diesel::PgConnection::establish(&self.admin_url) {
            let _ = c.batch_execute(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{name}'; \
                 DROP OWNED BY {name}; DROP ROLE {name};"
            ));
        }
    }
}

/// The stale bound the cut-off nodes run with (the contract's is 60 s; the
/// logic is the same, the test is shorter).
const STALE_SECS: u64 = 3;

/// A new API key of the fixture's workspace: (id, name, key).
fn new_key(f: &Fixture) -> (String, String, String) {
    let name = format!("key-{}", short_id());
    let v = f.db().create_api_key(&f.workspace_id, &name, "read_write");
    (
        v["id"].as_str().unwrap().to_string(),
        name,
        v["key"].as_str().unwrap().to_string(),
    )
}

fn v1(server: &Server, credential: &str) -> Resp {
    server.client().bearer_get("/v1/workspace", credential)
}

fn ready(server: &Server) -> Resp {
    server.client().get("/readyz")
}

/// Revokes an API key on the fixture's node (its settings page, as the owner).
fn revoke_key_in_page(f: &Fixture, id: &str, name: &str) {
    let mut owner = f.owner();
    let page = owner.get(&format!("/settings/api-keys?workspace={}", f.workspace_id));
    let csrf = hidden(&page.body, "csrf_token").expect("csrf_token");
    let r = owner.post_form(
        &format!("/settings/api-keys/{id}/revoke"),
        &[("csrf_token", &csrf), ("confirm_name", name)],
    );
    assert_eq!(r.status, 303, "revoke in the page: {}", r.body);
}

/// The contract's 503 on `/v1`.
fn is_unavailable(r: &Resp) -> bool {
    let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    r.status == 503
        && v["error"]["type"] == "api_error"
        && v["error"]["code"] == "service_unavailable"
        && v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
        && r.header("retry-after").is_some()
}

/// One `/v1` request of the load: which node, when it was sent and answered,
/// which credential, and the answer (a 503 only counts as such in the
/// contract's shape).
struct Sample {
    node: usize,
    at: Instant,
    done: Instant,
    credential: usize,
    status: u16,
}

/// Node indexes of a history.
const NODE_A: usize = 0;
const NODE_B: usize = 1;

/// Requests `/v1/workspace` of `node` with each credential in turn until `stop`.
fn load(node: usize, base: &str, credentials: &[String], stop: &AtomicBool) -> Vec<Sample> {
    let mut http = Http::new(base);
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        for (i, c) in credentials.iter().enumerate() {
            let at = Instant::now();
            let r = http.bearer_get("/v1/workspace", c);
            let status = match r.status {
                503 if !is_unavailable(&r) => 0,
                s => s,
            };
            samples.push(Sample {
                node,
                at,
                done: Instant::now(),
                credential: i,
                status,
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    samples
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// The "done when": two nodes on one PostgreSQL, one cut off under
/// load while a key and an access token are revoked through the other. The cut
/// node serves from memory until the stale bound, then 503 in the contract's
/// shape (never 200 with a revoked credential after the bound), `/readyz` says
/// why, and once the database is back it recovers by itself: the revoked
/// credentials 401, the good key 200.
/// The whole history of the run (every request: node, credential, send and
/// answer times, status) is checked afterwards against the contract's bounds,
/// so a regression anywhere in the window is caught.
fn a_cut_off_node_refuses_within_the_bound() {
    let f = Fixture::new(Backend::Postgres);
    let role = NodeRole::create(f.db());
    let stale = STALE_SECS.to_string();
    let node_b = role.node(&f, &[("KEYGATE_REVOCATION_STALE_SECS", &stale)]);
    let (doomed_id, doomed_name, doomed) = new_key(&f);
    let (_, _, good) = new_key(&f);
    let (token, _) = f.tokens("workspace:read");
    let credentials = vec![doomed.clone(), token.clone(), good.clone()];
    const DOOMED: usize = 0;
    const TOKEN: usize = 1;
    const GOOD: usize = 2;
    // Node B has verified each, so each is in its memory.
    for c in &credentials {
        let r = v1(&node_b, c);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = ready(&node_b);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["revocation_feed"], "ok");

    let stop = AtomicBool::new(false);
    let bound = Duration::from_secs(STALE_SECS);
    let (samples, t_cut, t_revoked, t_restore, recovered_after, readyz_while_cut) =
        std::thread::scope(|s| {
            // The whole history: three clients of node B, two of node A.
            let loaders: Vec<_> = (0..3)
                .map(|_| s.spawn(|| load(NODE_B, &node_b.base, &credentials, &stop)))
                .chain(
                    (0..2).map(|_| s.spawn(|| load(NODE_A, &f.server.base, &credentials, &stop))),
                )
                .collect();
            std::thread::sleep(Duration::from_millis(300));

            let t_cut = role.cut_off();
            // Revoked through node A, which refuses both at once.
            revoke_key_in_page(&f, &doomed_id, &doomed_name);
            let r = f.server.client().post_form_with(
                "/oauth/revoke",
                &[("token", &token)],
                &[("Authorization", &f.basic())],
            );
            assert_eq!(r.status, 200, "{}", r.body);
            for c in [&doomed, &token] {
                v1(&f.server, c).assert_v1_error(401, "authentication_error", "invalid_api_key");
            }
            let t_revoked = Instant::now();

            // Past the bound node B refuses everything, good or revoked.
            assert!(
                eventually(bound + Duration::from_secs(2), || is_unavailable(&v1(
                    &node_b, &good
                ))),
                "node B still serves from memory {} ms after it was cut off",
                ms(t_cut.elapsed())
            );
            let readyz_while_cut = ready(&node_b);
            std::thread::sleep(Duration::from_millis(500));

            role.restore();
            let t_restore = Instant::now();
            let back = eventually(Duration::from_secs(15), || {
                v1(&node_b, &good).status == 200
                    && v1(&node_b, &doomed).status == 401
                    && v1(&node_b, &token).status == 401
            });
            let recovered_after = t_restore.elapsed();
            assert!(back, "node B did not recover by itself\n{}", node_b.logs());
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, Ordering::Relaxed);
            let samples: Vec<Sample> = loaders
                .into_iter()
                .flat_map(|h| h.join().expect("load thread"))
                .collect();
            (
                samples,
                t_cut,
                t_revoked,
                t_restore,
                recovered_after,
                readyz_while_cut,
            )
        });

    // /readyz said why while the node was cut off.
    assert_eq!(readyz_while_cut.status, 503, "{}", readyz_while_cut.body);
    let v = readyz_while_cut.json();
    assert_eq!(v["status"], "not_ready");
    assert_eq!(v["revocation_feed"], "stale", "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("revocation feed"),
        "{v}"
    );

    // The whole history against the contract's bounds. Node A reaches the
    // database throughout: the good key always works there, and a revoked
    // credential sent after the revocation is refused (its own revocations
    // apply at once). Once node B has recovered, it refuses them too.
    let recovered = t_restore + recovered_after + Duration::from_millis(100);
    for s in samples.iter().filter(|s| s.node == NODE_A) {
        let since = ms(s.at.saturating_duration_since(t_cut));
        match s.credential {
            GOOD => assert_eq!(s.status, 200, "node A refused the good key ({since} ms)"),
            _ if s.at > t_revoked => {
                assert_eq!(
                    s.status, 401,
                    "node A served a revoked credential ({since} ms)"
                )
            }
            _ => assert!(
                matches!(s.status, 200 | 401),
                "node A answered {}",
                s.status
            ),
        }
    }
    for s in samples
        .iter()
        .filter(|s| s.node == NODE_B && s.at > recovered)
    {
        let expected = if s.credential == GOOD { 200 } else { 401 };
        assert_eq!(
            s.status,
            expected,
            "node B, recovered, answered {} for credential {} ({} ms after it was back)",
            s.status,
            s.credential,
            ms(s.at - t_restore)
        );
    }
    let samples: Vec<Sample> = samples.into_iter().filter(|s| s.node == NODE_B).collect();

    // What node B's load saw. Every answer is 200, 401 or the contract's 503.
    let after_bound = t_cut + bound + Duration::from_millis(200);
    let mut first_503 = None;
    for s in &samples {
        assert!(
            matches!(s.status, 200 | 401 | 503),
            "a /v1 request answered {} ({} ms after the cut; 0: a 503 out of shape)",
            s.status,
            ms(s.at.saturating_duration_since(t_cut))
        );
        if s.status == 503 && first_503.is_none_or(|t| s.at < t) {
            first_503 = Some(s.at);
        }
        if s.at > after_bound {
            assert!(
                !(s.status == 200 && s.credential != GOOD),
                "node B accepted a revoked credential {} ms after it was cut off (bound {} ms)",
                ms(s.at - t_cut),
                ms(bound)
            );
        }
        if s.at > after_bound && s.done < t_restore {
            assert_eq!(
                s.status, 503,
                "node B answered {} past the stale bound, cut off",
                s.status
            );
        }
    }
    let first_503 = first_503.expect("no 503 seen");
    let refused_good = samples
        .iter()
        .filter(|s| s.credential == GOOD && s.status == 503)
        .count();
    let revoked_served = samples
        .iter()
        .filter(|s| s.credential != GOOD && s.status == 200 && s.at > t_cut)
        .count();
    assert!(refused_good > 0);
    assert!(
        samples
            .iter()
            .any(|s| s.credential == DOOMED && s.status == 401 && s.at > t_restore),
        "the revoked key was never refused after the database came back"
    );
    assert!(samples
        .iter()
        .any(|s| s.credential == TOKEN && s.status == 401 && s.at > t_restore));
    assert!(node_b.logs().contains("dropping every cached credential"));
    eprintln!(
        "{} requests; cut off → first 503 after {} ms (bound {} ms); revoked credentials \
         served from memory {revoked_served} times before it; database back → recovered in {} ms",
        samples.len(),
        ms(first_503.saturating_duration_since(t_cut)),
        ms(bound),
        ms(recovered_after)
    );
    assert!(
        eventually(Duration::from_secs(5), || ready(&node_b).status == 200),
        "/readyz did not recover"
    );
    drop(node_b);
}

/// Issue 25: a node that knows its database is away answers what needs the
/// database with 503 at once, not after the pool's 3 s wait (so a load
/// balancer's health check sees the 503, not a timeout), and notices the
/// database coming back by itself.
fn a_node_without_its_database_answers_at_once() {
    let f = Fixture::new(Backend::Postgres);
    let role = NodeRole::create(f.db());
    let node_b = role.node(&f, &[("KEYGATE_REVOCATION_STALE_SECS", "60")]);
    let (_, _, fresh) = new_key(&f);
    let (_, refresh) = f.tokens("workspace:read");
    role.cut_off();
    // The node learns it within the pool's timeout (3 s): its background
    // task checks out a connection every poll.
    std::thread::sleep(Duration::from_millis(4500));
    let timed = |what: &str, r: Resp, started: Instant| {
        let took = started.elapsed();
        assert_eq!(r.status, 503, "{what}: {}", r.body);
        assert!(
            took < Duration::from_millis(1500),
            "{what} waited {} ms for its 503",
            ms(took)
        );
    };
    for _ in 0..3 {
        let t = Instant::now();
        let r = v1(&node_b, &fresh);
        assert!(is_unavailable(&r), "{}", r.body);
        timed("a credential not in memory", r, t);
        let t = Instant::now();
        let r = node_b.client().post_form_with(
            "/oauth/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
            &[("Authorization", &f.basic())],
        );
        timed("the token endpoint", r, t);
        let t = Instant::now();
        let r = ready(&node_b);
        assert_eq!(r.json()["database"], "unavailable", "{}", r.body);
        timed("/readyz", r, t);
    }
    role.restore();
    assert!(
        eventually(Duration::from_secs(10), || v1(&node_b, &fresh).status
            == 200),
        "the node did not notice its database back\n{}",
        node_b.logs()
    );
    assert_eq!(ready(&node_b).status, 200);
}

/// A node whose revocation feed fails while the rest of the database answers
/// (here: the feed's table made unreadable for the node's role) says so on
/// `/readyz` before the bound, and past it refuses credentials; both recover
/// once the feed can be read again.
fn a_failing_feed_shows_in_readyz() {
    let f = Fixture::new(Backend::Postgres);
    let role = NodeRole::create(f.db());
    let node = role.node(&f, &[("KEYGATE_REVOCATION_STALE_SECS", "7")]);
    let (_, _, key) = new_key(&f);
    assert_eq!(v1(&node, &key).status, 200);
    let t0 = Instant::now();
    role.admin(&format!(
        "REVOKE SELECT ON revocation_events FROM {}",
        role.name
    ));

    // Behind (past 5 s): out of rotation, while memory is still served.
    let mut last = None;
    let behind = eventually(Duration::from_secs(7), || {
        let r = ready(&node);
        let done = r.status == 503 && r.json()["revocation_feed"] == "behind";
        last = Some(r);
        done
    });
    let r = last.unwrap();
    assert!(
        behind,
        "/readyz did not notice the failing feed: {}",
        r.body
    );
    let v = r.json();
    assert_eq!(v["database"], "ok", "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("revocation feed"),
        "{v}"
    );
    let behind_after = t0.elapsed();
    assert_eq!(v1(&node, &key).status, 200, "refused within the bound");

    // Stale (past 7 s): /v1 refuses.
    assert!(
        eventually(Duration::from_secs(4), || is_unavailable(&v1(&node, &key))),
        "still serving past the stale bound"
    );
    let stale_after = t0.elapsed();
    let r = ready(&node);
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["revocation_feed"], "stale", "{}", r.body);

    role.admin(&format!(
        "GRANT SELECT ON revocation_events TO {}",
        role.name
    ));
    assert!(
        eventually(Duration::from_secs(5), || ready(&node).status == 200
            && v1(&node, &key).status == 200),
        "did not recover once the feed could be read"
    );
    eprintln!(
        "feed failing → /readyz behind after {} ms, /v1 503 after {} ms (bound 7000 ms)",
        ms(behind_after),
        ms(stale_after)
    );
    drop(node);
}

/// A node away for longer than the events are kept finds the gap (the
/// oldest retained event is past its cursor) and forgets its cache, though it
/// came back within its stale bound and its cache would otherwise still serve
/// the key revoked while it was away.
fn a_node_away_past_retention_forgets_its_cache() {
    let fast_pruning = [
        ("KEYGATE_REVOCATION_RETENTION_SECS", "1"),
        ("KEYGATE_HOUSEKEEPING_SECS", "1"),
    ];
    let f = Fixture::with_server(Server::start_with(
        TestDb::new(Backend::Postgres),
        &fast_pruning,
    ));
    let role = NodeRole::create(f.db());
    let mut env = fast_pruning.to_vec();
    env.push(("KEYGATE_REVOCATION_STALE_SECS", "60"));
    let node_b = role.node(&f, &env);
    let (doomed_id, _, doomed) = new_key(&f);
    let (filler_id, _, _) = new_key(&f);
    let (_, _, good) = new_key(&f);
    for k in [&doomed, &good] {
        assert_eq!(v1(&node_b, k).status, 200);
    }
    let t0 = Instant::now();
    role.cut_off();
    f.db().json(&["apikey", "revoke", &doomed_id]);
    let doomed_seq = pg_number(&f.db().url, "SELECT MAX(seq) AS n FROM revocation_events");
    std::thread::sleep(Duration::from_millis(1100));
    // Something newer, so that the doomed key's event is not the newest (the
    // newest is always kept) and goes once it is past the retention.
    f.db().json(&["apikey", "revoke", &filler_id]);
    assert!(
        eventually(Duration::from_secs(10), || pg_number(
            &f.db().url,
            "SELECT COALESCE(MIN(seq), 0) AS n FROM revocation_events"
        ) > doomed_seq),
        "node A did not prune the event"
    );
    // Cut off, inside its bound: node B still serves its memory.
    assert_eq!(v1(&node_b, &doomed).status, 200);

    role.restore();
    let t_restore = Instant::now();
    assert!(
        eventually(Duration::from_secs(10), || v1(&node_b, &doomed).status
            == 401),
        "node B serves a key revoked while it was away\n{}",
        node_b.logs()
    );
    let recovered = t_restore.elapsed();
    assert_eq!(v1(&node_b, &good).status, 200);
    assert!(
        node_b
            .logs()
            .contains("events this node never read were pruned"),
        "{}",
        node_b.logs()
    );
    eprintln!(
        "away {} ms with a 1 s retention; gap found and cache dropped {} ms after the database came back",
        ms(t_restore - t0),
        ms(recovered)
    );
    drop(node_b);
}

/// On PostgreSQL a revocation whose transaction took its sequence number
/// first but commits after later ones is still applied: the node has read
/// (and refused) a later revocation before this one commits. Its
/// `created_at_ms` is an hour old too, so no window of recent seconds or
/// sequence values would catch it either.
fn a_late_committing_revocation_is_not_missed() {
    let f = Fixture::new(Backend::Postgres);
    let node = &f.server;
    let (late_id, _, late) = new_key(&f);
    let (early_id, _, early) = new_key(&f);
    for k in [&late, &early] {
        assert_eq!(v1(node, k).status, 200);
    }
    let mut slow = diesel::PgConnection::establish(&f.db().url).expect("connect");
    let now_ms = chrono::Utc::now().timestamp_millis();
    slow.batch_execute(&format!(
        "BEGIN; \
         UPDATE api_keys SET revoked_at = {now} WHERE id = '{late_id}'; \
         INSERT INTO revocation_events (kind, subject, expires_at, created_at_ms) \
         VALUES ('api_key', '{late_id}', {expires}, {old});",
        now = now_ms / 1000,
        expires = now_ms / 1000 + 3600,
        old = now_ms - 3_600_000,
    ))
    .expect("the late transaction");
    // A later revocation commits first; the node reads it and moves on.
    f.db().json(&["apikey", "revoke", &early_id]);
    assert_eq!(v1(node, &early).status, 401);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(v1(node, &late).status, 200, "not revoked yet");

    slow.batch_execute("COMMIT").expect("commit");
    let t_commit = Instant::now();
    assert!(
        eventually(Duration::from_secs(1), || v1(node, &late).status == 401),
        "a revocation committed late was missed"
    );
    eprintln!(
        "late-committing revocation refused {} ms after its commit",
        ms(t_commit.elapsed())
    );
}

/// Every cached credential is read again within its maximum age, even when
/// no event says it changed (here a revocation written straight into the
/// database, without its event).
fn cached_credentials_have_a_maximum_age(b: Backend) {
    let f = Fixture::with_server(Server::start_with(
        TestDb::new(b),
        &[("KEYGATE_CREDENTIAL_CACHE_SECS", "1")],
    ));
    let node = &f.server;
    let (key_id, _, key) = new_key(&f);
    let (token, _) = f.tokens("workspace:read");
    for c in [&key, &token] {
        assert_eq!(v1(node, c).status, 200);
    }
    let r = ready(node);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["revocation_feed"], "ok", "{}", r.body);
    let now = chrono::Utc::now().timestamp();
    f.db().execute(&format!(
        "UPDATE api_keys SET revoked_at = {now} WHERE id = '{key_id}'; \
         UPDATE access_tokens SET revoked_at = {now};"
    ));
    let t0 = Instant::now();
    assert!(
        eventually(Duration::from_secs(3), || v1(node, &key).status == 401
            && v1(node, &token).status == 401),
        "a cached credential outlived its maximum age"
    );
    eprintln!(
        "revoked without an event: refused after {} ms (maximum age 1000 ms)",
        ms(t0.elapsed())
    );
}

both_backends!(cached_credentials_have_a_maximum_age);

postgres_only!(
    a_cut_off_node_refuses_within_the_bound,
    a_node_without_its_database_answers_at_once,
    a_failing_feed_shows_in_readyz,
    a_node_away_past_retention_forgets_its_cache,
    a_late_committing_revocation_is_not_missed,
);
