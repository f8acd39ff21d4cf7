//! `pipescan quarantine list [--since AGE] [--category C]`, and what it shares with release:
//! how a record's category reads, and how unreadable subdirectories are skipped.
//!
//! Contract: one line per quarantined message, oldest first, read from pipescan's record only
//! (act::quarantine::record); a copy that cannot be read is listed as `unreadable`.
//! Subdirectories that cannot be read are skipped with a warning naming them. Exit codes: 0
//! listed; 66 the quarantine directory cannot be read.

use crate::act::quarantine::record::Record;
use crate::act::quarantine::store;
use crate::config::settings::Config;
use crate::message::header::Header;
use crate::message::text::printable;
use crate::outcome::Exit;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Warns about a directory that cannot be read, and goes on.
pub fn skipping(cmd: &'static str) -> impl FnMut(&Path, &std::io::Error) {
    move |dir, e| {
        eprintln!(
            "pipescan {cmd}: warning: skipping {}: {e}",
            printable(&dir.display().to_string(), 500)
        )
    }
}

/// "INFECTED (Eicar-Signature)", as X-Pipescan-Category shows it.
pub fn category(r: &Record) -> String {
    if r.reason.is_empty() {
        r.category.clone()
    } else {
        format!("{} ({})", r.category, r.reason)
    }
}

/// The category's log name for what an admin may type: the log names (INFECTED, BAD-HEADER)
/// and the quarantine names (virus, badh), any case.
fn category_name(c: &str) -> String {
    match c.to_ascii_lowercase().as_str() {
        "virus" => "INFECTED".into(),
        "badh" | "bad_header" => "BAD-HEADER".into(),
        other => other.to_ascii_uppercase(),
    }
}

/// The Subject of a header section, RFC 2047 decoded, for a terminal: control and invisible
/// characters escaped, at most 200 characters.
fn subject(head: &[u8]) -> String {
    let h = Header::parse(head);
    let Some(f) = h.fields.iter().find(|f| f.is("Subject")) else {
        return String::new();
    };
    let mut one = head[f.start..f.end].to_vec();
    if !one.ends_with(b"\n") {
        one.push(b'\n');
    }
    one.push(b'\n');
    let decoded = mail_parser::MessageParser::default()
        .parse_headers(&one)
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_else(|| f.text(head));
    printable(decoded.trim(), 200)
}

/// One line of `quarantine list`.
struct Row {
    secs: u64,
    id: String,
    category: String,
    sender: String,
    subject: String,
}

/// `pipescan quarantine list`: one line per quarantined message, oldest first, in aligned
/// columns. A copy that cannot be read is listed as `unreadable`, with the id from its name.
pub fn list(cfg: &Config, since: Option<Duration>, category: Option<&str>) -> Exit {
    if cfg.quarantine.method == crate::config::delivery::QuarantineMethod::Sql {
        return list_sql(cfg, since, category);
    }
    let dir = &cfg.quarantine.directory;
    let want = category.map(|c| (category_name(c), c.to_ascii_lowercase()));
    let mut rows = Vec::new();
    let walked = store::walk(
        dir,
        &mut |p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with(".incoming-") {
                return;
            }
            let Ok(meta) = std::fs::metadata(p) else {
                return;
            };
            let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
            if let Some(s) = since
                && SystemTime::now().duration_since(mtime).unwrap_or_default() > s
            {
                return;
            }
            let secs = mtime.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let from_name = store::name_parts(&cfg.quarantine.filename, name);
            let row = match store::peek(p) {
                Ok((rec, head)) => Row {
                    secs,
                    id: rec.id,
                    category: printable(&rec.category, 40),
                    sender: printable(&crate::envelope::Angle(&rec.sender).to_string(), 1000),
                    subject: subject(&head),
                },
                Err(e) => Row {
                    secs,
                    id: from_name
                        .as_ref()
                        .map_or_else(|| printable(name, 100), |(id, _)| id.clone()),
                    category: "unreadable".into(),
                    sender: "-".into(),
                    subject: printable(&e.to_string(), 300),
                },
            };
            if let Some((log_name, typed)) = &want {
                let by_name = from_name
                    .as_ref()
                    .and_then(|(_, c)| c.as_deref())
                    .is_some_and(|c| c == typed);
                if !row.category.eq_ignore_ascii_case(log_name) && !by_name {
                    return;
                }
            }
            rows.push(row);
        },
        &mut skipping("quarantine list"),
    );
    if let Err(e) = walked {
        eprintln!("pipescan quarantine list: {}: {e}", dir.display());
        return Exit::NoInput;
    }
    print(rows)
}

