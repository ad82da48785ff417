//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document):
//! a client whose `client_id` is an `https` URL publishes its metadata there,
//! and the authorization server fetches it instead of keeping a registration.
//!
//! Fetching a URL the client chose is a server-side request forgery surface
//! (draft §"Server-Side Request Forgery (SSRF) Attacks"), so [`Fetcher`] fetches
//! through the one outbound HTTPS client, [`crate::outbound`]: special-use
//! addresses refused before connecting (hosts named in
//! `KEYGATE_CIMD_ALLOWED_HOSTS` excepted), no redirects, connect and total time
//! bounded, TLS verified against the webpki roots plus, optionally, one extra
//! root from `KEYGATE_CIMD_CA_FILE` (for tests and private deployments). On top
//! of it, a document:
//!
//! * is accepted only as a `200` with a JSON object, of at most 5 KiB (draft:
//!   "the authorization server SHOULD limit the size of the response");
//! * is fetched once at a time per URL: concurrent callers wait for the same
//!   result; good documents are cached (bounded count, TTL from `Cache-Control`
//!   within bounds, draft §"Metadata Caching"), a failure never is.

use super::metadata::{
    check_text, quoted, redirect_uri_matches, validate_redirect_uris, validate_scope, AuthMethod,
    ClientLinks, GrantType, Offered, MAX_CLIENT_NAME_CHARS,
};
use super::RegistrationError;
use crate::outbound::{self, OutboundError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;
use url::Url;

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

/// Why a document could not be used. Never cached; cheap to clone, since every
/// caller waiting on one fetch gets the same error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CimdError {
    /// The `client_id` is not a metadata-document URL (draft §"Client
    /// Identifier URL").
    #[error("not a client ID metadata document URL: {0}")]
    NotMetadataUrl(String),
    /// The document could not be fetched (the one outbound client's error).
    #[error("fetching the document failed: {0}")]
    Fetch(OutboundError),
    #[error("the document is not a JSON object: {0}")]
    NotJsonObject(String),
    /// The document's `client_id` is not exactly the URL it was fetched from.
    #[error("the document's client_id is not the URL it was fetched from")]
    ClientIdMismatch,
    /// The document is a JSON object, but its metadata is unacceptable.
    #[error("invalid client metadata document: {0}")]
    InvalidDocument(RegistrationError),
}

impl CimdError {
    /// What a caller who is not signed in may be told: what keygate found
    /// wrong in a document it read, but nothing of the fetch itself (no
    /// resolved address, no connection, TLS, timing or status detail: those
    /// would make keygate a probe of other hosts). The full error goes to the
    /// log.
    pub fn public_message(&self) -> String {
        match self {
            CimdError::NotMetadataUrl(_)
            | CimdError::NotJsonObject(_)
            | CimdError::ClientIdMismatch
            | CimdError::InvalidDocument(_) => self.to_string(),
            CimdError::Fetch(_) => "the document could not be fetched".to_string(),
        }
    }
}

impl From<OutboundError> for CimdError {
    fn from(e: OutboundError) -> Self {
        match e {
            OutboundError::BadUrl(url) => CimdError::NotMetadataUrl(url),
            other => CimdError::Fetch(other),
        }
    }
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
    // Every token request asks: keygate's own ids are answered without a parse.
    client_id.starts_with("https://") && parse_metadata_url(client_id).is_ok()
}

/// A client known by its metadata document, validated.
///
/// Such a client is always public: `token_endpoint_auth_method` `none`
/// (draft: no shared secret can be established through a document).
/// Deserialised only from what keygate itself wrote (a held consent request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Where the client publishes its keys, when it lists `private_key_jwt`
    /// (RFC 7523 §2.2): an assertion it sends is verified with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Whether the document lets the client authenticate with `none` (else
    /// it must send an assertion).
    #[serde(default = "yes")]
    pub none_allowed: bool,
}

fn yes() -> bool {
    true
}

