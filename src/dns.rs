//! DNS for mail authentication: one resolver and one small runtime per run, and one budget for
//! all of a message's DNS work.
//!
//! Contract: `[dns] servers` empty means the system resolver (/etc/resolv.conf); otherwise only
//! the servers named are asked. Whatever is asked through [`Dns::run`] ends within the budget
//! given to [`Dns::new`] (the caller gives `[dns] timeout`, cut to what is left of `[general]
//! deadline`): what has not been answered by then is simply not answered (`temperror` for the
//! caller), never a wait past the budget and never a lost message.

use crate::config::auth::Dns as DnsConfig;
use mail_auth::MessageAuthenticator;
use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// A resolver with its runtime and budget.
pub struct Dns {
    auth: MessageAuthenticator,
    rt: tokio::runtime::Runtime,
    /// The end of the budget: every [`Dns::run`] ends by then, however many there are.
    ends: Instant,
}

/// Parses one `[dns] servers` entry: `IP`, `IP:PORT` or `[IPv6]:PORT`.
pub fn server(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    s.parse::<SocketAddr>().map_err(|_| {
        format!("{s:?} is not an IP address or IP:PORT (e.g. \"127.0.0.1:5353\", \"[::1]:53\")")
    })
}

impl Dns {
    /// The resolver `cfg` names; `budget` bounds all of [`Dns::run`]'s work.
    pub fn new(cfg: &DnsConfig, budget: Duration) -> Result<Dns, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the DNS runtime: {e}"))?;
        let (config, mut opts) = if cfg.servers.is_empty() {
            mail_auth::hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| format!("cannot read the system resolver's configuration: {e}"))?
        } else {
            let mut servers = Vec::new();
            for s in &cfg.servers {
                let addr = server(s)?;
                let (mut udp, mut tcp) = (ConnectionConfig::udp(), ConnectionConfig::tcp());
                udp.port = addr.port();
                tcp.port = addr.port();
                servers.push(NameServerConfig::new(addr.ip(), true, vec![udp, tcp]));
            }
            (
                ResolverConfig::from_parts(None, vec![], servers),
                ResolverOpts::default(),
            )
        };
        // One query may take the whole budget; the budget itself ends everything.
        opts.timeout = budget.clamp(Duration::from_millis(100), Duration::from_secs(5));
        opts.attempts = 2;
        // No search domains: DKIM keys and _dmarc names are absolute.
        opts.ndots = 0;
        let auth = {
            let _enter = rt.enter();
            MessageAuthenticator::new(config, opts)
                .map_err(|e| format!("cannot build the resolver: {e}"))?
        };
        Ok(Dns {
            auth,
            rt,
            ends: Instant::now() + budget,
        })
    }

    pub fn authenticator(&self) -> &MessageAuthenticator {
        &self.auth
    }

    /// What is left of the budget.
    pub fn left(&self) -> Duration {
        self.ends.saturating_duration_since(Instant::now())
    }

    /// Runs several lookups at once: `work` builds them from what is left of the budget, each
    /// bounded by it inside the runtime (see [`bounded`]).
    pub fn run_all<F: std::future::Future>(&self, work: impl FnOnce(Duration) -> F) -> F::Output {
        let left = self.left();
        self.rt.block_on(work(left))
    }

    /// Runs `work` until it finishes or the budget is spent (`None`): the budget is shared by
    /// every call, so a run of calls ends by the budget's end too. The timeout is created
    /// inside the async block: outside it there is no reactor (CRATE-NOTES-2 §1).
    pub fn run<F: std::future::Future>(&self, work: F) -> Option<F::Output> {
        let left = self.left();
        if left.is_zero() {
            return None;
        }
        self.rt
            .block_on(async move { tokio::time::timeout(left, work).await.ok() })
    }
}

/// `check-config --ping`: one question to the resolver (`_dmarc.HOSTNAME` TXT); a negative
/// answer is an answer. Err says why none came within `[dns] timeout`.
pub fn ping(cfg: &DnsConfig, hostname: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let dns = Dns::new(cfg, cfg.timeout.0)?;
    let name = format!("_dmarc.{}.", hostname.trim_end_matches('.'));
    match dns.run(dns.authenticator().txt_raw_lookup(name.as_str())) {
        Some(Ok(_)) | Some(Err(mail_auth::Error::Dns(mail_auth::DnsError::RecordNotFound(_)))) => {
            Ok(started.elapsed())
        }
        Some(Err(e)) => Err(e.to_string()),
        None => Err(format!("no answer within {}", cfg.timeout)),
    }
}

/// `work` within `left`, to be awaited inside [`Dns::run_all`] (a timer needs the runtime).
pub async fn bounded<F: std::future::Future>(left: Duration, work: F) -> Option<F::Output> {
    if left.is_zero() {
        return None;
    }
    tokio::time::timeout(left, work).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_entries() {
        assert_eq!(
            server("127.0.0.1").unwrap(),
            "127.0.0.1:53".parse().unwrap()
        );
        assert_eq!(
            server("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(server("[::1]:53").unwrap(), "[::1]:53".parse().unwrap());
        assert!(server("ns.example").unwrap_err().contains("not an IP"));
    }

    #[test]
    fn a_server_that_never_answers_ends_within_the_budget() {
        // A UDP socket that reads nothing: every query waits.
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let cfg = DnsConfig {
            servers: vec![sock.local_addr().unwrap().to_string()],
            timeout: crate::config::units::Dur(Duration::from_millis(300)),
        };
        let dns = Dns::new(&cfg, Duration::from_millis(300)).unwrap();
        let t = std::time::Instant::now();
        let r = dns.run(async {
            dns.authenticator()
                .txt_raw_lookup("sel._domainkey.example.test.")
                .await
        });
        let took = t.elapsed();
        assert!(
            r.is_none() || r.is_some_and(|r| r.is_err()),
            "no answer expected"
        );
        assert!(took < Duration::from_millis(400), "took {took:?}");
        // The budget is spent: later work does not wait again.
        let t = std::time::Instant::now();
        assert!(dns.run(async { 1 }).is_none());
        assert!(t.elapsed() < Duration::from_millis(50));
    }
}
