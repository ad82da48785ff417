//! The SMTP AUTH scenario: Postfix's side of Dovecot's authentication protocol
//! spoken to keygate's SASL listener, as fast as it answers. Each connection
//! does the handshake once (as Postfix does per smtpd process), then sends
//! `AUTH … PLAIN` requests one after another with a good address and key.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one run measured: answered authentications, failures, seconds and
/// per-request latencies in microseconds.
pub struct Run {
    pub ok: usize,
    pub failed: usize,
    pub elapsed: f64,
    pub latencies_us: Vec<u32>,
}

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn open(addr: &str) -> std::io::Result<Client> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(15)))?;
        let mut c = Client {
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

    /// One PLAIN authentication; `true` for `OK`.
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

/// Drives `connections` clients for `duration` against the listener at `addr`.
pub fn run(addr: &str, connections: usize, duration: Duration, address: &str, key: &str) -> Run {
    let resp = STANDARD.encode(format!("\0{address}\0{key}"));
    let stop = Arc::new(AtomicBool::new(false));
    let all = Arc::new(Mutex::new((0usize, 0usize, Vec::new())));
    let start = Instant::now();
    let handles: Vec<_> = (0..connections)
        .map(|_| {
            let (stop, all, resp, addr) =
                (stop.clone(), all.clone(), resp.clone(), addr.to_string());
            std::thread::spawn(move || {
                let (mut ok, mut failed, mut lat) = (0, 0, Vec::with_capacity(100_000));
                let Ok(mut c) = Client::open(&addr) else {
                    all.lock().unwrap().1 += 1;
                    return;
                };
                let mut id = 1u64;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match c.auth(id, &resp) {
                        Ok(true) => {
                            ok += 1;
                            lat.push(t.elapsed().as_micros() as u32);
                        }
                        Ok(false) => failed += 1,
                        Err(_) => {
                            failed += 1;
                            break;
                        }
                    }
                    id += 1;
                }
                let mut a = all.lock().unwrap();
                a.0 += ok;
                a.1 += failed;
                a.2.extend(lat);
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (ok, failed, latencies_us) = std::mem::take(&mut *all.lock().unwrap());
    Run {
        ok,
        failed,
        elapsed,
        latencies_us,
    }
}
