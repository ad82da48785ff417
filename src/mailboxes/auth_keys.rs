//! Mailbox auth keys: the SMTP password of one mailbox, one key per sending tool.
//!
//! Format: the API key's ([`SecretFormat`]) with the prefix `kgm_` (see
//! `apikeys::leaks` for why): `kgm_` + a 10-character public id + `_` + 32
//! random characters + a 6-character CRC-32 checksum, all base62. Only the
//! SHA-256 of the whole key is stored; the displayable prefix is `kgm_` + the
//! public id. A key is `active` or `disabled`; disabling, rotating (a new secret
//! for the same key) and deleting each write a revocation event, so the key's
//! old secret fails at the next authentication on every node.

use crate::accounts::audit::Actor;
use crate::credentials::address::{AddressRule, IpAllowList};
use crate::credentials::cache::{CachedAuthKey, CredentialCache};
use crate::credentials::change::{Change, Made};
use crate::credentials::key_format::SecretFormat;
use crate::credentials::revocation::Event;
use crate::crypto;
use crate::db::schema::{mailbox_auth_keys, mailboxes};
use crate::db::{self, DbConn, Pool};
use crate::error::{Error, Result};
use diesel::prelude::*;
use std::collections::HashMap;

use super::lifecycle::{self, Mailbox};

pub const MAILBOX_AUTH_KEY: SecretFormat = SecretFormat { prefix: "kgm_" };

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = mailbox_auth_keys)]
pub struct MailboxAuthKey {
    pub id: String,
    pub mailbox_id: String,
    pub name: String,
    pub public_id: String,
    pub secret_hash: String,
    pub created_by: String,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    pub rotated_at: Option<i64>,
    pub usage_count: i64,
    pub last_used_at: Option<i64>,
    /// The address allowlist in its storage form (`IpAllowList`); `None`:
    /// usable from anywhere.
    pub allowed_ips: Option<String>,
    /// The end of the key's last day; `None`: never.
    pub expires_at: Option<i64>,
}

/// Where and until when a key works (`--allow-ip`, `--expires`): the API
/// keys' rules (`credentials::address`, `credentials::expiry`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restrictions {
    pub allowed_ips: Option<IpAllowList>,
    pub expires_at: Option<i64>,
}

impl Restrictions {
    /// From the `--allow-ip` values (none: anywhere) and the `--expires` day
    /// (none or empty: never).
    pub fn parse<S: AsRef<str>>(allow_ip: &[S], expires: Option<&str>) -> Result<Restrictions> {
        let allowed_ips = if !allow_ip.is_empty() {
            let list = IpAllowList::parse_entries(allow_ip)
                .map_err(|e| Error::invalid(format!("--allow-ip: {e}")))?;
            Some(list)
        } else {
            None
        };
        Ok(Restrictions {
            allowed_ips,
            expires_at: crate::credentials::expiry::parse_expiry(expires)?,
        })
    }

    /// In words, for the security log; `None` when there are none.
    fn words(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(list) = &self.allowed_ips {
            parts.push(format!("only from {list}"));
        }
        if let Some(end) = self.expires_at {
            parts.push(format!("until {}", crate::db::rfc3339(end)));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthKeyStatus {
    Active,
    Disabled,
}

impl AuthKeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKeyStatus::Active => "active",
            AuthKeyStatus::Disabled => "disabled",
        }
    }
}

impl MailboxAuthKey {
    pub fn prefix(&self) -> String {
        MAILBOX_AUTH_KEY.display_prefix(&self.public_id)
    }
    pub fn status(&self) -> AuthKeyStatus {
        if self.disabled_at.is_some() {
            AuthKeyStatus::Disabled
        } else {
            AuthKeyStatus::Active
        }
    }
}

/// A key with its full secret, which exists only in this value.
pub struct IssuedAuthKey {
    pub key: MailboxAuthKey,
    pub mailbox: Mailbox,
    pub secret: String,
}

/// A key in a list, with who created it in words.
#[derive(Clone, Debug)]
pub struct AuthKeyRow {
    pub key: MailboxAuthKey,
    pub creator: String,
}

/// The API keys' rule for names (describe the tool, never paste a secret),
/// plus this format's own prefix.
pub fn validate_key_name(raw: &str) -> Result<String> {
    let name = crate::credentials::key_format::validate_key_name(raw)?;
    if name.to_lowercase().contains(MAILBOX_AUTH_KEY.prefix) {
        return Err(Error::invalid(
            "the key name looks like a secret; name the tool that will use the key instead",
        ));
    }
    Ok(name)
}

