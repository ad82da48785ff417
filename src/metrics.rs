//! Prometheus metrics. Labels carry routes, outcomes and kinds: never an id or a
//! secret.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::LazyLock;

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub grants: IntCounterVec,
    pub v1_auth: IntCounterVec,
    pub revocations: IntCounterVec,
    pub smtp_auth: IntCounterVec,
    pub cache: IntCounterVec,
    pub pool: IntGaugeVec,
    pub abuse_tracked: IntGaugeVec,
    pub group_transactions: IntCounter,
    pub group_writes: IntCounter,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("metric definition");
    registry
        .register(Box::new(c.clone()))
        .expect("register metric");
    c
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new();
    let latency = HistogramVec::new(
        HistogramOpts::new(
            "keygate_http_request_duration_seconds",
            "Request latency by route.",
        )
        .buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ]),
        &["route", "method"],
    )
    .expect("metric definition");
    registry
        .register(Box::new(latency.clone()))
        .expect("register metric");
    let pool = IntGaugeVec::new(
        Opts::new(
            "keygate_db_pool_connections",
            "Database pool connections by state.",
        ),
        &["state"],
    )
    .expect("metric definition");
    registry
        .register(Box::new(pool.clone()))
        .expect("register metric");
    let abuse_tracked = IntGaugeVec::new(
        Opts::new(
            "keygate_abuse_tracked_entries",
            "Keys an abuse limiter tracks now (each capped; read when /metrics renders).",
        ),
        &["limiter"],
    )
    .expect("metric definition");
    registry
        .register(Box::new(abuse_tracked.clone()))
        .expect("register metric");
    let group_transactions = IntCounter::new(
        "keygate_db_group_commit_transactions_total",
        "Shared write transactions of the token grants (SQLite's group commit).",
    )
    .expect("metric definition");
    let group_writes = IntCounter::new(
        "keygate_db_group_commit_writes_total",
        "Grants written in shared transactions; divided by the transactions, the mean batch.",
    )
    .expect("metric definition");
    for c in [&group_transactions, &group_writes] {
        registry
            .register(Box::new(c.clone()))
            .expect("register metric");
    }
    Metrics {
        group_transactions,
        group_writes,
        requests: counter(
            &registry,
            "keygate_http_requests_total",
            "HTTP requests by route, method and status.",
            &["route", "method", "status"],
        ),
        grants: counter(
            &registry,
            "keygate_token_grants_total",
            "Token endpoint results by grant type and outcome (ok or the error code).",
            &["grant_type", "outcome"],
        ),
        v1_auth: counter(
            &registry,
            "keygate_v1_authentications_total",
            "/v1 bearer checks by credential kind and outcome.",
            &["kind", "outcome"],
        ),
        revocations: counter(
            &registry,
            "keygate_revocations_total",
            "Revocations by what was revoked.",
            &["what"],
        ),
        smtp_auth: counter(
            &registry,
            "keygate_smtp_authentications_total",
            "SMTP AUTH checks (Dovecot protocol) by outcome: ok, fail or unavailable.",
            &["outcome"],
        ),
        cache: counter(
            &registry,
            "keygate_credential_cache_lookups_total",
            "Credential cache lookups by result.",
            &["result"],
        ),
        latency,
        pool,
        abuse_tracked,
        registry,
    }
});

/// The `/v1` bearer check's series, resolved once: its label sets are closed,
/// and a label lookup (hash and lock) per request is measurable there.
pub struct V1Series {
    pub cache_hit: IntCounter,
    pub cache_miss: IntCounter,
    pub invalid: IntCounter,
    api_key: (IntCounter, IntCounter),
    access_token: (IntCounter, IntCounter),
}

impl V1Series {
    /// `ok` and `ip_not_allowed` of one credential kind (`Principal::kind`).
    pub fn outcome(&self, kind: &str, allowed: bool) -> &IntCounter {
        let pair = if kind == "api_key" {
            &self.api_key
        } else {
            &self.access_token
        };
        if allowed {
            &pair.0
        } else {
            &pair.1
        }
    }
}

pub static V1: LazyLock<V1Series> = LazyLock::new(|| {
    let m = &METRICS;
    let auth = |kind: &str, outcome: &str| m.v1_auth.with_label_values(&[kind, outcome]);
    V1Series {
        cache_hit: m.cache.with_label_values(&["hit"]),
        cache_miss: m.cache.with_label_values(&["miss"]),
        invalid: auth("unknown", "invalid"),
        api_key: (auth("api_key", "ok"), auth("api_key", "ip_not_allowed")),
        access_token: (
            auth("access_token", "ok"),
            auth("access_token", "ip_not_allowed"),
        ),
    }
});

/// Routes a thread keeps resolved series for; routes are patterns (a closed
/// set), so this is a guard, not a limit that is reached.
const MAX_ROUTES: usize = 1024;

/// A route's series by method and status.
type RouteSeries = Vec<(&'static str, u16, IntCounter, Histogram)>;

thread_local! {
    /// Each worker's resolved request series: a request counts and times
    /// itself without a label lookup once its route, method and status were seen.
    static REQUEST_SERIES: RefCell<HashMap<String, RouteSeries>> = RefCell::new(HashMap::new());
}

/// Counts one request and its latency (`route` is a pattern, `method` from a
/// closed set).
pub fn observe_request(route: &str, method: &'static str, status: u16, seconds: f64) {
    REQUEST_SERIES.with(|cell| {
        let mut map = cell.borrow_mut();
        if let Some(series) = map.get(route) {
            if let Some((_, _, count, latency)) = series
                .iter()
                .find(|(m, s, _, _)| *m == method && *s == status)
            {
                count.inc();
                latency.observe(seconds);
                return;
            }
        }
        let count = METRICS
            .requests
            .with_label_values(&[route, method, &status.to_string()]);
        let latency = METRICS.latency.with_label_values(&[route, method]);
        count.inc();
        latency.observe(seconds);
        if map.len() < MAX_ROUTES || map.contains_key(route) {
            map.entry(route.to_string())
                .or_default()
                .push((method, status, count, latency));
        }
    });
}

/// How many keys one abuse limiter tracks (`limiter` from a closed set).
pub fn set_abuse_tracked(limiter: &'static str, entries: usize) {
    METRICS
        .abuse_tracked
        .with_label_values(&[limiter])
        .set(i64::try_from(entries).unwrap_or(i64::MAX));
}

pub fn render(pool: &crate::db::Pool) -> String {
    let state = pool.state();
    METRICS
        .pool
        .with_label_values(&["idle"])
        .set(state.idle_connections as i64);
    METRICS
        .pool
        .with_label_values(&["in_use"])
        .set((state.connections - state.idle_connections) as i64);
    for (counter, total) in [
        (&METRICS.group_transactions, &crate::db::group::TRANSACTIONS),
        (&METRICS.group_writes, &crate::db::group::WRITES),
    ] {
        let total = total.load(std::sync::atomic::Ordering::Relaxed);
        counter.inc_by(total.saturating_sub(counter.get()));
    }
    let mut out = Vec::new();
    let _ = TextEncoder::new().encode(&METRICS.registry.gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}
