//! A private Postfix instance for SMTP AUTH tests, and `swaks` to talk to it.
//!
//! Each instance runs as root from a slot directory of its own
//! (`$TMPDIR/keygate-postfix/slot-N`, mode 0755 so the `postfix` user reaches
//! it), claimed with a file lock so that parallel tests, and parallel test runs,
//! never share one. Postfix only accepts `-c DIR` for a directory listed in
//! `alternate_config_directories` of /etc/postfix/main.cf; the fixed slots are
//! listed there once, so that file does not grow with every run.

#![allow(dead_code)]

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SLOTS: usize = 16;
const INSTALL_HINT: &str = "./scripts/test installs it";

/// Fails the test with one line when a tool is missing.
pub fn require(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(tool).is_file();
    if !found {
        panic!("{tool} (Debian package {package}) is not installed: {INSTALL_HINT}");
    }
}

fn root() -> PathBuf {
    std::env::temp_dir().join("keygate-postfix")
}

fn slot_dir(n: usize) -> PathBuf {
    root().join(format!("slot-{n}"))
}

/// Lists every slot's conf directory in /etc/postfix/main.cf, once.
fn authorize_slots() {
    let dirs: Vec<String> = (0..SLOTS)
        .map(|n| slot_dir(n).join("conf").display().to_string())
        .collect();
    let line = format!("alternate_config_directories = {}", dirs.join(" "));
    fs::create_dir_all(root()).expect("create the Postfix test root");
    let lock = File::create(root().join("setup.lock")).expect("setup lock");
    lock.lock().expect("lock setup");
    let path = Path::new("/etc/postfix/main.cf");
    let current = fs::read_to_string(path).unwrap_or_default();
    if !current.lines().any(|l| l.trim() == line) {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open /etc/postfix/main.cf (the tests run as root)");
        let sep = if current.is_empty() || current.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        writeln!(
            f,
            "{sep}# keygate's SMTP AUTH tests (tests/it/postfix.rs)\n{line}"
        )
        .expect("write /etc/postfix/main.cf");
    }
}

/// A free loopback port (the usual race between closing and reuse is small).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A running private Postfix that relays for SASL-authenticated clients only
/// (into `discard`), asks the Dovecot-protocol server at `sasl` and lets each
/// login send only as itself. Stopped on drop.
pub struct Postfix {
    pub dir: PathBuf,
    pub smtp: SocketAddr,
    conf: PathBuf,
    _slot: File,
}

impl Postfix {
    pub fn start(sasl: SocketAddr) -> Postfix {
        require("postfix", "postfix");
        authorize_slots();
        let (n, slot) = (0..SLOTS)
            .find_map(|n| {
                fs::create_dir_all(root()).ok()?;
                let f = File::create(root().join(format!("slot-{n}.lock"))).ok()?;
                f.try_lock().ok().map(|()| (n, f))
            })
            .expect("a free Postfix slot (all 16 in use?)");
        let dir = slot_dir(n);
        let conf = dir.join("conf");
        // A previous run that crashed may have left its instance running.
        if conf.join("main.cf").exists() {
            let _ = Command::new("postfix")
                .arg("-c")
                .arg(&conf)
                .arg("stop")
                .output();
            wait_until(Duration::from_secs(5), || {
                !dir.join("queue/pid/master.pid").exists()
            });
        }
        let _ = fs::remove_dir_all(&dir);
        for d in [&dir, &conf, &dir.join("queue")] {
            fs::create_dir_all(d).expect("slot dir");
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).expect("chmod 0755");
        }
        let data = dir.join("data");
        fs::create_dir_all(&data).expect("data dir");
        let chown = Command::new("chown")
            .arg("postfix:")
            .arg(&data)
            .status()
            .expect("run chown");
        assert!(chown.success(), "chown postfix {}", data.display());

