//! Reading the file: TOML syntax, typing into [`Config`] with every problem collected, policy
//! banks merged over the main settings, then the checks of `config::validate`.

use crate::config::errors::{ConfigError, ConfigErrors, locate, located};
use crate::config::settings::Config;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Where the configuration is read from when `-c` is not given.
pub const DEFAULT_PATH: &str = "/etc/pipescan/pipescan.toml";

/// The configuration as loaded: the effective settings and where they came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// The file read, or None when the default path did not exist (built-in defaults).
    pub source: Option<PathBuf>,
    /// The policy bank applied, if any.
    pub bank: Option<String>,
    /// The file's text, to locate problems found later (permissions).
    text: String,
}

impl Loaded {
    /// A problem with `key` (dotted; None: the file itself), located in the file.
    pub fn error(&self, key: Option<&str>, message: String) -> ConfigError {
        ConfigError {
            file: self.file_name(),
            line: key.and_then(|k| locate(&self.text, k)),
            key: key.map(str::to_string),
            message,
        }
    }

    /// The file name as errors show it.
    pub fn file_name(&self) -> String {
        match &self.source {
            Some(p) => p.display().to_string(),
            None => "(built-in defaults)".to_string(),
        }
    }
}

/// Loads `path` (or the default path, which may be missing) and applies policy bank `bank`.
pub fn load(path: Option<&Path>, bank: Option<&str>) -> Result<Loaded, ConfigErrors> {
    let (text, file, source) = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| ConfigError {
                file: p.display().to_string(),
                line: None,
                key: None,
                message: format!("cannot read: {e}"),
            })?;
            (text, p.display().to_string(), Some(p.to_path_buf()))
        }
        None => match std::fs::read_to_string(DEFAULT_PATH) {
            Ok(t) => (
                t,
                DEFAULT_PATH.to_string(),
                Some(PathBuf::from(DEFAULT_PATH)),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (String::new(), "(built-in defaults)".to_string(), None)
            }
            Err(e) => {
                return Err(ConfigError {
                    file: DEFAULT_PATH.into(),
                    line: None,
                    key: None,
                    message: format!("cannot read: {e}"),
                }
                .into());
            }
        },
    };
    let mut config = parse(&text, &file, bank)?;
    config.bank = bank.map(str::to_string);
    config.source = Some(std::sync::Arc::new((text.clone(), file.clone())));
    Ok(Loaded {
        config,
        source,
        bank: bank.map(str::to_string),
        text,
    })
}

