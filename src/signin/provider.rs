//! The conversation with the provider, all of it through the one outbound
//! client (`crate::outbound`: https only, special-use addresses refused unless
//! allow-listed, no redirects, bounded time and size): discovery, the JWKS,
//! the token endpoint and UserInfo. The discovery document and the JWKS are
//! cached (one of each) for as long as their `Cache-Control` says, within a
//! minute and a day; a token signed with a `kid` the cached set lacks makes
//! the set be fetched again, at most once a minute.

use super::discovery::{self, Metadata};
use super::id_token::Keys;
use crate::config::OidcSettings;
use crate::outbound::{self, Limits};
use base64::Engine;
use hyper::header::{self, HeaderValue};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use url::Url;

/// The least time between two fetches of the JWKS for an unknown `kid`.
pub const JWKS_REFETCH: Duration = Duration::from_secs(60);

/// How long a failed fetch is answered from memory: while the provider is
/// down, sign-ins queued behind one fetch fail at once instead of each
/// waiting out its own timeout.
const FAILURE_MEMORY: Duration = Duration::from_secs(5);

const LIMITS: Limits = Limits {
    connect_timeout: Duration::from_secs(5),
    total_timeout: Duration::from_secs(10),
    max_body_bytes: 256 * 1024,
};

/// The provider keygate signs people in with, and what it has cached of it.
pub struct Provider {
    pub settings: OidcSettings,
    /// `{KEYGATE_ISSUER}/login/oidc/callback`.
    pub redirect_uri: String,
    client: outbound::Client,
    metadata: Mutex<MetadataCache>,
    keys: Mutex<KeyCache>,
}

#[derive(Default)]
struct MetadataCache {
    /// The document and when it expires.
    doc: Option<(Arc<Metadata>, Instant)>,
    /// The last failed fetch: when, and why.
    failed: Option<(Instant, String)>,
}

#[derive(Default)]
struct KeyCache {
    /// The set, the URL it came from and when it expires.
    set: Option<(Arc<Keys>, Url, Instant)>,
    fetched_at: Option<Instant>,
    /// The last failed fetch: when, and why.
    failed: Option<(Instant, String)>,
}

/// What the token endpoint answered.
pub struct Tokens {
    pub id_token: String,
    pub access_token: Option<String>,
}

/// The email UserInfo gave for a subject.
pub struct UserInfo {
    pub email: Option<String>,
    pub email_verified: Option<bool>,
}

impl Provider {
    pub fn new(settings: OidcSettings, keygate_issuer: &str, client: outbound::Client) -> Self {
        Provider {
            settings,
            redirect_uri: format!("{keygate_issuer}/login/oidc/callback"),
            client,
            metadata: Mutex::new(MetadataCache::default()),
            keys: Mutex::new(KeyCache::default()),
        }
    }

    /// The discovery document, from the cache while it is fresh.
    pub async fn metadata(&self) -> Result<Arc<Metadata>, String> {
        let mut cached = self.metadata.lock().await;
        let now = Instant::now();
        if let Some((m, until)) = cached.doc.as_ref() {
            if now < *until {
                return Ok(m.clone());
            }
        }
        if let Some((at, why)) = &cached.failed {
            if now.duration_since(*at) < FAILURE_MEMORY {
                return Err(why.clone());
            }
        }
        match self.fetch_metadata().await {
            Ok((m, ttl)) => {
                *cached = MetadataCache {
                    doc: Some((m.clone(), now + ttl)),
                    failed: None,
                };
                Ok(m)
            }
            Err(why) => {
                cached.failed = Some((now, why.clone()));
                Err(why)
            }
        }
    }

    async fn fetch_metadata(&self) -> Result<(Arc<Metadata>, Duration), String> {
        let url = discovery::discovery_url(&self.settings.issuer)?;
        let r = self
            .client
            .get_json(&url, &LIMITS)
            .await
            .map_err(|e| format!("discovery at {url}: {e}"))?;
        let m = Arc::new(discovery::parse(&self.settings.issuer, &r.body)?);
        let ttl = discovery::cache_ttl(r.header_list(header::CACHE_CONTROL).as_deref());
        Ok((m, ttl))
    }

