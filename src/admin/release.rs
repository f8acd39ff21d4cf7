//! `pipescan release QUARANTINE-ID [--to RCPT] [--format resend|attach]`.
//!
//! Contract: release finds the file by its id, reads pipescan's record at its top (and only
//! that: see act::quarantine::record::Record), and delivers the original bytes unchanged,
//! through the run's courier, to the original recipients (or `--to`), from the original
//! sender; or, with `--format attach`, wraps it as message/rfc822 in a short notice from
//! postmaster. A copy larger than 4 x general.max_message_size (+ 1 MiB) once decompressed is
//! refused unread. Exit codes: 0 released; 64 no usable recipients; 66 no such id or unreadable
//! file; 75 the delivery failed (try again); 78 bad configuration.

use crate::act::courier::registry;
use crate::act::quarantine::store::{self, Held};
use crate::admin::list::{category, skipping};
use crate::config::delivery::QuarantineMethod;
use crate::config::settings::Config;
use crate::message::text::printable;
use crate::outcome::{Exit, Failure};

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

pub fn release(cfg: &Config, id: &str, to: &[String], format: Format) -> Exit {
    let sql = (cfg.quarantine.method == QuarantineMethod::Sql)
        .then(|| crate::sql::conn::Db::new(&cfg.sql));
    let (held, place) = match &sql {
        Some(db) => match from_sql(cfg, db, id) {
            Ok(h) => (h, "sql".to_string()),
            Err(exit) => return exit,
        },
        None => match from_file(cfg, id) {
            Ok((h, path)) => (h, path.display().to_string()),
            Err(exit) => return exit,
        },
    };
    if held.record.id != id {
        eprintln!(
            "pipescan release: {place} holds quarantine id {}, not {id}: not released",
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
    let held = Held {
        original: without_forged(cfg, &held.original),
        ..held
    };
    let (sender, body) = match format {
        Format::Resend => (held.record.sender.clone(), held.original.clone()),
        Format::Attach => (String::new(), attach(cfg, id, &held, &recipients)),
    };
    // A release is sent by an admin, not by the original client: nothing to forward.
    let none = crate::act::courier::traits::Origin::NONE;
    let result = registry::chosen(cfg).deliver(&sender, &recipients, none, &mut |w| {
        std::io::Write::write_all(w, &body)?;
        Ok(body.len() as u64)
    });
    match result {
        Ok(refused) => {
            for r in &refused {
                let line = printable(
                    &format!(
                        "Release of {id}: <{}> REFUSED by the next hop, NOT released to it: {}",
                        r.recipient, r.reply
                    ),
                    10_000,
                );
                crate::log::warn(&line);
                crate::process::sayln(format_args!("{line}"));
            }
            // The SQL quarantine's mark for every host and UI: released (msgrcpt.rs = 'R').
            if let Some(db) = &sql
                && let Err(e) = crate::act::quarantine::sql::mark_released(db, id)
            {
                crate::log::warn(&format!("Released {id}, but not marked as released: {e}"));
            }
            let line = format!(
                "Released {id} ({}) from {} to {} ({:?})",
                category(&held.record),
                place,
                recipients
                    .iter()
                    .map(|r| crate::envelope::Angle(r).to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                format
            );
            let line = printable(&line, 10_000);
            crate::log::info(&line);
            crate::process::sayln(format_args!("{line}"));
            Exit::Ok
        }
        Err(Failure { reason, .. }) => {
            eprintln!("pipescan release: reinjection failed, nothing was released: {reason}");
            Exit::TempFail
        }
    }
}

/// The original less the fields a filtering run removes as forged (our X-Spam-*, alert,
/// marker and quarantine fields, Authentication-Results with our authserv-id): the copy was
/// kept as it arrived, and a release is its way into the mailbox, where a forged
/// `Authentication-Results: <our host>; dkim=pass` would be believed. Every other byte stays.
fn without_forged(cfg: &Config, original: &[u8]) -> Vec<u8> {
    use crate::message::edit::Rewrite;
    use crate::message::header::Header;
    let edits = crate::policy::fields::forged_edits(cfg);
    let header = Header::parse(original);
    let mut out = Vec::with_capacity(original.len());
    match Rewrite::new(original, &header, &edits).write_to(&mut out, original, None) {
        Ok(_) => out,
        Err(_) => original.to_vec(),
    }
}

/// The copy in the quarantine directory, and its path.
fn from_file(cfg: &Config, id: &str) -> Result<(Held, std::path::PathBuf), Exit> {
    let dir = &cfg.quarantine.directory;
    let path = store::find(dir, id, &mut skipping("release")).map_err(|e| {
        eprintln!("pipescan release: {e}");
        Exit::NoInput
    })?;
    let held = store::read(&path, release_cap(cfg)).map_err(|e| {
        eprintln!("pipescan release: cannot release {id}: {e}");
        Exit::NoInput
    })?;
    Ok((held, path))
}

/// The copy in the SQL quarantine: 66 when there is none, 75 when the database does not
/// answer (try again).
fn from_sql(cfg: &Config, db: &crate::sql::conn::Db, id: &str) -> Result<Held, Exit> {
    use crate::act::quarantine::sql::{NotRead, read};
    if !crate::act::quarantine::id::is_id(id) {
        eprintln!(
            "pipescan release: {id:?} is not a quarantine id (12 characters: letters, digits, - and _)"
        );
        return Err(Exit::NoInput);
    }
    read(db, id, release_cap(cfg)).map_err(|e| match e {
        NotRead::Missing => {
            eprintln!(
                "pipescan release: no quarantined message with id {id} in sql ({})",
                db.server()
            );
            Exit::NoInput
        }
        NotRead::Db(e) => {
            eprintln!("pipescan release: sql: {e}");
            Exit::TempFail
        }
        NotRead::Bad(why) => {
            eprintln!("pipescan release: cannot release {id}: {why}");
            Exit::NoInput
        }
    })
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
    let mut b = crate::act::compose::our_message(&host)
        .subject("Released from quarantine")
        .header("Auto-Submitted", Text::new("auto-generated"))
        .body(MimePart::new("multipart/mixed", BodyPart::Multipart(parts)));
    b = b.to(recipients
        .iter()
        .map(|r| mail_builder::headers::address::Address::new_address(None::<&str>, r.clone()))
        .collect::<Vec<_>>());
    b.write_to_vec().unwrap_or_default()
}
