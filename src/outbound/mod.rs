//! The one outbound HTTPS client. Everything keygate fetches from, or sends to,
//! a URL someone else chose goes through [`Client`]: client ID metadata
//! documents now, and JWKS, webhook deliveries and an identity provider's
//! discovery document as they come. Fetching such a URL is a server-side
//! request forgery surface, so every request:
//!
//! * goes to an `https` URL only, to an address resolved and checked once
//!   ([`ssrf`]: special-use addresses are refused before connecting, except for
//!   allow-listed hosts), with no second DNS lookup to rebind;
//! * follows no redirects;
//! * bounds connect and total time and the bytes of body read ([`Limits`]),
//!   and the requests in flight at once on this node ([`MAX_IN_FLIGHT`]; a
//!   request waiting for its turn counts against its own total time);
//! * verifies TLS against the webpki roots plus, optionally, the roots of
//!   some PEM files (for tests and private deployments).
//!
//! # Why this HTTP stack
//!
//! A request is one exchange over a connection we open ourselves: `tokio`'s
//! `TcpStream` to the vetted address, `tokio-rustls` (aws-lc-rs, the provider the
//! crate already uses), and hyper's bare HTTP/1.1 client connection. No HTTP
//! client with its own resolver, pool, redirect or proxy logic is involved, so
//! nothing can reconnect elsewhere, and the whole request is one future that a
//! timeout cancels outright (a blocking client in `spawn_blocking` would keep a
//! thread until its own timeouts fired). hyper and http-body-util were already
//! in the lock file; reqwest would add a large tree for features we must turn
//! off.

pub mod ssrf;

pub use ssrf::{check_saved_url, is_special_use, parse_allowed_hosts};

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Bytes};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::Method;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::collections::HashSet;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use url::Url;

/// The most outbound requests one node has in flight at once (every client
/// clone shares them).
pub const MAX_IN_FLIGHT: usize = 64;

/// The bounds of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most time to open the TCP connection (per address tried).
    pub connect_timeout: Duration,
    /// The most time for the whole request: resolve, connect, TLS, response,
    /// body.
    pub total_timeout: Duration,
    /// The most bytes of response body read; a longer body is refused.
    pub max_body_bytes: usize,
}

/// Why a request failed. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// Not an `https` URL with a host.
    #[error("not an https URL: {0}")]
    BadUrl(String),
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    /// The host resolved to a special-use address and is not allow-listed;
    /// nothing was connected to.
    #[error("{host} resolves to {addr}, a special-use address that is never fetched")]
    ForbiddenAddress { host: String, addr: IpAddr },
    #[error("cannot connect to {host}: {reason}")]
    Connect { host: String, reason: String },
    #[error("TLS with {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error("HTTP error: {0}")]
    Http(String),
    #[error("the request took too long")]
    Timeout,
    /// A `3xx` where a document was expected: redirects are not followed.
    #[error("the URL answered with a redirect ({0}); redirects are not followed")]
    Redirect(u16),
    /// Another status where a document (`200`) was expected.
    #[error("the URL answered with status {0}, not 200")]
    Status(u16),
    #[error("the response is larger than {0} bytes")]
    TooLarge(usize),
    /// The client could not be built (e.g. an unreadable CA file).
    #[error("outbound HTTPS client: {0}")]
    Config(String),
}

/// A response, its body read in full (within [`Limits::max_body_bytes`]).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    /// Every value of a list header (e.g. `Cache-Control`) joined with `,`;
    /// `None` when there is none.
    pub fn header_list(&self, name: HeaderName) -> Option<String> {
        let joined = self
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        (!joined.is_empty()).then_some(joined)
    }
}

