//! What the node's shared parts ask of the `api_keys` table: the bearer
//! check's read (through `credentials::StoredCredentials`), batched usage,
//! and the end of grace periods.

use super::access::{Access, KeyStatus, MAILBOX_RESTRICTED_SCOPES};
use crate::credentials::address::AddressRule;
use crate::credentials::cache::CachedKey;
use crate::credentials::key_format::API_KEY;
use crate::crypto;
use crate::db::schema::api_keys;
use crate::db::{self, DbConn};
use crate::error::Result;
use diesel::prelude::*;

/// The API keys' store for the bearer check (`credentials::Stored`).
pub struct Keys;
pub static KEYS: Keys = Keys;

impl crate::credentials::StoredKeys for Keys {
    fn api_key(&self, conn: &mut DbConn, presented: &str) -> Result<Option<CachedKey>> {
        lookup(conn, presented)
    }
}

/// The bearer check's database path: the key if it is well formed, known,
/// matches in constant time, is active and its workspace's plan has API access.
///
/// The secret a rotation replaced still matches until its grace period ends;
/// its cache entry then carries that end as its expiry, so every node stops it
/// at the same second without being told.
pub fn lookup(conn: &mut DbConn, presented: &str) -> Result<Option<CachedKey>> {
    let Some(public_id) = API_KEY.parse(presented) else {
        return Ok(None);
    };
    let row: Option<KeyRow> = api_keys::table
        .filter(api_keys::public_id.eq(public_id))
        .select(KeyRow::as_select())
        .first(conn)
        .optional()?;
    let Some(key) = row else {
        return Ok(None);
    };
    let now = db::now();
    let presented_hash = crypto::sha256_hex(presented);
    let expires_at = if crypto::ct_eq(&presented_hash, &key.secret_hash) {
        key.expires_at
    } else {
        match (&key.previous_secret_hash, key.previous_secret_expires_at) {
            (Some(previous), Some(grace_end))
                if grace_end > now && crypto::ct_eq(&presented_hash, previous) =>
            {
                Some(key.expires_at.map_or(grace_end, |e| e.min(grace_end)))
            }
            _ => return Ok(None),
        }
    };
    if KeyStatus::of(key.revoked_at, expires_at, now) != KeyStatus::Active
        || !crate::accounts::has_api_access(conn, &key.workspace_id)?
    {
        return Ok(None);
    }
    // A key restricted to one mailbox holds only what reading it needs,
    // whatever its access level says.
    let scopes = match &key.mailbox_id {
        Some(_) => MAILBOX_RESTRICTED_SCOPES.to_vec(),
        None => Access::from_row(&key.access, key.scopes.as_deref()).scope_names(),
    };
    Ok(Some(CachedKey {
        id: key.id,
        workspace_id: key.workspace_id,
        scopes,
        expires_at,
        addresses: AddressRule::from_column(key.allowed_ips.as_deref()),
        mailbox_id: key.mailbox_id,
    }))
}

/// The columns of a key the bearer check reads.
#[derive(Queryable, Selectable)]
#[diesel(table_name = api_keys)]
struct KeyRow {
    id: String,
    workspace_id: String,
    secret_hash: String,
    access: String,
    scopes: Option<String>,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    allowed_ips: Option<String>,
    previous_secret_hash: Option<String>,
    previous_secret_expires_at: Option<i64>,
    mailbox_id: Option<String>,
}

/// Adds batched usage to the keys: the count, the last use and the address it
/// came from (kept as it was when the batch has none). Hundreds of keys a
/// statement: a flush of a large working set is a few statements, not one a key.
pub fn add_usage(conn: &mut DbConn, uses: &crate::credentials::usage::KeyCounts) -> Result<()> {
    use diesel::sql_types::{BigInt, Nullable, Text};
    db::write_values(
        conn,
        uses,
        4,
        |values| {
            format!(
                "UPDATE api_keys SET usage_count = api_keys.usage_count + v.column2, \
                 last_used_at = v.column3, last_used_ip = COALESCE(v.column4, api_keys.last_used_ip) \
                 FROM (VALUES {values}) AS v WHERE api_keys.id = v.column1"
            )
        },
        |q, (id, u)| {
            q.bind::<Text, _>(id.to_string())
                .bind::<BigInt, _>(u.count)
                .bind::<BigInt, _>(u.last_used)
                .bind::<Nullable<Text>, _>(u.last_ip.map(|ip| ip.to_string()))
        },
    )?;
    Ok(())
}

/// Housekeeping: forgets the secrets whose grace period has ended. They
/// stopped working at that second already (the lookup compares the end, and
/// cached entries carry it); this only keeps the rows tidy.
pub fn end_grace_periods(conn: &mut DbConn, now: i64) -> Result<usize> {
    Ok(
        diesel::update(api_keys::table.filter(api_keys::previous_secret_expires_at.le(now)))
            .set((
                api_keys::previous_secret_hash.eq(None::<String>),
                api_keys::previous_secret_expires_at.eq(None::<i64>),
            ))
            .execute(conn)?,
    )
}