    /// The provider's keys from `jwks_uri`, fetched again when the cache has
    /// expired, or when it lacks `kid` and was not fetched in the last
    /// minute.
    pub async fn keys(&self, jwks_uri: &Url, kid: Option<&str>) -> Result<Arc<Keys>, String> {
        let mut cache = self.keys.lock().await;
        let now = Instant::now();
        if let Some((keys, url, until)) = cache.set.as_ref() {
            let fresh = url == jwks_uri && now < *until;
            let knows = kid.is_none_or(|k| keys.has_kid(k));
            let recently = cache
                .fetched_at
                .is_some_and(|t| now.duration_since(t) < JWKS_REFETCH);
            if fresh && (knows || recently) {
                return Ok(keys.clone());
            }
        }
        if let Some((at, why)) = &cache.failed {
            if now.duration_since(*at) < FAILURE_MEMORY {
                return Err(why.clone());
            }
        }
        cache.fetched_at = Some(now);
        let fetched = async {
            let r = self
                .client
                .get_json(jwks_uri, &LIMITS)
                .await
                .map_err(|e| format!("JWKS at {jwks_uri}: {e}"))?;
            Ok::<_, String>((Keys::parse(&r.body)?, r))
        }
        .await;
        let (keys, r) = match fetched {
            Ok(ok) => ok,
            Err(why) => {
                cache.failed = Some((now, why.clone()));
                return Err(why);
            }
        };
        cache.failed = None;
        let keys = Arc::new(keys);
        let ttl = discovery::cache_ttl(r.header_list(header::CACHE_CONTROL).as_deref());
        cache.set = Some((keys.clone(), jwks_uri.clone(), now + ttl));
        Ok(keys)
    }

    /// The authorization request's URL (OpenID Connect Core §3.1.2.1, PKCE
    /// with S256).
    pub fn authorization_url(
        &self,
        m: &Metadata,
        state: &str,
        nonce: &str,
        pkce_verifier: &str,
    ) -> String {
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(crate::crypto::sha256(pkce_verifier.as_bytes()));
        let mut url = m.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", &self.settings.scopes.join(" "))
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        url.to_string()
    }

    /// The code exchanged at the token endpoint with `client_secret_basic`
    /// (RFC 6749 §2.3.1: id and secret form-encoded before base64).
    pub async fn exchange(
        &self,
        m: &Metadata,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<Tokens, String> {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            enc(&self.settings.client_id),
            enc(&self.settings.client_secret)
        ));
        let auth = HeaderValue::from_str(&format!("Basic {basic}"))
            .map_err(|_| "the client credentials cannot be sent".to_string())?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("code_verifier", pkce_verifier)
            .finish();
        let headers = [
            (header::AUTHORIZATION, auth),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            ),
            (header::ACCEPT, HeaderValue::from_static("application/json")),
        ];
        let r = self
            .client
            .post(&m.token_endpoint, &headers, body.into_bytes(), &LIMITS)
            .await
            .map_err(|e| format!("token endpoint {}: {e}", m.token_endpoint))?;
        token_response(r.status, &r.body)
    }

    /// UserInfo's `email` and `email_verified`, when they describe `subject`
    /// (OpenID Connect Core §5.3.2: its `sub` must be the ID token's).
    pub async fn userinfo(
        &self,
        m: &Metadata,
        access_token: &str,
        subject: &str,
    ) -> Result<UserInfo, String> {
        let Some(url) = &m.userinfo_endpoint else {
            return Ok(UserInfo {
                email: None,
                email_verified: None,
            });
        };
        let auth = HeaderValue::from_str(&format!("Bearer {access_token}"))
            .map_err(|_| "the access token cannot be sent".to_string())?;
        let r = self
            .client
            .get_json_with(url, &[(header::AUTHORIZATION, auth)], &LIMITS)
            .await
            .map_err(|e| format!("UserInfo at {url}: {e}"))?;
        #[derive(Deserialize)]
        struct Info {
            sub: String,
            email: Option<String>,
            email_verified: Option<super::id_token::Flag>,
        }
        let info: Info = serde_json::from_slice(&r.body)
            .map_err(|e| format!("UserInfo's answer is not valid: {e}"))?;
        if info.sub != subject {
            return Err("UserInfo describes another subject".into());
        }
        Ok(UserInfo {
            email: info.email,
            email_verified: info.email_verified.map(|f| f.is_true()),
        })
    }
}

/// The token endpoint's answer: an ID token (and perhaps an access token), or
/// the RFC 6749 §5.2 error it gave.
fn token_response(status: u16, body: &[u8]) -> Result<Tokens, String> {
    #[derive(Deserialize)]
    struct Answer {
        id_token: Option<String>,
        access_token: Option<String>,
        error: Option<String>,
        error_description: Option<String>,
    }
    let a: Answer = serde_json::from_slice(body)
        .map_err(|e| format!("the token endpoint answered {status} with no JSON: {e}"))?;
    if status != 200 || a.error.is_some() {
        return Err(format!(
            "the token endpoint answered {status}: {} {}",
            a.error.unwrap_or_default(),
            a.error_description.unwrap_or_default()
        ));
    }
    let id_token = a
        .id_token
        .ok_or("the token endpoint's answer has no id_token")?;
    Ok(Tokens {
        id_token,
        access_token: a.access_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_answer_needs_an_id_token_and_no_error() {
        let ok = token_response(200, br#"{"id_token":"a.b.c","access_token":"at"}"#).unwrap();
        assert_eq!(ok.id_token, "a.b.c");
        assert!(token_response(200, br#"{"access_token":"at"}"#).is_err());
        let e = token_response(400, br#"{"error":"invalid_grant"}"#)
            .err()
            .unwrap();
        assert!(e.contains("invalid_grant"), "{e}");
        assert!(token_response(500, b"oops").is_err());
    }
}
