//! The scopes keygate grants, and what each means in plain words.

/// A scope keygate does not know (RFC 6749 §3.3); the OAuth layer answers it
/// as `invalid_scope`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnknownScope(pub String);

pub struct ScopeInfo {
    pub name: &'static str,
    pub description: &'static str,
    pub writes: bool,
}

pub const SCOPES: &[ScopeInfo] = &[
    ScopeInfo {
        name: "workspace:read",
        description: "See the workspace's name and details",
        writes: false,
    },
    ScopeInfo {
        name: "tags:read",
        description: "See your tags",
        writes: false,
    },
    ScopeInfo {
        name: "tags:write",
        description: "Create and change tags",
        writes: true,
    },
    ScopeInfo {
        name: "forms:read",
        description: "See your forms",
        writes: false,
    },
    ScopeInfo {
        name: "forms:write",
        description: "Create and change forms",
        writes: true,
    },
    ScopeInfo {
        name: "mailboxes:read",
        description: "See your mailboxes (sending addresses)",
        writes: false,
    },
    ScopeInfo {
        name: "mailboxes:write",
        description: "Create and delete mailboxes",
        writes: true,
    },
];

pub const DEFAULT_SCOPE: &str = "workspace:read";

pub fn info(name: &str) -> Option<&'static ScopeInfo> {
    SCOPES.iter().find(|s| s.name == name)
}

pub fn all_names() -> Vec<&'static str> {
    SCOPES.iter().map(|s| s.name).collect()
}

/// Every `*:read` scope: what a read-only API key may do.
pub fn read_names() -> Vec<&'static str> {
    SCOPES
        .iter()
        .filter(|s| !s.writes)
        .map(|s| s.name)
        .collect()
}

/// Parses a `scope` parameter (RFC 6749 §3.3): space-delimited, each one known.
/// No parameter (or an empty one) means the default scope. The result is in
/// keygate's canonical order without duplicates.
pub fn parse(param: Option<&str>) -> Result<Vec<&'static str>, UnknownScope> {
    let raw = param.unwrap_or("").trim();
    if raw.is_empty() {
        return Ok(vec![DEFAULT_SCOPE]);
    }
    let mut wanted = Vec::new();
    for token in raw.split(' ') {
        if token.is_empty() {
            continue;
        }
        match info(token) {
            Some(s) => wanted.push(s.name),
            None => {
                return Err(UnknownScope(format!(
                    "unknown scope {token:?}; supported: {}",
                    all_names().join(" ")
                )))
            }
        }
    }
    Ok(SCOPES
        .iter()
        .map(|s| s.name)
        .filter(|n| wanted.contains(n))
        .collect())
}

pub fn join(scopes: &[&str]) -> String {
    scopes.join(" ")
}

/// The catalogue's own names of the scopes in a stored scope string; a name
/// the catalogue does not have grants nothing and is left out. What the
/// credential cache holds: no string of its own per scope and entry.
pub fn known(stored: &str) -> Vec<&'static str> {
    stored.split(' ').filter_map(info).map(|i| i.name).collect()
}

/// Splits a stored scope string.
pub fn split(stored: &str) -> Vec<String> {
    stored
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keeps_the_catalogue_names_only() {
        assert_eq!(
            known("workspace:read  tags:write admin:all"),
            vec!["workspace:read", "tags:write"]
        );
        assert!(known("").is_empty());
        assert!(known("WORKSPACE:READ workspace:réad").is_empty());
    }

    #[test]
    fn default_and_canonical_order() {
        assert_eq!(parse(None).unwrap(), vec!["workspace:read"]);
        assert_eq!(parse(Some("  ")).unwrap(), vec!["workspace:read"]);
        assert_eq!(
            parse(Some("tags:write workspace:read tags:write")).unwrap(),
            vec!["workspace:read", "tags:write"]
        );
        assert!(parse(Some("admin")).is_err());
    }
}
