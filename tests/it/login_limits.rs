//! The login's abuse limits hold against an attacker who arms them on
//! purpose, spreads over an IPv6 /64 or over many addresses, and never tell a
//! right guess from a wrong one (SECURITY.md, round three, items 1 and 2).

use crate::support::*;
use std::time::{Duration, Instant};

/// A server behind a trusted proxy (so each test picks its client address
/// with `X-Forwarded-For`) with a login limit of 3 per (account, address),
/// so 12 per address.
fn limited_server(b: Backend) -> Fixture {
    Fixture::with_server(Server::start_with(
        TestDb::new(b),
        &[
            ("KEYGATE_RATE_LIMITS", "on"),
            ("KEYGATE_LOGIN_FAILURE_LIMIT", "3"),
            ("KEYGATE_TRUSTED_PROXIES", "127.0.0.1/32"),
        ],
    ))
}

/// Signs in through the login form as a client at `address`.
fn login_at(http: &mut Http, address: &str, email: &str, password: &str) -> Resp {
    http.login_with(email, password, &[("X-Forwarded-For", address)])
}

/// The high defect: an address over its limit used to have its wrong
/// passwords counted by neither limiter, so after arming the address block
/// with made-up accounts it could guess one account's password without
/// limit, and the right one signed in. Now every attempt from a blocked
/// address is answered 429 without a password check, the right password
/// included, and keeps the block armed.
fn an_armed_address_block_is_no_way_around_the_pair_limit(b: Backend) {
    let f = limited_server(b);
    let attacker = "203.0.113.50";
    let mut evil = f.server.client();
    // Arm the address limit (12) with made-up accounts, 2 failures each so
    // that no (account, address) pair is itself over its limit of 3.
    for i in 0..7 {
        for _ in 0..2 {
            let _ = login_at(&mut evil, attacker, &format!("made-up{i}@x.test"), "x");
        }
    }
    // Guessing the owner's password from it now: every guess is 429.
    for i in 0..10 {
        let r = login_at(&mut evil, attacker, &f.owner_email, &format!("guess {i}"));
        assert_eq!(r.status, 429, "guess {i}: {}", r.body);
        assert!(r.header("retry-after").is_some());
    }
    // The right password is answered exactly as a wrong one: 429, no session.
    let right = login_at(&mut evil, attacker, &f.owner_email, PASSWORD);
    assert_eq!(right.status, 429, "{}", right.body);
    let settings = evil.get("/settings/api-keys");
    assert_eq!(settings.status, 302, "no session was started");
    assert!(
        settings.location().contains("/login"),
        "{}",
        settings.location()
    );
    // The owner, elsewhere, signs in.
    let mut owner = f.server.client();
    let r = login_at(&mut owner, "198.51.100.20", &f.owner_email, PASSWORD);
    assert_eq!(r.status, 303, "{}", r.body);
}

/// A blocked address's answer is the same for every attempt: right or
/// wrong password, known or unknown account, so a sprayer learns nothing.
fn a_blocked_address_answers_every_attempt_alike(b: Backend) {
    let f = limited_server(b);
    let (_, member) = f.add_user("member");
    let sprayer = "192.0.2.77";
    let mut http = f.server.client();
    for i in 0..13 {
        let _ = login_at(
            &mut http,
            sprayer,
            &format!("victim{i}@x.test"),
            "Winter2026!",
        );
    }
    let answers: Vec<Resp> = [
        (member.as_str(), PASSWORD),
        (member.as_str(), "wrong"),
        ("nobody@x.test", "Winter2026!"),
        (f.owner_email.as_str(), PASSWORD),
    ]
    .iter()
    .map(|(email, password)| login_at(&mut http, sprayer, email, password))
    .collect();
    for r in &answers {
        assert_eq!(r.status, 429, "{}", r.body);
        assert!(
            r.body.contains("Too many failed sign-in attempts"),
            "{}",
            r.body
        );
        assert!(
            !r.body.contains("Incorrect email or password"),
            "{}",
            r.body
        );
        assert!(r.header("retry-after").is_some());
        assert!(r.header("location").is_none());
    }
}

