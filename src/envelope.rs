//! The SMTP envelope as the MTA hands it to us in argv.
//!
//! Contract: the sender may be empty (the null sender, for bounces) and stays empty on
//! reinjection. Addresses are kept exactly as given (a recipient may start with `-`: it is always
//! passed after `--`). An address with CR, LF or NUL is refused before it can reach any header
//! field or log line we write.

use std::fmt;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Empty for the null sender `<>`.
    pub sender: String,
    pub recipients: Vec<String>,
    /// The SMTP client the MTA received the message from, when it told us.
    pub client: Client,
    /// The MTA's queue id (`--queue-id`), cleaned as for the log; for the next hop's log.
    pub queue_id: Option<String>,
    /// The sender's RFC 3461 envelope id (`--envid`), for the next hop's DSNs.
    pub envid: Option<String>,
    /// The policy bank of this run (`--policy`, chosen by the master.cf transport), for the
    /// SQL message log (msgs.policy, msgs.originating).
    pub bank: Option<String>,
    /// Each recipient as it was before rewriting (`--original-recipient`), in the order of
    /// `recipients`; empty when not given.
    pub original_recipients: Vec<String>,
}

/// What the MTA knows of the SMTP client (Postfix pipe(8): `${client_address}`,
/// `${client_hostname}`, `${client_helo}`, `${client_protocol}`, `${sasl_username}`; Sendmail:
/// `${client_addr}`, `${client_name}`, `$s`, `$r`, `${auth_authen}`).
/// Each is `None` when not given, given empty, or (for the address) `unknown` or unparsable:
/// locally submitted mail has no client, and that is never a reason to defer it. SPF, XFORWARD
/// and the choice of the ORIGINATING bank read it; nothing in the message can set it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    pub address: Option<IpAddr>,
    /// The client's host name as the MTA verified it (`unknown` when it had none: `None`).
    pub name: Option<String>,
    pub helo: Option<String>,
    /// The protocol the MTA received the message with (`ESMTP`, `SMTP`, ...).
    pub protocol: Option<String>,
    pub sasl_username: Option<String>,
}

/// The client options as given on the command line, any of them missing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Given<'a> {
    pub address: Option<&'a str>,
    pub name: Option<&'a str>,
    pub helo: Option<&'a str>,
    pub protocol: Option<&'a str>,
    pub sasl_username: Option<&'a str>,
}

impl Client {
    /// From the raw option values. An address may carry Sendmail's `IPv6:` prefix or
    /// brackets; anything else unparsable is dropped (the caller may log `warnings`).
    pub fn new(given: Given) -> (Client, Vec<String>) {
        let mut warnings = Vec::new();
        let address = given
            .address
            .map(str::trim)
            .filter(|a| known(a))
            .and_then(|a| {
                let bare = a.trim_start_matches('[').trim_end_matches(']');
                let bare = bare
                    .strip_prefix("IPv6:")
                    .or_else(|| bare.strip_prefix("ipv6:"))
                    .unwrap_or(bare);
                match bare.parse::<IpAddr>() {
                    Ok(ip) => Some(ip),
                    Err(_) => {
                        warnings.push(format!(
                            "--client-address {:?} is not an IP address: ignored",
                            a.escape_debug().to_string()
                        ));
                        None
                    }
                }
            });
        let text = |what: &str, v: Option<&str>, warnings: &mut Vec<String>| {
            let v = v.map(str::trim).filter(|v| known(v))?;
            if v.len() > 255 || v.chars().any(|c| c.is_control() || c.is_whitespace()) {
                warnings.push(format!("{what} is not a usable name: ignored"));
                return None;
            }
            Some(v.to_string())
        };
        let name = text("--client-name", given.name, &mut warnings);
        let helo = text("--helo", given.helo, &mut warnings);
        let protocol = text("--client-protocol", given.protocol, &mut warnings);
        let sasl_username = text("--sasl-username", given.sasl_username, &mut warnings);
        (
            Client {
                address,
                name,
                helo,
                protocol,
                sasl_username,
            },
            warnings,
        )
    }
}

