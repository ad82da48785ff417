//! Faults and load: concurrent writers, a crash in the middle of a load, and
//! housekeeping that keeps the tables bounded.

use crate::support::input_value as hidden_input;
use crate::support::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

fn sixty_four_concurrent_writers(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_write");
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..64)
            .map(|i| {
                let (key, f) = (&key, &f);
                s.spawn(move || {
                    let path = if i % 2 == 0 { "/v1/tags" } else { "/v1/forms" };
                    f.server
                        .client()
                        .bearer_post_json(path, key, &format!("{{\"name\":\"item {i}\"}}"))
                        .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    assert_eq!(f.db().count("tags") + f.db().count("forms"), 64);
    // Concurrent refreshes and key creations by other processes at the same time.
    let pairs: Vec<(String, String)> = (0..4).map(|_| f.tokens("workspace:read")).collect();
    std::thread::scope(|s| {
        for (_, refresh) in &pairs {
            let f = &f;
            s.spawn(move || assert_eq!(f.refresh(refresh).status, 200));
        }
        for i in 0..4 {
            let f = &f;
            s.spawn(move || {
                let out = f.db().cli(&[
                    "--json",
                    "apikey",
                    "create",
                    "--workspace",
                    &f.workspace_id,
                    "--name",
                    &format!("parallel {i}"),
                    "--access",
                    "read_only",
                ]);
                assert_eq!(out.code, 0, "{}", out.stderr);
            });
        }
    });
    let logs = f.server.logs();
    assert!(!logs.contains("database is locked"), "{logs}");
    assert!(!logs.contains(" 500 "), "{logs}");
}

fn crash_in_the_middle_of_load_leaves_consistent_state(b: Backend) {
    let f = Fixture::with_server(metrics_server(b, &[]));
    // Codes prepared before the load, exchanged during it.
    let codes: Vec<(String, String)> = (0..12).map(|_| f.code("workspace:read")).collect();
    let pairs: Vec<(String, String)> = (0..4).map(|_| f.tokens("workspace:read")).collect();
    let issued = Mutex::new(Vec::<String>::new());
    let redeemed = Mutex::new(Vec::<(String, String)>::new());
    let keys = Mutex::new(Vec::<String>::new());
    let stop = AtomicBool::new(false);
    let owner = Mutex::new(f.owner());
    let ws_page = owner
        .lock()
        .unwrap()
        .get(&format!("/settings/api-keys?workspace={}", f.workspace_id));
    let csrf = hidden(&ws_page.body, "csrf_token").unwrap();
    let mut server = f.server;
    let base = server.base.clone();
    let batched = std::thread::scope(|s| {
        s.spawn(|| {
            for (code, verifier) in &codes {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                // The kill can land in the middle of an exchange: that request
                // fails on the wire, and the ones after it are not sent.
                let r = std::panic::catch_unwind(|| {
                    Http::new(&base).post_form_with(
                        "/oauth/token",
                        &[
                            ("grant_type", "authorization_code"),
                            ("code", code),
                            ("redirect_uri", REDIRECT),
                            ("code_verifier", verifier),
                        ],
                        &[("Authorization", &basic(&f.client_id, &f.client_secret))],
                    )
                });
                let Ok(r) = r else { break };
                if r.status == 200 {
                    issued
                        .lock()
                        .unwrap()
                        .push(r.json()["access_token"].as_str().unwrap().to_string());
                    redeemed
                        .lock()
                        .unwrap()
                        .push((code.clone(), verifier.clone()));
                }
            }
        });
        for (_, refresh) in &pairs {
            let (stop, issued, base) = (&stop, &issued, &base);
            let auth = basic(&f.client_id, &f.client_secret);
            s.spawn(move || {
                let mut current = refresh.clone();
                while !stop.load(Ordering::Relaxed) {
                    let r = std::panic::catch_unwind(|| {
                        Http::new(base).post_form_with(
                            "/oauth/token",
                            &[("grant_type", "refresh_token"), ("refresh_token", &current)],
                            &[("Authorization", &auth)],
                        )
                    });
                    let Ok(r) = r else { break };
                    if r.status != 200 {
                        break;
                    }
                    let v = r.json();
                    current = v["refresh_token"].as_str().unwrap().to_string();
                    issued
                        .lock()
                        .unwrap()
                        .push(v["access_token"].as_str().unwrap().to_string());
                }
            });
        }
        s.spawn(|| {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let name = format!("under load {i}");
                let r = std::panic::catch_unwind(|| {
                    owner.lock().unwrap().post_form(
                        "/settings/api-keys",
                        &[
                            ("csrf_token", &csrf),
                            ("workspace_id", &f.workspace_id),
                            ("name", &name),
                            ("access", "read_only"),
                            ("expires", ""),
                        ],
                    )
                });
                let Ok(r) = r else { break };
                if r.status != 200 {
                    break;
                }
                if let Some(k) = hidden_input(&r.body, "new-key") {
                    keys.lock().unwrap().push(k);
                }
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        // On SQLite the grants share transactions (group commit): the kill
        // comes once some have, so that it can land on a shared one.
        let batched = b != Backend::Sqlite
            || (0..200).any(|_| {
                let m = scrape(&server);
                let writes = metric(&m, "keygate_db_group_commit_writes_total", &[]);
                let txs = metric(&m, "keygate_db_group_commit_transactions_total", &[]);
                writes > txs || {
                    std::thread::sleep(Duration::from_millis(50));
                    false
                }
            });
        // SIGKILL: no draining, no last flush.
        let _ = std::process::Command::new("kill")
            .arg("-9")
            .arg(server_pid(&server).to_string())
            .status();
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
        batched
    });
    assert!(batched, "no two grants shared a transaction under the load");
    let _ = server.terminate();
    // The same issuer, so that the tokens issued before the crash are its own.
    let restarted = Server::start_with(TestDb::reuse(&server.db), &[("KEYGATE_ISSUER", &base)]);
    let mut http = restarted.client();
    // Every token a client received has its record and works; every key too.
    let issued = issued.into_inner().unwrap();
    let keys = keys.into_inner().unwrap();
    assert!(
        !issued.is_empty() && !keys.is_empty(),
        "the load did not run"
    );
    for t in &issued {
        let r = http.bearer_get("/v1/workspace", t);
        assert_eq!(
            r.status, 200,
            "a token the client received does not work: {}",
            r.body
        );
    }
    for k in &keys {
        assert_eq!(
            http.bearer_get("/v1/workspace", k).status,
            200,
            "a key the client received does not work"
        );
    }
    // No code is redeemable twice.
    for (code, verifier) in redeemed.into_inner().unwrap() {
        let r = http.post_form_with(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
            &[("Authorization", &basic(&f.client_id, &f.client_secret))],
        );
        r.assert_oauth_error(400, "invalid_grant");
    }
    // No half-made key: every row is complete.
    extra_keys_in_flight(&restarted.db, keys.len());
}

/// A key created in the instant of the crash may be committed without its
/// response reaching the client; such a key is complete all the same.
fn extra_keys_in_flight(db: &TestDb, received: usize) {
    let total: i64 = db
        .text("SELECT CAST(COUNT(*) AS TEXT) AS v FROM api_keys WHERE name LIKE 'under load %'")
        .unwrap()
        .parse()
        .unwrap();
    let incomplete: i64 = db
        .text("SELECT CAST(COUNT(*) AS TEXT) AS v FROM api_keys WHERE secret_hash = '' OR length(secret_hash) <> 64")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(incomplete, 0, "a key row without its hash");
    let extra = total - received as i64;
    assert!(
        (0..=1).contains(&extra),
        "{total} keys stored, {received} received"
    );
}

fn server_pid(s: &Server) -> u32 {
    s.pid()
}

fn housekeeping_keeps_tables_bounded(b: Backend) {
    let s = Server::start_with(TestDb::new(b), &[("KEYGATE_HOUSEKEEPING_SECS", "1")]);
    let f = Fixture::with_server(s);
    let (_, refresh) = f.tokens("workspace:read");
    assert_eq!(f.refresh(&refresh).status, 200);
    let before =
        f.db().count("refresh_tokens") + f.db().count("access_tokens") + f.db().count("auth_codes");
    assert!(before >= 5);
    // Everything expires (codes an hour ago, so that replays are no longer tracked).
    f.db().execute("UPDATE refresh_tokens SET expires_at = 1; UPDATE access_tokens SET expires_at = 1; UPDATE auth_codes SET expires_at = 1; UPDATE sessions SET expires_at = 1;");
    assert!(eventually(Duration::from_secs(5), || {
        f.db().count("refresh_tokens")
            + f.db().count("access_tokens")
            + f.db().count("auth_codes")
            + f.db().count("sessions")
            == 0
    }));
    // The authorizations (the history of approvals) stay.
    assert_eq!(f.db().count("authorizations"), 1);
}

both_backends!(
    sixty_four_concurrent_writers,
    crash_in_the_middle_of_load_leaves_consistent_state,
    housekeeping_keeps_tables_bounded
);
