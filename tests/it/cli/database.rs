//! The CLI and its database: migrations, signing-key rotation, the database URL's
//! precedence and spellings, unopenable databases and concurrent first runs.

use super::*;

/// Runs keygate with exactly the given environment (database variables).
fn run_with_env(args: &[&str], env: &[(&str, &str)], dir: Option<&std::path::Path>) -> CliOut {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("DATABASE_URL")
        .env_remove("KEYGATE_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd.output().expect("run keygate");
    CliOut::from(out)
}

fn created_ok(out: &CliOut) {
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
}

fn unopenable_url(b: Backend) -> &'static str {
    match b {
        Backend::Sqlite => "sqlite:///nonexistent-dir/x/y.db",
        Backend::Postgres => "postgres://nobody@127.0.0.1:1/x",
    }
}

fn migrate_and_keys_rotate(b: Backend) {
    let db = TestDb::new(b);
    let v = db.json(&["migrate"]);
    assert!(v.is_object());
    // The schema is there: every table can be counted.
    assert_eq!(db.count("workspaces"), 0);
    // Running again is harmless.
    assert_human(&db.cli(&["migrate"]));
    db.json(&["migrate"]);

    let before = db.count("signing_keys");
    let v = db.json(&["keys", "rotate"]);
    let kid = v["kid"].as_str().expect("kid").to_string();
    assert!(!kid.is_empty());
    assert_eq!(db.count("signing_keys"), before + 1);
    let out = db.cli(&["keys", "rotate"]);
    assert_human(&out);
    assert_eq!(db.count("signing_keys"), before + 2);
    let v = db.json(&["keys", "rotate"]);
    assert_ne!(v["kid"], kid.as_str());
}

fn database_url_precedence(b: Backend) {
    let a = TestDb::new(b);
    let flag = TestDb::new(b);
    let c = TestDb::new(b);
    // The flag beats KEYGATE_DATABASE_URL and DATABASE_URL, before or after the subcommand.
    let env = [
        ("KEYGATE_DATABASE_URL", a.url.as_str()),
        ("DATABASE_URL", c.url.as_str()),
    ];
    created_ok(&run_with_env(
        &[
            "--database-url",
            &flag.url,
            "--json",
            "workspace",
            "create",
            "--name",
            "F1",
        ],
        &env,
        None,
    ));
    created_ok(&run_with_env(
        &[
            "workspace",
            "create",
            "--name",
            "F2",
            "--database-url",
            &flag.url,
        ],
        &env,
        None,
    ));
    assert_eq!(flag.count("workspaces"), 2);
    // KEYGATE_DATABASE_URL beats DATABASE_URL.
    created_ok(&run_with_env(
        &["workspace", "create", "--name", "K"],
        &env,
        None,
    ));
    assert_eq!(a.count("workspaces"), 1);
    // DATABASE_URL alone is used.
    created_ok(&run_with_env(
        &["workspace", "create", "--name", "D"],
        &[("DATABASE_URL", c.url.as_str())],
        None,
    ));
    assert_eq!(c.count("workspaces"), 1);
    assert_eq!(a.count("workspaces"), 1);
    assert_eq!(flag.count("workspaces"), 2);
    // A flag that names a database that cannot be opened is not saved by the environment.
    let out = run_with_env(
        &[
            "--database-url",
            "sqlite:///nonexistent-dir/x/y.db",
            "workspace",
            "create",
            "--name",
            "X",
        ],
        &env,
        None,
    );
    out.assert_refused("database");
    assert_eq!(a.count("workspaces"), 1);
    assert_eq!(c.count("workspaces"), 1);
}

fn database_url_spellings(b: Backend) {
    let db = TestDb::new(b);
    match b {
        Backend::Sqlite => {
            // A plain path is a SQLite database.
            let path = db.url.trim_start_matches("sqlite://").to_string();
            assert!(!path.contains("://"));
            created_ok(&run_with_env(
                &[
                    "--database-url",
                    &path,
                    "workspace",
                    "create",
                    "--name",
                    "Plain",
                ],
                &[],
                None,
            ));
            created_ok(&run_with_env(
                &["workspace", "create", "--name", "Env"],
                &[("KEYGATE_DATABASE_URL", path.as_str())],
                None,
            ));
            assert_eq!(db.count("workspaces"), 2);
            // Nothing set: sqlite://keygate.db in the working directory.
            let dir =
                std::env::temp_dir().join(format!("keygate-cwd-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir).unwrap();
            let out = run_with_env(
                &["--json", "workspace", "create", "--name", "Default"],
                &[],
                Some(&dir),
            );
            created_ok(&out);
            assert!(
                dir.join("keygate.db").exists(),
                "no keygate.db in the working directory"
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
        Backend::Postgres => {
            // postgresql:// is PostgreSQL too.
            let url = db.url.replacen("postgres://", "postgresql://", 1);
            created_ok(&run_with_env(
                &[
                    "--database-url",
                    &url,
                    "workspace",
                    "create",
                    "--name",
                    "Pg",
                ],
                &[],
                None,
            ));
            assert_eq!(db.count("workspaces"), 1);
        }
    }
}

/// An admin command on a database that cannot be opened: refused like any bad
/// input, with one line on stderr (the contract: stderr holds only the error line).
fn admin_command_on_unopenable_database(b: Backend) {
    let url = unopenable_url(b);
    for args in [
        vec!["--database-url", url, "workspace", "create", "--name", "X"],
        vec!["--json", "--database-url", url, "migrate"],
        vec!["--database-url", url, "keys", "rotate"],
    ] {
        let out = run_with_env(&args, &[], None);
        eprintln!("keygate {args:?} -> {out:?}");
        out.assert_refused("database");
    }
    let out = run_with_env(
        &["--database-url", "mysql://x@127.0.0.1/x", "migrate"],
        &[],
        None,
    );
    out.assert_refused("mysql");
}

/// `serve` on a database it cannot open exits non-zero, saying why, and never
/// starts listening.
fn serve_refuses_unopenable_database(b: Backend) {
    let port = free_port();
    let mut child = Command::new(BIN)
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .env("KEYGATE_DATABASE_URL", unopenable_url(b))
        .env("KEYGATE_BIND", format!("127.0.0.1:{port}"))
        .env("KEYGATE_ISSUER", format!("http://127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start keygate");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("keygate serve kept running on a database it cannot open");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = reader.join().unwrap();
    assert!(!status.success(), "exit status {status:?}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something listens on the port"
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr:?}");
    assert!(errors[0].contains("cannot open the database"), "{stderr:?}");
}

/// Commands started together on a fresh database (nodes of one deployment
/// starting at once) each migrate it first: one applies the migrations, the
/// others wait or find them applied, and every command succeeds.
fn first_runs_at_once_migrate_once(b: Backend) {
    let db = TestDb::new(b);
    let outs: Vec<CliOut> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let db = &db;
                s.spawn(move || {
                    db.cli(&[
                        "--json",
                        "workspace",
                        "create",
                        "--name",
                        &format!("Together {i}"),
                    ])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outs {
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    assert_eq!(db.count("workspaces"), 6);
}

both_backends!(
    migrate_and_keys_rotate,
    database_url_precedence,
    database_url_spellings,
    admin_command_on_unopenable_database,
    serve_refuses_unopenable_database,
    first_runs_at_once_migrate_once,
);
