//! The `[sql]` section: amavisd-new's SQL schema in PostgreSQL, shared by every mail host of a
//! site (per-user policy and white/blacklists; later the message log). A leaf: it imports only
//! `config::units`.

use crate::config::units::Dur;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sql {
    /// libpq-style connection string ("host=/run/postgresql dbname=mail user=pipescan") or a
    /// postgresql:// URL. Empty: no database. Never logged with its password (check-config
    /// prints it with the password replaced).
    #[serde(serialize_with = "serialize_redacted")]
    pub dsn: String,
    /// Read amavisd's users/policy/mailaddr/wblist tables for every recipient.
    pub lookups: bool,
    /// Write amavisd's message log (maddr, msgs, msgrcpt) for every message. A failed write is
    /// logged and never holds the message.
    pub log: bool,
    /// What a lookup the database cannot answer (down, slow, a missing table) means:
    /// "tempfail" (exit 75, the MTA retries) or "ignore" (logged; the TOML tables decide).
    pub on_failure: SqlFailure,
    /// Time to open the one connection of a run (unix socket or TCP, authentication included).
    pub connect_timeout: Dur,
    /// Time for each query's answer.
    pub query_timeout: Dur,
    /// amavisd's pen pals: at most this much is taken off the spam score of a reply to mail a
    /// local recipient sent to its sender (found in the message log, so across hosts);
    /// 0 = off. Needs `log = true` on the hosts whose outgoing mail counts.
    pub penpals_bonus_score: f64,
    /// The bonus halves with every halflife since that earlier mail.
    pub penpals_halflife: Dur,
    /// No pen pals query below this spam score (nothing to help); none = always ask.
    pub penpals_threshold_low: Option<f64>,
    /// No pen pals query when even the whole bonus leaves the score above this; none = ask.
    pub penpals_threshold_high: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqlFailure {
    Tempfail,
    Ignore,
}

impl Default for Sql {
    fn default() -> Self {
        Sql {
            dsn: String::new(),
            lookups: false,
            log: false,
            on_failure: SqlFailure::Tempfail,
            connect_timeout: Dur(Duration::from_secs(5)),
            query_timeout: Dur(Duration::from_secs(10)),
            penpals_bonus_score: 0.0,
            penpals_halflife: Dur(Duration::from_secs(7 * 86_400)),
            penpals_threshold_low: Some(1.0),
            penpals_threshold_high: None,
        }
    }
}

impl Sql {
    /// Is anything of `[sql]` in use?
    pub fn enabled(&self) -> bool {
        !self.dsn.is_empty() && (self.lookups || self.log || self.penpals())
    }

    /// Are pen pals asked?
    pub fn penpals(&self) -> bool {
        self.penpals_bonus_score > 0.0 && !self.penpals_halflife.0.is_zero()
    }
}

fn serialize_redacted<S: serde::Serializer>(dsn: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact(dsn))
}

/// The DSN with its password (a `password=` pair or a URL's `user:password@`) replaced by
/// `***`.
pub fn redact(dsn: &str) -> String {
    if let Some(rest) = dsn
        .strip_prefix("postgresql://")
        .or_else(|| dsn.strip_prefix("postgres://"))
    {
        let scheme = &dsn[..dsn.len() - rest.len()];
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..auth_end].rfind('@')
            && let Some(colon) = rest[..at].find(':')
        {
            return format!("{scheme}{}:***{}", &rest[..colon], &rest[at..]);
        }
        if rest.contains("password=") {
            let (head, _) = dsn.split_once("password=").unwrap_or((dsn, ""));
            return format!("{head}password=***");
        }
        return dsn.to_string();
    }
    // key = value pairs; a value may be 'quoted' (with \' and \\ escapes).
    let mut out = String::new();
    let mut rest = dsn;
    while let Some(i) = rest.find("password") {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let after = tail["password".len()..].trim_start();
        let word_start = head.is_empty() || head.ends_with(char::is_whitespace);
        match after.strip_prefix('=') {
            Some(v) if word_start => {
                out.push_str("password=***");
                let v = v.trim_start();
                rest = skip_value(v);
            }
            _ => {
                out.push_str("password");
                rest = &tail["password".len()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// What follows one libpq value (quoted or not).
fn skip_value(v: &str) -> &str {
    if let Some(q) = v.strip_prefix('\'') {
        let mut escaped = false;
        for (i, c) in q.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '\'' => return &q[i + 1..],
                _ => {}
            }
        }
        return "";
    }
    v.find(char::is_whitespace).map_or("", |i| &v[i..])
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_survive() {
        for (dsn, want) in [
            (
                "host=/run/postgresql dbname=mail",
                "host=/run/postgresql dbname=mail",
            ),
            (
                "host=db password=s3cret user=x",
                "host=db password=*** user=x",
            ),
            ("password = s3cret", "password=***"),
            (
                "host=db password='a b\\' c' user=x",
                "host=db password=*** user=x",
            ),
            (
                "postgresql://u:s3cret@db/mail",
                "postgresql://u:***@db/mail",
            ),
            ("postgresql://u@db/mail", "postgresql://u@db/mail"),
            (
                "postgresql://db/mail?password=s3cret",
                "postgresql://db/mail?password=***",
            ),
        ] {
            assert_eq!(redact(dsn), want, "{dsn}");
            assert!(!redact(dsn).contains("s3cret"));
        }
    }
}
