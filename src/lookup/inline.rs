//! Entries written in the table itself: `user@domain`, `user@`, `@domain` or `domain`,
//! `.domain` or `@.domain`, and `.` (everyone); each may be negated with `!`.

use crate::lookup::source::{LookupError, Source};

#[derive(Debug, Clone)]
enum Key {
    Address(String),
    LocalPart(String),
    Domain(String),
    DomainTree(String),
    Any,
}

/// One plain entry.
#[derive(Debug, Clone)]
pub struct Inline {
    negate: bool,
    key: Key,
}

impl Inline {
    /// Parses `s` (trimmed, without its `!`, not empty); `raw` is the entry as written, for
    /// the error.
    pub fn parse(raw: &str, s: &str, negate: bool) -> Result<Inline, String> {
        let key = if s == "." || s == "@." {
            Key::Any
        } else if let Some(d) = s.strip_prefix("@.").or_else(|| s.strip_prefix('.')) {
            Key::DomainTree(d.to_lowercase())
        } else if let Some(d) = s.strip_prefix('@') {
            Key::Domain(d.to_lowercase())
        } else if let Some(l) = s.strip_suffix('@') {
            Key::LocalPart(l.to_lowercase())
        } else if s.contains('@') {
            Key::Address(s.to_lowercase())
        } else if s.contains(char::is_whitespace) || s.contains('/') {
            return Err(format!(
                "lookup entry {raw:?} is not an address (user@domain), user@, @domain, domain, .domain, /regex/ or file:/path"
            ));
        } else {
            // amavisd's ACL form: a bare domain means that domain exactly.
            Key::Domain(s.to_lowercase())
        };
        Ok(Inline { negate, key })
    }
}

impl Source for Inline {
    /// The empty (null) address matches only `.` (and regexes, elsewhere).
    fn find(&self, addr: &str) -> Result<Option<bool>, LookupError> {
        let (local, domain) = match addr.rsplit_once('@') {
            Some((l, d)) => (l, d),
            None => (addr, ""),
        };
        let hit = match &self.key {
            Key::Address(a) => a == addr,
            Key::LocalPart(l) => !addr.is_empty() && l == local,
            Key::Domain(d) => !domain.is_empty() && d == domain,
            Key::DomainTree(d) => {
                !domain.is_empty()
                    && (domain == d
                        || (domain.len() > d.len()
                            && domain.ends_with(d.as_str())
                            && domain.as_bytes()[domain.len() - d.len() - 1] == b'.'))
            }
            Key::Any => true,
        };
        Ok(hit.then_some(!self.negate))
    }
}
