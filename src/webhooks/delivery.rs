//! Sends the outbox's due deliveries: claimed under a lease (so no two nodes
//! send the same attempt at once, `events::deliveries`), signed anew at each
//! attempt with the time it is sent, posted through the one outbound client
//! (https, SSRF rules, no redirects, 10 s), and the outcome written back: a
//! `2xx` is delivered, anything else waits for the next attempt of the
//! schedule. The `webhook-id` is the event's id, the same at every attempt.

use crate::config::MasterKey;
use crate::db::{self, Pool};
use crate::error::{Error, Result};
use crate::events::deliveries::{self, Claimed};
use crate::outbound::{Client, Limits};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use std::time::Duration;

/// Deliveries claimed at a time by one node.
pub const BATCH: i64 = 32;

/// The bounds of one attempt: a `2xx` within 10 s is success.
pub const LIMITS: Limits = Limits {
    connect_timeout: Duration::from_secs(5),
    total_timeout: Duration::from_secs(10),
    max_body_bytes: 64 * 1024,
};

/// What a node needs to deliver.
#[derive(Clone)]
pub struct Deliverer {
    pub pool: Pool,
    pub client: Client,
    pub master_key: Option<MasterKey>,
}

impl Deliverer {
    /// Claims the due deliveries and sends them, all at once; answers how
    /// many were attempted.
    pub async fn deliver_due(&self) -> Result<usize> {
        let pool = self.pool.clone();
        let owner = db::new_id();
        let claimed = tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            deliveries::claim(&mut conn, &owner, BATCH, db::now())
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
        let n = claimed.len();
        let attempts = claimed.into_iter().map(|c| self.attempt(c));
        futures_util::future::join_all(attempts).await;
        Ok(n)
    }

    async fn attempt(&self, claimed: Claimed) {
        let outcome = self.send(&claimed).await;
        let (ok, code) = match &outcome {
            Ok(code) => ((200..300).contains(code), Some(*code)),
            Err(e) => {
                log::info!(
                    "webhook delivery {} to endpoint {} failed: {e}",
                    claimed.delivery.id,
                    claimed.endpoint.id
                );
                (false, None)
            }
        };
        let pool = self.pool.clone();
        let delivery = claimed.delivery;
        let written = tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            deliveries::finish(&mut conn, &delivery, ok, code)
        })
        .await;
        if let Ok(Err(e)) | Err(e) = written.map_err(|e| Error::internal(e.to_string())) {
            log::warn!("recording a webhook delivery's outcome failed: {e}");
        }
    }

    /// One signed POST; the status code answered.
    async fn send(&self, claimed: &Claimed) -> std::result::Result<u16, String> {
        let url = url::Url::parse(&claimed.endpoint.url).map_err(|e| e.to_string())?;
        let key = super::key_of(&claimed.endpoint, self.master_key.as_ref())
            .map_err(|e| e.to_string())?;
        let id = &claimed.delivery.event_id;
        let timestamp = db::now();
        let signature = super::signature(&key, id, timestamp, &claimed.body);
        let header = |v: &str| HeaderValue::from_str(v).map_err(|e| e.to_string());
        let headers = [
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (HeaderName::from_static("webhook-id"), header(id)?),
            (
                HeaderName::from_static("webhook-timestamp"),
                header(&timestamp.to_string())?,
            ),
            (
                HeaderName::from_static("webhook-signature"),
                header(&signature)?,
            ),
        ];
        let response = self
            .client
            .post(&url, &headers, claimed.body.clone().into_bytes(), &LIMITS)
            .await
            .map_err(|e| e.to_string())?;
        Ok(response.status)
    }
}

/// How often a node looks for due deliveries.
pub const POLL: Duration = Duration::from_millis(500);

/// Delivers due events until the task is dropped.
pub async fn run(deliverer: Deliverer) {
    loop {
        tokio::time::sleep(POLL).await;
        match deliverer.deliver_due().await {
            Ok(_) => {}
            Err(e) if e.is_unavailable() => {}
            Err(e) => log::warn!("webhook deliveries: {e}"),
        }
    }
}
