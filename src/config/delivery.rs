//! The delivery sections: `[reinject]`, `[quarantine]` (with the check of its templates) and
//! `[notify]`. Leaf types: `act` imports them, they import nothing of `act`.

use crate::config::units::Dur;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// What to do when the reinjection command fails for good (exit 65, 66, 67, 68, 69 or 77).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HardFailure {
    /// Exit 75: the MTA keeps the message and retries (default: nothing is lost).
    Tempfail,
    /// Exit 69 with sendmail's reason: the MTA bounces the message.
    Bounce,
}

/// `[reinject] tls`: TLS towards an SMTP or LMTP server (Postfix's smtp_tls_security_level
/// names; see `act::courier::tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsLevel {
    /// `none` on this machine (unix socket, loopback, localhost), `verify` for any other server.
    Auto,
    /// Plaintext.
    None,
    /// STARTTLS when offered, certificate not checked; plaintext when not offered.
    May,
    /// STARTTLS required, certificate and name checked; never plaintext.
    Verify,
}

impl TlsLevel {
    /// The word the configuration uses.
    pub fn name(self) -> &'static str {
        match self {
            TlsLevel::Auto => "auto",
            TlsLevel::None => "none",
            TlsLevel::May => "may",
            TlsLevel::Verify => "verify",
        }
    }
}

/// The system's CA bundle (Debian's ca-certificates).
pub const CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Reinject {
    /// How copies leave: "sendmail" (the command), "smtp:HOST:PORT", "lmtp:unix:/PATH",
    /// "lmtp:HOST:PORT", or "smtp"/"lmtp" with `servers`.
    pub method: String,
    /// The servers for `method = "smtp"` or `"lmtp"`, tried in order until one takes the message.
    pub servers: Vec<String>,
    /// The submission command; pipescan appends `-f SENDER -- RCPT...`. Run without a shell.
    pub command: Vec<String>,
    pub on_hard_failure: HardFailure,
    /// How long one SMTP or LMTP delivery (every server tried, connect to QUIT) may take.
    pub timeout: Dur,
    /// STARTTLS towards the SMTP/LMTP servers: "auto" (default), "none", "may", "verify".
    pub tls: TlsLevel,
    /// The trust anchors (PEM) for `tls = "verify"`.
    pub tls_ca_file: PathBuf,
}

impl Default for Reinject {
    fn default() -> Self {
        Reinject {
            method: "sendmail".into(),
            servers: Vec::new(),
            command: vec!["/usr/sbin/sendmail".into(), "-i".into()],
            on_hard_failure: HardFailure::Tempfail,
            timeout: Dur(Duration::from_secs(300)),
            tls: TlsLevel::Auto,
            tls_ca_file: PathBuf::from(CA_FILE),
        }
    }
}

/// The delivery method `[reinject] method` (and `servers`) names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Sendmail,
    /// SMTP servers, in failover order, as `host:port` for `scan::wire::ServerAddr` (a
    /// bracketed IPv4 address loses its brackets: `[127.0.0.1]:10025` is `127.0.0.1:10025`).
    Smtp(Vec<String>),
    /// LMTP servers, in failover order, as for `Smtp`, or an absolute unix socket path
    /// (`unix:/run/dovecot/lmtp` is `/run/dovecot/lmtp`).
    Lmtp(Vec<String>),
}

impl Reinject {
    /// The method, or what is wrong with it as (key, reason).
    pub fn method(&self) -> Result<Method, (String, String)> {
        fn bad<T>(key: &str, why: String) -> Result<T, (String, String)> {
            Err((format!("reinject.{key}"), why))
        }
        const WANT: &str = "want \"sendmail\", \"smtp:[127.0.0.1]:10025\", \"smtp:host:port\", \"lmtp:unix:/path/to/socket\", \"lmtp:[127.0.0.1]:24\", \"lmtp:host:port\", or \"smtp\" or \"lmtp\" with reinject.servers";
        let m = self.method.as_str();
        let (proto, one) = match m.split_once(':') {
            Some((p @ ("smtp" | "lmtp"), rest)) => (p, Some(rest)),
            _ => (m, None),
        };
        let server = |s: &str| match proto {
            "lmtp" => lmtp_server(s),
            _ => smtp_server(s),
        };
        let wrap = |v: Vec<String>| match proto {
            "lmtp" => Method::Lmtp(v),
            _ => Method::Smtp(v),
        };
        match (proto, one) {
            ("sendmail", None) if self.servers.is_empty() => Ok(Method::Sendmail),
            ("sendmail", None) => bad(
                "servers",
                "is for method = \"smtp\" or \"lmtp\" only (method is \"sendmail\")".into(),
            ),
            ("smtp" | "lmtp", None) if self.servers.is_empty() => bad(
                "method",
                format!(
                    "{proto:?} needs reinject.servers, or name one server: \"{proto}:[127.0.0.1]:{}\"",
                    if proto == "lmtp" { 24 } else { 10025 }
                ),
            ),
            ("smtp" | "lmtp", None) => {
                let mut v = Vec::new();
                for s in &self.servers {
                    v.push(server(s).or_else(|e| bad("servers", e))?);
                }
                Ok(wrap(v))
            }
            (_, Some(_)) if !self.servers.is_empty() => bad(
                "servers",
                format!("conflicts with method = {m:?}: name the servers in one place"),
            ),
            (_, Some(s)) => Ok(wrap(vec![server(s).or_else(|e| bad("method", e))?])),
            _ => bad("method", format!("unknown method {m:?} ({WANT})")),
        }
    }
}

