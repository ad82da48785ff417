//! A resource's route table: which scope a request needs. Pure functions,
//! tested without a database.
//!
//! - A route is `METHOD PATH SCOPE`: an HTTP method or `*`, a path prefix
//!   matched on whole segments (`/tags` matches `/tags` and `/tags/7`, not
//!   `/tagsx`), and a catalogue scope or `-` (any valid credential).
//! - Paths are compared after RFC 3986 §6.2.2 normalisation: percent-encoded
//!   unreserved characters decoded, the other escapes in upper case, dot
//!   segments removed (§5.2.4); the query is ignored.
//! - The longest matching prefix wins; at equal length a route naming the
//!   method beats `*`. A request matching no route is refused.

use crate::credentials::scopes;
use serde::{Deserialize, Serialize};

/// The most routes a resource may have.
pub const MAX_ROUTES: usize = 100;
/// The longest path (of a route or a request) looked at, in bytes.
pub const MAX_PATH: usize = 8192;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// An HTTP method (`GET`), or `*` for any.
    pub method: String,
    /// A normalised path prefix without a trailing slash (`/` alone aside).
    pub path: String,
    /// The catalogue scope a request needs; `None` for any valid credential.
    pub scope: Option<String>,
}

/// Why a forwarded path cannot be matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadPath {
    /// Not a path (`/…`), not visible ASCII, or too long.
    NotAPath,
    /// A `%` not followed by two hex digits.
    BadEscape,
}

impl Route {
    /// Parses `METHOD PATH SCOPE` as `keygate resource create --route` takes it.
    pub fn parse(spec: &str) -> Result<Route, String> {
        let parts: Vec<&str> = spec.split_whitespace().collect();
        let [method, path, scope] = parts[..] else {
            return Err(format!(
                "route {spec:?}: expected 'METHOD PATH SCOPE', e.g. 'GET /tags tags:read'"
            ));
        };
        let method_ok = method == "*"
            || (!method.is_empty()
                && method.len() <= 20
                && method.bytes().all(|b| b.is_ascii_uppercase()));
        if !method_ok {
            return Err(format!(
                "route {spec:?}: the method must be an HTTP method in capitals (GET) or *"
            ));
        }
        let path = match normalise(path) {
            Ok(p) if !path.contains(['?', '#']) => prefix_form(p.into_owned()),
            _ => {
                return Err(format!(
                    "route {spec:?}: the path must start with / and hold no query, fragment, space or broken %-escape"
                ))
            }
        };
        let scope = match scope {
            "-" => None,
            s if scopes::info(s).is_some() => Some(s.to_string()),
            s => {
                return Err(format!(
                "route {spec:?}: unknown scope {s:?} (one of {}, or - for any valid credential)",
                scopes::all_names().join(", ")
            ))
            }
        };
        Ok(Route {
            method: method.to_string(),
            path,
            scope,
        })
    }

    /// `METHOD PATH SCOPE`, as it was given (normalised).
    pub fn spec(&self) -> String {
        format!(
            "{} {} {}",
            self.method,
            self.path,
            self.scope.as_deref().unwrap_or("-")
        )
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        (self.method == "*" || self.method == method) && prefix_matches(&self.path, path)
    }
}

/// Parses every `--route`; refuses more than [`MAX_ROUTES`] and a route given
/// twice (same method and path).
pub fn parse_all(specs: &[String]) -> Result<Vec<Route>, String> {
    if specs.len() > MAX_ROUTES {
        return Err(format!("at most {MAX_ROUTES} routes per resource"));
    }
    let mut routes: Vec<Route> = Vec::with_capacity(specs.len());
    for spec in specs {
        let route = Route::parse(spec)?;
        if routes
            .iter()
            .any(|r| r.method == route.method && r.path == route.path)
        {
            return Err(format!(
                "route {spec:?}: {} {} is given twice",
                route.method, route.path
            ));
        }
        routes.push(route);
    }
    Ok(routes)
}

/// A normalised path as a prefix: without its trailing slash, `/` aside.
fn prefix_form(mut path: String) -> String {
    while path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    path
}

