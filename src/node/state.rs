//! What every request handler and background task of a node shares.

use super::ratelimit::FailureLimiter;
use crate::apikeys::leaks::LeakReportKeys;
use crate::config::{Config, ENV_LEAK_REPORT_KEYS};
use crate::credentials::address::TrustedProxies;
use crate::credentials::cache::{Bounds, CredentialCache};
use crate::credentials::signing_keys::KeyRing;
use crate::credentials::usage::UsageRecorder;
use crate::credentials::Credentials;
use crate::db::Pool;
use crate::oauth::clients::ClientCache;
use crate::oauth::registration::cimd::{CimdConfig, Fetcher};
use crate::oauth::registration::Offered;

pub struct Limits {
    pub login_account: FailureLimiter,
    pub login_address: FailureLimiter,
    /// Failures per account from any address: counted for a delay, never a
    /// lock-out (`http::pages`).
    pub login_delay: FailureLimiter,
    pub client: FailureLimiter,
    pub bearer_address: FailureLimiter,
    /// Failed registrations and registration-token checks, per address.
    pub registration_failures: FailureLimiter,
    /// Successful registrations, per address per hour; a client metadata
    /// document seen for the first time counts as one.
    pub registrations: super::quota::SuccessQuota,
    /// Client metadata documents fetched, per address per minute.
    pub document_fetches: super::quota::SuccessQuota,
    /// Client metadata documents fetched by this node, per second (one key).
    pub document_fetches_global: super::quota::SuccessQuota,
    /// SMTP AUTH failures per (mailbox address, client address).
    pub smtp: FailureLimiter,
}

impl Limits {
    /// The limits the settings give.
    pub fn new(r: &crate::config::RateLimits) -> Limits {
        Limits {
            login_account: FailureLimiter::new(r.login_failures, r.window_secs),
            login_address: FailureLimiter::new(r.login_failures * 4, r.window_secs),
            login_delay: FailureLimiter::new(u32::MAX, r.window_secs),
            client: FailureLimiter::new(r.client_failures, r.window_secs),
            bearer_address: FailureLimiter::new(r.bearer_failures, r.window_secs),
            registration_failures: FailureLimiter::new(r.registration_failures, r.window_secs),
            registrations: super::quota::SuccessQuota::new(r.registrations_per_hour, 3600),
            document_fetches: super::quota::SuccessQuota::new(r.cimd_fetches_per_address, 60),
            document_fetches_global: super::quota::SuccessQuota::new(r.cimd_fetches_per_second, 1),
            smtp: FailureLimiter::new(r.smtp_failures, r.window_secs),
        }
    }

