//! The protocol's lines: the handshake sent, and what each line received
//! (`VERSION`, `CPID`, `AUTH`, `CONT`) and each verdict are answered with.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use tokio::time::Instant;

use super::connection::{Close, Connection, Pending, Step};
use super::{Attempt, Mechanism, Verdict, FAIL_REASON};

/// `CUID`: unique per connection within this process, as Dovecot's is.
static NEXT_CUID: AtomicU64 = AtomicU64::new(1);

/// Answers are standard base64 with padding (what Postfix and Dovecot send);
/// input is accepted with or without padding, nothing else.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

impl Connection {
    /// Sent at once, without waiting for the client's handshake, as Dovecot
    /// does: `VERSION` first, `MECH` lines, then `SPID`, `CUID`, `COOKIE` (32 hex
    /// digits; only used by Dovecot's master `REQUEST`, which is not offered
    /// here) and `DONE`, the order Postfix checks.
    pub(super) fn handshake(&mut self) {
        let cookie: [u8; 16] = rand::random();
        let cookie = crate::crypto::hex(&cookie);
        let cuid = NEXT_CUID.fetch_add(1, Ordering::Relaxed);
        let mut hello = String::from("VERSION\t1\t2\n");
        for m in [Mechanism::Plain, Mechanism::Login] {
            hello.push_str(&format!("MECH\t{}\tplaintext\n", m.name()));
        }
        hello.push_str(&format!(
            "SPID\t{}\nCUID\t{cuid}\nCOOKIE\t{cookie}\nDONE\n",
            std::process::id()
        ));
        self.out.extend_from_slice(hello.as_bytes());
    }

