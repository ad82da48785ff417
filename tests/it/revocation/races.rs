//! Refreshes and code exchanges racing a revocation.

use super::*;

// ---------------------------------------------------------------------------
// Races

/// The server's log lines that report failures.
fn server_errors(server: &Server) -> String {
    server
        .logs()
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("WARN"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A refresh racing the revocation of the same refresh token: never a 500, and
/// whatever the refresh won is dead once the revocation has answered.
fn refresh_racing_revocation(b: Backend) {
    let f = Fixture::new(b);
    let mut owner = f.owner();
    let mut grants = Vec::new();
    for _ in 0..24 {
        let (verifier, challenge) = pkce();
        let params = f.approve(&mut owner, &f.client_id, SCOPE, &challenge);
        let r = f.exchange(param(&params, "code").unwrap(), &verifier);
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        grants.push((
            v["access_token"].as_str().unwrap().to_string(),
            v["refresh_token"].as_str().unwrap().to_string(),
        ));
    }
    for batch in grants.chunks(8) {
        let barrier = std::sync::Barrier::new(batch.len() * 2);
        let results: Vec<(Resp, Resp)> = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|(_, r)| {
                    let barrier = &barrier;
                    let f = &f;
                    let refreshed = s.spawn(move || {
                        barrier.wait();
                        f.refresh(r)
                    });
                    let revoked = s.spawn(move || {
                        barrier.wait();
                        post(
                            &f.server,
                            "/oauth/revoke",
                            &[("token", r)],
                            Some(&f.basic()),
                        )
                    });
                    (refreshed, revoked)
                })
                .collect();
            handles
                .into_iter()
                .map(|(a, b)| (a.join().unwrap(), b.join().unwrap()))
                .collect()
        });
        for ((access, refresh), (refreshed, revoked)) in batch.iter().zip(results) {
            for (what, r) in [("refresh", &refreshed), ("revoke", &revoked)] {
                assert!(
                    r.status < 500,
                    "{what} racing a revocation answered {}: {}\nserver log:\n{}",
                    r.status,
                    r.body,
                    server_errors(&f.server)
                );
            }
            assert_eq!(revoked.status, 200, "revoke lost a race: {}", revoked.body);
            assert_dead(&f.server, access);
            f.refresh(refresh).assert_oauth_error(400, "invalid_grant");
            match refreshed.status {
                200 => {
                    let v = refreshed.json();
                    assert_dead(&f.server, v["access_token"].as_str().unwrap());
                    f.refresh(v["refresh_token"].as_str().unwrap())
                        .assert_oauth_error(400, "invalid_grant");
                }
                _ => refreshed.assert_oauth_error(400, "invalid_grant"),
            }
        }
    }
}

/// A code exchange racing the revocation of its authorization on the settings
/// page: never a 500, and whatever the exchange won is dead afterwards.
fn code_exchange_racing_revocation(b: Backend) {
    let f = Fixture::new(b);
    let mut owner = f.owner();
    let mut known = Vec::new();
    let mut codes = Vec::new();
    for _ in 0..24 {
        let (verifier, challenge) = pkce();
        let params = f.approve(&mut owner, &f.client_id, SCOPE, &challenge);
        let now = ids(&f);
        let id = now.iter().find(|id| !known.contains(*id)).unwrap().clone();
        known = now;
        codes.push((param(&params, "code").unwrap().to_string(), verifier, id));
    }
    for batch in codes.chunks(8) {
        let barrier = std::sync::Barrier::new(batch.len() * 2);
        let results: Vec<(Resp, Resp)> = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|(code, verifier, id)| {
                    let barrier = &barrier;
                    let f = &f;
                    // The owner's session and its CSRF token, ready before the race.
                    let mut session = f.owner();
                    let page = session.get(&apps_url(f));
                    let csrf = hidden(&page.body, "csrf_token").unwrap();
                    let exchanged = s.spawn(move || {
                        barrier.wait();
                        f.exchange(code, verifier)
                    });
                    let revoked = s.spawn(move || {
                        barrier.wait();
                        session.post_form(
                            &revoke_action(id),
                            &[("csrf_token", &csrf), ("confirm", "yes")],
                        )
                    });
                    (exchanged, revoked)
                })
                .collect();
            handles
                .into_iter()
                .map(|(a, b)| (a.join().unwrap(), b.join().unwrap()))
                .collect()
        });
        let rows = apps(&f);
        for ((_, _, id), (exchanged, revoked)) in batch.iter().zip(results) {
            for (what, r) in [("code exchange", &exchanged), ("revoke", &revoked)] {
                assert!(
                    r.status < 500,
                    "{what} racing a revocation answered {}: {}\nserver log:\n{}",
                    r.status,
                    r.body,
                    server_errors(&f.server)
                );
            }
            assert_eq!(revoked.status, 303, "{}", revoked.body);
            let row = rows.iter().find(|r| r["id"] == id.as_str()).unwrap();
            assert_eq!(row["status"], "revoked");
            match exchanged.status {
                200 => {
                    let v = exchanged.json();
                    assert_dead(&f.server, v["access_token"].as_str().unwrap());
                    f.refresh(v["refresh_token"].as_str().unwrap())
                        .assert_oauth_error(400, "invalid_grant");
                }
                _ => exchanged.assert_oauth_error(400, "invalid_grant"),
            }
        }
    }
}

both_backends!(refresh_racing_revocation, code_exchange_racing_revocation,);