    /// Every failure limiter, by its name in `/metrics`.
    pub fn failure_limiters(&self) -> [(&'static str, &FailureLimiter); 7] {
        [
            ("login_account", &self.login_account),
            ("login_address", &self.login_address),
            ("login_delay", &self.login_delay),
            ("client", &self.client),
            ("bearer_address", &self.bearer_address),
            ("registration_failures", &self.registration_failures),
            ("smtp", &self.smtp),
        ]
    }
}

pub struct Services {
    pub config: Config,
    /// `/v1`'s resource indicator and token audience (`{issuer}/v1`), made
    /// once.
    pub v1_resource: String,
    pub pool: Pool,
    pub credentials: Credentials,
    pub clients: ClientCache,
    /// The grants' shared write transactions on this node's database.
    pub writes: crate::db::group::Group,
    /// Client ID metadata documents, fetched (and cached) by client id URL.
    pub documents: Fetcher,
    /// JWK Sets of clients and trusted identity providers, by URL.
    pub jwks: crate::oauth::jwks::JwksCache,
    /// The one outbound HTTPS client (SSRF rules, bounded in flight): client
    /// metadata documents, webhook deliveries, the identity provider.
    pub outbound: crate::outbound::Client,
    pub limits: Option<Limits>,
    /// Whose `X-Forwarded-For` names the client (`KEYGATE_TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
    /// The registered protected resources, kept true by the revocation feed.
    pub resources: crate::resources::Registry,
    /// The keys leak reports must be signed with (`KEYGATE_LEAK_REPORT_KEYS`,
    /// read once at start); `None`: `POST /api-keys/leaks` does not exist.
    pub leak_report_keys: Option<LeakReportKeys>,
    /// The product's identity provider (`KEYGATE_OIDC_*`); `None` when not
    /// configured.
    pub signin: Option<crate::signin::Provider>,
}

impl Services {
    pub fn new(config: Config, pool: Pool) -> Result<Services, String> {
        crate::accounts::install_names(&super::names::AreaNames);
        let trusted_proxies = TrustedProxies::parse(&config.trusted_proxies)
            .map_err(|e| format!("KEYGATE_TRUSTED_PROXIES: {e}"))?;
        for net in trusted_proxies.wide() {
            log::warn!(
                "KEYGATE_TRUSTED_PROXIES: {net} is wider than /24 (IPv4) or /64 (IPv6): every \
                 address in it may name any client address in X-Forwarded-For; list your \
                 proxies' own addresses"
            );
        }
        let leak_report_keys = config
            .leak_report_keys_file
            .as_deref()
            .map(LeakReportKeys::load)
            .transpose()
            .map_err(|e| format!("{ENV_LEAK_REPORT_KEYS}: {e}"))?;
        let mut conn = pool
            .get()
            .map_err(|e| format!("cannot open the database: {e}"))?;
        let keys = KeyRing::load(
            &mut conn,
            &config.issuer,
            config.access_token_ttl,
            config.master_key,
        )
        .map_err(|e| format!("cannot load signing keys: {e}"))?;
        let cursor = crate::credentials::revocation::start(&mut conn)
            .map_err(|e| format!("cannot read the revocation feed: {e}"))?;
        let limits = config.rate_limits.as_ref().map(Limits::new);
        let outbound =
            crate::outbound::Client::new(&config.outbound_allowed_hosts, &config.outbound_ca_files)
                .map_err(|e| e.to_string())?;
        let documents = Fetcher::with_client(
            cimd_config(&config),
            Offered::new(crate::credentials::scopes::all_names()),
            outbound.clone(),
        );
        let jwks = crate::oauth::jwks::JwksCache::new(outbound.clone());
        // Clients are trusted in memory as long as credentials are.
        let clients = ClientCache::new(Bounds::from_config(&config).max_age);
        let credentials = Credentials {
            keys,
            cache: CredentialCache::new(cursor, Bounds::from_config(&config)),
            usage: UsageRecorder::default(),
            access_token_ttl: config.access_token_ttl,
            stored: crate::credentials::Stored {
                keys: &crate::apikeys::stored::KEYS,
                tokens: &crate::oauth::authorizations::TOKENS,
            },
            proof_uses: Default::default(),
            proof_keys: Default::default(),
        };
        let signin = config.oidc.clone().map(|settings| {
            crate::signin::Provider::new(settings, &config.issuer, outbound.clone())
        });
        let resources = crate::resources::Registry::new(Bounds::from_config(&config).max_age);
        Ok(Services {
            v1_resource: config.resource(),
            signin,
            config,
            pool,
            credentials,
            clients,
            writes: Default::default(),
            documents,
            jwks,
            outbound,
            limits,
            trusted_proxies,
            leak_report_keys,
            resources,
        })
    }
}

/// The fetcher's defaults (its client is the node's outbound client), with
/// `cimd_cache_ttl_secs` as the most seconds a good document is
/// cached (default 24 h; `Cache-Control` may ask for less).
fn cimd_config(config: &Config) -> CimdConfig {
    let mut cimd = CimdConfig::default();
    if let Some(secs) = config.cimd_cache_ttl_secs {
        let ttl = std::time::Duration::from_secs(secs);
        cimd.max_ttl = ttl;
        cimd.min_ttl = cimd.min_ttl.min(ttl);
        cimd.default_ttl = cimd.default_ttl.min(ttl);
    }
    cimd
}

impl Services {
    /// The issuer's view of this node.
    pub fn issuer(&self) -> crate::oauth::Issuer<'_> {
        crate::oauth::Issuer {
            config: &self.config,
            credentials: &self.credentials,
            clients: &self.clients,
            writes: &self.writes,
            resources: &self.resources,
            extras: None,
        }
    }
}

/// What the SMTP authenticator uses of a node.
impl crate::mailboxes::authenticator::Node for Services {
    fn pool(&self) -> &Pool {
        &self.pool
    }
    fn credentials(&self) -> &Credentials {
        &self.credentials
    }
    fn smtp_failures(&self) -> Option<&dyn crate::mailboxes::authenticator::FailureLimit> {
        self.limits.as_ref().map(|l| &l.smtp as _)
    }
}
