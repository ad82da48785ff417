//! The server side of Dovecot's authentication protocol, version 1, as Postfix
//! speaks it with `smtpd_sasl_type = dovecot`: Postfix forwards each SMTP `AUTH`
//! here and accepts the client only if we answer `OK` with a `user=`.
//!
//! The protocol (Dovecot's "Authentication Protocol" document, and Postfix's
//! `xsasl_dovecot_server.c`, the client this must satisfy) is line based: fields
//! separated by TAB, lines ended by LF.
//!
//! ```text
//! client: VERSION 1 0                       server: VERSION 1 2
//! client: CPID <pid>                        server: MECH PLAIN plaintext
//!                                           server: MECH LOGIN plaintext
//!                                           server: SPID <pid>, CUID <n>, COOKIE <hex>, DONE
//! client: AUTH <id> PLAIN service=smtp nologin lip=… rip=… resp=<base64>
//!                                           server: OK <id> user=<name> | FAIL <id> reason=…
//! client: AUTH <id> LOGIN service=smtp …    server: CONT <id> base64("Username:")
//! client: CONT <id> <base64>                server: CONT <id> base64("Password:")
//! client: CONT <id> <base64>                server: OK … | FAIL …
//! ```
//!
//! Both sides send their handshake at once, as Dovecot does; Postfix wants
//! `VERSION` first, then the `MECH` lines, and reads until `DONE` (a `SPID`
//! before any `MECH` makes it think it reached Dovecot's master socket).
//!
//! This transport enforces only the protocol and its resource limits ([`Limits`]);
//! whether an address and key are good, and any abuse limiting or delay, is the
//! [`Authenticator`]'s business. Every failure answers the same `FAIL`, so a
//! client learns nothing about why.
//!
//! It depends on nothing else in keygate, so the listener can be started by any
//! caller with any way of checking credentials.
//!
//! - this file: what a caller sees ([`Authenticator`], [`Attempt`], [`Verdict`],
//!   [`Limits`]);
//! - `listener`: where to listen ([`Bind`]), the socket ([`Listener`]) and the
//!   accept loop ([`serve`]);
//! - `slots`: who holds the connection slots (per peer and in all) and which
//!   connection is closed to make room;
//! - `connection`: one connection's loop: reading lines, writing answers,
//!   the handshake, `CONT` and idle timers;
//! - `protocol`: what each line means and what is answered to it.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::Duration;

mod connection;
mod listener;
mod protocol;
mod slots;

pub use listener::{serve, Bind, Listener};

/// A boxed, sendable future: what an [`Authenticator`] returns (the same type as
/// `futures_util::future::BoxFuture<'static, T>`).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The one reason sent with every `FAIL`: Postfix shows it to the SMTP client
/// (`535 5.7.8 Error: authentication failed: <reason>`), so it must not tell an
/// unknown address from a wrong key.
pub const FAIL_REASON: &str = "Authentication failed";

/// The SASL mechanisms offered: both carry the password in the clear (hence
/// `plaintext` in the `MECH` lines, which lets Postfix's
/// `smtpd_sasl_security_options = noplaintext` hide them outside TLS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// RFC 4616: `authzid NUL authcid NUL password` in one message.
    Plain,
    /// The de-facto `LOGIN` mechanism (draft-murchison-sasl-login): the username
    /// and the password, each in answer to a challenge.
    Login,
}

impl Mechanism {
    /// The name as offered in `MECH` lines.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }

    /// Mechanism names are case-insensitive (RFC 4422 §3.1); Postfix forwards
    /// the spelling its SMTP client used (`AUTH plain` arrives as `plain`).
    fn from_wire(name: &[u8]) -> Option<Mechanism> {
        [Mechanism::Plain, Mechanism::Login]
            .into_iter()
            .find(|m| m.name().as_bytes().eq_ignore_ascii_case(name))
    }
}

/// One complete set of credentials to check.
#[derive(Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The authentication identity (for keygate: the mailbox address), as sent:
    /// valid UTF-8, not empty, no control characters.
    pub username: String,
    /// The password (for keygate: a mailbox auth key), as sent: valid UTF-8,
    /// not empty.
    pub password: String,
    /// The SMTP client's address, from Postfix's `rip=`, when it parses.
    pub remote_ip: Option<IpAddr>,
    pub mechanism: Mechanism,
}