/// One LMTP server: "unix:/absolute/path" (a unix socket, e.g. Dovecot's
/// /run/dovecot/lmtp), or "[IP]:PORT" / "host:port" as for [`smtp_server`].
pub fn lmtp_server(s: &str) -> Result<String, String> {
    if let Some(path) = s.strip_prefix("unix:") {
        if !path.starts_with('/') || path.contains('\0') || path.len() < 2 {
            return Err(format!(
                "LMTP server {s:?}: want an absolute socket path, unix:/run/dovecot/lmtp"
            ));
        }
        return Ok(path.to_string());
    }
    smtp_server(s).map_err(|e| {
        format!(
            "LMTP{} (or unix:/path/to/socket)",
            e.strip_prefix("SMTP").unwrap_or(&e)
        )
    })
}

/// One SMTP server, "[IP]:PORT" (Postfix's notation: an address, no MX lookup) or
/// "host:port" (its A/AAAA records; we never look up MX records), as a `ServerAddr` string.
pub fn smtp_server(s: &str) -> Result<String, String> {
    let want = "want [127.0.0.1]:10025, [::1]:10025 or host:port";
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("SMTP server {s:?} has no port ({want})"));
    };
    let addr = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ip) => match ip.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(v4)) => format!("{v4}:{port}"),
            Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
            Err(_) => return Err(format!("SMTP server {s:?}: {ip:?} is not an IP address")),
        },
        None if host.starts_with('/') || host.is_empty() => {
            return Err(format!("SMTP server {s:?} has no host ({want})"));
        }
        None => s.to_string(),
    };
    match addr.parse::<crate::scan::wire::ServerAddr>() {
        Ok(_) => Ok(addr),
        Err(e) => Err(format!("SMTP server {s:?}: {e}")),
    }
}

/// Where blocked mail is kept (see pipescan.toml(5) for the templates).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quarantine {
    /// Where copies are kept: "file" (in `directory`) or "sql" (amavisd's quarantine table in
    /// the [sql] database, shared by every host using it; `directory` is then not used).
    pub method: QuarantineMethod,
    /// The quarantine directory; "" = no quarantine files.
    pub directory: PathBuf,
    /// File name template; must contain %m. A name ending in .gz is gzip-compressed.
    pub filename: String,
    /// Subdirectory template for sharding (e.g. "%P" or "%s"); "" = none.
    pub subdirectory: String,
    /// Also (or instead) send the quarantined copy to this mailbox, from the null sender.
    pub address: String,
    /// Which categories are quarantined.
    pub virus: bool,
    pub banned: bool,
    pub unchecked: bool,
    pub spam: bool,
    pub bad_header: bool,
    /// `pipescan quarantine expire` removes files older than this (the daily job).
    pub max_age: Dur,
}

