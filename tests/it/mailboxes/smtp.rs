//! SMTP AUTH with mailbox auth keys: through Postfix, across nodes, failure limits,
//! the database away, and the SASL listener's bind.

use super::*;

/// A server whose SASL listener is on a port of its own; returns it with the port.
fn fixture_with_sasl(b: Backend, extra: &[(&str, &str)]) -> (Fixture, u16) {
    let port = smtp_free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut env = vec![("KEYGATE_SASL_BIND", bind.as_str())];
    env.extend_from_slice(extra);
    let f = Fixture::with_server(Server::start_with(TestDb::new(b), &env));
    f.db().verified_domain(&f.workspace_id, "example.test");
    (f, port)
}

fn sasl_addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// One `AUTH PLAIN` straight to the SASL listener, as Postfix would send it, with
/// the client address `rip`. Returns the answer line and how long it took.
pub(crate) fn sasl_auth(port: u16, rip: &str, user: &str, key: &str) -> (String, Duration) {
    let s = TcpStream::connect(sasl_addr(port)).expect("connect to the SASL listener");
    s.set_read_timeout(Some(Duration::from_secs(15))).ok();
    let mut reader = BufReader::new(s.try_clone().expect("clone"));
    let mut writer = s;
    writer
        .write_all(b"VERSION\t1\t0\nCPID\t4242\n")
        .expect("handshake");
    let mut line = String::new();
    loop {
        line.clear();
        assert!(reader.read_line(&mut line).expect("read") > 0, "closed");
        if line.trim_end() == "DONE" {
            break;
        }
    }
    let resp = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{key}"));
    let started = Instant::now();
    writer
        .write_all(
            format!(
                "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip={rip}\tresp={resp}\n"
            )
            .as_bytes(),
        )
        .expect("auth");
    line.clear();
    // A closed connection (no answer) reads as an empty line.
    let _ = reader.read_line(&mut line);
    (line.trim_end().to_string(), started.elapsed())
}

fn s_key(v: &Value) -> String {
    s(v, "key")
}

// ---------------------------------------------------------------- SMTP

fn smtp_auth_through_postfix(b: Backend) {
    let (f, port) = fixture_with_sasl(b, &[]);
    let db = f.db();
    let ws = &f.workspace_id;
    let postfix = Postfix::start(sasl_addr(port));
    let smtp = postfix.smtp;
    let log = || postfix.maillog();
    let mb = create_mailbox(db, ws, "Sender@Example.test");
    let (k1_id, k1) = create_auth_key(db, &mb, "CRM");
    let (k2_id, k2) = create_auth_key(db, &mb, "Sequencer");
    let other = create_mailbox(db, ws, "other@example.test");
    let (_, other_key) = create_auth_key(db, &other, "CRM");
    let auth = |mech: Auth, user: &str, key: &str, from: &str| submit(smtp, mech, user, key, from);
    // The AUTH answer to a PLAIN login as the mailbox, sending as itself.
    let as_sender = |key: &str| {
        auth(
            Auth::Plain,
            "Sender@Example.test",
            key,
            "Sender@Example.test",
        )
        .code("AUTH")
    };

    // The right key: 235 and the message is accepted, whatever the username's case.
    let s = auth(
        Auth::Plain,
        "Sender@Example.test",
        &k1,
        "Sender@Example.test",
    );
    assert_eq!(s.code("AUTH"), Some(235), "{}\n{}", s.transcript, log());
    assert_eq!(s.code("DATA"), Some(250), "{}\n{}", s.transcript, log());
    let s = auth(
        Auth::Login,
        "sender@example.TEST",
        &k2,
        "sender@example.test",
    );
    assert_eq!(s.code("AUTH"), Some(235), "{}\n{}", s.transcript, log());
    assert_eq!(s.code("DATA"), Some(250), "{}\n{}", s.transcript, log());

    // Wrong keys: 535.
    let mut typo = k1.clone().into_bytes();
    typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    for (user, key) in [
        ("Sender@Example.test", typo.as_str()),
        ("Sender@Example.test", "not a key"),
        ("Sender@Example.test", other_key.as_str()),
        ("nobody@example.test", k1.as_str()),
    ] {
        let s = auth(Auth::Plain, user, key, user);
        assert_eq!(
            s.code("AUTH"),
            Some(535),
            "{user} {key}\n{}\n{}",
            s.transcript,
            log()
        );
    }

    // After a good login, MAIL FROM another address is refused.
    let s = auth(
        Auth::Plain,
        "Sender@Example.test",
        &k1,
        "other@example.test",
    );
    assert_eq!(s.code("AUTH"), Some(235), "{}", s.transcript);
    assert_eq!(s.code("MAIL"), Some(553), "{}\n{}", s.transcript, log());
    assert_eq!(s.code("DATA"), None);

    // Disabled: refused at the next authentication; the mailbox's other key works.
    db.json(&["authkey", "disable", &k1_id]);
    assert_eq!(as_sender(&k1), Some(535));
    assert_eq!(as_sender(&k2), Some(235));
    db.json(&["authkey", "enable", &k1_id]);
    assert_eq!(as_sender(&k1), Some(235));

    // Rotated away: the old secret fails, the new one works.
    let rotated = s_key(&db.json(&["authkey", "rotate", &k1_id]));
    assert_eq!(as_sender(&k1), Some(535));
    assert_eq!(as_sender(&rotated), Some(235));

    // Deleted: refused.
    db.json(&["authkey", "delete", &k1_id]);
    assert_eq!(as_sender(&rotated), Some(535));

    // Usage is counted (batched, written within about a second).
    assert!(
        eventually(Duration::from_secs(5), || {
            let k = auth_key(db, &mb, &k2_id);
            k["usage_count"].as_i64() == Some(2) && k["last_used_at"].is_string()
        }),
        "{:?}",
        auth_key(db, &mb, &k2_id)
    );

    // The mailbox deleted: its remaining key fails too.
    db.json(&["mailbox", "delete", &mb]);
    assert_eq!(as_sender(&k2), Some(535));
    assert_eq!(
        auth(
            Auth::Plain,
            "other@example.test",
            &other_key,
            "other@example.test"
        )
        .code("AUTH"),
        Some(235)
    );
}

