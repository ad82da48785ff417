//! RFC 7591 client metadata: the registration request, its validation, and the
//! redirect-URI rules keygate applies to every app that registered itself.
//!
//! Redirect URIs (RFC 8252 for native apps, RFC 6749 §3.1.2 for all):
//!
//! * `https` with a host, no userinfo;
//! * loopback `http` on the IP literals `127.0.0.1` or `[::1]` (RFC 8252 §7.3),
//!   which match with any port at authorization time ([`redirect_uri_matches`]);
//!   `http://localhost` is refused (RFC 8252 §8.3);
//! * a private-use scheme in reverse-domain form, such as `com.example.app:/cb`
//!   (RFC 8252 §7.1);
//! * never a fragment (RFC 6749 §3.1.2), never another scheme.
//!
//! URIs are kept exactly as the client wrote them (they are compared as strings),
//! so only printable ASCII is accepted: a URI that a parser would silently rewrite
//! (whitespace, backslashes, `https:/host`) is refused rather than normalised.

use super::RegistrationError;
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, Ipv6Addr};

/// At most this many redirect URIs per client.
pub const MAX_REDIRECT_URIS: usize = 10;
/// At most this many bytes per redirect URI (and per other URI member).
pub const MAX_URI_BYTES: usize = 2000;
/// At most this many characters in `client_name`.
pub const MAX_CLIENT_NAME_CHARS: usize = 100;
/// At most this many `contacts`, each at most [`MAX_CONTACT_CHARS`] characters.
pub const MAX_CONTACTS: usize = 10;
/// See [`MAX_CONTACTS`].
pub const MAX_CONTACT_CHARS: usize = 320;
/// At most this many characters in `software_id` and `software_version`.
pub const MAX_SOFTWARE_CHARS: usize = 200;
/// At most this many bytes in `scope`.
pub const MAX_SCOPE_BYTES: usize = 1000;

/// The client metadata of an RFC 7591 §3.1 registration request (§2 members).
///
/// Unknown members are ignored (§2: "the authorization server MUST ignore any
/// client metadata sent by the client that it does not understand"); `null` is
/// taken as absent; a known member of the wrong JSON type is an error
/// (`invalid_client_metadata`). Parse with [`ClientMetadataRequest::from_json`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ClientMetadataRequest {
    pub redirect_uris: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub client_name: Option<String>,
    #[serde(flatten)]
    pub links: ClientLinks,
    pub scope: Option<String>,
    pub contacts: Option<Vec<String>>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
    /// RFC 7591 §2: the client's keys, for `private_key_jwt`.
    pub jwks: Option<serde_json::Value>,
    pub jwks_uri: Option<String>,
}

impl ClientMetadataRequest {
    /// Parses a registration request body: a JSON object (RFC 7591 §3.1).
    /// Anything else (an array, a scalar, malformed JSON, a member of the wrong
    /// type, a member given twice) is `invalid_client_metadata`.
    pub fn from_json(body: &[u8]) -> Result<Self, RegistrationError> {
        let first = body
            .iter()
            .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
        if first != Some(&b'{') {
            return Err(RegistrationError::metadata(
                "the request body must be a JSON object (RFC 7591 §3.1)",
            ));
        }
        serde_json::from_slice(body)
            .map_err(|e| RegistrationError::metadata(format!("malformed client metadata: {e}")))
    }
}

/// What keygate offers to registered clients; validation checks against it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offered {
    scopes: Vec<String>,
}

impl Offered {
    /// The scopes a client may register (and later request).
    pub fn new<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Offered {
            scopes: scopes.into_iter().map(Into::into).collect(),
        }
    }

    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    pub fn offers_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// `token_endpoint_auth_method` values keygate supports (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A public client: no secret (native and browser apps).
    None,
    /// HTTP Basic with `client_id` and `client_secret` (the RFC 7591 default).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A JWT signed with one of the client's keys (RFC 7523 §2.2).
    PrivateKeyJwt,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(AuthMethod::None),
            "client_secret_basic" => Some(AuthMethod::ClientSecretBasic),
            "client_secret_post" => Some(AuthMethod::ClientSecretPost),
            "private_key_jwt" => Some(AuthMethod::PrivateKeyJwt),
            _ => None,
        }
    }

    /// Whether the client is public (gets no secret).
    pub fn is_public(self) -> bool {
        self == AuthMethod::None
    }
}

/// `grant_types` keygate offers (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
}

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authorization_code" => Some(GrantType::AuthorizationCode),
            "refresh_token" => Some(GrantType::RefreshToken),
            _ => None,
        }
    }
}

/// `response_types` keygate offers (RFC 7591 §2): only the code flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseType {
    Code,
}

/// A client's metadata after validation, with defaults filled in.
///
/// Serialises to the registered-metadata members of the RFC 7591 §3.2.1
/// response (the caller adds `client_id`, `client_id_issued_at`, the secret and
/// the RFC 7592 members).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidatedClient {
    /// As given (exact strings), duplicates removed, order kept.
    pub redirect_uris: Vec<String>,
    /// As given (trimmed), or derived from the first redirect URI.
    pub client_name: String,
    /// `true` when `client_name` was not given and was derived.
    #[serde(skip)]
    pub client_name_derived: bool,
    pub token_endpoint_auth_method: AuthMethod,
    pub grant_types: Vec<GrantType>,
    pub response_types: Vec<ResponseType>,
    /// Space-separated, each member offered, duplicates removed; `None` when
    /// the client registered no scope (RFC 7591 §2 leaves the default to the
    /// server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(flatten)]
    pub links: ClientLinks,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// The keys of a `private_key_jwt` client: one of the two, never both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
}

