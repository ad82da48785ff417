//! The provider's metadata (OpenID Connect Discovery 1.0): what keygate reads
//! of it, and the checks it must pass before anyone is sent to the provider.

use serde::Deserialize;
use std::time::Duration;
use url::Url;

/// The parts of the discovery document keygate uses, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub jwks_uri: Url,
    pub userinfo_endpoint: Option<Url>,
}

#[derive(Deserialize)]
struct Document {
    issuer: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    jwks_uri: Option<String>,
    userinfo_endpoint: Option<String>,
    code_challenge_methods_supported: Option<Vec<String>>,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// `{issuer}/.well-known/openid-configuration` (Discovery §4: a trailing `/`
/// of the issuer is dropped before the path is added).
pub fn discovery_url(issuer: &str) -> Result<Url, String> {
    let base = issuer.trim_end_matches('/');
    Url::parse(&format!("{base}/.well-known/openid-configuration"))
        .map_err(|e| format!("the discovery URL of {issuer:?} is not a URL: {e}"))
}

/// The document's metadata, if it describes `issuer` exactly (Discovery §4.3)
/// and offers what keygate needs: https endpoints, PKCE with S256 and
/// `client_secret_basic` where it lists methods (a missing list means the
/// defaults, which include both).
pub fn parse(issuer: &str, body: &[u8]) -> Result<Metadata, String> {
    let doc: Document = serde_json::from_slice(body)
        .map_err(|e| format!("the discovery document is not valid JSON: {e}"))?;
    match doc.issuer.as_deref() {
        Some(i) if i == issuer => {}
        Some(i) => {
            return Err(format!(
                "the discovery document names the issuer {i:?}, not {issuer:?}"
            ))
        }
        None => return Err("the discovery document has no issuer".into()),
    }
    if let Some(methods) = &doc.code_challenge_methods_supported {
        if !methods.iter().any(|m| m == "S256") {
            return Err("the provider does not offer PKCE with S256".into());
        }
    }
    if let Some(methods) = &doc.token_endpoint_auth_methods_supported {
        if !methods.iter().any(|m| m == "client_secret_basic") {
            return Err("the provider does not accept client_secret_basic".into());
        }
    }
    Ok(Metadata {
        authorization_endpoint: endpoint("authorization_endpoint", doc.authorization_endpoint)?,
        token_endpoint: endpoint("token_endpoint", doc.token_endpoint)?,
        jwks_uri: endpoint("jwks_uri", doc.jwks_uri)?,
        userinfo_endpoint: doc
            .userinfo_endpoint
            .map(|u| endpoint("userinfo_endpoint", Some(u)))
            .transpose()?,
    })
}

fn endpoint(name: &str, value: Option<String>) -> Result<Url, String> {
    let value = value.ok_or_else(|| format!("the discovery document has no {name}"))?;
    let url = Url::parse(&value).map_err(|e| format!("{name} {value:?} is not a URL: {e}"))?;
    if url.scheme() != "https" || url.host().is_none() || url.fragment().is_some() {
        return Err(format!("{name} {value:?} is not an https URL"));
    }
    Ok(url)
}

/// How long a fetched document (discovery, JWKS) is kept: `max-age` (0 for
/// `no-store` / `no-cache`), else an hour, held within a minute and a day, so
/// that a provider can neither make every sign-in fetch it again nor keep a
/// retired key trusted for long.
pub fn cache_ttl(cache_control: Option<&str>) -> Duration {
    const DEFAULT: u64 = 3600;
    const MIN: u64 = 60;
    const MAX: u64 = 24 * 3600;
    let mut ttl = None;
    for directive in cache_control.unwrap_or("").split(',') {
        let directive = directive.trim().to_ascii_lowercase();
        if directive == "no-store" || directive == "no-cache" {
            ttl = Some(0);
            break;
        }
        if let Some(v) = directive.strip_prefix("max-age=") {
            if let Ok(secs) = v.trim_matches('"').parse::<u64>() {
                ttl = Some(secs);
            }
        }
    }
    Duration::from_secs(ttl.unwrap_or(DEFAULT).clamp(MIN, MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISSUER: &str = "https://idp.example.test/tenant";

    fn doc(extra: serde_json::Value) -> Vec<u8> {
        let mut d = json!({
            "issuer": ISSUER,
            "authorization_endpoint": "https://idp.example.test/auth",
            "token_endpoint": "https://idp.example.test/token",
            "jwks_uri": "https://idp.example.test/jwks",
        });
        for (k, v) in extra.as_object().unwrap() {
            d[k] = v.clone();
        }
        d.to_string().into_bytes()
    }

    #[test]
    fn the_document_must_name_the_issuer_exactly_and_use_https() {
        let m = parse(ISSUER, &doc(json!({}))).unwrap();
        assert_eq!(m.token_endpoint.as_str(), "https://idp.example.test/token");
        assert_eq!(m.userinfo_endpoint, None);
        assert!(parse(ISSUER, &doc(json!({"issuer": format!("{ISSUER}/")}))).is_err());
        assert!(parse(ISSUER, &doc(json!({"issuer": null}))).is_err());
        assert!(parse(
            ISSUER,
            &doc(json!({"token_endpoint": "http://idp.example.test/t"}))
        )
        .is_err());
        assert!(parse(ISSUER, &doc(json!({"jwks_uri": null}))).is_err());
        assert!(parse(ISSUER, b"not json").is_err());
        let no_s256 = doc(json!({"code_challenge_methods_supported": ["plain"]}));
        assert!(parse(ISSUER, &no_s256).is_err());
        let no_basic = doc(json!({"token_endpoint_auth_methods_supported": ["private_key_jwt"]}));
        assert!(parse(ISSUER, &no_basic).is_err());
        assert_eq!(
            discovery_url("https://idp.test/t/").unwrap().as_str(),
            "https://idp.test/t/.well-known/openid-configuration"
        );
    }

    #[test]
    fn cache_control_is_honoured_within_bounds() {
        let t = |h: Option<&str>| cache_ttl(h).as_secs();
        assert_eq!(t(None), 3600);
        assert_eq!(t(Some("public, max-age=600")), 600);
        assert_eq!(t(Some("no-store")), 60);
        assert_eq!(t(Some("max-age=5")), 60);
        assert_eq!(t(Some("max-age=99999999")), 86400);
    }
}