/// A change made on one node is refused at the next authentication on another.
fn smtp_changes_reach_a_second_node(b: Backend) {
    let (f, port_a) = fixture_with_sasl(b, &[]);
    let db = f.db();
    let port_b = smtp_free_port();
    let bind_b = format!("127.0.0.1:{port_b}");
    let _node_b = Server::spawn(
        TestDb::reuse(db),
        free_port(),
        &[("KEYGATE_SASL_BIND", &bind_b)],
    );
    let via_a = Postfix::start(sasl_addr(port_a));
    let via_b = Postfix::start(sasl_addr(port_b));
    let mb = create_mailbox(db, &f.workspace_id, "team@example.test");
    let (kid, key) = create_auth_key(db, &mb, "CRM");
    let code = |p: &Postfix, key: &str| {
        submit(
            p.smtp,
            Auth::Plain,
            "team@example.test",
            key,
            "team@example.test",
        )
        .code("AUTH")
    };
    // Both nodes have verified (and cached) the key.
    assert_eq!(code(&via_a, &key), Some(235), "{}", via_a.maillog());
    assert_eq!(code(&via_b, &key), Some(235), "{}", via_b.maillog());

    // Disabled from the CLI (which waits for the nodes' revocation poll).
    db.json(&["authkey", "disable", &kid]);
    assert_eq!(code(&via_a, &key), Some(535));
    assert_eq!(code(&via_b, &key), Some(535));
    db.json(&["authkey", "enable", &kid]);
    assert_eq!(code(&via_b, &key), Some(235));

    // Disabled in node A's settings page: A at once, B within its 100 ms poll.
    let mut owner = f.owner();
    let token = csrf(&mut owner, &f.workspace_id);
    let r = owner.post_form(
        &format!("/settings/mailbox-auth-keys/{kid}/disable"),
        &[("csrf_token", &token)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(code(&via_a, &key), Some(535));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(code(&via_b, &key), Some(535));
}

/// Failures are limited per (mailbox, client address) and only failures: the
/// right key passes at once however many wrong ones came before it.
fn smtp_failures_are_limited_but_never_the_right_key(b: Backend) {
    let (f, port) = fixture_with_sasl(
        b,
        &[
            ("KEYGATE_RATE_LIMITS", "on"),
            ("KEYGATE_SMTP_FAILURE_LIMIT", "3"),
        ],
    );
    let db = f.db();
    let mb = create_mailbox(db, &f.workspace_id, "limited@example.test");
    let (_, key) = create_auth_key(db, &mb, "CRM");
    let user = "limited@example.test";
    let (ok, _) = sasl_auth(port, "192.0.2.1", user, &key);
    assert!(ok.starts_with("OK\t1\tuser=limited@example.test"), "{ok}");
    for _ in 0..3 {
        let (a, took) = sasl_auth(port, "192.0.2.1", user, "wrong");
        assert!(a.starts_with("FAIL\t1"), "{a}");
        assert!(took < Duration::from_millis(800), "{took:?}");
    }
    let (a, took) = sasl_auth(port, "192.0.2.1", user, "wrong");
    assert!(a.starts_with("FAIL\t1"), "{a}");
    assert!(
        took >= Duration::from_millis(900),
        "over the limit, failures wait: {took:?}"
    );
    let (a, took) = sasl_auth(port, "192.0.2.1", user, &key);
    assert!(a.starts_with("OK\t1"), "{a}");
    assert!(
        took < Duration::from_millis(800),
        "the right key is never slowed: {took:?}"
    );
    let (a, took) = sasl_auth(port, "192.0.2.2", user, "wrong");
    assert!(
        a.starts_with("FAIL\t1") && took < Duration::from_millis(800),
        "another address: {a} {took:?}"
    );
    let (a, took) = sasl_auth(port, "192.0.2.1", "else@example.test", "wrong");
    assert!(
        a.starts_with("FAIL\t1") && took < Duration::from_millis(800),
        "another mailbox: {a} {took:?}"
    );
}

/// A key that cannot be checked because the database is away is not called
/// wrong: the listener closes the connection unanswered (Postfix answers `454`,
/// try again), and the same key works once the database is back.
fn smtp_database_away_is_try_again_not_a_wrong_key(b: Backend) {
    if b == Backend::Sqlite {
        // An embedded database cannot go away under a running process the way a
        // database server can: the outage is exercised on PostgreSQL only.
        return;
    }
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let (f, port) = fixture_with_sasl(b, &[]);
    let db = f.db();
    let mb = create_mailbox(db, &f.workspace_id, "away@example.test");
    let (_, key) = create_auth_key(db, &mb, "CRM");
    let name = url::Url::parse(&db.url).expect("url").path()[1..].to_string();
    let mut admin = diesel::PgConnection::establish(&postgres_admin_url().expect("admin url"))
        .expect("connect as admin");
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid();"
        ))
        .expect("take the database away");
    let (answer, _) = sasl_auth(port, "192.0.2.9", "away@example.test", &key);
    assert_eq!(answer, "", "closed without an answer, not FAIL");
    admin
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .expect("bring the database back");
    assert!(
        eventually(Duration::from_secs(15), || {
            sasl_auth(port, "192.0.2.9", "away@example.test", &key)
                .0
                .starts_with("OK\t1\tuser=away@example.test")
        }),
        "{}",
        f.server.logs()
    );
}

