//! Fuzzed /v1 requests get documented answers.

use super::*;

// ---------------------------------------------------------------- fuzz

/// xorshift64*: deterministic, no crates.
struct Rng(u64);

impl Rng {
    /// Spreads any seed (splitmix64) so that small seeds start well too.
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    /// Printable ASCII, space and tab: what a header value may hold.
    fn header_text(&mut self, max: usize) -> String {
        let n = self.below(max + 1);
        (0..n)
            .map(|_| {
                if self.below(20) == 0 {
                    '\t'
                } else {
                    (b' ' + self.below(95) as u8) as char
                }
            })
            .collect()
    }
    /// Anything at all, including control and non-ASCII characters.
    fn any_text(&mut self, max: usize) -> String {
        let n = self.below(max + 1);
        (0..n)
            .map(|_| match self.below(4) {
                0 => char::from_u32(self.below(0x20) as u32).unwrap(),
                1 => char::from_u32(0x80 + self.below(0x2000) as u32).unwrap_or('?'),
                2 => *self.pick(&['"', '\\', '{', '}', '[', ']', ':', ',', 'n', 'u']),
                _ => (b' ' + self.below(95) as u8) as char,
            })
            .collect()
    }
    fn json_value(&mut self, depth: usize) -> Value {
        match self.below(if depth > 3 { 5 } else { 8 }) {
            0 => Value::Null,
            1 => json!(self.below(2) == 0),
            2 => json!(self.next() as i64),
            3 => json!(self.any_text(40)),
            4 => json!(self.next() as f64 / 7.0),
            5 => Value::Array(
                (0..self.below(4))
                    .map(|_| self.json_value(depth + 1))
                    .collect(),
            ),
            _ => {
                let mut m = serde_json::Map::new();
                for _ in 0..self.below(4) {
                    let k = if self.below(2) == 0 {
                        "name".to_string()
                    } else {
                        self.any_text(8)
                    };
                    m.insert(k, self.json_value(depth + 1));
                }
                Value::Object(m)
            }
        }
    }
}

fn mutate(rng: &mut Rng, s: &str) -> String {
    let mut c: Vec<char> = s.chars().collect();
    if c.is_empty() {
        return "x".into();
    }
    match rng.below(6) {
        0 => {
            let i = rng.below(c.len());
            c[i] = (b'!' + rng.below(94) as u8) as char;
        }
        1 => {
            c.remove(rng.below(c.len()));
        }
        2 => c.insert(rng.below(c.len() + 1), (b'0' + rng.below(75) as u8) as char),
        3 => c.truncate(rng.below(c.len())),
        4 => {
            let i = rng.below(c.len());
            c[i] = if c[i].is_ascii_lowercase() {
                c[i].to_ascii_uppercase()
            } else {
                c[i].to_ascii_lowercase()
            };
        }
        _ => c.extend(['.', 'e', 'y', 'J']),
    }
    c.into_iter().collect()
}

/// Whether an Authorization value is `Bearer` (any case) and one of the valid
/// credentials.
fn presents_valid(auth: &str, valid: &[&str]) -> bool {
    let a = auth.trim_matches([' ', '\t']);
    match a.split_once(' ') {
        Some((scheme, cred)) if scheme.eq_ignore_ascii_case("bearer") => {
            valid.contains(&cred.trim())
        }
        _ => false,
    }
}

fn check_documented(r: &Resp, what: &str) {
    assert!(
        [200, 201, 400, 401, 403, 404, 405, 409, 413].contains(&r.status),
        "{what}: undocumented status {}: {}",
        r.status,
        r.body
    );
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}: not JSON ({:?}): {}",
        r.header("content-type"),
        r.body
    );
    let v: Value = serde_json::from_str(&r.body)
        .unwrap_or_else(|e| panic!("{what}: body not JSON ({e}): {:?}", r.body));
    match r.status {
        200 => {
            let list = v["data"].is_array() && v["has_more"].is_boolean();
            let workspace = v["id"].is_string() && v["name"].is_string();
            assert!(list || workspace, "{what}: {v}");
        }
        201 => {
            for field in ["id", "name", "created_at"] {
                assert!(v[field].is_string(), "{what}: {v}");
            }
        }
        401 => assert_eq!(v, unauthenticated_body(), "{what}"),
        _ => {
            for field in ["type", "code", "message"] {
                assert!(v["error"][field].is_string(), "{what}: {v}");
            }
        }
    }
}

