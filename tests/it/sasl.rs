//! The Dovecot authentication protocol listener (`keygate::smtp`),
//! driven line by line over real sockets with a stub authenticator that knows
//! one address and one key, and then behind a real Postfix.

use crate::postfix::{submit, Auth, Postfix};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use keygate::smtp::{
    serve, Attempt, Authenticator, Bind, BoxFuture, Limits, Listener, Mechanism, Verdict,
};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ADDRESS: &str = "sender@example.test";
const KEY: &str = "kgm_test_0123456789abcdefghijklmnopqrstuv";
/// An address the stub cannot check right now (its store is "away").
const UNAVAILABLE: &str = "down@example.test";
const FAIL: &str = "reason=Authentication failed";

/// Knows one mailbox and its key; records every attempt it was asked about.
#[derive(Default)]
struct Stub {
    attempts: Mutex<Vec<Attempt>>,
}

impl Authenticator for Stub {
    fn authenticate(&self, attempt: Attempt) -> BoxFuture<Verdict> {
        let verdict = if attempt.username.eq_ignore_ascii_case(ADDRESS) && attempt.password == KEY {
            Verdict::Ok {
                user: ADDRESS.to_string(),
            }
        } else if attempt.username == UNAVAILABLE {
            Verdict::Unavailable
        } else {
            Verdict::Fail
        };
        self.attempts.lock().expect("attempts").push(attempt);
        Box::pin(async move { verdict })
    }
}

