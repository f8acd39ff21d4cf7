//! Carries out a plan: the quarantine copy first (the riskiest step: nothing is delivered or
//! discarded unless the copy is safe), then the copies (through the courier, or to stdout for a
//! procmail filter), our DSN, and the notices.
//!
//! Contract: what happened is returned, not remembered: [`Executed`] says whether anything was
//! delivered and what failed, and the caller reports it. Once a copy is delivered, a later
//! failure cannot be retried (that would deliver twice): it is logged loudly and the run ends 0.

use crate::act::courier::registry;
use crate::act::courier::traits::{Courier, Delivered, Origin, Refusal};
use crate::act::sign::Signer;
use crate::cli::Mode;
use crate::config::settings::Config;
use crate::envelope::Envelope;
use crate::message::edit::Rewrite;
use crate::message::header::Header;
use crate::outcome::{Exit, Failure};
use crate::plan::Plan;
use crate::policy::fields::num;
use crate::spool::Spool;
use crate::verdict::Verdict;
use std::io::{self, Read, Write};

/// The message a plan is carried out on.
pub struct Message<'a> {
    pub env: &'a Envelope,
    pub spool: &'a mut Spool,
    pub header: &'a Header,
    pub hostname: &'a str,
    /// Bulk or list mail (no notice to its sender).
    pub bulk: bool,
    /// The run's database connection ([quarantine] method = "sql").
    pub db: Option<&'a crate::sql::conn::Db>,
}

/// What carrying out the plan came to.
#[derive(Debug)]
pub enum Executed {
    /// Every copy went out (some may have failed after the point of no return: `problems`).
    Done {
        delivered: bool,
        problems: Vec<Failure>,
        /// For the log line ("written to stdout").
        note: Option<&'static str>,
        /// The keys the copies were DKIM-signed with, for the log line.
        signed: Option<String>,
    },
    /// The plan itself refuses or holds the message (its `failure`), nothing delivered.
    Refused(Failure),
    /// Something failed before anything was delivered: the MTA keeps or bounces the message.
    Failed(Failure),
}

/// Quarantines (when `quarantine` names a category), then delivers per `plan`. `kept`
/// receives where a copy was stored, for the log line and the SQL message log.
pub fn execute(
    cfg: &Config,
    m: &mut Message,
    mode: Mode,
    plan: &mut Plan,
    verdicts: &[Verdict],
    quarantine: Option<&'static str>,
    kept: &mut Option<crate::act::quarantine::Kept>,
) -> Executed {
    // The signing key first: a key that cannot sign holds the message before anything is done
    // (never an unsigned copy from a domain that signs).
    let signer = match signer(cfg, m) {
        Ok(s) => s,
        Err(f) => return Executed::Failed(f),
    };
    // One courier for everything this run sends: the copies, our DSNs, notices, the mailbox copy.
    let courier = registry::chosen(cfg);
    let courier = &*courier;
    // A message held for retry (75) is not quarantined (it comes back).
    let retried = plan
        .failure
        .as_ref()
        .is_some_and(|f| f.exit == Exit::TempFail);
    if let (Some(cat), false) = (quarantine, retried) {
        let best_score = verdicts.iter().filter_map(|v| v.score).reduce(f64::max);
        let stored = crate::timings::time("quarantine", || {
            quarantine_message(
                cfg, courier, m.env, m.spool, m.header, m.db, cat, plan, best_score,
            )
        });
        match stored {
            Ok(k) => {
                for g in &mut plan.groups {
                    g.edits
                        .add
                        .push(("X-Quarantine-ID".into(), format!("<{}>", k.id)));
                }
                *kept = Some(k);
            }
            Err(f) => return Executed::Failed(f),
        }
    }
    // A filter (procmail) cannot discard or refuse: it hands back the message with the
    // category's alert fields and tags, for the recipe to file; only a retry stays a retry.
    if mode == Mode::Stdout
        && plan.groups.is_empty()
        && plan
            .failure
            .as_ref()
            .is_none_or(|f| f.exit != Exit::TempFail)
        && let Some(v) = verdicts.first()
    {
        let mut edits = v.edits.clone();
        if let Some(k) = kept.as_ref() {
            edits
                .add
                .push(("X-Quarantine-ID".into(), format!("<{}>", k.id)));
        }
        let rewrite = Rewrite::new(&m.spool.head, m.header, &edits);
        return match write_stdout(&rewrite, m.spool) {
            Ok(()) => Executed::Done {
                delivered: true,
                problems: Vec::new(),
                note: Some("written to stdout"),
                signed: None,
            },
            Err(f) => Executed::Failed(f),
        };
    }
    let notices = Notices {
        verdicts,
        bulk: m.bulk,
        quarantine_id: kept.as_ref().map(|k| k.id.as_str()),
    };
    if let Some(f) = &plan.failure {
        if f.exit == Exit::Unavailable && mode == Mode::Reinject {
            // Everyone refused: the admin still hears of it.
            notify(cfg, courier, m, plan, &notices);
        }
        return Executed::Refused(f.clone());
    }
    let (delivered, problems) = match deliver(courier, m, mode, plan, signer.as_ref()) {
        Ok(d) => d,
        Err(f) => return Executed::Failed(f),
    };
    if mode == Mode::Reinject {
        notify(cfg, courier, m, plan, &notices);
    }
    Executed::Done {
        delivered,
        problems,
        note: None,
        signed: signer
            .filter(|_| delivered && !plan.groups.is_empty())
            .map(|s| s.describe().to_string()),
    }
}