/// These settings with policy bank `name` applied, as `--policy NAME` would load them.
/// Only for settings loaded without a bank: a bank is never applied over another.
pub fn with_bank(cfg: &Config, name: &str) -> Result<Config, String> {
    if let Some(b) = &cfg.bank {
        return Err(format!("policy bank {b} is already applied"));
    }
    let Some(src) = &cfg.source else {
        return Err("the configuration's text is not at hand".into());
    };
    let mut c = parse(&src.0, &src.1, Some(name)).map_err(|e| {
        e.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    c.bank = Some(name.to_string());
    c.source = Some(src.clone());
    Ok(c)
}

/// Parses a whole configuration text; `file` names it in errors. Every problem of the file is
/// reported, not only the first: a value of the wrong type or shape is set aside and the rest
/// is read on, then the settings are checked as a whole.
pub fn parse(text: &str, file: &str, bank: Option<&str>) -> Result<Config, ConfigErrors> {
    // Syntax first: a file that is not TOML has no keys to talk about.
    let raw: toml::Table = toml::from_str(text).map_err(|e| located(text, file, &e))?;
    let (base, mut errors) = typed(&raw, text, file, None);
    let base_keys: Vec<(Option<String>, String)> = errors
        .iter()
        .map(|e| (e.key.clone(), e.message.clone()))
        .collect();
    // Every bank must be valid on its own, so check-config catches a broken bank that only one
    // master.cf entry uses.
    let mut chosen = None;
    let names: Vec<String> = match raw.get("policy") {
        Some(toml::Value::Table(t)) => t.keys().cloned().collect(),
        _ => Vec::new(),
    };
    for name in &names {
        match apply_bank(&raw, name, text, file, &base_keys) {
            Ok(c) => {
                if Some(name.as_str()) == bank {
                    chosen = Some(c);
                }
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    if let Some(b) = &base {
        errors.extend(unknown_banks(b, &names, text, file));
    }
    // In file order; what has no line (the file as a whole) first.
    errors.sort_by_key(|e| e.line);
    if let Some(e) = ConfigErrors::new(errors) {
        return Err(e);
    }
    let base = base.expect("no errors means the settings were read");
    match bank {
        None => Ok(base),
        Some(name) => chosen.ok_or_else(|| {
            ConfigError {
                file: file.into(),
                line: None,
                key: Some(format!("policy.{name}")),
                message: format!(
                    "policy bank {name:?} (from --policy) is not defined; defined banks: {}",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            }
            .into()
        }),
    }
}

/// `[auth]` names banks to load during a run: each must be defined, or every such run would
/// defer.
fn unknown_banks(cfg: &Config, names: &[String], text: &str, file: &str) -> Vec<ConfigError> {
    let a = &cfg.auth;
    let named = a
        .author_policy_banks
        .values()
        .map(|b| ("auth.author_policy_banks", b))
        .chain(
            (!a.originating_bank.is_empty())
                .then_some(("auth.originating_bank", &a.originating_bank)),
        );
    named
        .filter(|(_, b)| !names.contains(b))
        .map(|(key, b)| ConfigError {
            file: file.into(),
            line: locate(text, key),
            key: Some(key.into()),
            message: format!(
                "policy bank {b:?} is not defined; defined banks: {}",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
        })
        .collect()
}

/// Types `raw` into a Config, collecting every problem: each key serde refuses is reported and
/// removed, and the rest read again; then the typed settings are checked. `prefix` ("policy.X.")
/// is put before keys in errors. The Config is Some when no error was found.
fn typed(
    raw: &toml::Table,
    text: &str,
    file: &str,
    prefix: Option<&str>,
) -> (Option<Config>, Vec<ConfigError>) {
    let full = |k: &str| format!("{}{k}", prefix.unwrap_or(""));
    let error = |key: String, message: String| ConfigError {
        file: file.into(),
        line: locate(text, &key),
        key: Some(key),
        message,
    };
    let mut errors = Vec::new();
    let mut table = raw.clone();
    let mut removed: Vec<String> = Vec::new();
    let config = loop {
        match Config::deserialize(toml::Value::Table(table.clone())) {
            Ok(c) => break Some(c),
            Err(e) => {
                let path = error_path(&e);
                let message = explain(e.message(), &path);
                let value = value_at(raw, &path);
                let message = with_value(message, value.as_ref());
                if path.is_empty() {
                    errors.push(ConfigError {
                        file: file.into(),
                        line: None,
                        key: prefix.map(|p| p.trim_end_matches('.').to_string()),
                        message,
                    });
                    break None;
                }
                errors.push(error(full(&path), message));
                removed.push(path.clone());
                // A key that cannot be set aside (or a runaway loop) ends the reading.
                if !remove_path(&mut table, &path) || errors.len() >= 100 {
                    break None;
                }
            }
        }
    };
    let Some(config) = config else {
        return (None, errors);
    };
    for (key, message) in crate::config::validate::problems(&config) {
        // A key set aside above is at its default now: what it breaks is not news.
        if removed.iter().any(|r| r == &key) {
            continue;
        }
        let message = with_value(message, value_at(raw, &key).as_ref());
        errors.push(error(full(&key), message));
    }
    if errors.is_empty() {
        (Some(config), errors)
    } else {
        (None, errors)
    }
}

/// The dotted key a toml error is about. toml names the tables it went through (its Display
/// ends with "in `a.b`" when it has no input text); an unknown field is named in the message.
fn error_path(e: &toml::de::Error) -> String {
    let mut e = e.clone();
    e.set_input(None);
    let shown = e.to_string();
    let mut path = shown
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("in `").and_then(|l| l.strip_suffix('`')))
        .unwrap_or("")
        .to_string();
    if let Some(rest) = e.message().strip_prefix("unknown field `")
        && let Some((field, _)) = rest.split_once('`')
    {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(field);
    }
    path
}

/// Removes dotted `path` from `t`; an array on the way is removed whole. False when nothing
/// could be removed.
fn remove_path(t: &mut toml::Table, path: &str) -> bool {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    match (rest, t.get_mut(head)) {
        (Some(rest), Some(toml::Value::Table(sub))) => remove_path(sub, rest),
        (_, Some(_)) => t.remove(head).is_some(),
        (_, None) => false,
    }
}

/// The value at dotted `path` in `t`, as TOML, shortened.
fn value_at(t: &toml::Table, path: &str) -> Option<toml::Value> {
    let mut cur: &toml::Table = t;
    let mut parts = path.split('.').peekable();
    while let Some(p) = parts.next() {
        let v = cur.get(p)?;
        if parts.peek().is_none() {
            return Some(v.clone());
        }
        match v {
            toml::Value::Table(sub) => cur = sub,
            _ => return None,
        }
    }
    None
}

/// Appends "(given: VALUE)" unless the message already shows the value.
fn with_value(message: String, value: Option<&toml::Value>) -> String {
    let Some(v) = value else { return message };
    if matches!(v, toml::Value::Table(_)) {
        return message;
    }
    // A string is shown quoted, or as itself when long enough not to match by chance.
    let mentioned = |v: &toml::Value| match v {
        toml::Value::String(s) => {
            message.contains(&format!("\"{s}\""))
                || message.contains(&format!("`{s}`"))
                || (s.chars().count() >= 4 && message.contains(s.as_str()))
        }
        other => message.contains(&other.to_string()),
    };
    let shown = match v {
        toml::Value::Array(a) => {
            a.iter().any(mentioned) || (a.is_empty() && message.contains("[]"))
        }
        other => mentioned(other),
    };
    if shown {
        return message;
    }
    let mut text = v.to_string();
    if text.chars().count() > 80 {
        text = text.chars().take(77).collect::<String>() + "...";
    }
    format!("{message} (given: {text})")
}

/// serde's words for Rust types, in the words of the config file (`key`: where it is).
fn explain(message: &str, key: &str) -> String {
    let m = message.trim();
    let mut out = m.to_string();
    // A number or a table where a word is expected: say which words.
    if out.contains("expected string only") {
        let last = key.rsplit('.').next().unwrap_or(key);
        let words = if key.starts_with("destiny.") {
            "\"pass\", \"discard\", \"bounce\", \"reject\" or \"tempfail\""
        } else if last == "on_failure" {
            "\"tempfail\", \"pass\" or \"unchecked\" (viruses only)"
        } else if last == "on_hard_failure" {
            "\"tempfail\" or \"bounce\""
        } else {
            "one of the words pipescan.toml(5) lists"
        };
        return format!("expected {words}, in double quotes");
    }
    for (rust, ours) in [
        ("expected usize", "expected a whole number, e.g. 100"),
        ("expected u64", "expected a whole number, e.g. 100"),
        ("expected u32", "expected a whole number, e.g. 100"),
        ("expected u16", "expected a whole number, e.g. 100"),
        ("expected u8", "expected a whole number, e.g. 10"),
        ("expected i64", "expected a whole number, e.g. 100"),
        ("expected f64", "expected a number, e.g. 6.9"),
        ("expected f32", "expected a number, e.g. 6.9"),
        (
            "expected a boolean",
            "expected true or false (without quotes)",
        ),
        ("expected a string", "expected a string in double quotes"),
        (
            "expected a sequence",
            "expected a list in brackets, e.g. [\"a\", \"b\"]",
        ),
    ] {
        if let Some(at) = out.find(rust)
            && out[at + rust.len()..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric())
        {
            out.replace_range(at..at + rust.len(), ours);
            break;
        }
    }
    out
}

fn apply_bank(
    raw: &toml::Table,
    name: &str,
    text: &str,
    file: &str,
    base_errors: &[(Option<String>, String)],
) -> Result<Config, Vec<ConfigError>> {
    let bank_key = format!("policy.{name}");
    let err = |key: String, message: String| ConfigError {
        file: file.into(),
        line: locate(text, &key).or_else(|| locate(text, &bank_key)),
        key: Some(key),
        message,
    };
    let overrides = match raw.get("policy").and_then(|p| p.get(name)) {
        Some(toml::Value::Table(t)) => t.clone(),
        _ => {
            return Err(vec![err(
                bank_key.clone(),
                "a policy bank must be a table of settings".into(),
            )]);
        }
    };
    if overrides.contains_key("policy") {
        return Err(vec![err(
            format!("{bank_key}.policy"),
            "policy banks cannot contain policy banks".into(),
        )]);
    }
    let mut merged = raw.clone();
    merged.remove("policy");
    merge(&mut merged, &overrides);
    let prefix = format!("{bank_key}.");
    let (cfg, errors) = typed(&merged, text, file, Some(&prefix));
    if let Some(cfg) = cfg {
        return Ok(cfg);
    }
    // What the main settings already got wrong is reported once, for the main settings.
    let errors: Vec<ConfigError> = errors
        .into_iter()
        .filter(|e| {
            let key = e.key.as_deref().and_then(|k| k.strip_prefix(&prefix));
            let in_bank = key.is_some_and(|k| value_at(&overrides, k).is_some());
            in_bank
                || !base_errors
                    .iter()
                    .any(|(bk, bm)| bk.as_deref() == key && *bm == e.message)
        })
        .map(|mut e| {
            if e.line.is_none() {
                e.line = locate(text, &bank_key);
            }
            e.message = format!("in policy bank {name}: {}", e.message);
            e
        })
        .collect();
    if errors.is_empty() {
        // Only repeats of the main settings' errors: those are reported already.
        return Err(Vec::new());
    }
    Err(errors)
}

/// Deep merge: tables merge key by key, anything else is replaced.
fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::units::{Dur, Size};
    use crate::verdict::Destiny;
    use std::time::Duration;

    #[test]
    fn empty_text_is_the_defaults() {
        let c = parse("", "x.toml", None).unwrap();
        assert_eq!(c.general.max_message_size, Size(50 << 20));
        assert_eq!(c.general.deadline, Dur(Duration::from_secs(600)));
        assert_eq!(c.reinject.command, ["/usr/sbin/sendmail", "-i"]);
        assert_eq!(c.destiny.oversized, Destiny::Pass);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = "[general]\nhostname = \"mx.example\"\nmax_mesage_size = \"5M\"\n";
        let e = parse(text, "/etc/p.toml", None).unwrap_err();
        assert_eq!(e.file, "/etc/p.toml");
        assert_eq!(e.line, Some(3));
        assert_eq!(e.key.as_deref(), Some("general.max_mesage_size"));
        assert!(e.message.contains("unknown field"), "{}", e.message);
    }

    #[test]
    fn bad_value_names_the_key() {
        let text = "\n[general]\ndeadline = \"600\"\n";
        let e = parse(text, "p.toml", None).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(3), Some("general.deadline"))
        );
        assert!(e.message.contains("unit is required"), "{}", e.message);
        let text = "[destiny]\noversized = \"burn\"\n";
        let e = parse(text, "p.toml", None).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(2), Some("destiny.oversized"))
        );
    }

    #[test]
    fn syntax_error_has_a_line() {
        let e = parse("[general\nhostname = 1\n", "p.toml", None).unwrap_err();
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn validation_errors_find_their_line() {
        let text = "[reinject]\n\ncommand = [\"/usr/sbin/sendmail\", \"-t\"]\n";
        let e = parse(text, "p.toml", None).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(3), Some("reinject.command"))
        );
        let text = "[spamd]\nservers = [\"localhost\"]\n";
        let e = parse(text, "p.toml", None).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("spamd.servers")));
    }

    #[test]
    fn policy_bank_overrides_any_setting() {
        let text = r#"
[general]
max_message_size = "10M"
hostname = "mx.example"

[policy.ORIGINATING.general]
max_message_size = "1M"
"#;
        let base = parse(text, "p.toml", None).unwrap();
        assert_eq!(base.general.max_message_size, Size(10 << 20));
        let bank = parse(text, "p.toml", Some("ORIGINATING")).unwrap();
        assert_eq!(bank.general.max_message_size, Size(1 << 20));
        assert_eq!(bank.general.hostname, "mx.example");
    }

    #[test]
    fn unknown_or_broken_bank_is_an_error() {
        let text = "[policy.ORIGINATING.general]\nmax_message_size = \"1M\"\n";
        let e = parse(text, "p.toml", Some("MYNETS")).unwrap_err();
        assert!(e.message.contains("ORIGINATING"), "{}", e.message);
        let text = "[general]\n\n[policy.X.general]\nbogus = 1\n";
        let e = parse(text, "p.toml", None).unwrap_err();
        assert!(e.message.contains("bogus"), "{}", e.message);
        // The line of the key itself (it was the bank's table line, 3, before).
        assert_eq!(e.line, Some(4));
        assert_eq!(e.key.as_deref(), Some("policy.X.general.bogus"));
    }

    /// The four messages of issue 13 #9 that a person could not act on, now with the line, the
    /// key, the value given and what is accepted.
    #[test]
    fn a_wrong_value_says_what_was_given_and_what_is_accepted() {
        let one = |text: &str| {
            let e = parse(text, "/etc/p.toml", None).unwrap_err();
            assert_eq!(e.len(), 1, "{e}");
            e.to_string()
        };
        let e = one("[general]\nmax_message_size = 5.5\n");
        assert!(
            e.starts_with("/etc/p.toml:2: key general.max_message_size: ")
                && e.contains("5.5")
                && e.contains("a whole number of bytes or a string such as \"500K\""),
            "{e}"
        );
        assert!(!e.contains("untagged enum"), "{e}");
        let e = one("[general]\nmax_received = \"many\"\n");
        assert!(
            e.starts_with("/etc/p.toml:2: key general.max_received: ")
                && e.contains("\"many\"")
                && e.contains("expected a whole number, e.g. 100"),
            "{e}"
        );
        assert!(!e.contains("usize"), "{e}");
        let e = one("[spam]\ntag_level = \"high\"\n");
        assert!(
            e.starts_with("/etc/p.toml:2: key spam.tag_level: ")
                && e.contains("\"high\"")
                && e.contains("expected a number, e.g. 6.9"),
            "{e}"
        );
        assert!(!e.contains("f64"), "{e}");
        let e = one("\n[general]\ndeadline = 30\n");
        assert!(
            e.starts_with("/etc/p.toml:3: key general.deadline: ")
                && e.contains("(30)")
                && e.contains("\"30s\""),
            "{e}"
        );
        assert!(!e.contains("expected a string"), "{e}");
        let e = one("[spam]\nkill_level = 5.0\n");
        assert!(
            e.starts_with("/etc/p.toml:2: key spam.kill_level: ")
                && e.contains("tag_level = 2.0, tag2_level = 6.2, kill_level = 5.0"),
            "{e}"
        );
        let e = one("[destiny]\nvirus = 3\n");
        assert!(
            e.starts_with("/etc/p.toml:2: key destiny.virus: ")
                && e.contains("\"discard\"")
                && e.contains("(given: 3)"),
            "{e}"
        );
    }

    #[test]
    fn every_bad_key_of_a_file_is_reported_at_once() {
        let text = "[general]\nmax_message_size = 5.5\ndeadline = 30\nbogus = 1\n\n[spam]\nkill_level = 5.0\n[reinject]\ncommand = [\"/usr/sbin/sendmail\", \"-t\"]\n";
        let e = parse(text, "p.toml", None).unwrap_err();
        let got: Vec<(Option<usize>, Option<&str>)> =
            e.iter().map(|e| (e.line, e.key.as_deref())).collect();
        assert_eq!(
            got,
            [
                (Some(2), Some("general.max_message_size")),
                (Some(3), Some("general.deadline")),
                (Some(4), Some("general.bogus")),
                (Some(7), Some("spam.kill_level")),
                (Some(9), Some("reinject.command")),
            ],
            "{e}"
        );
        // Display: one line per error, in file order.
        assert_eq!(e.to_string().lines().count(), 5, "{e}");
        // A bank repeats none of the main settings' errors, and adds its own.
        let text = "[general]\ndeadline = 30\n[policy.B.general]\nmax_received = -1\n";
        let e = parse(text, "p.toml", None).unwrap_err();
        let keys: Vec<&str> = e.iter().filter_map(|e| e.key.as_deref()).collect();
        assert_eq!(
            keys,
            ["general.deadline", "policy.B.general.max_received"],
            "{e}"
        );
    }

    #[test]
    fn relative_paths_are_refused_with_their_key() {
        for (text, key) in [
            ("[general]\ntempdir = \"tmp\"\n", "general.tempdir"),
            ("[quarantine]\ndirectory = \"%Q\"\n", "quarantine.directory"),
            (
                "[loop_marker]\nkey_file = \"marker.key\"\n",
                "loop_marker.key_file",
            ),
            (
                "[lists]\nspam_lovers = [\"file:lovers.txt\"]\n",
                "lists.spam_lovers",
            ),
            (
                "[reinject]\ncommand = [\"bin/sendmail\", \"-i\"]\n",
                "reinject.command",
            ),
        ] {
            let e = parse(text, "p.toml", None).unwrap_err();
            assert_eq!((e.line, e.key.as_deref()), (Some(2), Some(key)), "{e}");
            assert!(
                e.message.contains("relative") || e.message.contains("absolute"),
                "{e}"
            );
        }
        // A bare program name is looked up in PATH, as execvp does: not a relative path.
        assert!(parse("[reinject]\ncommand = [\"sendmail\"]\n", "p.toml", None).is_ok());
    }
}