/// `prefix` matches `path` on whole segments.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The route a request with `method` and the original URI `raw` (a path,
/// perhaps with a query) falls under: the longest matching prefix, a route
/// naming the method before `*`. `Ok(None)`: no route matches.
pub fn route_for<'r>(
    routes: &'r [Route],
    method: &str,
    raw: &str,
) -> Result<Option<&'r Route>, BadPath> {
    let path = normalise(raw)?;
    let path = path.as_ref();
    Ok(routes
        .iter()
        .filter(|r| r.matches(method, path))
        .max_by_key(|r| (r.path.len(), r.method != "*")))
}

/// RFC 3986 §6.2.2 on an origin-form request target: the query and fragment
/// dropped, escapes of unreserved characters decoded and the others in upper
/// case, dot segments removed. A path with no escape and no dot segment is
/// its own normal form, borrowed.
pub fn normalise(raw: &str) -> Result<std::borrow::Cow<'_, str>, BadPath> {
    let path = raw.split(['?', '#']).next().unwrap_or("");
    if !path.starts_with('/')
        || path.len() > MAX_PATH
        || !path.bytes().all(|b| (0x21..=0x7e).contains(&b))
    {
        return Err(BadPath::NotAPath);
    }
    if !path.contains('%') && !path.split('/').any(|s| s == "." || s == "..") {
        return Ok(path.into());
    }
    Ok(remove_dot_segments(&decode_unreserved(path)?).into())
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn decode_unreserved(path: &str) -> Result<String, BadPath> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(char::from(bytes[i]));
            i += 1;
            continue;
        }
        let (Some(hi), Some(lo)) = (
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) else {
            return Err(BadPath::BadEscape);
        };
        let decoded = hi * 16 + lo;
        if decoded.is_ascii_alphanumeric() || b"-._~".contains(&decoded) {
            out.push(char::from(decoded));
        } else {
            out.push_str(&format!("%{decoded:02X}"));
        }
        i += 3;
    }
    Ok(out)
}

