//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document):
//! a client whose `client_id` is an `https` URL publishes its metadata there,
//! and the authorization server fetches it instead of keeping a registration.
//!
//! Fetching a URL the client chose is a server-side request forgery surface
//! (draft §"Server-Side Request Forgery (SSRF) Attacks"), so [`Fetcher`]:
//!
//! * resolves the host itself and refuses special-use addresses (RFC 6890 and
//!   its successors, see [`is_special_use`]) before connecting, then connects
//!   only to an address it checked: there is no second DNS lookup to rebind;
//!   hosts named in `KEYGATE_CIMD_ALLOWED_HOSTS` skip the address check;
//! * follows no redirects (a `3xx` is an error), accepts only `200` with a JSON
//!   object, reads at most 5 KiB (draft: "the authorization server SHOULD limit
//!   the size of the response"), and bounds connect and total time;
//! * verifies TLS against the webpki roots plus, optionally, one extra root
//!   from `KEYGATE_CIMD_CA_FILE` (for tests and private deployments);
//! * fetches each URL once at a time: concurrent callers wait for the same
//!   result; caches good documents (bounded count, TTL from `Cache-Control`
//!   within bounds, draft §"Metadata Caching") and never caches a failure.
//!
//! # Why this HTTP stack
//!
//! The request is one `GET` over a connection we open ourselves: `tokio`'s
//! `TcpStream` to the vetted address, `tokio-rustls` (aws-lc-rs, the provider the
//! crate already uses), and hyper's bare HTTP/1.1 client connection. No HTTP
//! client with its own resolver, pool, redirect or proxy logic is involved, so
//! nothing can reconnect elsewhere, and the whole fetch is one future that a
//! timeout cancels outright (a blocking client in `spawn_blocking` would keep a
//! thread until its own timeouts fired). hyper and http-body-util were already
//! in the lock file; reqwest would add a large tree for features we must turn
//! off.

use super::metadata::{
    check_text, quoted, redirect_uri_matches, validate_redirect_uris, validate_scope, AuthMethod,
    ClientLinks, GrantType, Offered, MAX_CLIENT_NAME_CHARS,
};
use super::RegistrationError;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::header;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::OnceCell;
use url::Url;

/// The environment variable naming hosts that may resolve to special-use
/// addresses (comma-separated), e.g. `127.0.0.1,localhost` in tests.
pub const ENV_ALLOWED_HOSTS: &str = "KEYGATE_CIMD_ALLOWED_HOSTS";
/// The environment variable naming a PEM file of extra trusted root CAs.
pub const ENV_CA_FILE: &str = "KEYGATE_CIMD_CA_FILE";
/// The most bytes of a document read (the contract's 5 KiB).
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;

/// How documents are fetched and cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CimdConfig {
    /// Hosts (as in the URL, case-insensitive; IPv6 with or without brackets)
    /// fetched even when they resolve to special-use addresses.
    pub allowed_hosts: Vec<String>,
    /// A PEM file whose certificates are trusted as roots, besides webpki's.
    pub ca_file: Option<PathBuf>,
    /// The most time to open the TCP connection (per address tried).
    pub connect_timeout: Duration,
    /// The most time for the whole fetch: resolve, connect, TLS, response, body.
    pub total_timeout: Duration,
    /// The most bytes of body read; a longer document is refused.
    pub max_body_bytes: usize,
    /// The most documents cached; the one expiring soonest is dropped first.
    pub cache_entries: usize,
    /// The TTL of a document served without `Cache-Control: max-age`.
    pub default_ttl: Duration,
    /// `max-age` (and `no-cache`/`no-store`, taken as 0) is raised to this…
    pub min_ttl: Duration,
    /// …and lowered to this.
    pub max_ttl: Duration,
}