/// Empty or Postfix's/Sendmail's placeholder for "no such client": not given.
fn known(v: &str) -> bool {
    !v.is_empty() && !v.eq_ignore_ascii_case("unknown")
}

/// An envelope argument we cannot use: exit 65 (`5.1.3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadAddress(pub String);

impl fmt::Display for BadAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Envelope {
    pub fn new(sender: String, recipients: Vec<String>) -> Result<Envelope, BadAddress> {
        check("sender", &sender, true)?;
        for r in &recipients {
            check("recipient", r, false)?;
        }
        Ok(Envelope {
            sender,
            recipients,
            client: Client::default(),
            queue_id: None,
            envid: None,
            bank: None,
            original_recipients: Vec::new(),
        })
    }

    /// The same envelope, received from `client`.
    pub fn with_client(self, client: Client) -> Envelope {
        Envelope { client, ..self }
    }

    /// The same envelope, with the sender's DSN envelope id. RFC 3461 allows 100 printable
    /// ASCII characters (Postfix's smtpd refuses anything else with 501): anything else is
    /// dropped with a warning for the log, never a reason to defer.
    pub fn with_envid(self, envid: Option<&str>) -> (Envelope, Option<String>) {
        let (envid, warning) = match envid.filter(|e| !e.is_empty()) {
            None => (None, None),
            Some(e) if e.len() <= 100 && e.bytes().all(|b| (b' '..=b'~').contains(&b)) => {
                (Some(e.to_string()), None)
            }
            Some(e) => (
                None,
                Some(format!(
                    "--envid {:?} is not an RFC 3461 envelope id (100 printable ASCII characters at most): not passed on",
                    e.escape_debug().to_string()
                )),
            ),
        };
        (Envelope { envid, ..self }, warning)
    }

    /// The same envelope, with each recipient's address before rewriting (Postfix's
    /// `${original_recipient}`, one per recipient in the same order). A list that does not pair
    /// up with the recipients, or an address we would refuse as a recipient, drops them all with
    /// a warning: pairing them wrongly would put one recipient's address into another's DSN.
    pub fn with_original_recipients(self, given: Vec<String>) -> (Envelope, Option<String>) {
        if given.is_empty() {
            return (self, None);
        }
        let problem = if given.len() != self.recipients.len() {
            Some(format!(
                "{} --original-recipient for {} recipients",
                given.len(),
                self.recipients.len()
            ))
        } else {
            given
                .iter()
                .find_map(|a| check("original recipient", a, false).err())
                .map(|e| e.0)
        };
        match problem {
            Some(p) => (self, Some(format!("{p}: not passed on (no ORCPT)"))),
            None => (
                Envelope {
                    original_recipients: given,
                    ..self
                },
                None,
            ),
        }
    }

    /// The address `recipient` had before rewriting, when the MTA said.
    pub fn original_recipient(&self, recipient: &str) -> Option<&str> {
        let i = self.recipients.iter().position(|r| r == recipient)?;
        self.original_recipients.get(i).map(String::as_str)
    }

    /// The same envelope, with the MTA's queue id (already cleaned; empty is none).
    pub fn with_queue_id(self, queue_id: Option<String>) -> Envelope {
        Envelope {
            queue_id: queue_id.filter(|q| !q.is_empty()),
            ..self
        }
    }

    /// The same envelope, with the run's policy bank (for the SQL message log).
    pub fn with_bank(self, bank: Option<&str>) -> Envelope {
        Envelope {
            bank: bank.map(str::to_string),
            ..self
        }
    }

    #[cfg(test)]
    pub fn null_sender(&self) -> bool {
        self.sender.is_empty()
    }
}

