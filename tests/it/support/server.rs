//! A real `keygate serve` process on a free port.

use super::cli::BIN;
use super::db::{Backend, TestDb};
use super::http::Http;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// The status of `GET /v1/workspace` with `credential` as the bearer, on a
    /// fresh connection.
    pub fn v1_status(&self, credential: &str) -> u16 {
        self.client().bearer_get("/v1/workspace", credential).status
    }

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
            // The answer must be this process's: another test's server can
            // hold a port found free, and answer while this one, still
            // migrating, is about to fail to bind it.
            let bound = logs.lock().unwrap().contains("keygate listening on");
            if let Ok(r) = ureq::get(&format!("{base}/healthz"))
                .timeout(Duration::from_secs(1))
                .call()
            {
                if r.status() == 200 && bound {
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

/// The token the tests' servers require for `/metrics` on the main listener.
pub const METRICS_TOKEN: &str = "metrics-token-for-the-tests";

/// A server whose `/metrics` is on the main listener behind `METRICS_TOKEN`.
pub fn metrics_server(b: Backend, env: &[(&str, &str)]) -> Server {
    let mut all = vec![("KEYGATE_METRICS_TOKEN", METRICS_TOKEN)];
    all.extend_from_slice(env);
    Server::start_with(TestDb::new(b), &all)
}

pub fn scrape(s: &Server) -> String {
    let auth = format!("Bearer {METRICS_TOKEN}");
    let r = s.client().get_with("/metrics", &[("Authorization", &auth)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{:?}",
        r.header("content-type")
    );
    r.body
}

/// The sum of every sample of `name` (Prometheus text format) whose labels
/// include all of `labels`.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, lbls) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let wanted = n == name
                && labels.iter().all(|(k, v)| {
                    let pair = format!("{k}=\"{v}\"");
                    lbls.split(',').any(|p| p == pair)
                });
            if wanted {
                value.parse::<f64>().ok()
            } else {
                None
            }
        })
        .sum()
}
