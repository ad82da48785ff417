//! `keygate demo` seeds, prints and serves.

use super::*;

/// `keygate demo` seeds what is absent, prints how to try the flow, and serves;
/// the printed flow works end to end, and a second start adds nothing.
#[test]
fn demo_seeds_prints_and_serves() {
    let db = TestDb::new(Backend::Sqlite);
    // The same issuer both times (the demo client's redirect URI is built from it).
    let port = free_port();
    for round in 0..2 {
        let issuer = format!("http://127.0.0.1:{port}");
        let mut child = std::process::Command::new(BIN)
            .args(["demo", "--json"])
            .env("KEYGATE_DATABASE_URL", &db.url)
            .env("KEYGATE_ISSUER", &issuer)
            .env("KEYGATE_BIND", format!("127.0.0.1:{port}"))
            .env("KEYGATE_RATE_LIMITS", "off")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let demo: Value = serde_json::from_str(&line).unwrap();
        assert!(eventually(std::time::Duration::from_secs(10), || {
            ureq::get(&format!("{issuer}/healthz")).call().is_ok()
        }));
        let mut http = Http::new(&issuer);
        assert_eq!(
            http.login(
                demo["email"].as_str().unwrap(),
                demo["password"].as_str().unwrap()
            )
            .status,
            303
        );
        let page = http.get(demo["authorize_url"].as_str().unwrap());
        assert_eq!(page.status, 200, "{}", page.body);
        let r = http.post_form(
            "/oauth/authorize",
            &[
                ("consent_id", &hidden(&page.body, "consent_id").unwrap()),
                ("csrf_token", &hidden(&page.body, "csrf_token").unwrap()),
                ("workspace_id", demo["workspace_id"].as_str().unwrap()),
                ("decision", "approve"),
            ],
        );
        assert!(r
            .location()
            .starts_with(&format!("{issuer}/demo/callback?")));
        let code = param(&r.location_params(), "code").unwrap().to_string();
        let callback = http.get(&r.location());
        assert!(
            callback.status == 200 && callback.body.contains("curl"),
            "{}",
            callback.body
        );
        let t = http.post_form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", demo["redirect_uri"].as_str().unwrap()),
                ("code_verifier", demo["code_verifier"].as_str().unwrap()),
                ("client_id", demo["client_id"].as_str().unwrap()),
            ],
        );
        assert_eq!(t.status, 200, "{}", t.body);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(db.count("workspaces"), 1, "round {round}");
        assert_eq!(db.count("clients"), 1, "round {round}");
    }
}
