//! A minimal HTTP/1.1 keep-alive client: the load generator must cost as
//! little as possible, since it shares the machine with the server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

pub struct Conn {
    stream: BufReader<TcpStream>,
    addr: String,
}

pub struct Reply {
    /// 0 when no answer came (the connection failed twice).
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value of the cookie `name` the reply sets.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .find_map(|(_, v)| {
                v.strip_prefix(&prefix)
                    .map(|v| v.split(';').next().unwrap_or("").to_string())
            })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

impl Conn {
    pub fn open(addr: &str) -> std::io::Result<Conn> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true).ok();
        Ok(Conn {
            stream: BufReader::new(s),
            addr: addr.to_string(),
        })
    }

    /// Sends one request and reads its reply; a connection the server closed
    /// (after an error response) is opened again once. A request that fails
    /// again is answered with status 0.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        if let Ok(r) = self.try_send(method, path, headers, body) {
            return r;
        }
        let again = Conn::open(&self.addr.clone()).and_then(|c| {
            *self = c;
            self.try_send(method, path, headers, body)
        });
        again.unwrap_or(Reply {
            status: 0,
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    fn try_send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<Reply> {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(k);
            req.push_str(": ");
            req.push_str(v);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.stream.get_mut().write_all(req.as_bytes())?;
        let mut line = String::new();
        if self.stream.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("closed"));
        }
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut headers = Vec::new();
        let mut len = 0usize;
        loop {
            line.clear();
            self.stream.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
                headers.push((k.to_string(), v.trim().to_string()));
            }
        }
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body)?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

/// `application/x-www-form-urlencoded` of `pairs`.
pub fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The `Content-Type` header of a form POST.
pub const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
