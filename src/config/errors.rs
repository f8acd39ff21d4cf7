//! Configuration errors, located: which file, which line, which key. The line is found in the
//! TOML text itself (toml's spans for syntax errors, a scan of table headers and keys for
//! problems found after typing).

use std::fmt;

/// A configuration problem, located: `FILE:LINE: key KEY: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ": key {k}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one configuration file, in file order as far as it is known (never
/// empty). Derefs to the first one; Display prints one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    first: ConfigError,
    rest: Vec<ConfigError>,
}

impl ConfigErrors {
    /// None when `errors` is empty.
    pub fn new(mut errors: Vec<ConfigError>) -> Option<ConfigErrors> {
        if errors.is_empty() {
            return None;
        }
        let first = errors.remove(0);
        Some(ConfigErrors {
            first,
            rest: errors,
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        std::iter::once(&self.first).chain(self.rest.iter())
    }

    pub fn len(&self) -> usize {
        1 + self.rest.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors {
            first: e,
            rest: Vec::new(),
        }
    }
}

impl std::ops::Deref for ConfigErrors {
    type Target = ConfigError;
    fn deref(&self) -> &ConfigError {
        &self.first
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The line of dotted `key`; the spam levels, checked together, fall back on each other.
pub(crate) fn locate(text: &str, key: &str) -> Option<usize> {
    if let Some(l) = find_key_line(text, key) {
        return Some(l);
    }
    let (prefix, last) = key.rsplit_once('.').unwrap_or(("", key));
    if prefix.ends_with("spam") && matches!(last, "tag_level" | "tag2_level" | "kill_level") {
        for other in ["kill_level", "tag2_level", "tag_level"] {
            if let Some(l) = find_key_line(text, &format!("{prefix}.{other}")) {
                return Some(l);
            }
        }
    }
    None
}

/// Turns a toml error into file:line with the key the error points at.
pub(crate) fn located(text: &str, file: &str, e: &toml::de::Error) -> ConfigError {
    let (line, key) = match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            (Some(line), key_at_line(text, line))
        }
        None => (None, None),
    };
    ConfigError {
        file: file.into(),
        line,
        key,
        message: e.message().trim().to_string(),
    }
}

/// The dotted key defined on `line` (1-based), from the nearest table header above it.
fn key_at_line(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line.checked_sub(1)?)?.trim();
    let table = lines[..line - 1]
        .iter()
        .rev()
        .find_map(|l| table_header(l.trim()));
    if let Some(t) = table_header(here) {
        return Some(t);
    }
    let key = here.split('=').next()?.trim().trim_matches('"');
    if key.is_empty() || here.starts_with('#') || !here.contains('=') {
        return table;
    }
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    })
}

fn table_header(l: &str) -> Option<String> {
    let l = l.split('#').next()?.trim();
    if l.starts_with('[') && l.ends_with(']') {
        Some(l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
    } else {
        None
    }
}

/// The line on which dotted `key` is set, for errors found after typing.
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut table = String::new();
    let mut table_line = None;
    let sub = format!("{key}.");
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim();
        if let Some(h) = table_header(t) {
            table = h;
            if table_line.is_none() && (table == key || table.starts_with(&sub)) {
                table_line = Some(i + 1);
            }
            continue;
        }
        if let Some((k, _)) = t.split_once('=') {
            let k = k.trim().trim_matches('"');
            let full = if table.is_empty() {
                k.to_string()
            } else {
                format!("{table}.{k}")
            };
            if full == key {
                return Some(i + 1);
            }
        }
    }
    table_line
}
