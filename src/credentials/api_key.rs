//! The API key as a presented credential: its format, its status rule, and the
//! bearer check's database read.
//!
//! Format: `kgk_` + a 10-character public id + `_` + 32 random characters
//! (about 190 bits) + a 6-character CRC-32 checksum, all base62, so a secret
//! scanner can tell a real key from noise without asking keygate (as GitHub's
//! tokens do). Only the SHA-256 of the whole key is stored. The displayable
//! prefix is `kgk_` + the public id: it names the key and reveals nothing.

use super::address::IpAllowList;
use super::cache::CachedKey;
use super::scopes;
use crate::crypto;
use crate::db::schema::{api_keys, workspaces};
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;
use std::net::IpAddr;

/// A checksummed secret format: `prefix` + public id + `_` + secret + checksum.
/// API keys use it, and so can other server-generated secrets.
pub struct SecretFormat {
    pub prefix: &'static str,
}

/// A secret just made: the whole key, which exists only in this value (and
/// is shown once), and the SHA-256 that is stored in its place.
pub struct Minted {
    pub public_id: String,
    pub secret: String,
    pub hash: String,
}

const PUBLIC_ID_LEN: usize = 10;
const SECRET_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;

pub const API_KEY: SecretFormat = SecretFormat { prefix: "kgk_" };
pub const KEY_PREFIX: &str = API_KEY.prefix;

fn checksum(body: &str) -> String {
    crypto::base62_u32(crc32fast::hash(body.as_bytes()))
}

impl SecretFormat {
    #[allow(clippy::len_without_is_empty)]
    pub const fn len(&self) -> usize {
        self.prefix.len() + PUBLIC_ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN
    }

    /// A new random public id.
    pub fn new_public_id(&self) -> String {
        crypto::random_alphanumeric(PUBLIC_ID_LEN)
    }

    /// A new secret under `public_id`.
    pub fn new_secret(&self, public_id: &str) -> String {
        self.compose(public_id, &crypto::random_alphanumeric(SECRET_LEN))
    }

    pub fn compose(&self, public_id: &str, secret: &str) -> String {
        let body = format!("{}{public_id}_{secret}", self.prefix);
        let sum = checksum(&body);
        body + &sum
    }

    /// A new key: a new public id and a secret under it.
    pub fn mint(&self) -> Minted {
        self.mint_for(&self.new_public_id())
    }

    /// A new secret under an existing public id (a rotation).
    pub fn mint_for(&self, public_id: &str) -> Minted {
        let secret = self.new_secret(public_id);
        Minted {
            public_id: public_id.to_string(),
            hash: crypto::sha256_hex(&secret),
            secret,
        }
    }

    /// The displayable prefix of a key with this public id.
    pub fn display_prefix(&self, public_id: &str) -> String {
        format!("{}{public_id}", self.prefix)
    }

    /// The public id of a well-formed key whose checksum holds; `None` for
    /// anything else, without touching the database. Works on bytes after an
    /// ASCII check, so no input can split a character.
    pub fn parse<'a>(&self, key: &'a str) -> Option<&'a str> {
        if key.len() != self.len() || !key.is_ascii() || !key.starts_with(self.prefix) {
            return None;
        }
        let rest = &key[self.prefix.len()..];
        let (public_id, tail) = rest.split_at(PUBLIC_ID_LEN);
        let tail = tail.strip_prefix('_')?;
        if !public_id.bytes().all(|b| b.is_ascii_alphanumeric())
            || !tail.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return None;
        }
        let (body, sum) = key.split_at(key.len() - CHECKSUM_LEN);
        crypto::ct_eq(&checksum(body), sum).then_some(public_id)
    }
}

/// A key's access level: `read_only` is every `*:read` scope, `read_write`
/// all, `custom` exactly the scopes chosen from the catalogue
/// ([`scopes::SCOPES`]), in the catalogue's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
    Custom(Vec<&'static str>),
}

impl Access {
    /// `read_only` or `read_write`; `custom` needs its scopes, see
    /// [`Access::with_scopes`].
    pub fn parse(s: &str) -> Result<Access> {
        Access::with_scopes(s, &[] as &[&str])
    }

    /// An access level and the `--scope` values given with it: scopes go with
    /// `custom` only, and `custom` needs at least one, each from the catalogue.
    pub fn with_scopes<S: AsRef<str>>(level: &str, chosen: &[S]) -> Result<Access> {
        let access = match level {
            "read_only" => Access::ReadOnly,
            "read_write" => Access::ReadWrite,
            "custom" => {
                let mut wanted = Vec::new();
                for raw in chosen {
                    for name in raw.as_ref().split([' ', ',']).filter(|n| !n.is_empty()) {
                        let info = scopes::info(name).ok_or_else(|| {
                            Error::invalid(format!(
                                "unknown scope {name:?}: expected one of {}",
                                scopes::all_names().join(", ")
                            ))
                        })?;
                        wanted.push(info.name);
                    }
                }
                if wanted.is_empty() {
                    return Err(Error::invalid(
                        "custom access needs at least one scope (--scope S, repeatable)",
                    ));
                }
                return Ok(Access::Custom(canonical(wanted)));
            }
            other => {
                return Err(Error::invalid(format!(
                    "unknown access level {other:?}: expected read_only, read_write or custom"
                )))
            }
        };
        if chosen.iter().any(|s| !s.as_ref().trim().is_empty()) {
            return Err(Error::invalid(
                "scopes are chosen only with custom access (--access custom --scope S)",
            ));
        }
        Ok(access)
    }