pub fn create(conn: &mut DbConn, mailbox_id: &str, name: &str, by: Actor) -> Result<IssuedAuthKey> {
    create_restricted(conn, mailbox_id, name, &Restrictions::default(), by)
}

/// A new key, usable only from `limits.allowed_ips` and until
/// `limits.expires_at` when they are set.
pub fn create_restricted(
    conn: &mut DbConn,
    mailbox_id: &str,
    name: &str,
    limits: &Restrictions,
    by: Actor,
) -> Result<IssuedAuthKey> {
    let name = validate_key_name(name)?;
    db::write_tx(conn, |conn| {
        let mailbox = lifecycle::find(conn, mailbox_id)?;
        super::require_api_access(conn, &mailbox.workspace_id)?;
        let minted = MAILBOX_AUTH_KEY.mint();
        let key = MailboxAuthKey {
            id: db::new_id(),
            mailbox_id: mailbox.id.clone(),
            name: name.clone(),
            public_id: minted.public_id,
            secret_hash: minted.hash,
            created_by: by.id.to_string(),
            created_at: db::now(),
            disabled_at: None,
            rotated_at: None,
            usage_count: 0,
            last_used_at: None,
            allowed_ips: limits.allowed_ips.as_ref().map(IpAllowList::to_storage),
            expires_at: limits.expires_at,
        };
        db::insert_new(conn, mailbox_auth_keys::table, &key, |_| name_taken(&name))?;
        Change::new(&key.id, "mailbox_auth_key.created", by).record(
            conn,
            &mailbox.workspace_id,
            limits.words().as_deref(),
        )?;
        Ok(IssuedAuthKey {
            key,
            mailbox,
            secret: minted.secret,
        })
    })
}

/// Names are unique among a mailbox's keys.
fn name_taken(name: &str) -> Error {
    Error::conflict(format!(
        "an auth key named {name:?} already exists for this mailbox"
    ))
}

pub fn find(conn: &mut DbConn, id: &str) -> Result<MailboxAuthKey> {
    mailbox_auth_keys::table
        .find(id)
        .select(MailboxAuthKey::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| Error::not_found(format!("no mailbox auth key with id {id:?}")))
}

/// A key with its mailbox (whose workspace decides who may manage it).
pub fn find_with_mailbox(conn: &mut DbConn, id: &str) -> Result<(MailboxAuthKey, Mailbox)> {
    let key = find(conn, id)?;
    let mailbox = lifecycle::find(conn, &key.mailbox_id)?;
    Ok((key, mailbox))
}

/// A mailbox's keys, newest first.
pub fn list(conn: &mut DbConn, mailbox_id: &str) -> Result<Vec<AuthKeyRow>> {
    let keys: Vec<MailboxAuthKey> = mailbox_auth_keys::table
        .filter(mailbox_auth_keys::mailbox_id.eq(mailbox_id))
        .order(mailbox_auth_keys::id.desc())
        .select(MailboxAuthKey::as_select())
        .load(conn)?;
    let rows = crate::accounts::with_creator_emails(conn, keys, |k| &k.created_by)?;
    Ok(rows
        .into_iter()
        .map(|(key, email)| AuthKeyRow {
            creator: crate::accounts::audit::actor_label(&key.created_by, email),
            key,
        })
        .collect())
}

/// Makes `change` to a key (see `credentials::change`), logged in its
/// mailbox's workspace; a change that ends the key's secret counts as a
/// revocation.
fn change<T>(
    conn: &mut DbConn,
    cache: &CredentialCache,
    change: Change<'_>,
    make: impl FnOnce(&mut DbConn, &MailboxAuthKey) -> Result<T>,
) -> Result<T> {
    let out = change.commit(conn, cache, |conn| {
        let (key, mailbox) = find_with_mailbox(conn, change.id)?;
        Ok(Made::new(make(conn, &key)?, mailbox.workspace_id))
    })?;
    if change.ends.is_some() {
        crate::metrics::METRICS
            .revocations
            .with_label_values(&["mailbox_auth_key"])
            .inc();
    }
    Ok(out)
}