impl fmt::Debug for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attempt")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("remote_ip", &self.remote_ip)
            .field("mechanism", &self.mechanism)
            .finish()
    }
}

/// An [`Authenticator`]'s answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted: `user` is sent as `user=`, the login name Postfix then uses
    /// (for `reject_sender_login_mismatch`, logs and headers). It must not be
    /// empty or hold control characters; such a name is answered with `FAIL`.
    Ok { user: String },
    /// Refused, for whatever reason: always the same `FAIL` on the wire.
    Fail,
    /// Could not decide now (the store is away). The SMTP client must be told
    /// to retry (`454`), not that its key is wrong (`535`). Postfix (checked
    /// with 3.7) ignores Dovecot's `temp` flag on `FAIL` and answers `535`; it
    /// answers `454 4.7.0 Temporary authentication failure` only when the
    /// authentication server goes away. So the connection is closed without an
    /// answer (after writing the answers already decided). Measured with
    /// Postfix 3.7: that client gets `454`; the next `AUTH` through the same
    /// `smtpd` process may get `454` too (Postfix notices the close only when
    /// it next reads), and the one after reconnects. Requests of the same
    /// connection still being checked are dropped with it (Postfix has one at
    /// a time).
    Unavailable,
}

/// Checks credentials. Called once per complete attempt, concurrently for many
/// connections and for pipelined requests on one connection.
pub trait Authenticator: Send + Sync + 'static {
    fn authenticate(&self, attempt: Attempt) -> BoxFuture<Verdict>;
}

/// The protocol's resource limits. Policy about credentials (delays, abuse
/// limits) belongs to the [`Authenticator`], not here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once. When all are taken, the one idle longest
    /// (that is not waiting for a verdict) is closed to make room for a new
    /// one: Postfix connects again when it next needs us. Postfix holds one
    /// connection per `smtpd` process (100 per service by default,
    /// `default_process_limit`), idle between SMTP sessions.
    pub max_connections: usize,
    /// Connections one peer may hold: a TCP peer is one remote address, a
    /// unix-socket peer one user id (all of Postfix is one peer). A peer's
    /// connection beyond it is closed as soon as it is accepted, so one peer
    /// cannot push the others out. Keep it above the number of Postfix
    /// `smtpd` processes that offer AUTH.
    pub max_connections_per_peer: usize,
    /// The longest line accepted, without its LF; a longer one closes the
    /// connection. Postfix's own SMTP lines are at most `line_length_limit`
    /// (2048 bytes by default), so an initial response never comes near it.
    pub max_line_bytes: usize,
    /// Requests of one connection started and not yet answered (waiting for a
    /// `CONT` or being checked). While that many are being checked, the
    /// connection is not read (a pipelining client just waits); an `AUTH`
    /// beyond the limit while others wait for `CONT` is answered `FAIL`.
    /// Postfix has one at a time. At least 1.
    pub max_pending_per_connection: usize,
    /// From accepting a connection to its `VERSION` and `CPID` lines; a client
    /// that says nothing is closed then. Postfix sends both at once and itself
    /// gives up after 10 s (`AUTH_TIMEOUT`).
    pub handshake_timeout: Duration,
    /// How long a request that was sent a `CONT` challenge may wait for the
    /// client's answer before it is answered `FAIL`. Postfix only relays its
    /// SMTP client here, which may take `smtpd_timeout` (300 s by default).
    pub continue_timeout: Duration,
    /// How long an answer may take to write before the connection is closed
    /// (a client that does not read).
    pub write_timeout: Duration,
    /// Close a connection that has sent no line for this long while nothing
    /// of it is pending. `None` by default, on purpose: Postfix keeps one
    /// connection per `smtpd` process for the life of that process, across SMTP
    /// sessions that may never authenticate, and the first `AUTH` after we
    /// closed it fails with `454 4.7.0 Temporary authentication failure:
    /// Connection lost to authentication server` (measured with Postfix 3.7
    /// and a 1 s idle limit). Dead TCP peers are found by TCP keepalive
    /// instead (probes after 60 s without traffic).
    pub idle_timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 1024,
            max_connections_per_peer: 256,
            max_line_bytes: 16 * 1024,
            max_pending_per_connection: 16,
            handshake_timeout: Duration::from_secs(10),
            continue_timeout: Duration::from_secs(300),
            write_timeout: Duration::from_secs(10),
            idle_timeout: None,
        }
    }
}
