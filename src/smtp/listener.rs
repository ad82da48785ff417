//! Where the SMTP-auth service listens, and the accept loop that hands each
//! connection to its own task, within the connection slots (`slots`).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, UnixListener};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::sleep;

use super::connection::Connection;
use super::slots::{Activity, Admission, Peer, Slots};
use super::{Authenticator, Limits};

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
///
/// A peer (see [`Peer`]) holding [`Limits::max_connections_per_peer`] already
/// has its newest connection closed at once; when all
/// [`Limits::max_connections`] slots are taken, the connection idle longest is
/// closed to make room (one waiting for a verdict is not), so connections that
/// shake hands and go quiet cannot lock Postfix out.
pub async fn serve(listener: Listener, auth: Arc<dyn Authenticator>, limits: Limits) {
    let origin = Instant::now();
    let mut slots = Slots::new(limits.max_connections, limits.max_connections_per_peer);
    let mut aborts: HashMap<tokio::task::Id, AbortHandle> = HashMap::new();
    let mut connections = JoinSet::new();
    let mut refused: u64 = 0;
    let mut evicted: u64 = 0;
    loop {
        let accepted = tokio::select! {
            Some(done) = connections.join_next_with_id(), if !connections.is_empty() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => {
                        if e.is_panic() {
                            log::error!("sasl: a connection task panicked");
                        }
                        e.id()
                    }
                };
                slots.remove(id);
                aborts.remove(&id);
                continue;
            }
            accepted = accept(&listener) => accepted,
        };
        let (stream, peer_name, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                log::warn!("sasl: accept failed: {e}");
                sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match slots.admit(peer) {
            Admission::Admit => {}
            Admission::Evict(id) => {
                // Postfix notices the close when it next writes, and connects
                // again.
                if let Some(abort) = aborts.remove(&id) {
                    abort.abort();
                }
                slots.remove(id);
                evicted += 1;
                if evicted.is_power_of_two() {
                    log::warn!(
                        "sasl: all {} connections taken: closed the one idle longest for {peer_name} ({evicted} so far)",
                        limits.max_connections
                    );
                }
            }
            refusal @ (Admission::PeerFull | Admission::Full) => {
                refused += 1;
                if refused.is_power_of_two() {
                    let why = if refusal == Admission::PeerFull {
                        format!(
                            "its peer holds {} connections, the limit per peer",
                            limits.max_connections_per_peer
                        )
                    } else {
                        format!(
                            "all {} connections are waiting for a verdict",
                            limits.max_connections
                        )
                    };
                    log::warn!("sasl: closed {peer_name}: {why} ({refused} so far)");
                }
                continue;
            }
        }
        let auth = auth.clone();
        let activity = Arc::new(Activity::new(origin));
        let watched = activity.clone();
        let abort = connections.spawn(async move {
            match stream {
                Accepted::Tcp(s) => Connection::run(s, peer_name, auth, limits, watched).await,
                Accepted::Unix(s) => Connection::run(s, peer_name, auth, limits, watched).await,
            }
        });
        slots.insert(abort.id(), peer, activity);
        aborts.insert(abort.id(), abort);
    }
}

enum Accepted {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &Listener) -> io::Result<(Accepted, String, Peer)> {
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
            Ok((Accepted::Tcp(stream), peer.to_string(), Peer::ip(peer.ip())))
        }
        ListenerKind::Unix(l, path) => {
            let (stream, _) = l.accept().await?;
            // Unix-socket peers count per user: all of Postfix is one peer.
            let peer = stream
                .peer_cred()
                .map_or(Peer::Unknown, |cred| Peer::Uid(cred.uid()));
            let name = match peer {
                Peer::Uid(uid) => format!("unix:{} (uid {uid})", path.display()),
                _ => format!("unix:{}", path.display()),
            };
            Ok((Accepted::Unix(stream), name, peer))
        }
    }
}
