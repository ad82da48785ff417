//! What the benchmark seeds before the servers start: the bench workspace
//! with its owner, client, API key, resource, mailbox and service client
//! (the fixture the scenarios use), and `--scale` rows of each kind for the
//! large working set.

use crate::flows::pkce;
use crate::http::form;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use keygate::accounts::{self, audit, Plan, Role};
use keygate::apikeys::{self, Access};
use keygate::db::{self, DbConn};
use keygate::error::Error;
use keygate::node::state::Services;
use keygate::oauth::authorize::{self, Answer, Answered};
use keygate::oauth::{clients, token, Params};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

/// The redirect URI of every seeded client (nothing listens there: the flow
/// reads the code from the redirect).
pub const REDIRECT: &str = "http://127.0.0.1:9/cb";
/// The bench workspace's owner, who signs in for the flows.
pub const OWNER_EMAIL: &str = "owner@bench.example";
pub const PASSWORD: &str = "bench password 1";
/// The mailbox of the SMTP AUTH scenario.
pub const MAILBOX: &str = "sender@bench.example";

/// The bench workspace and what the scenarios present in it.
pub struct Fixture {
    pub workspace_id: String,
    /// The confidential client of the flows.
    pub client_id: String,
    /// Its `Authorization: Basic …`.
    pub client_basic: String,
    pub api_key: String,
    /// The service client's `Authorization: Basic …` (DPoP tokens).
    pub service_basic: String,
    /// The mailbox's auth key (SMTP AUTH).
    pub auth_key: String,
}

/// Seeds an empty database (migrating it first) for servers whose issuer
/// is `issuer`, as a node of theirs would: the same configuration from the
/// environment (the master key that seals the signing key among it).
pub fn seed(url: &str, issuer: &str, scale: usize) -> Result<(Fixture, Seeded), String> {
    let mut config = keygate::config::Config::resolve(Some(url.into()), Some(issuer.into()), None)?;
    config.rate_limits = None;
    let pool = db::connect(url, Some(WRITERS as u32 + 1))?;
    let node = Services::new(config, pool)?;
    let seeded = bulk(&node, scale)?;
    let mut conn = node.pool.get().map_err(|e| e.to_string())?;
    let fixture = fixture(&mut conn, issuer).map_err(|e| e.to_string())?;
    Ok((fixture, seeded))
}

fn basic(id: &str, secret: Option<&str>) -> String {
    let pair = format!("{id}:{}", secret.unwrap_or_default());
    format!("Basic {}", STANDARD.encode(pair))
}

/// The bench workspace, through the areas' functions as the CLI makes it.
fn fixture(conn: &mut DbConn, issuer: &str) -> keygate::error::Result<Fixture> {
    let ws = accounts::create_workspace(conn, "Bench workspace", Plan::Pro)?;
    let user = accounts::create_user(conn, OWNER_EMAIL, PASSWORD)?;
    accounts::add_member(conn, &ws.id, &user.id, Role::Owner)?;
    let client =
        keygate::oauth::clients::create(conn, "Bench client", &[REDIRECT.to_string()], false)?;
    let api_key = apikeys::create(conn, &ws.id, "bench", Access::ReadOnly, None, audit::CLI)?;
    // A registered resource, for the gateway check scenario.
    let gateway_resource = keygate::resources::NewResource {
        identifier: "https://api.bench.example",
        name: "bench API",
        routes: &["GET /tags tags:read".to_string()],
    };
    keygate::resources::create(conn, &format!("{issuer}/v1"), &gateway_resource)?;
    // A mailbox and its auth key, for the SMTP AUTH scenario, in a domain
    // verified on the operator's word.
    keygate::mailboxes::domains::add(conn, &ws.id, "bench.example", true, audit::CLI)?;
    let mailbox = keygate::mailboxes::lifecycle::create(conn, &ws.id, MAILBOX, audit::CLI)?;
    let auth_key = keygate::mailboxes::auth_keys::create(conn, &mailbox.id, "bench", audit::CLI)?;
    // A service client, for the DPoP scenario's tokens.
    let service = keygate::oauth::service_clients::create(
        conn,
        &keygate::oauth::service_clients::NewService {
            workspace_id: &ws.id,
            name: "Bench service",
            scopes: &["workspace:read".to_string()],
            keys: keygate::oauth::service_clients::ClientKeys::Secret,
        },
        audit::CLI,
    )?
    .0;
    Ok(Fixture {
        workspace_id: ws.id,
        client_basic: basic(&client.client.id, client.secret.as_deref()),
        client_id: client.client.id,
        api_key: api_key.secret,
        service_basic: basic(&service.client.id, service.secret.as_deref()),
        auth_key: auth_key.secret,
    })
}

/// The credentials of the bulk rows, for the large-working-set scenarios.
pub struct Seeded {
    pub api_keys: Vec<String>,
    pub access_tokens: Vec<String>,
}

