//! The one DNS question keygate asks: the TXT records at a name, through
//! hickory-resolver (UDP, and TCP when an answer comes back truncated), from
//! the system's resolver or the server `KEYGATE_DNS_SERVER` names.
//!
//! A fresh resolver answers each question, so that a record published a
//! moment ago is not hidden by a negative answer cached before it.

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::rr::RData;
use hickory_resolver::Resolver;
use std::net::SocketAddr;
use std::time::Duration;

/// How long one query waits for its answer, and how many times it is sent:
/// a verification that gets no answer ends within about six seconds.
const TIMEOUT: Duration = Duration::from_secs(3);
const ATTEMPTS: usize = 1;
/// At most this many TXT strings are kept from one answer (a large answer is
/// still read whole over TCP; only what is shown back is bounded).
const MAX_VALUES: usize = 50;

/// Where the questions go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dns {
    /// `KEYGATE_DNS_SERVER`; `None` for the system's resolver (`/etc/resolv.conf`).
    pub server: Option<SocketAddr>,
}

/// What DNS answered about the TXT records at a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxtAnswer {
    /// The records, each one's strings joined (RFC 7208 §3.3 reads them so).
    Records(Vec<String>),
    /// The name does not exist, or holds no TXT record.
    NoRecords,
    /// No answer: a timeout, an error code such as SERVFAIL, a network fault.
    Failed(String),
}

impl Dns {
    pub fn from_config(config: &crate::config::Config) -> Dns {
        Dns {
            server: config.dns_server,
        }
    }

    fn resolver(&self) -> Result<Resolver<TokioRuntimeProvider>, String> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match self.server {
            Some(addr) => {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                let config = ResolverConfig::from_name_servers(vec![ns]);
                Resolver::builder_with_config(config, provider)
            }
            None => Resolver::builder(provider)
                .map_err(|e| format!("the system's resolver configuration cannot be read: {e}"))?,
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = TIMEOUT;
        opts.attempts = ATTEMPTS;
        opts.cache_size = 0;
        opts.ndots = 0;
        opts.edns0 = true;
        builder.build().map_err(|e| format!("no resolver: {e}"))
    }

    /// The TXT records at `name` (a fully qualified name, without the dot).
    pub async fn txt(&self, name: &str) -> TxtAnswer {
        let resolver = match self.resolver() {
            Ok(r) => r,
            Err(e) => return TxtAnswer::Failed(e),
        };
        match resolver.txt_lookup(format!("{name}.")).await {
            Ok(lookup) => {
                let values: Vec<String> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::TXT(txt) => Some(
                            txt.txt_data
                                .iter()
                                .map(|s| String::from_utf8_lossy(s).into_owned())
                                .collect::<String>(),
                        ),
                        _ => None,
                    })
                    .take(MAX_VALUES)
                    .collect();
                if values.is_empty() {
                    TxtAnswer::NoRecords
                } else {
                    TxtAnswer::Records(values)
                }
            }
            Err(e) => failure(e),
        }
    }

    /// [`Dns::txt`] from synchronous code (the CLI, the background task),
    /// on a runtime of its own.
    pub fn txt_blocking(&self, name: &str) -> TxtAnswer {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        match rt {
            Ok(rt) => rt.block_on(self.txt(name)),
            Err(e) => TxtAnswer::Failed(format!("no runtime for the lookup: {e}")),
        }
    }
}

/// An error of the lookup in words.
fn failure(e: NetError) -> TxtAnswer {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(_)) => TxtAnswer::NoRecords,
        NetError::Dns(DnsError::ResponseCode(code)) => {
            let code = format!("{code:?}").to_uppercase();
            TxtAnswer::Failed(format!("it answered with the error {code}"))
        }
        NetError::Timeout => TxtAnswer::Failed("it did not answer (timed out)".into()),
        e => TxtAnswer::Failed(format!("it could not be asked ({e})")),
    }
}
