//! OAuth clients: registration, redirect URI rules, and client authentication.

use crate::crypto;
use crate::db::schema::clients;
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = clients)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub is_public: bool,
    pub redirect_uris: String,
    pub created_at: i64,
}

impl Client {
    pub fn redirect_uri_list(&self) -> Vec<String> {
        serde_json::from_str(&self.redirect_uris).unwrap_or_default()
    }

    /// RFC 6749 §3.1.2.3 exact matching, except that a registered loopback IP
    /// URI matches any port (RFC 8252 §7.3).
    pub fn redirect_uri_matches(&self, given: &str) -> bool {
        self.redirect_uri_list()
            .iter()
            .any(|registered| redirect_matches(registered, given))
    }

    /// Checks a presented secret in constant time. Public clients have none.
    pub fn secret_matches(&self, presented: &str) -> bool {
        match &self.secret_hash {
            Some(hash) => crypto::ct_eq(&crypto::sha256_hex(presented), hash),
            None => false,
        }
    }
}

pub struct NewClient {
    pub client: Client,
    /// Shown once; only its hash is stored.
    pub secret: Option<String>,
}

const LOOPBACK_PREFIXES: [&str; 2] = ["http://127.0.0.1", "http://[::1]"];

/// `given` matches `registered` exactly, or with only the port differing when
/// `registered` is an http loopback IP URI.
pub fn redirect_matches(registered: &str, given: &str) -> bool {
    if registered == given {
        return true;
    }
    for prefix in LOOPBACK_PREFIXES {
        if let (Some(reg_rest), Some(given_rest)) =
            (registered.strip_prefix(prefix), given.strip_prefix(prefix))
        {
            return strip_port(reg_rest).is_some_and(|r| Some(r) == strip_port(given_rest));
        }
    }
    false
}

/// After the host: an optional `:port`, then a path that must start with `/`
/// (or be empty).
fn strip_port(rest: &str) -> Option<&str> {
    let after = match rest.strip_prefix(':') {
        Some(p) => {
            let digits = p.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 5 || p[..digits].parse::<u32>().ok()? > 65535 {
                return None;
            }
            &p[digits..]
        }
        None => rest,
    };
    if after.is_empty() || after.starts_with('/') || after.starts_with('?') {
        Some(after)
    } else {
        None
    }
}

/// Registration rules (RFC 6749 §3.1.2, RFC 9700 §2.6, RFC 8252 §7): an absolute
/// URI without a fragment; https, or http only on a loopback host, or a private-use
/// scheme with a dot (`com.example.app:/cb`) for native apps.
pub fn validate_redirect_uri(raw: &str) -> Result<String> {
    let bad = |why: &str| Error::invalid(format!("invalid redirect URI {raw:?}: {why}"));
    if raw.is_empty()
        || raw.len() > 2000
        || raw.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad("it must be a non-empty URI without spaces"));
    }
    let url = url::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    if url.fragment().is_some() || raw.contains('#') {
        return Err(bad("a redirect URI must not have a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("a redirect URI must not carry credentials"));
    }
    match url.scheme() {
        "https" => {
            if url.host_str().is_none_or(str::is_empty) {
                return Err(bad("no host"));
            }
        }
        "http" => {
            let loopback = matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
                || url.host_str() == Some("localhost");
            if !loopback {
                return Err(bad("http is only allowed for loopback hosts; use https"));
            }
        }
        scheme if scheme.contains('.') => {}
        _ => return Err(bad(
            "use https, http on a loopback host, or a private-use scheme such as com.example.app",
        )),
    }
    Ok(raw.to_string())
}

pub fn create(
    conn: &mut DbConn,
    name: &str,
    redirect_uris: &[String],
    public: bool,
) -> Result<NewClient> {
    let name = crate::accounts::validate_name("client name", name)?;
    if redirect_uris.is_empty() {
        return Err(Error::invalid("at least one --redirect-uri is required"));
    }
    let mut uris = Vec::with_capacity(redirect_uris.len());
    for raw in redirect_uris {
        let uri = validate_redirect_uri(raw)?;
        if !uris.contains(&uri) {
            uris.push(uri);
        }
    }
    let secret = (!public).then(|| format!("kgs_{}", crypto::random_alphanumeric(40)));
    let client = Client {
        id: db::new_id(),
        name,
        secret_hash: secret.as_deref().map(crypto::sha256_hex),
        is_public: public,
        redirect_uris: serde_json::to_string(&uris).unwrap_or_else(|_| "[]".into()),
        created_at: db::now(),
    };
    diesel::insert_into(clients::table)
        .values(&client)
        .execute(conn)?;
    Ok(NewClient { client, secret })
}

pub fn find(conn: &mut DbConn, id: &str) -> Result<Option<Client>> {
    Ok(clients::table
        .find(id)
        .select(Client::as_select())
        .first(conn)
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_match_and_loopback_ports() {
        assert!(redirect_matches(
            "https://app.example/cb",
            "https://app.example/cb"
        ));
        assert!(!redirect_matches(
            "https://app.example/cb",
            "https://app.example/cb/"
        ));
        assert!(!redirect_matches(
            "https://app.example/cb",
            "https://app.example/cb?x=1"
        ));
        assert!(!redirect_matches(
            "https://app.example/cb",
            "https://app.example:444/cb"
        ));
        assert!(redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:53123/cb"
        ));
        assert!(redirect_matches(
            "http://127.0.0.1:8000/cb",
            "http://127.0.0.1:9/cb"
        ));
        assert!(redirect_matches("http://[::1]/cb", "http://[::1]:7000/cb"));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:99999/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:80/cbx"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1.evil.example/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:80@evil.example/cb"
        ));
        assert!(!redirect_matches(
            "http://localhost/cb",
            "http://localhost:8080/cb"
        ));
    }

    #[test]
    fn registration_rules() {
        assert!(validate_redirect_uri("https://app.example/cb").is_ok());
        assert!(validate_redirect_uri("http://127.0.0.1/cb").is_ok());
        assert!(validate_redirect_uri("http://localhost:3000/cb").is_ok());
        assert!(validate_redirect_uri("com.example.app:/cb").is_ok());
        assert!(validate_redirect_uri("http://app.example/cb").is_err());
        assert!(validate_redirect_uri("https://app.example/cb#x").is_err());
        assert!(validate_redirect_uri("not a url").is_err());
        assert!(validate_redirect_uri("javascript:alert(1)").is_err());
        assert!(validate_redirect_uri("https://u:p@app.example/cb").is_err());
    }
}

/// Clients by id, in memory, so that client authentication on the token,
/// revocation and introspection endpoints needs no database read. Bounded:
/// beyond `MAX_CACHED` entries the map is emptied and refilled from the
/// database. An entry is dropped when its client changes or is deleted.
#[derive(Default)]
pub struct ClientCache {
    map: std::sync::RwLock<std::collections::HashMap<String, std::sync::Arc<Client>>>,
}

const MAX_CACHED: usize = 100_000;

impl ClientCache {
    pub fn get(&self, id: &str) -> Option<std::sync::Arc<Client>> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    pub fn put(&self, client: &Client) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_CACHED {
            map.clear();
        }
        map.insert(client.id.clone(), std::sync::Arc::new(client.clone()));
    }

    pub fn remove(&self, id: &str) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}
