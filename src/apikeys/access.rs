//! What an API key may do: its access level (the scopes it grants) and its
//! status.

use crate::credentials::scopes;
use crate::error::{Error, Result};

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
}