/// `KEYGATE_SASL_BIND` is checked before serving (a bad value fails at once),
/// a unix socket exists while keygate serves and is gone once it stopped.
#[test]
fn sasl_bind_fails_fast_and_stops_with_the_server() {
    let db = TestDb::new(Backend::Sqlite);
    let started = Instant::now();
    let out = std::process::Command::new(BIN)
        .arg("serve")
        .env("KEYGATE_DATABASE_URL", &db.url)
        .env("KEYGATE_BIND", format!("127.0.0.1:{}", free_port()))
        .env("KEYGATE_SASL_BIND", "smtp.example.com:12345")
        .output()
        .expect("run keygate");
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("KEYGATE_SASL_BIND"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));

    let dir = std::env::temp_dir().join(format!("keygate-sasl-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let socket = dir.join("auth");
    let bind = format!("unix:{}", socket.display());
    let mut server = Server::start_with(TestDb::reuse(&db), &[("KEYGATE_SASL_BIND", &bind)]);
    assert!(
        eventually(Duration::from_secs(5), || socket.exists()),
        "{}",
        server.logs()
    );
    let mut conn = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
    conn.write_all(b"VERSION\t1\t0\nCPID\t1\n").expect("write");
    let mut first = String::new();
    BufReader::new(conn).read_line(&mut first).expect("read");
    assert!(first.starts_with("VERSION\t1\t"), "{first}");
    assert!(server.terminate().success());
    assert!(!socket.exists(), "the socket is removed on shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}

both_backends!(
    smtp_auth_through_postfix,
    smtp_changes_reach_a_second_node,
    smtp_failures_are_limited_but_never_the_right_key,
    smtp_database_away_is_try_again_not_a_wrong_key,
);
