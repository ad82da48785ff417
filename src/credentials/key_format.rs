//! The format of keygate's server-made secrets (API keys, mailbox auth
//! keys): `prefix` + a 10-character public id + `_` + 32 random characters
//! (about 190 bits) + a 6-character CRC-32 checksum, all base62, so a secret
//! scanner can tell a real key from noise without asking keygate (as GitHub's
//! tokens do). Only the SHA-256 of the whole key is stored. The displayable
//! prefix is the prefix + the public id: it names the key and reveals nothing.

use crate::crypto;
use crate::error::{Error, Result};

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

/// Names describe the integration; a value that looks like a secret is refused so
/// that nobody pastes a key where the list would show it to everyone.
pub fn validate_key_name(raw: &str) -> Result<String> {
    let name = crate::accounts::validate_name("the key name", raw)?;
    let lower = name.to_lowercase();
    let looks_like_key = lower.contains(KEY_PREFIX) || lower.contains("kgs_");
    // A secret is a long run of letters and digits mixed, without the
    // separators people name things with: `prod-main-app-eu-west-1-2026-primary`
    // is a name, `a8F3kL0pQ9zX7mN2bV6cR1tY` is not.
    let high_entropy = name.split(|c: char| !c.is_ascii_alphanumeric()).any(|run| {
        run.len() >= 20
            && run.chars().filter(char::is_ascii_digit).count() >= 2
            && run.chars().any(|c| c.is_ascii_alphabetic())
    });
    if looks_like_key || high_entropy {
        return Err(Error::invalid(
            "the key name looks like a secret; name the system that will use the key instead",
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realistic_key_names_are_names_and_pasted_secrets_are_not() {
        for name in [
            "prod-main-app-eu-west-1-2026-primary",
            "zapier_sync_2026_backup_eu_central_1",
            "Outreach Primary (EU) 2026-12-07",
            "staging.crm.example.com webhook 2",
        ] {
            assert!(validate_key_name(name).is_ok(), "{name}");
        }
        for name in [
            "a8F3kL0pQ9zX7mN2bV6cR1tY",
            "token a8F3kL0pQ9zX7mN2bV6cR1tYq2w3",
            "kgk_AbCdEfGhIj_0123",
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        ] {
            assert!(validate_key_name(name).is_err(), "{name}");
        }
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
