//! The keygate servers of a run: this binary re-executed with `--serve`, one
//! process per node, each on its own ports, all on one database and with one
//! issuer, as nodes behind a load balancer are (a token signed at one node
//! verifies at every other: the signing keys are in the shared database).

use crate::http::Conn;
use crate::measure;
use std::collections::HashMap;
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The token `/metrics` asks of the benchmark.
const METRICS_TOKEN: &str = "keygate-bench";

/// Where one node listens.
#[derive(Clone)]
pub struct Endpoint {
    /// HTTP, `127.0.0.1:PORT`.
    pub http: String,
    /// The SMTP AUTH (SASL) listener, `127.0.0.1:PORT`.
    pub sasl: String,
}

struct Node {
    child: Child,
    endpoint: Endpoint,
}

/// What every node of a run is started with.
pub struct Launch<'a> {
    pub database_url: &'a str,
    pub issuer: &'a str,
    /// `--pin`: servers and load generator on CPUs of their own.
    pub pin: bool,
}

/// The running nodes of one run; dropping it stops them.
pub struct Nodes {
    nodes: Vec<Node>,
    /// The database's URL when it is PostgreSQL (its CPU is measured).
    pg_url: Option<String>,
    pub pinned: bool,
    /// Where the servers and the load generator run, in words.
    pub placement: String,
}

/// A port free at this moment on 127.0.0.1.
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

impl Nodes {
    /// Starts `count` nodes (the first on `first_port` when given) and waits
    /// until each answers.
    pub fn start(launch: &Launch, count: usize, first_port: Option<u16>) -> Result<Nodes, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut nodes = Nodes {
            nodes: Vec::new(),
            pg_url: launch
                .database_url
                .starts_with("postgres")
                .then(|| launch.database_url.to_string()),
            pinned: false,
            placement: String::new(),
        };
        for i in 0..count {
            let port = match (i, first_port) {
                (0, Some(p)) => p,
                _ => free_port()?,
            };
            let endpoint = Endpoint {
                http: format!("127.0.0.1:{port}"),
                sasl: format!("127.0.0.1:{}", free_port()?),
            };
            let child = Command::new(&exe)
                .arg("--serve")
                .env("KEYGATE_DATABASE_URL", launch.database_url)
                .env("KEYGATE_ISSUER", launch.issuer)
                .env("KEYGATE_BIND", &endpoint.http)
                .env("KEYGATE_RATE_LIMITS", "off")
                .env("KEYGATE_METRICS_TOKEN", METRICS_TOKEN)
                .env("KEYGATE_SASL_BIND", &endpoint.sasl)
                .spawn()
                .map_err(|e| e.to_string())?;
            nodes.nodes.push(Node { child, endpoint });
        }
        nodes.place(launch.pin);
        for node in &mut nodes.nodes {
            let started = Instant::now();
            while TcpStream::connect(&node.endpoint.http).is_err() {
                if let Ok(Some(status)) = node.child.try_wait() {
                    return Err(format!("keygate ended at start ({status})"));
                }
                if started.elapsed() > Duration::from_secs(20) {
                    return Err("keygate did not start".into());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(nodes)
    }

    /// With `pin` and two or more CPUs: the load generator (this process) on
    /// the last CPU, the nodes round robin on the others (on two CPUs: the
    /// servers on CPU 0, the load generator on CPU 1).
    fn place(&mut self, pin: bool) {
        let cores = measure::cores();
        if !pin {
            self.placement = "not pinned (--pin to pin)".into();
            return;
        }
        let loader = cores.saturating_sub(1);
        let cpus: Vec<usize> = (0..self.nodes.len()).map(|i| i % loader.max(1)).collect();
        self.pinned = cores >= 2
            && self
                .pids()
                .iter()
                .zip(&cpus)
                .all(|(pid, cpu)| measure::pin(*pid as i32, *cpu))
            && measure::pin(0, loader);
        self.placement = if !self.pinned {
            "not pinned (fewer than 2 CPUs, or the system refused)".into()
        } else if cpus.len() == 1 {
            format!("server on CPU {}, load generator on CPU {loader}", cpus[0])
        } else {
            let list: Vec<String> = cpus.iter().map(usize::to_string).collect();
            format!(
                "nodes on CPUs {} (in node order), load generator on CPU {loader}",
                list.join(", ")
            )
        };
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Another server (a comparator, already started and listening at
    /// `http`), measured and placed as a node is.
    pub fn external(child: Child, http: String, pin: bool) -> Nodes {
        let endpoint = Endpoint {
            sasl: http.clone(),
            http,
        };
        let mut nodes = Nodes {
            nodes: vec![Node { child, endpoint }],
            pg_url: None,
            pinned: false,
            placement: String::new(),
        };
        nodes.place(pin);
        nodes
    }

    /// The node a connection goes to: connections are spread round robin.
    pub fn node_of(&self, connection: usize) -> usize {
        connection % self.nodes.len()
    }

    pub fn endpoint(&self, connection: usize) -> &Endpoint {
        &self.nodes[self.node_of(connection)].endpoint
    }

    fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.child.id()).collect()
    }

    /// CPU seconds all nodes have spent so far.
    pub fn cpu_secs(&self) -> f64 {
        self.pids().into_iter().map(measure::cpu_secs).sum()
    }

    /// CPU seconds so far of PostgreSQL's backends of the database (empty on SQLite).
    pub fn db_cpu(&self) -> HashMap<u32, f64> {
        measure::db_cpu_by_backend(self.pg_url.as_deref())
    }

    /// Each node's peak RSS so far, in KiB.
    pub fn peak_rss_kib(&self) -> Vec<Option<u64>> {
        self.pids().into_iter().map(measure::peak_rss_kib).collect()
    }

    /// Each node's own view of the run from `/metrics`: the bearer check's
    /// cache hits and misses, and the group commit counters.
    pub fn counters(&self) -> Vec<Vec<String>> {
        self.nodes
            .iter()
            .map(|n| {
                let Ok(mut c) = Conn::open(&n.endpoint.http) else {
                    return Vec::new();
                };
                let auth = format!("Bearer {METRICS_TOKEN}");
                let metrics = c.send("GET", "/metrics", &[("Authorization", &auth)], "");
                String::from_utf8_lossy(&metrics.body)
                    .lines()
                    .filter(|l| {
                        l.starts_with("keygate_credential_cache_lookups_total")
                            || l.starts_with("keygate_db_group_commit_")
                    })
                    .map(str::to_string)
                    .collect()
            })
            .collect()
    }
}

impl Drop for Nodes {
    /// Stops every node as an operator would (SIGTERM: it drains) and waits.
    fn drop(&mut self) {
        for node in &self.nodes {
            // SAFETY: kill(2) with a pid of our own child and a valid signal.
            unsafe {
                libc::kill(node.child.id() as i32, libc::SIGTERM);
            }
        }
        for node in &mut self.nodes {
            let _ = node.child.wait();
        }
    }
}
