//! Configuration from flags and environment (precedence: flag, `KEYGATE_…`,
//! `DATABASE_URL`, default), resolved once at start. This is the only reader
//! of `KEYGATE_*` variables: everything else is built from [`Config`].
//!
//! [`Config::resolve`] reads what every command uses; [`Config::serving`] adds
//! what only a serving node uses, so that a bad server setting (a pool size, a
//! cache TTL) does not stop the admin commands.

use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    /// Without a trailing slash.
    pub issuer: String,
    pub bind: String,
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
    pub code_ttl: i64,
    pub session_ttl: i64,
    pub consent_ttl: i64,
    /// How often a node reads revocations made by other nodes (and the CLI).
    pub revocation_poll_ms: u64,
    /// `KEYGATE_REVOCATION_STALE_SECS`: how long a node that cannot read the
    /// revocation feed keeps serving credentials from memory before it answers
    /// 503 on `/v1` and `/readyz` (the contract's revocation bound: 60 s).
    pub revocation_stale_secs: u64,
    /// `KEYGATE_REVOCATION_RETENTION_SECS`: how long revocation events are
    /// kept; it should comfortably exceed the stale bound, since a node that
    /// could not read for longer than that has dropped its cache anyway.
    pub revocation_retention_secs: u64,
    /// `KEYGATE_CREDENTIAL_CACHE_SECS`: the longest a verified credential is
    /// served from memory before its rows are read again, events or not.
    pub credential_cache_secs: u64,
    /// How often batched usage counts are written.
    pub usage_flush_ms: u64,
    /// How often expired codes, sessions and tokens are deleted.
    pub housekeeping_secs: u64,
    /// Abuse limits; `None` turns them off (tests).
    pub rate_limits: Option<RateLimits>,
    /// `keygate demo`: serve the demo client's callback page.
    pub demo: bool,
    /// `KEYGATE_TRUSTED_PROXIES`: CIDRs of the proxies whose `X-Forwarded-For`
    /// is believed (parsed and checked when the node starts).
    pub trusted_proxies: String,
    /// `KEYGATE_METRICS_TOKEN`: `/metrics` requires `Authorization: Bearer`
    /// with it (and is served on the main listener when
    /// `KEYGATE_METRICS_BIND` is unset).
    pub metrics_token: Option<String>,
    /// `KEYGATE_METRICS_BIND`: `/metrics` on its own listener.
    pub metrics_bind: Option<String>,
    /// `KEYGATE_REGISTRATION=open|off`: RFC 7591 dynamic client registration
    /// at `/oauth/register` (default open).
    pub registration_open: bool,
    /// `KEYGATE_CIMD=on|off`: client ID metadata documents (default on). Off,
    /// the metadata says `false` and a URL `client_id` is an unknown client.
    pub cimd: bool,
    /// `KEYGATE_SASL_BIND` / `--sasl-bind`: where `serve` also answers
    /// Postfix's SMTP AUTH questions (Dovecot's protocol), `HOST:PORT` or
    /// `unix:PATH`; `None` for not at all.
    pub sasl_bind: Option<String>,
    /// `KEYGATE_SASL_MAX_CONNECTIONS` (serving only): connections the SASL
    /// listener serves at once (when all are taken, the one idle longest is
    /// closed); `None` for the listener's default (1024).
    pub sasl_max_connections: Option<usize>,
    /// `KEYGATE_SASL_MAX_CONNECTIONS_PER_PEER` (serving only): connections one
    /// peer (a remote address; a user id on a unix socket) may hold; `None`
    /// for the listener's default (256).
    pub sasl_max_connections_per_peer: Option<usize>,
    /// `KEYGATE_SMTP_HOST`: the SMTP host the settings pages tell senders to
    /// use; `None` for the issuer's host.
    pub smtp_host: Option<String>,
    /// `KEYGATE_MASTER_KEY`: signing keys are sealed under it at rest; `None`
    /// stores them in clear.
    pub master_key: Option<MasterKey>,
    /// `KEYGATE_DB_POOL_SIZE` (serving only): the pool's connections; `None`
    /// for 8 on SQLite, 16 on PostgreSQL.
    pub db_pool_size: Option<u32>,
    /// `KEYGATE_OUTBOUND_ALLOWED_HOSTS` and `KEYGATE_CIMD_ALLOWED_HOSTS`
    /// together (the second is the first's older name): hosts the outbound
    /// HTTPS client reaches even when they resolve to special-use addresses,
    /// e.g. `127.0.0.1,localhost` in tests.
    pub outbound_allowed_hosts: Vec<String>,
    /// `KEYGATE_OUTBOUND_CA_FILE` and `KEYGATE_CIMD_CA_FILE` (either or both):
    /// PEM files of extra trusted root CAs for the outbound HTTPS client.
    pub outbound_ca_files: Vec<PathBuf>,
    /// `KEYGATE_CIMD_CACHE_TTL` (serving only): the most seconds a good client
    /// metadata document is cached; `None` for the fetcher's default (24 h).
    pub cimd_cache_ttl_secs: Option<u64>,
    /// `KEYGATE_LEAK_REPORT_KEYS` (serving only): the file of keys leak reports
    /// must be signed with; `None`: `POST /api-keys/leaks` does not exist.
    pub leak_report_keys_file: Option<PathBuf>,
    /// `KEYGATE_TEST_PANIC_ROUTE=1` (serving only): routes that panic, for the
    /// tests of the panic boundary; never set it in production.
    pub test_panic_routes: bool,
    /// `KEYGATE_OIDC_*` (serving only): the product's identity provider
    /// people sign in through; `None` when not configured.
    pub oidc: Option<OidcSettings>,
    /// `KEYGATE_PASSWORD_LOGIN=on|off` (serving only, default on): off, the
    /// login page has no password form and password posts are refused.
    pub password_login: bool,
}

