//! Webhook endpoints as the CLI and the admin API manage them, and the
//! delivery of the outbox's events to them ([`delivery`]), signed as the
//! Standard Webhooks specification says. The rows are `events`' (the
//! outbox); this area adds the secret (sealed at rest under
//! `KEYGATE_MASTER_KEY`, as signing keys are) and the URL rules of the
//! outbound client.

pub mod delivery;

use crate::config::MasterKey;
use crate::credentials::sealing;
use crate::db::paging::{Listed, Paging};
use crate::db::DbConn;
use crate::error::{Error, Result};
use crate::events::deliveries::{self, Delivery};
use crate::events::endpoints::{self, Endpoint};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Serialize;

/// The secret's prefix (Standard Webhooks: `whsec_` + base64 of the key).
pub const SECRET_PREFIX: &str = "whsec_";
/// The longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// An endpoint as the CLI and the admin API show it.
#[derive(Serialize, Clone, Debug)]
pub struct EndpointView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: String,
    /// Only in the answer that creates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<&Endpoint> for EndpointView {
    fn from(e: &Endpoint) -> Self {
        EndpointView {
            id: e.id.clone(),
            url: e.url.clone(),
            events: e.types(),
            created_at: crate::db::rfc3339(e.created_at),
            secret: None,
        }
    }
}

/// A delivery as listed.
#[derive(Serialize, Clone, Debug)]
pub struct DeliveryView {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        let pending = d.status == deliveries::PENDING;
        DeliveryView {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            next_attempt_at: pending.then(|| crate::db::rfc3339(d.next_attempt_at)),
            created_at: crate::db::rfc3339(d.created_at),
        }
    }
}

/// Checks a webhook URL: at most 2 KiB, `https`, and no special-use address
/// unless its host is in `allowed_hosts` (`KEYGATE_OUTBOUND_ALLOWED_HOSTS`).
pub fn check_url(raw: &str, allowed_hosts: &[String]) -> Result<url::Url> {
    let raw = raw.trim();
    if raw.len() > MAX_URL_LEN {
        return Err(Error::invalid(format!(
            "the webhook URL must be at most {MAX_URL_LEN} characters"
        )));
    }
    let url = url::Url::parse(raw)
        .map_err(|e| Error::invalid(format!("the webhook URL {raw:?} is not a URL: {e}")))?;
    crate::outbound::check_saved_url(&url, allowed_hosts).map_err(|e| {
        Error::invalid(format!(
            "the webhook URL must be an https URL of a public host: {e}"
        ))
    })?;
    Ok(url)
}

/// Creates an endpoint for `types` (none: every type) and answers it with its
/// secret, shown this once.
pub fn create(
    conn: &mut DbConn,
    allowed_hosts: &[String],
    master_key: Option<&MasterKey>,
    url: &str,
    types: &[String],
) -> Result<EndpointView> {
    let types = endpoints::parse_types(types)?;
    let url = check_url(url, allowed_hosts)?;
    let key = crate::crypto::random_bytes32();
    let sealed = sealing::seal(&key, master_key).map_err(Error::internal)?;
    let endpoint = endpoints::insert(conn, url.as_str(), &types, sealed)?;
    let mut view = EndpointView::from(&endpoint);
    view.secret = Some(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)));
    Ok(view)
}

pub fn list(conn: &mut DbConn, paging: &Paging) -> Result<Listed<EndpointView>> {
    Ok(endpoints::list(conn, paging)?.map(|e| EndpointView::from(&e)))
}

pub fn delete(conn: &mut DbConn, id: &str) -> Result<()> {
    endpoints::delete(conn, id)
}

pub fn deliveries(
    conn: &mut DbConn,
    endpoint_id: &str,
    paging: &Paging,
) -> Result<Listed<DeliveryView>> {
    Ok(deliveries::list(conn, endpoint_id, paging)?.map(DeliveryView::from))
}

/// The signing key of a stored endpoint (one saved before a master key was
/// set is still read in clear).
pub fn key_of(endpoint: &Endpoint, master_key: Option<&MasterKey>) -> Result<Vec<u8>> {
    let stored = &endpoint.secret_sealed;
    if sealing::is_sealed(stored) {
        sealing::open(stored, master_key).map_err(Error::internal)
    } else {
        sealing::open_clear(stored).map_err(Error::internal)
    }
}

/// The `webhook-signature` header: `v1,` + base64 of HMAC-SHA256 over
/// `{id}.{timestamp}.{body}` (Standard Webhooks).
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(tag.as_ref()))
}
