//! The SMTP AUTH scenario's client: Postfix's side of Dovecot's authentication
//! protocol spoken to keygate's SASL listener. Each connection does the
//! handshake once (as Postfix does per smtpd process), then sends
//! `AUTH … PLAIN` requests one after another.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

struct Session {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Session {
    fn open(addr: &str) -> std::io::Result<Session> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(15)))?;
        let mut c = Session {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        };
        c.writer
            .write_all(format!("VERSION\t1\t0\nCPID\t{}\n", std::process::id()).as_bytes())?;
        let mut line = String::new();
        loop {
            line.clear();
            if c.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if line.trim_end() == "DONE" {
                return Ok(c);
            }
        }
    }

    fn auth(&mut self, id: u64, resp: &str) -> std::io::Result<bool> {
        let req = format!(
            "AUTH\t{id}\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.1\tresp={resp}\n"
        );
        self.writer.write_all(req.as_bytes())?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.starts_with("OK\t"))
    }
}

/// One connection to the SASL listener, opened again after a failure.
pub struct Client {
    addr: String,
    session: Option<Session>,
    next_id: u64,
}

impl Client {
    pub fn open(addr: &str) -> std::io::Result<Client> {
        Ok(Client {
            addr: addr.to_string(),
            session: Some(Session::open(addr)?),
            next_id: 1,
        })
    }

    /// One PLAIN authentication with `resp` (see [`plain`]); `true` for `OK`.
    pub fn auth(&mut self, resp: &str) -> bool {
        let id = self.next_id;
        self.next_id += 1;
        if self.session.is_none() {
            self.session = Session::open(&self.addr).ok();
        }
        let Some(session) = self.session.as_mut() else {
            return false;
        };
        match session.auth(id, resp) {
            Ok(ok) => ok,
            Err(_) => {
                self.session = None;
                false
            }
        }
    }
}

/// The initial response of SASL PLAIN (RFC 4616) for `address` and `key`.
pub fn plain(address: &str, key: &str) -> String {
    STANDARD.encode(format!("\0{address}\0{key}"))
}
