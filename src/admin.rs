//! Admin commands on the quarantine: `pipescan release` and `pipescan quarantine list`.
//!
//! Contract: release finds the file by its id, strips the fields that only the quarantined copy
//! has (the block pipescan prepended), and reinjects the original bytes unchanged to the
//! original recipients (or `--to`), from the original sender; or, with `--format attach`, wraps
//! it as message/rfc822 in a short notice from postmaster. Exit codes: 0 released; 66 no such
//! id or unreadable file; 75 the reinjection failed (try again); 78 bad configuration.

use crate::act::quarantine;
use crate::act::reinject;
use crate::config::Config;
use crate::control::{Exit, Failure};
use crate::message::Header;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The fields pipescan prepends to a quarantined copy.
const OURS: &[&str] = &[
    "X-Envelope-From",
    "X-Envelope-To",
    "X-Quarantine-ID",
    "X-Pipescan-Category",
    "X-Spam-Score",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The original message, to its original recipients (or --to).
    Resend,
    /// A notice from postmaster with the original attached as message/rfc822.
    Attach,
}

/// A quarantined message, read back.
pub struct Held {
    pub sender: String,
    pub recipients: Vec<String>,
    pub category: String,
    /// The original message bytes (our prepended block removed).
    pub original: Vec<u8>,
}

pub fn read_held(path: &Path) -> std::io::Result<Held> {
    let mut raw = Vec::new();
    quarantine::open(path)?.read_to_end(&mut raw)?;
    let h = Header::parse(&raw);
    // Our block is the leading run of our fields (after an mbox From line, if any).
    let mut end = h.insert_at;
    let (mut sender, mut recipients, mut category) = (String::new(), Vec::new(), String::new());
    for f in &h.fields {
        if f.start != end || !OURS.iter().any(|n| f.is(n)) {
            break;
        }
        let text = f.text(&raw);
        if f.is("X-Envelope-From") {
            sender = text
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string();
        } else if f.is("X-Envelope-To") {
            recipients = text
                .split(',')
                .map(|r| {
                    r.trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string()
                })
                .filter(|r| !r.is_empty())
                .collect();
        } else if f.is("X-Pipescan-Category") {
            category = text;
        }
        end = f.end;
    }
    let mut original = raw[..h.insert_at].to_vec();
    original.extend_from_slice(&raw[end..]);
    Ok(Held {
        sender,
        recipients,
        category,
        original,
    })
}

pub fn release(cfg: &Config, id: &str, to: &[String], format: Format) -> Exit {
    let dir = &cfg.quarantine.directory;
    let path = match quarantine::find(dir, id) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("pipescan release: {e}");
            return Exit::NoInput;
        }
    };
    let held = match read_held(&path) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("pipescan release: cannot read {}: {e}", path.display());
            return Exit::NoInput;
        }
    };
    let recipients = if to.is_empty() {
        held.recipients.clone()
    } else {
        to.to_vec()
    };
    if recipients.is_empty() || recipients.iter().any(|r| r.chars().any(char::is_control)) {
        eprintln!("pipescan release: no usable recipients (give --to ADDRESS)");
        return Exit::Usage;
    }
    let (sender, body) = match format {
        Format::Resend => (held.sender.clone(), held.original.clone()),
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
                held.category,
                path.display(),
                recipients.join(","),
                format
            );
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
    let text = format!(
        "A message that the content filter held in quarantine ({id}, {}) has been released \
         to you by the administrator. It is attached unchanged.\r\n\r\nOriginal sender: <{}>\r\n",
        held.category, held.sender
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

/// `pipescan quarantine list`: one line per quarantined message, oldest first.
pub fn list(cfg: &Config, since: Option<Duration>, category: Option<&str>) -> Exit {
    let dir = &cfg.quarantine.directory;
    let mut rows = Vec::new();
    let walked = quarantine::walk(dir, 0, &mut |p| {
        if p.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .starts_with(".incoming-")
        {
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
        let mut head = Vec::new();
        if let Ok(r) = quarantine::open(p) {
            let _ = r.take(64 * 1024).read_to_end(&mut head);
        }
        let h = Header::parse(&head);
        let get = |n: &str| h.first_text(&head, n).unwrap_or_default();
        let id = get("X-Quarantine-ID").trim_matches(['<', '>']).to_string();
        let cat = get("X-Pipescan-Category");
        if let Some(c) = category {
            // Accept the quarantine names (virus, badh) and the log names (INFECTED, BAD-HEADER).
            let want = match c.to_ascii_lowercase().as_str() {
                "virus" => "infected".to_string(),
                "badh" | "bad_header" => "bad-header".to_string(),
                other => other.to_string(),
            };
            let have = cat.split(' ').next().unwrap_or("").to_ascii_lowercase();
            if have != want {
                return;
            }
        }
        let secs = mtime.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        rows.push((
            secs,
            format!(
                "{id}  {}  {}  {}  {}",
                quarantine::iso8601(secs),
                cat.split(' ').next().unwrap_or(""),
                get("X-Envelope-From"),
                get("Subject")
            ),
        ));
    });
    if let Err(e) = walked {
        eprintln!("pipescan quarantine list: {}: {e}", dir.display());
        return Exit::NoInput;
    }
    rows.sort();
    println!("ID            DATE (UTC)       CATEGORY  SENDER  SUBJECT");
    for (_, r) in &rows {
        println!("{r}");
    }
    Exit::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_copy_gives_back_the_original_bytes_and_envelope() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("virus-AbCdEf012_-x");
        let original = b"X-Spam-Flag: forged stays\r\nSubject: s\r\n\r\nbody\x00\r\n";
        let ours = b"X-Envelope-From: <a@example.org>\r\nX-Envelope-To: <b@example.com>,\r\n <c@example.com>\r\nX-Quarantine-ID: <AbCdEf012_-x>\r\nX-Pipescan-Category: INFECTED (EICAR)\r\n";
        std::fs::write(&p, [&ours[..], &original[..]].concat()).unwrap();
        let h = read_held(&p).unwrap();
        assert_eq!(h.sender, "a@example.org");
        assert_eq!(h.recipients, ["b@example.com", "c@example.com"]);
        assert_eq!(h.category, "INFECTED (EICAR)");
        assert_eq!(h.original, original);
    }
}
