//! The one runner: drives a scenario's per-connection states, each on its own
//! keep-alive connection and thread, spread round robin over the nodes, for a
//! fixed time, and measures requests, latency, and the CPU the nodes and
//! PostgreSQL spent meanwhile.

use crate::http::Conn;
use crate::measure;
use crate::nodes::{Endpoint, Nodes};
use crate::sasl;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A connection the runner opens to a node for one load thread.
pub trait Connection: Sized + 'static {
    fn open(node: &Endpoint) -> std::io::Result<Self>;
}

impl Connection for Conn {
    fn open(node: &Endpoint) -> std::io::Result<Self> {
        Conn::open(&node.http)
    }
}

impl Connection for sasl::Client {
    fn open(node: &Endpoint) -> std::io::Result<Self> {
        sasl::Client::open(&node.sasl)
    }
}

/// What one scenario measured.
pub struct Stats {
    pub name: String,
    /// Requests answered as expected.
    pub requests: usize,
    /// Unexpected answers, and connections that could not be opened.
    pub errors: usize,
    /// Requests answered as expected, per node.
    pub per_node: Vec<usize>,
    pub elapsed: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// CPU seconds (user + system) all nodes spent in the scenario.
    pub server_cpu: f64,
    /// CPU seconds PostgreSQL's backends of the bench database spent in it
    /// (0 on SQLite).
    pub db_cpu: f64,
}

impl Stats {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed
    }

    /// Each node's rate.
    pub fn node_rates(&self) -> Vec<f64> {
        self.per_node
            .iter()
            .map(|&n| n as f64 / self.elapsed)
            .collect()
    }

    /// The nodes' CPU time per request, in microseconds.
    pub fn server_us(&self) -> f64 {
        self.server_cpu * 1e6 / self.sent()
    }

    /// PostgreSQL's CPU time per request, in microseconds.
    pub fn db_us(&self) -> f64 {
        self.db_cpu * 1e6 / self.sent()
    }

    fn sent(&self) -> f64 {
        (self.requests + self.errors).max(1) as f64
    }
}

/// What one load thread brings back: its node, latencies in µs, errors.
type Outcome = (usize, Vec<u32>, usize);

/// Runs `request` on one thread per state for `duration`, or until every
/// thread has ended. `request` answers `Some(false)` for an unexpected answer
/// (an error) and `None` to end its thread (a scenario that ran out of
/// tokens to spend: its rate is taken over the time it ran).
pub fn run<C: Connection, S: Send + 'static>(
    name: &str,
    nodes: &Nodes,
    duration: Duration,
    states: Vec<S>,
    request: fn(&mut C, &mut S) -> Option<bool>,
) -> Stats {
    let stop = Arc::new(AtomicBool::new(false));
    let db_before = nodes.db_cpu();
    let cpu_before = nodes.cpu_secs();
    let start = Instant::now();
    let handles: Vec<_> = states
        .into_iter()
        .enumerate()
        .map(|(i, mut state)| {
            let (stop, node, endpoint) = (stop.clone(), nodes.node_of(i), nodes.endpoint(i));
            let endpoint = endpoint.clone();
            std::thread::spawn(move || -> Outcome {
                let Ok(mut conn) = C::open(&endpoint) else {
                    return (node, Vec::new(), 1);
                };
                let mut latencies = Vec::with_capacity(100_000);
                let mut errors = 0;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match request(&mut conn, &mut state) {
                        Some(true) => latencies.push(t.elapsed().as_micros() as u32),
                        Some(false) => errors += 1,
                        None => break,
                    }
                }
                (node, latencies, errors)
            })
        })
        .collect();
    while start.elapsed() < duration && !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    let mut per_node = vec![0; nodes.len()];
    for h in handles {
        match h.join() {
            Ok((node, latencies, errs)) => {
                per_node[node] += latencies.len();
                all.extend(latencies);
                errors += errs;
            }
            Err(_) => errors += 1,
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let server_cpu = nodes.cpu_secs() - cpu_before;
    let db_cpu = measure::db_cpu_spent(&db_before, &nodes.db_cpu());
    all.sort_unstable();
    Stats {
        name: name.to_string(),
        requests: all.len(),
        errors,
        per_node,
        elapsed,
        p50_ms: measure::percentile_ms(&all, 0.5),
        p99_ms: measure::percentile_ms(&all, 0.99),
        server_cpu,
        db_cpu,
    }
}