fn check(what: &str, addr: &str, may_be_empty: bool) -> Result<(), BadAddress> {
    if addr.is_empty() && !may_be_empty {
        return Err(BadAddress(format!("empty {what} address")));
    }
    if let Some(c) = addr.chars().find(|c| c.is_control()) {
        return Err(BadAddress(format!(
            "{what} address {:?} contains the control character {:?}",
            addr.escape_debug().to_string(),
            c
        )));
    }
    if addr.len() > 998 {
        return Err(BadAddress(format!(
            "{what} address is longer than 998 bytes"
        )));
    }
    Ok(())
}

/// `<addr>` as in log lines; `<>` for the null sender.
pub struct Angle<'a>(pub &'a str);

impl fmt::Display for Angle<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.0)
    }
}

/// One `[lists] mynetworks` entry: an address or a CIDR block (`192.0.2.0/24`, `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u32,
}

impl Network {
    pub fn parse(s: &str) -> Result<Network, String> {
        let bad = || format!("{s:?} is not an IP address or CIDR block (e.g. \"192.0.2.0/24\")");
        let (a, p) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = a
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .parse::<u32>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(bad)?,
            None => max,
        };
        Ok(Network { addr, prefix })
    }

    /// A /0 block: every address of its family.
    pub fn is_every_address(&self) -> bool {
        self.prefix == 0
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client seen as ::ffff:a.b.c.d is that IPv4 client.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let (a, b, bits) = match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                (u128::from(u32::from(n)), u128::from(u32::from(i)), 32)
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
            _ => return false,
        };
        if self.prefix == 0 {
            return true;
        }
        let shift = bits - self.prefix;
        a >> shift == b >> shift
    }
}

