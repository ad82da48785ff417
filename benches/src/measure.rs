//! What the benchmark reads of the processes it measures: CPU time and peak
//! RSS from /proc, PostgreSQL's backends of the bench database, and the
//! placement of processes on CPUs.

use std::collections::HashMap;

/// User + system CPU seconds of a process so far (`/proc/<pid>/stat`, fields
/// 14 and 15, in clock ticks).
pub fn cpu_secs(pid: u32) -> f64 {
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

/// The peak resident set size of a process so far (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU seconds so far of each PostgreSQL backend serving the database of
/// `pg_url` (the servers' pooled connections: their pids from
/// `pg_stat_activity`, their times from /proc, so PostgreSQL must run on this
/// machine). PostgreSQL's background writer and checkpointer are not in it.
/// Empty when there is no PostgreSQL URL (SQLite).
pub fn db_cpu_by_backend(pg_url: Option<&str>) -> HashMap<u32, f64> {
    use diesel::prelude::*;
    let Some(url) = pg_url else {
        return HashMap::new();
    };
    let Ok(mut conn) = diesel::PgConnection::establish(url) else {
        return HashMap::new();
    };
    diesel::dsl::sql::<diesel::sql_types::Integer>(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .load::<i32>(&mut conn)
    .unwrap_or_default()
    .into_iter()
    .map(|pid| (pid as u32, cpu_secs(pid as u32)))
    .collect()
}

/// What the backends in `after` spent since `before` (a backend that
/// started in between counts whole).
pub fn db_cpu_spent(before: &HashMap<u32, f64>, after: &HashMap<u32, f64>) -> f64 {
    after
        .iter()
        .map(|(pid, t)| t - before.get(pid).copied().unwrap_or(0.0))
        // Not `sum`, whose sum of nothing is -0.0.
        .fold(0.0, |a, b| a + b)
}

/// Pins a process (0 = the calling thread, inherited by threads it starts) to
/// one CPU. `false` when the system refuses.
pub fn pin(pid: i32, cpu: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// The machine's CPUs.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(1)
}

/// The `p` quantile (0 to 1) of sorted latencies in µs, in milliseconds.
pub fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    match sorted_us.len() {
        0 => 0.0,
        n => sorted_us[((n - 1) as f64 * p) as usize] as f64 / 1000.0,
    }
}

/// The calling thread's CPU time so far.
pub fn thread_cpu() -> std::time::Duration {
    // SAFETY: clock_gettime writes the timespec it is given.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    std::time::Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}