/// The SQL quarantine's copies (`[quarantine] method = "sql"`), from every host sharing the
/// database; the date is the message log's (msgs.time_num), `-` without one.
fn list_sql(cfg: &Config, since: Option<Duration>, category: Option<&str>) -> Exit {
    let db = crate::sql::conn::Db::new(&cfg.sql);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let since = since.map(|s| now.saturating_sub(s.as_secs()));
    let listed = match crate::act::quarantine::sql::list(&db, since) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("pipescan quarantine list: sql: {e}");
            return Exit::TempFail;
        }
    };
    let want = category.map(category_name);
    let rows = listed
        .into_iter()
        .map(|l| match l.read {
            Ok((rec, head)) => Row {
                secs: l.secs.unwrap_or(u64::MAX),
                id: printable(&l.id, 100),
                category: printable(&rec.category, 40),
                sender: printable(&crate::envelope::Angle(&rec.sender).to_string(), 1000),
                subject: subject(&head),
            },
            Err(e) => Row {
                secs: l.secs.unwrap_or(u64::MAX),
                id: printable(&l.id, 100),
                category: "unreadable".into(),
                sender: "-".into(),
                subject: printable(&e, 300),
            },
        })
        .filter(|r| {
            want.as_ref()
                .is_none_or(|w| r.category.eq_ignore_ascii_case(w))
        })
        .collect();
    print(rows)
}

/// Prints the rows, oldest first, in aligned columns.
fn print(mut rows: Vec<Row>) -> Exit {
    rows.sort_by(|a, b| (a.secs, &a.id).cmp(&(b.secs, &b.id)));
    let head = ["ID", "DATE (UTC)", "CATEGORY", "SENDER", "SUBJECT"];
    // A column is as wide as its widest cell, up to `max`: a longer cell (a very long sender)
    // overflows into the next column on its own line rather than widening every line.
    let width = |n: usize, max: usize, cell: &dyn Fn(&Row) -> usize| {
        rows.iter()
            .map(cell)
            .filter(|&w| w <= max)
            .chain([head[n].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let w = [
        width(0, 100, &|r| r.id.chars().count()),
        15,
        width(2, 40, &|r| r.category.chars().count()),
        width(3, 40, &|r| r.sender.chars().count()),
    ];
    let line = |c: [&str; 5]| {
        let mut s = String::new();
        for (i, cell) in c.iter().take(4).enumerate() {
            s.push_str(cell);
            let pad = w[i].saturating_sub(cell.chars().count()) + 2;
            s.extend(std::iter::repeat_n(' ', pad));
        }
        s.push_str(c[4]);
        s.trim_end().to_string()
    };
    crate::process::sayln(format_args!("{}", line(head)));
    for r in &rows {
        crate::process::sayln(format_args!(
            "{}",
            line([
                &r.id,
                &if r.secs == u64::MAX {
                    "-".to_string()
                } else {
                    store::iso8601(r.secs)
                },
                &r.category,
                &r.sender,
                &r.subject
            ])
        ));
    }
    Exit::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_decoded_and_made_safe_for_a_terminal() {
        assert_eq!(subject(b"Subject: plain\n\nbody"), "plain");
        assert_eq!(
            subject(b"From: a\nSubject: =?UTF-8?B?Y2Fmw6k=?= ok\n\n"),
            "caf\u{e9} ok"
        );
        assert_eq!(
            subject(b"Subject: a\x1b[2Jb\x07c\n\n"),
            "a\\u{1b}[2Jb\\u{7}c"
        );
        // An encoded word may hide a control character too.
        assert_eq!(subject(b"Subject: =?UTF-8?B?G0hp?=\n\n"), "\\u{1b}Hi");
        assert_eq!(subject(b"To: x\n\n"), "");
    }

    #[test]
    fn category_names_an_admin_may_type() {
        assert_eq!(category_name("virus"), "INFECTED");
        assert_eq!(category_name("Infected"), "INFECTED");
        assert_eq!(category_name("badh"), "BAD-HEADER");
        assert_eq!(category_name("spam"), "SPAM");
    }
}
