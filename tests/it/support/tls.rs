//! TLS for tests: a throwaway CA and server certificate (rcgen), and a small
//! blocking HTTPS client that trusts it (the provider's side of a sign-in).

/// A throwaway CA and a certificate for `127.0.0.1`, `::1` and `localhost`
/// signed by it.
pub struct Issued {
    pub ca_pem: String,
    pub ca_der: Vec<u8>,
    pub leaf_der: Vec<u8>,
    /// The server certificate, then the CA's (PEM).
    pub chain_pem: String,
    pub key_der: Vec<u8>,
    pub key_pem: String,
    /// base64 of the SHA-256 of the server key's SubjectPublicKeyInfo, as
    /// Chromium's `--ignore-certificate-errors-spki-list` takes it.
    pub spki_sha256: String,
}

pub fn issue() -> Issued {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "keygate test CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");

    let leaf_key = rcgen::KeyPair::generate().expect("server key");
    let mut leaf_params = rcgen::CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "::1".to_string(),
        "localhost".to_string(),
    ])
    .expect("server params");
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    let leaf = leaf_params
        .signed_by(&leaf_key, &*ca)
        .expect("server certificate");
    Issued {
        ca_pem: ca.pem(),
        ca_der: ca.der().to_vec(),
        leaf_der: leaf.der().to_vec(),
        chain_pem: format!("{}{}", leaf.pem(), ca.pem()),
        key_der: leaf_key.serialize_der(),
        key_pem: leaf_key.serialize_pem(),
        spki_sha256: {
            use base64::Engine;
            use sha2::Digest;
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(
                rcgen::PublicKeyData::subject_public_key_info(&leaf_key),
            ))
        },
    }
}

/// A blocking HTTPS client that trusts one CA and keeps its own cookies:
/// the person's browser on the identity provider's side of a sign-in.
pub struct TlsAgent {
    tls: std::sync::Arc<rustls::ClientConfig>,
    cookies: Vec<(String, String)>,
}

impl TlsAgent {
    pub fn new(ca_pem: &str) -> TlsAgent {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("add the test CA");
        }
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsAgent {
            tls: std::sync::Arc::new(tls),
            cookies: Vec::new(),
        }
    }

    /// One request (`Connection: close`); a form body is sent url-encoded.
    pub fn request(&mut self, method: &str, url: &str, form: Option<&str>) -> super::Resp {
        use std::io::{Read, Write};
        let u = url::Url::parse(url).expect("an absolute URL");
        let host = u.host_str().expect("host").to_string();
        let port = u.port_or_known_default().expect("port");
        let name = rustls::pki_types::ServerName::try_from(host.clone()).expect("server name");
        let conn = rustls::ClientConnection::new(self.tls.clone(), name).expect("TLS");
        let tcp = std::net::TcpStream::connect((host.as_str(), port)).expect("connect");
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .expect("timeout");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let target = &u[url::Position::BeforePath..url::Position::AfterQuery];
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nAccept: text/html\r\n");
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            head.push_str(&format!("Cookie: {}\r\n", c.join("; ")));
        }
        let body = form.unwrap_or("");
        if form.is_some() {
            head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        tls.write_all(head.as_bytes()).expect("send");
        let mut raw = Vec::new();
        // A peer that closes without close_notify ends the body too.
        let _ = tls.read_to_end(&mut raw);
        self.parse(&raw)
    }

    fn parse(&mut self, raw: &[u8]) -> super::Resp {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a response head");
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("a status");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        for (k, v) in &headers {
            if k.eq_ignore_ascii_case("set-cookie") {
                if let Some((n, val)) = v.split(';').next().unwrap_or("").split_once('=') {
                    self.cookies.retain(|(c, _)| c != n);
                    if !val.is_empty() {
                        self.cookies.push((n.to_string(), val.to_string()));
                    }
                }
            }
        }
        let mut body = raw[split + 4..].to_vec();
        let chunked = headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
        });
        if chunked {
            body = dechunk(&body);
        }
        super::Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&body).to_string(),
        }
    }

    /// Follows redirects from `url` while they stay on `url`'s origin; at the
    /// provider's login page signs in as `account` (its dev login form), at
    /// its consent page continues. Returns the first redirect that leaves
    /// the provider (keygate's callback).
    pub fn sign_in_at_provider(&mut self, url: &str, account: &str) -> String {
        let origin = url::Url::parse(url).expect("URL").origin();
        let mut next = url.to_string();
        for _ in 0..12 {
            let r = self.request("GET", &next, None);
            let r = if r.status == 200 {
                self.submit_interaction(&next, &r.body, account)
            } else {
                r
            };
            assert!(
                (300..400).contains(&r.status),
                "the provider answered {} at {next}: {}",
                r.status,
                r.body
            );
            let to = url::Url::parse(&next)
                .expect("URL")
                .join(&r.location())
                .expect("a Location");
            if to.origin() != origin {
                return to.to_string();
            }
            next = to.to_string();
        }
        panic!("the provider never sent the person back")
    }

    /// Posts the dev interaction form of the page at `url` (login or consent).
    fn submit_interaction(&mut self, url: &str, page: &str, account: &str) -> super::Resp {
        let prompt = super::hidden(page, "prompt")
            .unwrap_or_else(|| panic!("no interaction form at {url}: {page}"));
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("prompt", &prompt)
            .append_pair("login", account)
            .append_pair("password", "any")
            .finish();
        self.request("POST", url, Some(&form))
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&body[..eol])
                .split(';')
                .next()
                .unwrap_or("")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 || body.len() < eol + 2 + size {
            return out;
        }
        out.extend_from_slice(&body[eol + 2..eol + 2 + size]);
        body = &body[(eol + 4 + size).min(body.len())..];
    }
}