/// The product's OpenID provider (`KEYGATE_OIDC_*`), checked at start.
#[derive(Clone)]
pub struct OidcSettings {
    /// `KEYGATE_OIDC_ISSUER` as written: the discovery document's `issuer`
    /// and the ID token's `iss` must equal it exactly.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// `KEYGATE_OIDC_NAME`: shown on the button; default the issuer's host.
    pub name: String,
    /// `KEYGATE_OIDC_SCOPES` (default `openid email profile`), `openid` first.
    pub scopes: Vec<String>,
    /// `KEYGATE_OIDC_CREATE_PEOPLE=on`: a verified email no person has makes
    /// a new person (default off).
    pub create_people: bool,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("create_people", &self.create_people)
            .finish_non_exhaustive()
    }
}

/// `KEYGATE_MASTER_KEY` as the key it stands for: the SHA-256 of the trimmed
/// value. Never printed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MasterKey(pub [u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// The environment variables naming hosts that may resolve to special-use
/// addresses (comma-separated); both count.
pub const ENV_OUTBOUND_ALLOWED_HOSTS: [&str; 2] = [
    "KEYGATE_OUTBOUND_ALLOWED_HOSTS",
    "KEYGATE_CIMD_ALLOWED_HOSTS",
];
/// The environment variables naming a PEM file of extra trusted root CAs;
/// both count.
pub const ENV_OUTBOUND_CA_FILE: [&str; 2] = ["KEYGATE_OUTBOUND_CA_FILE", "KEYGATE_CIMD_CA_FILE"];
/// The environment variable naming the leak-report keys file; unset, the
/// endpoint is off.
pub const ENV_LEAK_REPORT_KEYS: &str = "KEYGATE_LEAK_REPORT_KEYS";