    /// From a key's row (`access`, `scopes`). A custom key keeps only the
    /// scopes the catalogue still has: a stored name it no longer knows grants
    /// nothing, and an unknown level reads as read-only (never more).
    pub fn from_row(access: &str, stored_scopes: Option<&str>) -> Access {
        match access {
            "read_write" => Access::ReadWrite,
            "custom" => Access::Custom(canonical(
                stored_scopes
                    .unwrap_or("")
                    .split(' ')
                    .filter_map(scopes::info)
                    .map(|i| i.name)
                    .collect(),
            )),
            _ => Access::ReadOnly,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Access::ReadOnly => "read_only",
            Access::ReadWrite => "read_write",
            Access::Custom(_) => "custom",
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Access::ReadOnly => "Read only",
            Access::ReadWrite => "Read and write",
            Access::Custom(_) => "Custom",
        }
    }

    /// The `scopes` column: the custom scopes, space-separated as in RFC 6749
    /// §3.3; `None` for the fixed levels, whose scopes follow the catalogue.
    pub fn stored_scopes(&self) -> Option<String> {
        match self {
            Access::Custom(s) => Some(s.join(" ")),
            _ => None,
        }
    }

    pub fn scopes(&self) -> Vec<String> {
        self.scope_names().into_iter().map(str::to_string).collect()
    }

    /// The catalogue's names of the scopes this access grants.
    pub fn scope_names(&self) -> Vec<&'static str> {
        match self {
            Access::ReadOnly => scopes::read_names(),
            Access::ReadWrite => scopes::all_names(),
            Access::Custom(s) => s.clone(),
        }
    }
}

/// In the catalogue's order, without duplicates.
fn canonical(mut names: Vec<&'static str>) -> Vec<&'static str> {
    let rank = |n: &str| scopes::SCOPES.iter().position(|s| s.name == n);
    names.sort_by_key(|n| rank(n));
    names.dedup();
    names
}

/// Where a key may be used from, as the bearer check sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressRule {
    /// No allowlist (a NULL column).
    Anywhere,
    Only(IpAllowList),
    /// A stored allowlist that does not parse: the key is refused everywhere
    /// rather than guessed at (fail closed).
    Nowhere,
}

impl AddressRule {
    pub fn from_column(stored: Option<&str>) -> AddressRule {
        match stored {
            None => AddressRule::Anywhere,
            Some(s) => match IpAllowList::from_storage(s) {
                Ok(list) => AddressRule::Only(list),
                Err(e) => {
                    log::warn!("an API key's stored address allowlist is unreadable ({e}); the key is refused");
                    AddressRule::Nowhere
                }
            },
        }
    }

    /// Whether a request from `ip` may use the key; an unknown address only
    /// where there is no allowlist.
    pub fn allows(&self, ip: Option<IpAddr>) -> bool {
        match (self, ip) {
            (AddressRule::Anywhere, _) => true,
            (AddressRule::Only(list), Some(ip)) => list.contains(ip),
            _ => false,
        }
    }
}

/// A key's status, by the one rule: revoked wins, then expired, else active.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Expired,
    Revoked,
}

impl KeyStatus {
    pub fn of(revoked_at: Option<i64>, expires_at: Option<i64>, now: i64) -> KeyStatus {
        if revoked_at.is_some() {
            KeyStatus::Revoked
        } else if expires_at.is_some_and(|e| e <= now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Expired => "expired",
            KeyStatus::Revoked => "revoked",
        }
    }
    pub fn parse(s: &str) -> Option<KeyStatus> {
        match s {
            "active" => Some(KeyStatus::Active),
            "expired" => Some(KeyStatus::Expired),
            "revoked" => Some(KeyStatus::Revoked),
            _ => None,
        }
    }
}

/// What a key restricted to one mailbox may do on `/v1`, whatever its access
/// level: read that mailbox. It never creates or deletes mailboxes (as
/// Mailosaur's server-restricted keys), and every other resource is out of
/// its scope.
pub const MAILBOX_RESTRICTED_SCOPES: &[&str] = &["mailboxes:read"];

/// Names describe the integration; a value that looks like a secret is refused so
/// that nobody pastes a key where the list would show it to everyone.
pub fn validate_key_name(raw: &str) -> Result<String> {
    let name = crate::accounts::validate_name("the key name", raw)?;
    let lower = name.to_lowercase();
    let looks_like_key = lower.contains(KEY_PREFIX) || lower.contains("kgs_");
    let high_entropy = name.split_whitespace().any(|word| {
        word.len() >= 24
            && word.chars().any(|c| c.is_ascii_digit())
            && word.chars().any(|c| c.is_ascii_alphabetic())
            && (!word.contains('-') || word.len() >= 32)
    });
    if looks_like_key || high_entropy {
        return Err(Error::invalid(
            "the key name looks like a secret; name the system that will use the key instead",
        ));
    }
    Ok(name)
}

