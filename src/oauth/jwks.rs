//! JWK Sets fetched from the URLs clients and identity providers publish
//! them at (`jwks_uri`), through the one outbound client, and cached within
//! bounds: a set is kept [`MAX_AGE`] at most, at most [`MAX_ENTRIES`] sets,
//! and a JWT naming a `kid` the cached set lacks fetches the set again at
//! most once per [`REFETCH_AFTER`] (a key rotated in by its owner is picked
//! up; a stream of made-up `kid`s costs one fetch a minute).

use crate::credentials::jose;
use crate::outbound;
use jsonwebtoken::jwk::JwkSet;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use url::Url;

/// The longest a fetched set is used.
pub const MAX_AGE: Duration = Duration::from_secs(600);
/// How soon an unknown `kid` may fetch a set again.
pub const REFETCH_AFTER: Duration = Duration::from_secs(60);
/// The most sets cached.
pub const MAX_ENTRIES: usize = 1000;

const LIMITS: outbound::Limits = outbound::Limits {
    connect_timeout: Duration::from_secs(3),
    total_timeout: Duration::from_secs(5),
    max_body_bytes: 64 * 1024,
};

struct Entry {
    set: Arc<JwkSet>,
    fetched: Instant,
}

/// The fetched sets, by URL. Cheap to clone.
#[derive(Clone)]
pub struct JwksCache {
    client: outbound::Client,
    sets: Arc<Mutex<HashMap<String, Entry>>>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache").finish_non_exhaustive()
    }
}

impl JwksCache {
    pub fn new(client: outbound::Client) -> Self {
        JwksCache {
            client,
            sets: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.sets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The set at `url` that holds `kid` (or any set, without `kid`): from
    /// the cache, else fetched. `Err` says why, in words a client may read.
    pub async fn get(&self, url: &str, kid: Option<&str>) -> Result<Arc<JwkSet>, String> {
        if let Some(set) = self.cached(url, kid) {
            return Ok(set);
        }
        let parsed = Url::parse(url).map_err(|_| "the JWK Set URL is not a URL".to_string())?;
        let response = self.client.get_json(&parsed, &LIMITS).await.map_err(|e| {
            log::info!("JWK Set {url}: {e}");
            "the JWK Set could not be fetched".to_string()
        })?;
        let value: serde_json::Value = serde_json::from_slice(&response.body)
            .map_err(|_| "the JWK Set is not JSON".to_string())?;
        let set = Arc::new(jose::parse_jwks(&value)?);
        self.store(url, set.clone());
        Ok(set)
    }

    /// A cached set that will do: fresh, and holding `kid`, or fetched too
    /// recently to fetch again.
    fn cached(&self, url: &str, kid: Option<&str>) -> Option<Arc<JwkSet>> {
        let sets = self.lock();
        let e = sets.get(url)?;
        let age = e.fetched.elapsed();
        if age > MAX_AGE {
            return None;
        }
        let has_kid = kid.is_none_or(|k| e.set.find(k).is_some());
        (has_kid || age < REFETCH_AFTER).then(|| e.set.clone())
    }

    fn store(&self, url: &str, set: Arc<JwkSet>) {
        let mut sets = self.lock();
        if sets.len() >= MAX_ENTRIES && !sets.contains_key(url) {
            sets.retain(|_, e| e.fetched.elapsed() <= MAX_AGE);
            if sets.len() >= MAX_ENTRIES {
                let oldest = sets
                    .iter()
                    .min_by_key(|(_, e)| e.fetched)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    sets.remove(&k);
                }
            }
        }
        sets.insert(
            url.to_string(),
            Entry {
                set,
                fetched: Instant::now(),
            },
        );
    }

    /// How many sets are cached.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
