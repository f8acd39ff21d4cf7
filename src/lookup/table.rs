//! A lookup table: the ordered sources of its entries, compiled once from the strings of the
//! configuration (each entry's form chooses its source, see [`entry`]), asked first to last.

use crate::lookup::file::File;
use crate::lookup::inline::Inline;
use crate::lookup::regex::Regex;
use crate::lookup::source::{LookupError, Source};
use std::fmt;
use std::sync::Arc;

/// A compiled lookup table.
#[derive(Debug, Clone, Default)]
pub struct Table {
    sources: Vec<Arc<dyn Source>>,
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
                let file = File::load(e, path, entry).map_err(BadEntry)?;
                if !file.is_empty() {
                    t.sources.push(Arc::new(file));
                }
            } else {
                t.sources.push(entry(e).map_err(BadEntry)?);
            }
        }
        Ok(t)
    }

    /// The table with `source` asked before its own entries (SQL before the TOML entries, as
    /// amavisd asks SQL before its static maps).
    pub fn with_first(mut self, source: Arc<dyn Source>) -> Table {
        self.sources.insert(0, source);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Is `addr` in the table? The empty (null) address matches only `.`, regexes and `!`.
    /// Err when a source could not answer: the caller decides what that means (a tempfail).
    pub fn lookup(&self, addr: &str) -> Result<bool, LookupError> {
        let addr = addr.to_lowercase();
        if let Some(v) = self.find(&addr)? {
            return Ok(v);
        }
        // amavisd retries without the address extension ("user+tag@" -> "user@").
        if let Some((local, domain)) = addr.rsplit_once('@')
            && let Some((base, _)) = local.split_once('+')
            && !base.is_empty()
        {
            return Ok(self.find(&format!("{base}@{domain}"))?.unwrap_or(false));
        }
        Ok(false)
    }

    /// [`Table::lookup`] for tests, where an error counts as "not listed". The program itself
    /// always uses `lookup()` (policy::recipient::resolve turns an error into a tempfail).
    #[cfg(test)]
    pub fn contains(&self, addr: &str) -> bool {
        self.lookup(addr).unwrap_or(false)
    }

    /// The first source that knows `addr` decides.
    fn find(&self, addr: &str) -> Result<Option<bool>, LookupError> {
        for s in &self.sources {
            if let Some(v) = s.find(addr)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }
}

/// One entry (not `file:`), its source chosen by its form: `!` negates, `/re/` is a regex,
/// anything else an inline address, local part or domain.
pub fn entry(raw: &str) -> Result<Arc<dyn Source>, String> {
    let s = raw.trim();
    let (negate, s) = match s.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, s),
    };
    if s.is_empty() {
        return Err(format!("empty lookup entry {raw:?}"));
    }
    if Regex::is_one(s) {
        return Ok(Arc::new(Regex::parse(s, negate)?));
    }
    Ok(Arc::new(Inline::parse(raw, s, negate)?))
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

    #[derive(Debug)]
    struct Down;

    impl Source for Down {
        fn find(&self, _: &str) -> Result<Option<bool>, LookupError> {
            Err(LookupError::new("database down"))
        }
    }

    #[test]
    fn a_source_that_cannot_answer_is_an_error_not_a_miss() {
        let mut tb = t(&["bob@example.com"]);
        tb.sources.push(Arc::new(Down));
        assert_eq!(
            tb.lookup("bob@example.com"),
            Ok(true),
            "an earlier source decides"
        );
        let e = tb.lookup("alice@example.com").unwrap_err();
        assert_eq!(e.to_string(), "database down");
        assert!(
            tb.lookup("bob+x@example.com").is_err(),
            "the failing source is asked before the retry without the extension"
        );
        assert!(
            !tb.contains("alice@example.com"),
            "contains(): an error is not listed"
        );
    }

    #[test]
    fn a_file_of_comments_leaves_the_table_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("none");
        std::fs::write(
            &p,
            "# nobody yet

",
        )
        .unwrap();
        let tb = Table::new(&[format!("file:{}", p.display())]).unwrap();
        assert!(
            tb.is_empty(),
            "an empty local_domains means every recipient is local"
        );
    }
}
