//! `/regex/` entries: the whole (lower-cased) address against a case-insensitive regular
//! expression, size-limited so a config cannot make us compile a huge automaton.

use crate::lookup::source::{LookupError, Source};

/// One `/re/` entry, possibly negated.
#[derive(Debug, Clone)]
pub struct Regex {
    negate: bool,
    re: ::regex::Regex,
}

impl Regex {
    /// True when `s` (trimmed, without its `!`) is written as a regex: `/.../`.
    pub fn is_one(s: &str) -> bool {
        s.len() >= 2 && s.starts_with('/') && s.ends_with('/')
    }

    /// Compiles `/pat/` (`s`, as `is_one` accepted it).
    pub fn parse(s: &str, negate: bool) -> Result<Regex, String> {
        let pat = &s[1..s.len() - 1];
        let re = ::regex::RegexBuilder::new(pat)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("bad regular expression {s}: {e}"))?;
        Ok(Regex { negate, re })
    }
}

impl Source for Regex {
    fn find(&self, addr: &str) -> Result<Option<bool>, LookupError> {
        Ok(self.re.is_match(addr).then_some(!self.negate))
    }
}
