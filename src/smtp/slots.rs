//! Who holds the listener's connection slots: at most
//! [`Limits::max_connections`](super::Limits::max_connections) in all and
//! [`Limits::max_connections_per_peer`](super::Limits::max_connections_per_peer)
//! for one peer. When every slot is taken, the connection idle longest is
//! closed to make room (Postfix reconnects when it next needs us); a peer at
//! its cap is refused its newest connection instead, so one peer cannot push
//! the others out.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Whose connection it is: the remote address of a TCP connection, the user
/// id of a unix-socket peer (every process of one user, e.g. all of
/// Postfix's `smtpd`, is one peer), or `Unknown` when the system does not say
/// (all such connections count as one peer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Peer {
    Ip(IpAddr),
    Uid(u32),
    Unknown,
}

impl Peer {
    /// An IPv4 address arriving on an IPv6 socket (`::ffff:a.b.c.d`) is the
    /// same peer as on an IPv4 socket.
    pub(super) fn ip(ip: IpAddr) -> Peer {
        Peer::Ip(ip.to_canonical())
    }
}

/// What a connection's task tells the slots about itself: when it last read a
/// line or got a verdict, and whether a check is under way (a connection
/// waiting for a verdict is not closed to make room: its client waits for
/// the answer).
#[derive(Debug)]
pub(super) struct Activity {
    origin: Instant,
    /// Milliseconds since `origin`.
    last_ms: AtomicU64,
    checking: AtomicBool,
}

impl Activity {
    pub(super) fn new(origin: Instant) -> Activity {
        let a = Activity {
            origin,
            last_ms: AtomicU64::new(0),
            checking: AtomicBool::new(false),
        };
        a.touch();
        a
    }

    pub(super) fn touch(&self) {
        let ms = self.origin.elapsed().as_millis().min(u64::MAX as u128) as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    pub(super) fn set_checking(&self, checking: bool) {
        self.checking.store(checking, Ordering::Relaxed);
    }

    fn last_ms(&self) -> u64 {
        self.last_ms.load(Ordering::Relaxed)
    }

    fn checking(&self) -> bool {
        self.checking.load(Ordering::Relaxed)
    }
}

/// What to do with a connection just accepted.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Admission<K> {
    Admit,
    /// Its peer holds its cap already: close the new one.
    PeerFull,
    /// Every slot is taken: close `K` (idle longest), then admit.
    Evict(K),
    /// Every slot is taken and every connection is waiting for a verdict:
    /// close the new one.
    Full,
}

struct Slot {
    peer: Peer,
    activity: Arc<Activity>,
}

/// The connections open, by a key of the caller's (the task's id).
pub(super) struct Slots<K> {
    max_total: usize,
    max_per_peer: usize,
    open: HashMap<K, Slot>,
    per_peer: HashMap<Peer, usize>,
}

impl<K: Copy + Eq + Hash> Slots<K> {
    /// Both limits are at least 1.
    pub(super) fn new(max_total: usize, max_per_peer: usize) -> Slots<K> {
        Slots {
            max_total: max_total.max(1),
            max_per_peer: max_per_peer.max(1),
            open: HashMap::new(),
            per_peer: HashMap::new(),
        }
    }

    /// Decides about a new connection of `peer`; changes nothing.
    pub(super) fn admit(&self, peer: Peer) -> Admission<K> {
        if self.per_peer.get(&peer).copied().unwrap_or(0) >= self.max_per_peer {
            return Admission::PeerFull;
        }
        if self.open.len() < self.max_total {
            return Admission::Admit;
        }
        self.open
            .iter()
            .filter(|(_, s)| !s.activity.checking())
            .min_by_key(|(_, s)| s.activity.last_ms())
            .map_or(Admission::Full, |(k, _)| Admission::Evict(*k))
    }

    pub(super) fn insert(&mut self, key: K, peer: Peer, activity: Arc<Activity>) {
        if let Some(old) = self.open.insert(key, Slot { peer, activity }) {
            self.release(old.peer);
        }
        *self.per_peer.entry(peer).or_insert(0) += 1;
    }

    /// Frees `key`'s slot; `false` if it held none (already removed).
    pub(super) fn remove(&mut self, key: K) -> bool {
        match self.open.remove(&key) {
            Some(slot) => {
                self.release(slot.peer);
                true
            }
            None => false,
        }
    }

    fn release(&mut self, peer: Peer) {
        if let Some(n) = self.per_peer.get_mut(&peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(last: u8) -> Peer {
        Peer::ip(IpAddr::from([192, 0, 2, last]))
    }

    /// An activity last touched `at_ms` after `origin`.
    fn activity(origin: Instant, at_ms: u64) -> Arc<Activity> {
        let a = Arc::new(Activity::new(origin));
        a.last_ms.store(at_ms, Ordering::Relaxed);
        a
    }

    #[test]
    fn a_peer_at_its_cap_is_refused_its_newest() {
        let origin = Instant::now();
        let mut s = Slots::new(10, 2);
        for k in 0..2u32 {
            assert_eq!(s.admit(ip(1)), Admission::Admit);
            s.insert(k, ip(1), activity(origin, 0));
        }
        assert_eq!(s.admit(ip(1)), Admission::PeerFull);
        assert_eq!(s.admit(ip(2)), Admission::Admit);
        assert!(s.remove(0));
        assert!(!s.remove(0), "removed twice");
        assert_eq!(s.admit(ip(1)), Admission::Admit);
    }

    #[test]
    fn when_full_the_longest_idle_makes_room() {
        let origin = Instant::now();
        let mut s = Slots::new(3, 3);
        s.insert(1u32, ip(1), activity(origin, 300));
        s.insert(2, ip(2), activity(origin, 100));
        s.insert(3, ip(3), activity(origin, 200));
        assert_eq!(s.admit(ip(4)), Admission::Evict(2));
        // A connection waiting for a verdict is not idle, however old.
        s.open[&2].activity.set_checking(true);
        assert_eq!(s.admit(ip(4)), Admission::Evict(3));
        for k in [1, 3] {
            s.open[&k].activity.set_checking(true);
        }
        assert_eq!(s.admit(ip(4)), Admission::Full);
        // The peer cap is checked first.
        let mut s = Slots::new(2, 1);
        s.insert(1u32, ip(1), activity(origin, 0));
        s.insert(2, ip(2), activity(origin, 0));
        assert_eq!(s.admit(ip(1)), Admission::PeerFull);
    }

    #[test]
    fn touching_makes_a_connection_younger() {
        let origin = Instant::now() - Duration::from_secs(5);
        let mut s = Slots::new(2, 2);
        let a = Arc::new(Activity::new(origin));
        let b = Arc::new(Activity::new(origin));
        a.last_ms.store(1, Ordering::Relaxed);
        s.insert(1u32, ip(1), a.clone());
        s.insert(2, ip(2), b);
        assert_eq!(s.admit(ip(3)), Admission::Evict(1));
        std::thread::sleep(Duration::from_millis(5));
        a.touch();
        // b was touched at creation, a just now: b is older now.
        assert_eq!(s.admit(ip(3)), Admission::Evict(2));
    }

    #[test]
    fn mapped_ipv4_is_the_same_peer() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(Peer::ip(v4), Peer::ip(mapped));
    }
}