impl ValidatedClient {
    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method.is_public()
    }

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// The registered scope members, if any.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
    }

    /// Whether `presented` matches one of the registered redirect URIs
    /// (see [`redirect_uri_matches`]).
    pub fn redirect_uri_allowed(&self, presented: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|r| redirect_uri_matches(r, presented))
    }
}

/// Validates a registration request against RFC 7591 §2 and keygate's rules,
/// filling in the defaults of §2: `token_endpoint_auth_method`
/// `client_secret_basic`, `grant_types` `["authorization_code"]`,
/// `response_types` `["code"]`.
///
/// Errors: [`RegistrationError::InvalidRedirectUri`] for any problem with
/// `redirect_uris`, [`RegistrationError::InvalidClientMetadata`] for the rest
/// (RFC 7591 §3.2.2).
pub fn validate(
    req: &ClientMetadataRequest,
    offered: &Offered,
) -> Result<ValidatedClient, RegistrationError> {
    let (redirect_uris, first_kind) = validate_redirect_uris(req.redirect_uris.as_deref())?;

    let token_endpoint_auth_method = match req.token_endpoint_auth_method.as_deref() {
        None => AuthMethod::ClientSecretBasic,
        Some(m) => AuthMethod::parse(m).ok_or_else(|| {
            RegistrationError::metadata(format!(
                "token_endpoint_auth_method {} is not supported; use none, \
                 client_secret_basic, client_secret_post or private_key_jwt",
                quoted(m)
            ))
        })?,
    };

    let grant_types = match req.grant_types.as_deref() {
        None => vec![GrantType::AuthorizationCode],
        Some(list) => {
            if list.is_empty() {
                return Err(RegistrationError::metadata(
                    "grant_types must not be empty (omit it for authorization_code)",
                ));
            }
            let mut out = Vec::new();
            for g in list {
                let g = GrantType::parse(g).ok_or_else(|| {
                    RegistrationError::metadata(format!(
                        "grant type {} is not supported; keygate offers \
                         authorization_code and refresh_token",
                        quoted(g)
                    ))
                })?;
                if !out.contains(&g) {
                    out.push(g);
                }
            }
            out
        }
    };

    let response_types = match req.response_types.as_deref() {
        None => vec![ResponseType::Code],
        Some(list) => {
            if list.is_empty() {
                return Err(RegistrationError::metadata(
                    "response_types must not be empty (omit it for code)",
                ));
            }
            for r in list {
                if r != "code" {
                    return Err(RegistrationError::metadata(format!(
                        "response type {} is not supported; keygate offers only code",
                        quoted(r)
                    )));
                }
            }
            vec![ResponseType::Code]
        }
    };

    // RFC 7591 §2.1: the authorization_code grant goes with the code response
    // type, and the other way round.
    let code_grant = grant_types.contains(&GrantType::AuthorizationCode);
    let code_response = response_types.contains(&ResponseType::Code);
    if code_grant != code_response {
        return Err(RegistrationError::metadata(
            "grant_types and response_types are inconsistent: the authorization_code \
             grant and the code response type go together (RFC 7591 §2.1)",
        ));
    }

    let (client_name, client_name_derived) = match req.client_name.as_deref() {
        Some(name) => match check_text("client_name", name, MAX_CLIENT_NAME_CHARS)? {
            Some(name) => (name, false),
            None => (first_kind.default_name(), true),
        },
        None => (first_kind.default_name(), true),
    };

    let scope = validate_scope(req.scope.as_deref(), offered)?;

    let contacts = match req.contacts.as_deref() {
        None => Vec::new(),
        Some(list) => {
            if list.len() > MAX_CONTACTS {
                return Err(RegistrationError::metadata(format!(
                    "at most {MAX_CONTACTS} contacts are allowed"
                )));
            }
            let mut out: Vec<String> = Vec::new();
            for c in list {
                match check_text("contacts", c, MAX_CONTACT_CHARS)? {
                    Some(c) if !out.contains(&c) => out.push(c),
                    Some(_) => {}
                    None => return Err(RegistrationError::metadata("contacts must not be empty")),
                }
            }
            out
        }
    };

    let (jwks, jwks_uri) = validate_keys(req, token_endpoint_auth_method)?;
    Ok(ValidatedClient {
        jwks,
        jwks_uri,
        redirect_uris,
        client_name,
        client_name_derived,
        token_endpoint_auth_method,
        grant_types,
        response_types,
        scope,
        links: req.links.validated()?,
        contacts,
        software_id: optional_text("software_id", req.software_id.as_deref())?,
        software_version: optional_text("software_version", req.software_version.as_deref())?,
    })
}

/// RFC 7591 §2 `jwks` and `jwks_uri`: a `private_key_jwt` client gives
/// exactly one of them; any other client's are not kept (it authenticates
/// otherwise).
type Keys = (Option<serde_json::Value>, Option<String>);

fn validate_keys(
    req: &ClientMetadataRequest,
    method: AuthMethod,
) -> Result<Keys, RegistrationError> {
    if method != AuthMethod::PrivateKeyJwt {
        return Ok((None, None));
    }
    match (&req.jwks, &req.jwks_uri) {
        (Some(_), Some(_)) => Err(RegistrationError::metadata(
            "give jwks or jwks_uri, not both (RFC 7591 §2)",
        )),
        (None, None) => Err(RegistrationError::metadata(
            "private_key_jwt needs the client's keys: jwks or jwks_uri",
        )),
        (Some(jwks), None) => crate::credentials::jose::check_jwks(jwks)
            .map(|()| (Some(jwks.clone()), None))
            .map_err(RegistrationError::metadata),
        (None, Some(uri)) => crate::credentials::jose::check_jwks_uri(uri)
            .map(|()| (None, Some(uri.clone())))
            .map_err(RegistrationError::metadata),
    }
}