#[derive(Clone, Debug)]
pub struct RateLimits {
    /// Failed logins per account or client address before back-off starts.
    pub login_failures: u32,
    /// Failed client authentications per client before back-off starts.
    pub client_failures: u32,
    /// Failed bearer checks per client address before back-off starts.
    pub bearer_failures: u32,
    /// Failed SMTP authentications per mailbox and client address before each
    /// further failure is delayed.
    pub smtp_failures: u32,
    /// The window, in seconds, over which failures count.
    pub window_secs: u64,
    /// Failed registrations (and registration-token checks) per client
    /// address before back-off starts.
    pub registration_failures: u32,
    /// Successful registrations per client address per hour; a client ID
    /// metadata document seen for the first time counts as one.
    pub registrations_per_hour: u32,
    /// `KEYGATE_CIMD_FETCH_LIMIT`: client metadata documents fetched for one
    /// client address per minute (cache hits are free).
    pub cimd_fetches_per_address: u32,
    /// `KEYGATE_CIMD_FETCH_RATE`: client metadata documents fetched per
    /// second by this node, for every address together.
    pub cimd_fetches_per_second: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            login_failures: 10,
            client_failures: 100,
            bearer_failures: 200,
            smtp_failures: 10,
            window_secs: 300,
            registration_failures: 20,
            registrations_per_hour: 20,
            cimd_fetches_per_address: 30,
            cimd_fetches_per_second: 20,
        }
    }
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://keygate.db";
pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:8080";
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A path from the environment; empty is as if unset.
fn path_env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `KEYGATE_LOG_FORMAT=json`: one JSON object per log line. Read before the
/// configuration is resolved, since logging starts first.
pub fn json_logs() -> bool {
    std::env::var("KEYGATE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"))
}

fn env_i64(name: &str, default: i64) -> Result<i64, String> {
    match env(name) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "{name} must be a positive number of seconds, not {v:?}"
            )),
        },
    }
}

/// A number of connections from 1 to 1,000,000; `None` when unset.
fn env_count(name: &str) -> Result<Option<usize>, String> {
    match env(name) {
        None => Ok(None),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=1_000_000).contains(&n) => Ok(Some(n)),
            _ => Err(format!(
                "{name} must be a number of connections from 1 to 1000000, not {v:?}"
            )),
        },
    }
}

impl Config {
    /// The defaults for a database and issuer, with the abuse limits off and no
    /// environment read (logic tests build their node from it).
    pub fn defaults(database_url: String, issuer: String) -> Config {
        Config {
            database_url,
            issuer,
            bind: DEFAULT_BIND.to_string(),
            access_token_ttl: 3600,
            refresh_token_ttl: 30 * 24 * 3600,
            code_ttl: 60,
            session_ttl: 12 * 3600,
            consent_ttl: 600,
            revocation_poll_ms: 100,
            usage_flush_ms: 1000,
            housekeeping_secs: 30,
            rate_limits: None,
            demo: false,
            trusted_proxies: String::new(),
            metrics_token: None,
            metrics_bind: None,
            revocation_stale_secs: 60,
            revocation_retention_secs: 600,
            credential_cache_secs: 60,
            registration_open: true,
            cimd: true,
            sasl_bind: None,
            sasl_max_connections: None,
            sasl_max_connections_per_peer: None,
            smtp_host: None,
            master_key: None,
            db_pool_size: None,
            outbound_allowed_hosts: Vec::new(),
            outbound_ca_files: Vec::new(),
            cimd_cache_ttl_secs: None,
            leak_report_keys_file: None,
            test_panic_routes: false,
            oidc: None,
            password_login: true,
        }
    }

