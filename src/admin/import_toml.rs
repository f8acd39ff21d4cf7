//! The TOML text `import-amavisd` prints: the translated keys by section in pipescan's order,
//! each policy bank as `[policy.NAME.section]` tables, then a comment for every setting not
//! translated. [`checked`] runs it through pipescan's own parser and comments out what it refuses.

use crate::admin::import_vars::{Translation, quoted};
use std::path::PathBuf;

/// pipescan's sections, in the order of pipescan.toml(5).
const SECTIONS: &[&str] = &[
    "general",
    "headers",
    "reinject",
    "destiny",
    "spam",
    "virus",
    "spamd",
    "clamd",
    "lists",
    "quarantine",
    "notify",
];

pub fn render(files: &[PathBuf], global: &Translation, banks: &[(String, Translation)]) -> String {
    let mut t = String::from(
        "# pipescan.toml translated from amavisd-new by `pipescan import-amavisd`.\n\
         # Read from, in this order:\n",
    );
    for f in files {
        t.push_str(&format!("#   {}\n", f.display()));
    }
    t.push_str(
        "# Only the settings the files change are here; every other key keeps pipescan's default\n\
         # (pipescan.toml(5)). Check it with: pipescan check-config -c FILE\n\
         #\n\
         # amavisd runs SpamAssassin inside itself; pipescan asks spamd (Debian: apt-get install\n\
         # spamd, then [spamd] servers = [\"127.0.0.1:783\"]). Without spamd servers no spam check runs.\n",
    );
    sections(&mut t, "", global);
    for (name, bank) in banks {
        if bank.keys.is_empty() {
            t.push_str(&format!("\n# policy bank {name}: nothing translatable\n"));
        } else {
            t.push_str(&format!(
                "\n# policy bank {name} (amavisd's $policy_bank{{'{name}'}}): pipescan --policy {name}\n"
            ));
            sections(&mut t, &format!("policy.{}.", quoted(name)), bank);
        }
    }
    notes(&mut t, "", global);
    if banks.iter().any(|(_, b)| !b.notes.is_empty()) {
        t.push_str("\n# Not translated (policy banks):\n");
    }
    for (name, bank) in banks {
        notes(&mut t, &format!("$policy_bank{{'{name}'}} "), bank);
    }
    t
}

fn sections(t: &mut String, prefix: &str, tr: &Translation) {
    for s in SECTIONS {
        let keys: Vec<_> = tr.keys.iter().filter(|(sec, ..)| sec == s).collect();
        if keys.is_empty() {
            continue;
        }
        t.push_str(&format!("\n[{prefix}{s}]\n"));
        for (_, key, value, from) in keys {
            t.push_str(&format!("{key} = {value}  # {from}\n"));
        }
    }
}

fn notes(t: &mut String, prefix: &str, tr: &Translation) {
    if tr.notes.is_empty() {
        return;
    }
    if prefix.is_empty() {
        t.push_str("\n# Not translated:\n");
    }
    // One line per reason, naming every setting it covers, in the order they came.
    let mut grouped: Vec<(&str, Vec<&str>)> = Vec::new();
    for (name, why) in &tr.notes {
        match grouped.iter_mut().find(|(w, _)| w == why) {
            Some((_, names)) => names.push(name),
            None => grouped.push((why, vec![name])),
        }
    }
    for (why, names) in grouped {
        let names: Vec<String> = names.iter().map(|n| format!("{prefix}{n}")).collect();
        let line = format!("{}: {why}", names.join(", "));
        let clean: String = line
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        t.push_str(&format!("# {clean}\n"));
    }
}

/// `text` with every line pipescan's parser refuses commented out, with the parser's reason.
pub fn checked(mut text: String) -> String {
    for _ in 0..50 {
        let errors = match crate::config::load::parse(&text, "import", None) {
            Ok(_) => return text,
            Err(e) => e,
        };
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let mut changed = false;
        for e in errors.iter() {
            let Some(n) = e.line.filter(|n| *n >= 1 && *n <= lines.len()) else {
                continue;
            };
            let line = &mut lines[n - 1];
            if line.starts_with('#') {
                continue;
            }
            let why: String = e
                .message
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            *line = format!("# refused by pipescan ({why}): {line}");
            changed = true;
        }
        text = lines.join("\n") + "\n";
        if !changed {
            break;
        }
    }
    text
}
