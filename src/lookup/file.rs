//! `file:/path` entries: the entries of a file, one per line, `#` comments, in the place of the
//! `file:` entry. The file is read once, when the table is compiled; includes do not nest.

use crate::lookup::source::{LookupError, Source};
use std::sync::Arc;

/// The entries of one file, in file order.
#[derive(Debug, Clone)]
pub struct File {
    entries: Vec<Arc<dyn Source>>,
}

impl File {
    /// Reads `path` (`raw` is the whole `file:` entry, for errors) and parses each line with
    /// `entry`; errors name the entry or the file and line.
    pub fn load(
        raw: &str,
        path: &str,
        entry: impl Fn(&str) -> Result<Arc<dyn Source>, String>,
    ) -> Result<File, String> {
        if !std::path::Path::new(path).is_absolute() {
            return Err(format!(
                "{raw}: a file: path must be absolute (a relative one depends on the directory pipescan is started in)"
            ));
        }
        let text =
            std::fs::read_to_string(path).map_err(|err| format!("{raw}: cannot read: {err}"))?;
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if line.starts_with("file:") {
                return Err(format!("{path}:{}: file: includes cannot be nested", i + 1));
            }
            entries.push(entry(line).map_err(|m| format!("{path}:{}: {m}", i + 1))?);
        }
        Ok(File { entries })
    }

    /// No entries (only comments): the table leaves such a file out, so that a table of empty
    /// files is an empty table (an empty `local_domains` means "everyone is local").
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Source for File {
    /// First match wins inside the file as in the table.
    fn find(&self, addr: &str) -> Result<Option<bool>, LookupError> {
        for e in &self.entries {
            if let Some(v) = e.find(addr)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }
}
