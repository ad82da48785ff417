//! A real nginx (Debian's `nginx-light`, `auth_request`) in front of a small
//! upstream, asking keygate's gateway check with tests/nginx/gateway.conf as
//! written (the configuration docs/gateways.md shows): what the upstream
//! receives, what the client is answered (401, 403 for a scope and for an
//! address, 429 with keygate's own envelope through the `error_page`), a
//! revocation within the bound, and garbage URIs without a 500.

use crate::require::require_program;
use crate::support::*;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const API: &str = "https://api.example.com";
const ROUTES: &[&str] = &[
    "GET /tags tags:read",
    "POST /tags tags:write",
    "* /health -",
];

/// A private nginx on a free loopback port, with its own prefix directory.
struct Nginx {
    child: Child,
    dir: PathBuf,
    base: String,
}

impl Nginx {
    fn start(keygate: &Server, upstream: &Upstream) -> Nginx {
        let nginx = require_program("nginx", "the nginx gateway tests");
        let dir = std::env::temp_dir().join(format!("keygate-nginx-{}", unique()));
        for sub in [
            "tmp/body",
            "tmp/proxy",
            "tmp/fastcgi",
            "tmp/uwsgi",
            "tmp/scgi",
            "logs",
        ] {
            std::fs::create_dir_all(dir.join(sub)).expect("nginx dirs");
        }
        let port = free_port();
        let template = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/nginx/gateway.conf"),
        )
        .expect("tests/nginx/gateway.conf");
        let resource: String = url::form_urlencoded::byte_serialize(API.as_bytes()).collect();
        let conf = template
            .replace("@PREFIX@", &dir.display().to_string())
            .replace("@LISTEN@", &format!("127.0.0.1:{port}"))
            .replace("@KEYGATE@", keygate.base.trim_start_matches("http://"))
            .replace("@UPSTREAM@", &format!("127.0.0.1:{}", upstream.port))
            .replace("@RESOURCE@", &resource);
        let conf_file = dir.join("nginx.conf");
        std::fs::write(&conf_file, conf).expect("write nginx.conf");
        let globals = format!(
            "daemon off; pid {0}/nginx.pid; error_log {0}/logs/error.log warn;",
            dir.display()
        );
        let child = Command::new(nginx)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf_file)
            .args(["-g", &globals])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let base = format!("http://127.0.0.1:{port}");
        let mut n = Nginx { child, dir, base };
        let up = eventually(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        if !up {
            let _ = n.child.kill();
            panic!("nginx did not start: {}", n.error_log());
        }
        n
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
    }

    fn client(&self) -> Http {
        Http::new(&self.base)
    }

    fn get(&self, path: &str, credential: Option<&str>) -> Resp {
        match credential {
            Some(c) => self.client().bearer_get(path, c),
            None => self.client().get(path),
        }
    }

    /// One raw request line: bytes no HTTP client library sends.
    fn raw_status(&self, target: &[u8], credential: &str) -> u16 {
        let mut tcp =
            std::net::TcpStream::connect(self.base.trim_start_matches("http://")).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut req = b"GET ".to_vec();
        req.extend_from_slice(target);
        req.extend_from_slice(
            format!(" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {credential}\r\n\r\n")
                .as_bytes(),
        );
        tcp.write_all(&req).unwrap();
        let mut out = Vec::new();
        let _ = tcp.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        text.split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// keygate behind nginx: nginx is the trusted proxy that names the client.
fn behind_nginx(b: Backend, env: &[(&str, &str)]) -> (Fixture, Upstream, Nginx) {
    let mut all = vec![("KEYGATE_TRUSTED_PROXIES", "127.0.0.1")];
    all.extend_from_slice(env);
    let f = Fixture::with_server(Server::start_with(TestDb::new(b), &all));
    f.db().create_resource(API, ROUTES);
    let upstream = Upstream::start();
    let nginx = Nginx::start(&f.server, &upstream);
    (f, upstream, nginx)
}

fn allowed_requests_reach_the_upstream_with_the_identity(b: Backend) {
    let (f, upstream, nginx) = behind_nginx(b, &[]);
    let row = f.db().create_api_key(&f.workspace_id, "gw", "read_only");
    let key = s(&row, "key");
    // Identity headers a client sends are replaced, never passed on.
    let auth = format!("Bearer {key}");
    let forged = [
        ("Authorization", auth.as_str()),
        ("X-Keygate-Workspace-Id", "forged"),
        ("X-Keygate-Subject", "forged"),
    ];
    let r = nginx.client().get_with("/tags/7?page=2", &forged);
    assert_eq!(r.status, 200, "{} {}", r.body, nginx.error_log());
    assert_eq!(r.body, "upstream ok");
    let got = upstream.take();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].method, "GET");
    assert_eq!(got[0].target, "/tags/7?page=2");
    assert_eq!(
        got[0].header("x-keygate-workspace-id"),
        Some(f.workspace_id.as_str())
    );
    let credential = format!("api_key:{}", s(&row, "id"));
    assert_eq!(
        got[0].header("x-keygate-credential"),
        Some(credential.as_str())
    );
    assert!(got[0]
        .header("x-keygate-scopes")
        .unwrap()
        .contains("tags:read"));
    assert_eq!(
        got[0].header("x-keygate-subject"),
        None,
        "a forged header passed"
    );

    let (_, tokens) = resource_tokens(&f, API, "tags:read tags:write");
    let access = s(&tokens, "access_token");
    let r = nginx
        .client()
        .bearer_post_json("/tags", &access, "{\"name\":\"x\"}");
    assert_eq!(r.status, 200, "{}", r.body);
    let got = upstream.take();
    assert_eq!(got[0].method, "POST");
    assert_eq!(
        got[0].header("x-keygate-client-id"),
        Some(f.client_id.as_str())
    );
    assert_eq!(
        got[0].header("x-keygate-subject"),
        Some(f.owner_id.as_str())
    );
    assert_eq!(
        got[0].header("x-keygate-scopes"),
        Some("tags:read tags:write")
    );
    // A /v1 token is no credential here.
    let (v1_token, _) = f.tokens("tags:read");
    nginx.get("/tags", Some(&v1_token)).assert_v1_error(
        401,
        "authentication_error",
        "invalid_api_key",
    );
    assert!(upstream.take().is_empty());
}

