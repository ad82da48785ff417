//! One connection: reading lines (each at most [`Limits::max_line_bytes`]),
//! writing answers, the checks under way, and the timers (handshake, `CONT`,
//! idle). What a line means is `protocol`'s business.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::task::JoinSet;
use tokio::time::{sleep_until, timeout, Instant};

use super::slots::Activity;
use super::{Authenticator, Limits, Verdict};

/// Why a connection is closed, for the debug log: a client that breaks the
/// protocol cannot be answered per request (its request id may be what is
/// broken), and an unavailable authenticator is signalled by closing.
pub(super) type Close = &'static str;

/// What a request waits for.
pub(super) enum Pending {
    /// A `CONT` from the client, until `deadline`.
    Continue {
        step: Step,
        remote_ip: Option<IpAddr>,
        deadline: Instant,
    },
    /// The authenticator's verdict.
    Checking,
}

pub(super) enum Step {
    /// PLAIN without an initial response: the whole message comes in the `CONT`.
    Plain,
    LoginUsername,
    LoginPassword {
        username: Vec<u8>,
    },
}

pub(super) struct Connection {
    pub(super) auth: Arc<dyn Authenticator>,
    pub(super) limits: Limits,
    pub(super) peer: String,
    pub(super) version_seen: bool,
    pub(super) cpid_seen: bool,
    pub(super) pending: HashMap<u32, Pending>,
    pub(super) checks: JoinSet<Verdict>,
    pub(super) check_ids: HashMap<tokio::task::Id, u32>,
    /// Answers not yet written.
    pub(super) out: Vec<u8>,
    /// What the listener sees of this connection (when it was last active),
    /// to close the one idle longest when every slot is taken.
    activity: Arc<Activity>,
}

enum ReadLine {
    Line,
    Eof,
    TooLong,
}

impl Connection {
    pub(super) async fn run<S>(
        stream: S,
        peer: String,
        auth: Arc<dyn Authenticator>,
        mut limits: Limits,
        activity: Arc<Activity>,
    ) where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        limits.max_pending_per_connection = limits.max_pending_per_connection.max(1);
        let (reader, mut writer) = tokio::io::split(stream);
        let mut reader = BufReader::with_capacity(8 * 1024, reader);
        let mut conn = Connection {
            auth,
            limits,
            peer,
            version_seen: false,
            cpid_seen: false,
            pending: HashMap::new(),
            checks: JoinSet::new(),
            check_ids: HashMap::new(),
            out: Vec::with_capacity(256),
            activity,
        };
        conn.handshake();
        let why = conn.serve(&mut reader, &mut writer).await;
        log::debug!("sasl: closed {}: {why}", conn.peer);
        // Dropping `conn` aborts checks still running: nobody waits for them.
    }

    /// The connection's loop; returns why it ended.
    async fn serve<R, W>(&mut self, reader: &mut R, writer: &mut W) -> &'static str
    where
        R: AsyncBufRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let handshake_deadline = Instant::now() + self.limits.handshake_timeout;
        let mut last_activity = Instant::now();
        let mut line = Vec::new();
        let mut reading = true;
        loop {
            if !self.out.is_empty() {
                match timeout(self.limits.write_timeout, writer.write_all(&self.out)).await {
                    Ok(Ok(())) => self.out.clear(),
                    Ok(Err(_)) => return "write failed",
                    Err(_) => return "write timed out (the client does not read)",
                }
            }
            if !reading && self.checks.is_empty() {
                return "end of input, every check answered";
            }
            self.activity.set_checking(!self.checks.is_empty());
            let deadline = self.next_deadline(handshake_deadline, last_activity);
            let may_read = reading && self.checks.len() < self.limits.max_pending_per_connection;
            tokio::select! {
                biased;
                Some(done) = self.checks.join_next_with_id(), if !self.checks.is_empty() => {
                    last_activity = Instant::now();
                    self.activity.touch();
                    if let Err(why) = self.on_verdict(done) {
                        let _ = timeout(self.limits.write_timeout, writer.write_all(&self.out)).await;
                        return why;
                    }
                }
                read = read_line(reader, &mut line, self.limits.max_line_bytes), if may_read => {
                    match read {
                        Ok(ReadLine::Line) => {
                            last_activity = Instant::now();
                            self.activity.touch();
                            let result = self.on_line(&line);
                            // At once: the answer is written before the loop
                            // comes round, and the listener may look meanwhile.
                            self.activity.set_checking(!self.checks.is_empty());
                            line.clear();
                            if let Err(why) = result {
                                return why;
                            }
                        }
                        Ok(ReadLine::Eof) => {
                            // Answer what is being checked; nobody can continue
                            // the requests that wait for a `CONT`.
                            reading = false;
                            self.pending.retain(|_, p| matches!(p, Pending::Checking));
                        }
                        Ok(ReadLine::TooLong) => return "line too long",
                        Err(_) => return "read failed",
                    }
                }
                () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    if let Err(why) = self.on_timer(handshake_deadline, last_activity) {
                        return why;
                    }
                }
            }
        }
    }

    fn handshaken(&self) -> bool {
        self.version_seen && self.cpid_seen
    }

    /// The next moment a timer fires: the handshake's end, the idle limit
    /// (only while nothing is pending: a client waiting for a verdict is not
    /// idle), or the first request whose `CONT` is overdue.
    fn next_deadline(&self, handshake: Instant, last_activity: Instant) -> Option<Instant> {
        let mut next = if !self.handshaken() {
            Some(handshake)
        } else if self.pending.is_empty() {
            self.limits.idle_timeout.map(|idle| last_activity + idle)
        } else {
            None
        };
        for p in self.pending.values() {
            if let Pending::Continue { deadline, .. } = p {
                next = Some(next.map_or(*deadline, |n| n.min(*deadline)));
            }
        }
        next
    }

    fn on_timer(&mut self, handshake: Instant, last_activity: Instant) -> Result<(), Close> {
        let now = Instant::now();
        if !self.handshaken() && now >= handshake {
            return Err("no handshake in time");
        }
        if let (true, true, Some(idle)) = (
            self.handshaken(),
            self.pending.is_empty(),
            self.limits.idle_timeout,
        ) {
            if now >= last_activity + idle {
                return Err("idle");
            }
        }
        let overdue: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| matches!(p, Pending::Continue { deadline, .. } if *deadline <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in overdue {
            self.pending.remove(&id);
            self.fail(id);
        }
        Ok(())
    }
}

/// Reads one LF-terminated line into `line` (without the LF), refusing one
/// longer than `max`. Safe to cancel (it is one branch of a `select!`): bytes
/// are moved into `line` only after a read completed, and `line` keeps a
/// partial line for the next call.
async fn read_line<R>(reader: &mut R, line: &mut Vec<u8>, max: usize) -> io::Result<ReadLine>
where
    R: AsyncBufRead + Unpin,
{
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(ReadLine::Eof);
        }
        let (chunk, complete) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..end], true),
            None => (available, false),
        };
        if line.len() + chunk.len() > max {
            return Ok(ReadLine::TooLong);
        }
        line.extend_from_slice(chunk);
        let used = chunk.len() + usize::from(complete);
        reader.consume(used);
        if complete {
            return Ok(ReadLine::Line);
        }
    }
}
