//! An HTTP client that reads like a client's session: cookies kept, redirects
//! never followed, every status returned; and the parsing of what pages carry.

use base64::Engine;
use serde_json::Value;
use std::time::Duration;

/// An HTTP response, whatever its status.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} (status {})", self.body, self.status))
    }
    pub fn location(&self) -> String {
        self.header("location")
            .unwrap_or_else(|| panic!("no Location (status {}): {}", self.status, self.body))
            .to_string()
    }
    /// The query parameters of the Location header.
    pub fn location_params(&self) -> Vec<(String, String)> {
        let loc = self.location();
        let url = url::Url::parse(&loc).unwrap_or_else(|_| panic!("not an absolute URL: {loc}"));
        query_params(&url)
    }
    /// Asserts the contract's `/v1` error envelope.
    pub fn assert_v1_error(&self, status: u16, kind: &str, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        let v = self.json();
        assert_eq!(v["error"]["type"], kind, "body: {}", self.body);
        assert_eq!(v["error"]["code"], code, "body: {}", self.body);
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    /// Asserts an RFC 6749 error body.
    pub fn assert_oauth_error(&self, status: u16, error: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        let v = self.json();
        assert_eq!(v["error"], error, "body: {}", self.body);
        assert!(v["error_description"].is_string());
    }
}

/// The query parameters of a URL, in order (read them with [`param`]).
pub fn query_params(url: &url::Url) -> Vec<(String, String)> {
    url.query_pairs().into_owned().collect()
}

pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A cookie-keeping HTTP client that never follows redirects.
pub struct Http {
    base: String,
    agent: ureq::Agent,
    cookies: Vec<(String, String)>,
}

impl Http {
    pub fn new(base: &str) -> Http {
        Http {
            base: base.to_string(),
            agent: ureq::AgentBuilder::new()
                .redirects(0)
                .timeout(Duration::from_secs(30))
                .build(),
            cookies: Vec::new(),
        }
    }

    fn absolute(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    fn finish(&mut self, result: Result<ureq::Response, ureq::Error>) -> Resp {
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("request failed: {e}"),
        };
        let status = resp.status();
        let mut headers = Vec::new();
        for name in resp.headers_names() {
            for v in resp.all(&name) {
                headers.push((name.clone(), v.to_string()));
            }
        }
        for (k, v) in &headers {
            if k.eq_ignore_ascii_case("set-cookie") {
                let pair = v.split(';').next().unwrap_or("");
                if let Some((name, value)) = pair.split_once('=') {
                    self.cookies.retain(|(n, _)| n != name);
                    if !value.is_empty() {
                        self.cookies.push((name.to_string(), value.to_string()));
                    }
                }
            }
        }
        let body = resp.into_string().unwrap_or_default();
        Resp {
            status,
            headers,
            body,
        }
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> ureq::Request {
        let mut req = self.agent.request(method, &self.absolute(path));
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.set("Cookie", &c.join("; "));
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        req
    }

    pub fn get(&mut self, path: &str) -> Resp {
        self.get_with(path, &[])
    }

    pub fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let r = self.request("GET", path, headers).call();
        self.finish(r)
    }

    pub fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        let r = self.request(method, path, headers).send_string(body);
        self.finish(r)
    }

    pub fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        self.post_form_with(path, form, &[])
    }

    pub fn post_form_with(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Resp {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut h = vec![("Content-Type", "application/x-www-form-urlencoded")];
        h.extend_from_slice(headers);
        self.send("POST", path, &h, &body)
    }

    pub fn bearer_get(&mut self, path: &str, credential: &str) -> Resp {
        let auth = format!("Bearer {credential}");
        self.get_with(path, &[("Authorization", &auth)])
    }

    pub fn bearer_post_json(&mut self, path: &str, credential: &str, body: &str) -> Resp {
        let auth = format!("Bearer {credential}");
        self.send(
            "POST",
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body,
        )
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// Signs in through the login form.
    pub fn login(&mut self, email: &str, password: &str) -> Resp {
        self.login_with(email, password, &[])
    }

    /// The login form, with `headers` on both of its requests (e.g. an
    /// `X-Forwarded-For` to sign in from another address).
    pub fn login_with(&mut self, email: &str, password: &str, headers: &[(&str, &str)]) -> Resp {
        let page = self.get_with("/login", headers);
        assert_eq!(page.status, 200, "login page: {}", page.body);
        let csrf = hidden(&page.body, "csrf_token").expect("login form has a CSRF token");
        self.post_form_with(
            "/login",
            &[
                ("email", email),
                ("password", password),
                ("csrf_token", &csrf),
                ("next", "/settings"),
            ],
            headers,
        )
    }
}

/// The value of a hidden form field in a page.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(unescape(&html[start..end]))
}

/// Undoes HTML escaping of an attribute value.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..end];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `client_secret_basic` as RFC 6749 §2.3.1 writes it (form-encoded, then base64).
pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// A string field of a JSON object; panics when it is missing.
pub fn s(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field} in {v}"))
        .to_string()
}

/// The full key in the "save your key" page (input id="new-key").
pub fn shown_key(html: &str) -> Option<String> {
    let at = html.find("id=\"new-key\"")?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let v = tag.find("value=\"")? + "value=\"".len();
    let end = tag[v..].find('"')? + v;
    Some(unescape(&tag[v..end]))
}

/// The `value` of the input with `id` (its first `value="` after the id).
/// The value of a read-only input by id (the secret page's fields).
pub fn input_value(html: &str, id: &str) -> Option<String> {
    let start = html.find(&format!("id=\"{id}\""))?;
    let rest = &html[start..];
    let v = rest.find("value=\"")? + 7;
    let end = rest[v..].find('"')? + v;
    Some(unescape(&rest[v..end]))
}

/// The authorization request of any client, redirect URI and scope.
pub fn authorize_path(client_id: &str, redirect: &str, scope: &str, challenge: &str) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", scope)
        .append_pair("state", "st-1")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    format!("/oauth/authorize?{q}")
}

/// The `code` of a redirect whose Location may use any scheme.
pub fn code_of(r: &Resp) -> String {
    let loc = r.location();
    let query = loc.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {loc}"))
}