fn refusals_reach_the_client_as_keygate_answers_them(b: Backend) {
    let (f, upstream, nginx) = behind_nginx(b, &[]);
    let key = f.api_key("read_only");
    let r = nginx.get("/tags", None);
    r.assert_v1_error(401, "authentication_error", "invalid_api_key");
    let w = r.header("www-authenticate").expect("WWW-Authenticate");
    assert!(
        w.starts_with("Bearer") && w.contains("/.well-known/oauth-protected-resource/gateway/"),
        "{w}"
    );
    let r = nginx.client().bearer_post_json("/tags", &key, "{}");
    r.assert_v1_error(403, "permission_error", "insufficient_scope");
    nginx
        .get("/forms", Some(&key))
        .assert_v1_error(403, "permission_error", "insufficient_scope");
    let row = f.db().json(&[
        "apikey",
        "create",
        "--workspace",
        &f.workspace_id,
        "--name",
        "office",
        "--access",
        "read_only",
        "--allow-ip",
        "192.0.2.0/24",
    ]);
    nginx.get("/tags", Some(&s(&row, "key"))).assert_v1_error(
        403,
        "permission_error",
        "ip_not_allowed",
    );
    assert!(
        upstream.take().is_empty(),
        "a refused request reached the upstream"
    );

    // Revoked: refused at once (the CLI waits for every node's feed).
    let row = f
        .db()
        .create_api_key(&f.workspace_id, "soon-revoked", "read_only");
    assert_eq!(nginx.get("/tags", Some(&s(&row, "key"))).status, 200);
    f.db().json(&["apikey", "revoke", &s(&row, "id")]);
    nginx.get("/tags", Some(&s(&row, "key"))).assert_v1_error(
        401,
        "authentication_error",
        "invalid_api_key",
    );
}

fn garbage_uris_are_refused_without_a_500(b: Backend) {
    let (f, upstream, nginx) = behind_nginx(b, &[]);
    let key = f.api_key("read_only");
    let long = format!("/tags/{}", "a".repeat(8 * 1024));
    let targets: Vec<Vec<u8>> = vec![
        b"/tags/%zz".to_vec(),
        b"/tags/%".to_vec(),
        "/tags/caf\u{e9}".as_bytes().to_vec(),
        vec![b'/', 0xff, 0xfe],
        long.into_bytes(),
        b"/tags/../../etc/passwd".to_vec(),
    ];
    for t in targets {
        let status = nginx.raw_status(&t, &key);
        assert!(
            (400..500).contains(&status),
            "{:.40?}: {status} {}",
            String::from_utf8_lossy(&t),
            nginx.error_log()
        );
    }
    // Dot segments are removed before matching, by nginx and by keygate.
    assert_eq!(nginx.get("/forms/../tags", Some(&key)).status, 200);
    let _ = upstream.take();
}

fn rate_limits_reach_the_client_with_the_envelope(b: Backend) {
    let env = [
        ("KEYGATE_RATE_LIMITS", "on"),
        ("KEYGATE_BEARER_FAILURE_LIMIT", "3"),
    ];
    let (_f, upstream, nginx) = behind_nginx(b, &env);
    let mut limited = None;
    for _ in 0..6 {
        let r = nginx.get("/tags", Some("kg_not_a_key"));
        assert_ne!(r.status, 500, "nginx answered 500: {}", nginx.error_log());
        if r.status == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, 401);
    }
    let r = limited.expect("no 429 after six failures");
    r.assert_v1_error(429, "rate_limit_error", "rate_limited");
    assert!(r.header("retry-after").is_some());
    assert!(upstream.take().is_empty());
}

both_backends!(
    allowed_requests_reach_the_upstream_with_the_identity,
    refusals_reach_the_client_as_keygate_answers_them,
    garbage_uris_are_refused_without_a_500,
    rate_limits_reach_the_client_with_the_envelope
);