/// The kind of a valid redirect URI, and where its code goes (for the consent
/// page: "the code goes to HOST").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectKind {
    /// `https://HOST…`; `host` as the URL parser normalised it (lower case).
    Https { host: String },
    /// `http://127.0.0.1…` or `http://[::1]…` (RFC 8252 §7.3): this device.
    Loopback { host: String },
    /// A private-use scheme (RFC 8252 §7.1): an app on this device.
    PrivateUse { scheme: String },
}

impl RedirectKind {
    /// The host (or, for a private-use scheme, the scheme) the code goes to.
    pub fn target(&self) -> &str {
        match self {
            RedirectKind::Https { host } | RedirectKind::Loopback { host } => host,
            RedirectKind::PrivateUse { scheme } => scheme,
        }
    }

    fn default_name(&self) -> String {
        self.target().to_string()
    }
}

/// Validates one redirect URI (see the module documentation) and says what
/// kind it is. Every error is [`RegistrationError::InvalidRedirectUri`].
pub fn classify_redirect_uri(uri: &str) -> Result<RedirectKind, RegistrationError> {
    let bad =
        |why: &str| RegistrationError::redirect(format!("redirect URI {}: {why}", quoted(uri)));

    if uri.is_empty() {
        return Err(RegistrationError::redirect(
            "a redirect URI must not be empty",
        ));
    }
    if uri.len() > MAX_URI_BYTES {
        return Err(RegistrationError::redirect(format!(
            "a redirect URI must be at most {MAX_URI_BYTES} bytes"
        )));
    }
    if uri.contains('#') {
        return Err(bad("must not contain a fragment (RFC 6749 §3.1.2)"));
    }
    check_uri_chars(uri).map_err(bad)?;

    let url = url::Url::parse(uri).map_err(|e| bad(&format!("not an absolute URI ({e})")))?;
    let scheme = url.scheme();
    if !uri.starts_with(scheme) {
        // The parser lower-cases the scheme; keep stored URIs in one form.
        return Err(bad("the scheme must be written in lower case"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not contain user information"));
    }

    match scheme {
        "https" => {
            // "https:/host", "https:\\host", "https:///host" parse leniently;
            // only the plain form is accepted.
            let rest = uri.strip_prefix("https://").unwrap_or("");
            if rest.is_empty() || rest.starts_with('/') {
                return Err(bad("an https redirect URI must be https://HOST/…"));
            }
            match url.host_str() {
                Some(h) if !h.is_empty() => Ok(RedirectKind::Https {
                    host: h.to_string(),
                }),
                _ => Err(bad("an https redirect URI needs a host")),
            }
        }
        "http" => {
            if let Some(url::Host::Domain(d)) = url.host() {
                if d.trim_end_matches('.').eq_ignore_ascii_case("localhost") {
                    return Err(bad(
                        "http://localhost is not allowed; use http://127.0.0.1 or \
                         http://[::1] (RFC 8252 §8.3)",
                    ));
                }
            }
            let loopback_host = match url.host() {
                Some(url::Host::Ipv4(ip)) if ip == Ipv4Addr::LOCALHOST => Some("127.0.0.1"),
                Some(url::Host::Ipv6(ip)) if ip == Ipv6Addr::LOCALHOST => Some("[::1]"),
                _ => None,
            };
            match (loopback_host, split_loopback(uri)) {
                (Some(host), Some(parts)) if parts.host == host => {
                    if let Some(port) = parts.port {
                        if !valid_port(port) {
                            return Err(bad("the port must be 1 to 65535"));
                        }
                    }
                    Ok(RedirectKind::Loopback {
                        host: host.to_string(),
                    })
                }
                _ => Err(bad("plain http is allowed only on the loopback addresses \
                     http://127.0.0.1 and http://[::1] (RFC 8252 §7.3); use https")),
            }
        }
        "javascript" | "data" | "file" | "vbscript" | "about" | "blob" | "filesystem" | "ftp"
        | "ws" | "wss" | "mailto" | "tel" | "sms" => Err(bad("this scheme is not allowed")),
        _ => {
            // RFC 8252 §7.1: a private-use scheme is a reverse domain name
            // under the app's control, e.g. com.example.app.
            let labels: Vec<&str> = scheme.split('.').collect();
            if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
                return Err(bad(
                    "use https, loopback http, or a private-use scheme in reverse-domain \
                     form such as com.example.app:/callback (RFC 8252 §7.1)",
                ));
            }
            let after = uri.get(scheme.len() + 1..).unwrap_or("");
            if after.is_empty() {
                return Err(bad("a private-use redirect URI needs a path"));
            }
            Ok(RedirectKind::PrivateUse {
                scheme: scheme.to_string(),
            })
        }
    }
}

/// Whether a redirect URI presented at authorization matches a registered one.
///
/// Exact string comparison (RFC 6749 §3.1.2.3, no normalisation), except that a
/// registered loopback `http` URI (`http://127.0.0.1…` or `http://[::1]…`)
/// matches the same URI with any port, or none (RFC 8252 §7.3: "the
/// authorization server MUST allow any port to be specified at the time of the
/// request for loopback IP redirect URIs").
pub fn redirect_uri_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    match (split_loopback(registered), split_loopback(presented)) {
        (Some(r), Some(p)) => {
            r.host == p.host
                && r.rest == p.rest
                && r.port.is_none_or(valid_port)
                && p.port.is_none_or(valid_port)
                && !p.rest.contains('#')
        }
        _ => false,
    }
}

/// A loopback http URI split as written: `http://127.0.0.1` | `:PORT` | rest.
struct LoopbackParts<'a> {
    host: &'static str,
    port: Option<&'a str>,
    rest: &'a str,
}

