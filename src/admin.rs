//! Admin commands on the quarantine: `pipescan release` and `pipescan quarantine list`.
//!
//! Contract: release finds the file by its id, reads pipescan's record at its top (and only
//! that: see act::quarantine::Record), and reinjects the original bytes unchanged to the
//! original recipients (or `--to`), from the original sender; or, with `--format attach`, wraps
//! it as message/rfc822 in a short notice from postmaster. A copy larger than 4 x
//! general.max_message_size (+ 1 MiB) once decompressed is refused unread. Subdirectories that
//! cannot be read are skipped with a warning naming them. Exit codes: 0 released; 66 no such id
//! or unreadable file; 75 the reinjection failed (try again); 78 bad configuration.

use crate::act::quarantine::{self, Held};
use crate::act::reinject;
use crate::config::settings::Config;
use crate::control::{Exit, Failure};
use crate::message::{Header, printable};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The original message, to its original recipients (or --to).
    Resend,
    /// A notice from postmaster with the original attached as message/rfc822.
    Attach,
}

/// The most a quarantined copy may hold, decompressed, for release to read it.
pub fn release_cap(cfg: &Config) -> u64 {
    cfg.general
        .max_message_size
        .0
        .saturating_mul(4)
        .saturating_add(1 << 20)
}

fn skipping(cmd: &'static str) -> impl FnMut(&Path, &std::io::Error) {
    move |dir, e| {
        eprintln!(
            "pipescan {cmd}: warning: skipping {}: {e}",
            printable(&dir.display().to_string(), 500)
        )
    }
}

pub fn release(cfg: &Config, id: &str, to: &[String], format: Format) -> Exit {
    let dir = &cfg.quarantine.directory;
    let path = match quarantine::find(dir, id, &mut skipping("release")) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("pipescan release: {e}");
            return Exit::NoInput;
        }
    };
    let held = match quarantine::read(&path, release_cap(cfg)) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("pipescan release: cannot release {id}: {e}");
            return Exit::NoInput;
        }
    };
    if held.record.id != id {
        eprintln!(
            "pipescan release: {} holds quarantine id {}, not {id}: not released",
            path.display(),
            held.record.id
        );
        return Exit::NoInput;
    }
    let recipients = if to.is_empty() {
        held.record.recipients.clone()
    } else {
        to.to_vec()
    };
    if recipients.is_empty()
        || recipients
            .iter()
            .any(|r| r.is_empty() || r.chars().any(char::is_control))
    {
        eprintln!("pipescan release: no usable recipients (give --to ADDRESS)");
        return Exit::Usage;
    }
    let (sender, body) = match format {
        Format::Resend => (held.record.sender.clone(), held.original.clone()),
        Format::Attach => (String::new(), attach(cfg, id, &held, &recipients)),
    };
    let argv = reinject::argv(&cfg.reinject.command, &sender, &recipients);
    let result = reinject::run(&argv, cfg.reinject.on_hard_failure, &mut |w| {
        std::io::Write::write_all(w, &body)?;
        Ok(body.len() as u64)
    });
    match result {
        Ok(()) => {
            let line = format!(
                "Released {id} ({}) from {} to {} ({:?})",
                category(&held.record),
                path.display(),
                recipients
                    .iter()
                    .map(|r| crate::envelope::Angle(r).to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                format
            );
            let line = printable(&line, 10_000);
            crate::log::info(&line);
            println!("{line}");
            Exit::Ok
        }
        Err(Failure { reason, .. }) => {
            eprintln!("pipescan release: reinjection failed, nothing was released: {reason}");
            Exit::TempFail
        }
    }
}

fn attach(cfg: &Config, id: &str, held: &Held, recipients: &[String]) -> Vec<u8> {
    use mail_builder::headers::text::Text;
    use mail_builder::mime::{BodyPart, MimePart};
    let host = cfg.hostname();
    let r = &held.record;
    let category = category(r);
    let text = format!(
        "A message that the content filter held in quarantine ({id}, {category}) has been released \
         to you by the administrator. It is attached unchanged.\r\n\r\nOriginal sender: <{}>\r\n",
        r.sender
    );
    let parts = vec![
        MimePart::new("text/plain", text).transfer_encoding("7bit"),
        MimePart::new(
            "message/rfc822",
            BodyPart::Binary(held.original.clone().into()),
        )
        .transfer_encoding(if held.original.is_ascii() {
            "7bit"
        } else {
            "8bit"
        }),
    ];
    let mut b = crate::act::our_message(&host)
        .subject("Released from quarantine")
        .header("Auto-Submitted", Text::new("auto-generated"))
        .body(MimePart::new("multipart/mixed", BodyPart::Multipart(parts)));
    b = b.to(recipients
        .iter()
        .map(|r| mail_builder::headers::address::Address::new_address(None::<&str>, r.clone()))
        .collect::<Vec<_>>());
    b.write_to_vec().unwrap_or_default()
}

/// "INFECTED (Eicar-Signature)", as X-Pipescan-Category shows it.
fn category(r: &quarantine::Record) -> String {
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
    let dir = &cfg.quarantine.directory;
    let want = category.map(|c| (category_name(c), c.to_ascii_lowercase()));
    let mut rows = Vec::new();
    let walked = quarantine::walk(
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
            let from_name = quarantine::name_parts(&cfg.quarantine.filename, name);
            let row = match quarantine::peek(p) {
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
    println!("{}", line(head));
    for r in &rows {
        println!(
            "{}",
            line([
                &r.id,
                &quarantine::iso8601(r.secs),
                &r.category,
                &r.sender,
                &r.subject
            ])
        );
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