/// RFC 3986 §5.2.4, on a path that starts with `/`.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." | ".." => {
                if *seg == ".." {
                    out.pop();
                }
                // `/a/.` and `/a/..` keep their trailing slash.
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn routes(specs: &[&str]) -> Vec<Route> {
        parse_all(&specs.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("routes")
    }

    fn picked(routes: &[Route], method: &str, uri: &str) -> Option<String> {
        route_for(routes, method, uri)
            .expect("a path")
            .map(Route::spec)
    }

    #[test]
    fn prefixes_match_whole_segments() {
        let r = routes(&["GET /tags tags:read"]);
        assert_eq!(
            picked(&r, "GET", "/tags").as_deref(),
            Some("GET /tags tags:read")
        );
        assert!(picked(&r, "GET", "/tags/7").is_some());
        assert!(picked(&r, "GET", "/tags/").is_some());
        assert!(picked(&r, "GET", "/tags?x=1").is_some());
        assert!(picked(&r, "GET", "/tagsx").is_none());
        assert!(picked(&r, "GET", "/tag").is_none());
        assert!(picked(&r, "POST", "/tags").is_none());
        assert!(picked(&r, "GET", "/").is_none());
    }

    #[test]
    fn longest_prefix_then_the_named_method_wins() {
        let r = routes(&[
            "* / -",
            "* /tags tags:read",
            "POST /tags tags:write",
            "GET /tags/admin workspace:read",
        ]);
        assert_eq!(picked(&r, "GET", "/tags/7").unwrap(), "* /tags tags:read");
        assert_eq!(
            picked(&r, "POST", "/tags/7").unwrap(),
            "POST /tags tags:write"
        );
        assert_eq!(
            picked(&r, "GET", "/tags/admin/x").unwrap(),
            "GET /tags/admin workspace:read"
        );
        assert_eq!(
            picked(&r, "POST", "/tags/admin").unwrap(),
            "POST /tags tags:write"
        );
        assert_eq!(picked(&r, "DELETE", "/forms").unwrap(), "* / -");
        // The order given does not matter.
        let mut reversed = r.clone();
        reversed.reverse();
        assert_eq!(
            picked(&reversed, "POST", "/tags").unwrap(),
            "POST /tags tags:write"
        );
    }

    #[test]
    fn paths_are_normalised_before_matching() {
        let r = routes(&["GET /tags tags:read", "GET /admin workspace:read"]);
        for uri in ["/%74ags", "/x/../tags", "/./tags/7", "/admin/../tags/%37"] {
            assert_eq!(
                picked(&r, "GET", uri).unwrap(),
                "GET /tags tags:read",
                "{uri}"
            );
        }
        assert_eq!(
            picked(&r, "GET", "/tags/../admin").unwrap(),
            "GET /admin workspace:read"
        );
        assert!(picked(&r, "GET", "/../../tagsx").is_none());
        // An escape of a reserved character stays an escape.
        assert!(picked(&r, "GET", "/tags%2Fx").is_none());
        assert_eq!(normalise("/a%2fb/%7e").unwrap(), "/a%2Fb/~");
        assert_eq!(normalise("/a/b/..").unwrap(), "/a/");
        assert_eq!(normalise("/..").unwrap(), "/");
    }

    #[test]
    fn garbage_is_refused_not_matched() {
        let r = routes(&["* / -"]);
        for uri in ["", "tags", "/%", "/%4", "/%zz", "http://x/tags"] {
            assert!(route_for(&r, "GET", uri).is_err(), "{uri:?}");
        }
        assert_eq!(route_for(&r, "GET", "/caf\u{e9}"), Err(BadPath::NotAPath));
        assert_eq!(route_for(&r, "GET", "/a b"), Err(BadPath::NotAPath));
        let long = format!("/{}", "a".repeat(MAX_PATH));
        assert_eq!(route_for(&r, "GET", &long), Err(BadPath::NotAPath));
    }

    #[test]
    fn route_specs_are_checked() {
        let r = Route::parse("GET /tags/ tags:read").unwrap();
        assert_eq!(r.path, "/tags");
        assert_eq!(Route::parse("* / -").unwrap().scope, None);
        assert_eq!(Route::parse("GET /%74ags -").unwrap().path, "/tags");
        for bad in [
            "GET /tags",
            "get /tags tags:read",
            "GET tags tags:read",
            "GET /tags?x tags:read",
            "GET /tags nope:read",
            "GET /tags tags:read extra",
            "GET /%zz -",
        ] {
            assert!(Route::parse(bad).is_err(), "{bad}");
        }
        let twice = [
            "GET /tags -".to_string(),
            "GET /tags/ tags:read".to_string(),
        ];
        assert!(parse_all(&twice).is_err());
        let many: Vec<String> = (0..=MAX_ROUTES).map(|i| format!("GET /r{i} -")).collect();
        assert!(parse_all(&many).is_err());
    }

    proptest! {
        #[test]
        fn any_uri_is_matched_or_refused_without_panic(uri in "\\PC{0,64}", method in "[A-Z*]{0,6}") {
            let r = routes(&["* / -", "GET /a tags:read"]);
            let _ = route_for(&r, &method, &uri);
        }

        #[test]
        fn normalising_twice_changes_nothing(segs in proptest::collection::vec("[a-z.%0-9A-F]{0,4}", 0..6)) {
            let uri = format!("/{}", segs.join("/"));
            if let Ok(once) = normalise(&uri) {
                prop_assert_eq!(normalise(&once).unwrap(), once.clone());
                prop_assert!(once.starts_with('/'));
                prop_assert!(!once.split('/').any(|s| s == "." || s == ".."));
            }
        }

        #[test]
        fn the_borrowed_fast_path_reads_as_the_full_normalisation(
            segs in proptest::collection::vec("[a-zA-Z0-9.~%_-]{0,4}", 0..6),
        ) {
            let uri = format!("/{}", segs.join("/"));
            let full = decode_unreserved(&uri).map(|p| remove_dot_segments(&p));
            match normalise(&uri) {
                Ok(path) => prop_assert_eq!(path.into_owned(), full.expect("the same reading")),
                Err(_) => prop_assert!(full.is_err()),
            }
        }
    }
}