/// Delivers each group, then our DSN. `Err` only while nothing was delivered.
fn deliver(
    courier: &dyn Courier,
    m: &mut Message,
    mode: Mode,
    plan: &Plan,
    signer: Option<&Signer>,
) -> Result<(bool, Vec<Failure>), Failure> {
    let env = m.env;
    let origin = Origin::of(env);
    let mut problems = Vec::new();
    let mut delivered = Delivered::default();
    let mut next_hop_refused: Vec<Refusal> = Vec::new();
    for (i, group) in plan.groups.iter().enumerate() {
        let rewrite = Rewrite::new(&m.spool.head, m.header, &group.edits);
        let result = match (mode, signer) {
            (_, Some(s)) => signed_copy(s, &rewrite, m).and_then(|copy| match mode {
                Mode::Stdout => write_bytes_stdout(&copy).map(|()| Vec::new()),
                _ => courier.deliver(&env.sender, &group.recipients, origin, &mut |w| {
                    w.write_all(&copy)?;
                    Ok(copy.len() as u64)
                }),
            }),
            (Mode::Stdout, None) => write_stdout(&rewrite, m.spool).map(|()| Vec::new()),
            (_, None) => match m.spool.parts() {
                Ok((head, mut rest)) => {
                    courier.deliver(&env.sender, &group.recipients, origin, &mut |w| {
                        rewrite.write_to(w, head, rest.as_mut().map(|r| &mut **r as &mut dyn Read))
                    })
                }
                Err(e) => Err(Failure::from(e)),
            },
        };
        match delivered.count(result) {
            Ok(refused) => {
                refusals(i, &refused, &mut problems);
                next_hop_refused.extend(refused);
            }
            Err(f) if delivered.any() => {
                // Past the point of no return: an earlier group is delivered, a retry would
                // deliver it twice. Say so loudly; these recipients need the admin.
                crate::log::warn(&format!(
                    "reinjection group {} to {} FAILED after other recipients were delivered: {}",
                    i + 1,
                    group.recipients.join(","),
                    f.line()
                ));
                problems.push(f);
            }
            Err(f) => return Err(f),
        }
    }
    if !plan.dsn.is_empty() && mode == Mode::Reinject {
        let head_end = m.header.body_start.min(m.spool.head.len());
        let dsn = crate::act::dsn::build(
            m.hostname,
            &env.sender,
            env.envid.as_deref(),
            &plan.dsn,
            &m.spool.head[..head_end],
        );
        let sent = courier.deliver(
            "",
            std::slice::from_ref(&env.sender),
            Origin::NONE,
            &mut |w| {
                w.write_all(&dsn)?;
                Ok(dsn.len() as u64)
            },
        );
        match delivered.count(sent) {
            Ok(refused) => refusals(plan.groups.len(), &refused, &mut problems),
            Err(f) if delivered.any() => crate::log::warn(&format!(
                "DSN to <{}> for {} FAILED after delivery to the others: {}",
                env.sender,
                plan.dsn
                    .iter()
                    .map(|r| r.recipient.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                f.line()
            )),
            // Nothing delivered yet: the whole message is retried, DSN included.
            Err(f) => return Err(f),
        }
    }
    if mode == Mode::Reinject {
        bounce_refused(m, courier, &next_hop_refused);
    }
    Ok((delivered.any(), problems))
}

/// Recipients the next hop refused for good while it took the copy for others are not lost:
/// the sender gets our DSN for them (never the null sender), as amavisd sends one for the
/// recipients its forwarding MTA rejected. Past the point of no return, so a failure to send it
/// is logged, not retried.
fn bounce_refused(
    m: &Message,
    courier: &dyn crate::act::courier::traits::Courier,
    refused: &[Refusal],
) {
    let sender = &m.env.sender;
    if refused.is_empty() || sender.is_empty() {
        return;
    }
    let dsn_for: Vec<crate::plan::Refused> = refused
        .iter()
        .map(|r| crate::plan::Refused {
            recipient: r.recipient.clone(),
            status: enhanced_status(&r.reply),
            text: format!("refused by the next hop: {}", r.reply),
        })
        .collect();
    let head_end = m.header.body_start.min(m.spool.head.len());
    let dsn = crate::act::dsn::build(
        m.hostname,
        sender,
        m.env.envid.as_deref(),
        &dsn_for,
        &m.spool.head[..head_end],
    );
    let sent = courier.deliver("", std::slice::from_ref(sender), Origin::NONE, &mut |w| {
        w.write_all(&dsn)?;
        Ok(dsn.len() as u64)
    });
    let who = refused
        .iter()
        .map(|r| r.recipient.as_str())
        .collect::<Vec<_>>()
        .join(",");
    match sent {
        Ok(_) => crate::log::info(&format!(
            "DSN to <{sender}> for {who}, refused by the next hop"
        )),
        Err(f) => crate::log::warn(&format!(
            "DSN to <{sender}> for {who} (refused by the next hop) FAILED: {}",
            f.line()
        )),
    }
}

/// The enhanced status code of an SMTP/LMTP reply ("550 5.1.1 ..." gives 5.1.1, "452 4.2.2
/// ..." 4.2.2), else the reply's class: X.0.0 (an LMTP 4xx after the dot is a temporary
/// failure we can no longer retry: the DSN says 4.x.x, not 5.0.0); no reply at all is 4.4.2. A
/// code whose class differs from the reply's is not believed.
fn enhanced_status(reply: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.8", "5.2.0", "5.2.1", "5.2.2", "5.2.3", "5.3.0",
        "5.3.4", "5.4.1", "5.5.1", "5.7.1", "4.1.1", "4.2.0", "4.2.1", "4.2.2", "4.3.0", "4.3.1",
        "4.4.1", "4.4.2", "4.7.0", "4.7.1",
    ];
    let mut words = reply.split_whitespace();
    let class = words.next().and_then(|c| c.chars().next());
    let code = words.next().unwrap_or("");
    match KNOWN
        .iter()
        .find(|k| **k == code && k.starts_with(class.unwrap_or('5')))
    {
        Some(k) => k,
        None if class == Some('4') => "4.0.0",
        None if class == Some('5') => "5.0.0",
        // No reply at all (LMTP: the connection lost after the dot): a network failure that
        // may or may not have delivered it, not a refusal.
        None => "4.4.2",
    }
}

