//! Usage over time: daily request counts per API key and per authorization,
//! kept for 90 days, written in batches by the maintenance task.

use crate::db::schema::usage_daily;
use crate::db::DbConn;
use crate::error::Result;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

pub const RETENTION_DAYS: i64 = 90;
pub const API_KEY: &str = "api_key";
pub const AUTHORIZATION: &str = "authorization";
pub const MAILBOX_AUTH_KEY: &str = "mailbox_auth_key";

/// The day number (days since 1970-01-01, UTC) of a unix time.
pub fn day_of(t: i64) -> i64 {
    t.div_euclid(86_400)
}

pub fn date_of(day: i64) -> String {
    crate::db::rfc3339(day * 86_400)[..10].to_string()
}

/// One day's uses of one subject.
pub struct DayCount<'a> {
    pub subject_id: &'a str,
    pub day: i64,
    pub count: i64,
}

impl<'a> DayCount<'a> {
    /// `count` uses of `subject_id`, the last at unix time `at`.
    pub fn of(subject_id: &'a str, at: i64, count: i64) -> Self {
        DayCount {
            subject_id,
            day: day_of(at),
            count,
        }
    }

    /// The daily totals of counted uses (id → (uses, last use)).
    pub fn all(counts: &'a Counts) -> impl Iterator<Item = DayCount<'a>> {
        counts
            .iter()
            .map(|(id, &(count, at))| DayCount::of(id, at, count))
    }
}

/// Adds each count to its subject's day total (an upsert both backends
/// understand), hundreds of rows a statement: a flush of a large working
/// set is a few statements, not one a subject.
pub fn add<'a>(
    conn: &mut DbConn,
    kind: &str,
    rows: impl IntoIterator<Item = DayCount<'a>>,
) -> Result<()> {
    let kind = kind.to_string();
    crate::db::write_values(
        conn,
        rows,
        4,
        |values| {
            format!(
                "INSERT INTO usage_daily (kind, subject_id, day, count) VALUES {values} \
                 ON CONFLICT (kind, subject_id, day) DO UPDATE SET count = usage_daily.count + excluded.count"
            )
        },
        |q, r| {
            q.bind::<Text, _>(kind.clone())
                .bind::<Text, _>(r.subject_id.to_string())
                .bind::<BigInt, _>(r.day)
                .bind::<BigInt, _>(r.count)
        },
    )?;
    Ok(())
}

/// Daily counts of one subject from `since_day` on, oldest first (days with no
/// use are absent).
pub fn series(
    conn: &mut DbConn,
    kind: &str,
    subject_id: &str,
    since_day: i64,
) -> Result<Vec<(i64, i64)>> {
    Ok(usage_daily::table
        .filter(usage_daily::kind.eq(kind))
        .filter(usage_daily::subject_id.eq(subject_id))
        .filter(usage_daily::day.ge(since_day))
        .order(usage_daily::day.asc())
        .select((usage_daily::day, usage_daily::count))
        .load(conn)?)
}

/// Daily counts of many subjects at once: (subject, day, count).
pub fn series_many(
    conn: &mut DbConn,
    kind: &str,
    subjects: &[String],
    since_day: i64,
) -> Result<Vec<(String, i64, i64)>> {
    if subjects.is_empty() {
        return Ok(Vec::new());
    }
    Ok(usage_daily::table
        .filter(usage_daily::kind.eq(kind))
        .filter(usage_daily::subject_id.eq_any(subjects))
        .filter(usage_daily::day.ge(since_day))
        .select((
            usage_daily::subject_id,
            usage_daily::day,
            usage_daily::count,
        ))
        .load(conn)?)
}

pub fn prune(conn: &mut DbConn, today: i64) -> Result<usize> {
    Ok(
        diesel::delete(usage_daily::table.filter(usage_daily::day.lt(today - RETENTION_DAYS)))
            .execute(conn)?,
    )
}