impl Default for CimdConfig {
    fn default() -> Self {
        CimdConfig {
            allowed_hosts: Vec::new(),
            ca_file: None,
            connect_timeout: Duration::from_secs(2),
            total_timeout: Duration::from_secs(5),
            max_body_bytes: MAX_DOCUMENT_BYTES,
            cache_entries: 1000,
            default_ttl: Duration::from_secs(5 * 60),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl CimdConfig {
    /// The defaults, with [`ENV_ALLOWED_HOSTS`] and [`ENV_CA_FILE`] read from
    /// the environment (empty values are as if unset).
    pub fn from_env() -> Self {
        let allowed = std::env::var(ENV_ALLOWED_HOSTS).unwrap_or_default();
        let ca_file = std::env::var_os(ENV_CA_FILE)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        CimdConfig {
            allowed_hosts: parse_allowed_hosts(&allowed),
            ca_file,
            ..CimdConfig::default()
        }
    }
}

/// Splits a comma-separated host list (`KEYGATE_CIMD_ALLOWED_HOSTS`):
/// trimmed, lower-cased, IPv6 brackets dropped, blanks skipped.
pub fn parse_allowed_hosts(list: &str) -> Vec<String> {
    list.split(',').filter_map(normalise_host).collect()
}

fn normalise_host(h: &str) -> Option<String> {
    let h = h.trim();
    let h = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h);
    let h = h.trim_end_matches('.').to_ascii_lowercase();
    (!h.is_empty()).then_some(h)
}

/// Why a document could not be used. Never cached; cheap to clone, since every
/// caller waiting on one fetch gets the same error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CimdError {
    /// The `client_id` is not a metadata-document URL (draft §"Client
    /// Identifier URL").
    #[error("not a client ID metadata document URL: {0}")]
    NotMetadataUrl(String),
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
    #[error("fetching the document took too long")]
    Timeout,
    /// A `3xx`: redirects are not followed (draft §"Client Information
    /// Discovery").
    #[error("the document URL answered with a redirect ({0}); redirects are not followed")]
    Redirect(u16),
    #[error("the document URL answered with status {0}, not 200")]
    Status(u16),
    #[error("the document is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the document is not a JSON object: {0}")]
    NotJsonObject(String),
    /// The document's `client_id` is not exactly the URL it was fetched from.
    #[error("the document's client_id is not the URL it was fetched from")]
    ClientIdMismatch,
    /// The document is a JSON object, but its metadata is unacceptable.
    #[error("invalid client metadata document: {0}")]
    InvalidDocument(RegistrationError),
    /// The fetcher could not be built (e.g. an unreadable CA file).
    #[error("client ID metadata document fetcher: {0}")]
    Config(String),
}

/// Checks a `client_id` against the draft's rules for a client identifier URL
/// (draft §"Client Identifier URL"): the `https` scheme, a path (keygate also
/// requires it not to be just `/`), no single- or double-dot path segments, no
/// fragment, no username or password. A query and a port are allowed.
///
/// keygate also requires the URL to be in the form the URL parser writes it
/// (lower-case host, no default port, nothing to percent-encode), so the URL
/// requested is byte for byte the `client_id` the document must repeat.
pub fn parse_metadata_url(client_id: &str) -> Result<Url, CimdError> {
    let bad = |why: &str| CimdError::NotMetadataUrl(format!("{}: {why}", quoted(client_id)));
    if client_id.len() > super::metadata::MAX_URI_BYTES {
        return Err(bad("too long"));
    }
    let Some(rest) = client_id.strip_prefix("https://") else {
        return Err(bad("must start with https://"));
    };
    if client_id.contains('#') {
        return Err(bad("must not contain a fragment"));
    }
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(authority_end);
    if authority.contains('@') {
        return Err(bad("must not contain a username or password"));
    }
    let path = path_and_query.split('?').next().unwrap_or("");
    if path.is_empty() || path == "/" {
        return Err(bad("must have a path"));
    }
    let dot_segment = path.split('/').any(|seg| {
        let seg = seg.to_ascii_lowercase().replace("%2e", ".");
        seg == "." || seg == ".."
    });
    if dot_segment {
        return Err(bad("must not contain . or .. path segments"));
    }
    let url = Url::parse(client_id).map_err(|e| bad(&format!("not a URL ({e})")))?;
    if url.as_str() != client_id {
        return Err(bad(&format!(
            "must be written in normal form ({})",
            quoted(url.as_str())
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("must have a host"));
    }
    Ok(url)
}

/// Whether a `client_id` is to be treated as a client ID metadata document URL
/// (see [`parse_metadata_url`]).
pub fn is_metadata_url(client_id: &str) -> bool {
    parse_metadata_url(client_id).is_ok()
}

/// A client known by its metadata document, validated.
///
/// Such a client is always public: `token_endpoint_auth_method` `none`
/// (draft: no shared secret can be established through a document).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientDocument {
    /// The URL, equal to the document's own `client_id`.
    pub client_id: String,
    /// The host of the URL: where the client's metadata comes from, to show on
    /// the consent page.
    pub host: String,
    /// As given, or the host when absent.
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    /// The grant types listed that keygate offers; always includes
    /// `authorization_code`.
    pub grant_types: Vec<GrantType>,
    /// The scopes listed that keygate offers, space-separated; `None` when the
    /// document lists none of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(flatten)]
    pub links: ClientLinks,
}

impl ClientDocument {
    /// Always [`AuthMethod::None`].
    pub fn token_endpoint_auth_method(&self) -> AuthMethod {
        AuthMethod::None
    }

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Whether `presented` matches a listed redirect URI: exactly, or a
    /// loopback one with any port (RFC 8252 §7.3, as for registered apps).
    pub fn redirect_uri_allowed(&self, presented: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|r| redirect_uri_matches(r, presented))
    }
}

/// The members of a document keygate reads; everything else is ignored.
#[derive(Deserialize, Default)]
#[serde(default)]
struct DocumentWire {
    client_id: Option<String>,
    redirect_uris: Option<Vec<String>>,
    client_name: Option<String>,
    token_endpoint_auth_method: Option<String>,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    scope: Option<String>,
    #[serde(flatten)]
    links: ClientLinks,
    client_secret: Option<serde_json::Value>,
    client_secret_expires_at: Option<serde_json::Value>,
}

/// Validates a fetched document for `client_id` (draft §"Client ID Metadata
/// Document"): a JSON object whose `client_id` equals the URL exactly (simple
/// string comparison), with `redirect_uris` valid as for registration, for a
/// public client.
///
/// Lenient where real documents differ: unknown members, grant and response
/// types keygate does not offer, and scopes it does not offer are ignored; a
/// `token_endpoint_auth_methods_supported` that includes `none` is accepted
/// whatever the singular `token_endpoint_auth_method` says. Refused: a document
/// with a `client_secret` (draft: none may be used), or one that asks for an
/// authentication method other than `none` and does not offer `none`.
pub fn validate_document(
    client_id: &str,
    body: &[u8],
    offered: &Offered,
) -> Result<ClientDocument, CimdError> {
    let url = parse_metadata_url(client_id)?;
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| CimdError::NotJsonObject(e.to_string()))?;
    if !value.is_object() {
        return Err(CimdError::NotJsonObject("not an object".into()));
    }
    let doc: DocumentWire = serde_json::from_value(value).map_err(|e| {
        CimdError::InvalidDocument(RegistrationError::metadata(format!(
            "malformed client metadata: {e}"
        )))
    })?;
    let invalid = |m: String| CimdError::InvalidDocument(RegistrationError::metadata(m));

