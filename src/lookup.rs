//! amavisd-new style lookup tables: is this address in that list?
//!
//! Contract: a table is an ordered list of entries, checked first to last; the first entry that
//! matches decides (true, or false for a `!` entry); no match is false. Entries, as admins write
//! them in amavisd.conf:
//!
//! | entry | matches |
//! |---|---|
//! | `user@example.com` | that address |
//! | `user@` | that local part at any domain |
//! | `@example.com` or `example.com` | any address at exactly that domain |
//! | `.example.com` or `@.example.com` | that domain and all its subdomains |
//! | `.` | every address |
//! | `/regex/` | the whole address, by regular expression (case-insensitive) |
//! | `!entry` | a match means "not in the table" |
//! | `file:/path` | the entries of that file, one per line, `#` comments, in place |
//!
//! Matching is case-insensitive. Addresses are matched with their extension (`user+tag@`) as
//! given and, when nothing matched, without it, as amavisd does with `$recipient_delimiter = '+'`.

use regex::Regex;
use std::fmt;

#[derive(Debug, Clone)]
enum Key {
    Address(String),
    LocalPart(String),
    Domain(String),
    DomainTree(String),
    Any,
    Regex(Regex),
}

#[derive(Debug, Clone)]
struct Entry {
    negate: bool,
    key: Key,
}

/// A compiled lookup table.
#[derive(Debug, Clone, Default)]
pub struct Table {
    entries: Vec<Entry>,
}

/// A bad entry: which one and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEntry(pub String);