/// Recipients the next hop refused for good (SMTP 5xx to RCPT) while it took the copy for the
/// others (group `i`, 0-based; the DSN is the one after the last group). The MTA cannot be
/// told per recipient (pipe(8) reads one exit code for them all), so each is logged loudly and
/// counted among the run's problems; the run ends 0, like a failure after the point of no
/// return. With `pipescan_destination_recipient_limit = 1` there is no such mix: a refused
/// lone recipient is a refused copy (`[reinject] on_hard_failure`).
fn refusals(i: usize, refused: &[Refusal], problems: &mut Vec<Failure>) {
    for r in refused {
        let f = Failure::bounce(
            "5.1.1",
            format!(
                "reinjection group {} to <{}> REFUSED by the next hop, NOT delivered to it: {}",
                i + 1,
                r.recipient,
                r.reply
            ),
        );
        crate::log::warn(&f.reason);
        problems.push(f);
    }
}

/// What the notices need to know besides the plan.
struct Notices<'a> {
    verdicts: &'a [Verdict],
    bulk: bool,
    quarantine_id: Option<&'a str>,
}

/// The run's DKIM signer, if the configuration signs for the author's domain (act::sign).
pub fn signer(cfg: &Config, m: &Message) -> Result<Option<Signer>, Failure> {
    if !cfg.dkim.sign || !crate::act::sign::from_our_client(cfg, m.env) {
        return Ok(None);
    }
    let authors = crate::message::header::authors(m.header, &m.spool.head);
    let domain = authors
        .first()
        .and_then(|a| a.rsplit_once('@'))
        .map(|(_, d)| d.to_string());
    Signer::for_author(&cfg.dkim, domain.as_deref())
        .map_err(|e| Failure::tempfail("4.3.0", format!("pipescan: cannot sign: {e}")))
}

