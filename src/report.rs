//! What a run tells people: the one log line per message (amavisd-new's format, which log
//! readers parse), the deferral or refusal line, and the `--dry-run` account.
//!
//! Contract: every run ends in exactly one summary line (or one failure line); the status line
//! the MTA reads is written first, once (process::status_line). Lines stay within
//! `log::LINE_BUDGET` whatever the envelope.

use crate::act::courier::registry;
use crate::act::execute::Executed;
use crate::config::settings::Config;
use crate::envelope::{Angle, Envelope};
use crate::message::edit::Rewrite;
use crate::message::header::Header;
use crate::outcome::{Exit, Failure};
use crate::plan::Plan;
use crate::policy::facts::Facts;
use crate::policy::fields::num;
use crate::spool::Spool;
use std::io::{self, Read, Write};
use std::time::Instant;

/// What the scanners said, for the log line and the dry run.
pub struct Scans<'a> {
    pub reports: &'a [crate::verdict::ScanReport],
    pub facts: &'a Facts,
    pub verdicts: &'a [crate::verdict::Verdict],
    pub quarantine: Option<&'a str>,
    /// The message's Message-ID, for log lines.
    pub message_id: Option<&'a str>,
}

pub fn dry_run(
    cfg: &Config,
    env: &Envelope,
    spool: &mut Spool,
    header: &Header,
    plan: &Plan,
    scans: &Scans,
    started: Instant,
) -> Exit {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "pipescan dry run: nothing is delivered");
    let _ = writeln!(
        out,
        "envelope: {} -> {}",
        Angle(&env.sender),
        env.recipients
            .iter()
            .map(|r| Angle(r).to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let _ = writeln!(
        out,
        "size: {} bytes{}",
        spool.size,
        if spool.oversized() {
            " (oversized: not scanned)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "header: {} fields, body at byte {}, {} line ends",
        header.fields.len(),
        header.body_start,
        if header.eol == crate::message::header::Eol::CrLf {
            "CRLF"
        } else {
            "LF"
        }
    );
    for r in scans.reports {
        let _ = writeln!(
            out,
            "scan {}: {} ({} ms{})",
            r.scanner,
            describe(&r.outcome),
            r.elapsed.as_millis(),
            r.server
                .as_deref()
                .map(|s| format!(", {s}"))
                .unwrap_or_default()
        );
    }
    if let Some(a) = &scans.facts.auth {
        let _ = writeln!(out, "auth: {}", a.results);
    }
    if cfg.dkim.sign {
        let _ = writeln!(out, "dkim: {}", signing(cfg, env, &scans.facts.authors));
    }
    let _ = writeln!(out, "verdict: {}", summary(plan));
    for v in scans.verdicts {
        let group = plan
            .groups
            .iter()
            .position(|g| g.recipients.contains(&v.recipient))
            .map(|g| (g + 1).to_string())
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "recipient {}: category {}, score {}, destiny {}{}, group {}{}",
            Angle(&v.recipient),
            v.category,
            v.score.map_or("-".to_string(), num),
            v.destiny,
            if matches!(
                v.destiny,
                crate::verdict::Destiny::Bounce | crate::verdict::Destiny::Reject
            ) {
                if v.dsn_allowed {
                    " (DSN)"
                } else {
                    " (no DSN: discarded)"
                }
            } else {
                ""
            },
            group,
            v.edits
                .subject_tag
                .as_deref()
                .map(|t| format!(", subject tag {t:?}"))
                .unwrap_or_default()
        );
    }
    let exit = match &plan.failure {
        Some(f) => {
            let _ = writeln!(out, "result: exit {} ({})", f.exit.code(), f.line());
            f.exit
        }
        None => Exit::Ok,
    };
    if plan.failure.is_none() {
        let courier = registry::chosen(cfg);
        for (i, g) in plan.groups.iter().enumerate() {
            let how = courier.describe(&env.sender, &g.recipients);
            let _ = writeln!(out, "group {}: {how}", i + 1);
            let _ = writeln!(out, "group {}: message follows ----", i + 1);
            let rewrite = Rewrite::new(&spool.head, header, &g.edits);
            let r = match spool.parts() {
                Ok((head, rest)) => {
                    rewrite.write_to(&mut out, head, rest.map(|r| r as &mut dyn Read))
                }
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                let _ = writeln!(out, "(cannot show the message: {e})");
            }
            let _ = writeln!(out, "\n---- end of group {} message", i + 1);
        }
        for r in &plan.dsn {
            let _ = writeln!(
                out,
                "DSN to {} for {}: {} {}",
                Angle(&env.sender),
                Angle(&r.recipient),
                r.status,
                r.text
            );
        }
        let _ = writeln!(out, "result: exit 0");
    }
    log_line(plan, env, Some(spool), scans, started, Some("dry run"));
    exit
}

/// What signing would do with this message (the copies below are shown unsigned).
fn signing(cfg: &Config, env: &Envelope, authors: &[String]) -> String {
    if !crate::act::sign::from_our_client(cfg, env) {
        return "not from our client: not signed (no SASL login, not in lists.mynetworks, no policy bank)".into();
    }
    let domain = authors
        .first()
        .and_then(|a| a.rsplit_once('@'))
        .map(|(_, d)| d);
    match crate::act::sign::Signer::for_author(&cfg.dkim, domain) {
        Ok(Some(s)) => format!("each copy is signed with {}", s.describe()),
        Ok(None) => format!(
            "no key for the From: domain {:?}: not signed",
            domain.unwrap_or("")
        ),
        Err(e) => format!("cannot sign ({e}): a real run defers the message (75)"),
    }
}

pub fn describe(o: &crate::verdict::Outcome) -> String {
    match o {
        crate::verdict::Outcome::Clean => "clean".into(),
        crate::verdict::Outcome::Infected(v) => format!("infected: {}", v.join(", ")),
        crate::verdict::Outcome::Unchecked(w) => format!("unchecked: {w}"),
        crate::verdict::Outcome::Banned(r) if r.is_empty() => "no banned parts".into(),
        crate::verdict::Outcome::BadHeader(r) if r.is_empty() => "header clean".into(),
        crate::verdict::Outcome::BadHeader(r) => format!("bad header: {}", r.join("; ")),
        crate::verdict::Outcome::Banned(r) => format!("banned: {}", r.join("; ")),
        crate::verdict::Outcome::Spam(r) => format!(
            "score {} (spamd required {}), tests {}",
            num(r.score),
            num(r.required),
            r.tests
                .iter()
                .map(|(n, s)| format!("{n}={}", num(*s)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        crate::verdict::Outcome::Skipped(w) => format!("skipped: {w}"),
        crate::verdict::Outcome::Failed(w) => format!("FAILED: {w}"),
    }
}

/// "Passed CLEAN {Relayed}", "Blocked INFECTED (Eicar-Signature) {Discarded}".
pub fn summary(plan: &Plan) -> String {
    // amavisd names what was found for these: `Blocked BANNED (x.pdf.exe …)`; UNCHECKED says
    // what could not be checked (amavisd's UNCHECKED-ENCRYPTED sub-category, in words).
    let reason = match plan.category {
        crate::verdict::Category::Virus
        | crate::verdict::Category::Banned
        | crate::verdict::Category::Unchecked
        | crate::verdict::Category::BadHeader => {
            format!(" ({})", crate::log::clip(&plan.reason, 300))
        }
        _ => String::new(),
    };
    format!(
        "{} {}{} {{{}}}",
        if plan.passed() { "Passed" } else { "Blocked" },
        plan.category,
        reason,
        plan.actions().join(",")
    )
}

/// The summary line, amavisd-new's: `Passed CLEAN {Relayed}, <sender> -> <rcpt>,...,
/// [quarantine: ID, ][Queue-ID: QID, ][Message-ID: <id>, ]mail_id: ID, Hits: H, size: N,
/// [notes, ]N ms` (Queue-ID only in the amavisd layout: crate::log). Within
/// [`crate::log::LINE_BUDGET`] bytes whatever the envelope: the recipients get what the other
/// fields leave, and the rest are counted (`(... and 4998 more)`).
pub fn log_line(
    plan: &Plan,
    env: &Envelope,
    spool: Option<&Spool>,
    scans: &Scans,
    started: Instant,
    note: Option<&str>,
) {
    use crate::log::clip;
    let head = format!(
        "{}, {} -> ",
        summary(plan),
        clip(&Angle(&env.sender).to_string(), 256)
    );
    let mut tail = String::new();
    if let Some(id) = scans.quarantine {
        tail.push_str(&format!(", quarantine: {}", clip(id, 64)));
    }
    tail.push_str(&ids(scans.message_id));
    let hits = scans
        .facts
        .spam
        .as_ref()
        .map_or("-".to_string(), |r| num(r.score));
    tail.push_str(&format!(", Hits: {hits}"));
    if let Some(s) = spool {
        tail.push_str(&format!(", size: {}", s.size));
    }
    let mut notes = String::new();
    for r in scans.reports {
        match &r.outcome {
            crate::verdict::Outcome::Failed(_) => {
                notes.push_str(&format!(", {} FAILED", r.scanner))
            }
            crate::verdict::Outcome::Skipped(w) | crate::verdict::Outcome::Unchecked(w) => {
                notes.push_str(&format!(", {}: {}", r.scanner, clip(w, 120)))
            }
            _ => {}
        }
    }
    if let Some(a) = &scans.facts.auth {
        notes.push_str(&format!(", auth: {}", clip(&a.summary, 120)));
    }
    tail.push_str(&clip(&notes, 300));
    if let Some(f) = &plan.failure {
        tail.push_str(&format!(", {}", clip(&f.line(), 300)));
    }
    if let Some(n) = note {
        tail.push_str(&format!(", {}", clip(n, 120)));
    }
    tail.push_str(&format!(", {} ms", started.elapsed().as_millis()));
    let budget = crate::log::LINE_BUDGET.saturating_sub(head.len() + tail.len());
    let rcpts = crate::log::address_list(&env.recipients, budget);
    crate::log::info(&format!("{head}{rcpts}{tail}"));
}

/// `[, Queue-ID: QID][, Message-ID: <id>], mail_id: ID` for the log lines.
pub fn ids(message_id: Option<&str>) -> String {
    let mut s = String::new();
    if let (Some(q), true) = (crate::log::queue_id(), crate::log::amavis_layout()) {
        s.push_str(&format!(", Queue-ID: {q}"));
    }
    if let Some(id) = message_id {
        s.push_str(&format!(", Message-ID: {}", crate::log::clip(id, 256)));
    }
    s.push_str(&format!(", mail_id: {}", crate::log::mail_id()));
    s
}

pub fn fail(
    f: &Failure,
    env: &Envelope,
    spool: Option<&Spool>,
    message_id: Option<&str>,
    started: Instant,
) -> Exit {
    crate::process::status_line(&f.line());
    // The Message-ID lets an admin match a deferral to the message when it comes back.
    let size = spool
        .map(|s| format!(", size: {}", s.size))
        .unwrap_or_default();
    let head = format!(
        "{} {{{}}}, {} -> ",
        if f.exit == Exit::TempFail {
            "TempFailed"
        } else {
            "Rejected"
        },
        f.exit.code(),
        crate::log::clip(&Angle(&env.sender).to_string(), 256),
    );
    let tail = format!(
        "{}{size}, {}, {} ms",
        ids(message_id),
        crate::log::clip(&f.line(), 600),
        started.elapsed().as_millis()
    );
    let budget = crate::log::LINE_BUDGET.saturating_sub(head.len() + tail.len());
    let rcpts = crate::log::address_list(&env.recipients, budget);
    crate::log::warn(&format!("{head}{rcpts}{tail}"));
    f.exit
}

pub fn fail_with(
    f: &Failure,
    env: &Envelope,
    spool: Option<&Spool>,
    plan: &Plan,
    scans: &Scans,
    started: Instant,
) -> Exit {
    crate::process::status_line(&f.line());
    let mut p = plan.clone();
    p.failure = Some(f.clone());
    p.groups.clear();
    log_line(&p, env, spool, scans, started, None);
    f.exit
}

/// The log line and exit code for what executing the plan came to; `note` (the loop marker's)
/// goes on a normal summary line.
pub fn executed(
    executed: Executed,
    env: &Envelope,
    spool: &Spool,
    plan: &Plan,
    scans: &Scans,
    started: Instant,
    note: Option<&str>,
) -> Exit {
    match executed {
        Executed::Failed(f) | Executed::Refused(f) => {
            fail_with(&f, env, Some(spool), plan, scans, started)
        }
        Executed::Done {
            delivered,
            problems,
            note: done_note,
            signed,
        } => {
            let note = done_note.or(note);
            let signed = signed.map(|s| match note {
                Some(n) => format!("{n}, DKIM-signed {s}"),
                None => format!("DKIM-signed {s}"),
            });
            log_line(
                plan,
                env,
                Some(spool),
                scans,
                started,
                signed.as_deref().or(note),
            );
            match problems.first() {
                // Nothing was delivered and something failed: retry the whole message.
                Some(f) if !delivered => fail_with(f, env, Some(spool), plan, scans, started),
                _ => Exit::Ok,
            }
        }
    }
}