impl Default for Quarantine {
    fn default() -> Self {
        Quarantine {
            method: QuarantineMethod::File,
            directory: PathBuf::from("/var/lib/pipescan/quarantine"),
            filename: "%c-%m".into(),
            subdirectory: String::new(),
            address: String::new(),
            virus: true,
            banned: true,
            unchecked: false,
            spam: false,
            bad_header: false,
            max_age: Dur(Duration::from_secs(30 * 86_400)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuarantineMethod {
    File,
    Sql,
}

/// Checks templates at config time: the file name must contain %m (release finds files by
/// id) and must not contain a slash; placeholders must be known (those `act::quarantine::expand`
/// replaces).
pub fn validate_quarantine(q: &Quarantine) -> Result<(), (String, String)> {
    let known = |t: &str| {
        let mut it = t.chars();
        while let Some(c) = it.next() {
            if c == '%'
                && !matches!(
                    it.next(),
                    Some('m' | 'c' | 'i' | 'P' | 'b' | 'n' | 's' | '%')
                )
            {
                return false;
            }
        }
        true
    };
    if !q.filename.contains("%m") || q.filename.contains('/') {
        return Err((
            "quarantine.filename".into(),
            "must contain %m (the mail id) and no slash".into(),
        ));
    }
    if !known(&q.filename) {
        return Err(("quarantine.filename".into(), "unknown % placeholder".into()));
    }
    if !known(&q.subdirectory) || q.subdirectory.contains("..") || q.subdirectory.starts_with('/') {
        return Err((
            "quarantine.subdirectory".into(),
            "must be relative to the directory: no leading '/', no '..', known placeholders only"
                .into(),
        ));
    }
    if q.max_age.0 < Duration::from_secs(60) {
        return Err((
            "quarantine.max_age".into(),
            "must be at least 1m: the daily expiry would remove what was just quarantined".into(),
        ));
    }
    Ok(())
}

/// Notifications about blocked mail (all off by default but the admin ones you set).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Notify {
    /// Admin addresses per category; "" = no notice.
    pub virus_admin: String,
    pub banned_admin: String,
    pub spam_admin: String,
    pub bad_header_admin: String,
    /// Tell recipients who did not get a virus / banned message (amavisd's warn*recip).
    pub warn_virus_recipient: bool,
    pub warn_banned_recipient: bool,
    /// Tell the sender that the message was blocked (never for viruses, bulk mail or the null
    /// sender; off by default: backscatter).
    pub warn_sender: bool,
    /// Template files replacing the built-in texts; "" = built-in.
    pub admin_template: String,
    pub recipient_template: String,
    pub sender_template: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_method_is_parsed_with_errors_naming_the_key() {
        let r = |m: &str, servers: &[&str]| Reinject {
            method: m.into(),
            servers: servers.iter().map(|s| s.to_string()).collect(),
            ..Reinject::default()
        };
        assert_eq!(Reinject::default().method(), Ok(Method::Sendmail));
        assert_eq!(
            r("smtp:[127.0.0.1]:10025", &[]).method(),
            Ok(Method::Smtp(vec!["127.0.0.1:10025".into()]))
        );
        assert_eq!(
            r("smtp", &["[::1]:10025", "relay.example.org:25"]).method(),
            Ok(Method::Smtp(vec![
                "[::1]:10025".into(),
                "relay.example.org:25".into()
            ]))
        );
        let key = |m: &str, s: &[&str]| r(m, s).method().unwrap_err();
        assert_eq!(key("lmtp:", &[]).0, "reinject.method");
        assert!(key("sendmal", &[]).1.contains("unknown method \"sendmal\""));
        assert_eq!(key("smtp", &[]).0, "reinject.method");
        assert_eq!(key("sendmail", &["[127.0.0.1]:25"]).0, "reinject.servers");
        assert_eq!(
            key("smtp:[127.0.0.1]:1", &["[127.0.0.1]:2"]).0,
            "reinject.servers"
        );
        assert_eq!(key("smtp", &["[127.0.0.1]:0"]).0, "reinject.servers");
        for bad in [
            "smtp:[127.0.0.1]",
            "smtp:[localhost]:25",
            "smtp:127.0.0.1:x",
            "smtp:/run/x.sock",
            "smtp::25",
            "smtp:[::1:25",
        ] {
            let (k, why) = key(bad, &[]);
            assert_eq!(k, "reinject.method", "{bad}: {why}");
            assert!(why.contains("SMTP server"), "{bad}: {why}");
        }
    }

    #[test]
    fn lmtp_methods_are_parsed_with_errors_naming_the_key() {
        let r = |m: &str, servers: &[&str]| Reinject {
            method: m.into(),
            servers: servers.iter().map(|s| s.to_string()).collect(),
            ..Reinject::default()
        };
        assert_eq!(
            r("lmtp:unix:/run/dovecot/lmtp", &[]).method(),
            Ok(Method::Lmtp(vec!["/run/dovecot/lmtp".into()]))
        );
        assert_eq!(
            r("lmtp:[127.0.0.1]:24", &[]).method(),
            Ok(Method::Lmtp(vec!["127.0.0.1:24".into()]))
        );
        assert_eq!(
            r("lmtp", &["unix:/run/a", "mail.example.org:24"]).method(),
            Ok(Method::Lmtp(vec![
                "/run/a".into(),
                "mail.example.org:24".into()
            ]))
        );
        let key = |m: &str, s: &[&str]| r(m, s).method().unwrap_err();
        let (k, why) = key("lmtp", &[]);
        assert_eq!(k, "reinject.method");
        assert!(why.contains("\"lmtp\" needs reinject.servers"), "{why}");
        assert_eq!(key("lmtp", &["unix:run/x"]).0, "reinject.servers");
        assert_eq!(key("lmtp:unix:/a", &["unix:/b"]).0, "reinject.servers");
        for bad in [
            "lmtp:unix:",
            "lmtp:unix:rel/x",
            "lmtp:/run/x",
            "lmtp:[::1:24",
            "lmtp:h:x",
        ] {
            let (k, why) = key(bad, &[]);
            assert_eq!(k, "reinject.method", "{bad}: {why}");
            assert!(why.contains("LMTP server"), "{bad}: {why}");
        }
        assert!(key("lmtps:x:1", &[]).1.contains("unknown method"));
    }

    #[test]
    fn templates_are_validated() {
        let mut q = Quarantine::default();
        assert!(validate_quarantine(&q).is_ok());
        q.filename = "virus".into();
        assert!(validate_quarantine(&q).is_err());
        q.filename = "a/%m".into();
        assert!(validate_quarantine(&q).is_err());
        q.filename = "%m-%z".into();
        assert!(validate_quarantine(&q).is_err());
        q.filename = "%m".into();
        q.subdirectory = "/etc".into();
        assert!(validate_quarantine(&q).is_err());
        let mut q = Quarantine::default();
        assert_eq!(q.max_age.to_string(), "30d");
        q.max_age = Dur(Duration::ZERO);
        assert!(validate_quarantine(&q).is_err());
    }
}