impl fmt::Display for BadEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Table {
    /// Compiles `entries`, reading `file:` includes (not recursively).
    pub fn new(entries: &[String]) -> Result<Table, BadEntry> {
        let mut t = Table::default();
        for e in entries {
            if let Some(path) = e.strip_prefix("file:") {
                if !std::path::Path::new(path).is_absolute() {
                    return Err(BadEntry(format!(
                        "{e}: a file: path must be absolute (a relative one depends on the directory pipescan is started in)"
                    )));
                }
                let text = std::fs::read_to_string(path)
                    .map_err(|err| BadEntry(format!("{e}: cannot read: {err}")))?;
                for (i, line) in text.lines().enumerate() {
                    let line = line.split('#').next().unwrap_or("").trim();
                    if line.is_empty() {
                        continue;
                    }
                    if line.starts_with("file:") {
                        return Err(BadEntry(format!(
                            "{path}:{}: file: includes cannot be nested",
                            i + 1
                        )));
                    }
                    t.entries
                        .push(parse(line).map_err(|m| BadEntry(format!("{path}:{}: {m}", i + 1)))?);
                }
            } else {
                t.entries.push(parse(e).map_err(BadEntry)?);
            }
        }
        Ok(t)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Is `addr` in the table? The empty (null) address matches only `.`, regexes and `!`.
    pub fn contains(&self, addr: &str) -> bool {
        let addr = addr.to_lowercase();
        if let Some(v) = self.decide(&addr) {
            return v;
        }
        // amavisd retries without the address extension ("user+tag@" -> "user@").
        if let Some((local, domain)) = addr.rsplit_once('@')
            && let Some((base, _)) = local.split_once('+')
            && !base.is_empty()
        {
            return self.decide(&format!("{base}@{domain}")).unwrap_or(false);
        }
        false
    }

    fn decide(&self, addr: &str) -> Option<bool> {
        let (local, domain) = match addr.rsplit_once('@') {
            Some((l, d)) => (l, d),
            None => (addr, ""),
        };
        for e in &self.entries {
            let hit = match &e.key {
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
                Key::Regex(r) => r.is_match(addr),
            };
            if hit {
                return Some(!e.negate);
            }
        }
        None
    }
}

fn parse(raw: &str) -> Result<Entry, String> {
    let s = raw.trim();
    let (negate, s) = match s.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, s),
    };
    if s.is_empty() {
        return Err(format!("empty lookup entry {raw:?}"));
    }
    let key = if s.len() >= 2 && s.starts_with('/') && s.ends_with('/') {
        let pat = &s[1..s.len() - 1];
        Key::Regex(
            regex::RegexBuilder::new(pat)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| format!("bad regular expression {s}: {e}"))?,
        )
    } else if s == "." || s == "@." {
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
    Ok(Entry { negate, key })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(entries: &[&str]) -> Table {
        Table::new(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn amavisd_entry_forms() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&["bob@example.com"], "bob@example.com", true),
            (&["bob@example.com"], "BOB@Example.COM", true),
            (&["bob@example.com"], "bob@sub.example.com", false),
            (&["bob@"], "bob@anything.example", true),
            (&["bob@"], "alice@anything.example", false),
            (&["@example.com"], "x@example.com", true),
            (&["@example.com"], "x@sub.example.com", false),
            (&[".example.com"], "x@example.com", true),
            (&[".example.com"], "x@a.b.example.com", true),
            (&[".example.com"], "x@badexample.com", false),
            (&["@.example.com"], "x@a.example.com", true),
            (&["."], "anyone@anywhere", true),
            (&["."], "", true),
            (&["/^postmaster@/"], "Postmaster@example.com", true),
            (&["/^postmaster@/"], "bob@example.com", false),
            (&[], "bob@example.com", false),
        ];
        for (entries, addr, want) in cases {
            assert_eq!(t(entries).contains(addr), *want, "{entries:?} {addr}");
        }
    }

    #[test]
    fn first_match_wins_and_negation() {
        let tb = t(&["!boss@example.com", ".example.com"]);
        assert!(!tb.contains("boss@example.com"));
        assert!(tb.contains("staff@example.com"));
        let tb = t(&[".example.com", "!boss@example.com"]);
        assert!(tb.contains("boss@example.com"), "order matters");
    }

    #[test]
    fn address_extension_is_retried_without_it() {
        let tb = t(&["bob@example.com"]);
        assert!(tb.contains("bob+lists@example.com"));
        let tb = t(&["!bob+spam@example.com", "bob@example.com"]);
        assert!(!tb.contains("bob+spam@example.com"));
    }

    #[test]
    fn null_sender_matches_only_catch_alls() {
        assert!(!t(&["@example.com", "bob@"]).contains(""));
        assert!(t(&["/^$/"]).contains(""));
    }

    #[test]
    fn file_entries_with_comments() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lovers");
        std::fs::write(
            &p,
            "# spam lovers\nbob@example.com  # Bob\n\n.lovers.example\n!x@lovers.example\n",
        )
        .unwrap();
        let tb = Table::new(&[format!("file:{}", p.display())]).unwrap();
        assert!(tb.contains("bob@example.com"));
        assert!(tb.contains("y@a.lovers.example"));
        assert!(
            tb.contains("x@lovers.example"),
            "the domain entry comes first"
        );
        assert!(!tb.contains("z@other.example"));
    }

    #[test]
    fn bad_entries_say_why() {
        let e = Table::new(&["example .com".to_string()]).unwrap_err();
        assert!(e.0.contains("is not an address"), "{e}");
        assert!(t(&["example.com"]).contains("x@EXAMPLE.com"));
        assert!(!t(&["example.com"]).contains("x@sub.example.com"));
        let e = Table::new(&["/(/".to_string()]).unwrap_err();
        assert!(e.0.contains("bad regular expression"), "{e}");
        let e = Table::new(&["file:/nonexistent/x".to_string()]).unwrap_err();
        assert!(e.0.contains("cannot read"), "{e}");
        let e = Table::new(&["file:lists/lovers".to_string()]).unwrap_err();
        assert!(e.0.contains("must be absolute"), "{e}");
        assert!(Table::new(&["!".to_string()]).is_err());
    }
}