/// Inside the transaction that deletes a mailbox: revokes every key restricted
/// to it, with a security-log row each. Returns the events to apply once the
/// transaction has committed.
pub fn revoke_restricted_to_in_tx(
    conn: &mut DbConn,
    mailbox_id: &str,
    by: crate::accounts::audit::Actor,
) -> Result<Vec<super::revocation::Event>> {
    let keys: Vec<(String, String)> = api_keys::table
        .filter(api_keys::mailbox_id.eq(mailbox_id))
        .filter(api_keys::revoked_at.is_null())
        .select((api_keys::id, api_keys::workspace_id))
        .load(conn)?;
    let mut events = Vec::with_capacity(keys.len());
    for (id, workspace_id) in keys {
        diesel::update(api_keys::table.find(&id))
            .set(api_keys::revoked_at.eq(db::now()))
            .execute(conn)?;
        crate::accounts::audit::record(
            conn,
            &workspace_id,
            by.id,
            "api_key.revoked",
            &id,
            by.client_address,
        )?;
        events.push(super::revocation::Event::api_key(&id));
    }
    super::revocation::record(conn, &events)?;
    Ok(events)
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
    let row: Option<(KeyRow, String)> = api_keys::table
        .inner_join(workspaces::table)
        .filter(api_keys::public_id.eq(public_id))
        .select((KeyRow::as_select(), workspaces::plan))
        .first(conn)
        .optional()?;
    let Some((key, plan)) = row else {
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
        || !crate::accounts::plan_includes_api(&plan)
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
pub fn add_usage(conn: &mut DbConn, uses: &super::usage::KeyCounts) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_levels_and_custom_scopes() {
        assert_eq!(Access::parse("read_only").expect("ro"), Access::ReadOnly);
        let custom =
            Access::with_scopes("custom", &["forms:write", "tags:read tags:read"]).expect("custom");
        assert_eq!(custom, Access::Custom(vec!["tags:read", "forms:write"]));
        assert_eq!(
            custom.stored_scopes().as_deref(),
            Some("tags:read forms:write")
        );
        assert_eq!(custom.as_str(), "custom");
        assert_eq!(
            Access::from_row("custom", custom.stored_scopes().as_deref()),
            custom
        );
        // A name the catalogue no longer has grants nothing; an unknown level reads as read-only.
        assert_eq!(
            Access::from_row("custom", Some("tags:read gone:write")).scopes(),
            vec!["tags:read".to_string()]
        );
        assert!(Access::from_row("custom", None).scopes().is_empty());
        assert_eq!(Access::from_row("bogus", None), Access::ReadOnly);
        assert!(Access::with_scopes("custom", &[] as &[&str]).is_err());
        assert!(Access::with_scopes("custom", &["tags:delete"]).is_err());
        assert!(Access::with_scopes("read_only", &["tags:read"]).is_err());
        assert!(Access::parse("custom").is_err());
        assert!(Access::parse("").is_err());
    }

    #[test]
    fn address_rules_fail_closed() {
        let local: IpAddr = "127.0.0.1".parse().expect("ip");
        assert!(AddressRule::from_column(None).allows(None));
        let only = AddressRule::from_column(Some("127.0.0.0/8"));
        assert!(only.allows(Some(local)));
        assert!(!only.allows(Some("192.0.2.1".parse().expect("ip"))));
        assert!(!only.allows(None));
        let broken = AddressRule::from_column(Some("garbage"));
        assert_eq!(broken, AddressRule::Nowhere);
        assert!(!broken.allows(Some(local)));
    }

    #[test]
    fn format_parses_and_checksum_catches_typos() {
        let key = API_KEY.new_secret("AbCdEfGhIj");
        assert_eq!(key.len(), API_KEY.len());
        assert_eq!(API_KEY.parse(&key), Some("AbCdEfGhIj"));
        let mut broken = key.clone().into_bytes();
        let i = KEY_PREFIX.len() + PUBLIC_ID_LEN + 5;
        broken[i] = if broken[i] == b'a' { b'b' } else { b'a' };
        assert_eq!(API_KEY.parse(&String::from_utf8(broken).unwrap()), None);
        assert_eq!(API_KEY.parse("kgk_short"), None);
    }

    #[test]
    fn multibyte_characters_never_split() {
        // Same byte length as a key, with a multi-byte character across the
        // public id's end and across the checksum's start.
        let mut s = String::from("kgk_AbCdEfGhI\u{e9}");
        while s.len() < API_KEY.len() - 7 {
            s.push('a');
        }
        s.push('\u{e9}');
        while s.len() < API_KEY.len() {
            s.push('b');
        }
        assert_eq!(s.len(), API_KEY.len());
        assert_eq!(API_KEY.parse(&s), None);
    }
}
