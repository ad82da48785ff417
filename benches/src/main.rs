//! keygate-bench: a load benchmark. It starts keygate (this binary re-executed in
//! server mode) on a fresh database, seeds it, drives HTTP/1.1 keep-alive load
//! from this process with a fixed number of connections for a fixed time, and
//! prints req/s, p50 and p99 per scenario, each as a ratio to `/healthz` measured
//! in the same run, and the server's peak RSS.
//!
//!   cargo run --release -p keygate-bench -- [--database-url URL] [--scale N]
//!       [--working-set N] [--connections C] [--duration SECS] [--pin] [--json]
//!       [--only TEXT] [--nodes N,N,…]
//!
//! Each scenario reports the server process's own CPU time per request (from
//! /proc/<pid>/stat) beside req/s and latency, and its ratio to /healthz's.
//! With `--nodes 1,2,4` it starts that many servers on one PostgreSQL for each
//! count in turn, spreads the connections round robin over them, and reports
//! the `/v1` and grant scenarios per node count and as a curve.
//!
//! The scenarios are a table (`scenarios`): each a name, a setup that
//! prepares one state per connection and a request, all loaded by one runner
//! (`load`). `seed` fills the database, `nodes` starts and measures the
//! servers, `report` prints; `http`, `flows`, `dpop` and `sasl` are the
//! clients' sides.

mod comparison;
mod dpop;
mod flows;
mod http;
mod load;
mod measure;
mod nodes;
mod report;
mod sasl;
mod scenarios;
mod seed;

use clap::Parser;
use nodes::{Launch, Nodes};
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
    /// Run the load generator on the last CPU and the servers on the others
    /// (on two CPUs: the server on CPU 0, the load generator on CPU 1), so
    /// that each scenario's server CPU time is its own.
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
    /// Node counts to run the /v1 and grant scenarios at, e.g. `1,2,4`: as
    /// many keygate servers on one PostgreSQL, the connections spread round
    /// robin over them (above 1: PostgreSQL only).
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<usize>,
    /// Internal: run as the server.
    #[arg(long, hide = true)]
    serve: bool,
}

fn main() {
    let opts = Opts::parse();
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

/// Whether the scenario `name` is to run (see `--only`).
fn wanted(only: Option<&str>, name: &str) -> bool {
    match only {
        Some(only) => name == scenarios::BASE || name.contains(only),
        None => true,
    }
}

/// The directory of the run's SQLite file, removed at the end.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, String> {
        let name = format!("keygate-bench-{}", uuid::Uuid::new_v4().simple());
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(opts: Opts) -> Result<(), String> {
    let dir = TempDir::new()?;
    let url = opts
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.0.join("bench.db").display()));
    let postgres = url.starts_with("postgres");
    if opts.nodes.contains(&0) {
        return Err("--nodes: a run has at least 1 node".into());
    }
    if !postgres && opts.nodes.iter().any(|&n| n > 1) {
        return Err(
            "--nodes above 1 needs PostgreSQL (--database-url postgres://…): \
                    the nodes of a deployment share one PostgreSQL, a SQLite file is one node's"
                .into(),
        );
    }
    let port = nodes::free_port()?;
    let issuer = format!("http://127.0.0.1:{port}");

    // Seed before the servers start.
    eprintln!(
        "seeding {} of each (database {})…",
        opts.scale,
        if postgres { "PostgreSQL" } else { "SQLite" }
    );
    let started = Instant::now();
    let (fixture, seeded) = seed::seed(&url, &issuer, opts.scale)?;
    eprintln!("seeded in {:.1} s", started.elapsed().as_secs_f64());

    let working_set = opts.working_set.min(opts.scale);
    let launch = Launch {
        database_url: &url,
        issuer: &issuer,
        pin: opts.pin,
    };
    let bench = scenarios::Bench {
        issuer: &issuer,
        fixture: &fixture,
        seeded: &seeded,
        connections: opts.connections,
        duration: Duration::from_secs(opts.duration),
        working_set,
    };
    let setting = report::Setting {
        postgres,
        scale: opts.scale,
        connections: opts.connections,
        duration_s: opts.duration,
        cores: measure::cores(),
    };
    let only = opts.only.as_deref();
    let table = scenarios::table(working_set);
    if opts.nodes.is_empty() {
        let rows: Vec<&dyn scenarios::Row> = table
            .iter()
            .map(|s| s.as_ref())
            .filter(|s| wanted(only, s.name()))
            .collect();
        let nodes = Nodes::start(&launch, 1, Some(port))?;
        let mut run = run_table(&nodes, bench, &rows)?;
        // node-oidc-provider's introspection beside keygate's, placed alike.
        if rows.iter().any(|r| r.name() == scenarios::INTROSPECTION) {
            let duration = Duration::from_secs(opts.duration);
            if let Some(theirs) = comparison::introspection(opts.pin, opts.connections, duration)? {
                run.results.push(theirs);
            }
        }
        // The DPoP check's budget: one signature verification, timed on the
        // server's CPU once the load is over.
        let signature_us = rows
            .iter()
            .any(|r| r.name() == scenarios::DPOP)
            .then(|| dpop::verification_us(nodes.pinned.then_some(0)))
            .flatten();
        report::one_node(&setting, &run, working_set, signature_us, opts.json);
    } else {
        let rows: Vec<&dyn scenarios::Row> = table
            .iter()
            .map(|s| s.as_ref())
            .filter(|s| s.runs() == scenarios::Runs::AcrossNodes && wanted(only, s.name()))
            .collect();
        let mut runs = Vec::new();
        for &count in &opts.nodes {
            eprintln!("{count} node(s)…");
            let nodes = Nodes::start(&launch, count, None)?;
            runs.push(run_table(&nodes, bench, &rows)?);
        }
        report::across_nodes(&setting, &runs, opts.json);
    }
    Ok(())
}

/// Runs the scenarios of `rows` in order on `nodes`, then reads what the
/// nodes say of the run.
fn run_table(
    nodes: &Nodes,
    bench: scenarios::Bench,
    rows: &[&dyn scenarios::Row],
) -> Result<report::Run, String> {
    let cx = scenarios::Ctx::new(nodes, bench);
    let mut results = Vec::new();
    for scenario in rows {
        results.push(scenario.run(&cx)?);
    }
    Ok(report::Run {
        nodes: nodes.len(),
        pinned: nodes.pinned,
        placement: nodes.placement.clone(),
        results,
        peak_rss_kib: nodes.peak_rss_kib(),
        counters: nodes.counters(),
    })
}
