//! The API key as a presented credential: its format, its status rule, and the
//! bearer check's database read.
//!
//! Format: `kgk_` + a 10-character public id + `_` + 32 random characters
//! (about 190 bits) + a 6-character CRC-32 checksum, all base62, so a secret
//! scanner can tell a real key from noise without asking keygate (as GitHub's
//! tokens do). Only the SHA-256 of the whole key is stored. The displayable
//! prefix is `kgk_` + the public id: it names the key and reveals nothing.

use super::cache::CachedKey;
use super::scopes;
use crate::crypto;
use crate::db::schema::{api_keys, workspaces};
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;

/// A checksummed secret format: `prefix` + public id + `_` + secret + checksum.
/// API keys use it, and so can other server-generated secrets.
pub struct SecretFormat {
    pub prefix: &'static str,
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

/// A key's access level: `read_only` is every `*:read` scope, `read_write` all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

impl Access {
    pub fn parse(s: &str) -> Result<Access> {
        match s {
            "read_only" => Ok(Access::ReadOnly),
            "read_write" => Ok(Access::ReadWrite),
            other => Err(Error::invalid(format!(
                "unknown access level {other:?}: expected read_only or read_write"
            ))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Access::ReadOnly => "read_only",
            Access::ReadWrite => "read_write",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Access::ReadOnly => "Read only",
            Access::ReadWrite => "Read and write",
        }
    }
    pub fn scopes(self) -> Vec<String> {
        let names = match self {
            Access::ReadOnly => scopes::read_names(),
            Access::ReadWrite => scopes::all_names(),
        };
        names.into_iter().map(str::to_string).collect()
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

/// The bearer check's database path: the key if it is well formed, known,
/// matches in constant time, is active and its workspace's plan has API access.
pub fn lookup(conn: &mut DbConn, presented: &str) -> Result<Option<CachedKey>> {
    let Some(public_id) = API_KEY.parse(presented) else {
        return Ok(None);
    };
    type Row = (
        String,
        String,
        String,
        String,
        Option<i64>,
        Option<i64>,
        String,
        Option<String>,
    );
    let row: Option<Row> = api_keys::table
        .inner_join(workspaces::table)
        .filter(api_keys::public_id.eq(public_id))
        .select((
            api_keys::id,
            api_keys::workspace_id,
            api_keys::secret_hash,
            api_keys::access,
            api_keys::expires_at,
            api_keys::revoked_at,
            workspaces::plan,
            api_keys::mailbox_id,
        ))
        .first(conn)
        .optional()?;
    let Some((id, workspace_id, secret_hash, access, expires_at, revoked_at, plan, mailbox_id)) =
        row
    else {
        return Ok(None);
    };
    if !crypto::ct_eq(&crypto::sha256_hex(presented), &secret_hash)
        || KeyStatus::of(revoked_at, expires_at, db::now()) != KeyStatus::Active
        || !crate::accounts::plan_includes_api(&plan)
    {
        return Ok(None);
    }
    let scopes = match &mailbox_id {
        Some(_) => MAILBOX_RESTRICTED_SCOPES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        None => Access::parse(&access).unwrap_or(Access::ReadOnly).scopes(),
    };
    Ok(Some(CachedKey {
        id,
        workspace_id,
        scopes,
        expires_at,
        mailbox_id,
    }))
}

/// Adds batched usage to the keys.
pub fn add_usage(conn: &mut DbConn, id: &str, count: i64, last_used: i64) -> Result<()> {
    diesel::update(api_keys::table.find(id))
        .set((
            api_keys::usage_count.eq(api_keys::usage_count + count),
            api_keys::last_used_at.eq(last_used),
        ))
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