    pub(super) fn on_line(&mut self, line: &[u8]) -> Result<(), Close> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let fields: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
        let command = fields.first().copied().unwrap_or_default();
        if !self.version_seen {
            // The first line must be VERSION with our major version; the minor
            // version may differ (the protocol document says so).
            return match fields.as_slice() {
                [b"VERSION", b"1", minor] if is_decimal(minor) => {
                    self.version_seen = true;
                    Ok(())
                }
                [b"VERSION", ..] => Err("unsupported VERSION"),
                _ => Err("the first line is not VERSION"),
            };
        }
        if !self.cpid_seen {
            // Dovecot, too, refuses requests before the client's CPID.
            return match fields.as_slice() {
                [b"CPID", pid] if is_decimal(pid) => {
                    self.cpid_seen = true;
                    Ok(())
                }
                _ => Err("no CPID after VERSION"),
            };
        }
        match command {
            b"AUTH" => self.on_auth(&fields),
            b"CONT" => self.on_cont(&fields),
            _ => Err("unknown or repeated command"),
        }
    }

    /// `AUTH <id> <mechanism> [<param>…]`. Parameters are `name=value` or flags;
    /// only `rip` and `resp` matter here (`resp` is the last one by the
    /// protocol's rule, so anything after it is ignored).
    fn on_auth(&mut self, fields: &[&[u8]]) -> Result<(), Close> {
        let [_, id, mechanism, params @ ..] = fields else {
            return Err("AUTH without an id and a mechanism");
        };
        let id = parse_id(id).ok_or("AUTH with a bad request id")?;
        if self.pending.contains_key(&id) {
            return Err("AUTH with the id of a pending request");
        }
        if self.pending.len() >= self.limits.max_pending_per_connection {
            self.fail(id);
            return Ok(());
        }
        let Some(mechanism) = Mechanism::from_wire(mechanism) else {
            self.fail(id);
            return Ok(());
        };
        let mut remote_ip = None;
        let mut initial = None;
        for param in params {
            if let Some(v) = param.strip_prefix(b"rip=") {
                remote_ip = std::str::from_utf8(v).ok().and_then(|v| v.parse().ok());
            } else if let Some(v) = param.strip_prefix(b"resp=") {
                initial = Some(v);
                break;
            }
        }
        let initial = match initial.map(|v| BASE64.decode(v)) {
            None => None,
            Some(Ok(bytes)) => Some(bytes),
            Some(Err(_)) => {
                self.fail(id);
                return Ok(());
            }
        };
        match (mechanism, initial) {
            (Mechanism::Plain, Some(message)) => self.plain(id, &message, remote_ip),
            (Mechanism::Plain, None) => self.challenge(id, Step::Plain, remote_ip, b""),
            // An empty initial response (SMTP's `AUTH LOGIN =`) starts from the
            // username, as no initial response does.
            (Mechanism::Login, Some(username)) if !username.is_empty() => self.challenge(
                id,
                Step::LoginPassword { username },
                remote_ip,
                b"Password:",
            ),
            (Mechanism::Login, _) => {
                self.challenge(id, Step::LoginUsername, remote_ip, b"Username:")
            }
        }
        Ok(())
    }

    /// `CONT <id> <base64>`. An id we do not know (never started, answered, or
    /// timed out) is answered `FAIL`, not closed: Postfix may well continue a
    /// request we gave up on, and reads past answers to other ids.
    fn on_cont(&mut self, fields: &[&[u8]]) -> Result<(), Close> {
        let [_, id, data] = fields else {
            return Err("CONT without exactly an id and a response");
        };
        let id = parse_id(id).ok_or("CONT with a bad request id")?;
        let (step, remote_ip) = match self.pending.remove(&id) {
            None => {
                self.fail(id);
                return Ok(());
            }
            Some(Pending::Checking) => return Err("CONT for a request being checked"),
            Some(Pending::Continue {
                step, remote_ip, ..
            }) => (step, remote_ip),
        };
        let Ok(data) = BASE64.decode(data) else {
            self.fail(id);
            return Ok(());
        };
        match step {
            Step::Plain => self.plain(id, &data, remote_ip),
            Step::LoginUsername if data.is_empty() => self.fail(id),
            Step::LoginUsername => self.challenge(
                id,
                Step::LoginPassword { username: data },
                remote_ip,
                b"Password:",
            ),
            Step::LoginPassword { username } => {
                self.check(id, Mechanism::Login, &username, &data, remote_ip)
            }
        }
        Ok(())
    }

    /// RFC 4616 §2: `[authzid] NUL authcid NUL passwd`. Acting for another
    /// identity is not offered, so an authzid must be empty or the authcid.
    fn plain(&mut self, id: u32, message: &[u8], remote_ip: Option<IpAddr>) {
        let mut parts = message.split(|&b| b == 0);
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(authzid), Some(authcid), Some(password), None)
                if authzid.is_empty() || authzid == authcid =>
            {
                self.check(id, Mechanism::Plain, authcid, password, remote_ip)
            }
            _ => self.fail(id),
        }
    }

    fn challenge(&mut self, id: u32, step: Step, remote_ip: Option<IpAddr>, challenge: &[u8]) {
        let deadline = Instant::now() + self.limits.continue_timeout;
        self.pending.insert(
            id,
            Pending::Continue {
                step,
                remote_ip,
                deadline,
            },
        );
        let line = format!("CONT\t{id}\t{}\n", BASE64.encode(challenge));
        self.out.extend_from_slice(line.as_bytes());
    }

    /// Hands complete credentials to the authenticator, on a task of its own so
    /// that a slow check does not hold up the connection's other requests.
    fn check(
        &mut self,
        id: u32,
        mechanism: Mechanism,
        username: &[u8],
        password: &[u8],
        remote_ip: Option<IpAddr>,
    ) {
        let (Ok(username), Ok(password)) =
            (std::str::from_utf8(username), std::str::from_utf8(password))
        else {
            return self.fail(id);
        };
        if !is_login_name(username) || password.is_empty() {
            return self.fail(id);
        }
        let attempt = Attempt {
            username: username.to_owned(),
            password: password.to_owned(),
            remote_ip,
            mechanism,
        };
        let task = self.checks.spawn(self.auth.authenticate(attempt));
        self.check_ids.insert(task.id(), id);
        self.pending.insert(id, Pending::Checking);
    }

    pub(super) fn on_verdict(
        &mut self,
        done: Result<(tokio::task::Id, Verdict), tokio::task::JoinError>,
    ) -> Result<(), Close> {
        let (task, verdict) = match done {
            Ok((task, verdict)) => (task, verdict),
            Err(e) => {
                log::error!("sasl: the authenticator failed ({e}); answered FAIL");
                (e.id(), Verdict::Fail)
            }
        };
        let Some(id) = self.check_ids.remove(&task) else {
            return Ok(());
        };
        self.pending.remove(&id);
        match verdict {
            // `user=` is written as is: Dovecot would escape TAB and LF, Postfix
            // does not unescape, so such names are refused instead.
            Verdict::Ok { user } if is_login_name(&user) => {
                self.out
                    .extend_from_slice(format!("OK\t{id}\tuser={user}\n").as_bytes());
            }
            Verdict::Ok { .. } => {
                log::error!("sasl: the authenticator accepted a name that cannot be sent");
                self.fail(id);
            }
            Verdict::Fail => self.fail(id),
            Verdict::Unavailable => return Err("the authenticator is unavailable"),
        }
        Ok(())
    }

    pub(super) fn fail(&mut self, id: u32) {
        let line = format!("FAIL\t{id}\treason={FAIL_REASON}\n");
        self.out.extend_from_slice(line.as_bytes());
    }
}

/// Request ids are unsigned 32-bit decimals (Postfix counts up from 1).
fn parse_id(field: &[u8]) -> Option<u32> {
    if !is_decimal(field) {
        return None;
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

fn is_decimal(field: &[u8]) -> bool {
    !field.is_empty() && field.len() <= 10 && field.iter().all(u8::is_ascii_digit)
}

/// A name that can travel in a protocol field and a log line: not empty, no
/// control characters (TAB and LF would break the line; Dovecot's escape byte
/// 0x01 is one too).
fn is_login_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_control)
}
