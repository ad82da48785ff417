//! Who may stand behind an authorization: an approval racing the approver's
//! removal never leaves a live authorization behind, and a grant refuses (and
//! revokes) an authorization whose approver no longer manages the workspace.

use crate::support::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;

const SCOPE: &str = "workspace:read";

/// Active authorizations a person approved, straight from the database.
fn active_approved_by(db: &TestDb, user_id: &str) -> i64 {
    db.text(&format!(
        "SELECT CAST(COUNT(*) AS TEXT) AS v FROM authorizations \
         WHERE user_id = '{user_id}' AND revoked_at IS NULL"
    ))
    .and_then(|n| n.parse().ok())
    .expect("a count")
}

fn member_remove(f: &Fixture, user_id: &str) {
    f.db().json(&[
        "member",
        "remove",
        "--workspace",
        &f.workspace_id,
        "--user",
        user_id,
    ]);
}

/// A consent page ready to be answered: (consent_id, csrf_token).
fn held_consent(f: &Fixture, http: &mut Http) -> (String, String) {
    let (_, challenge) = pkce();
    let page = http.get(&format!(
        "/oauth/authorize?{}",
        f.authorize_query(&f.client_id, SCOPE, &challenge)
    ));
    assert_eq!(page.status, 200, "consent page: {}", page.body);
    (
        hidden(&page.body, "consent_id").expect("consent_id"),
        hidden(&page.body, "csrf_token").expect("csrf_token"),
    )
}

/// Many approvals by an admin, in flight while the admin is removed: each
/// either lands before the removal (which then revokes it) or is refused.
/// Without the membership row lock, PostgreSQL lets an approval that read the
/// role before the removal commit its authorization after the removal looked.
fn approvals_racing_member_removal(b: Backend) {
    const THREADS: usize = 8;
    // Enough that approvals are still coming when the removal has finished.
    const PER_THREAD: usize = 24;
    let f = Fixture::new(b);
    let (admin_id, admin_email) = f.add_user("admin");
    let (mut won, mut refused) = (0, 0);
    for round in 0..2 {
        if round > 0 {
            f.db().json(&[
                "member",
                "add",
                "--workspace",
                &f.workspace_id,
                "--user",
                &admin_id,
                "--role",
                "admin",
            ]);
        }
        // Sessions and consent pages ready before the race.
        let mut sessions: Vec<(Http, Vec<(String, String)>)> = (0..THREADS)
            .map(|_| {
                let mut http = f.signed_in(&admin_email);
                let held = (0..PER_THREAD)
                    .map(|_| held_consent(&f, &mut http))
                    .collect();
                (http, held)
            })
            .collect();
        let barrier = Barrier::new(THREADS + 1);
        let removed = AtomicBool::new(false);
        let statuses: Vec<u16> = std::thread::scope(|s| {
            let approvals: Vec<_> = sessions
                .iter_mut()
                .map(|(http, held)| {
                    let (barrier, removed, f) = (&barrier, &removed, &f);
                    s.spawn(move || {
                        barrier.wait();
                        let mut statuses = Vec::new();
                        for (consent_id, csrf) in held.iter() {
                            // One more approval once the removal has returned.
                            let last = removed.load(Ordering::SeqCst);
                            let r = http.post_form(
                                "/oauth/authorize",
                                &[
                                    ("consent_id", consent_id),
                                    ("csrf_token", csrf),
                                    ("workspace_id", &f.workspace_id),
                                    ("decision", "approve"),
                                ],
                            );
                            statuses.push(r.status);
                            if last {
                                break;
                            }
                        }
                        statuses
                    })
                })
                .collect();
            barrier.wait();
            member_remove(&f, &admin_id);
            removed.store(true, Ordering::SeqCst);
            approvals
                .into_iter()
                .flat_map(|h| h.join().expect("approval thread"))
                .collect()
        });
        for status in statuses {
            match status {
                303 => won += 1,
                403 => refused += 1,
                other => panic!(
                    "an approval racing a removal answered {other}\n{}",
                    f.server.logs()
                ),
            }
        }
        assert_eq!(
            active_approved_by(f.db(), &admin_id),
            0,
            "round {round}: a removed admin's authorization is still active"
        );
    }
    eprintln!("approvals before the removal: {won}, refused after it: {refused}");
    assert!(
        won > 0 && refused > 0,
        "the approvals did not straddle the removal: the race was not run"
    );
}

fn tokens_approved_by(f: &Fixture, email: &str) -> (String, String) {
    crate::support::tokens_approved_by(f, email, SCOPE)
}

/// A grant rests on the approver still managing the workspace, not only on
/// removals having revoked what they approved: a role changed outside keygate
/// (here, straight in the database) ends the authorization at its next grant.
fn grants_refuse_an_approver_who_no_longer_manages(b: Backend) {
    let f = Fixture::new(b);
    let db = f.db();
    let (admin_id, admin_email) = f.add_user("admin");
    let (access, refresh) = tokens_approved_by(&f, &admin_email);
    let (verifier, challenge) = pkce();
    let mut admin = f.signed_in(&admin_email);
    let params = f.approve(&mut admin, &f.client_id, SCOPE, &challenge);
    let code = param(&params, "code").expect("code").to_string();
    let (_, owners_refresh) = f.tokens(SCOPE);
    assert_eq!(active_approved_by(db, &admin_id), 2);

    db.execute(&format!(
        "UPDATE memberships SET role = 'member' WHERE user_id = '{admin_id}'"
    ));
    let r = f.refresh(&refresh);
    r.assert_oauth_error(400, "invalid_grant");
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("no longer an owner or admin"),
        "{}",
        r.body
    );
    // The authorization is revoked, with its access token, and logged.
    assert_eq!(
        active_approved_by(db, &admin_id),
        1,
        "only the refreshed one"
    );
    f.server
        .client()
        .bearer_get("/v1/workspace", &access)
        .assert_v1_error(401, "authentication_error", "invalid_api_key");
    assert_eq!(f.introspect(&access)["active"], false);
    f.refresh(&refresh).assert_oauth_error(400, "invalid_grant");
    assert_eq!(
        db.text(&format!(
            "SELECT actor AS v FROM audit_events WHERE action = 'app.revoked_approver_removed' \
             AND workspace_id = '{}'",
            f.workspace_id
        ))
        .as_deref(),
        Some(f.client_id.as_str())
    );

    // An unredeemed code of theirs is refused the same way.
    f.exchange(&code, &verifier)
        .assert_oauth_error(400, "invalid_grant");
    assert_eq!(active_approved_by(db, &admin_id), 0);

    // The owner's authorization is untouched.
    let r = f.refresh(&owners_refresh);
    assert_eq!(r.status, 200, "{}", r.body);
}

both_backends!(
    approvals_racing_member_removal,
    grants_refuse_an_approver_who_no_longer_manages,
);