/// A copy as it will leave, signed: our edits applied, then the DKIM-Signature field on top
/// (after an mbox `From ` line, where our fields go too).
fn signed_copy(s: &Signer, rewrite: &Rewrite, m: &mut Message) -> Result<Vec<u8>, Failure> {
    let mut copy = Vec::with_capacity(m.spool.size as usize + 1024);
    let (head, rest) = m.spool.parts()?;
    rewrite.write_to(&mut copy, head, rest.map(|r| r as &mut dyn Read))?;
    let at = m.header.insert_at.min(copy.len());
    let field = s
        .field(&copy[at..], m.header.eol.as_str())
        .map_err(|e| Failure::tempfail("4.3.0", format!("pipescan: {e}")))?;
    copy.splice(at..at, field);
    Ok(copy)
}

fn write_bytes_stdout(copy: &[u8]) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    out.write_all(copy)?;
    out.flush()?;
    crate::process::delivered();
    Ok(())
}

fn write_stdout(rewrite: &Rewrite, spool: &mut Spool) -> Result<(), Failure> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let (head, rest) = spool.parts()?;
    rewrite.write_to(&mut out, head, rest.map(|r| r as &mut dyn Read))?;
    out.flush()?;
    // For the stop path: a signal from now on must not make the MTA retry (the run counts the
    // copy in its own `Delivered`).
    crate::process::delivered();
    Ok(())
}

/// Stores the original message in the quarantine (directory and/or mailbox); its id.
#[allow(clippy::too_many_arguments)]
fn quarantine_message(
    cfg: &Config,
    courier: &dyn Courier,
    env: &Envelope,
    spool: &mut Spool,
    header: &Header,
    db: Option<&crate::sql::conn::Db>,
    category: &'static str,
    plan: &Plan,
    score: Option<f64>,
) -> Result<crate::act::quarantine::Kept, Failure> {
    use crate::act::quarantine::{Kept, record, store};
    let q = &cfg.quarantine;
    let failed =
        |e: String| Failure::tempfail("4.3.0", format!("cannot quarantine the message: {e}"));
    // The run's mail_id, which every log line of the run names.
    let id = crate::log::mail_id().to_string();
    let record = record::Record {
        id: id.clone(),
        sender: env.sender.clone(),
        recipients: env.recipients.clone(),
        category: plan.category.name().to_string(),
        reason: plan.reason.clone(),
        score: score.map(num),
    };
    let fields = record.block(header.eol.as_str());
    let (head, _) = spool.parts().map_err(|e| failed(e.to_string()))?;
    let body = &head[header.body_start.min(head.len())..];
    let names = store::Names {
        mail_id: &id,
        category,
        body_digest: &body_digest(body),
        now: std::time::SystemTime::now(),
    };
    let mut kept = Kept {
        id: id.clone(),
        kind: 'M',
        location: q.address.clone(),
    };
    if q.method == crate::config::delivery::QuarantineMethod::Sql {
        let Some(db) = db else {
            return Err(failed(
                "[quarantine] method = \"sql\" needs [sql] dsn".into(),
            ));
        };
        let (head, rest) = spool.parts().map_err(|e| failed(e.to_string()))?;
        let mut reader: Box<dyn Read> = match rest {
            None => Box::new(head),
            Some(f) => Box::new(head.chain(f)),
        };
        let n = crate::act::quarantine::sql::store(db, &id, fields.as_bytes(), &mut reader)
            .map_err(|e| failed(format!("sql: {e}")))?;
        crate::log::info(&format!("quarantined {id} in sql ({n} bytes)"));
        kept.kind = 'Q';
        kept.location = id.clone();
    } else if !q.directory.as_os_str().is_empty() {
        let (head, rest) = spool.parts().map_err(|e| failed(e.to_string()))?;
        let mut reader: Box<dyn Read> = match rest {
            None => Box::new(head),
            Some(f) => Box::new(head.chain(f)),
        };
        let path = store::store(q, &names, fields.as_bytes(), &mut reader)
            .map_err(|e| failed(format!("{}: {e}", q.directory.display())))?;
        crate::log::info(&format!("quarantined {} as {}", id, path.display()));
        kept.kind = 'F';
        kept.location = path
            .strip_prefix(&q.directory)
            .unwrap_or(&path)
            .display()
            .to_string();
    }
    if !q.address.is_empty() {
        let (head, rest) = spool.parts().map_err(|e| failed(e.to_string()))?;
        let rewrite = Rewrite::new(head, header, &crate::policy::fields::forged_edits(cfg));
        store::to_mailbox(courier, &q.address, fields.as_bytes(), &rewrite, head, rest)
            .map_err(|f| failed(format!("to {}: {}", q.address, f.reason)))?;
    }
    Ok(kept)
}