fn split_loopback(uri: &str) -> Option<LoopbackParts<'_>> {
    for (prefix, host) in [("http://127.0.0.1", "127.0.0.1"), ("http://[::1]", "[::1]")] {
        let Some(after) = uri.strip_prefix(prefix) else {
            continue;
        };
        let (port, rest) = match after.strip_prefix(':') {
            Some(p) => {
                let end = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
                // `end` is a char boundary: find returns one.
                let (port, rest) = p.split_at(end);
                (Some(port), rest)
            }
            None => (None, after),
        };
        if rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') {
            return Some(LoopbackParts { host, port, rest });
        }
        return None;
    }
    None
}

fn valid_port(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && matches!(port.parse::<u16>(), Ok(p) if p != 0)
}

/// Validates `redirect_uris` (required, non-empty, bounded), removing exact
/// duplicates; returns them with the kind of the first.
pub(crate) fn validate_redirect_uris(
    list: Option<&[String]>,
) -> Result<(Vec<String>, RedirectKind), RegistrationError> {
    let list = match list {
        None => {
            return Err(RegistrationError::redirect(
                "redirect_uris is required (RFC 7591 §2)",
            ))
        }
        Some([]) => {
            return Err(RegistrationError::redirect(
                "redirect_uris must list at least one URI",
            ))
        }
        Some(l) => l,
    };
    if list.len() > MAX_REDIRECT_URIS {
        return Err(RegistrationError::redirect(format!(
            "at most {MAX_REDIRECT_URIS} redirect URIs are allowed"
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    let mut first = None;
    for uri in list {
        let kind = classify_redirect_uri(uri)?;
        if first.is_none() {
            first = Some(kind);
        }
        if !out.contains(uri) {
            out.push(uri.clone());
        }
    }
    match first {
        Some(kind) => Ok((out, kind)),
        None => Err(RegistrationError::redirect(
            "redirect_uris must list at least one URI",
        )),
    }
}

/// `scope` (RFC 7591 §2, RFC 6749 §3.3): space-separated scope tokens, each one
/// keygate offers. Empty is taken as absent.
pub(crate) fn validate_scope(
    scope: Option<&str>,
    offered: &Offered,
) -> Result<Option<String>, RegistrationError> {
    let Some(scope) = scope else { return Ok(None) };
    if scope.len() > MAX_SCOPE_BYTES {
        return Err(RegistrationError::metadata(format!(
            "scope must be at most {MAX_SCOPE_BYTES} bytes"
        )));
    }
    let mut out: Vec<&str> = Vec::new();
    for token in scope.split(' ').filter(|t| !t.is_empty()) {
        if !is_scope_token(token) {
            return Err(RegistrationError::metadata(format!(
                "scope {} is not a valid scope token (RFC 6749 §3.3)",
                quoted(token)
            )));
        }
        if !offered.offers_scope(token) {
            return Err(RegistrationError::metadata(format!(
                "scope {} is not offered; offered scopes: {}",
                quoted(token),
                offered.scopes().join(" ")
            )));
        }
        if !out.contains(&token) {
            out.push(token);
        }
    }
    Ok(if out.is_empty() {
        None
    } else {
        Some(out.join(" "))
    })
}

/// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// The pages a client links to, shown to people (RFC 7591 §2): as read
/// from a registration request or a metadata document, and, after
/// [`ClientLinks::validated`], each an `https` URL (see [`validate_web_uri`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct ClientLinks {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
}

impl ClientLinks {
    /// Each link validated; an empty one is dropped.
    pub fn validated(&self) -> Result<ClientLinks, RegistrationError> {
        let web = |field: &str, v: &Option<String>| validate_web_uri(field, v.as_deref());
        Ok(ClientLinks {
            client_uri: web("client_uri", &self.client_uri)?,
            logo_uri: web("logo_uri", &self.logo_uri)?,
            tos_uri: web("tos_uri", &self.tos_uri)?,
            policy_uri: web("policy_uri", &self.policy_uri)?,
        })
    }
}

/// A URI member shown to people (`client_uri`, `logo_uri`, `tos_uri`,
/// `policy_uri`): an `https` URL with a host, no userinfo, bounded, printable
/// ASCII. `https` only, so a consent page never links to `javascript:` or
/// loads a logo over plain http.
pub(crate) fn validate_web_uri(
    field: &str,
    value: Option<&str>,
) -> Result<Option<String>, RegistrationError> {
    let Some(value) = value else { return Ok(None) };
    if value.is_empty() {
        return Ok(None);
    }
    let bad = |why: &str| RegistrationError::metadata(format!("{field}: {why}"));
    if value.len() > MAX_URI_BYTES {
        return Err(bad(&format!("must be at most {MAX_URI_BYTES} bytes")));
    }
    check_uri_chars(value).map_err(bad)?;
    let rest = value.strip_prefix("https://").unwrap_or("");
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("must be an https URL"));
    }
    let url = url::Url::parse(value).map_err(|e| bad(&format!("not a URL ({e})")))?;
    if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
        return Err(bad("must be an https URL with a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not contain user information"));
    }
    Ok(Some(value.to_string()))
}

fn optional_text(field: &str, value: Option<&str>) -> Result<Option<String>, RegistrationError> {
    match value {
        None => Ok(None),
        Some(v) => check_text(field, v, MAX_SOFTWARE_CHARS),
    }
}

/// Checks a human-readable member: trimmed, at most `max_chars` characters, no
/// control characters and no invisible formatting characters that could
/// disguise a name on a consent page (bidirectional overrides, zero-width
/// characters). Returns `None` for a blank value.
pub(crate) fn check_text(
    field: &str,
    value: &str,
    max_chars: usize,
) -> Result<Option<String>, RegistrationError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.chars().count() > max_chars {
        return Err(RegistrationError::metadata(format!(
            "{field} must be at most {max_chars} characters"
        )));
    }
    if let Some(c) = trimmed
        .chars()
        .find(|&c| c.is_control() || crate::accounts::is_invisible_format(c))
    {
        return Err(RegistrationError::metadata(format!(
            "{field} must not contain control or invisible formatting characters \
             (found U+{:04X})",
            c as u32
        )));
    }
    Ok(Some(trimmed.to_string()))
}