    if doc.client_id.as_deref() != Some(client_id) {
        return Err(CimdError::ClientIdMismatch);
    }
    if doc.client_secret.is_some() || doc.client_secret_expires_at.is_some() {
        return Err(invalid(
            "a client ID metadata document must not contain a client_secret".into(),
        ));
    }

    let public_ok = doc
        .token_endpoint_auth_methods_supported
        .as_deref()
        .is_some_and(|list| list.iter().any(|m| m == "none"))
        || matches!(
            doc.token_endpoint_auth_method.as_deref(),
            None | Some("none")
        );
    if !public_ok {
        return Err(invalid(format!(
            "token_endpoint_auth_method {} is not accepted: a client known by its \
             metadata document is public (none)",
            quoted(doc.token_endpoint_auth_method.as_deref().unwrap_or(""))
        )));
    }

    let (redirect_uris, _) =
        validate_redirect_uris(doc.redirect_uris.as_deref()).map_err(CimdError::InvalidDocument)?;

    let grant_types = match doc.grant_types.as_deref() {
        None => vec![GrantType::AuthorizationCode],
        Some(list) => {
            let mut out = Vec::new();
            for g in list.iter().filter_map(|g| GrantType::parse(g)) {
                if !out.contains(&g) {
                    out.push(g);
                }
            }
            out
        }
    };
    if !grant_types.contains(&GrantType::AuthorizationCode) {
        return Err(invalid(
            "the document's grant_types do not include authorization_code, the only \
             flow keygate offers"
                .into(),
        ));
    }
    if let Some(list) = doc.response_types.as_deref() {
        if !list.iter().any(|r| r == "code") {
            return Err(invalid(
                "the document's response_types do not include code".into(),
            ));
        }
    }

    let host = url.host_str().unwrap_or_default().to_string();
    let client_name = match doc.client_name.as_deref() {
        Some(n) => check_text("client_name", n, MAX_CLIENT_NAME_CHARS)
            .map_err(CimdError::InvalidDocument)?
            .unwrap_or_else(|| host.clone()),
        None => host.clone(),
    };

    // Only the offered scopes are kept: unlike a registration request, a
    // document is written for many servers.
    let scope = doc.scope.as_deref().map(|s| {
        s.split(' ')
            .filter(|t| offered.offers_scope(t))
            .collect::<Vec<_>>()
            .join(" ")
    });
    let scope = validate_scope(scope.as_deref(), offered).map_err(CimdError::InvalidDocument)?;

    Ok(ClientDocument {
        client_id: client_id.to_string(),
        host,
        client_name,
        redirect_uris,
        grant_types,
        scope,
        links: doc.links.validated().map_err(CimdError::InvalidDocument)?,
    })
}

