//! DNS servers the tests start on a loopback port and point keygate at
//! (`KEYGATE_DNS_SERVER`):
//!
//! - [`Dnsmasq`]: Debian's dnsmasq as a private instance, authoritative for
//!   `.test` (a name there without records is NXDOMAIN), answering the TXT
//!   records it is given over UDP and TCP (an answer too large for UDP comes
//!   back truncated, so the client must ask again over TCP). It cannot
//!   change records at runtime: [`Dnsmasq::publish`] restarts it on the same
//!   port with the new set.
//! - [`ServFail`]: answers every question `SERVFAIL` (a message built with
//!   hickory-proto), for a broken zone.
//! - [`Silent`]: a UDP port that never answers, for timeouts.

use hickory_resolver::proto::op::{Message, OpCode, ResponseCode};
use std::net::{TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where dnsmasq is on Debian (`dnsmasq-base`).
fn dnsmasq_bin() -> &'static str {
    if std::path::Path::new("/usr/sbin/dnsmasq").exists() {
        "/usr/sbin/dnsmasq"
    } else {
        "dnsmasq"
    }
}

/// A port free for both UDP and TCP on 127.0.0.1.
fn free_dns_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A private dnsmasq answering TXT records.
pub struct Dnsmasq {
    pub port: u16,
    child: Option<Child>,
}

impl Dnsmasq {
    /// Serves `records` (name, value) on a free port.
    pub fn start(records: &[(&str, &str)]) -> Dnsmasq {
        let mut d = Dnsmasq {
            port: free_dns_port(),
            child: None,
        };
        d.publish(records);
        d
    }

    /// `KEYGATE_DNS_SERVER` for it.
    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Serves exactly `records` from now on (dnsmasq restarted on its port).
    pub fn publish(&mut self, records: &[(&str, &str)]) {
        self.stop();
        let mut cmd = Command::new(dnsmasq_bin());
        cmd.args([
            "--keep-in-foreground",
            &format!("--port={}", self.port),
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            "--pid-file=",
            "--local=/test/",
            "--log-facility=/dev/null",
        ]);
        for (name, value) in records {
            cmd.arg(format!("--txt-record={name},{value}"));
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dnsmasq (Debian package dnsmasq-base)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "dnsmasq did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A UDP server answering every question SERVFAIL.
pub struct ServFail {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl ServFail {
    pub fn start() -> ServFail {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let port = socket.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut answer = Message::response(query.metadata.id, OpCode::Query);
                answer.metadata.response_code = ResponseCode::ServFail;
                for q in query.queries {
                    answer.add_query(q);
                }
                if let Ok(bytes) = answer.to_vec() {
                    let _ = socket.send_to(&bytes, from);
                }
            }
        });
        ServFail { port, stop }
    }

    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for ServFail {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A UDP port that reads nothing and answers nothing.
pub struct Silent {
    socket: UdpSocket,
}

impl Silent {
    pub fn start() -> Silent {
        Silent {
            socket: UdpSocket::bind("127.0.0.1:0").expect("bind"),
        }
    }

    pub fn server(&self) -> String {
        format!(
            "127.0.0.1:{}",
            self.socket.local_addr().expect("addr").port()
        )
    }
}
