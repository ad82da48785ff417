//! The results as docs/performance.md shows them (Markdown tables), or as
//! JSON with `--json` for comparing runs.

use crate::load::Stats;
use crate::scenarios;
use serde_json::{json, Value};

/// What a run was: the same for every table of it.
pub struct Setting {
    pub postgres: bool,
    pub scale: usize,
    pub connections: usize,
    pub duration_s: u64,
    pub cores: usize,
}

impl Setting {
    fn backend(&self) -> (&'static str, &'static str) {
        match self.postgres {
            true => ("postgresql", "PostgreSQL"),
            false => ("sqlite", "SQLite"),
        }
    }
}

/// One run of the table on a set of nodes.
pub struct Run {
    pub nodes: usize,
    pub pinned: bool,
    pub placement: String,
    /// The scenarios that ran, `/healthz` first.
    pub results: Vec<Stats>,
    /// Each node's peak RSS over the run, in KiB.
    pub peak_rss_kib: Vec<Option<u64>>,
    /// Each node's cache and group commit counters (`/metrics` lines).
    pub counters: Vec<Vec<String>>,
}

fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1}", k as f64 / 1024.0))
        .unwrap_or_else(|| "?".into())
}

/// The table of one node, each scenario against `/healthz` of the same run.
pub fn one_node(s: &Setting, run: &Run, working_set: usize, signature_us: Option<f64>, json: bool) {
    let base = &run.results[0];
    let (base_rate, base_us) = (base.rate(), base.server_us());
    let (backend, backend_name) = s.backend();
    let rss = run.peak_rss_kib.first().copied().flatten();
    // What the node had in its credential cache at its peak: the working
    // set of each large-working-set scenario that ran.
    let in_rotation = |credentials: &str| {
        let name = scenarios::in_rotation_name(credentials, working_set);
        match run.results.iter().any(|r| r.name == name) {
            true => working_set,
            false => 0,
        }
    };
    let keys = in_rotation(scenarios::API_KEYS);
    let tokens = in_rotation(scenarios::ACCESS_TOKENS);
    if json {
        let rows: Vec<Value> = run
            .results
            .iter()
            .map(|r| json!({"scenario": r.name, "requests": r.requests, "errors": r.errors, "req_per_s": r.rate(), "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "ratio_to_healthz": r.rate() / base_rate, "server_us_per_request": r.server_us(), "server_us_ratio_to_healthz": r.server_us() / base_us, "db_us_per_request": r.db_us()}))
            .collect();
        println!(
            "{}",
            json!({"backend": backend, "scale": s.scale, "working_set": working_set, "connections": s.connections, "duration_s": s.duration_s, "cores": s.cores, "pinned": run.pinned, "placement": run.placement, "peak_rss_kib": rss, "api_keys_in_rotation": keys, "access_tokens_in_rotation": tokens, "ed25519_verification_us": signature_us, "results": rows})
        );
        return;
    }
    println!(
        "backend {backend_name}, scale {}, {} connections, {} s per scenario, {} cores",
        s.scale, s.connections, s.duration_s, s.cores
    );
    println!("{}", run.placement);
    println!("| scenario | req/s | p50 ms | p99 ms | server µs/req | µs vs /healthz | req/s vs /healthz | PostgreSQL µs/req | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &run.results {
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.1} | {:.2} | {:.2} | {:.1} | {} |",
            r.name,
            r.rate(),
            r.p50_ms,
            r.p99_ms,
            r.server_us(),
            r.server_us() / base_us,
            r.rate() / base_rate,
            r.db_us(),
            r.errors
        );
    }
    println!(
        "server peak RSS: {} MiB, with {keys} API keys and {tokens} access tokens in rotation ({} of each seeded)",
        mib(rss),
        s.scale
    );
    dpop_budget(run, signature_us);
    introspection_against_node(run);
    for l in run.counters.iter().flatten() {
        println!("{l}");
    }
}

/// The DPoP check against its budget (#30): Bearer's request plus one
/// signature verification, each taken in this run.
fn dpop_budget(run: &Run, signature_us: Option<f64>) {
    let us = |name: &str| {
        run.results
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.server_us())
    };
    let (Some(dpop), Some(bearer), Some(signature)) =
        (us(scenarios::DPOP), us(scenarios::BEARER_JWT), signature_us)
    else {
        return;
    };
    let budget = bearer + signature;
    println!(
        "DPoP: {dpop:.1} µs a request; budget {budget:.1} µs = Bearer {bearer:.1} + one Ed25519 verification {signature:.1} (timed on the server's CPU); {:+.1} µs against it",
        dpop - budget
    );
}