/// Stops a key at once, on every node; it can be enabled again.
pub fn disable(
    conn: &mut DbConn,
    cache: &CredentialCache,
    id: &str,
    by: Actor,
) -> Result<MailboxAuthKey> {
    let disabling =
        Change::new(id, "mailbox_auth_key.disabled", by).ending(Event::mailbox_auth_key);
    set_disabled(conn, cache, disabling, true)
}

/// Lets a disabled key work again, with the secret it had; a key reported
/// leaked stays off (its secret is public: create a new key instead).
pub fn enable(
    conn: &mut DbConn,
    cache: &CredentialCache,
    id: &str,
    by: Actor,
) -> Result<MailboxAuthKey> {
    let enabling = Change::new(id, "mailbox_auth_key.enabled", by);
    set_disabled(conn, cache, enabling, false)
}

/// Disables or enables a key, conditionally on it being in the other state.
fn set_disabled(
    conn: &mut DbConn,
    cache: &CredentialCache,
    toggle: Change<'_>,
    disabled: bool,
) -> Result<MailboxAuthKey> {
    let id = toggle.id;
    change(conn, cache, toggle, |conn, _| {
        if !disabled && super::leaks::leak_on_record(conn, id)? {
            return Err(Error::conflict(
                "the auth key was reported leaked and cannot be enabled again; create a new key",
            ));
        }
        let key = mailbox_auth_keys::table.find(id);
        let n = if disabled {
            diesel::update(key.filter(mailbox_auth_keys::disabled_at.is_null()))
                .set(mailbox_auth_keys::disabled_at.eq(db::now()))
                .execute(conn)?
        } else {
            diesel::update(key.filter(mailbox_auth_keys::disabled_at.is_not_null()))
                .set(mailbox_auth_keys::disabled_at.eq(None::<i64>))
                .execute(conn)?
        };
        if n == 0 {
            return Err(Error::conflict(if disabled {
                "the auth key is already disabled"
            } else {
                "the auth key is not disabled"
            }));
        }
        find(conn, id)
    })
}

/// Gives the key a new secret; the old one stops at once. A disabled key is not
/// rotated (enable it first, or create a new key).
pub fn rotate(
    conn: &mut DbConn,
    cache: &CredentialCache,
    id: &str,
    by: Actor,
) -> Result<IssuedAuthKey> {
    let rotation = Change::new(id, "mailbox_auth_key.rotated", by).ending(Event::mailbox_auth_key);
    change(conn, cache, rotation, |conn, key| {
        let minted = MAILBOX_AUTH_KEY.mint_for(&key.public_id);
        let active = mailbox_auth_keys::table
            .find(id)
            .filter(mailbox_auth_keys::disabled_at.is_null());
        let n = diesel::update(active)
            .set((
                mailbox_auth_keys::secret_hash.eq(minted.hash),
                mailbox_auth_keys::rotated_at.eq(db::now()),
            ))
            .execute(conn)?;
        if n == 0 {
            return Err(Error::conflict(
                "a disabled auth key cannot be rotated; enable it first or create a new key",
            ));
        }
        let (key, mailbox) = find_with_mailbox(conn, id)?;
        Ok(IssuedAuthKey {
            key,
            mailbox,
            secret: minted.secret,
        })
    })
}

/// Deletes a key for good.
pub fn delete(
    conn: &mut DbConn,
    cache: &CredentialCache,
    id: &str,
    by: Actor,
) -> Result<MailboxAuthKey> {
    let deletion = Change::new(id, "mailbox_auth_key.deleted", by).ending(Event::mailbox_auth_key);
    change(conn, cache, deletion, |conn, key| {
        diesel::delete(mailbox_auth_keys::table.find(id)).execute(conn)?;
        Ok(key.clone())
    })
}

/// Replaces where and until when a key works; every node reads the key
/// again at its next use.
pub fn restrict(
    conn: &mut DbConn,
    cache: &CredentialCache,
    id: &str,
    limits: &Restrictions,
    by: Actor,
) -> Result<MailboxAuthKey> {
    let words = limits.words().unwrap_or_else(|| "none".to_string());
    let again = [Event::mailbox_auth_key(id)];
    let restricting = Change::new(id, "mailbox_auth_key.restricted", by).with_events(&again);
    let out = restricting.commit(conn, cache, |conn| {
        let (_, mailbox) = find_with_mailbox(conn, id)?;
        diesel::update(mailbox_auth_keys::table.find(id))
            .set((
                mailbox_auth_keys::allowed_ips
                    .eq(limits.allowed_ips.as_ref().map(IpAllowList::to_storage)),
                mailbox_auth_keys::expires_at.eq(limits.expires_at),
            ))
            .execute(conn)?;
        let mut made = Made::new(find(conn, id)?, mailbox.workspace_id);
        made.detail = Some(format!("restrictions: {words}"));
        Ok(made)
    })?;
    Ok(out)
}

