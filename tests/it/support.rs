//! Test support: a real keygate process on a free port over a fresh database
//! (a SQLite file, or a fresh PostgreSQL database when KEYGATE_TEST_POSTGRES_URL
//! is set), the CLI, and an HTTP client that reads like a client's session.

#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::connection::SimpleConnection;
use diesel::Connection;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_keygate");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named test once per backend: `name::sqlite` always, and
/// `name::postgres` against KEYGATE_TEST_POSTGRES_URL (CI sets it; without it the
/// PostgreSQL variant says so and returns).
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name($crate::support::Backend::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() {
                if $crate::support::postgres_admin_url().is_none() {
                    eprintln!("KEYGATE_TEST_POSTGRES_URL is not set: PostgreSQL variant not run");
                    return;
                }
                super::$name($crate::support::Backend::Postgres)
            } )*
        }
    };
}

/// A direct SQLite connection that waits for the server's writers.
fn sqlite_conn(url: &str) -> diesel::SqliteConnection {
    let mut c = diesel::SqliteConnection::establish(url.trim_start_matches("sqlite://"))
        .expect("open sqlite");
    c.batch_execute("PRAGMA busy_timeout = 10000")
        .expect("busy_timeout");
    c
}

pub fn postgres_admin_url() -> Option<String> {
    std::env::var("KEYGATE_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A fresh, empty database of one backend.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    dir: PathBuf,
}

impl TestDb {
    pub fn new(backend: Backend) -> TestDb {
        let dir = std::env::temp_dir().join(format!("keygate-test-{}", unique()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.join("keygate.db").display()),
            Backend::Postgres => {
                let admin = postgres_admin_url().expect("KEYGATE_TEST_POSTGRES_URL");
                let name = format!("keygate_test_{}", unique());
                let mut conn =
                    diesel::PgConnection::establish(&admin).expect("connect to PostgreSQL");
                conn.batch_execute(&format!("CREATE DATABASE {name}"))
                    .expect("create database");
                let mut url = url::Url::parse(&admin).expect("admin URL");
                url.set_path(&format!("/{name}"));
                url.to_string()
            }
        };
        TestDb { url, backend, dir }
    }

    /// A second handle on the same database (for a restarted node); it does
    /// not remove the files when dropped.
    pub fn reuse(other: &TestDb) -> TestDb {
        TestDb {
            url: other.url.clone(),
            backend: other.backend,
            dir: PathBuf::new(),
        }
    }

    /// Creates a user with the test password through the CLI; returns its id.
    pub fn create_user(&self, email: &str) -> String {
        let out = self.cli_stdin(
            &[
                "--json",
                "user",
                "create",
                "--email",
                email,
                "--password-stdin",
            ],
            Some(&format!("{PASSWORD}\n")),
        );
        assert_eq!(out.code, 0, "user create: {}", out.stderr);
        let v: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON object");
        v["id"].as_str().expect("id").to_string()
    }

    /// Runs `keygate` against this database.
    pub fn cli(&self, args: &[&str]) -> CliOut {
        self.cli_stdin(args, None)
    }

    pub fn cli_stdin(&self, args: &[&str], stdin: Option<&str>) -> CliOut {
        let mut child = Command::new(BIN)
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("DATABASE_URL")
            .env("KEYGATE_DATABASE_URL", &self.url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run keygate");
        {
            let mut input = child.stdin.take().expect("stdin");
            if let Some(s) = stdin {
                // A command refused before it reads stdin closes the pipe early.
                let _ = input.write_all(s.as_bytes());
            }
        }
        let out = child.wait_with_output().expect("wait for keygate");
        CliOut {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs a `--json` command that must succeed; returns its one JSON line.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        assert_eq!(out.code, 0, "keygate {args:?} failed: {}", out.stderr);
        assert!(
            out.stderr.is_empty(),
            "admin command wrote to stderr: {}",
            out.stderr
        );
        serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {:?}", out.stdout))
    }

    /// Every JSON line a `--json` listing printed.
    pub fn json_lines(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        assert_eq!(out.code, 0, "keygate {args:?} failed: {}", out.stderr);
        out.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
            .collect()
    }

    /// Counts rows of a table, straight from the database.
    pub fn count(&self, table: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let q = format!("SELECT COUNT(*) AS n FROM {table}");
        let rows: Vec<N> = match self.backend {
            Backend::Sqlite => {
                let mut c = sqlite_conn(&self.url);
                diesel::RunQueryDsl::load(diesel::sql_query(q), &mut c).expect("count")
            }
            Backend::Postgres => {
                let mut c = diesel::PgConnection::establish(&self.url).expect("open pg");
                diesel::RunQueryDsl::load(diesel::sql_query(q), &mut c).expect("count")
            }
        };
        rows[0].n
    }

    /// Runs SQL straight on the database (to set up states such as expiry).
    pub fn execute(&self, sql: &str) {
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlite_conn(&self.url);
                c.batch_execute(sql).expect("execute");
            }
            Backend::Postgres => {
                let mut c = diesel::PgConnection::establish(&self.url).expect("open pg");
                c.batch_execute(sql).expect("execute");
            }
        }
    }

    /// One text column of the first row of a query.
    pub fn text(&self, sql: &str) -> Option<String> {
        #[derive(diesel::QueryableByName)]
        struct T {
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
            v: Option<String>,
        }
        let q = diesel::sql_query(sql.to_string());
        let rows: Vec<T> = match self.backend {
            Backend::Sqlite => {
                let mut c = sqlite_conn(&self.url);
                diesel::RunQueryDsl::load(q, &mut c).expect("query")
            }
            Backend::Postgres => {
                let mut c = diesel::PgConnection::establish(&self.url).expect("open");
                diesel::RunQueryDsl::load(q, &mut c).expect("query")
            }
        };
        rows.into_iter().next().and_then(|r| r.v)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[derive(Debug)]
pub struct CliOut {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CliOut {
    /// A refused command: non-zero, one clear line on stderr, nothing on stdout.
    pub fn assert_refused(&self, mentions: &str) {
        assert_ne!(
            self.code, 0,
            "expected failure, got success: {}",
            self.stdout
        );
        assert!(
            self.stdout.is_empty(),
            "a failed command printed on stdout: {}",
            self.stdout
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one line on stderr, got {:?}",
            self.stderr
        );
        assert!(
            self.stderr
                .to_lowercase()
                .contains(&mentions.to_lowercase()),
            "stderr {:?} does not mention {mentions:?}",
            self.stderr
        );
    }
}

/// A running keygate process.
pub struct Server {
    pub db: TestDb,
    pub base: String,
    child: Child,
    logs: Arc<Mutex<String>>,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Server {
    pub fn start(backend: Backend) -> Server {
        Server::start_with(TestDb::new(backend), &[])
    }

    pub fn start_with(db: TestDb, env: &[(&str, &str)]) -> Server {
        // A port found free can be taken by another test before keygate binds
        // it: try again on another port when that happens.
        let mut db = Some(db);
        for attempt in 0..3 {
            let port = free_port();
            match Server::try_spawn(db.take().expect("db"), port, env) {
                Ok(s) => return s,
                Err((returned, logs)) => {
                    if attempt == 2 || !logs.contains("cannot listen") {
                        panic!("keygate did not start: {logs}");
                    }
                    db = Some(returned);
                }
            }
        }
        unreachable!()
    }

    /// Another node on the same database.
    pub fn spawn(db: TestDb, port: u16, env: &[(&str, &str)]) -> Server {
        match Server::try_spawn(db, port, env) {
            Ok(s) => s,
            Err((_, logs)) => panic!("keygate did not start: {logs}"),
        }
    }

    /// A node listening on IPv6 loopback (`[::1]`) only.
    pub fn start_ipv6(db: TestDb, env: &[(&str, &str)]) -> Server {
        let port = std::net::TcpListener::bind("[::1]:0")
            .expect("bind [::1]")
            .local_addr()
            .expect("addr")
            .port();
        match Server::try_spawn_on(db, "[::1]", port, env) {
            Ok(s) => s,
            Err((_, logs)) => panic!("keygate did not start on [::1]: {logs}"),
        }
    }

    fn try_spawn(db: TestDb, port: u16, env: &[(&str, &str)]) -> Result<Server, (TestDb, String)> {
        Server::try_spawn_on(db, "127.0.0.1", port, env)
    }

    fn try_spawn_on(
        db: TestDb,
        host: &str,
        port: u16,
        env: &[(&str, &str)],
    ) -> Result<Server, (TestDb, String)> {
        let base = format!("http://{host}:{port}");
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .env_remove("DATABASE_URL")
            .env("KEYGATE_DATABASE_URL", &db.url)
            .env("KEYGATE_ISSUER", &base)
            .env("KEYGATE_BIND", format!("{host}:{port}"))
            .env("KEYGATE_RATE_LIMITS", "off")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start keygate");
        let logs = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = ureq::get(&format!("{base}/healthz"))
                .timeout(Duration::from_secs(1))
                .call()
            {
                if r.status() == 200 {
                    break;
                }
            }
            let exited = child.try_wait().ok().flatten().is_some();
            if exited || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(50));
                let text = logs.lock().unwrap().clone();
                return Err((db, text));
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        Ok(Server {
            db,
            base,
            child,
            logs,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn client(&self) -> Http {
        Http::new(&self.base)
    }

    /// Stops the process with SIGTERM and waits for it.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().expect("wait")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response, whatever its status.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} (status {})", self.body, self.status))
    }
    pub fn location(&self) -> String {
        self.header("location")
            .unwrap_or_else(|| panic!("no Location (status {}): {}", self.status, self.body))
            .to_string()
    }
    /// The query parameters of the Location header.
    pub fn location_params(&self) -> Vec<(String, String)> {
        let loc = self.location();
        let url = url::Url::parse(&loc).unwrap_or_else(|_| panic!("not an absolute URL: {loc}"));
        url.query_pairs().into_owned().collect()
    }
    /// Asserts the contract's `/v1` error envelope.
    pub fn assert_v1_error(&self, status: u16, kind: &str, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        let v = self.json();
        assert_eq!(v["error"]["type"], kind, "body: {}", self.body);
        assert_eq!(v["error"]["code"], code, "body: {}", self.body);
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    /// Asserts an RFC 6749 error body.
    pub fn assert_oauth_error(&self, status: u16, error: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        let v = self.json();
        assert_eq!(v["error"], error, "body: {}", self.body);
        assert!(v["error_description"].is_string());
    }
}

pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A cookie-keeping HTTP client that never follows redirects.
pub struct Http {
    base: String,
    agent: ureq::Agent,
    cookies: Vec<(String, String)>,
}

impl Http {
    pub fn new(base: &str) -> Http {
        Http {
            base: base.to_string(),
            agent: ureq::AgentBuilder::new()
                .redirects(0)
                .timeout(Duration::from_secs(30))
                .build(),
            cookies: Vec::new(),
        }
    }

    fn absolute(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    fn finish(&mut self, result: Result<ureq::Response, ureq::Error>) -> Resp {
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("request failed: {e}"),
        };
        let status = resp.status();
        let mut headers = Vec::new();
        for name in resp.headers_names() {
            for v in resp.all(&name) {
                headers.push((name.clone(), v.to_string()));
            }
        }
        for (k, v) in &headers {
            if k.eq_ignore_ascii_case("set-cookie") {
                let pair = v.split(';').next().unwrap_or("");
                if let Some((name, value)) = pair.split_once('=') {
                    self.cookies.retain(|(n, _)| n != name);
                    if !value.is_empty() {
                        self.cookies.push((name.to_string(), value.to_string()));
                    }
                }
            }
        }
        let body = resp.into_string().unwrap_or_default();
        Resp {
            status,
            headers,
            body,
        }
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> ureq::Request {
        let mut req = self.agent.request(method, &self.absolute(path));
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.set("Cookie", &c.join("; "));
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        req
    }

    pub fn get(&mut self, path: &str) -> Resp {
        self.get_with(path, &[])
    }

    pub fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let r = self.request("GET", path, headers).call();
        self.finish(r)
    }

    pub fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        let r = self.request(method, path, headers).send_string(body);
        self.finish(r)
    }

    pub fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        self.post_form_with(path, form, &[])
    }

    pub fn post_form_with(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Resp {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut h = vec![("Content-Type", "application/x-www-form-urlencoded")];
        h.extend_from_slice(headers);
        self.send("POST", path, &h, &body)
    }

    pub fn bearer_get(&mut self, path: &str, credential: &str) -> Resp {
        let auth = format!("Bearer {credential}");
        self.get_with(path, &[("Authorization", &auth)])
    }

    pub fn bearer_post_json(&mut self, path: &str, credential: &str, body: &str) -> Resp {
        let auth = format!("Bearer {credential}");
        self.send(
            "POST",
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body,
        )
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// Signs in through the login form.
    pub fn login(&mut self, email: &str, password: &str) -> Resp {
        let page = self.get("/login");
        assert_eq!(page.status, 200, "login page: {}", page.body);
        let csrf = hidden(&page.body, "csrf_token").expect("login form has a CSRF token");
        self.post_form(
            "/login",
            &[
                ("email", email),
                ("password", password),
                ("csrf_token", &csrf),
                ("next", "/settings"),
            ],
        )
    }
}

/// The value of a hidden form field in a page.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(unescape(&html[start..end]))
}

/// Undoes HTML escaping of an attribute value.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..end];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = format!("{}{}", unique(), unique());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub const PASSWORD: &str = "correct horse battery";
pub const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// A workspace with an owner, a confidential and a public client, over a server.
pub struct Fixture {
    pub server: Server,
    pub workspace_id: String,
    pub owner_id: String,
    pub owner_email: String,
    pub client_id: String,
    pub client_secret: String,
    pub public_client_id: String,
}

impl Fixture {
    pub fn new(backend: Backend) -> Fixture {
        Fixture::with_server(Server::start(backend))
    }

    pub fn with_server(server: Server) -> Fixture {
        let db = &server.db;
        let ws = db.json(&["workspace", "create", "--name", "Acme"]);
        let email = format!("owner-{}@example.com", &unique()[..8]);
        let ws_id = ws["id"].as_str().unwrap().to_string();
        let user_id = db.create_user(&email);
        db.json(&[
            "member",
            "add",
            "--workspace",
            &ws_id,
            "--user",
            &user_id,
            "--role",
            "owner",
        ]);
        let client = db.json(&[
            "client",
            "create",
            "--name",
            "Acme CRM",
            "--redirect-uri",
            REDIRECT,
        ]);
        let public = db.json(&[
            "client",
            "create",
            "--name",
            "Acme Mobile",
            "--redirect-uri",
            REDIRECT,
            "--public",
        ]);
        Fixture {
            workspace_id: ws_id,
            owner_id: user_id,
            owner_email: email,
            client_id: client["client_id"].as_str().unwrap().to_string(),
            client_secret: client["client_secret"].as_str().unwrap().to_string(),
            public_client_id: public["client_id"].as_str().unwrap().to_string(),
            server,
        }
    }

    pub fn db(&self) -> &TestDb {
        &self.server.db
    }

    /// A person signed in through the login form.
    pub fn signed_in(&self, email: &str) -> Http {
        let mut http = self.server.client();
        let r = http.login(email, PASSWORD);
        assert_eq!(r.status, 303, "login failed: {}", r.body);
        http
    }

    pub fn owner(&self) -> Http {
        self.signed_in(&self.owner_email)
    }

    /// Adds a user with a role in the fixture's workspace; returns (id, email).
    pub fn add_user(&self, role: &str) -> (String, String) {
        let email = format!("{role}-{}@example.com", &unique()[..8]);
        let id = self.db().create_user(&email);
        self.db().json(&[
            "member",
            "add",
            "--workspace",
            &self.workspace_id,
            "--user",
            &id,
            "--role",
            role,
        ]);
        (id, email)
    }

    pub fn authorize_query(&self, client_id: &str, scope: &str, challenge: &str) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", scope)
            .append_pair("state", "xyz-state")
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .finish()
    }

    /// Runs authorize → consent → approve as the signed-in person; returns the
    /// redirect's parameters.
    pub fn approve(
        &self,
        http: &mut Http,
        client_id: &str,
        scope: &str,
        challenge: &str,
    ) -> Vec<(String, String)> {
        let page = http.get(&format!(
            "/oauth/authorize?{}",
            self.authorize_query(client_id, scope, challenge)
        ));
        assert_eq!(page.status, 200, "consent page: {}", page.body);
        let consent_id = hidden(&page.body, "consent_id").expect("consent_id");
        let csrf = hidden(&page.body, "csrf_token").expect("csrf_token");
        let r = http.post_form(
            "/oauth/authorize",
            &[
                ("consent_id", &consent_id),
                ("csrf_token", &csrf),
                ("workspace_id", &self.workspace_id),
                ("decision", "approve"),
            ],
        );
        assert_eq!(r.status, 303, "approve: {}", r.body);
        assert!(
            r.location().starts_with(REDIRECT),
            "redirected to {}",
            r.location()
        );
        r.location_params()
    }

    /// A code for the confidential client, with its verifier.
    pub fn code(&self, scope: &str) -> (String, String) {
        let (verifier, challenge) = pkce();
        let mut http = self.owner();
        let params = self.approve(&mut http, &self.client_id, scope, &challenge);
        (param(&params, "code").expect("code").to_string(), verifier)
    }

    /// Exchanges a code as the confidential client (client_secret_basic).
    pub fn exchange(&self, code: &str, verifier: &str) -> Resp {
        self.server.client().post_form_with(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
            &[("Authorization", &self.basic())],
        )
    }

    pub fn basic(&self) -> String {
        basic(&self.client_id, &self.client_secret)
    }

    /// Tokens for the confidential client: (access, refresh).
    pub fn tokens(&self, scope: &str) -> (String, String) {
        let (code, verifier) = self.code(scope);
        let r = self.exchange(&code, &verifier);
        assert_eq!(r.status, 200, "token: {}", r.body);
        let v = r.json();
        (
            v["access_token"].as_str().unwrap().to_string(),
            v["refresh_token"].as_str().unwrap().to_string(),
        )
    }

    pub fn refresh(&self, refresh_token: &str) -> Resp {
        self.server.client().post_form_with(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
            &[("Authorization", &self.basic())],
        )
    }

    pub fn introspect(&self, token: &str) -> Value {
        let r = self.server.client().post_form_with(
            "/oauth/introspect",
            &[("token", token)],
            &[("Authorization", &self.basic())],
        );
        assert_eq!(r.status, 200, "introspect: {}", r.body);
        r.json()
    }

    pub fn api_key(&self, access: &str) -> String {
        let v = self.db().json(&[
            "apikey",
            "create",
            "--workspace",
            &self.workspace_id,
            "--name",
            &format!("key-{}", &unique()[..6]),
            "--access",
            access,
        ]);
        v["key"].as_str().unwrap().to_string()
    }
}

/// `client_secret_basic` as RFC 6749 §2.3.1 writes it (form-encoded, then base64).
pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Polls until `f` holds or the time is up.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