        let port = free_port();
        let d = dir.display();
        let main_cf = format!(
            "compatibility_level = 3.6\n\
             queue_directory = {d}/queue\n\
             data_directory = {d}/data\n\
             maillog_file = {d}/maillog\n\
             maillog_file_prefixes = {d}\n\
             myhostname = keygate-test.localdomain\n\
             mydestination =\n\
             inet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\n\
             smtpd_sasl_auth_enable = yes\n\
             smtpd_sasl_type = dovecot\n\
             smtpd_sasl_path = inet:{sasl}\n\
             smtpd_relay_restrictions = permit_sasl_authenticated, reject\n\
             smtpd_sender_login_maps = regexp:{d}/conf/login\n\
             smtpd_sender_restrictions = reject_sender_login_mismatch\n\
             # Reject at MAIL FROM itself, so a test sees which command was refused.\n\
             smtpd_delay_reject = no\n\
             default_transport = discard\n\
             alias_maps =\n\
             alias_database =\n"
        );
        fs::write(conf.join("main.cf"), main_cf).expect("main.cf");
        // The login owns exactly the address it logged in as.
        fs::write(conf.join("login"), "/^(.*)$/ ${1}\n").expect("login map");
        let proto = fs::read_to_string("/etc/postfix/master.cf.proto")
            .expect("/etc/postfix/master.cf.proto (package postfix)");
        let master_cf: String = proto
            .lines()
            .map(|l| {
                if l.starts_with("smtp ") && l.contains(" inet ") {
                    // Our port, and no chroot: nothing to copy into the queue dir.
                    format!("{port} inet n - n - - smtpd")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        fs::write(conf.join("master.cf"), master_cf).expect("master.cf");

        let out = Command::new("postfix")
            .arg("-c")
            .arg(&conf)
            .arg("start")
            .output()
            .expect("run postfix");
        let postfix = Postfix {
            dir,
            smtp: SocketAddr::from(([127, 0, 0, 1], port)),
            conf,
            _slot: slot,
        };
        assert!(
            out.status.success(),
            "postfix start failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            postfix.maillog()
        );
        let ready = wait_until(Duration::from_secs(15), || {
            TcpStream::connect_timeout(&postfix.smtp, Duration::from_secs(1))
                .map(|s| {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut banner = [0u8; 3];
                    (&s).read_exact(&mut banner).is_ok() && &banner == b"220"
                })
                .unwrap_or(false)
        });
        assert!(
            ready,
            "Postfix did not answer on {}\n{}",
            postfix.smtp,
            postfix.maillog()
        );
        postfix
    }

    pub fn maillog(&self) -> String {
        fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(&self.conf)
            .arg("stop")
            .output();
    }
}

fn wait_until(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// One SMTP reply, with the command it answered (`CONNECT` for the banner).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub command: String,
    pub code: u16,
}

/// What one `swaks` run saw.
#[derive(Debug)]
pub struct Submission {
    pub replies: Vec<Reply>,
    pub transcript: String,
}

impl Submission {
    /// The code of the last reply to `command` (`AUTH`, `MAIL`, `DATA`…): for
    /// `AUTH` the outcome after any `334` rounds, for `DATA` the reply after
    /// the message's final dot.
    pub fn code(&self, command: &str) -> Option<u16> {
        self.replies
            .iter()
            .rev()
            .find(|r| r.command == command)
            .map(|r| r.code)
    }
}

pub enum Auth {
    Plain,
    Login,
}

/// Submits one message with `swaks` and returns the replies it saw.
pub fn submit(smtp: SocketAddr, auth: Auth, user: &str, password: &str, from: &str) -> Submission {
    require("swaks", "swaks");
    let out = Command::new("swaks")
        .arg("--server")
        .arg(smtp.to_string())
        .arg("--auth")
        .arg(match auth {
            Auth::Plain => "PLAIN",
            Auth::Login => "LOGIN",
        })
        .args(["--auth-user", user, "--auth-password", password])
        .args(["--from", from, "--to", "someone@example.org"])
        .args(["--timeout", "20"])
        .output()
        .expect("run swaks");
    let transcript =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Submission {
        replies: parse_swaks(&transcript),
        transcript,
    }
}

/// swaks prints client lines as ` -> ` (`~> ` under TLS) and server lines as
/// `<-  ` (`<** ` for errors); a reply's last line has a space after its code.
/// The reply after the DATA payload's dot is recorded as `DATA`.
fn parse_swaks(transcript: &str) -> Vec<Reply> {
    let mut command = String::from("CONNECT");
    let mut replies = Vec::new();
    for raw in BufReader::new(transcript.as_bytes())
        .lines()
        .map_while(Result::ok)
    {
        let line = raw.trim_start();
        if let Some(sent) = line.strip_prefix("->").or_else(|| line.strip_prefix("~>")) {
            let sent = sent.trim();
            let word = sent
                .split([' ', ':'])
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            // The payload lines after DATA are printed as sent lines too; only
            // SMTP verbs change the command being answered.
            if matches!(
                word.as_str(),
                "EHLO" | "HELO" | "AUTH" | "MAIL" | "RCPT" | "DATA" | "QUIT" | "STARTTLS"
            ) {
                command = word;
            }
        } else if let Some(got) = line.strip_prefix("<**").or_else(|| line.strip_prefix("<-")) {
            let got = got.trim_start();
            let code = got.get(..3).and_then(|c| c.parse::<u16>().ok());
            let last = got.as_bytes().get(3).is_none_or(|&b| b == b' ');
            if let (Some(code), true) = (code, last) {
                replies.push(Reply {
                    command: command.clone(),
                    code,
                });
            }
        }
    }
    replies
}