/// keygate's introspection against node-oidc-provider's, per request (the
/// issue's target: at least 10 times less CPU).
fn introspection_against_node(run: &Run) {
    let us = |name: &str| {
        run.results
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.server_us())
    };
    if let (Some(ours), Some(theirs)) = (us(scenarios::INTROSPECTION), us(crate::comparison::NAME))
    {
        println!(
            "introspection: node-oidc-provider {theirs:.1} µs a request, keygate {ours:.1} µs: {:.1} × less CPU (target ≥ 10 ×)",
            theirs / ours
        );
    }
}

/// A table per node count, then the curve: each scenario's req/s by node count.
pub fn across_nodes(s: &Setting, runs: &[Run], json: bool) {
    let (backend, backend_name) = s.backend();
    if json {
        let runs: Vec<Value> = runs
            .iter()
            .map(|run| {
                let rows: Vec<Value> = run
                    .results
                    .iter()
                    .map(|r| json!({"scenario": r.name, "requests": r.requests, "errors": r.errors, "req_per_s": r.rate(), "req_per_s_per_node": r.node_rates(), "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "server_us_per_request": r.server_us(), "db_us_per_request": r.db_us()}))
                    .collect();
                json!({"nodes": run.nodes, "pinned": run.pinned, "placement": run.placement, "peak_rss_kib": run.peak_rss_kib, "results": rows})
            })
            .collect();
        println!(
            "{}",
            json!({"backend": backend, "scale": s.scale, "connections": s.connections, "duration_s": s.duration_s, "cores": s.cores, "runs": runs})
        );
        return;
    }
    println!(
        "backend {backend_name}, scale {}, {} connections spread round robin over the nodes, {} s per scenario, {} cores",
        s.scale, s.connections, s.duration_s, s.cores
    );
    for run in runs {
        let plural = if run.nodes == 1 { "" } else { "s" };
        println!();
        println!("{} node{plural}, {}", run.nodes, run.placement);
        println!("| scenario | req/s | req/s per node | p50 ms | p99 ms | server µs/req (all nodes) | PostgreSQL µs/req | errors |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        for r in &run.results {
            let per_node: Vec<String> = r.node_rates().iter().map(|n| format!("{n:.0}")).collect();
            println!(
                "| {} | {:.0} | {} | {:.2} | {:.2} | {:.1} | {:.1} | {} |",
                r.name,
                r.rate(),
                per_node.join(" / "),
                r.p50_ms,
                r.p99_ms,
                r.server_us(),
                r.db_us(),
                r.errors
            );
        }
        let rss: Vec<String> = run.peak_rss_kib.iter().map(|k| mib(*k)).collect();
        println!(
            "peak RSS per node: {} MiB ({} of each seeded)",
            rss.join(" / "),
            s.scale
        );
        for (i, lines) in run.counters.iter().enumerate() {
            for l in lines {
                println!("node {}: {l}", i + 1);
            }
        }
    }
    let Some(first) = runs.first() else { return };
    println!();
    let names: Vec<&str> = first.results.iter().map(|r| r.name.as_str()).collect();
    println!(
        "| nodes | {} | largest peak RSS of a node, MiB |",
        names
            .iter()
            .map(|n| format!("{n} req/s"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---:|{}---:|", "---:|".repeat(names.len()));
    for run in runs {
        let rates: Vec<String> = run
            .results
            .iter()
            .map(|r| format!("{:.0}", r.rate()))
            .collect();
        let largest = run.peak_rss_kib.iter().flatten().max().copied();
        println!(
            "| {} | {} | {} |",
            run.nodes,
            rates.join(" | "),
            mib(largest)
        );
    }
}