/// The outbound HTTPS client: who may be reached despite a special-use
/// address, and whose TLS certificates are trusted. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    allowed_hosts: Arc<HashSet<String>>,
    tls: Arc<ClientConfig>,
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("allowed_hosts", &self.allowed_hosts)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for which `allowed_hosts` (as in a URL, case-insensitive; IPv6
    /// with or without brackets) may resolve to special-use addresses, and
    /// which trusts the certificates of `ca_files` as roots besides webpki's.
    /// Fails only if a CA file cannot be read or holds no certificate.
    pub fn new<P: AsRef<Path>>(
        allowed_hosts: &[String],
        ca_files: &[P],
    ) -> Result<Self, OutboundError> {
        let tls = tls_config(ca_files)?;
        let allowed_hosts = allowed_hosts
            .iter()
            .filter_map(|h| ssrf::normalise_host(h))
            .collect();
        Ok(Client {
            allowed_hosts: Arc::new(allowed_hosts),
            tls,
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
        })
    }

    /// `request` once a place among the requests in flight is free, all
    /// within `limits.total_timeout`.
    async fn bounded<F>(&self, limits: &Limits, request: F) -> Result<Response, OutboundError>
    where
        F: Future<Output = Result<Response, OutboundError>>,
    {
        let run = async {
            let _permit = self
                .in_flight
                .acquire()
                .await
                .map_err(|e| OutboundError::Http(e.to_string()))?;
            request.await
        };
        tokio::time::timeout(limits.total_timeout, run)
            .await
            .unwrap_or(Err(OutboundError::Timeout))
    }

    /// `GET` of a JSON document (`Accept: application/json`): only a `200`
    /// answer is one ([`OutboundError::Redirect`] for a `3xx`,
    /// [`OutboundError::Status`] otherwise). The body is not parsed.
    pub async fn get_json(&self, url: &Url, limits: &Limits) -> Result<Response, OutboundError> {
        self.get_json_with(url, &[], limits).await
    }

    /// [`Client::get_json`] with more request headers (an `Authorization`
    /// for an OpenID provider's UserInfo endpoint).
    pub async fn get_json_with(
        &self,
        url: &Url,
        headers: &[(HeaderName, HeaderValue)],
        limits: &Limits,
    ) -> Result<Response, OutboundError> {
        let mut all = vec![(header::ACCEPT, HeaderValue::from_static("application/json"))];
        all.extend_from_slice(headers);
        let request = self.send(
            url,
            Method::GET,
            &all,
            Empty::<Bytes>::new(),
            limits,
            |status| match status {
                200 => Ok(()),
                300..=399 => Err(OutboundError::Redirect(status)),
                _ => Err(OutboundError::Status(status)),
            },
        );
        self.bounded(limits, request).await
    }

    /// `POST` of `body` with `headers` (a webhook delivery, a token request):
    /// the answer whatever its status, which is the caller's to judge.
    pub async fn post(
        &self,
        url: &Url,
        headers: &[(HeaderName, HeaderValue)],
        body: Vec<u8>,
        limits: &Limits,
    ) -> Result<Response, OutboundError> {
        let request = self.send(
            url,
            Method::POST,
            headers,
            Full::new(Bytes::from(body)),
            limits,
            |_| Ok(()),
        );
        self.bounded(limits, request).await
    }

    /// One request to `url`, over a connection of its own to a checked
    /// address. `accept_status` refuses a status before any body is read.
    async fn send<B>(
        &self,
        url: &Url,
        method: Method,
        headers: &[(HeaderName, HeaderValue)],
        body: B,
        limits: &Limits,
        accept_status: impl FnOnce(u16) -> Result<(), OutboundError>,
    ) -> Result<Response, OutboundError>
    where
        B: Body + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if url.scheme() != "https" {
            return Err(OutboundError::BadUrl(url.to_string()));
        }
        let host = url
            .host()
            .ok_or_else(|| OutboundError::BadUrl(url.to_string()))?;
        let host_str = url.host_str().unwrap_or_default().to_string();
        let port = url.port_or_known_default().unwrap_or(443);

        let addrs = ssrf::resolve_checked(url, port, &self.allowed_hosts).await?;
        let tcp = connect_any(&addrs, limits.connect_timeout, &host_str).await?;
        let server_name = match host {
            url::Host::Domain(d) => {
                ServerName::try_from(d.to_string()).map_err(|e| OutboundError::Tls {
                    host: host_str.clone(),
                    reason: e.to_string(),
                })?
            }
            url::Host::Ipv4(ip) => ServerName::IpAddress(IpAddr::V4(ip).into()),
            url::Host::Ipv6(ip) => ServerName::IpAddress(IpAddr::V6(ip).into()),
        };
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(server_name, tcp)
            .await
            .map_err(|e| OutboundError::Tls {
                host: host_str.clone(),
                reason: e.to_string(),
            })?;

        // Small buffers: documents are a few KiB, and so are their headers.
        let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
            .max_header_size(8 * 1024)
            .max_buf_size(16 * 1024)
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|e| OutboundError::Http(e.to_string()))?;
        let authority = match url.port() {
            Some(p) => format!("{host_str}:{p}"),
            None => host_str.clone(),
        };
        let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(target)
            .header(header::HOST, authority);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = request
            .header(
                header::USER_AGENT,
                concat!("keygate/", env!("CARGO_PKG_VERSION")),
            )
            .body(body)
            .map_err(|e| OutboundError::Http(e.to_string()))?;

        let max = limits.max_body_bytes;
        let exchange = async move {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| OutboundError::Http(e.to_string()))?;
            let status = response.status().as_u16();
            accept_status(status)?;
            let declared = response
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if declared.is_some_and(|n| n > max as u64) {
                return Err(OutboundError::TooLarge(max));
            }
            let (parts, mut body) = response.into_parts();
            let mut buf = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| OutboundError::Http(e.to_string()))?;
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > max {
                        // Stop reading; dropping the connection discards the rest.
                        return Err(OutboundError::TooLarge(max));
                    }
                    buf.extend_from_slice(&data);
                }
            }
            Ok(Response {
                status,
                headers: parts.headers,
                body: buf,
            })
        };
        drive(conn, exchange).await
    }
}

