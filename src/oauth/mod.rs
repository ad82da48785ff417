//! OAuth 2.0: the authorization-code flow with PKCE, refresh, revocation and
//! introspection. Logic only; `crate::http` maps it onto HTTP.

pub mod authorizations;
pub mod authorize;
pub mod client_assertion;
pub mod client_auth;
pub mod clients;
pub mod engine;
pub mod error;
pub mod housekeeping;
pub mod introspect;
pub mod jwks;
pub mod metadata;
pub mod registration;
pub mod resource_clients;
pub mod revoke;
pub mod service_clients;
pub mod token;
pub mod trust;

#[cfg(test)]
mod logic_tests;
#[cfg(test)]
mod proptests;

use error::OAuthError;

/// What the issuer's endpoints need from the node they run on.
pub struct Issuer<'a> {
    pub config: &'a crate::config::Config,
    pub credentials: &'a crate::credentials::Credentials,
    pub clients: &'a clients::ClientCache,
    /// The grants' shared write transactions.
    pub writes: &'a crate::db::group::Group,
    /// The registered protected resources (RFC 8707), and their credentials.
    pub resources: &'a crate::resources::Registry,
    /// What the HTTP layer prepared for this request, if anything.
    pub extras: Option<&'a Extras>,
}

/// What the HTTP layer prepares for a request before its blocking work: the
/// keys of a client that sent an assertion (fetched), a DPoP proof's key.
#[derive(Default, Debug, Clone)]
pub struct Extras {
    pub assertion_keys: Option<client_assertion::AssertionKeys>,
    /// A DPoP proof that passed its checks at the token endpoint; its `jti`
    /// is recorded once the client has authenticated.
    pub dpop: Option<crate::credentials::dpop::Proven>,
    /// The key sets of an identity assertion's issuer, by JWK Set URL (one
    /// per distinct URL the workspaces trusting it gave).
    pub idp_keys: Vec<(String, std::sync::Arc<jsonwebtoken::jwk::JwkSet>)>,
}

impl Issuer<'_> {
    /// Client authentication at the token, revocation and introspection
    /// endpoints (RFC 6749 §2.3), the client looked up in memory first.
    pub fn authenticate(
        &self,
        conn: &mut crate::db::DbConn,
        authorization_header: Option<&str>,
        params: &Params,
        allow: client_auth::Allow,
    ) -> Result<clients::Client, OAuthError> {
        if let Some(assertion) = client_assertion::presented(params)? {
            return client_assertion::authenticate(
                self,
                conn,
                authorization_header,
                params,
                assertion,
            );
        }
        client_auth::authenticate_with_cache(
            self.clients,
            conn,
            authorization_header,
            params,
            allow,
        )
    }
}

/// Form or query parameters, read by the rule of RFC 6749 §3.1 and §3.2:
/// a parameter sent without a value is as if omitted, and none may repeat.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(encoded: &[u8]) -> Params {
        // Most bodies escape nothing: then each name and value is its text
        // as is, which one scan for `%` and `+` and one UTF-8 check prove.
        // Anything else is decoded by the form parser.
        if memchr::memchr2(b'%', b'+', encoded).is_none() {
            if let Ok(text) = std::str::from_utf8(encoded) {
                return Params(
                    text.split('&')
                        .filter(|pair| !pair.is_empty())
                        .map(|pair| {
                            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                            (name.to_string(), value.to_string())
                        })
                        .collect(),
                );
            }
        }
        Params(url::form_urlencoded::parse(encoded).into_owned().collect())
    }

    #[cfg(test)]
    pub(crate) fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn get(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut found = None;
        for (k, v) in &self.0 {
            if k == name && !v.is_empty() {
                if found.is_some() {
                    return Err(OAuthError::invalid_request(format!(
                        "the {name} parameter must not be repeated"
                    )));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found)
    }

    /// Every value of a parameter that may repeat (RFC 8707 `resource`).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn first_of_any_repeated(&self, except: &[&str]) -> Option<&str> {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if v.is_empty() || except.contains(&k.as_str()) {
                continue;
            }
            if self.0[i + 1..]
                .iter()
                .any(|(k2, v2)| k2 == k && !v2.is_empty())
            {
                return Some(k.as_str());
            }
        }
        None
    }
}

/// RFC 8707 §2: the one resource a request names. `Ok(None)`: none, or
/// keygate's own `{issuer}/v1` (`v1`); a registered resource's identifier
/// (one trailing slash ignored); anything else, or more than one, is
/// `invalid_target`.
pub fn named_resource<'p>(params: &'p Params, v1: &str) -> Result<Option<&'p str>, OAuthError> {
    match params.all("resource")[..] {
        [] => Ok(None),
        [one] if crate::resources::identifier::same(one, v1) => Ok(None),
        [one] => Ok(Some(one)),
        _ => Err(OAuthError::invalid_target(
            "name one resource per request (RFC 8707)",
        )),
    }
}

/// The registered resource `named` (from [`named_resource`]), read from
/// the database; an unknown one is `invalid_target`.
pub fn registered_resource(
    conn: &mut crate::db::DbConn,
    named: &str,
) -> Result<crate::resources::Resource, OAuthError> {
    crate::resources::find_by_identifier(conn, named)?.ok_or_else(|| {
        OAuthError::invalid_target(format!(
            "unknown resource {:?}",
            crate::credentials::excerpt(named, 200)
        ))
    })
}

/// Appends parameters to a redirect URI's query (keeping the query it has).
pub fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            url.to_string()
        }
        Err(_) => {
            let mut out = redirect_uri.to_string();
            let mut sep = if out.contains('?') { '&' } else { '?' };
            for (k, v) in params {
                out.push(sep);
                out.push_str(
                    &url::form_urlencoded::Serializer::new(String::new())
                        .append_pair(k, v)
                        .finish(),
                );
                sep = '&';
            }
            out
        }
    }
}
