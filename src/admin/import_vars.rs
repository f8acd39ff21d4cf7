//! The variables of one scope of an amavisd configuration (the global settings or one policy
//! bank) as `admin::import` read them, and what translating them produced: pipescan keys and
//! notes. Leaf of the importer: the rules (`import_rules`) fill it, `import_toml` prints it.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One translated key, or a note about a setting that was not translated.
#[derive(Debug, Default)]
pub struct Translation {
    /// (section, key, TOML value, amavisd name it came from)
    pub keys: Vec<(String, String, String, String)>,
    /// (amavisd name, why it was not translated)
    pub notes: Vec<(String, String)>,
}

/// The amavisd variables of one scope (the global settings or one policy bank), and which of
/// them the translation used.
pub struct Vars<'a> {
    vars: &'a BTreeMap<String, Value>,
    used: BTreeSet<String>,
    pub out: Translation,
}

impl<'a> Vars<'a> {
    pub fn new(vars: &'a BTreeMap<String, Value>) -> Vars<'a> {
        Vars {
            vars,
            used: BTreeSet::new(),
            out: Translation::default(),
        }
    }

    /// The value of `name` (with its sigil), marked as used.
    pub fn get(&mut self, name: &str) -> Option<&'a Value> {
        let v = self.vars.get(name)?;
        self.used.insert(name.to_string());
        Some(v)
    }

    pub fn set(&mut self, section: &str, key: &str, value: String, from: &str) {
        self.out
            .keys
            .retain(|(s, k, _, _)| !(s == section && k == key));
        self.out
            .keys
            .push((section.into(), key.into(), value, from.into()));
    }

    pub fn note(&mut self, name: &str, why: impl Into<String>) {
        self.used.insert(name.to_string());
        self.out.notes.push((name.into(), why.into()));
    }

    /// Notes for every variable no translation used, saying `why` (by name).
    pub fn rest(mut self, why: fn(&str) -> &'static str) -> Translation {
        let unused: Vec<String> = self
            .vars
            .keys()
            .filter(|k| !self.used.contains(*k))
            .cloned()
            .collect();
        for name in unused {
            let why = why(&name).to_string();
            self.out.notes.push((name, why));
        }
        self.out
    }
}

/// A TOML string literal.
pub fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}