    /// Resolves the configuration; flags win over the environment.
    pub fn resolve(
        database_url: Option<String>,
        issuer: Option<String>,
        bind: Option<String>,
    ) -> Result<Config, String> {
        let database_url = database_url
            .or_else(|| env("KEYGATE_DATABASE_URL"))
            .or_else(|| env("DATABASE_URL"))
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
        let issuer = issuer
            .or_else(|| env("KEYGATE_ISSUER"))
            .unwrap_or_else(|| DEFAULT_ISSUER.to_string());
        let issuer = normalise_issuer(&issuer)?;
        let bind = bind
            .or_else(|| env("KEYGATE_BIND"))
            .unwrap_or_else(|| DEFAULT_BIND.to_string());
        let rate_limits = match env("KEYGATE_RATE_LIMITS").as_deref() {
            Some("off") | Some("false") | Some("0") => None,
            _ => {
                let d = RateLimits::default();
                let n = |name: &str, default: u32| -> Result<u32, String> {
                    Ok(env_i64(name, default as i64)?.min(u32::MAX as i64) as u32)
                };
                Some(RateLimits {
                    login_failures: n("KEYGATE_LOGIN_FAILURE_LIMIT", d.login_failures)?,
                    client_failures: n("KEYGATE_CLIENT_FAILURE_LIMIT", d.client_failures)?,
                    bearer_failures: n("KEYGATE_BEARER_FAILURE_LIMIT", d.bearer_failures)?,
                    smtp_failures: n("KEYGATE_SMTP_FAILURE_LIMIT", d.smtp_failures)?,
                    window_secs: env_i64("KEYGATE_FAILURE_WINDOW", d.window_secs as i64)? as u64,
                    registration_failures: n(
                        "KEYGATE_REGISTRATION_FAILURE_LIMIT",
                        d.registration_failures,
                    )?,
                    registrations_per_hour: n(
                        "KEYGATE_REGISTRATION_LIMIT",
                        d.registrations_per_hour,
                    )?,
                    cimd_fetches_per_address: n(
                        "KEYGATE_CIMD_FETCH_LIMIT",
                        d.cimd_fetches_per_address,
                    )?,
                    cimd_fetches_per_second: n(
                        "KEYGATE_CIMD_FETCH_RATE",
                        d.cimd_fetches_per_second,
                    )?,
                })
            }
        };
        let registration_open = match env("KEYGATE_REGISTRATION").as_deref().map(str::trim) {
            None | Some("open") => true,
            Some("off") => false,
            Some(other) => {
                return Err(format!(
                    "KEYGATE_REGISTRATION must be open or off, not {other:?}"
                ))
            }
        };
        let cimd = match env("KEYGATE_CIMD").as_deref().map(str::trim) {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => return Err(format!("KEYGATE_CIMD must be on or off, not {other:?}")),
        };
        let d = Config::defaults(database_url, issuer);
        Ok(Config {
            bind,
            access_token_ttl: env_i64("KEYGATE_ACCESS_TOKEN_TTL", d.access_token_ttl)?,
            refresh_token_ttl: env_i64("KEYGATE_REFRESH_TOKEN_TTL", d.refresh_token_ttl)?,
            revocation_stale_secs: env_i64(
                "KEYGATE_REVOCATION_STALE_SECS",
                d.revocation_stale_secs as i64,
            )? as u64,
            revocation_retention_secs: env_i64(
                "KEYGATE_REVOCATION_RETENTION_SECS",
                d.revocation_retention_secs as i64,
            )? as u64,
            credential_cache_secs: env_i64(
                "KEYGATE_CREDENTIAL_CACHE_SECS",
                d.credential_cache_secs as i64,
            )? as u64,
            housekeeping_secs: env_i64("KEYGATE_HOUSEKEEPING_SECS", d.housekeeping_secs as i64)?
                as u64,
            rate_limits,
            trusted_proxies: env("KEYGATE_TRUSTED_PROXIES").unwrap_or_default(),
            metrics_token: env("KEYGATE_METRICS_TOKEN"),
            metrics_bind: env("KEYGATE_METRICS_BIND"),
            registration_open,
            cimd,
            sasl_bind: env("KEYGATE_SASL_BIND"),
            sasl_max_connections: None,
            sasl_max_connections_per_peer: None,
            smtp_host: env("KEYGATE_SMTP_HOST"),
            master_key: env("KEYGATE_MASTER_KEY")
                .map(|v| MasterKey(crate::crypto::sha256(v.trim().as_bytes()))),
            outbound_allowed_hosts: ENV_OUTBOUND_ALLOWED_HOSTS
                .iter()
                .flat_map(|name| {
                    crate::outbound::parse_allowed_hosts(&std::env::var(name).unwrap_or_default())
                })
                .collect(),
            outbound_ca_files: ENV_OUTBOUND_CA_FILE
                .iter()
                .filter_map(|name| path_env(name))
                .collect(),
            ..d
        })
    }