/// Whether an address is special-use and never fetched (unless its host is
/// allow-listed): RFC 6890's registries as updated since, and everything in IPv6
/// outside global unicast `2000::/3`.
///
/// IPv4: 0/8 "this network", 10/8, 172.16/12, 192.168/16 (private, RFC 1918),
/// 100.64/10 (shared/CGNAT, RFC 6598), 127/8 (loopback), 169.254/16
/// (link-local), 192.0.0/24 (IETF protocol assignments), 192.0.2/24,
/// 198.51.100/24, 203.0.113/24 (documentation, RFC 5737), 192.31.196/24 and
/// 192.175.48/24 (AS112), 192.52.193/24 (AMT), 192.88.99/24 (6to4 relay
/// anycast), 198.18/15 (benchmarking, RFC 2544), 224/4 (multicast), 240/4
/// (reserved, with 255.255.255.255 broadcast).
///
/// IPv6: IPv4-mapped `::ffff:0:0/96`, NAT64 `64:ff9b::/96` (RFC 6052) and 6to4
/// `2002::/16` are judged by the IPv4 address they carry; anything outside
/// `2000::/3` is refused (`::`, `::1`, IPv4-compatible `::/96`, `64:ff9b:1::/48`,
/// discard `100::/64`, ULA `fc00::/7`, link-local `fe80::/10`, site-local
/// `fec0::/10`, multicast `ff00::/8`, …), and inside it `2001::/23` (IETF
/// protocol assignments: Teredo, benchmarking, ORCHID…), `2001:db8::/32` and
/// `3fff::/20` (documentation).
pub fn is_special_use(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_special_v4(v4),
        IpAddr::V6(v6) => is_special_v6(v6),
    }
}

fn is_special_v4(ip: Ipv4Addr) -> bool {
    const BLOCKS: [([u8; 4], u32); 18] = [
        ([0, 0, 0, 0], 8),
        ([10, 0, 0, 0], 8),
        ([100, 64, 0, 0], 10),
        ([127, 0, 0, 0], 8),
        ([169, 254, 0, 0], 16),
        ([172, 16, 0, 0], 12),
        ([192, 0, 0, 0], 24),
        ([192, 0, 2, 0], 24),
        ([192, 31, 196, 0], 24),
        ([192, 52, 193, 0], 24),
        ([192, 88, 99, 0], 24),
        ([192, 168, 0, 0], 16),
        ([192, 175, 48, 0], 24),
        ([198, 18, 0, 0], 15),
        ([198, 51, 100, 0], 24),
        ([203, 0, 113, 0], 24),
        ([224, 0, 0, 0], 4),
        ([240, 0, 0, 0], 4),
    ];
    let a = u32::from(ip);
    BLOCKS.iter().any(|(net, len)| {
        let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
        a & mask == u32::from(Ipv4Addr::from(*net)) & mask
    })
}

fn is_special_v6(ip: Ipv6Addr) -> bool {
    let in_block = |net: Ipv6Addr, len: u32| {
        let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
        u128::from(ip) & mask == u128::from(net) & mask
    };
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_special_v4(v4);
    }
    let bits = u128::from(ip);
    if in_block(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96) {
        return is_special_v4(Ipv4Addr::from(bits as u32));
    }
    if in_block(Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        return is_special_v4(Ipv4Addr::from((bits >> 80) as u32));
    }
    if !in_block(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3) {
        return true;
    }
    in_block(Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23)
        || in_block(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32)
        || in_block(Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20)
}

/// How long a fetched document is cached: `max-age` (or 0 for `no-store` /
/// `no-cache`), else the default, held within `[min_ttl, max_ttl]`
/// (draft §"Metadata Caching": the server may impose its own bounds).
pub fn cache_ttl(cache_control: Option<&str>, config: &CimdConfig) -> Duration {
    let mut ttl = None;
    for directive in cache_control.unwrap_or("").split(',') {
        let directive = directive.trim().to_ascii_lowercase();
        if directive == "no-store" || directive == "no-cache" {
            ttl = Some(Duration::ZERO);
            break;
        }
        if let Some(v) = directive.strip_prefix("max-age=") {
            if let Ok(secs) = v.trim_matches('"').parse::<u64>() {
                ttl = Some(Duration::from_secs(secs));
            }
        }
    }
    ttl.unwrap_or(config.default_ttl)
        .max(config.min_ttl)
        .min(config.max_ttl)
}

type Shared = Result<(Arc<ClientDocument>, Duration), CimdError>;

struct Cached {
    doc: Arc<ClientDocument>,
    expires: Instant,
}

#[derive(Default)]
struct State {
    cache: HashMap<String, Cached>,
    in_flight: HashMap<String, Arc<OnceCell<Shared>>>,
}

struct Inner {
    config: CimdConfig,
    offered: Offered,
    allowed_hosts: HashSet<String>,
    tls: Arc<ClientConfig>,
    state: Mutex<State>,
}