/// Runs `work` while also polling the HTTP connection `conn` that serves it,
/// without spawning: dropping this future (a timeout) closes the connection.
async fn drive<C, W, T>(conn: C, work: W) -> T
where
    C: Future,
    W: Future<Output = T>,
{
    let mut conn = std::pin::pin!(conn);
    let mut work = std::pin::pin!(work);
    let mut conn_done = false;
    std::future::poll_fn(move |cx| {
        if !conn_done && conn.as_mut().poll(cx).is_ready() {
            // Finished or failed; a failure reaches `work` as a request error.
            conn_done = true;
        }
        work.as_mut().poll(cx)
    })
    .await
}

async fn connect_any(
    addrs: &[SocketAddr],
    timeout: Duration,
    host: &str,
) -> Result<TcpStream, OutboundError> {
    let mut last = String::from("no address");
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(_) => last = format!("{addr}: timed out"),
        }
    }
    Err(OutboundError::Connect {
        host: host.to_string(),
        reason: last,
    })
}

/// TLS for outbound requests: aws-lc-rs, rustls' safe defaults, HTTP/1.1, the
/// webpki roots plus those of `ca_files`.
fn tls_config<P: AsRef<Path>>(ca_files: &[P]) -> Result<Arc<ClientConfig>, OutboundError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for path in ca_files {
        let path = path.as_ref();
        let display = path.display();
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| OutboundError::Config(format!("cannot read {display}: {e}")))?;
        let mut added = 0;
        for cert in certs {
            let cert =
                cert.map_err(|e| OutboundError::Config(format!("cannot read {display}: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| OutboundError::Config(format!("{display}: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(OutboundError::Config(format!(
                "{display} holds no certificate"
            )));
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| OutboundError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn a_missing_or_empty_ca_file_is_a_config_error() {
        let missing = PathBuf::from("/nonexistent/keygate-ca.pem");
        assert!(matches!(
            Client::new(&[], &[&missing]),
            Err(OutboundError::Config(_))
        ));
        let path =
            std::env::temp_dir().join(format!("keygate-empty-ca-{}.pem", std::process::id()));
        std::fs::write(&path, "not a pem\n").unwrap();
        let r = Client::new(&[], &[&path]);
        let _ = std::fs::remove_file(&path);
        assert!(matches!(r, Err(OutboundError::Config(_))));
        assert!(Client::new::<&Path>(&[], &[]).is_ok());
    }
}
