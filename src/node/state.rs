//! What every request handler and background task of a node shares.

use super::ratelimit::FailureLimiter;
use crate::config::Config;
use crate::credentials::address::TrustedProxies;
use crate::credentials::cache::CredentialCache;
use crate::credentials::signing_keys::KeyRing;
use crate::credentials::usage::UsageRecorder;
use crate::credentials::Credentials;
use crate::db::Pool;
use crate::oauth::clients::ClientCache;

pub struct Limits {
    pub login_account: FailureLimiter,
    pub login_address: FailureLimiter,
    pub client: FailureLimiter,
    pub bearer_address: FailureLimiter,
    /// SMTP AUTH failures per (mailbox address, client address).
    pub smtp: FailureLimiter,
}

pub struct Services {
    pub config: Config,
    pub pool: Pool,
    pub credentials: Credentials,
    pub clients: ClientCache,
    pub limits: Option<Limits>,
    /// Whose `X-Forwarded-For` names the client (`KEYGATE_TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
}

impl Services {
    pub fn new(config: Config, pool: Pool) -> Result<Services, String> {
        let trusted_proxies = TrustedProxies::parse(&config.trusted_proxies)
            .map_err(|e| format!("KEYGATE_TRUSTED_PROXIES: {e}"))?;
        let mut conn = pool
            .get()
            .map_err(|e| format!("cannot open the database: {e}"))?;
        let keys = KeyRing::load(&mut conn, &config.issuer, config.access_token_ttl)
            .map_err(|e| format!("cannot load signing keys: {e}"))?;
        let start_seq =
            crate::credentials::revocation::latest_seq(&mut conn).map_err(|e| e.to_string())?;
        let limits = config.rate_limits.as_ref().map(|r| Limits {
            login_account: FailureLimiter::new(r.login_failures, r.window_secs),
            login_address: FailureLimiter::new(r.login_failures * 4, r.window_secs),
            client: FailureLimiter::new(r.client_failures, r.window_secs),
            bearer_address: FailureLimiter::new(r.bearer_failures, r.window_secs),
            smtp: FailureLimiter::new(r.smtp_failures, r.window_secs),
        });
        let credentials = Credentials {
            keys,
            cache: CredentialCache::new(start_seq),
            usage: UsageRecorder::default(),
            access_token_ttl: config.access_token_ttl,
        };
        Ok(Services {
            config,
            pool,
            credentials,
            clients: ClientCache::default(),
            limits,
            trusted_proxies,
        })
    }
}

impl Services {
    /// The issuer's view of this node.
    pub fn issuer(&self) -> crate::oauth::Issuer<'_> {
        crate::oauth::Issuer {
            config: &self.config,
            credentials: &self.credentials,
            clients: &self.clients,
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
