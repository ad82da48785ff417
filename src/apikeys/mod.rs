//! API keys: workspace-scoped secrets for a workspace's own integrations.
//!
//! Format: `kgk_` + a 10-character public id + `_` + 32 random characters
//! (about 190 bits) + a 6-character CRC-32 checksum, all base62, so a secret
//! scanner can tell a real key from noise without asking keygate (as GitHub's
//! tokens do). Only the SHA-256 of the whole key is stored. The displayable
//! prefix is `kgk_` + the public id: it names the key and reveals nothing.

//!
//! The lifecycle (create, list, rotate with or without a grace period, revoke)
//! is in [`lifecycle`]; leak reports, which revoke keys found in public, in
//! [`leak_reports`] (the wire format in [`leaks`]).

pub mod access;
pub mod grace;
pub mod leak_reports;
pub mod leaks;
mod lifecycle;
pub mod stored;

pub use self::access::{Access, KeyStatus};
pub use self::lifecycle::*;
use crate::accounts;
pub use crate::credentials::address::IpAllowList;
use crate::credentials::key_format::API_KEY;
use crate::credentials::revocation::{self, Event};
use crate::db::schema::api_keys;
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;
use serde::Serialize;
use std::collections::HashMap;

/// A key that ends within this many seconds is flagged as expiring soon.
pub const EXPIRING_SOON_SECS: i64 = 7 * 86_400;

/// Who created a key from the command line (the security log's CLI actor).
pub const CLI_ACTOR: &str = crate::accounts::audit::CLI_ACTOR;

#[derive(Queryable, Selectable, Insertable, Serialize, Clone, Debug)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub public_id: String,
    #[serde(skip)]
    pub secret_hash: String,
    pub access: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub rotated_at: Option<i64>,
    pub usage_count: i64,
    pub last_used_at: Option<i64>,
    /// The address allowlist in `IpAllowList`'s storage form; `None`: anywhere.
    pub allowed_ips: Option<String>,
    /// The scopes of a `custom` key, space-separated; `None` otherwise.
    pub scopes: Option<String>,
    /// The client address of the last use (batched with the usage counts).
    pub last_used_ip: Option<String>,
    /// The secret a rotation with a grace period replaced, until it ends.
    #[serde(skip)]
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    /// The one mailbox a restricted key may see on `/v1`; `None` for a workspace key.
    pub mailbox_id: Option<String>,
    /// What the key is for, in its owner's words (empty when not given).
    pub description: String,
}

impl ApiKey {
    pub fn prefix(&self) -> String {
        API_KEY.display_prefix(&self.public_id)
    }
    pub fn status_at(&self, now: i64) -> KeyStatus {
        KeyStatus::of(self.revoked_at, self.expires_at, now)
    }
    pub fn access_level(&self) -> Access {
        Access::from_row(&self.access, self.scopes.as_deref())
    }
    /// The scopes the key grants.
    pub fn scope_names(&self) -> Vec<String> {
        self.access_level().scopes()
    }
    /// The allowlist's networks as CIDRs; `None` for a key usable anywhere.
    /// A stored value that does not parse is shown as it is (the bearer
    /// check refuses such a key).
    pub fn allowed_ip_list(&self) -> Option<Vec<String>> {
        self.allowed_ips
            .as_deref()
            .map(|s| match IpAllowList::from_storage(s) {
                Ok(list) => list.to_strings(),
                Err(_) => vec![s.to_string()],
            })
    }
    /// Active and ending within [`EXPIRING_SOON_SECS`].
    /// Active, used once but not in the last 30 days (a key never used is
    /// marked so on its own).
    pub fn unused_for_30_days(&self, now: i64) -> bool {
        const DAYS_30: i64 = 30 * 86_400;
        if self.status_at(now) != KeyStatus::Active {
            return false;
        }
        match self.last_used_at {
            Some(t) => now - t >= DAYS_30,
            None => false,
        }
    }

    pub fn expiring_soon(&self, now: i64) -> bool {
        self.status_at(now) == KeyStatus::Active
            && self
                .expires_at
                .is_some_and(|e| e - now <= EXPIRING_SOON_SECS)
    }
    /// When the secret a rotation replaced stops, while it still works.
    pub fn grace_ends_at(&self, now: i64) -> Option<i64> {
        self.previous_secret_expires_at
            .filter(|&e| e > now && self.previous_secret_hash.is_some())
    }
}

/// A key with its full secret, which exists only in this value.
pub struct IssuedKey {
    pub key: ApiKey,
    pub secret: String,
}

/// Changes a workspace's plan. Its cached API keys are looked at again on every
/// node, since the plan decides whether they work at all.
pub fn set_plan(
    conn: &mut DbConn,
    workspace_id: &str,
    plan: accounts::Plan,
) -> Result<accounts::Workspace> {
    db::write_tx(conn, |conn| {
        let ws = accounts::set_plan_in_tx(conn, workspace_id, plan)?;
        revocation::record(conn, &[Event::workspace(workspace_id)])?;
        Ok(ws)
    })
}

/// `--expires YYYY-MM-DD` is the last day the key works: it ends at 24:00 UTC
/// that day. A day already past is refused.
pub fn parse_expiry(raw: Option<&str>) -> Result<Option<i64>> {
    let Some(raw) = raw
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "never")
    else {
        return Ok(None);
    };
    let well_formed = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let day = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .filter(|_| well_formed)
        .ok_or_else(|| {
            Error::invalid(format!("invalid expiry date {raw:?}: expected YYYY-MM-DD"))
        })?;
    if day.format("%Y").to_string().as_str() > "9998" {
        return Err(Error::invalid(format!(
            "the expiry date {raw} is too far in the future"
        )));
    }
    let today = chrono::Utc::now().date_naive();
    if day < today {
        return Err(Error::invalid(format!(
            "the expiry date {raw} is in the past"
        )));
    }
    let end = day
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .ok_or_else(|| Error::invalid(format!("invalid expiry date {raw:?}")))?;
    Ok(Some(end.and_utc().timestamp()))
}

pub use crate::credentials::key_format::validate_key_name;

/// The keys restricted to a mailbox, which end with it
/// (`mailboxes::lifecycle::delete`).
pub struct RestrictedKeys;
pub static RESTRICTED_KEYS: RestrictedKeys = RestrictedKeys;

impl crate::mailboxes::lifecycle::Dependents for RestrictedKeys {
    fn end_with(
        &self,
        conn: &mut DbConn,
        mailbox_id: &str,
        by: crate::accounts::audit::Actor,
    ) -> Result<Vec<Event>> {
        revoke_restricted_to_in_tx(conn, mailbox_id, by)
    }
}

/// The names of the keys among `ids`, for the security log.
pub fn names_of(conn: &mut DbConn, ids: &[String]) -> Result<HashMap<String, String>> {
    let named = api_keys::table.filter(api_keys::id.eq_any(ids));
    Ok(db::id_map(
        conn,
        named.select((api_keys::id, api_keys::name)),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_look_like_secrets_are_refused() {
        assert!(validate_key_name("CRM sync").is_ok());
        assert!(validate_key_name("prod-main-app").is_ok());
        assert!(validate_key_name("kgk_AbCdEfGhIj_x").is_err());
        assert!(validate_key_name("a8F3kL0pQ9zX7mN2bV6cR1tY").is_err());
        assert!(validate_key_name("  ").is_err());
    }
}
