//! keygate-bench: a load benchmark. It starts keygate (this binary re-executed in
//! server mode) on a fresh database, seeds it, drives HTTP/1.1 keep-alive load
//! from this process with a fixed number of connections for a fixed time, and
//! prints req/s, p50 and p99 per scenario, each as a ratio to `/healthz` measured
//! in the same run, and the server's peak RSS.
//!
//!   cargo run --release -p keygate-bench -- [--database-url URL] [--scale N]
//!       [--working-set N] [--connections C] [--duration SECS] [--pin] [--json]
//!
//! Each scenario reports the server process's own CPU time per request (from
//! /proc/<pid>/stat) beside req/s and latency, and its ratio to /healthz's.

mod dpop;
mod sasl;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use clap::Parser;
use keygate::accounts::{self, Plan, Role};
use keygate::apikeys::{self, Access};
use keygate::credentials::key_format::API_KEY;
use keygate::credentials::signing_keys::{AccessClaims, KeyRing};
use keygate::db::{self, DbConn};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "keygate load benchmark")]
struct Opts {
    /// Database for the run (default: a fresh SQLite file in a temp dir). A
    /// PostgreSQL URL should name an empty database.
    #[arg(long)]
    database_url: Option<String>,
    /// How many workspaces, users, clients, authorizations and API keys to seed.
    #[arg(long, default_value_t = 1000)]
    scale: usize,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 3)]
    duration: u64,
    #[arg(long)]
    json: bool,
    /// Run the server on CPU 0 and the load generator on CPU 1 (when the
    /// machine has two or more), so that each scenario's server CPU time is
    /// its own.
    #[arg(long)]
    pin: bool,
    /// How many of the seeded API keys and access tokens the large-working-set
    /// scenarios use in rotation (at most --scale; 0 skips them).
    #[arg(long, default_value_t = 0)]
    working_set: usize,
    /// Run only the scenarios whose name contains this (and `/healthz`, the
    /// base of the ratios): to profile one path, e.g. `--only JWT`.
    #[arg(long)]
    only: Option<String>,
    /// Internal: run as the server.
    #[arg(long, hide = true)]
    serve: bool,
}

const REDIRECT: &str = "http://127.0.0.1:9/cb";
const PASSWORD: &str = "bench password 1";

fn main() {
    let opts = Opts::parse();
    let _ = ONLY.set(opts.only.clone());
    if opts.serve {
        let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
            .try_init();
        let config = keygate::config::Config::resolve(None, None, None).expect("config");
        if let Err(e) = keygate::cli::serve::run(config) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        return;
    }
    if let Err(e) = run(opts) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// A minimal HTTP/1.1 keep-alive connection: the load generator must cost as
/// little as possible, since it shares the machine with the server.
struct Conn {
    stream: BufReader<TcpStream>,
    addr: String,
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl Conn {
    fn open(addr: &str) -> Conn {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).ok();
        Conn {
            stream: BufReader::new(s),
            addr: addr.to_string(),
        }
    }

    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        match self.try_send(method, path, headers, body) {
            Ok(r) => r,
            Err(_) => {
                // The server closed the connection (after an error response): reconnect once.
                *self = Conn::open(&self.addr.clone());
                self.try_send(method, path, headers, body).expect("request")
            }
        }
    }

    fn try_send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<Reply> {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(k);
            req.push_str(": ");
            req.push_str(v);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.stream.get_mut().write_all(req.as_bytes())?;
        let mut line = String::new();
        if self.stream.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("closed"));
        }
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut headers = Vec::new();
        let mut len = 0usize;
        loop {
            line.clear();
            self.stream.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
                headers.push((k.to_string(), v.trim().to_string()));
            }
        }
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body)?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

struct Stats {
    name: String,
    requests: usize,
    errors: usize,
    elapsed: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU seconds (user + system) the server process spent in the scenario.
    server_cpu: f64,
    /// CPU seconds PostgreSQL's backends of the bench database spent in it
    /// (0 on SQLite).
    db_cpu: f64,
}

