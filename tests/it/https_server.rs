//! A throwaway HTTPS server on 127.0.0.1 serving canned responses per path,
//! for client ID metadata document tests.
//!
//! Each server makes its own CA (rcgen) and a certificate for `127.0.0.1`,
//! `::1` and `localhost` signed by it, and writes the CA to a PEM file: point
//! `KEYGATE_CIMD_CA_FILE` at [`HttpsServer::ca_file`] and list `127.0.0.1` (or
//! `localhost`) in `KEYGATE_CIMD_ALLOWED_HOSTS` to let a keygate process fetch
//! from it. Plain threads (no async runtime), so synchronous tests that drive a
//! keygate subprocess can use it as well as `#[tokio::test]`s.
//!
//! One request per connection (`Connection: close`). Paths match the request
//! target exactly (with its query); unknown paths get `404`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A canned response.
#[derive(Clone, Debug)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    delay: Duration,
    content_length: bool,
}

impl Reply {
    /// `200` with a JSON body.
    pub fn json(value: &serde_json::Value) -> Reply {
        Reply::raw(200, "application/json", value.to_string().into_bytes())
    }

    /// Any status, content type and body.
    pub fn raw(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
            delay: Duration::ZERO,
            content_length: true,
        }
    }

    /// A status with an empty body.
    pub fn status(status: u16) -> Reply {
        Reply::raw(status, "text/plain", Vec::new())
    }

    /// A redirect to `location`.
    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply::status(status).header("Location", location)
    }

    /// `200` with a JSON object of exactly `bytes` bytes (at least 12), valid
    /// JSON apart from its size.
    pub fn json_of_size(mut value: serde_json::Value, bytes: usize) -> Reply {
        value["padding"] = serde_json::Value::String(String::new());
        let without = value.to_string().len();
        value["padding"] = serde_json::Value::String("x".repeat(bytes.saturating_sub(without)));
        Reply::json(&value)
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Waits this long after reading the request before answering.
    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    /// Sends no `Content-Length`: the body ends when the connection closes.
    pub fn without_content_length(mut self) -> Reply {
        self.content_length = false;
        self
    }
}

/// A request as it arrived: its headers (names lower-cased) and body.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The most requests kept per path.
const MAX_RECORDED: usize = 1000;

struct Shared {
    routes: Mutex<HashMap<String, Reply>>,
    hits: Mutex<HashMap<String, usize>>,
    recorded: Mutex<HashMap<String, Vec<Recorded>>>,
    connections: AtomicUsize,
    stop: AtomicBool,
    tls: Arc<rustls::ServerConfig>,
}

/// The server; stops (and removes its CA file) when dropped.
pub struct HttpsServer {
    addr: SocketAddr,
    ca_pem: String,
    ca_file: PathBuf,
    shared: Arc<Shared>,
}

impl HttpsServer {
    pub fn start() -> HttpsServer {
        let (ca_pem, tls) = make_certificates();
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let ca_file = std::env::temp_dir().join(format!(
            "keygate-test-ca-{}-{}.pem",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::write(&ca_file, &ca_pem).expect("write the test CA");

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the HTTPS test server");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            routes: Mutex::new(HashMap::new()),
            hits: Mutex::new(HashMap::new()),
            recorded: Mutex::new(HashMap::new()),
            connections: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            tls,
        });
        let accept_shared = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                accept_shared.connections.fetch_add(1, Ordering::SeqCst);
                let shared = accept_shared.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        HttpsServer {
            addr,
            ca_pem,
            ca_file,
            shared,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `https://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port())
    }

    /// `https://localhost:PORT{path}`.
    pub fn localhost_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port())
    }

    /// The PEM file of the CA that signed the server's certificate.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Serves `reply` at `path` from now on (replacing what was there).
    pub fn set(&self, path: &str, reply: Reply) {
        lock(&self.shared.routes).insert(path.to_string(), reply);
    }

    /// How many requests for `path` were read.
    pub fn hits(&self, path: &str) -> usize {
        lock(&self.shared.hits).get(path).copied().unwrap_or(0)
    }

    /// The requests for `path` read so far (headers and body), oldest first.
    pub fn requests(&self, path: &str) -> Vec<Recorded> {
        lock(&self.shared.recorded)
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    /// How many TCP connections were accepted.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn make_certificates() -> (String, Arc<rustls::ServerConfig>) {
    let issued = crate::support::tls::issue();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![
                CertificateDer::from(issued.leaf_der.clone()),
                CertificateDer::from(issued.ca_der.clone()),
            ],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(issued.key_der.clone())),
        )
        .expect("server TLS config");
    (issued.ca_pem, Arc::new(config))
}

fn serve(tcp: TcpStream, shared: &Shared) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(10)));
    let Ok(conn) = rustls::ServerConnection::new(shared.tls.clone()) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, tcp);

    // Read the request head.
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 16 * 1024 {
            return;
        }
    }
    let split = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(head.len(), |p| p + 4);
    let mut body = head[split..].to_vec();
    let head = String::from_utf8_lossy(&head[..split]).to_string();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(1024 * 1024);
    while body.len() < length {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    let target = head
        .lines()
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .unwrap_or("")
        .to_string();
    *lock(&shared.hits).entry(target.clone()).or_insert(0) += 1;
    {
        let mut recorded = lock(&shared.recorded);
        let list = recorded.entry(target.clone()).or_default();
        if list.len() < MAX_RECORDED {
            list.push(Recorded { headers, body });
        }
    }
    let reply = lock(&shared.routes)
        .get(&target)
        .cloned()
        .unwrap_or_else(|| Reply::status(404));

    if !reply.delay.is_zero() {
        std::thread::sleep(reply.delay);
    }
    let mut out = format!("HTTP/1.1 {} Test\r\n", reply.status);
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if reply.content_length {
        out.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    out.push_str("Connection: close\r\n\r\n");
    let _ = tls.write_all(out.as_bytes());
    // In pieces, so a client that stops reading early is seen to.
    for chunk in reply.body.chunks(1024) {
        if tls.write_all(chunk).and_then(|_| tls.flush()).is_err() {
            return;
        }
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
}
