//! `pipescan import-amavisd [DIR-OR-FILE...]`: reads an amavisd-new configuration and prints
//! the equivalent pipescan.toml on stdout.
//!
//! amavisd's configuration is Perl code, so it is evaluated by Perl, as amavisd does: the program
//! beside this file (`import.pl`) runs `do FILE` for each file in package Amavis::Conf, after
//! defining the constants (`D_PASS`, `CC_SPAM`, ...) and helpers (`new_RE`, `read_hash`, ...)
//! the files use, and prints every variable the files changed as JSON. This module translates
//! what it understands into TOML keys and writes a comment for every other setting, naming it
//! and saying why (never its value: it may be a password). The TOML it prints is checked with
//! pipescan's own parser; a value the parser refuses is printed commented out, with the reason.
//!
//! Exit codes: 0; 66 when a named file or directory (or, without arguments, both
//! /etc/amavis/conf.d and /etc/amavisd.conf) does not exist; 78 when perl is missing or the
//! files cannot be evaluated (amavisd would not start with them either).

use crate::outcome::Exit;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The Perl program that evaluates the files (arguments: the files, in order).
pub const PROGRAM: &str = include_str!("import.pl");

/// Where Debian's amavisd reads its configuration, in this order (Amavis.pm: run-parts --list
/// of each), and the classic single file used when there is no conf.d.
pub const DEBIAN_DIRS: &[&str] = &["/usr/share/amavis/conf.d", "/etc/amavis/conf.d"];
pub const CLASSIC_FILE: &str = "/etc/amavisd.conf";

/// Why an import could not be done.
#[derive(Debug)]
pub enum ImportError {
    /// A file or directory that does not exist or cannot be read (exit 66).
    NoInput(String),
    /// perl is missing or failed on the files (exit 78).
    Perl(String),
}

impl ImportError {
    pub fn exit(&self) -> Exit {
        match self {
            ImportError::NoInput(_) => Exit::NoInput,
            ImportError::Perl(_) => Exit::Config,
        }
    }
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportError::NoInput(s) | ImportError::Perl(s) => f.write_str(s),
        }
    }
}

/// The command: prints the TOML, or the error on stderr.
pub fn import(args: &[PathBuf]) -> Exit {
    match files(args).and_then(|f| evaluate(&f).map(|v| (f, v))) {
        Ok((files, set)) => {
            crate::process::say(format_args!("{}", translate(&files, &set)));
            Exit::Ok
        }
        Err(e) => {
            eprintln!("pipescan: import-amavisd: {e}");
            e.exit()
        }
    }
}

/// The files amavisd would read for these arguments, in order: a directory gives the names
/// run-parts would list (letters, digits, `_` and `-` only, sorted), a file itself. Without
/// arguments: Debian's two conf.d directories, or /etc/amavisd.conf.
pub fn files(args: &[PathBuf]) -> Result<Vec<PathBuf>, ImportError> {
    let args: Vec<PathBuf> = if !args.is_empty() {
        args.to_vec()
    } else if Path::new(DEBIAN_DIRS[1]).is_dir() {
        DEBIAN_DIRS
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .collect()
    } else if Path::new(CLASSIC_FILE).exists() {
        vec![PathBuf::from(CLASSIC_FILE)]
    } else {
        return Err(ImportError::NoInput(format!(
            "neither {} nor {CLASSIC_FILE} exists: name the amavisd configuration to read",
            DEBIAN_DIRS[1]
        )));
    };
    let mut out = Vec::new();
    for a in args {
        let meta = std::fs::metadata(&a)
            .map_err(|e| ImportError::NoInput(format!("{}: {e}", a.display())))?;
        if !meta.is_dir() {
            out.push(a);
            continue;
        }
        let mut names: Vec<PathBuf> = std::fs::read_dir(&a)
            .map_err(|e| ImportError::NoInput(format!("{}: {e}", a.display())))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
            .filter(|e| {
                e.file_name().to_str().is_some_and(|n| {
                    n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                })
            })
            .map(|e| e.path())
            .collect();
        names.sort();
        out.extend(names);
    }
    Ok(out)
}

/// Runs perl on the files; the variables they changed, by name with sigil ("$x", "@x", "%x").
pub fn evaluate(files: &[PathBuf]) -> Result<BTreeMap<String, Value>, ImportError> {
    let out = std::process::Command::new("perl")
        .arg("-e")
        .arg(PROGRAM)
        .args(files)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| {
            ImportError::Perl(format!(
                "cannot run perl (amavisd's configuration is Perl code): {e}"
            ))
        })?;
    match out.status.code() {
        Some(0) => {}
        Some(66) => {
            return Err(ImportError::NoInput(
                "cannot read a configuration file".into(),
            ));
        }
        _ => {
            return Err(ImportError::Perl(format!(
                "perl could not evaluate the configuration ({})",
                out.status
            )));
        }
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| ImportError::Perl(format!("unreadable output from perl: {e}")))?;
    match v.get("set") {
        Some(Value::Object(m)) => Ok(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        _ => Err(ImportError::Perl("perl printed no settings".into())),
    }
}

/// The whole TOML text for what the files set (`files` are named in the header).
pub fn translate(files: &[PathBuf], set: &BTreeMap<String, Value>) -> String {
    let mut global = crate::admin::import_vars::Vars::new(set);
    crate::admin::import_rules::global(&mut global);
    let global = global.rest(crate::admin::import_rules::why_not);
    let mut banks = Vec::new();
    if let Some(Value::Object(b)) = set.get("%policy_bank").and_then(|v| v.get("hash")) {
        for (name, bank) in b {
            let vars = bank_vars(bank);
            let mut v = crate::admin::import_vars::Vars::new(&vars);
            crate::admin::import_rules::scope(&mut v);
            banks.push((name.clone(), v.rest(crate::admin::import_rules::why_not)));
        }
    }
    let text = crate::admin::import_toml::render(files, &global, &banks);
    crate::admin::import_toml::checked(text)
}

/// A policy bank's entries as variables with sigils: a list value is an `@` variable, a hash a
/// `%` one, anything else a `$` one (amavisd's banks name variables without their sigil).
fn bank_vars(bank: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    if let Some(Value::Object(m)) = bank.get("hash") {
        for (k, v) in m {
            let sigil = match v {
                Value::Array(_) => '@',
                Value::Object(o) if o.contains_key("hash") => '%',
                _ => '$',
            };
            out.insert(format!("{sigil}{k}"), v.clone());
        }
    }
    out
}