impl Client {
    /// The client is ours: SASL-authenticated, or its address is in `networks`
    /// (`[lists] mynetworks`; entries that do not parse were refused by check-config).
    pub fn originating(&self, networks: &[String]) -> bool {
        self.sasl_username.is_some()
            || self.address.is_some_and(|ip| {
                networks
                    .iter()
                    .filter_map(|n| Network::parse(n).ok())
                    .any(|n| n.contains(ip))
            })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn networks() {
        use super::Network;
        let n = Network::parse("192.0.2.0/24").unwrap();
        assert!(n.contains("192.0.2.77".parse().unwrap()));
        assert!(n.contains("::ffff:192.0.2.1".parse().unwrap()));
        assert!(!n.contains("192.0.3.1".parse().unwrap()));
        assert!(
            Network::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            Network::parse("2001:db8::/32")
                .unwrap()
                .contains("2001:db8:1::5".parse().unwrap())
        );
        assert!(
            Network::parse("10.1.2.3")
                .unwrap()
                .contains("10.1.2.3".parse().unwrap())
        );
        assert!(Network::parse("10.0.0.0/33").is_err());
        assert!(Network::parse("example.org").is_err());
        let c = super::Client::new(super::Given {
            address: Some("10.1.2.3"),
            ..Default::default()
        })
        .0;
        assert!(c.originating(&["10.0.0.0/8".into()]));
        assert!(!c.originating(&["192.0.2.0/24".into()]));
        assert!(
            super::Client::new(super::Given {
                sasl_username: Some("alice"),
                ..Default::default()
            })
            .0
            .originating(&[])
        );
    }

    use super::*;

    #[test]
    fn client_values_as_postfix_and_sendmail_give_them() {
        let g = |address, helo, sasl_username| Given {
            address,
            helo,
            sasl_username,
            ..Given::default()
        };
        let (c, w) = Client::new(Given {
            address: Some("192.0.2.7"),
            name: Some("mx.example.net"),
            helo: Some("mx.example.net"),
            protocol: Some("ESMTP"),
            sasl_username: Some("alice"),
        });
        assert_eq!(c.address, Some("192.0.2.7".parse().unwrap()));
        assert_eq!(c.name.as_deref(), Some("mx.example.net"));
        assert_eq!(c.helo.as_deref(), Some("mx.example.net"));
        assert_eq!(c.protocol.as_deref(), Some("ESMTP"));
        assert_eq!(c.sasl_username.as_deref(), Some("alice"));
        assert!(w.is_empty());
        let (c, _) = Client::new(g(Some("IPv6:2001:db8::1"), None, None));
        assert_eq!(c.address, Some("2001:db8::1".parse().unwrap()));
        let (c, _) = Client::new(g(Some("[198.51.100.1]"), None, None));
        assert_eq!(c.address, Some("198.51.100.1".parse().unwrap()));
        // Local submission: Postfix expands the macros to nothing, the name to "unknown".
        let (c, w) = Client::new(Given {
            address: Some(""),
            name: Some("unknown"),
            helo: Some(""),
            protocol: Some(""),
            sasl_username: Some(""),
        });
        assert_eq!(c, Client::default());
        assert!(w.is_empty());
        let (c, w) = Client::new(g(Some("unknown"), Some("bad helo"), Some("x\ny")));
        assert_eq!(c, Client::default());
        assert_eq!(w.len(), 2, "{w:?}");
        let (c, w) = Client::new(g(Some("not-an-ip"), None, None));
        assert_eq!(c.address, None);
        assert!(w[0].contains("not an IP address"), "{w:?}");
    }

    #[test]
    fn an_envid_is_kept_only_as_rfc_3461_allows_it() {
        let e = || Envelope::new("s@x".into(), vec!["r@x".into()]).unwrap();
        let (env, w) = e().with_envid(Some("QQ314159 +=x"));
        assert_eq!((env.envid.as_deref(), w), (Some("QQ314159 +=x"), None));
        assert_eq!(e().with_envid(Some("")).0.envid, None);
        for bad in ["caf\u{e9}", "a\nb", &"x".repeat(101)] {
            let (env, w) = e().with_envid(Some(bad));
            assert_eq!(env.envid, None, "{bad:?}");
            assert!(w.is_some_and(|w| w.contains("not passed on")), "{bad:?}");
        }
    }

    #[test]
    fn original_recipients_pair_with_the_recipients_or_not_at_all() {
        let e = || Envelope::new("s@x".into(), vec!["a@x".into(), "b@x".into()]).unwrap();
        let (env, w) = e().with_original_recipients(vec!["A@old".into(), "b@x".into()]);
        assert_eq!(w, None);
        assert_eq!(env.original_recipient("a@x"), Some("A@old"));
        assert_eq!(env.original_recipient("b@x"), Some("b@x"));
        assert_eq!(env.original_recipient("c@x"), None);
        let (env, w) = e().with_original_recipients(vec!["A@old".into()]);
        assert!(env.original_recipients.is_empty());
        assert!(w.is_some_and(|w| w.contains("1 --original-recipient for 2 recipients")));
        let (env, w) = e().with_original_recipients(vec!["a@x".into(), "b@x\r\nBcc: c@y".into()]);
        assert!(env.original_recipients.is_empty());
        assert!(w.is_some_and(|w| w.contains("control character")));
        assert_eq!(e().with_original_recipients(Vec::new()).1, None);
    }

    #[test]
    fn null_sender_and_dash_recipients_are_fine() {
        let e = Envelope::new(String::new(), vec!["-oQ/tmp/x@example.com".into()]).unwrap();
        assert!(e.null_sender());
        assert_eq!(e.recipients, ["-oQ/tmp/x@example.com"]);
    }

    #[test]
    fn control_characters_are_refused() {
        for bad in ["a@b\r\nBcc: x@y", "a\0@b", "a\n@b"] {
            assert!(
                Envelope::new("s@x".into(), vec![bad.into()]).is_err(),
                "{bad:?}"
            );
            assert!(
                Envelope::new(bad.into(), vec!["r@x".into()]).is_err(),
                "{bad:?}"
            );
        }
        assert!(Envelope::new("s@x".into(), vec![String::new()]).is_err());
    }
}
