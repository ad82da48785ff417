//! A resource's identifier (RFC 8707 §2): an absolute `https` URL without a
//! fragment (`http` on a loopback host for local use), compared exactly with
//! one trailing slash ignored, and never keygate's own `{issuer}/v1`.

/// The form an identifier is compared in: without one trailing slash.
pub fn key(identifier: &str) -> &str {
    identifier.strip_suffix('/').unwrap_or(identifier)
}

/// Whether `a` and `b` name the same resource.
pub fn same(a: &str, b: &str) -> bool {
    key(a) == key(b)
}

/// Checks an identifier given to `keygate resource create`; `v1` is
/// `{issuer}/v1`. Returns it as it is kept (as given).
pub fn check(raw: &str, v1: &str) -> Result<String, String> {
    let bad = |why: &str| Err(format!("identifier {raw:?}: {why}"));
    if raw.is_empty() || raw.len() > 2000 || raw.trim() != raw {
        return bad("must be an absolute URL of at most 2000 characters, without spaces");
    }
    let Ok(url) = url::Url::parse(raw) else {
        return bad("is not an absolute URL");
    };
    if raw.contains('#') || url.fragment().is_some() {
        return bad("must not have a fragment (RFC 8707 §2)");
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => {}
        "http" if loopback => {}
        _ => return bad("must be an https URL (http only on a loopback host)"),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return bad("must not carry a user name or password");
    }
    if same(raw, v1) {
        return bad("is keygate's own /v1, which is not registered");
    }
    Ok(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "https://id.example.com/v1";

    #[test]
    fn identifiers() {
        for ok in [
            "https://api.example.com",
            "https://api.example.com/",
            "https://api.example.com/mcp?tenant=1",
            "http://127.0.0.1:8000/mcp",
            "http://[::1]:9/x",
            "http://localhost:3000",
        ] {
            assert_eq!(check(ok, V1).as_deref(), Ok(ok), "{ok}");
        }
        for bad in [
            "",
            "api.example.com",
            "/mcp",
            "https://api.example.com/#x",
            "https://api.example.com/x#",
            "http://api.example.com",
            "ftp://api.example.com",
            "https://u:p@api.example.com",
            " https://api.example.com",
            "https://id.example.com/v1",
            "https://id.example.com/v1/",
        ] {
            assert!(check(bad, V1).is_err(), "{bad:?}");
        }
        assert!(same("https://a.example/x/", "https://a.example/x"));
        assert!(!same("https://a.example/x//", "https://a.example/x"));
        assert!(!same("https://a.example/X", "https://a.example/x"));
    }
}