/// Sends the notices the config asks for. Failures are logged, never fatal: the message itself
/// has been handled by now.
fn notify(cfg: &Config, courier: &dyn Courier, m: &Message, plan: &Plan, scans: &Notices) {
    let (hostname, env, spool, header) = (m.hostname, m.env, &*m.spool, m.header);
    use crate::act::notify as n;
    use crate::plan::Audience;
    let planned = crate::plan::notices(&cfg.notify, plan, scans.verdicts, &env.sender, scans.bulk);
    if planned.is_empty() {
        return;
    }
    let raw = &spool.head;
    let orig_header = &raw[..header.body_start.min(raw.len())];
    let category = plan.category.name();
    let subject = header.first_text(raw, "Subject").unwrap_or_default();
    let message_id = header.first_text(raw, "Message-ID").unwrap_or_default();
    let facts = n::Facts {
        hostname,
        sender: &env.sender,
        recipients: &env.recipients,
        category,
        reason: &plan.reason,
        quarantine_id: scans.quarantine_id,
        subject: &subject,
        message_id: &message_id,
    };
    let c = &cfg.notify;
    let notices = planned.into_iter().map(|p| {
        let (path, builtin) = match p.audience {
            Audience::Admin => (&c.admin_template, n::ADMIN_TEMPLATE),
            Audience::Recipients => (&c.recipient_template, n::RECIPIENT_TEMPLATE),
            Audience::Sender => (&c.sender_template, n::SENDER_TEMPLATE),
        };
        (p.to, p.subject, path, builtin)
    });
    for (to, subject, path, builtin) in notices {
        let text = match n::template(path, builtin) {
            Ok(t) => n::expand(&t, &facts),
            Err(e) => {
                crate::log::warn(&format!(
                    "notice to {}: cannot read template {path}: {e}",
                    to.join(",")
                ));
                n::expand(builtin, &facts)
            }
        };
        let msg = n::build(hostname, &to, &subject, &text, orig_header);
        let sent = courier.send("", &to, &mut |w| {
            w.write_all(&msg)?;
            Ok(msg.len() as u64)
        });
        match sent {
            Ok(()) => crate::log::info(&format!("notified {} ({subject})", to.join(","))),
            Err(f) => crate::log::warn(&format!("notice to {} FAILED: {}", to.join(","), f.line())),
        }
    }
}

/// A short digest of the body for %b: FNV-1a 64, hex (a name part, not a security measure).
fn body_digest(body: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in body {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::enhanced_status;

    #[test]
    fn a_refusal_keeps_its_class_in_our_dsn() {
        assert_eq!(enhanced_status("550 5.1.1 <x@y>: User unknown"), "5.1.1");
        // Dovecot's over-quota reply after the dot (LMTP): temporary, not 5.0.0.
        assert_eq!(enhanced_status("452 4.2.2 <x@y> Mailbox is full"), "4.2.2");
        assert_eq!(enhanced_status("451 4.9.9 odd"), "4.0.0");
        assert_eq!(enhanced_status("421 closing"), "4.0.0");
        assert_eq!(enhanced_status("554 transaction failed"), "5.0.0");
        // A code of the other class is not believed.
        assert_eq!(enhanced_status("550 4.2.2 confused"), "5.0.0");
        assert_eq!(
            enhanced_status(
                "no reply after the end of the message (timed out after 1s): it may or may not have been delivered"
            ),
            "4.4.2"
        );
    }
}
