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
//! This module enforces only the protocol and its resource limits ([`Limits`]);
//! whether an address and key are good, and any abuse limiting or delay, is the
//! [`Authenticator`]'s business. Every failure answers the same `FAIL`, so a
//! client learns nothing about why.
//!
//! It depends on nothing else in keygate, so the listener can be started by any
//! caller with any way of checking credentials.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout, Instant};

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

/// Where to listen: `HOST:PORT` (an IP address and a port) or `unix:PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bind {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Bind {
    /// Parses `127.0.0.1:12345`, `[::1]:12345` or `unix:/run/keygate/auth`.
    /// Host names are refused: what a name resolves to can change under a
    /// running listener, and Postfix's `smtpd_sasl_path = inet:…` wants an
    /// address it can reach anyway.
    pub fn parse(s: &str) -> Result<Bind, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path, e.g. unix:/run/keygate/auth".into());
            }
            return Ok(Bind::Unix(PathBuf::from(path)));
        }
        s.parse::<SocketAddr>().map(Bind::Tcp).map_err(|_| {
            format!(
                "{s:?} is neither HOST:PORT (an IP address and a port, e.g. \
                 127.0.0.1:12345 or [::1]:12345) nor unix:PATH"
            )
        })
    }
}

impl FromStr for Bind {
    type Err = String;
    fn from_str(s: &str) -> Result<Bind, String> {
        Bind::parse(s)
    }
}

impl fmt::Display for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bind::Tcp(addr) => write!(f, "{addr}"),
            Bind::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// The protocol's resource limits. Policy about credentials (delays, abuse
/// limits) belongs to the [`Authenticator`], not here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; one more is closed as soon as it is
    /// accepted. Postfix holds one connection per `smtpd` process (100 per
    /// service by default, `default_process_limit`).
    pub max_connections: usize,
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
            max_line_bytes: 16 * 1024,
            max_pending_per_connection: 16,
            handshake_timeout: Duration::from_secs(10),
            continue_timeout: Duration::from_secs(300),
            write_timeout: Duration::from_secs(10),
            idle_timeout: None,
        }
    }
}

/// A bound listening socket, ready for [`serve`].
pub struct Listener {
    kind: ListenerKind,
}

enum ListenerKind {
    Tcp(TcpListener),
    /// The path is removed again when the listener is dropped.
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds a TCP address or a unix socket. A unix socket is created with mode
    /// 0666, like a loopback TCP port any local user can reach: keep it in a
    /// directory only Postfix and keygate can enter if that matters (Postfix's
    /// own `private/` convention). A stale socket left by a dead process is
    /// replaced; a live one, or a file that is not a socket, is an error.
    pub async fn bind(bind: &Bind) -> io::Result<Listener> {
        let kind = match bind {
            Bind::Tcp(addr) => ListenerKind::Tcp(TcpListener::bind(addr).await?),
            Bind::Unix(path) => {
                remove_stale_socket(path)?;
                let listener = UnixListener::bind(path)?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
                ListenerKind::Unix(listener, path.clone())
            }
        };
        Ok(Listener { kind })
    }