fn fuzzed_requests_get_documented_answers(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_write");
    let ro = f.api_key("read_only");
    let (token, _) = f.tokens(ALL_SCOPES);
    let mut http = f.server.client();
    // A fixed seed, so that a failure repeats; KEYGATE_FUZZ_SEED explores others.
    let seed = std::env::var("KEYGATE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| *s != 0)
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    let mut rng = Rng::new(seed);
    let mut created = 0;

    // 1. Authorization headers.
    for i in 0..150 {
        let auth = match rng.below(8) {
            0 => rng.header_text(80),
            1 => format!("Bearer {}", rng.header_text(120)),
            2 => format!("Bearer {}", mutate(&mut rng, &key)),
            3 => format!("Bearer {}", mutate(&mut rng, &token)),
            4 => {
                let cut = rng.below(token.len());
                format!("Bearer {}", &token[..cut])
            }
            5 => format!(
                "{} {}",
                rng.pick(&["Bearer", "bearer", "Basic", "Token", "", "Bearer:", "Bearer\t"]),
                rng.pick(&[key.as_str(), ro.as_str(), token.as_str(), "", " "])
            ),
            6 => format!(
                "Bearer kgk_{}",
                rng.header_text(60).replace([' ', '\t'], "")
            ),
            _ => {
                let parts: Vec<&str> = token.split('.').collect();
                let junk = rng.header_text(30).replace([' ', '\t'], "");
                let mut p: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
                let which = rng.below(3);
                p[which] = junk;
                format!("Bearer {}", p.join("."))
            }
        };
        let (method, path) = *rng.pick(&[
            ("GET", "/v1/workspace"),
            ("GET", "/v1/tags"),
            ("GET", "/v1/forms?limit=3"),
            ("POST", "/v1/tags"),
            ("POST", "/v1/forms"),
            ("DELETE", "/v1/tags"),
            ("GET", "/v1/nope"),
        ]);
        let body = format!(r#"{{"name":"auth-fuzz-{i}"}}"#);
        let r = http.send(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            if method == "POST" { &body } else { "" },
        );
        let what = format!("#{i} {method} {path} Authorization: {auth:?}");
        check_documented(&r, &what);
        // Only an exact valid credential gets past the check.
        let real_route = !(method == "DELETE" || path == "/v1/nope");
        if real_route && !presents_valid(&auth, &[&key, &ro, &token]) {
            assert_eq!(r.status, 401, "{what}: {}", r.body);
        }
        if r.status == 201 && path == "/v1/tags" {
            created += 1;
        }
    }

    // 2. Bodies and content types, with a valid key.
    for i in 0..150 {
        let ctype = match rng.below(6) {
            0 => None,
            1 => Some(rng.header_text(30)),
            2 => Some(
                rng.pick(&[
                    "text/plain",
                    "application/x-www-form-urlencoded",
                    "multipart/form-data; boundary=x",
                    "application/jsonx",
                    "APPLICATION/JSON",
                    "application/json; charset=latin1",
                ])
                .to_string(),
            ),
            _ => Some("application/json".to_string()),
        };
        let body = match rng.below(7) {
            0 => rng.any_text(200),
            1 => rng.json_value(0).to_string(),
            2 => json!({ "name": rng.json_value(2) }).to_string(),
            3 => json!({ "name": rng.any_text(120) }).to_string(),
            4 => {
                let depth = 1 + rng.below(400);
                format!("{}{}", "[".repeat(depth), "]".repeat(depth))
            }
            5 => {
                let mut s = json!({ "name": format!("body-fuzz-{i}") }).to_string();
                s.truncate(rng.below(s.len() + 1));
                s
            }
            _ => json!({ "name": format!("body-fuzz-{}", rng.below(40)) }).to_string(),
        };
        let auth = format!("Bearer {key}");
        let mut headers = vec![("Authorization", auth.as_str())];
        if let Some(c) = &ctype {
            headers.push(("Content-Type", c.as_str()));
        }
        let r = http.send("POST", "/v1/tags", &headers, &body);
        check_documented(&r, &format!("#{i} Content-Type {ctype:?} body {body:?}"));
        if r.status == 201 {
            created += 1;
        }
    }
    assert!(created >= 3, "the fuzz hardly created anything: {created}");
    // Every 201 made exactly one row, and the server is still healthy.
    assert_eq!(f.db().count("tags"), created);
    let all = list(&mut http, "/v1/tags?limit=100", &key);
    assert!(all["data"].as_array().unwrap().len() as i64 <= created);
    assert_eq!(http.get("/healthz").status, 200);
}

both_backends!(fuzzed_requests_get_documented_answers,);