    /// Adds the settings only a serving node uses (`serve`, `demo`), with
    /// their own errors.
    pub fn serving(mut self) -> Result<Config, String> {
        self.db_pool_size = match std::env::var("KEYGATE_DB_POOL_SIZE") {
            Ok(v) if !v.trim().is_empty() => match v.trim().parse::<u32>() {
                Ok(n) if (1..=1024).contains(&n) => Some(n),
                _ => {
                    return Err(format!(
                        "KEYGATE_DB_POOL_SIZE must be a number of connections from 1 to 1024, not {v:?}"
                    ))
                }
            },
            _ => None,
        };
        self.cimd_cache_ttl_secs = match env("KEYGATE_CIMD_CACHE_TTL") {
            None => None,
            Some(v) => Some(v.trim().parse().map_err(|_| {
                format!("KEYGATE_CIMD_CACHE_TTL must be a number of seconds, not {v:?}")
            })?),
        };
        self.sasl_max_connections = env_count("KEYGATE_SASL_MAX_CONNECTIONS")?;
        self.sasl_max_connections_per_peer = env_count("KEYGATE_SASL_MAX_CONNECTIONS_PER_PEER")?;
        self.leak_report_keys_file = path_env(ENV_LEAK_REPORT_KEYS);
        self.test_panic_routes = std::env::var("KEYGATE_TEST_PANIC_ROUTE").as_deref() == Ok("1");
        self.oidc = oidc_settings(
            env("KEYGATE_OIDC_ISSUER"),
            env("KEYGATE_OIDC_CLIENT_ID"),
            env("KEYGATE_OIDC_CLIENT_SECRET"),
            env("KEYGATE_OIDC_NAME"),
            env("KEYGATE_OIDC_SCOPES"),
            on_off("KEYGATE_OIDC_CREATE_PEOPLE", false)?,
        )?;
        self.password_login = on_off("KEYGATE_PASSWORD_LOGIN", true)?;
        if !self.password_login && self.oidc.is_none() {
            return Err(
                "KEYGATE_PASSWORD_LOGIN=off needs KEYGATE_OIDC_ISSUER, KEYGATE_OIDC_CLIENT_ID \
                 and KEYGATE_OIDC_CLIENT_SECRET: nobody could sign in"
                    .to_string(),
            );
        }
        Ok(self)
    }

    pub fn https(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// The SMTP host senders connect to: `KEYGATE_SMTP_HOST`, else the issuer's host.
    pub fn smtp_host(&self) -> String {
        self.smtp_host.clone().unwrap_or_else(|| {
            url::Url::parse(&self.issuer)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| "localhost".to_string())
        })
    }

    /// The one protected resource: `{issuer}/v1`.
    pub fn resource(&self) -> String {
        format!("{}/v1", self.issuer)
    }
}

/// `on` or `off` (unset: `default`).
fn on_off(name: &str, default: bool) -> Result<bool, String> {
    match env(name).as_deref().map(str::trim) {
        None => Ok(default),
        Some("on") => Ok(true),
        Some("off") => Ok(false),
        Some(other) => Err(format!("{name} must be on or off, not {other:?}")),
    }
}