    /// Where it listens (with the port the system chose for port 0).
    pub fn local_addr(&self) -> io::Result<Bind> {
        match &self.kind {
            ListenerKind::Tcp(l) => l.local_addr().map(Bind::Tcp),
            ListenerKind::Unix(_, path) => Ok(Bind::Unix(path.clone())),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let ListenerKind::Unix(_, path) = &self.kind {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn remove_stale_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("another process listens on {}", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path),
        Err(e) => Err(e),
    }
}

/// Accepts connections and serves each on its own task until this future is
/// dropped, which also ends every connection it started. Accept errors (out of
/// file descriptors, a connection reset before it was accepted) are logged and
/// retried after a pause, never fatal.
pub async fn serve(listener: Listener, auth: Arc<dyn Authenticator>, limits: Limits) {
    let slots = Arc::new(Semaphore::new(
        limits.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    let mut connections = JoinSet::new();
    let mut refused: u64 = 0;
    loop {
        let accepted = tokio::select! {
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = done {
                    if e.is_panic() {
                        log::error!("sasl: a connection task panicked");
                    }
                }
                continue;
            }
            accepted = accept(&listener) => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                log::warn!("sasl: accept failed: {e}");
                sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                log::warn!(
                    "sasl: {} connections open, the limit: closed {peer} ({refused} so far)",
                    limits.max_connections
                );
            }
            continue;
        };
        let auth = auth.clone();
        connections.spawn(async move {
            let _slot = slot;
            match stream {
                Accepted::Tcp(s) => Connection::run(s, peer, auth, limits).await,
                Accepted::Unix(s) => Connection::run(s, peer, auth, limits).await,
            }
        });
    }
}

enum Accepted {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &Listener) -> io::Result<(Accepted, String)> {
    match &listener.kind {
        ListenerKind::Tcp(l) => {
            let (stream, peer) = l.accept().await?;
            // Answers are single short lines a client waits for.
            let _ = stream.set_nodelay(true);
            // A peer host that vanished never sends FIN; keepalive finds it
            // without closing healthy idle connections (see `idle_timeout`).
            let keepalive = socket2::TcpKeepalive::new()
                .with_time(Duration::from_secs(60))
                .with_interval(Duration::from_secs(15));
            let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
            Ok((Accepted::Tcp(stream), peer.to_string()))
        }
        ListenerKind::Unix(l, path) => {
            let (stream, _) = l.accept().await?;
            Ok((Accepted::Unix(stream), format!("unix:{}", path.display())))
        }
    }
}

/// `CUID`: unique per connection within this process, as Dovecot's is.
static NEXT_CUID: AtomicU64 = AtomicU64::new(1);

/// Answers are standard base64 with padding (what Postfix and Dovecot send);
/// input is accepted with or without padding, nothing else.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a connection is closed, for the debug log: a client that breaks the
/// protocol cannot be answered per request (its request id may be what is
/// broken), and an unavailable authenticator is signalled by closing.
type Close = &'static str;

/// What a request waits for.
enum Pending {
    /// A `CONT` from the client, until `deadline`.
    Continue {
        step: Step,
        remote_ip: Option<IpAddr>,
        deadline: Instant,
    },
    /// The authenticator's verdict.
    Checking,
}

enum Step {
    /// PLAIN without an initial response: the whole message comes in the `CONT`.
    Plain,
    LoginUsername,
    LoginPassword {
        username: Vec<u8>,
    },
}

struct Connection {
    auth: Arc<dyn Authenticator>,
    limits: Limits,
    peer: String,
    version_seen: bool,
    cpid_seen: bool,
    pending: HashMap<u32, Pending>,
    checks: JoinSet<Verdict>,
    check_ids: HashMap<tokio::task::Id, u32>,
    /// Answers not yet written.
    out: Vec<u8>,
}

enum ReadLine {
    Line,
    Eof,
    TooLong,
}

impl Connection {
    async fn run<S>(stream: S, peer: String, auth: Arc<dyn Authenticator>, mut limits: Limits)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        limits.max_pending_per_connection = limits.max_pending_per_connection.max(1);
        let (reader, mut writer) = tokio::io::split(stream);
        let mut reader = BufReader::with_capacity(8 * 1024, reader);
        let mut conn = Connection {
            auth,
            limits,
            peer,
            version_seen: false,
            cpid_seen: false,
            pending: HashMap::new(),
            checks: JoinSet::new(),
            check_ids: HashMap::new(),
            out: Vec::with_capacity(256),
        };
        conn.handshake();
        let why = conn.serve(&mut reader, &mut writer).await;
        log::debug!("sasl: closed {}: {why}", conn.peer);
        // Dropping `conn` aborts checks still running: nobody waits for them.
    }

    /// Sent at once, without waiting for the client's handshake, as Dovecot
    /// does: `VERSION` first, `MECH` lines, then `SPID`, `CUID`, `COOKIE` (32 hex
    /// digits; only used by Dovecot's master `REQUEST`, which is not offered
    /// here) and `DONE`, the order Postfix checks.
    fn handshake(&mut self) {
        let cookie: [u8; 16] = rand::random();
        let cookie: String = cookie.iter().map(|b| format!("{b:02x}")).collect();
        let cuid = NEXT_CUID.fetch_add(1, Ordering::Relaxed);
        let mut hello = String::from("VERSION\t1\t2\n");
        for m in [Mechanism::Plain, Mechanism::Login] {
            hello.push_str(&format!("MECH\t{}\tplaintext\n", m.name()));
        }
        hello.push_str(&format!(
            "SPID\t{}\nCUID\t{cuid}\nCOOKIE\t{cookie}\nDONE\n",
            std::process::id()
        ));
        self.out.extend_from_slice(hello.as_bytes());
    }

    /// The connection's loop; returns why it ended.
    async fn serve<R, W>(&mut self, reader: &mut R, writer: &mut W) -> &'static str
    where
        R: AsyncBufRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let handshake_deadline = Instant::now() + self.limits.handshake_timeout;
        let mut last_activity = Instant::now();
        let mut line = Vec::new();
        let mut reading = true;
        loop {
            if !self.out.is_empty() {
                match timeout(self.limits.write_timeout, writer.write_all(&self.out)).await {
                    Ok(Ok(())) => self.out.clear(),
                    Ok(Err(_)) => return "write failed",
                    Err(_) => return "write timed out (the client does not read)",
                }
            }
            if !reading && self.checks.is_empty() {
                return "end of input, every check answered";
            }
            let deadline = self.next_deadline(handshake_deadline, last_activity);
            let may_read = reading && self.checks.len() < self.limits.max_pending_per_connection;
            tokio::select! {
                biased;
                Some(done) = self.checks.join_next_with_id(), if !self.checks.is_empty() => {
                    last_activity = Instant::now();
                    if let Err(why) = self.on_verdict(done) {
                        let _ = timeout(self.limits.write_timeout, writer.write_all(&self.out)).await;
                        return why;
                    }
                }
                read = read_line(reader, &mut line, self.limits.max_line_bytes), if may_read => {
                    match read {
                        Ok(ReadLine::Line) => {
                            last_activity = Instant::now();
                            let result = self.on_line(&line);
                            line.clear();
                            if let Err(why) = result {
                                return why;
                            }
                        }
                        Ok(ReadLine::Eof) => {
                            // Answer what is being checked; nobody can continue
                            // the requests that wait for a `CONT`.
                            reading = false;
                            self.pending.retain(|_, p| matches!(p, Pending::Checking));
                        }
                        Ok(ReadLine::TooLong) => return "line too long",
                        Err(_) => return "read failed",
                    }
                }
                () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    if let Err(why) = self.on_timer(handshake_deadline, last_activity) {
                        return why;
                    }
                }
            }
        }
    }

    fn handshaken(&self) -> bool {
        self.version_seen && self.cpid_seen
    }

    /// The next moment a timer fires: the handshake's end, the idle limit
    /// (only while nothing is pending: a client waiting for a verdict is not
    /// idle), or the first request whose `CONT` is overdue.
    fn next_deadline(&self, handshake: Instant, last_activity: Instant) -> Option<Instant> {
        let mut next = if !self.handshaken() {
            Some(handshake)
        } else if self.pending.is_empty() {
            self.limits.idle_timeout.map(|idle| last_activity + idle)
        } else {
            None
        };
        for p in self.pending.values() {
            if let Pending::Continue { deadline, .. } = p {
                next = Some(next.map_or(*deadline, |n| n.min(*deadline)));
            }
        }
        next
    }

    fn on_timer(&mut self, handshake: Instant, last_activity: Instant) -> Result<(), Close> {
        let now = Instant::now();
        if !self.handshaken() && now >= handshake {
            return Err("no handshake in time");
        }
        if let (true, true, Some(idle)) = (
            self.handshaken(),
            self.pending.is_empty(),
            self.limits.idle_timeout,
        ) {
            if now >= last_activity + idle {
                return Err("idle");
            }
        }
        let overdue: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| matches!(p, Pending::Continue { deadline, .. } if *deadline <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in overdue {
            self.pending.remove(&id);
            self.fail(id);
        }
        Ok(())
    }

    fn on_line(&mut self, line: &[u8]) -> Result<(), Close> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let fields: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
        let command = fields.first().copied().unwrap_or_default();
        if !self.version_seen {
            // The first line must be VERSION with our major version; the minor
            // version may differ (the protocol document says so).
            return match fields.as_slice() {
                [b"VERSION", b"1", minor] if is_decimal(minor) => {
                    self.version_seen = true;
                    Ok(())
                }
                [b"VERSION", ..] => Err("unsupported VERSION"),
                _ => Err("the first line is not VERSION"),
            };
        }
        if !self.cpid_seen {
            // Dovecot, too, refuses requests before the client's CPID.
            return match fields.as_slice() {
                [b"CPID", pid] if is_decimal(pid) => {
                    self.cpid_seen = true;
                    Ok(())
                }
                _ => Err("no CPID after VERSION"),
            };
        }
        match command {
            b"AUTH" => self.on_auth(&fields),
            b"CONT" => self.on_cont(&fields),
            _ => Err("unknown or repeated command"),
        }
    }

    /// `AUTH <id> <mechanism> [<param>…]`. Parameters are `name=value` or flags;
    /// only `rip` and `resp` matter here (`resp` is the last one by the
    /// protocol's rule, so anything after it is ignored).
    fn on_auth(&mut self, fields: &[&[u8]]) -> Result<(), Close> {
        let [_, id, mechanism, params @ ..] = fields else {
            return Err("AUTH without an id and a mechanism");
        };
        let id = parse_id(id).ok_or("AUTH with a bad request id")?;
        if self.pending.contains_key(&id) {
            return Err("AUTH with the id of a pending request");
        }
        if self.pending.len() >= self.limits.max_pending_per_connection {
            self.fail(id);
            return Ok(());
        }
        let Some(mechanism) = Mechanism::from_wire(mechanism) else {
            self.fail(id);
            return Ok(());
        };
        let mut remote_ip = None;
        let mut initial = None;
        for param in params {
            if let Some(v) = param.strip_prefix(b"rip=") {
                remote_ip = std::str::from_utf8(v).ok().and_then(|v| v.parse().ok());
            } else if let Some(v) = param.strip_prefix(b"resp=") {
                initial = Some(v);
                break;
            }
        }
        let initial = match initial.map(|v| BASE64.decode(v)) {
            None => None,
            Some(Ok(bytes)) => Some(bytes),
            Some(Err(_)) => {
                self.fail(id);
                return Ok(());
            }
        };
        match (mechanism, initial) {
            (Mechanism::Plain, Some(message)) => self.plain(id, &message, remote_ip),
            (Mechanism::Plain, None) => self.challenge(id, Step::Plain, remote_ip, b""),
            // An empty initial response (SMTP's `AUTH LOGIN =`) starts from the
            // username, as no initial response does.
            (Mechanism::Login, Some(username)) if !username.is_empty() => self.challenge(
                id,
                Step::LoginPassword { username },
                remote_ip,
                b"Password:",
            ),
            (Mechanism::Login, _) => {
                self.challenge(id, Step::LoginUsername, remote_ip, b"Username:")
            }
        }
        Ok(())
    }

    /// `CONT <id> <base64>`. An id we do not know (never started, answered, or
    /// timed out) is answered `FAIL`, not closed: Postfix may well continue a
    /// request we gave up on, and reads past answers to other ids.
    fn on_cont(&mut self, fields: &[&[u8]]) -> Result<(), Close> {
        let [_, id, data] = fields else {
            return Err("CONT without exactly an id and a response");
        };
        let id = parse_id(id).ok_or("CONT with a bad request id")?;
        let (step, remote_ip) = match self.pending.remove(&id) {
            None => {
                self.fail(id);
                return Ok(());
            }
            Some(Pending::Checking) => return Err("CONT for a request being checked"),
            Some(Pending::Continue {
                step, remote_ip, ..
            }) => (step, remote_ip),
        };
        let Ok(data) = BASE64.decode(data) else {
            self.fail(id);
            return Ok(());
        };
        match step {
            Step::Plain => self.plain(id, &data, remote_ip),
            Step::LoginUsername if data.is_empty() => self.fail(id),
            Step::LoginUsername => self.challenge(
                id,
                Step::LoginPassword { username: data },
                remote_ip,
                b"Password:",
            ),
            Step::LoginPassword { username } => {
                self.check(id, Mechanism::Login, &username, &data, remote_ip)
            }
        }
        Ok(())
    }

    /// RFC 4616 §2: `[authzid] NUL authcid NUL passwd`. Acting for another
    /// identity is not offered, so an authzid must be empty or the authcid.
    fn plain(&mut self, id: u32, message: &[u8], remote_ip: Option<IpAddr>) {
        let mut parts = message.split(|&b| b == 0);
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(authzid), Some(authcid), Some(password), None)
                if authzid.is_empty() || authzid == authcid =>
            {
                self.check(id, Mechanism::Plain, authcid, password, remote_ip)
            }
            _ => self.fail(id),
        }
    }

    fn challenge(&mut self, id: u32, step: Step, remote_ip: Option<IpAddr>, challenge: &[u8]) {
        let deadline = Instant::now() + self.limits.continue_timeout;
        self.pending.insert(
            id,
            Pending::Continue {
                step,
                remote_ip,
                deadline,
            },
        );
        let line = format!("CONT\t{id}\t{}\n", BASE64.encode(challenge));
        self.out.extend_from_slice(line.as_bytes());
    }

    /// Hands complete credentials to the authenticator, on a task of its own so
    /// that a slow check does not hold up the connection's other requests.
    fn check(
        &mut self,
        id: u32,
        mechanism: Mechanism,
        username: &[u8],
        password: &[u8],
        remote_ip: Option<IpAddr>,
    ) {
        let (Ok(username), Ok(password)) =
            (std::str::from_utf8(username), std::str::from_utf8(password))
        else {
            return self.fail(id);
        };
        if !is_login_name(username) || password.is_empty() {
            return self.fail(id);
        }
        let attempt = Attempt {
            username: username.to_owned(),
            password: password.to_owned(),
            remote_ip,
            mechanism,
        };
        let task = self.checks.spawn(self.auth.authenticate(attempt));
        self.check_ids.insert(task.id(), id);
        self.pending.insert(id, Pending::Checking);
    }

    fn on_verdict(
        &mut self,
        done: Result<(tokio::task::Id, Verdict), tokio::task::JoinError>,
    ) -> Result<(), Close> {
        let (task, verdict) = match done {
            Ok((task, verdict)) => (task, verdict),
            Err(e) => {
                log::error!("sasl: the authenticator failed ({e}); answered FAIL");
                (e.id(), Verdict::Fail)
            }
        };
        let Some(id) = self.check_ids.remove(&task) else {
            return Ok(());
        };
        self.pending.remove(&id);
        match verdict {
            // `user=` is written as is: Dovecot would escape TAB and LF, Postfix
            // does not unescape, so such names are refused instead.
            Verdict::Ok { user } if is_login_name(&user) => {
                self.out
                    .extend_from_slice(format!("OK\t{id}\tuser={user}\n").as_bytes());
            }
            Verdict::Ok { .. } => {
                log::error!("sasl: the authenticator accepted a name that cannot be sent");
                self.fail(id);
            }
            Verdict::Fail => self.fail(id),
            Verdict::Unavailable => return Err("the authenticator is unavailable"),
        }
        Ok(())
    }

    fn fail(&mut self, id: u32) {
        let line = format!("FAIL\t{id}\treason={FAIL_REASON}\n");
        self.out.extend_from_slice(line.as_bytes());
    }
}