/// The listener on a thread of its own (a current-thread runtime, as under
/// actix), stopped on drop.
struct Server {
    bind: Bind,
    stub: Arc<Stub>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(bind: Bind, limits: Limits) -> Server {
        let stub = Arc::new(Stub::default());
        let auth: Arc<dyn Authenticator> = stub.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = Listener::bind(&bind).await.expect("bind");
                ready_tx
                    .send(listener.local_addr().expect("local addr"))
                    .expect("ready");
                tokio::select! {
                    () = serve(listener, auth, limits) => {}
                    _ = stopped => {}
                }
            });
        });
        let bind = ready_rx.recv().expect("listener bound");
        Server {
            bind,
            stub,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn tcp(limits: Limits) -> Server {
        Server::start(Bind::parse("127.0.0.1:0").expect("bind"), limits)
    }

    fn addr(&self) -> SocketAddr {
        match &self.bind {
            Bind::Tcp(addr) => *addr,
            Bind::Unix(_) => panic!("not a TCP listener"),
        }
    }

    /// A client that has done Postfix's handshake.
    fn client(&self) -> Client {
        let mut c = self.raw();
        c.handshake();
        c
    }

    /// A client that has sent nothing.
    fn raw(&self) -> Client {
        match &self.bind {
            Bind::Tcp(addr) => {
                let s = TcpStream::connect(addr).expect("connect");
                s.set_read_timeout(Some(Duration::from_secs(10))).ok();
                Client {
                    reader: Box::new(BufReader::new(s.try_clone().expect("clone"))),
                    writer: Box::new(s),
                }
            }
            Bind::Unix(path) => {
                let s = UnixStream::connect(path).expect("connect");
                s.set_read_timeout(Some(Duration::from_secs(10))).ok();
                Client {
                    reader: Box::new(BufReader::new(s.try_clone().expect("clone"))),
                    writer: Box::new(s),
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Client {
    reader: Box<dyn BufRead + Send>,
    writer: Box<dyn Write + Send>,
}

impl Client {
    /// What Postfix sends on connect; returns the server's handshake lines.
    fn handshake(&mut self) -> Vec<String> {
        self.send(&format!("VERSION\t1\t0\nCPID\t{}", std::process::id()));
        self.greeting()
    }

    /// The server's handshake, which it sends without waiting for ours.
    fn greeting(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.recv().expect("handshake line");
            let done = line == "DONE";
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    fn send(&mut self, lines: &str) {
        self.writer
            .write_all(format!("{lines}\n").as_bytes())
            .expect("send");
    }

    /// The next line, or None once the server closed the connection.
    fn recv(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches('\n').to_string()),
        }
    }

    /// Reads until the server closes; panics if it sends another line.
    fn expect_closed(&mut self) {
        if let Some(line) = self.recv() {
            panic!("expected the connection closed, got {line:?}");
        }
    }

    fn auth_plain(&mut self, id: u32, user: &str, password: &str) -> String {
        let resp = B64.encode(format!("\0{user}\0{password}"));
        self.send(&format!(
            "AUTH\t{id}\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=192.0.2.7\tresp={resp}"
        ));
        self.recv().expect("answer")
    }
}

fn ok(id: u32) -> String {
    format!("OK\t{id}\tuser={ADDRESS}")
}

fn fail(id: u32) -> String {
    format!("FAIL\t{id}\t{FAIL}")
}

fn b64(s: &str) -> String {
    B64.encode(s)
}

#[test]
fn sasl_handshake_is_what_postfix_reads() {
    let server = Server::tcp(Limits::default());
    let lines = server.raw().handshake();
    assert_eq!(lines[0], "VERSION\t1\t2");
    assert_eq!(lines[1], "MECH\tPLAIN\tplaintext");
    assert_eq!(lines[2], "MECH\tLOGIN\tplaintext");
    assert!(lines[3].starts_with("SPID\t"), "{lines:?}");
    assert!(lines[4].starts_with("CUID\t"), "{lines:?}");
    let cookie = lines[5].strip_prefix("COOKIE\t").expect("COOKIE");
    assert!(
        cookie.len() == 32 && cookie.bytes().all(|b| b.is_ascii_hexdigit()),
        "{cookie:?}"
    );
    assert_eq!(lines[6], "DONE");
    assert_eq!(lines.len(), 7);
}

#[test]
fn sasl_plain_with_initial_response() {
    let server = Server::tcp(Limits::default());
    let mut c = server.client();
    assert_eq!(c.auth_plain(1, ADDRESS, KEY), ok(1));
    // Addresses are the authenticator's to compare (the stub ignores case).
    assert_eq!(c.auth_plain(2, "Sender@Example.TEST", KEY), ok(2));
    let attempts = server.stub.attempts.lock().expect("attempts").clone();
    assert_eq!(attempts[0].username, ADDRESS);
    assert_eq!(attempts[0].password, KEY);
    assert_eq!(
        attempts[0].remote_ip,
        Some("192.0.2.7".parse().expect("ip"))
    );
    assert_eq!(attempts[0].mechanism, Mechanism::Plain);
    assert!(
        !format!("{:?}", attempts[0]).contains(KEY),
        "Debug shows the key"
    );
}

#[test]
fn sasl_plain_authzid_must_be_empty_or_the_user() {
    let server = Server::tcp(Limits::default());
    let mut c = server.client();
    let same = b64(&format!("{ADDRESS}\0{ADDRESS}\0{KEY}"));
    c.send(&format!("AUTH\t1\tPLAIN\tservice=smtp\tresp={same}"));
    assert_eq!(c.recv().as_deref(), Some(ok(1).as_str()));
    let other = b64(&format!("boss@example.test\0{ADDRESS}\0{KEY}"));
    c.send(&format!("AUTH\t2\tPLAIN\tservice=smtp\tresp={other}"));
    assert_eq!(c.recv(), Some(fail(2)));
}

#[test]
fn sasl_plain_without_initial_response_and_lowercase_mechanism() {
    let server = Server::tcp(Limits::default());
    let mut c = server.client();
    // Postfix forwards the SMTP client's spelling of the mechanism.
    c.send("AUTH\t7\tplain\tservice=smtp\tnologin\tlip=127.0.0.1\trip=192.0.2.7");
    assert_eq!(c.recv().as_deref(), Some("CONT\t7\t"));
    c.send(&format!("CONT\t7\t{}", b64(&format!("\0{ADDRESS}\0{KEY}"))));
    assert_eq!(c.recv(), Some(ok(7)));
}

#[test]
fn sasl_login_asks_username_then_password() {
    let server = Server::tcp(Limits::default());
    let mut c = server.client();
    c.send("AUTH\t3\tLOGIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=2001:db8::5");
    assert_eq!(c.recv(), Some(format!("CONT\t3\t{}", b64("Username:"))));
    c.send(&format!("CONT\t3\t{}", b64(ADDRESS)));
    assert_eq!(c.recv(), Some(format!("CONT\t3\t{}", b64("Password:"))));
    c.send(&format!("CONT\t3\t{}", b64(KEY)));
    assert_eq!(c.recv(), Some(ok(3)));

    // The username as initial response (SMTP `AUTH LOGIN <base64>`).
    c.send(&format!(
        "AUTH\t4\tLOGIN\tservice=smtp\tresp={}",
        b64(ADDRESS)
    ));
    assert_eq!(c.recv(), Some(format!("CONT\t4\t{}", b64("Password:"))));
    c.send(&format!("CONT\t4\t{}", b64("wrong")));
    assert_eq!(c.recv(), Some(fail(4)));

    let attempts = server.stub.attempts.lock().expect("attempts").clone();
    assert_eq!(attempts[0].mechanism, Mechanism::Login);
    assert_eq!(
        attempts[0].remote_ip,
        Some("2001:db8::5".parse().expect("ip"))
    );
}

#[test]
fn sasl_every_refusal_is_the_same_fail() {
    let server = Server::tcp(Limits::default());
    let mut c = server.client();
    assert_eq!(c.auth_plain(1, ADDRESS, "wrong-key"), fail(1));
    assert_eq!(c.auth_plain(2, "nobody@example.test", KEY), fail(2));
    c.send("AUTH\t3\tCRAM-MD5\tservice=smtp");
    assert_eq!(c.recv(), Some(fail(3)));
    c.send("AUTH\t4\tPLAIN\tservice=smtp\tresp=%%%not-base64%%%");
    assert_eq!(c.recv(), Some(fail(4)));
    c.send("AUTH\t5\tPLAIN\tservice=smtp");
    assert_eq!(c.recv().as_deref(), Some("CONT\t5\t"));
    c.send("CONT\t5\t!!!!");
    assert_eq!(c.recv(), Some(fail(5)));
    // A TAB or LF in a decoded username, bytes that are not UTF-8, no NULs,
    // an empty password.
    assert_eq!(c.auth_plain(6, "a\tb@example.test", KEY), fail(6));
    assert_eq!(c.auth_plain(7, "a\nOK\t7\tuser=x", KEY), fail(7));
    let bad_utf8 = B64.encode(b"\0\xff\xfe@example.test\0key");
    c.send(&format!("AUTH\t8\tPLAIN\tresp={bad_utf8}"));
    assert_eq!(c.recv(), Some(fail(8)));
    c.send(&format!("AUTH\t9\tPLAIN\tresp={}", b64(ADDRESS)));
    assert_eq!(c.recv(), Some(fail(9)));
    assert_eq!(c.auth_plain(10, ADDRESS, ""), fail(10));
    // Empty `resp=` (SMTP's `AUTH PLAIN =`).
    c.send("AUTH\t11\tPLAIN\tresp=");
    assert_eq!(c.recv(), Some(fail(11)));
    // Only the wrong key and the unknown address reached the authenticator.
    assert_eq!(server.stub.attempts.lock().expect("attempts").len(), 2);
    // After all that, the connection still works.
    assert_eq!(c.auth_plain(12, ADDRESS, KEY), ok(12));
}

#[test]
fn sasl_unavailable_closes_the_connection_unanswered() {
    let server = Server::tcp(Limits::default());
    let mut c = server.client();
    assert_eq!(c.auth_plain(1, ADDRESS, KEY), ok(1));
    let resp = B64.encode(format!("\0{UNAVAILABLE}\0{KEY}"));
    c.send(&format!("AUTH\t2\tPLAIN\tresp={resp}"));
    c.expect_closed();
    assert_eq!(server.client().auth_plain(3, ADDRESS, KEY), ok(3));
}

#[test]
fn sasl_cont_with_an_unknown_id_fails_and_keeps_the_connection() {
    let server = Server::tcp(Limits::default());
    let mut c = server.client();
    c.send(&format!("CONT\t42\t{}", b64("x")));
    assert_eq!(c.recv(), Some(fail(42)));
    // A request already answered is unknown too.
    assert_eq!(c.auth_plain(1, ADDRESS, KEY), ok(1));
    c.send(&format!("CONT\t1\t{}", b64("x")));
    assert_eq!(c.recv(), Some(fail(1)));
    assert_eq!(c.auth_plain(2, ADDRESS, KEY), ok(2));
}

#[test]
fn sasl_protocol_violations_close_the_connection() {
    let server = Server::tcp(Limits::default());
    let good = format!("resp={}", b64(&format!("\0{ADDRESS}\0{KEY}")));

    let mut c = server.raw();
    c.greeting();
    c.send(&format!("AUTH\t1\tPLAIN\t{good}"));
    c.expect_closed();

    let mut c = server.raw();
    c.greeting();
    c.send("VERSION\t1\t0");
    c.send(&format!("AUTH\t1\tPLAIN\t{good}"));
    c.expect_closed();

    let mut c = server.raw();
    c.greeting();
    c.send("VERSION\t2\t0");
    c.expect_closed();

    for line in [
        "AUTH\tx\tPLAIN".to_string(),
        "AUTH\t1".to_string(),
        "CONT\t1".to_string(),
        "HELLO\tworld".to_string(),
        "CPID\t1".to_string(),
        "\u{0}\u{ff}garbage".to_string(),
    ] {
        let mut c = server.client();
        c.send(&line);
        c.expect_closed();
    }

    // The id of a request still waiting for its CONT.
    let mut c = server.client();
    c.send("AUTH\t5\tLOGIN\tservice=smtp");
    assert!(c.recv().expect("CONT").starts_with("CONT\t5\t"));
    c.send("AUTH\t5\tLOGIN\tservice=smtp");
    c.expect_closed();
}

#[test]
fn sasl_oversize_line_closes_the_connection() {
    let limits = Limits::default();
    let server = Server::tcp(limits);
    // At the limit: a line like any other (here, bad base64, so FAIL).
    let mut c = server.client();
    let head = "AUTH\t1\tPLAIN\tresp=";
    let fill = "A".repeat(limits.max_line_bytes - head.len() - 1) + "*";
    c.send(&format!("{head}{fill}"));
    assert_eq!(c.recv(), Some(fail(1)));
    // One byte over.
    c.send(&format!("{head}{fill}A"));
    c.expect_closed();
}

#[test]
fn sasl_silent_and_idle_clients_are_disconnected() {
    let server = Server::tcp(Limits {
        handshake_timeout: Duration::from_millis(300),
        idle_timeout: Some(Duration::from_millis(500)),
        ..Limits::default()
    });
    let start = Instant::now();
    let mut silent = server.raw();
    while silent.recv().is_some() {} // the server's handshake, then the close
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
        "{waited:?}"
    );

    let mut idle = server.client();
    assert_eq!(idle.auth_plain(1, ADDRESS, KEY), ok(1));
    let start = Instant::now();
    idle.expect_closed();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

#[test]
fn sasl_an_unanswered_challenge_times_out_with_fail() {
    let server = Server::tcp(Limits {
        continue_timeout: Duration::from_millis(200),
        ..Limits::default()
    });
    let mut c = server.client();
    c.send("AUTH\t1\tLOGIN\tservice=smtp");
    assert!(c.recv().expect("CONT").starts_with("CONT\t1\t"));
    assert_eq!(c.recv(), Some(fail(1)));
    // The late answer is for a request that no longer exists.
    c.send(&format!("CONT\t1\t{}", b64(ADDRESS)));
    assert_eq!(c.recv(), Some(fail(1)));
}

#[test]
fn sasl_open_exchanges_per_connection_are_capped() {
    let server = Server::tcp(Limits {
        max_pending_per_connection: 4,
        ..Limits::default()
    });
    let mut c = server.client();
    for id in 1..=4 {
        c.send(&format!("AUTH\t{id}\tLOGIN\tservice=smtp"));
        assert!(c
            .recv()
            .expect("CONT")
            .starts_with(&format!("CONT\t{id}\t")));
    }
    c.send("AUTH\t5\tLOGIN\tservice=smtp");
    assert_eq!(c.recv(), Some(fail(5)));
    // Finishing one makes room again.
    c.send(&format!("CONT\t1\t{}", b64(ADDRESS)));
    c.recv().expect("Password:");
    c.send(&format!("CONT\t1\t{}", b64(KEY)));
    assert_eq!(c.recv(), Some(ok(1)));
    assert_eq!(c.auth_plain(6, ADDRESS, KEY), ok(6));
}

#[test]
fn sasl_when_every_slot_is_taken_the_longest_idle_makes_room() {
    let server = Server::tcp(Limits {
        max_connections: 2,
        ..Limits::default()
    });
    let mut a = server.client();
    std::thread::sleep(Duration::from_millis(30));
    let mut b = server.client();
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(a.auth_plain(1, ADDRESS, KEY), ok(1));
    std::thread::sleep(Duration::from_millis(30));
    // b is now the one idle longest: it makes room for c.
    let mut c = server.client();
    assert_eq!(c.auth_plain(2, ADDRESS, KEY), ok(2));
    b.send(&format!(
        "AUTH\t3\tPLAIN\tresp={}",
        b64(&format!("\0{ADDRESS}\0{KEY}"))
    ));
    assert_eq!(b.recv(), None, "the connection idle longest is still open");
    assert_eq!(a.auth_plain(4, ADDRESS, KEY), ok(4));
    assert_eq!(c.auth_plain(5, ADDRESS, KEY), ok(5));
}

#[test]
fn sasl_one_peer_holds_at_most_its_cap() {
    let limits = Limits {
        max_connections_per_peer: 2,
        ..Limits::default()
    };
    let server = Server::tcp(limits);
    let mut a = server.client();
    let _b = server.client();
    // Closed before a word: a served connection is sent the handshake at once.
    server.raw().expect_closed();
    assert_eq!(a.auth_plain(1, ADDRESS, KEY), ok(1));
    drop(a);
    // A slot of this peer is free again once one of its connections ends.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = server.raw();
        c.send("VERSION\t1\t0\nCPID\t1");
        if c.recv().as_deref() == Some("VERSION\t1\t2") {
            break;
        }
        assert!(Instant::now() < deadline, "no slot freed");
        std::thread::sleep(Duration::from_millis(20));
    }

    // On a unix socket a peer is a user id: this process's connections are one.
    let dir = std::env::temp_dir().join(format!("keygate-sasl-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bind = Bind::parse(&format!("unix:{}", dir.join("auth").display())).expect("parse");
    let server = Server::start(bind, limits);
    let mut a = server.client();
    let _b = server.client();
    server.raw().expect_closed();
    assert_eq!(a.auth_plain(1, ADDRESS, KEY), ok(1));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sasl_fifty_connections_twenty_auths_each() {
    let server = Arc::new(Server::tcp(Limits::default()));
    let threads: Vec<_> = (0..50)
        .map(|n| {
            let server = server.clone();
            std::thread::spawn(move || {
                let mut c = server.client();
                // Ten one after another…
                for i in 0..10u32 {
                    let id = n * 100 + i + 1;
                    let right = (n + i) % 3 != 0;
                    let answer = c.auth_plain(id, ADDRESS, if right { KEY } else { "nope" });
                    assert_eq!(answer, if right { ok(id) } else { fail(id) });
                }
                // …and ten pipelined in one write, answered by id in any order.
                let mut burst = String::new();
                let mut expected = std::collections::HashSet::new();
                for i in 10..20u32 {
                    let id = n * 100 + i + 1;
                    let right = (n + i) % 3 != 0;
                    let pass = if right { KEY } else { "nope" };
                    let resp = B64.encode(format!("\0{ADDRESS}\0{pass}"));
                    burst.push_str(&format!("AUTH\t{id}\tPLAIN\tservice=smtp\tresp={resp}\n"));
                    expected.insert(if right { ok(id) } else { fail(id) });
                }
                c.send(burst.trim_end());
                let mut got = std::collections::HashSet::new();
                for _ in 0..10 {
                    got.insert(c.recv().expect("pipelined answer"));
                }
                assert_eq!(got, expected);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    assert_eq!(server.stub.attempts.lock().expect("attempts").len(), 1000);
}

#[test]
fn sasl_unix_socket() {
    let dir = std::env::temp_dir().join(format!("keygate-sasl-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path: PathBuf = dir.join("auth");
    // A stale socket from a process that died is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("stale socket"));
    let bind = Bind::parse(&format!("unix:{}", path.display())).expect("parse");
    let server = Server::start(bind, Limits::default());
    let mut c = server.client();
    assert_eq!(c.auth_plain(1, ADDRESS, KEY), ok(1));
    drop(c);
    drop(server);
    assert!(
        !path.exists(),
        "the socket is removed when the listener stops"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sasl_bind_parses_host_port_and_unix_path() {
    assert_eq!(
        Bind::parse("127.0.0.1:12345"),
        Ok(Bind::Tcp("127.0.0.1:12345".parse().expect("addr")))
    );
    assert_eq!(
        Bind::parse("[::1]:24"),
        Ok(Bind::Tcp("[::1]:24".parse().expect("addr")))
    );
    assert_eq!(
        Bind::parse("unix:/run/keygate/auth"),
        Ok(Bind::Unix("/run/keygate/auth".into()))
    );
    for bad in [
        "",
        "unix:",
        "localhost:12345",
        "127.0.0.1",
        "127.0.0.1:99999",
    ] {
        assert!(Bind::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        Bind::parse("unix:/x").expect("parse").to_string(),
        "unix:/x"
    );
}

/// The listener behind a real Postfix: SMTP AUTH PLAIN and LOGIN, wrong keys,
/// and a login sending as another address.
#[test]
fn sasl_behind_postfix() {
    let server = Server::tcp(Limits::default());
    let postfix = Postfix::start(server.addr());
    let smtp = postfix.smtp;
    let log = || postfix.maillog();

    let s = submit(smtp, Auth::Plain, ADDRESS, KEY, ADDRESS);
    assert_eq!(s.code("AUTH"), Some(235), "{}\n{}", s.transcript, log());
    assert_eq!(s.code("DATA"), Some(250), "{}\n{}", s.transcript, log());

    let s = submit(smtp, Auth::Plain, ADDRESS, "wrong-key", ADDRESS);
    assert_eq!(s.code("AUTH"), Some(535), "{}\n{}", s.transcript, log());
    let s = submit(smtp, Auth::Login, "nobody@example.test", KEY, ADDRESS);
    assert_eq!(s.code("AUTH"), Some(535), "{}\n{}", s.transcript, log());

    let s = submit(smtp, Auth::Plain, ADDRESS, KEY, "ceo@example.test");
    assert_eq!(s.code("AUTH"), Some(235), "{}\n{}", s.transcript, log());
    assert_eq!(s.code("MAIL"), Some(553), "{}\n{}", s.transcript, log());
    assert_eq!(s.code("DATA"), None, "{}", s.transcript);

    let s = submit(smtp, Auth::Login, ADDRESS, KEY, ADDRESS);
    assert_eq!(s.code("AUTH"), Some(235), "{}\n{}", s.transcript, log());
    assert_eq!(s.code("DATA"), Some(250), "{}\n{}", s.transcript, log());

    // `Verdict::Unavailable` reaches the SMTP client as "try again". The next
    // AUTH through the same smtpd process may get a 454 too (Postfix notices
    // the closed connection only then); the one after that reconnects.
    let s = submit(smtp, Auth::Plain, UNAVAILABLE, KEY, UNAVAILABLE);
    assert_eq!(s.code("AUTH"), Some(454), "{}\n{}", s.transcript, log());
    let codes: Vec<_> = (0..2)
        .map(|_| submit(smtp, Auth::Plain, ADDRESS, KEY, ADDRESS).code("AUTH"))
        .collect();
    assert!(
        codes == [Some(235), Some(235)] || codes == [Some(454), Some(235)],
        "{codes:?}\n{}",
        log()
    );

    let rips: Vec<_> = server
        .stub
        .attempts
        .lock()
        .expect("attempts")
        .iter()
        .map(|a| a.remote_ip)
        .collect();
    assert!(
        rips.iter()
            .all(|ip| *ip == Some("127.0.0.1".parse().expect("ip"))),
        "{rips:?}"
    );
}

// ------------------------------------------------- through the real server

/// A TCP connection to the real server's SASL listener from the loopback
/// address `source` (127.0.0.x: each is a peer of its own).
fn connect_from(source: [u8; 4], port: u16) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::from((source, 0)).into())
        .expect("bind the source address");
    socket
        .connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .expect("connect to the SASL listener");
    socket.into()
}

/// What Postfix's idle `smtpd` looks like: the handshake, then nothing.
fn quiet_from(source: [u8; 4], port: u16) -> TcpStream {
    let s = connect_from(source, port);
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut c = Client {
        reader: Box::new(BufReader::new(s.try_clone().expect("clone"))),
        writer: Box::new(s.try_clone().expect("clone")),
    };
    let lines = c.handshake();
    assert_eq!(lines.last().map(String::as_str), Some("DONE"));
    s
}

/// Whether the server has closed `s` (within `wait`); a line from it panics.
fn closed(s: &TcpStream, wait: Duration) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(wait)).expect("timeout");
    let mut buf = [0u8; 256];
    match (&*s).read(&mut buf) {
        Ok(0) => true,
        Ok(n) => panic!(
            "expected silence or a close, got {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => true,
        Err(_) => false,
    }
}

/// Idle connections cannot lock Postfix out: one peer holds at most its cap
/// (its next connection is closed at once), and once every slot is taken the
/// connection idle longest is closed to make room, so a fresh client (Postfix
/// reconnecting) still authenticates.
fn sasl_idle_connections_cannot_lock_postfix_out(b: crate::support::Backend) {
    use crate::support::{Fixture as F, Server as RealServer, TestDb};
    let port = crate::postfix::free_port();
    let bind = format!("127.0.0.1:{port}");
    let f = F::with_server(RealServer::start_with(
        TestDb::new(b),
        &[
            ("KEYGATE_SASL_BIND", &bind),
            ("KEYGATE_SASL_MAX_CONNECTIONS", "6"),
            ("KEYGATE_SASL_MAX_CONNECTIONS_PER_PEER", "3"),
        ],
    ));
    let db = f.db();
    db.verified_domain(&f.workspace_id, "example.test");
    let address = "idle@example.test";
    let mailbox = db.json(&[
        "mailbox",
        "create",
        "--workspace",
        &f.workspace_id,
        "--address",
        address,
    ]);
    let key = db.json(&[
        "authkey",
        "create",
        "--mailbox",
        mailbox["id"].as_str().expect("mailbox id"),
        "--name",
        "Postfix",
    ])["key"]
        .as_str()
        .expect("key")
        .to_string();
    assert!(
        f.server
            .logs()
            .contains("(at most 6 connections, 3 per peer)"),
        "{}",
        f.server.logs()
    );

    // One peer takes its cap; its next connection is closed at once.
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(quiet_from([127, 0, 0, 2], port));
        // Each idle for a different time.
        std::thread::sleep(Duration::from_millis(30));
    }
    let over = connect_from([127, 0, 0, 2], port);
    assert!(
        closed(&over, Duration::from_secs(5)),
        "a peer holds more connections than its cap"
    );
    // Another peer takes the remaining slots: all six are held, idle.
    for _ in 0..3 {
        idle.push(quiet_from([127, 0, 0, 3], port));
        std::thread::sleep(Duration::from_millis(30));
    }
    for s in &idle {
        assert!(!closed(s, Duration::from_millis(50)), "closed too early");
    }

    // A fresh client still gets in and authenticates…
    let s = connect_from([127, 0, 0, 4], port);
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut fresh = Client {
        reader: Box::new(BufReader::new(s.try_clone().expect("clone"))),
        writer: Box::new(s),
    };
    fresh.handshake();
    assert_eq!(
        fresh.auth_plain(1, address, &key),
        format!("OK\t1\tuser={address}"),
        "{}",
        f.server.logs()
    );
    // …because the connection idle longest, and only it, was closed.
    assert!(
        closed(&idle[0], Duration::from_secs(5)),
        "the oldest idle connection is open"
    );
    for s in &idle[1..] {
        assert!(
            !closed(s, Duration::from_millis(50)),
            "another connection was closed"
        );
    }
    // The peer at its cap is still refused a fourth, even with slots full.
    let over = connect_from([127, 0, 0, 3], port);
    assert!(closed(&over, Duration::from_secs(5)));
}

both_backends!(sasl_idle_connections_cannot_lock_postfix_out);