/// Every limit counts an IPv6 /64 as one address: one host is routinely
/// given a whole /64.
fn ipv6_addresses_count_per_64(b: Backend) {
    let f = limited_server(b);
    let mut http = f.server.client();
    let statuses: Vec<u16> = (1..=5)
        .map(|i| {
            let address = format!("2001:db8:7:9::{i:x}");
            login_at(&mut http, &address, &f.owner_email, "guess").status
        })
        .collect();
    // Three failures (the pair's limit) from three addresses of one /64 lock
    // the pair for the whole /64…
    assert_eq!(&statuses[..2], &[401, 401], "{statuses:?}");
    assert_eq!(statuses[3..], [429, 429], "{statuses:?}");
    let r = login_at(&mut http, "2001:db8:7:9:ffff::1", &f.owner_email, PASSWORD);
    assert_eq!(r.status, 429, "another address of the /64: {}", r.body);
    // …and not the neighbouring /64, where the owner signs in.
    let mut owner = f.server.client();
    let r = login_at(&mut owner, "2001:db8:7:a::1", &f.owner_email, PASSWORD);
    assert_eq!(r.status, 303, "{}", r.body);
}

/// Failures for one account from many addresses slow every further attempt
/// for it (whatever the address), and never lock the owner out.
fn an_accounts_failures_delay_it_from_every_address_without_locking_out(b: Backend) {
    let f = limited_server(b);
    let mut http = f.server.client();
    // Eight addresses, one wrong password each: no address limit is reached.
    for i in 0..8 {
        let r = login_at(&mut http, &format!("198.18.{i}.1"), &f.owner_email, "guess");
        assert_eq!(r.status, 401, "{}", r.body);
    }
    // The next attempt, from an address never seen, waits before its check
    // (250 ms doubled per failure past the fifth: 2 s here, at most 3 s).
    let started = Instant::now();
    let r = login_at(&mut http, "198.18.99.1", &f.owner_email, "guess");
    assert_eq!(r.status, 401, "{}", r.body);
    let delayed = started.elapsed();
    assert!(
        delayed >= Duration::from_millis(1900),
        "no delay: {delayed:?}"
    );
    // Another account is not delayed by it, and the owner still signs in.
    let (_, member) = f.add_user("member");
    let started = Instant::now();
    let r = login_at(&mut http, "198.18.100.1", &member, PASSWORD);
    assert_eq!(r.status, 303, "{}", r.body);
    let undelayed = started.elapsed();
    let r = login_at(
        &mut f.server.client(),
        "198.18.101.1",
        &f.owner_email,
        PASSWORD,
    );
    assert_eq!(r.status, 303, "the owner is never locked out: {}", r.body);
    // The same work without the 2 s delay (a password check either way).
    assert!(
        undelayed + Duration::from_millis(1000) < delayed,
        "another account was delayed: {undelayed:?} against {delayed:?}"
    );
}

/// Oversized identifiers are refused before they are looked up or counted.
fn oversized_login_identifiers_are_refused_uncounted(b: Backend) {
    let f = limited_server(b);
    let mut http = f.server.client();
    let huge = format!("{}@x.test", "a".repeat(1000));
    for i in 0..20 {
        let r = login_at(&mut http, "192.0.2.200", &huge, "x");
        assert_eq!(r.status, 401, "attempt {i}");
    }
    // Not counted: the address may still sign in.
    let r = login_at(&mut http, "192.0.2.200", &f.owner_email, PASSWORD);
    assert_eq!(r.status, 303, "{}", r.body);
}

both_backends!(
    an_armed_address_block_is_no_way_around_the_pair_limit,
    a_blocked_address_answers_every_attempt_alike,
    ipv6_addresses_count_per_64,
    an_accounts_failures_delay_it_from_every_address_without_locking_out,
    oversized_login_identifiers_are_refused_uncounted,
);