/// Reads one LF-terminated line into `line` (without the LF), refusing one
/// longer than `max`. Safe to cancel (it is one branch of a `select!`): bytes
/// are moved into `line` only after a read completed, and `line` keeps a
/// partial line for the next call.
async fn read_line<R>(reader: &mut R, line: &mut Vec<u8>, max: usize) -> io::Result<ReadLine>
where
    R: AsyncBufRead + Unpin,
{
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(ReadLine::Eof);
        }
        let (chunk, complete) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..end], true),
            None => (available, false),
        };
        if line.len() + chunk.len() > max {
            return Ok(ReadLine::TooLong);
        }
        line.extend_from_slice(chunk);
        let used = chunk.len() + usize::from(complete);
        reader.consume(used);
        if complete {
            return Ok(ReadLine::Line);
        }
    }
}

/// Request ids are unsigned 32-bit decimals (Postfix counts up from 1).
fn parse_id(field: &[u8]) -> Option<u32> {
    if !is_decimal(field) {
        return None;
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

fn is_decimal(field: &[u8]) -> bool {
    !field.is_empty() && field.len() <= 10 && field.iter().all(u8::is_ascii_digit)
}

/// A name that can travel in a protocol field and a log line: not empty, no
/// control characters (TAB and LF would break the line; Dovecot's escape byte
/// 0x01 is one too).
fn is_login_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_control)
}