/// `scale` bulk rows, each through the areas' functions as the CLI, the
/// authorization endpoint and the token endpoint make them: a workspace, its
/// owner (without a password: no bulk person signs in, and argon2 for each
/// would take hours), a public client, an API key, and an authorization of
/// the client by the owner with its access token. Every credential is one
/// the servers accept.
fn bulk(node: &Services, scale: usize) -> Result<Seeded, String> {
    let rows = rows(node, scale, |conn, i| {
        let ws = accounts::create_workspace(conn, &format!("bench {i}"), Plan::Pro)?;
        let email = format!("person{i}@bulk.bench.example");
        let owner = accounts::create_user_without_password(conn, &email)?;
        accounts::add_member(conn, &ws.id, &owner.id, Role::Owner)?;
        let client = clients::create(conn, "bench app", &[REDIRECT.to_string()], true)?;
        let key = apikeys::create(
            conn,
            &ws.id,
            "bench key",
            Access::ReadOnly,
            None,
            audit::CLI,
        )?;
        let token = authorized(node, conn, &client.client.id, &owner.id, &ws.id)?;
        Ok((key.secret, token))
    })?;
    let (api_keys, access_tokens) = rows.into_iter().unzip();
    Ok(Seeded {
        api_keys,
        access_tokens,
    })
}

/// Bulk rows committed together on PostgreSQL.
const CHUNK: usize = 250;
/// Connections seeding at once on PostgreSQL.
const WRITERS: usize = 4;

/// Makes rows 0..n with `row`, in order. SQLite: one after another, each
/// area function committing alone (they open their transactions with `BEGIN
/// IMMEDIATE`, which cannot nest; a commit costs no sync there: WAL,
/// `synchronous = NORMAL`). PostgreSQL: each [`CHUNK`] of rows is one
/// transaction (an area function's own is a savepoint in it), on
/// [`WRITERS`] connections at once, since each row is many round trips. The
/// first error stops every writer at its next chunk.
fn rows<T: Send>(
    node: &Services,
    n: usize,
    row: impl Fn(&mut DbConn, usize) -> Result<T, Error> + Sync,
) -> Result<Vec<T>, String> {
    use diesel::Connection;
    let started = Instant::now();
    let done = AtomicUsize::new(0);
    let progress = |k: usize| {
        let before = done.fetch_add(k, Ordering::Relaxed);
        if (before + k) / 10_000 > before / 10_000 {
            let secs = started.elapsed().as_secs_f64();
            eprintln!("  {} of {n} in {secs:.0} s", before + k);
        }
    };
    let sqlite = db::DatabaseUrl::parse(&node.config.database_url)?.is_sqlite();
    let failed = AtomicBool::new(false);
    let writers = if sqlite { 1 } else { WRITERS };
    let chunks: Vec<Vec<(usize, T)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (row, progress, failed) = (&row, &progress, &failed);
                scope.spawn(move || -> Result<Vec<Vec<(usize, T)>>, Error> {
                    let mut conn = node.pool.get()?;
                    let conn: &mut DbConn = &mut conn;
                    let mut mine = Vec::new();
                    for start in (w * CHUNK..n).step_by(writers * CHUNK) {
                        if failed.load(Ordering::Relaxed) {
                            break;
                        }
                        let end = n.min(start + CHUNK);
                        let chunk = |conn: &mut DbConn| -> Result<Vec<(usize, T)>, Error> {
                            (start..end).map(|i| Ok((i, row(conn, i)?))).collect()
                        };
                        let made = match sqlite {
                            true => chunk(conn),
                            false => conn.transaction(chunk),
                        };
                        failed.fetch_or(made.is_err(), Ordering::Relaxed);
                        mine.push(made?);
                        progress(end - start);
                    }
                    Ok(mine)
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            let mine = h
                .join()
                .map_err(|_| "a seeding thread panicked".to_string())?;
            all.extend(mine.map_err(|e| e.to_string())?);
        }
        Ok::<_, String>(all)
    })?;
    let mut all: Vec<(usize, T)> = chunks.into_iter().flatten().collect();
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, t)| t).collect())
}

/// The session the bulk approvals are held for (no one signs in with it).
const SEED_SESSION: &str = "keygate-bench seed";

/// The client authorized by `owner` for `workspace_id` with the scope
/// `workspace:read`, as the authorization endpoint records an approval
/// (validate, hold, answer) and the token endpoint exchanges its code;
/// returns the access token.
fn authorized(
    node: &Services,
    conn: &mut DbConn,
    client_id: &str,
    owner: &str,
    workspace_id: &str,
) -> Result<String, Error> {
    let (verifier, challenge) = pkce();
    let request = params(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "workspace:read"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let (config, writes) = (&node.config, &node.writes);
    let request = authorize::validate(conn, config, &request)
        .map_err(|r| Error::internal(format!("the seeded request was refused: {r:?}")))?;
    let held = authorize::hold(conn, writes, config, SEED_SESSION, &request)?;
    let approve = Answer::Approve { workspace_id };
    let code = match authorize::answer(conn, writes, config, SEED_SESSION, owner, &held, approve)? {
        Answered::Approved(_, approved) => approved.code,
        _ => return Err(Error::internal("the seeded approval was not recorded")),
    };
    let exchange = params(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", &verifier),
        ("client_id", client_id),
    ]);
    let tokens = token::grant(&node.issuer(), conn, None, &exchange)
        .map_err(|e| Error::internal(format!("the seeded code exchange failed: {e}")))?;
    Ok(tokens.access_token)
}

fn params(pairs: &[(&str, &str)]) -> Params {
    Params::parse(form(pairs).as_bytes())
}
