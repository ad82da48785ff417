//! What the benchmark seeds before the servers start: the bench workspace
//! with its owner, client, API key, resource, mailbox and service client
//! (the fixture the scenarios use), and `--scale` rows of each kind for the
//! large working set.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use keygate::accounts::{self, audit, Plan, Role};
use keygate::apikeys::{self, Access};
use keygate::credentials::key_format::API_KEY;
use keygate::credentials::signing_keys::{AccessClaims, KeyRing};
use keygate::db::{self, DbConn};

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

/// Seeds an empty database (migrating it first) for a server whose issuer
/// is `issuer`.
pub fn seed(url: &str, issuer: &str, scale: usize) -> Result<(Fixture, Seeded), String> {
    let mut conn = db::connect_single(url)?;
    let seeded = bulk(&mut conn, scale, issuer)?;
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

/// Credentials of the seeded rows, for the large-working-set scenarios.
#[derive(Default)]
pub struct Seeded {
    pub api_keys: Vec<String>,
    pub access_tokens: Vec<String>,
}

/// Bulk rows for `--scale`, written as multi-row INSERTs in one transaction:
/// per row a workspace, owner, client, authorization, a real API key and a
/// signed access token (with its record), so that the large working set is
/// made of credentials the server accepts.
fn bulk(conn: &mut DbConn, scale: usize, issuer: &str) -> Result<Seeded, String> {
    use diesel::connection::SimpleConnection;
    // Sealed as the server will find them: under the master key of the
    // environment the server inherits.
    let master_key = keygate::config::Config::resolve(None, None, None)?.master_key;
    let ring = KeyRing::load(conn, issuer, 3600, master_key).map_err(|e| e.to_string())?;
    let mut seeded = Seeded::default();
    let now = db::now();
    let hash = keygate::crypto::hash_password(PASSWORD);
    let mut stmts: Vec<String> = Vec::new();
    let chunk = 500;
    let mut i = 0;
    while i < scale {
        let n = chunk.min(scale - i);
        let ids: Vec<(String, String, String, String, String)> = (0..n)
            .map(|_| {
                (
                    db::new_id(),
                    db::new_id(),
                    db::new_id(),
                    db::new_id(),
                    db::new_id(),
                )
            })
            .collect();
        let ws: Vec<String> = ids
            .iter()
            .enumerate()
            .map(|(k, t)| format!("('{}','bench {}','pro',{now})", t.0, i + k))
            .collect();
        let us: Vec<String> = ids
            .iter()
            .map(|t| format!("('{}','{}@bench.example','{hash}',{now})", t.1, t.1))
            .collect();
        let ms: Vec<String> = ids
            .iter()
            .map(|t| format!("('{}','{}','owner',{now})", t.0, t.1))
            .collect();
        let cs: Vec<String> = ids
            .iter()
            .map(|t| format!("('{}','bench app',NULL,true,'[\"{REDIRECT}\"]',{now})", t.2))
            .collect();
        let az: Vec<String> = ids
            .iter()
            .map(|t| {
                format!(
                    "('{}','{}','{}','{}','workspace:read',{now},NULL,NULL)",
                    t.3, t.2, t.0, t.1
                )
            })
            .collect();
        let mut ks = Vec::with_capacity(n);
        for t in &ids {
            let public_id = API_KEY.new_public_id();
            let key = API_KEY.new_secret(&public_id);
            ks.push(format!(
                "('{}','{}','bench key {}','{public_id}','{}','read_only','cli',{now},0)",
                t.4,
                t.0,
                t.4,
                keygate::crypto::sha256_hex(&key)
            ));
            seeded.api_keys.push(key);
        }
        let mut ts = Vec::with_capacity(n);
        for t in &ids {
            let jti = db::new_id();
            let claims = AccessClaims {
                iss: issuer.to_string(),
                sub: t.1.clone(),
                aud: format!("{issuer}/v1"),
                client_id: t.2.clone(),
                scope: "workspace:read".into(),
                jti: jti.clone(),
                iat: now,
                exp: now + 3600,
                workspace_id: t.0.clone(),
                cnf: None,
            };
            seeded
                .access_tokens
                .push(ring.sign(&claims).map_err(|e| e.to_string())?);
            ts.push(format!(
                "('{jti}','{}','{}',{now},{})",
                t.3,
                t.2,
                now + 3600
            ));
        }
        stmts.push(format!(
            "INSERT INTO workspaces (id, name, plan, created_at) VALUES {};",
            ws.join(",")
        ));
        stmts.push(format!(
            "INSERT INTO users (id, email, password_hash, created_at) VALUES {};",
            us.join(",")
        ));
        stmts.push(format!(
            "INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES {};",
            ms.join(",")
        ));
        stmts.push(format!(
            "INSERT INTO clients (id, name, secret_hash, is_public, redirect_uris, created_at) VALUES {};",
            cs.join(",")
        ));
        stmts.push(format!(
            "INSERT INTO authorizations (id, client_id, workspace_id, user_id, scopes, created_at, revoked_at, last_used_at) VALUES {};",
            az.join(",")
        ));
        stmts.push(format!(
            "INSERT INTO api_keys (id, workspace_id, name, public_id, secret_hash, access, created_by, created_at, usage_count) VALUES {};",
            ks.join(",")
        ));
        stmts.push(format!(
            "INSERT INTO access_tokens (jti, authorization_id, client_id, created_at, expires_at) VALUES {};",
            ts.join(",")
        ));
        i += n;
    }
    let sql = stmts.join("\n");
    db::write_tx(conn, |c| {
        c.batch_execute(&sql).map_err(keygate::error::Error::from)
    })
    .map_err(|e| e.to_string())?;
    Ok(seeded)
}