/// A small bar chart of the last `days` days as inline SVG (numbers only, no
/// script), with a text alternative.
pub fn sparkline(points: &[(i64, i64)], today: i64, days: i64) -> String {
    let start = today - days + 1;
    let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(1);
    let total: i64 = points.iter().filter(|p| p.0 >= start).map(|p| p.1).sum();
    let (w, h, bar) = (days * 4, 24, 3);
    let mut svg = format!(
        "<svg class=\"spark\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" \
         aria-label=\"{total} requests in the last {days} days\"><title>{total} requests in the last {days} days</title>\
         <rect x=\"0\" y=\"{}\" width=\"{w}\" height=\"1\" fill=\"#d5d9e0\"/>",
        h - 1
    );
    for &(day, count) in points.iter().filter(|p| p.0 >= start && p.0 <= today) {
        let bh = ((count as f64 / max as f64) * (h - 2) as f64)
            .ceil()
            .max(1.0) as i64;
        let x = (day - start) * 4;
        svg.push_str(&format!(
            "<rect x=\"{x}\" y=\"{}\" width=\"{bar}\" height=\"{bh}\" fill=\"#1f4fd1\"/>",
            h - 1 - bh
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// The usage of one credential over `days` days to `today` as a labelled bar
/// chart (for its own page): a bar a day with its count in its tooltip, the
/// busiest day's count on the axis and the first and last dates below.
pub fn bar_chart(points: &[(i64, i64)], today: i64, days: i64) -> String {
    let start = today - days + 1;
    let in_range = || points.iter().filter(move |p| p.0 >= start && p.0 <= today);
    let max = in_range().map(|p| p.1).max().unwrap_or(0).max(1);
    let total: i64 = in_range().map(|p| p.1).sum();
    let (slot, plot_h, left, top) = (18, 120, 44, 8);
    let w = left + days * slot;
    let h = top + plot_h + 24;
    let date = |d: i64| {
        chrono::DateTime::from_timestamp(d * 86_400, 0)
            .map(|t| t.format("%b %-d").to_string())
            .unwrap_or_default()
    };
    let mut svg = format!(
        "<svg class=\"usage-chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" \
         aria-label=\"{total} requests in the last {days} days; the busiest day had {max}\">\
         <title>{total} requests in the last {days} days</title>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"axis\">{max}</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"axis\">0</text>\
         <rect x=\"{left}\" y=\"{}\" width=\"{}\" height=\"1\" class=\"base\"/>",
        left - 6,
        top + 10,
        left - 6,
        top + plot_h,
        top + plot_h,
        days * slot
    );
    for &(day, count) in in_range() {
        let bh = ((count as f64 / max as f64) * plot_h as f64)
            .ceil()
            .max(1.0) as i64;
        let x = left + (day - start) * slot + 2;
        svg.push_str(&format!(
            "<rect x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{bh}\" class=\"bar\"><title>{}: {count}</title></rect>",
            top + plot_h - bh,
            slot - 4,
            date(day)
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{left}\" y=\"{}\" class=\"axis\">{}</text>\
         <text x=\"{w}\" y=\"{}\" text-anchor=\"end\" class=\"axis\">{}</text></svg>",
        h - 6,
        date(start),
        h - 6,
        date(today)
    ));
    svg
}

/// How many independently locked parts each map of the recorder has: every
/// `/v1` request counts a use, and with one lock the workers would queue on it.
const SHARDS: usize = 16;

/// A map split in parts by the id's hash, each behind its own lock.
struct Sharded<V> {
    parts: [Mutex<HashMap<String, V>>; SHARDS],
}

impl<V> Default for Sharded<V> {
    fn default() -> Self {
        Sharded {
            parts: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }
}

impl<V> Sharded<V> {
    /// The part `id` lives in (FNV-1a: ids are ours, not the caller's).
    fn part(&self, id: &str) -> std::sync::MutexGuard<'_, HashMap<String, V>> {
        let mut h: u32 = 0x811c_9dc5;
        for b in id.bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        lock(&self.parts[h as usize % SHARDS])
    }

    /// Takes everything counted, part by part.
    fn drain(&self) -> HashMap<String, V> {
        let mut all = HashMap::new();
        for part in &self.parts {
            all.extend(std::mem::take(&mut *lock(part)));
        }
        all
    }
}

/// Usage of credentials, counted in memory and written in batches.
#[derive(Default)]
pub struct UsageRecorder {
    keys: Sharded<KeyUse>,
    authorizations: Sharded<(i64, i64)>,
    auth_keys: Sharded<(i64, i64)>,
}

/// Uses counted since the last flush: id → (count, last used).
pub type Counts = HashMap<String, (i64, i64)>;

/// The uses of one API key since the last flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyUse {
    pub count: i64,
    pub last_used: i64,
    /// The client address of the latest use (`http::client_ip`).
    pub last_ip: Option<IpAddr>,
}

/// API key uses since the last flush, by key id.
pub type KeyCounts = HashMap<String, KeyUse>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl UsageRecorder {
    fn bump(map: &Sharded<(i64, i64)>, id: &str, n: i64, at: i64) {
        let mut map = map.part(id);
        match map.get_mut(id) {
            Some(entry) => {
                entry.0 += n;
                entry.1 = entry.1.max(at);
            }
            None => {
                map.insert(id.to_string(), (n, at));
            }
        }
    }

    fn bump_key(&self, id: &str, used: KeyUse) {
        let mut map = self.keys.part(id);
        match map.get_mut(id) {
            Some(entry) => {
                entry.count += used.count;
                // The address goes with the latest use (ties: the newer call).
                if used.last_used >= entry.last_used && used.last_ip.is_some() {
                    entry.last_ip = used.last_ip;
                }
                entry.last_used = entry.last_used.max(used.last_used);
            }
            None => {
                map.insert(id.to_string(), used);
            }
        }
    }

    pub fn key_used(&self, id: &str, at: i64) {
        self.key_used_from(id, at, None);
    }

    /// One use of an API key at `at` from `ip`.
    pub fn key_used_from(&self, id: &str, at: i64, ip: Option<IpAddr>) {
        let used = KeyUse {
            count: 1,
            last_used: at,
            last_ip: ip,
        };
        self.bump_key(id, used);
    }

    pub fn authorization_used(&self, id: &str, at: i64) {
        Self::bump(&self.authorizations, id, 1, at);
    }

    /// A successful SMTP authentication with a mailbox auth key.
    pub fn auth_key_used(&self, id: &str, at: i64) {
        Self::bump(&self.auth_keys, id, 1, at);
    }

    /// Takes the mailbox auth key uses counted since the last call.
    pub fn drain_auth_keys(&self) -> Counts {
        self.auth_keys.drain()
    }

    /// Puts back mailbox auth key uses that could not be written.
    pub fn restore_auth_keys(&self, counts: Counts) {
        for (id, (n, at)) in counts {
            Self::bump(&self.auth_keys, &id, n, at);
        }
    }

    /// Takes what was counted since the last call.
    pub fn drain(&self) -> (KeyCounts, Counts) {
        (self.keys.drain(), self.authorizations.drain())
    }

    /// Puts back counts that could not be written.
    pub fn restore(&self, keys: KeyCounts, apps: Counts) {
        for (id, used) in keys {
            self.bump_key(&id, used);
        }
        for (id, (n, at)) in apps {
            Self::bump(&self.authorizations, &id, n, at);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn usage_batches_add_up() {
        let u = UsageRecorder::default();
        u.key_used("k", 10);
        u.key_used("k", 12);
        let (keys, _) = u.drain();
        assert_eq!((keys["k"].count, keys["k"].last_used), (2, 12));
        assert!(u.drain().0.is_empty());
    }

    #[test]
    fn the_last_address_goes_with_the_latest_use() {
        let u = UsageRecorder::default();
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "2001:db8::2".parse().expect("ip");
        u.key_used_from("k", 20, Some(b));
        u.key_used_from("k", 10, Some(a));
        let (keys, apps) = u.drain();
        assert_eq!(keys["k"].last_ip, Some(b));
        u.restore(keys, apps);
        u.key_used_from("k", 30, Some(a));
        u.key_used_from("k", 31, None);
        let (keys, _) = u.drain();
        assert_eq!(keys["k"].count, 4);
        assert_eq!(keys["k"].last_used, 31);
        assert_eq!(keys["k"].last_ip, Some(a));
    }
    use super::*;

    #[test]
    fn days_and_chart() {
        assert_eq!(day_of(86_399), 0);
        assert_eq!(day_of(86_400), 1);
        assert_eq!(date_of(1), "1970-01-02");
        let svg = sparkline(&[(100, 5), (101, 10)], 101, 30);
        assert!(svg.contains("15 requests in the last 30 days"));
        assert_eq!(svg.matches("fill=\"#1f4fd1\"").count(), 2);
    }
}