/// Fetches, validates and caches client ID metadata documents. Cheap to clone
/// (shared state); build one per server.
#[derive(Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    /// Builds a fetcher; fails only if the CA file cannot be read or holds no
    /// certificate.
    pub fn new(config: CimdConfig, offered: Offered) -> Result<Self, CimdError> {
        let tls = tls_config(config.ca_file.as_deref())?;
        let allowed_hosts = config
            .allowed_hosts
            .iter()
            .filter_map(|h| normalise_host(h))
            .collect();
        Ok(Fetcher {
            inner: Arc::new(Inner {
                config,
                offered,
                allowed_hosts,
                tls,
                state: Mutex::new(State::default()),
            }),
        })
    }

    pub fn config(&self) -> &CimdConfig {
        &self.inner.config
    }

    /// The validated document of `client_id`, from the cache or fetched.
    ///
    /// Only one fetch of a URL runs at a time; callers arriving meanwhile wait
    /// for its result (if the fetching caller is dropped, a waiting one takes
    /// over). A good document is cached; an error never is.
    pub async fn fetch(&self, client_id: &str) -> Result<Arc<ClientDocument>, CimdError> {
        let url = parse_metadata_url(client_id)?;
        let cell = {
            let mut state = self.lock();
            match state.cache.get(client_id) {
                Some(c) if c.expires > Instant::now() => return Ok(c.doc.clone()),
                Some(_) => {
                    state.cache.remove(client_id);
                }
                None => {}
            }
            state
                .in_flight
                .entry(client_id.to_string())
                .or_default()
                .clone()
        };

        // If every caller is dropped before the fetch ends, the guard removes
        // the unfinished entry, so cancelled fetches leave nothing behind.
        let guard = InFlightGuard {
            fetcher: self,
            client_id,
            cell,
        };
        let result = guard
            .cell
            .get_or_init(|| self.load(url, client_id))
            .await
            .clone();

        let mut state = self.lock();
        if state
            .in_flight
            .get(client_id)
            .is_some_and(|c| Arc::ptr_eq(c, &guard.cell))
        {
            state.in_flight.remove(client_id);
            if let Ok((doc, ttl)) = &result {
                self.store(&mut state, client_id, doc.clone(), *ttl);
            }
        }
        drop(state);
        result.map(|(doc, _)| doc)
    }

    /// Drops a cached document (e.g. after an administrator blocks a client).
    pub fn forget(&self, client_id: &str) {
        self.lock().cache.remove(client_id);
    }

    /// How many documents are cached (expired ones included until evicted).
    pub fn cached_len(&self) -> usize {
        self.lock().cache.len()
    }

    /// How many fetches are under way (distinct URLs).
    pub fn in_flight_len(&self) -> usize {
        self.lock().in_flight.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn store(&self, state: &mut State, client_id: &str, doc: Arc<ClientDocument>, ttl: Duration) {
        let cap = self.inner.config.cache_entries;
        if cap == 0 || ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        if state.cache.len() >= cap && !state.cache.contains_key(client_id) {
            state.cache.retain(|_, c| c.expires > now);
        }
        while state.cache.len() >= cap && !state.cache.contains_key(client_id) {
            let soonest = state
                .cache
                .iter()
                .min_by_key(|(_, c)| c.expires)
                .map(|(k, _)| k.clone());
            match soonest {
                Some(k) => {
                    state.cache.remove(&k);
                }
                None => break,
            }
        }
        state.cache.insert(
            client_id.to_string(),
            Cached {
                doc,
                expires: now + ttl,
            },
        );
    }

    async fn load(&self, url: Url, client_id: &str) -> Shared {
        let config = &self.inner.config;
        let fetched = tokio::time::timeout(config.total_timeout, self.get(&url))
            .await
            .unwrap_or(Err(CimdError::Timeout));
        let (body, cache_control) = match fetched {
            Ok(ok) => ok,
            Err(e) => {
                log::info!("client metadata document {client_id}: {e}");
                return Err(e);
            }
        };
        match validate_document(client_id, &body, &self.inner.offered) {
            Ok(doc) => Ok((Arc::new(doc), cache_ttl(cache_control.as_deref(), config))),
            Err(e) => {
                log::info!("client metadata document {client_id}: {e}");
                Err(e)
            }
        }
    }

    /// One `GET` of `url`: the body (at most `max_body_bytes`) and the
    /// `Cache-Control` header of a `200` response.
    async fn get(&self, url: &Url) -> Result<(Vec<u8>, Option<String>), CimdError> {
        let config = &self.inner.config;
        let host = url
            .host()
            .ok_or_else(|| CimdError::NotMetadataUrl(url.to_string()))?;
        let host_str = url.host_str().unwrap_or_default().to_string();
        let port = url.port_or_known_default().unwrap_or(443);

        // Resolve here, check, and connect only to what was checked.
        let addrs: Vec<SocketAddr> = match &host {
            url::Host::Ipv4(ip) => vec![SocketAddr::new(IpAddr::V4(*ip), port)],
            url::Host::Ipv6(ip) => vec![SocketAddr::new(IpAddr::V6(*ip), port)],
            url::Host::Domain(d) => tokio::net::lookup_host((*d, port))
                .await
                .map_err(|e| CimdError::Resolve {
                    host: host_str.clone(),
                    reason: e.to_string(),
                })?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(CimdError::Resolve {
                host: host_str,
                reason: "no addresses".into(),
            });
        }
        let allowed =
            normalise_host(&host_str).is_some_and(|h| self.inner.allowed_hosts.contains(&h));
        if !allowed {
            // Refuse the host if any of its addresses is special-use.
            if let Some(bad) = addrs.iter().find(|a| is_special_use(a.ip())) {
                return Err(CimdError::ForbiddenAddress {
                    host: host_str,
                    addr: bad.ip(),
                });
            }
        }

        let tcp = connect_any(&addrs, config.connect_timeout, &host_str).await?;
        let server_name = match host {
            url::Host::Domain(d) => {
                ServerName::try_from(d.to_string()).map_err(|e| CimdError::Tls {
                    host: host_str.clone(),
                    reason: e.to_string(),
                })?
            }
            url::Host::Ipv4(ip) => ServerName::IpAddress(IpAddr::V4(ip).into()),
            url::Host::Ipv6(ip) => ServerName::IpAddress(IpAddr::V6(ip).into()),
        };
        let tls = tokio_rustls::TlsConnector::from(self.inner.tls.clone())
            .connect(server_name, tcp)
            .await
            .map_err(|e| CimdError::Tls {
                host: host_str.clone(),
                reason: e.to_string(),
            })?;

        // Small buffers: a document is at most a few KiB, and so are its headers.
        let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
            .max_header_size(8 * 1024)
            .max_buf_size(16 * 1024)
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|e| CimdError::Http(e.to_string()))?;
        let authority = match url.port() {
            Some(p) => format!("{host_str}:{p}"),
            None => host_str.clone(),
        };
        let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
        let request = hyper::Request::get(target)
            .header(header::HOST, authority)
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("keygate/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| CimdError::Http(e.to_string()))?;

        let max = config.max_body_bytes;
        let exchange = async move {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| CimdError::Http(e.to_string()))?;
            let status = response.status().as_u16();
            if (300..400).contains(&status) {
                return Err(CimdError::Redirect(status));
            }
            if status != 200 {
                return Err(CimdError::Status(status));
            }
            let declared = response
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if declared.is_some_and(|n| n > max as u64) {
                return Err(CimdError::TooLarge(max));
            }
            let cache_control = response
                .headers()
                .get_all(header::CACHE_CONTROL)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
                .join(",");
            let mut body = response.into_body();
            let mut buf = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| CimdError::Http(e.to_string()))?;
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > max {
                        // Stop reading; dropping the connection discards the rest.
                        return Err(CimdError::TooLarge(max));
                    }
                    buf.extend_from_slice(&data);
                }
            }
            Ok((buf, (!cache_control.is_empty()).then_some(cache_control)))
        };
        drive(conn, exchange).await
    }
}