impl Stats {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed
    }
    /// The server's own CPU time per answered request, in microseconds.
    fn server_us(&self) -> f64 {
        let n = (self.requests + self.errors).max(1) as f64;
        self.server_cpu * 1e6 / n
    }
    /// PostgreSQL's CPU time per answered request, in microseconds.
    fn db_us(&self) -> f64 {
        let n = (self.requests + self.errors).max(1) as f64;
        self.db_cpu * 1e6 / n
    }
}

/// The PostgreSQL URL of the run (unset on SQLite).
static PG_URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// CPU seconds so far of each PostgreSQL backend serving the bench database
/// (the server's pooled connections: their pids from `pg_stat_activity`,
/// their times from /proc, so PostgreSQL must run on this machine). The
/// server's background writer and checkpointer are not in it.
fn db_cpu_by_backend() -> std::collections::HashMap<u32, f64> {
    use diesel::prelude::*;
    let Some(url) = PG_URL.get() else {
        return Default::default();
    };
    let Ok(mut conn) = diesel::PgConnection::establish(url) else {
        return Default::default();
    };
    diesel::dsl::sql::<diesel::sql_types::Integer>(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .load::<i32>(&mut conn)
    .unwrap_or_default()
    .into_iter()
    .map(|pid| (pid as u32, server_cpu_secs(pid as u32)))
    .collect()
}

/// What the backends in `after` spent since `before` (a backend that
/// started in between counts whole).
fn db_cpu_spent(
    before: &std::collections::HashMap<u32, f64>,
    after: &std::collections::HashMap<u32, f64>,
) -> f64 {
    after
        .iter()
        .map(|(pid, t)| t - before.get(pid).copied().unwrap_or(0.0))
        .sum()
}

/// User + system CPU seconds of a process so far (`/proc/<pid>/stat`, fields
/// 14 and 15, in clock ticks).
fn server_cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name (field 2) may hold spaces: count from its closing ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After ')': field 3 is index 0, so utime (14) is 11 and stime (15) is 12.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) / hz
}

/// Pins a process (0 = the calling thread, inherited by threads it starts) to
/// one CPU. `false` when the system refuses.
fn pin(pid: i32, cpu: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// The `p` quantile (0 to 1) of sorted latencies in µs, in milliseconds.
fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    match sorted_us.len() {
        0 => 0.0,
        n => sorted_us[((n - 1) as f64 * p) as usize] as f64 / 1000.0,
    }
}

/// The `--only` filter of the run.
static ONLY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Whether the scenario `name` is to run (see `--only`).
fn wanted(name: &str) -> bool {
    match ONLY.get().and_then(Option::as_deref) {
        Some(only) => name == "/healthz" || name.contains(only),
        None => true,
    }
}

/// Runs `work` on `connections` threads for `duration`, or until every thread
/// has ended; `work` returns false on an unexpected answer (counted as an
/// error) and may end its thread by returning None (a scenario that runs out
/// of tokens to spend: its rate is taken over the time it ran).
fn load<S: Send + 'static>(
    name: &str,
    server: u32,
    addr: &str,
    connections: usize,
    duration: Duration,
    states: Vec<S>,
    work: impl Fn(&mut Conn, &mut S) -> Option<bool> + Send + Sync + 'static,
) -> Stats {
    if !wanted(name) {
        return Stats {
            name: name.to_string(),
            requests: 0,
            errors: 0,
            elapsed: 0.0,
            p50_ms: 0.0,
            p99_ms: 0.0,
            server_cpu: 0.0,
            db_cpu: 0.0,
        };
    }
    let stop = Arc::new(AtomicBool::new(false));
    let work = Arc::new(work);
    let db_before = db_cpu_by_backend();
    let cpu_before = server_cpu_secs(server);
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(0usize));
    let start = Instant::now();
    let mut handles = Vec::new();
    for mut state in states.into_iter().take(connections) {
        let (stop, work, latencies, errors, addr) = (
            stop.clone(),
            work.clone(),
            latencies.clone(),
            errors.clone(),
            addr.to_string(),
        );
        handles.push(std::thread::spawn(move || {
            let mut conn = Conn::open(&addr);
            let mut mine = Vec::with_capacity(100_000);
            let mut errs = 0;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match work(&mut conn, &mut state) {
                    Some(true) => mine.push(t.elapsed().as_micros() as u32),
                    Some(false) => errs += 1,
                    None => break,
                }
            }
            latencies.lock().unwrap().extend(mine);
            *errors.lock().unwrap() += errs;
        }));
    }
    while start.elapsed() < duration && !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let server_cpu = server_cpu_secs(server) - cpu_before;
    let db_cpu = db_cpu_spent(&db_before, &db_cpu_by_backend());
    let mut l = std::mem::take(&mut *latencies.lock().unwrap());
    l.sort_unstable();
    let pct = |p: f64| percentile_ms(&l, p);
    let errors = *errors.lock().unwrap();
    Stats {
        name: name.to_string(),
        requests: l.len(),
        errors,
        elapsed,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        server_cpu,
        db_cpu,
    }
}

fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

struct Flow {
    cookie: String,
    client_id: String,
    basic: String,
    workspace_id: String,
}

/// authorize → consent → approve → token; returns the token response.
fn flow(conn: &mut Conn, f: &Flow) -> Option<Value> {
    let (verifier, challenge) = pkce();
    let q = form(&[
        ("response_type", "code"),
        ("client_id", &f.client_id),
        ("redirect_uri", REDIRECT),
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
        &[
            ("Cookie", &f.cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &body,
    );
    let location = r.header("location")?.to_string();
    let url = url::Url::parse(&location).ok()?;
    let code = url.query_pairs().find(|(k, _)| k == "code")?.1.into_owned();
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", &verifier),
    ]);
    let t = conn.send(
        "POST",
        "/oauth/token",
        &[
            ("Authorization", &f.basic),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &body,
    );
    (t.status == 200).then(|| t.json())
}

/// Credentials of the seeded rows, for the large-working-set scenarios.
#[derive(Default)]
struct Seeded {
    api_keys: Vec<String>,
    access_tokens: Vec<String>,
}

/// Bulk rows for `--scale`, written as multi-row INSERTs in one transaction:
/// per row a workspace, owner, client, authorization, a real API key and a
/// signed access token (with its record), so that the large working set is
/// made of credentials the server accepts.
fn seed_bulk(conn: &mut DbConn, scale: usize, issuer: &str) -> Result<Seeded, String> {
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

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Splits credentials into one `Bearer …` list per connection.
fn rotation_sets(creds: &[String], connections: usize) -> Vec<Vec<String>> {
    let k = connections.max(1);
    let mut sets = vec![Vec::new(); k];
    for (i, c) in creds.iter().enumerate() {
        sets[i % k].push(format!("Bearer {c}"));
    }
    sets
}

/// Sends each credential once, from as many threads as there are sets.
fn warm(addr: &str, sets: &[Vec<String>]) {
    std::thread::scope(|scope| {
        for set in sets {
            scope.spawn(move || {
                let mut c = Conn::open(addr);
                for h in set {
                    c.send("GET", "/v1/workspace", &[("Authorization", h)], "");
                }
            });
        }
    });
}

/// Per connection: client credentials, the current refresh token, and where the
/// minted access tokens go (the revocation scenario spends them).
type RefreshState = (String, String, Arc<Mutex<Vec<String>>>);

fn run(opts: Opts) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("keygate-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let url = opts
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));
    if url.starts_with("postgres") {
        let _ = PG_URL.set(url.clone());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let issuer = format!("http://{addr}");

    // Seed before the server starts.
    eprintln!(
        "seeding {} of each (database {})…",
        opts.scale,
        if url.starts_with("postgres") {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    let mut conn = db::connect_single(&url)?;
    let seeded = seed_bulk(&mut conn, opts.scale, &issuer)?;
    let e = |e: keygate::error::Error| e.to_string();
    let ws = accounts::create_workspace(&mut conn, "Bench workspace", Plan::Pro).map_err(e)?;
    let user = accounts::create_user(&mut conn, "owner@bench.example", PASSWORD).map_err(e)?;
    accounts::add_member(&mut conn, &ws.id, &user.id, Role::Owner).map_err(e)?;
    let client =
        keygate::oauth::clients::create(&mut conn, "Bench client", &[REDIRECT.to_string()], false)
            .map_err(e)?;
    let api_key = apikeys::create(
        &mut conn,
        &ws.id,
        "bench",
        Access::ReadOnly,
        None,
        keygate::accounts::audit::CLI,
    )
    .map_err(e)?
    .secret;
    // A registered resource, for the gateway check scenario.
    let gateway_resource = keygate::resources::NewResource {
        identifier: "https://api.bench.example",
        name: "bench API",
        routes: &["GET /tags tags:read".to_string()],
    };
    keygate::resources::create(&mut conn, &format!("{issuer}/v1"), &gateway_resource).map_err(e)?;
    // A mailbox and its auth key, for the SMTP AUTH scenario, in a domain
    // verified on the operator's word.
    keygate::mailboxes::domains::add(
        &mut conn,
        &ws.id,
        "bench.example",
        true,
        keygate::accounts::audit::CLI,
    )
    .map_err(e)?;
    let mailbox = keygate::mailboxes::lifecycle::create(
        &mut conn,
        &ws.id,
        "sender@bench.example",
        keygate::accounts::audit::CLI,
    )
    .map_err(e)?;
    let auth_key = keygate::mailboxes::auth_keys::create(
        &mut conn,
        &mailbox.id,
        "bench",
        keygate::accounts::audit::CLI,
    )
    .map_err(e)?
    .secret;
    // A service client, for the DPoP scenario's tokens.
    let service = keygate::oauth::service_clients::create(
        &mut conn,
        &keygate::oauth::service_clients::NewService {
            workspace_id: &ws.id,
            name: "Bench service",
            scopes: &["workspace:read".to_string()],
            keys: keygate::oauth::service_clients::ClientKeys::Secret,
        },
        keygate::accounts::audit::CLI,
    )
    .map_err(e)?
    .0;
    let service_basic = format!(
        "Basic {}",
        STANDARD.encode(format!(
            "{}:{}",
            service.client.id,
            service.secret.unwrap_or_default()
        ))
    );
    drop(conn);
    let sasl_addr = {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        format!("127.0.0.1:{port}")
    };
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!(
            "{}:{}",
            client.client.id,
            client.secret.clone().unwrap_or_default()
        ))
    );

    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(exe)
        .arg("--serve")
        .env("KEYGATE_DATABASE_URL", &url)
        .env("KEYGATE_ISSUER", &issuer)
        .env("KEYGATE_BIND", &addr)
        .env("KEYGATE_RATE_LIMITS", "off")
        .env("KEYGATE_METRICS_TOKEN", "keygate-bench")
        .env("KEYGATE_SASL_BIND", &sasl_addr)
        .spawn()
        .map_err(|e| e.to_string())?;
    let pid = child.id();
    let cores = std::thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(1);
    let pinned = opts.pin && cores >= 2 && pin(pid as i32, 0) && pin(0, 1);
    let started = Instant::now();
    while TcpStream::connect(&addr).is_err() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            return Err("keygate did not start".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    // A signed-in session for the flows.
    let mut c = Conn::open(&addr);
    let login = c.send("GET", "/login", &[], "");
    let csrf_cookie = login
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| {
            v.strip_prefix("keygate_login_csrf=")
                .map(|v| v.split(';').next().unwrap_or("").to_string())
        })
        .ok_or("no login CSRF cookie")?;
    let r = c.send(
        "POST",
        "/login",
        &[
            ("Cookie", &format!("keygate_login_csrf={csrf_cookie}")),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &form(&[
            ("email", "owner@bench.example"),
            ("password", PASSWORD),
            ("csrf_token", &csrf_cookie),
            ("next", "/settings"),
        ]),
    );
    let session = r
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| {
            v.strip_prefix("keygate_session=")
                .map(|v| v.split(';').next().unwrap_or("").to_string())
        })
        .ok_or("login failed")?;
    let flow_cfg = Arc::new(Flow {
        cookie: format!("keygate_session={session}"),
        client_id: client.client.id.clone(),
        basic: basic.clone(),
        workspace_id: ws.id.clone(),
    });

    // One authorization per connection, for the JWT and refresh scenarios.
    let mut token_pairs = Vec::new();
    for _ in 0..opts.connections {
        let t = flow(&mut c, &flow_cfg).ok_or("could not complete the flow")?;
        token_pairs.push((
            t["access_token"].as_str().unwrap_or("").to_string(),
            t["refresh_token"].as_str().unwrap_or("").to_string(),
        ));
    }
    let dur = Duration::from_secs(opts.duration);
    let n = opts.connections;
    let mut results = Vec::new();

    results.push(load("/healthz", pid, &addr, n, dur, vec![(); n], |c, _| {
        Some(c.send("GET", "/healthz", &[], "").status == 200)
    }));
    let key_header = format!("Bearer {api_key}");
    results.push(load(
        "/v1/workspace (API key)",
        pid,
        &addr,
        n,
        dur,
        vec![key_header.clone(); n],
        |c, h| {
            Some(
                c.send("GET", "/v1/workspace", &[("Authorization", h)], "")
                    .status
                    == 200,
            )
        },
    ));
    // What nginx's auth_request asks for each request of the product's API:
    // the /v1 check with a route's scope (it should cost what /v1 costs).
    results.push(load(
        "/gateway/check (API key)",
        pid,
        &addr,
        n,
        dur,
        vec![key_header.clone(); n],
        |c, h| {
            let headers = [
                ("Authorization", h.as_str()),
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "/tags/7?page=2"),
            ];
            let path = "/gateway/check?resource=https%3A%2F%2Fapi.bench.example";
            Some(c.send("GET", path, &headers, "").status == 200)
        },
    ));
    let jwt_headers: Vec<String> = token_pairs
        .iter()
        .map(|(a, _)| format!("Bearer {a}"))
        .collect();
    // The same bytes on the wire without the check: what carrying a JWT
    // costs the server before keygate looks at it.
    results.push(load(
        "/healthz (with a JWT's Authorization header)",
        pid,
        &addr,
        n,
        dur,
        jwt_headers.clone(),
        |c, h| {
            Some(
                c.send("GET", "/healthz", &[("Authorization", h)], "")
                    .status
                    == 200,
            )
        },
    ));
    results.push(load(
        "/v1/workspace (JWT)",
        pid,
        &addr,
        n,
        dur,
        jwt_headers,
        |c, h| {
            Some(
                c.send("GET", "/v1/workspace", &[("Authorization", h)], "")
                    .status
                    == 200,
            )
        },
    ));
    // The large working set: many distinct credentials in rotation, after one
    // unmeasured pass that brings each into the server's cache.
    let ws_n = opts.working_set.min(opts.scale);
    if ws_n > 0 {
        for (label, creds) in [
            ("API key", &seeded.api_keys),
            ("JWT", &seeded.access_tokens),
        ] {
            let sets = rotation_sets(&creds[..ws_n], n);
            let name = format!("/v1/workspace ({label}, {ws_n} in rotation)");
            if wanted(&name) {
                warm(&addr, &sets);
            }
            results.push(load(
                &name,
                pid,
                &addr,
                n,
                dur,
                sets.into_iter().map(|v| (v, 0usize)).collect(),
                |c, (set, i)| {
                    *i = (*i + 1) % set.len().max(1);
                    let h = &set[*i];
                    Some(
                        c.send("GET", "/v1/workspace", &[("Authorization", h)], "")
                            .status
                            == 200,
                    )
                },
            ));
        }
    }
    // DPoP (RFC 9449): a bound token per connection, and a fresh proof
    // (signed here, on the client) for every request: the server verifies
    // one more signature and records the proof's jti.
    if wanted("/v1/workspace (JWT with DPoP)") {
        let mut states = Vec::new();
        for _ in 0..n {
            let key = dpop::Key::new().ok_or("cannot make a DPoP key")?;
            let proof = key.proof("POST", &format!("{issuer}/oauth/token"), None);
            let r = c.send(
                "POST",
                "/oauth/token",
                &[
                    ("Authorization", &service_basic),
                    ("DPoP", &proof),
                    ("Content-Type", "application/x-www-form-urlencoded"),
                ],
                "grant_type=client_credentials",
            );
            let token = r.json()["access_token"].as_str().unwrap_or("").to_string();
            states.push((key, token));
        }
        let url = format!("{issuer}/v1/workspace");
        results.push(load(
            "/v1/workspace (JWT with DPoP)",
            pid,
            &addr,
            n,
            dur,
            states,
            move |c, (key, token)| {
                let proof = key.proof("GET", &url, Some(token));
                let auth = format!("DPoP {token}");
                let r = c.send(
                    "GET",
                    "/v1/workspace",
                    &[("Authorization", &auth), ("DPoP", &proof)],
                    "",
                );
                Some(r.status == 200)
            },
        ));
    }
    let introspect_states: Vec<(String, String)> = token_pairs
        .iter()
        .map(|(a, _)| (basic.clone(), form(&[("token", a)])))
        .collect();
    results.push(load(
        "introspection",
        pid,
        &addr,
        n,
        dur,
        introspect_states,
        |c, (b, body)| {
            let r = c.send(
                "POST",
                "/oauth/introspect",
                &[
                    ("Authorization", b),
                    ("Content-Type", "application/x-www-form-urlencoded"),
                ],
                body,
            );
            Some(r.status == 200 && r.body.starts_with(b"{\"active\":true"))
        },
    ));
    let minted = Arc::new(Mutex::new(Vec::new()));
    let refresh_states: Vec<RefreshState> = token_pairs
        .iter()
        .map(|(_, r)| (basic.clone(), r.clone(), minted.clone()))
        .collect();
    results.push(load(
        "refresh grant",
        pid,
        &addr,
        n,
        dur,
        refresh_states,
        |c, (b, rt, out)| {
            let body = form(&[("grant_type", "refresh_token"), ("refresh_token", rt)]);
            let r = c.send(
                "POST",
                "/oauth/token",
                &[
                    ("Authorization", b),
                    ("Content-Type", "application/x-www-form-urlencoded"),
                ],
                &body,
            );
            if r.status != 200 {
                return Some(false);
            }
            let v = r.json();
            *rt = v["refresh_token"].as_str().unwrap_or("").to_string();
            out.lock()
                .unwrap()
                .push(v["access_token"].as_str().unwrap_or("").to_string());
            Some(true)
        },
    ));
    let flows: Vec<Arc<Flow>> = (0..n).map(|_| flow_cfg.clone()).collect();
    results.push(load(
        "authorize → consent → token",
        pid,
        &addr,
        n,
        dur,
        flows,
        |c, f| Some(flow(c, f).is_some()),
    ));
    // Revoke the access tokens minted by the refresh scenario, each once.
    let tokens = std::mem::take(&mut *minted.lock().unwrap());
    let per = tokens.len() / n.max(1);
    let revoke_states: Vec<(String, Vec<String>)> = tokens
        .chunks(per.max(1))
        .map(|c| (basic.clone(), c.to_vec()))
        .collect();
    let revoke_n = revoke_states.len().min(n);
    results.push(load(
        "revocation",
        pid,
        &addr,
        revoke_n,
        dur,
        revoke_states,
        |c, (b, list)| {
            let token = list.pop()?;
            let r = c.send(
                "POST",
                "/oauth/revoke",
                &[
                    ("Authorization", b),
                    ("Content-Type", "application/x-www-form-urlencoded"),
                ],
                &form(&[("token", &token)]),
            );
            Some(r.status == 200)
        },
    ));

    // SMTP AUTH over the SASL socket: Postfix's requests, as fast as answered.
    if wanted("SMTP AUTH (SASL, PLAIN)") {
        let cpu_before = server_cpu_secs(pid);
        let run = sasl::run(&sasl_addr, n, dur, "sender@bench.example", &auth_key);
        let mut l = run.latencies_us;
        l.sort_unstable();
        let pct = |p: f64| percentile_ms(&l, p);
        results.push(Stats {
            name: "SMTP AUTH (SASL, PLAIN)".to_string(),
            requests: run.ok,
            errors: run.failed,
            elapsed: run.elapsed,
            p50_ms: pct(0.5),
            p99_ms: pct(0.99),
            server_cpu: server_cpu_secs(pid) - cpu_before,
            db_cpu: 0.0,
        });
    }

    let rss = peak_rss_kib(child.id());
    // The server's own view of the run: cache hits and misses of the bearer check.
    let metrics = Conn::open(&addr).send(
        "GET",
        "/metrics",
        &[("Authorization", "Bearer keygate-bench")],
        "",
    );
    let cache_lines: Vec<String> = String::from_utf8_lossy(&metrics.body)
        .lines()
        .filter(|l| {
            l.starts_with("keygate_credential_cache_lookups_total")
                || l.starts_with("keygate_db_group_commit_")
        })
        .map(str::to_string)
        .collect();
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    // Scenarios `--only` left out are not shown.
    results.retain(|r| r.elapsed > 0.0);
    let base = results[0].rate();
    let base_us = results[0].server_us();
    let placement = if pinned {
        "server on CPU 0, load generator on CPU 1"
    } else if opts.pin {
        "not pinned (fewer than 2 CPUs, or the system refused)"
    } else {
        "not pinned (--pin to pin)"
    };
    if opts.json {
        let rows: Vec<Value> = results
            .iter()
            .map(|s| json!({"scenario": s.name, "requests": s.requests, "errors": s.errors, "req_per_s": s.rate(), "p50_ms": s.p50_ms, "p99_ms": s.p99_ms, "ratio_to_healthz": s.rate() / base, "server_us_per_request": s.server_us(), "server_us_ratio_to_healthz": s.server_us() / base_us, "db_us_per_request": s.db_us()}))
            .collect();
        println!(
            "{}",
            json!({"backend": if url.starts_with("postgres") {"postgresql"} else {"sqlite"}, "scale": opts.scale, "working_set": ws_n, "connections": n, "duration_s": opts.duration, "cores": cores, "pinned": pinned, "placement": placement, "peak_rss_kib": rss, "results": rows})
        );
    } else {
        println!(
            "backend {}, scale {}, {} connections, {} s per scenario, {} cores",
            if url.starts_with("postgres") {
                "PostgreSQL"
            } else {
                "SQLite"
            },
            opts.scale,
            n,
            opts.duration,
            cores
        );
        println!("{placement}");
        println!("| scenario | req/s | p50 ms | p99 ms | server µs/req | µs vs /healthz | req/s vs /healthz | PostgreSQL µs/req | errors |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for s in &results {
            println!(
                "| {} | {:.0} | {:.2} | {:.2} | {:.1} | {:.2} | {:.2} | {:.1} | {} |",
                s.name,
                s.rate(),
                s.p50_ms,
                s.p99_ms,
                s.server_us(),
                s.server_us() / base_us,
                s.rate() / base,
                s.db_us(),
                s.errors
            );
        }
        if let Some(kib) = rss {
            println!("server peak RSS: {:.1} MiB", kib as f64 / 1024.0);
        }
        for l in &cache_lines {
            println!("{l}");
        }
    }
    Ok(())
}