/// The identity provider's settings: all of issuer, client id and secret, or
/// none of them (then nothing else may be set either).
fn oidc_settings(
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    name: Option<String>,
    scopes: Option<String>,
    create_people: bool,
) -> Result<Option<OidcSettings>, String> {
    let (issuer, client_id, client_secret) = match (issuer, client_id, client_secret) {
        (None, None, None) => {
            if name.is_some() || scopes.is_some() || create_people {
                return Err("KEYGATE_OIDC_NAME, KEYGATE_OIDC_SCOPES and KEYGATE_OIDC_CREATE_PEOPLE \
                     need KEYGATE_OIDC_ISSUER, KEYGATE_OIDC_CLIENT_ID and KEYGATE_OIDC_CLIENT_SECRET"
                    .to_string());
            }
            return Ok(None);
        }
        (Some(i), Some(c), Some(s)) => (i.trim().to_string(), c.trim().to_string(), s),
        _ => {
            return Err(
                "KEYGATE_OIDC_ISSUER, KEYGATE_OIDC_CLIENT_ID and KEYGATE_OIDC_CLIENT_SECRET \
                 must be set together"
                    .to_string(),
            )
        }
    };
    let parsed = url::Url::parse(&issuer)
        .map_err(|e| format!("KEYGATE_OIDC_ISSUER {issuer:?} is not a URL: {e}"))?;
    if parsed.scheme() != "https" || parsed.host_str().is_none() {
        return Err(format!(
            "KEYGATE_OIDC_ISSUER {issuer:?} must be an https URL (OpenID Connect Discovery §3)"
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!(
            "KEYGATE_OIDC_ISSUER {issuer:?} must have no query or fragment"
        ));
    }
    let name = match name {
        Some(n) => n.trim().to_string(),
        None => host_as_written(&issuer),
    };
    let mut scopes: Vec<String> = scopes
        .as_deref()
        .unwrap_or("openid email profile")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if let Some(bad) = scopes.iter().find(|s| {
        !s.chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
    }) {
        return Err(format!(
            "KEYGATE_OIDC_SCOPES: {bad:?} is not a scope (RFC 6749 §3.3)"
        ));
    }
    scopes.retain(|s| s != "openid");
    scopes.insert(0, "openid".to_string());
    Ok(Some(OidcSettings {
        issuer,
        client_id,
        client_secret,
        name,
        scopes,
        create_people,
    }))
}

/// The host of a URL as written in it (without user info, port or path, case
/// kept): `https://Login.Example.com:8443/x` gives `Login.Example.com`.
fn host_as_written(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host_port.strip_prefix('[') {
        Some(v6) => format!("[{}]", v6.split(']').next().unwrap_or(v6)),
        None => host_port.split(':').next().unwrap_or(host_port).to_string(),
    }
}

/// RFC 8414 §2: an https (or, for local use, http) URL with no query or fragment,
/// kept without a trailing slash.
pub fn normalise_issuer(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim().trim_end_matches('/');
    let parsed = url::Url::parse(trimmed).map_err(|e| format!("invalid issuer {raw:?}: {e}"))?;
    if parsed.scheme() != "https" && parsed.scheme() != "http" {
        return Err(format!("invalid issuer {raw:?}: it must be an http(s) URL"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!(
            "invalid issuer {raw:?}: no query or fragment allowed"
        ));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_loses_trailing_slash() {
        assert_eq!(
            normalise_issuer("https://id.example.com/").unwrap(),
            "https://id.example.com"
        );
        assert!(normalise_issuer("ftp://x").is_err());
        assert!(normalise_issuer("https://x/?a=b").is_err());
    }

    fn oidc(issuer: &str, scopes: Option<&str>) -> Result<Option<OidcSettings>, String> {
        let s = |v: &str| Some(v.to_string());
        oidc_settings(
            s(issuer),
            s("kg"),
            s("secret"),
            None,
            scopes.map(str::to_string),
            false,
        )
    }

    #[test]
    fn the_identity_provider_settings_are_all_or_nothing_and_checked() {
        let ok = oidc("https://Login.Example.com:8443/tenant", None)
            .unwrap()
            .unwrap();
        assert_eq!(ok.name, "Login.Example.com");
        assert_eq!(host_as_written("https://u@[::1]:8443/t"), "[::1]");
        assert_eq!(ok.scopes, ["openid", "email", "profile"]);
        assert_eq!(ok.issuer, "https://Login.Example.com:8443/tenant");
        let s = oidc("https://idp.test", Some("email openid groups"))
            .unwrap()
            .unwrap();
        assert_eq!(s.scopes, ["openid", "email", "groups"]);
        assert!(oidc("http://idp.test", None).is_err());
        assert!(oidc("not a url", None).is_err());
        assert!(oidc("https://idp.test?x=1", None).is_err());
        assert!(oidc("https://idp.test", Some("a\u{7f}b")).is_err());
        let partial = oidc_settings(
            Some("https://idp.test".into()),
            None,
            None,
            None,
            None,
            false,
        );
        assert!(partial.is_err());
        assert!(oidc_settings(None, None, None, None, None, false)
            .unwrap()
            .is_none());
        assert!(oidc_settings(None, None, None, Some("Acme".into()), None, false).is_err());
    }
}