impl ClientDocument {
    /// [`AuthMethod::None`], or [`AuthMethod::PrivateKeyJwt`] for a document
    /// that does not allow `none`.
    pub fn token_endpoint_auth_method(&self) -> AuthMethod {
        if self.none_allowed {
            AuthMethod::None
        } else {
            AuthMethod::PrivateKeyJwt
        }
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
    jwks_uri: Option<String>,
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

    let lists = |method: &str| {
        doc.token_endpoint_auth_methods_supported
            .as_deref()
            .is_some_and(|list| list.iter().any(|m| m == method))
    };
    let public_ok = lists("none")
        || matches!(
            doc.token_endpoint_auth_method.as_deref(),
            None | Some("none")
        );
    let keyed = lists("private_key_jwt")
        || doc.token_endpoint_auth_method.as_deref() == Some("private_key_jwt");
    // A document that asks for private_key_jwt and does not name none
    // anywhere must authenticate with its keys.
    let public_ok = public_ok
        && !(keyed && !lists("none") && doc.token_endpoint_auth_method.as_deref() != Some("none"));
    let jwks_uri = match (keyed, doc.jwks_uri.as_deref()) {
        (true, Some(uri)) => {
            crate::credentials::jose::check_jwks_uri(uri).map_err(invalid)?;
            Some(uri.to_string())
        }
        (true, None) if !public_ok => {
            return Err(invalid("private_key_jwt needs a jwks_uri".into()));
        }
        _ => None,
    };
    if !public_ok && jwks_uri.is_none() {
        return Err(invalid(format!(
            "token_endpoint_auth_method {} is not accepted: a client known by its \
             metadata document is public (none) or uses private_key_jwt with a jwks_uri",
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
        none_allowed: public_ok,
        jwks_uri,
    })
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
    client: outbound::Client,
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
        let ca_files: Vec<&std::path::Path> = config.ca_file.iter().map(|p| p.as_path()).collect();
        let client = outbound::Client::new(&config.allowed_hosts, &ca_files)?;
        Ok(Self::with_client(config, offered, client))
    }

    /// A fetcher over the node's one outbound client (whose allowed hosts and
    /// CA files are then the ones that count, not `config`'s).
    pub fn with_client(config: CimdConfig, offered: Offered, client: outbound::Client) -> Self {
        Fetcher {
            inner: Arc::new(Inner {
                config,
                offered,
                client,
                state: Mutex::new(State::default()),
            }),
        }
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

    /// The cached document of `client_id`, if one is cached and fresh: using
    /// it costs no fetch.
    pub fn cached(&self, client_id: &str) -> Option<Arc<ClientDocument>> {
        match self.lock().cache.get(client_id) {
            Some(c) if c.expires > Instant::now() => Some(c.doc.clone()),
            _ => None,
        }
    }

    /// Drops a cached document (e.g. after an administrator blocks a client).
    pub fn forget(&self, client_id: &str) {
        self.lock().cache.remove(client_id);
    }

    /// Drops every cached document (the node missed revocation events, so
    /// any of them may be out of date).
    pub fn forget_all(&self) {
        self.lock().cache.clear();
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
        let limits = outbound::Limits {
            connect_timeout: config.connect_timeout,
            total_timeout: config.total_timeout,
            max_body_bytes: config.max_body_bytes,
        };
        let response = match self.inner.client.get_json(&url, &limits).await {
            Ok(response) => response,
            Err(e) => {
                let e = CimdError::from(e);
                log::info!("client metadata document {client_id}: {e}");
                return Err(e);
            }
        };
        let cache_control = response.header_list(hyper::header::CACHE_CONTROL);
        match validate_document(client_id, &response.body, &self.inner.offered) {
            Ok(doc) => Ok((Arc::new(doc), cache_ttl(cache_control.as_deref(), config))),
            Err(e) => {
                log::info!("client metadata document {client_id}: {e}");
                Err(e)
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::net::IpAddr;

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
    fn public_messages_say_nothing_of_the_fetch() {
        let addr: IpAddr = "10.1.2.3".parse().unwrap();
        for e in [
            CimdError::Fetch(OutboundError::ForbiddenAddress {
                host: "intranet.example".into(),
                addr,
            }),
            CimdError::Fetch(OutboundError::Resolve {
                host: "intranet.example".into(),
                reason: "no such host".into(),
            }),
            CimdError::Fetch(OutboundError::Connect {
                host: "intranet.example".into(),
                reason: "connection refused (os error 111)".into(),
            }),
            CimdError::Fetch(OutboundError::Tls {
                host: "intranet.example".into(),
                reason: "bad certificate".into(),
            }),
            CimdError::Fetch(OutboundError::Timeout),
            CimdError::Fetch(OutboundError::Redirect(302)),
            CimdError::Fetch(OutboundError::Status(404)),
            CimdError::Fetch(OutboundError::TooLarge(MAX_DOCUMENT_BYTES)),
        ] {
            let shown = e.public_message();
            assert_eq!(shown, "the document could not be fetched", "{e:?}");
        }
        // What keygate found wrong in a document it read is shown.
        assert!(CimdError::ClientIdMismatch
            .public_message()
            .contains("client_id is not the URL"));
        assert!(doc(json!({"client_id": ID, "redirect_uris": []}))
            .unwrap_err()
            .public_message()
            .contains("redirect"));
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
}