/// The SMTP side's database path: the key if it is well formed, known, matches
/// in constant time, is active, its workspace's plan includes API access and
/// its mailbox's domain may send (`domains::sending_allowed`). Its address
/// allowlist and expiry come with it, for the caller to check per login.
/// Whether it belongs to the address the client logged in as is the caller's
/// check. The pooled connection is held for the read only.
pub fn lookup(pool: &Pool, presented: &str) -> Result<Option<CachedAuthKey>> {
    let Some(public_id) = MAILBOX_AUTH_KEY.parse(presented) else {
        return Ok(None);
    };
    let mut conn = pool.get()?;
    let row: Option<(MailboxAuthKey, Mailbox)> = mailbox_auth_keys::table
        .inner_join(mailboxes::table)
        .filter(mailbox_auth_keys::public_id.eq(public_id))
        .select((MailboxAuthKey::as_select(), Mailbox::as_select()))
        .first(&mut **conn)
        .optional()?;
    let Some((key, mailbox)) = row else {
        return Ok(None);
    };
    if !crypto::ct_eq(&crypto::sha256_hex(presented), &key.secret_hash)
        || key.disabled_at.is_some()
        || !crate::accounts::has_api_access(&mut conn, &mailbox.workspace_id)?
        || !super::domains::sending_allowed(
            &mut conn,
            &mailbox.workspace_id,
            &mailbox.address_lower,
        )?
    {
        return Ok(None);
    }
    Ok(Some(CachedAuthKey {
        id: key.id,
        mailbox_id: mailbox.id,
        workspace_id: mailbox.workspace_id,
        address: mailbox.address,
        address_lower: mailbox.address_lower,
        addresses: AddressRule::from_column(key.allowed_ips.as_deref()),
        expires_at: key.expires_at,
    }))
}

/// Adds batched usage to a key (a key deleted meanwhile is simply not found).
pub fn add_usage(conn: &mut DbConn, id: &str, count: i64, last_used: i64) -> Result<()> {
    diesel::update(mailbox_auth_keys::table.find(id))
        .set((
            mailbox_auth_keys::usage_count.eq(mailbox_auth_keys::usage_count + count),
            mailbox_auth_keys::last_used_at.eq(last_used),
        ))
        .execute(conn)?;
    Ok(())
}

/// The auth keys among `ids` as `name (address)`, for the security log.
pub fn names_of(conn: &mut DbConn, ids: &[String]) -> Result<HashMap<String, String>> {
    Ok(mailbox_auth_keys::table
        .inner_join(mailboxes::table.on(mailboxes::id.eq(mailbox_auth_keys::mailbox_id)))
        .filter(mailbox_auth_keys::id.eq_any(ids))
        .select((
            mailbox_auth_keys::id,
            mailbox_auth_keys::name,
            mailboxes::address,
        ))
        .load::<(String, String, String)>(conn)?
        .into_iter()
        .map(|(id, name, address)| (id, format!("{name} ({address})")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_is_the_api_keys_with_its_own_prefix() {
        let key = MAILBOX_AUTH_KEY.new_secret("AbCdEfGhIj");
        assert!(key.starts_with("kgm_AbCdEfGhIj_"));
        assert_eq!(key.len(), crate::credentials::key_format::API_KEY.len());
        assert_eq!(MAILBOX_AUTH_KEY.parse(&key), Some("AbCdEfGhIj"));
        assert_eq!(crate::credentials::key_format::API_KEY.parse(&key), None);
        let swapped = key.replacen("kgm_", "kgk_", 1);
        assert_eq!(MAILBOX_AUTH_KEY.parse(&swapped), None);
    }

    #[test]
    fn names_that_look_like_secrets_are_refused() {
        assert!(validate_key_name("Outreach Primary").is_ok());
        assert!(validate_key_name("kgm_AbCdEfGhIj_x").is_err());
        assert!(validate_key_name("").is_err());
    }
}