/// The characters RFC 3986 allows in a URI (unreserved, reserved, `%` with two
/// hex digits). Everything else, including spaces and non-ASCII, is refused
/// rather than silently encoded by a parser.
fn check_uri_chars(uri: &str) -> Result<(), &'static str> {
    let bytes = uri.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => {}
            b'-' | b'.' | b'_' | b'~' => {}
            b':' | b'/' | b'?' | b'#' | b'[' | b']' | b'@' => {}
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' => {}
            b'%' => {
                let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return Err("a % must be followed by two hex digits");
                }
                i += 2;
            }
            _ => {
                return Err("contains a character not allowed in a URI \
                            (spaces, backslashes, non-ASCII: percent-encode them)")
            }
        }
        i += 1;
    }
    Ok(())
}

/// A value quoted for an error message, cut to a readable length on a char
/// boundary.
pub(crate) fn quoted(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut:?}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn offered() -> Offered {
        Offered::new(["read", "write", "profile"])
    }

    fn req(v: serde_json::Value) -> ClientMetadataRequest {
        ClientMetadataRequest::from_json(v.to_string().as_bytes()).expect("parses")
    }

    fn ok(v: serde_json::Value) -> ValidatedClient {
        validate(&req(v), &offered()).expect("valid")
    }

    fn err(v: serde_json::Value) -> RegistrationError {
        validate(&req(v), &offered()).expect_err("invalid")
    }

    fn redirect_err(uri: &str) -> String {
        match classify_redirect_uri(uri) {
            Err(RegistrationError::InvalidRedirectUri(d)) => d,
            other => panic!("{uri}: expected invalid_redirect_uri, got {other:?}"),
        }
    }

    #[test]
    fn minimal_request_gets_rfc7591_defaults() {
        let c = ok(json!({"redirect_uris": ["https://app.example.com/cb"]}));
        assert_eq!(c.redirect_uris, vec!["https://app.example.com/cb"]);
        assert_eq!(c.token_endpoint_auth_method, AuthMethod::ClientSecretBasic);
        assert!(!c.is_public());
        assert_eq!(c.grant_types, vec![GrantType::AuthorizationCode]);
        assert_eq!(c.response_types, vec![ResponseType::Code]);
        assert_eq!(c.client_name, "app.example.com");
        assert!(c.client_name_derived);
        assert_eq!(c.scope, None);
        assert!(c.contacts.is_empty());
    }

    #[test]
    fn full_request_is_kept() {
        let c = ok(json!({
            "redirect_uris": ["com.example.app:/cb", "http://127.0.0.1/cb", "com.example.app:/cb"],
            "client_name": "  My App  ",
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token", "refresh_token"],
            "response_types": ["code"],
            "scope": "read  write read",
            "client_uri": "https://example.com/",
            "logo_uri": "https://example.com/logo.png",
            "tos_uri": "https://example.com/tos",
            "policy_uri": "https://example.com/privacy",
            "contacts": ["ops@example.com", "ops@example.com"],
            "software_id": "4NRB1-0XZABZI9E6-5SM3R",
            "software_version": "2.1",
            "jwks_uri": "https://example.com/jwks",
            "client_name#ja-Jpan-JP": "アプリ",
            "something_else": {"nested": [1, 2]}
        }));
        assert_eq!(
            c.redirect_uris,
            vec!["com.example.app:/cb", "http://127.0.0.1/cb"]
        );
        assert_eq!(c.client_name, "My App");
        assert!(!c.client_name_derived);
        assert!(c.is_public());
        assert_eq!(
            c.grant_types,
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        assert!(c.allows_grant(GrantType::RefreshToken));
        assert_eq!(c.scope.as_deref(), Some("read write"));
        assert_eq!(c.scopes().collect::<Vec<_>>(), vec!["read", "write"]);
        assert_eq!(c.contacts, vec!["ops@example.com"]);
        assert_eq!(c.software_version.as_deref(), Some("2.1"));

        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["token_endpoint_auth_method"], "none");
        assert_eq!(
            v["grant_types"],
            json!(["authorization_code", "refresh_token"])
        );
        assert_eq!(v["response_types"], json!(["code"]));
        assert_eq!(v["scope"], "read write");
        assert!(v.get("client_name_derived").is_none());
    }

    #[test]
    fn serialisation_omits_absent_members() {
        let v =
            serde_json::to_value(ok(json!({"redirect_uris": ["https://a.example/cb"]}))).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys.len(),
            5,
            "redirect_uris, client_name, auth method, grant and response types: {keys:?}"
        );
    }

    #[test]
    fn body_must_be_a_json_object_of_the_right_types() {
        for body in [
            &b"[]"[..],
            b"\"x\"",
            b"42",
            b"null",
            b"",
            b"{",
            b"{\"redirect_uris\": \"https://a.example/cb\"}",
            b"{\"redirect_uris\": [1]}",
            b"{\"client_name\": 5}",
            b"{\"grant_types\": \"authorization_code\"}",
            b"{\"scope\": [\"read\"]}",
            b"{\"contacts\": \"a@b\"}",
            b"{\"token_endpoint_auth_method\": true}",
            b"{\"client_name\": \"a\", \"client_name\": \"b\"}",
            b"{\"logo_uri\": 5}",
            b"{\"tos_uri\": [\"https://a.example/tos\"]}",
            b"{\"client_uri\": \"https://a.example/\", \"client_uri\": \"https://b.example/\"}",
            b"[[\"https://a.example/cb\"]]",
        ] {
            match ClientMetadataRequest::from_json(body) {
                Err(RegistrationError::InvalidClientMetadata(_)) => {}
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(body)),
            }
        }
        // Nulls are absent, unknown members ignored, leading whitespace fine.
        let r = ClientMetadataRequest::from_json(
            b" \n{\"client_name\": null, \"x\": [1, {\"y\": null}], \"redirect_uris\": [\"https://a.example/cb\"]}",
        )
        .unwrap();
        assert_eq!(r.client_name, None);
        assert!(validate(&r, &offered()).is_ok());
        let r = ClientMetadataRequest::from_json(
            b"{\"policy_uri\": null, \"logo_uri\": \"https://a.example/l.png\"}",
        )
        .unwrap();
        assert_eq!(r.links.policy_uri, None);
        assert_eq!(r.links.logo_uri.as_deref(), Some("https://a.example/l.png"));
    }

    #[test]
    fn redirect_uris_are_required_non_empty_and_bounded() {
        assert!(matches!(
            err(json!({})),
            RegistrationError::InvalidRedirectUri(_)
        ));
        assert!(matches!(
            err(json!({"redirect_uris": []})),
            RegistrationError::InvalidRedirectUri(_)
        ));
        let many: Vec<String> = (0..=MAX_REDIRECT_URIS)
            .map(|i| format!("https://a.example/cb{i}"))
            .collect();
        assert!(matches!(
            err(json!({ "redirect_uris": many })),
            RegistrationError::InvalidRedirectUri(_)
        ));
        let just_enough: Vec<String> = (0..MAX_REDIRECT_URIS)
            .map(|i| format!("https://a.example/cb{i}"))
            .collect();
        assert_eq!(
            ok(json!({ "redirect_uris": just_enough }))
                .redirect_uris
                .len(),
            MAX_REDIRECT_URIS
        );
        let long = format!("https://a.example/{}", "a".repeat(MAX_URI_BYTES));
        redirect_err(&long);
        // One bad URI among good ones fails the request.
        assert!(matches!(
            err(json!({"redirect_uris": ["https://a.example/cb", "http://evil.example/cb"]})),
            RegistrationError::InvalidRedirectUri(_)
        ));
    }

    #[test]
    fn good_redirect_uris() {
        for (uri, kind) in [
            (
                "https://app.example.com/cb",
                RedirectKind::Https {
                    host: "app.example.com".into(),
                },
            ),
            (
                "https://app.example.com:8443/cb?x=1&y=%20",
                RedirectKind::Https {
                    host: "app.example.com".into(),
                },
            ),
            (
                "https://app.example.com",
                RedirectKind::Https {
                    host: "app.example.com".into(),
                },
            ),
            (
                "https://192.0.2.10/cb",
                RedirectKind::Https {
                    host: "192.0.2.10".into(),
                },
            ),
            (
                "http://127.0.0.1/cb",
                RedirectKind::Loopback {
                    host: "127.0.0.1".into(),
                },
            ),
            (
                "http://127.0.0.1:8080/cb",
                RedirectKind::Loopback {
                    host: "127.0.0.1".into(),
                },
            ),
            (
                "http://127.0.0.1",
                RedirectKind::Loopback {
                    host: "127.0.0.1".into(),
                },
            ),
            (
                "http://127.0.0.1?x=1",
                RedirectKind::Loopback {
                    host: "127.0.0.1".into(),
                },
            ),
            (
                "http://[::1]:5000/oauth/callback",
                RedirectKind::Loopback {
                    host: "[::1]".into(),
                },
            ),
            (
                "com.example.app:/oauth2redirect",
                RedirectKind::PrivateUse {
                    scheme: "com.example.app".into(),
                },
            ),
            (
                "com.example.app://callback",
                RedirectKind::PrivateUse {
                    scheme: "com.example.app".into(),
                },
            ),
            (
                "io.github.some-user.tool:/cb",
                RedirectKind::PrivateUse {
                    scheme: "io.github.some-user.tool".into(),
                },
            ),
        ] {
            assert_eq!(classify_redirect_uri(uri), Ok(kind), "{uri}");
        }
    }

    #[test]
    fn bad_redirect_uris() {
        for (uri, why) in [
            ("", "empty"),
            ("https://app.example.com/cb#frag", "fragment"),
            ("https://app.example.com/cb#", "empty fragment"),
            ("com.example.app:/cb#x", "fragment on private-use"),
            ("http://localhost/cb", "localhost §8.3"),
            ("http://localhost:8080/cb", "localhost with port"),
            ("http://LOCALHOST/cb", "localhost upper case"),
            ("http://localhost./cb", "localhost with trailing dot"),
            ("http://app.example.com/cb", "plain http"),
            ("http://10.0.0.1/cb", "plain http on a private address"),
            ("http://127.0.0.2/cb", "loopback other than 127.0.0.1"),
            ("http://127.1/cb", "127.0.0.1 in short form"),
            ("http://2130706433/cb", "127.0.0.1 as a number"),
            ("http://0x7f.0.0.1/cb", "127.0.0.1 in hex"),
            ("http://[::ffff:127.0.0.1]/cb", "mapped loopback"),
            (
                "http://127.0.0.1.evil.example/cb",
                "loopback-looking domain",
            ),
            ("http://127.0.0.1@evil.example/cb", "userinfo trick"),
            ("http://127.0.0.1:0/cb", "port zero"),
            ("http://127.0.0.1:65536/cb", "port out of range"),
            ("http://127.0.0.1:/cb", "empty port"),
            ("HTTP://127.0.0.1/cb", "upper-case scheme"),
            ("HTTPS://app.example.com/cb", "upper-case https"),
            ("https:/app.example.com/cb", "one slash"),
            ("https:app.example.com/cb", "no slashes"),
            ("https:///app.example.com/cb", "three slashes"),
            ("https:\\\\app.example.com/cb", "backslashes"),
            ("https://user:pw@app.example.com/cb", "userinfo"),
            ("https://user@app.example.com/cb", "username"),
            ("https://app.example.com/c b", "space"),
            (" https://app.example.com/cb", "leading space"),
            ("https://app.example.com/cb\n", "newline"),
            ("https://app.example.com/\tcb", "tab"),
            ("https://app.example.com/é", "non-ASCII"),
            ("https://app.example.com/%zz", "bad percent"),
            ("https://app.example.com/%4", "short percent"),
            ("https://", "no host"),
            ("javascript:alert(1)", "javascript"),
            (
                "javascript://example.com/%0Aalert(1)",
                "javascript with slashes",
            ),
            ("data:text/html,hi", "data"),
            ("file:///etc/passwd", "file"),
            ("vbscript:msgbox", "vbscript"),
            ("about:blank", "about"),
            ("myapp:/cb", "private-use without a dot"),
            ("myapp://cb", "private-use without a dot, slashes"),
            (".example.app:/cb", "leading dot"),
            ("com..app:/cb", "empty label"),
            ("com.example.app:", "no path"),
            ("Com.Example.App:/cb", "upper-case private-use scheme"),
            ("/relative/cb", "relative"),
            ("cb", "relative word"),
            ("urn:ietf:wg:oauth:2.0:oob", "oob"),
        ] {
            redirect_err(uri);
            let _ = why;
        }
        assert!(redirect_err("http://localhost/cb").contains("8252"));
        assert!(redirect_err("https://a.example/x#y").contains("fragment"));
    }

    #[test]
    fn loopback_redirects_match_any_port_everything_else_exactly() {
        let m = redirect_uri_matches;
        // Exact.
        assert!(m(
            "https://app.example.com/cb",
            "https://app.example.com/cb"
        ));
        assert!(m("com.example.app:/cb", "com.example.app:/cb"));
        assert!(!m(
            "https://app.example.com/cb",
            "https://app.example.com/cb/"
        ));
        assert!(!m(
            "https://app.example.com/cb",
            "https://APP.example.com/cb"
        ));
        assert!(!m(
            "https://app.example.com/cb",
            "https://app.example.com:443/cb"
        ));
        assert!(!m(
            "https://app.example.com/cb",
            "https://app.example.com/cb?x=1"
        ));
        assert!(!m(
            "https://app.example.com:8443/cb",
            "https://app.example.com:9443/cb"
        ));
        assert!(!m("com.example.app:/cb", "com.example.app:/cb2"));
        // Loopback: any port, or none; path and query exact.
        assert!(m("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb"));
        assert!(m("http://127.0.0.1:8080/cb", "http://127.0.0.1:9090/cb"));
        assert!(m("http://127.0.0.1:8080/cb", "http://127.0.0.1/cb"));
        assert!(m("http://[::1]/cb", "http://[::1]:1/cb"));
        assert!(m("http://[::1]:3000/cb?a=b", "http://[::1]:65535/cb?a=b"));
        assert!(m("http://127.0.0.1", "http://127.0.0.1:5000"));
        assert!(!m("http://127.0.0.1/cb", "http://127.0.0.1:5000/cb2"));
        assert!(!m("http://127.0.0.1/cb", "http://127.0.0.1:5000/cb?x"));
        assert!(!m("http://127.0.0.1/cb", "http://[::1]:5000/cb"));
        assert!(!m("http://127.0.0.1/cb", "http://localhost:5000/cb"));
        assert!(!m("http://127.0.0.1/cb", "https://127.0.0.1:5000/cb"));
        assert!(!m("http://127.0.0.1/cb", "http://127.0.0.1:0/cb"));
        assert!(!m("http://127.0.0.1/cb", "http://127.0.0.1:99999/cb"));
        assert!(!m("http://127.0.0.1/cb", "http://127.0.0.1:/cb"));
        assert!(!m(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:80@evil.example/cb"
        ));
        assert!(!m(
            "http://127.0.0.1/cb",
            "http://127.0.0.1.evil.example/cb"
        ));
        assert!(!m("http://127.0.0.1/cb", "http://127.0.0.1:5000/cb#x"));
        assert!(!m("http://127.0.0.1/", "http://127.0.0.1:5000"));
        // Odd input never panics.
        assert!(!m("http://127.0.0.1/cb", "http://127.0.0.1:é/cb"));
        assert!(!m("", "http://127.0.0.1:1/"));
        assert!(m("", ""));

        let c = ok(json!({"redirect_uris": ["http://127.0.0.1/cb", "https://a.example/cb"]}));
        assert!(c.redirect_uri_allowed("http://127.0.0.1:4567/cb"));
        assert!(c.redirect_uri_allowed("https://a.example/cb"));
        assert!(!c.redirect_uri_allowed("https://a.example/cb2"));
    }

    #[test]
    fn auth_methods() {
        let base = |m: &str| json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": m});
        assert_eq!(
            ok(base("none")).token_endpoint_auth_method,
            AuthMethod::None
        );
        assert_eq!(
            ok(base("client_secret_basic")).token_endpoint_auth_method,
            AuthMethod::ClientSecretBasic
        );
        assert_eq!(
            ok(base("client_secret_post")).token_endpoint_auth_method,
            AuthMethod::ClientSecretPost
        );
        for m in [
            "private_key_jwt",
            "client_secret_jwt",
            "tls_client_auth",
            "",
            "NONE",
        ] {
            assert!(
                matches!(err(base(m)), RegistrationError::InvalidClientMetadata(_)),
                "{m}"
            );
        }
    }

    #[test]
    fn grant_and_response_types() {
        let with = |g: serde_json::Value, r: serde_json::Value| {
            let mut v = json!({"redirect_uris": ["https://a.example/cb"]});
            if !g.is_null() {
                v["grant_types"] = g;
            }
            if !r.is_null() {
                v["response_types"] = r;
            }
            validate(&req(v), &offered())
        };
        assert!(with(json!(["authorization_code"]), json!(["code"])).is_ok());
        assert!(with(json!(["refresh_token", "authorization_code"]), json!(null)).is_ok());
        assert!(with(json!(null), json!(["code", "code"])).is_ok());
        for (g, r) in [
            (json!(["implicit"]), json!(null)),
            (json!(["client_credentials"]), json!(null)),
            (json!(["password", "authorization_code"]), json!(null)),
            (
                json!(["urn:ietf:params:oauth:grant-type:device_code"]),
                json!(null),
            ),
            (json!([]), json!(null)),
            (json!(null), json!([])),
            (json!(null), json!(["token"])),
            (json!(null), json!(["code id_token"])),
            // Consistency (RFC 7591 §2.1): code needs authorization_code.
            (json!(["refresh_token"]), json!(null)),
            (json!(["refresh_token"]), json!(["code"])),
        ] {
            assert!(
                matches!(
                    with(g.clone(), r.clone()),
                    Err(RegistrationError::InvalidClientMetadata(_))
                ),
                "{g} {r}"
            );
        }
    }

    #[test]
    fn client_name_rules() {
        let named = |n: &str| json!({"redirect_uris": ["https://a.example/cb"], "client_name": n});
        assert_eq!(
            ok(named("Ünïcødé App 名前")).client_name,
            "Ünïcødé App 名前"
        );
        assert_eq!(
            ok(named(&"é".repeat(MAX_CLIENT_NAME_CHARS)))
                .client_name
                .chars()
                .count(),
            MAX_CLIENT_NAME_CHARS
        );
        // Blank is as if absent: derived from the first redirect URI.
        let c = ok(named("   "));
        assert_eq!(c.client_name, "a.example");
        assert!(c.client_name_derived);
        for bad in [
            "é".repeat(MAX_CLIENT_NAME_CHARS + 1),
            "evil\u{0}app".into(),
            "line\nbreak".into(),
            "tab\there".into(),
            "\u{7f}del".into(),
            "bidi \u{202E}ppa".into(),
            "isolate \u{2066}x".into(),
            "zero\u{200B}width".into(),
            "bom\u{FEFF}".into(),
        ] {
            assert!(
                matches!(
                    err(named(&bad)),
                    RegistrationError::InvalidClientMetadata(_)
                ),
                "{bad:?}"
            );
        }
        // Derived names by redirect kind.
        assert_eq!(
            ok(json!({"redirect_uris": ["http://[::1]:8/cb"]})).client_name,
            "[::1]"
        );
        assert_eq!(
            ok(json!({"redirect_uris": ["com.example.app:/cb", "https://a.example/cb"]}))
                .client_name,
            "com.example.app"
        );
    }

    #[test]
    fn scope_rules() {
        let scoped = |s: &str| json!({"redirect_uris": ["https://a.example/cb"], "scope": s});
        assert_eq!(ok(scoped("read")).scope.as_deref(), Some("read"));
        assert_eq!(
            ok(scoped(" write  read ")).scope.as_deref(),
            Some("write read")
        );
        assert_eq!(ok(scoped("")).scope, None);
        assert_eq!(ok(scoped("   ")).scope, None);
        for bad in [
            "admin",
            "read admin",
            "read\"",
            "read\\x",
            "réad",
            "read\twrite",
            &"r".repeat(MAX_SCOPE_BYTES + 1),
        ] {
            assert!(
                matches!(
                    err(scoped(bad)),
                    RegistrationError::InvalidClientMetadata(_)
                ),
                "{bad:?}"
            );
        }
        // Nothing offered: any scope is refused.
        let r = req(scoped("read"));
        assert!(validate(&r, &Offered::default()).is_err());
    }

    #[test]
    fn web_uris_and_contacts() {
        let with = |k: &str, v: serde_json::Value| {
            let mut j = json!({"redirect_uris": ["https://a.example/cb"]});
            j[k] = v;
            validate(&req(j), &offered())
        };
        for k in ["client_uri", "logo_uri", "tos_uri", "policy_uri"] {
            assert!(with(k, json!("https://a.example/x")).is_ok(), "{k}");
            assert_eq!(with(k, json!("")).unwrap().links.client_uri, None);
            for bad in [
                "http://a.example/x",
                "javascript:alert(1)",
                "data:image/png;base64,AAAA",
                "https://",
                "https:/a.example",
                "https://u:p@a.example/",
                "https://a.example/ x",
                "//a.example/x",
            ] {
                assert!(
                    matches!(
                        with(k, json!(bad)),
                        Err(RegistrationError::InvalidClientMetadata(_))
                    ),
                    "{k} {bad}"
                );
            }
        }
        assert!(with("contacts", json!(["a@example.com", "b@example.com"])).is_ok());
        let many: Vec<String> = (0..=MAX_CONTACTS)
            .map(|i| format!("a{i}@example.com"))
            .collect();
        for bad in [
            json!(many),
            json!([""]),
            json!(["a\u{0}b"]),
            json!(["x".repeat(MAX_CONTACT_CHARS + 1)]),
        ] {
            assert!(
                matches!(
                    with("contacts", bad.clone()),
                    Err(RegistrationError::InvalidClientMetadata(_))
                ),
                "{bad}"
            );
        }
        assert!(with("software_id", json!("x".repeat(MAX_SOFTWARE_CHARS + 1))).is_err());
        assert!(with("software_version", json!("1\u{1b}[31m")).is_err());
    }

    #[test]
    fn error_messages_quote_long_input_safely() {
        let long = "é".repeat(500);
        let q = quoted(&long);
        assert!(q.chars().count() < 100);
        let e = err(json!({"redirect_uris": ["https://a.example/cb"], "grant_types": [long]}));
        assert!(e.description().len() < 400);
    }
}