/// Removes an in-flight entry nobody else waits on when its caller goes away.
struct InFlightGuard<'a> {
    fetcher: &'a Fetcher,
    client_id: &'a str,
    cell: Arc<OnceCell<Shared>>,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.fetcher.lock();
        // New waiters clone the entry only under this lock, so the count is
        // exact here: 2 means the map's and ours.
        let abandoned = state.in_flight.get(self.client_id).is_some_and(|c| {
            Arc::ptr_eq(c, &self.cell)
                && (self.cell.initialized() || Arc::strong_count(&self.cell) <= 2)
        });
        if abandoned {
            state.in_flight.remove(self.client_id);
        }
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
) -> Result<TcpStream, CimdError> {
    let mut last = String::from("no address");
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(_) => last = format!("{addr}: timed out"),
        }
    }
    Err(CimdError::Connect {
        host: host.to_string(),
        reason: last,
    })
}

/// TLS for fetching documents: aws-lc-rs, rustls' safe defaults, HTTP/1.1, the
/// webpki roots plus those of `ca_file`.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, CimdError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        let display = path.display();
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| CimdError::Config(format!("cannot read {display}: {e}")))?;
        let mut added = 0;
        for cert in certs {
            let cert =
                cert.map_err(|e| CimdError::Config(format!("cannot read {display}: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| CimdError::Config(format!("{display}: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(CimdError::Config(format!("{display} holds no certificate")));
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CimdError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "https://app.example.com/oauth/client.json";

    fn offered() -> Offered {
        Offered::new(["read", "write"])
    }

    fn doc(v: serde_json::Value) -> Result<ClientDocument, CimdError> {
        validate_document(ID, v.to_string().as_bytes(), &offered())
    }

    fn base() -> serde_json::Value {
        json!({"client_id": ID, "redirect_uris": ["https://app.example.com/cb"]})
    }

    #[test]
    fn metadata_urls() {
        for good in [
            "https://app.example.com/client.json",
            "https://app.example.com/oauth/client-metadata",
            "https://app.example.com:8443/c",
            "https://app.example.com/c?v=2",
            "https://127.0.0.1/c",
            "https://[2001:db8::1]/c",
            "https://app.example.com/a/",
        ] {
            assert!(is_metadata_url(good), "{good}");
        }
        for bad in [
            "",
            "abc",
            "a-uuid-like-0190f0c2-7e7d-7c7a-9c1b-2b1b5a1e0f00",
            "http://app.example.com/client.json",
            "HTTPS://app.example.com/client.json",
            "https://app.example.com",
            "https://app.example.com/",
            "https://app.example.com?x=1",
            "https://app.example.com/c#frag",
            "https://app.example.com/c#",
            "https://user@app.example.com/c",
            "https://user:pw@app.example.com/c",
            "https://app.example.com/./c",
            "https://app.example.com/a/../c",
            "https://app.example.com/a/%2E%2E/c",
            "https://app.example.com/a/%2e/c",
            "https://app.example.com/..",
            "https://App.Example.com/c",
            "https://app.example.com:443/c",
            "https://app.example.com/a b",
            "https://app.example.com/é",
            "https:///c",
            "https://:443/c",
        ] {
            assert!(!is_metadata_url(bad), "{bad}");
        }
        let long = format!("https://a.example/{}", "é".repeat(2000));
        assert!(!is_metadata_url(&long));
    }

    #[test]
    fn good_document() {
        let d = doc(json!({
            "client_id": ID,
            "client_name": "Example App",
            "redirect_uris": ["https://app.example.com/cb", "http://127.0.0.1/cb"],
            "grant_types": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:jwt-bearer", "client_credentials"],
            "response_types": ["code", "token"],
            "token_endpoint_auth_method": "none",
            "scope": "read openid write email",
            "logo_uri": "https://app.example.com/logo.png",
            "client_uri": "https://app.example.com/",
            "software_statement": "eyJ...",
            "jwks_uri": "https://app.example.com/jwks"
        }))
        .unwrap();
        assert_eq!(d.client_id, ID);
        assert_eq!(d.host, "app.example.com");
        assert_eq!(d.client_name, "Example App");
        assert_eq!(d.token_endpoint_auth_method(), AuthMethod::None);
        assert_eq!(
            d.grant_types,
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        assert!(d.allows_grant(GrantType::RefreshToken));
        assert_eq!(d.scope.as_deref(), Some("read write"));
        assert!(d.redirect_uri_allowed("https://app.example.com/cb"));
        assert!(d.redirect_uri_allowed("http://127.0.0.1:33333/cb"));
        assert!(!d.redirect_uri_allowed("https://app.example.com/cb/"));
    }

    #[test]
    fn defaults_for_a_minimal_document() {
        let d = doc(base()).unwrap();
        assert_eq!(d.client_name, "app.example.com");
        assert_eq!(d.grant_types, vec![GrantType::AuthorizationCode]);
        assert_eq!(d.scope, None);
        let mut v = base();
        v["scope"] = json!("openid email");
        assert_eq!(doc(v).unwrap().scope, None);
        let mut v = base();
        v["client_name"] = json!("  ");
        assert_eq!(doc(v).unwrap().client_name, "app.example.com");
    }

    #[test]
    fn client_id_must_equal_the_url_exactly() {
        for other in [
            json!("https://app.example.com/oauth/client.json/"),
            json!("https://APP.example.com/oauth/client.json"),
            json!("https://app.example.com/oauth/client.json?x"),
            json!("https://evil.example/oauth/client.json"),
            json!(null),
        ] {
            let mut v = base();
            v["client_id"] = other.clone();
            assert_eq!(doc(v), Err(CimdError::ClientIdMismatch), "{other}");
        }
        let mut v = base();
        v.as_object_mut().unwrap().remove("client_id");
        assert_eq!(doc(v), Err(CimdError::ClientIdMismatch));
        let mut v = base();
        v["client_id"] = json!(5);
        assert!(matches!(doc(v), Err(CimdError::InvalidDocument(_))));
    }

    #[test]
    fn auth_methods() {
        let with = |single: Option<&str>, list: Option<serde_json::Value>| {
            let mut v = base();
            if let Some(s) = single {
                v["token_endpoint_auth_method"] = json!(s);
            }
            if let Some(l) = list {
                v["token_endpoint_auth_methods_supported"] = l;
            }
            doc(v)
        };
        assert!(with(None, None).is_ok());
        assert!(with(Some("none"), None).is_ok());
        // ChatGPT-style: several listed, none among them.
        assert!(with(
            Some("client_secret_post"),
            Some(json!(["client_secret_post", "none", "private_key_jwt"]))
        )
        .is_ok());
        assert!(with(None, Some(json!(["none"]))).is_ok());
        assert!(with(Some("client_secret_basic"), None).is_err());
        assert!(with(Some("private_key_jwt"), Some(json!(["private_key_jwt"]))).is_err());
        assert!(with(Some("none"), Some(json!(["private_key_jwt"]))).is_ok());
        let mut v = base();
        v["client_secret"] = json!("s3cret");
        assert!(matches!(doc(v), Err(CimdError::InvalidDocument(_))));
    }

    #[test]
    fn bad_documents() {
        assert!(matches!(
            validate_document(ID, b"[1]", &offered()),
            Err(CimdError::NotJsonObject(_))
        ));
        assert!(matches!(
            validate_document(ID, b"not json", &offered()),
            Err(CimdError::NotJsonObject(_))
        ));
        assert!(matches!(
            validate_document(ID, b"\xff\xfe", &offered()),
            Err(CimdError::NotJsonObject(_))
        ));
        assert!(matches!(
            validate_document("https://a.example", b"{}", &offered()),
            Err(CimdError::NotMetadataUrl(_))
        ));
        for (k, v) in [
            ("redirect_uris", json!(null)),
            ("redirect_uris", json!([])),
            ("redirect_uris", json!(["http://localhost/cb"])),
            ("redirect_uris", json!(["https://app.example.com/cb#x"])),
            ("redirect_uris", json!(["javascript:alert(1)"])),
            ("redirect_uris", json!("https://app.example.com/cb")),
            ("grant_types", json!(["client_credentials"])),
            ("grant_types", json!([])),
            ("grant_types", json!("authorization_code")),
            ("response_types", json!(["token"])),
            ("client_name", json!("bad\u{202E}name")),
            ("client_name", json!(7)),
            ("logo_uri", json!("http://app.example.com/logo.png")),
            ("scope", json!(["read"])),
        ] {
            let mut d = base();
            d[k] = v.clone();
            assert!(
                matches!(doc(d), Err(CimdError::InvalidDocument(_))),
                "{k}: {v}"
            );
        }
    }

    #[test]
    fn special_use_addresses() {
        for a in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.31.196.1",
            "192.52.193.1",
            "192.88.99.1",
            "192.168.1.1",
            "192.175.48.6",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "100::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "2001::1",
            "2001:2::1",
            "2001:10::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
            "3fff::1",
            "5f00::1",
            "::ffff:0:7f00:1",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            assert!(is_special_use(ip), "{a} should be special-use");
        }
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.0.1.1",
            "192.169.0.1",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:4860::8888",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            assert!(!is_special_use(ip), "{a} should be public");
        }
    }

    #[test]
    fn ttl_from_cache_control() {
        let c = CimdConfig {
            default_ttl: Duration::from_secs(300),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(3600),
            ..CimdConfig::default()
        };
        let t = |h: Option<&str>| cache_ttl(h, &c).as_secs();
        assert_eq!(t(None), 300);
        assert_eq!(t(Some("public")), 300);
        assert_eq!(t(Some("max-age=600")), 600);
        assert_eq!(t(Some("public, Max-Age=\"900\"")), 900);
        assert_eq!(t(Some("max-age=5")), 60);
        assert_eq!(t(Some("max-age=999999999999")), 3600);
        assert_eq!(t(Some("no-store")), 60);
        assert_eq!(t(Some("max-age=600, no-cache")), 60);
        assert_eq!(t(Some("max-age=abc")), 300);
        assert_eq!(t(Some("max-age=-1")), 300);
        // Bounds that cross never panic; the maximum wins.
        let odd = CimdConfig {
            min_ttl: Duration::from_secs(100),
            max_ttl: Duration::from_secs(10),
            ..c
        };
        assert_eq!(cache_ttl(Some("max-age=50"), &odd).as_secs(), 10);
    }

    #[test]
    fn allowed_hosts_parsing() {
        assert_eq!(
            parse_allowed_hosts(" 127.0.0.1, LocalHost ,,[::1], example.com. "),
            vec!["127.0.0.1", "localhost", "::1", "example.com"]
        );
        assert!(parse_allowed_hosts("").is_empty());
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_a_config_error() {
        let c = CimdConfig {
            ca_file: Some(PathBuf::from("/nonexistent/keygate-ca.pem")),
            ..CimdConfig::default()
        };
        assert!(matches!(
            Fetcher::new(c, offered()),
            Err(CimdError::Config(_))
        ));
        let path =
            std::env::temp_dir().join(format!("keygate-empty-ca-{}.pem", std::process::id()));
        std::fs::write(&path, "not a pem\n").unwrap();
        let c = CimdConfig {
            ca_file: Some(path.clone()),
            ..CimdConfig::default()
        };
        let r = Fetcher::new(c, offered());
        let _ = std::fs::remove_file(&path);
        assert!(matches!(r, Err(CimdError::Config(_))));
        assert!(Fetcher::new(CimdConfig::default(), offered()).is_ok());
    }
}
