//! One filtering run: envelope + stdin → decision → reinjection (or stdout) → log line + exit.
//!
//! Contract: all of stdin is read before anything is decided; every failure that reaches the
//! end of this module carries its exit code; exit 0 only after every reinjection succeeded or
//! after an explicit, logged discard.

use crate::act::courier::registry;
use crate::act::courier::traits::Delivered;
use crate::cli::FilterArgs;
use crate::config::settings::Config;
use crate::envelope::{Angle, Envelope};
use crate::message::{Header, Rewrite};
use crate::outcome::{Exit, Failure};
use crate::plan::{self, Plan};
use crate::policy;
use crate::policy::facts::Facts;
use crate::policy::fields::num;
use crate::scan;
use crate::spool::Spool;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Instant;

/// How the result leaves the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Reinject,
    Stdout,
    DryRun,
}

impl Mode {
    pub fn of(args: &FilterArgs) -> Mode {
        if args.dry_run {
            Mode::DryRun
        } else if args.stdout {
            Mode::Stdout
        } else {
            Mode::Reinject
        }
    }
}

/// `cfg` is shared (not copied) with scanner threads that may outlive the decision.
pub fn run(cfg: &Arc<Config>, env: &Envelope, mode: Mode, input: &mut dyn Read) -> Exit {
    let started = Instant::now();
    let hostname = cfg.hostname();
    let read = crate::timings::time("read", || {
        Spool::read(input, cfg.general.max_message_size.0, &cfg.general.tempdir)
    });
    let mut spool = match read {
        Ok(s) => s,
        Err(e) => {
            return fail(
                &Failure::tempfail("4.3.0", format!("reading the message: {e}")),
                env,
                None,
                None,
                started,
            );
        }
    };
    if spool.size == 0 {
        let f = Failure::tempfail("4.3.0", "empty message on stdin (input closed early?)");
        return fail(&f, env, Some(&spool), None, started);
    }
    let parse_started = Instant::now();
    let header = Header::parse(&spool.head);
    let message_id = header.first_text(&spool.head, "Message-ID");
    let received = header.count("Received");
    if received > cfg.general.max_received {
        let f = Failure {
            exit: Exit::DataErr,
            status: "5.4.6",
            reason: format!(
                "mail forwarding loop: {received} Received fields (limit {})",
                cfg.general.max_received
            ),
        };
        return fail(&f, env, Some(&spool), message_id.as_deref(), started);
    }
    let lists = match crate::policy::lists::Lists::compile(cfg) {
        Ok(l) => l,
        Err((key, msg)) => {
            let f = Failure::tempfail("4.3.5", format!("configuration error: key {key}: {msg}"));
            return fail(&f, env, Some(&spool), message_id.as_deref(), started);
        }
    };
    let lists = &lists;
    let authors = header
        .fields
        .iter()
        .filter(|f| f.is("From"))
        .flat_map(|f| crate::message::addresses(&f.text(&spool.head)))
        .collect::<Vec<_>>();
    // The loop marker: a valid one carries what the network scanners said about this very
    // message (body and bound fields) within max_age; the checks it covers are not asked again.
    let marker_key =
        match crate::scan::marker::load(&cfg.loop_marker.key, &cfg.loop_marker.key_file) {
            Ok(k) => k,
            Err(e) => {
                crate::log::warn(&format!(
                    "loop marker key: {e}: markers are neither trusted nor added"
                ));
                None
            }
        };
    let body = &spool.head[header.body_start.min(spool.head.len())..];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // The lookup tables, read once for every recipient: the policy after this is pure.
    let rcpts = match policy::recipient::resolve(cfg, lists, &env.sender, &authors, &env.recipients)
    {
        Ok(r) => r,
        Err(e) => {
            let f = Failure::tempfail("4.3.0", format!("lookup failed: {e}"));
            return fail(&f, env, Some(&spool), message_id.as_deref(), started);
        }
    };
    let needed = policy::needed::needed(&rcpts);
    let stamp = marker_key
        .as_ref()
        .filter(|_| !spool.oversized())
        .and_then(|key| crate::scan::marker::trusted(cfg, key, &spool.head, &header, body, now))
        .filter(|s| crate::scan::marker::covers(cfg, s, needed));
    crate::timings::add("parse", parse_started.elapsed());
    let (reports, banned) = if spool.oversized() {
        // Not scanned; only the cheap banned-files walk looks at the first max_message_size
        // bytes, so an oversized message is no way around the banned rules.
        let banned = if needed.banned && cfg.banned.enabled {
            match spool.prefix(cfg.general.max_message_size.0) {
                Ok(prefix) => {
                    let only_banned = scan::runner::Wanted {
                        virus: false,
                        spam: false,
                        banned: true,
                    };
                    let prefix = Arc::new(prefix);
                    let r = scan::registry::run_all(
                        cfg,
                        &prefix,
                        &env.sender,
                        &env.recipients,
                        only_banned,
                        scan::runner::Blocking::default(),
                    );
                    r.banned
                }
                Err(e) => Err(format!("reading the spool file: {e}")),
            }
        } else {
            Ok(Vec::new())
        };
        (Vec::new(), banned)
    } else {
        // The marker stands in for the network scanners; the local checks always run, on the
        // message as it is now.
        let wanted = scan::runner::Wanted {
            virus: needed.virus && stamp.is_none(),
            spam: needed.spam && stamp.is_none(),
            banned: needed.banned,
        };
        let blocking = scan::runner::Blocking {
            virus: policy::needed::blocks_everyone(cfg, &rcpts, crate::verdict::Category::Virus),
            banned: policy::needed::blocks_everyone(cfg, &rcpts, crate::verdict::Category::Banned),
        };
        let r = scan::registry::run_all(
            cfg,
            &spool.head,
            &env.sender,
            &env.recipients,
            wanted,
            blocking,
        );
        (r.reports, r.banned)
    };
    for r in &reports {
        match &r.outcome {
            crate::verdict::Outcome::Skipped(_) => {
                crate::timings::add(&format!("{} skipped", r.scanner), r.elapsed)
            }
            _ => crate::timings::add(r.scanner, r.elapsed),
        }
        if let crate::verdict::Outcome::Failed(why) = &r.outcome {
            crate::log::warn(&format!("{} failed: {why}", r.scanner));
        }
    }
    let mut facts = Facts::from_reports(spool.oversized(), &reports);
    if let Some(s) = &stamp {
        if needed.virus {
            facts.viruses = s.results.virus.clone().unwrap_or_default();
        }
        if needed.spam {
            facts.spam = s.results.spam.clone();
        }
    }
    let banned_ran = needed.banned && cfg.banned.enabled && banned.is_ok();
    match banned {
        Ok(reasons) => facts.banned = reasons,
        // A message we cannot take apart cannot be said to be free of banned parts.
        Err(why) => {
            crate::log::warn(&format!("banned-files check failed: {why}"));
            facts
                .virus_unchecked
                .get_or_insert(format!("banned-files check failed: {why}"));
        }
    }
    if needed.header && cfg.bad_header.enabled && !spool.oversized() {
        let findings =
            crate::timings::time("headers", || scan::headers::findings(&spool.head, &header));
        facts.bad_header = findings
            .into_iter()
            .filter(|f| cfg.bad_header.tests.contains(&f.test))
            .map(|f| f.reason)
            .collect();
    }
    facts.authors = authors;
    facts.bulk = is_bulk(&header, &spool.head);
    let policy_started = Instant::now();
    let decided = policy::decide::decide(cfg, &hostname, &facts, &env.sender, &rcpts);
    let verdicts = match decided {
        Ok(v) => v,
        Err(hold) => {
            let f = Failure::tempfail(hold.status, hold.reason);
            if mode == Mode::DryRun {
                let _ = writeln!(io::stdout(), "result: exit 75 ({})", f.line());
                return Exit::TempFail;
            }
            return fail(&f, env, Some(&spool), message_id.as_deref(), started);
        }
    };
    let mut plan = plan::plan(&verdicts);
    if let Some(key) = &marker_key {
        let made = stamp.clone().or_else(|| {
            let complete = banned_ran || !cfg.banned.enabled;
            let complete = complete && (needed.header || !cfg.bad_header.enabled);
            complete
                .then(|| crate::scan::marker::ours(cfg, &hostname, now, needed, &reports, &facts))
                .flatten()
        });
        if let (Some(made), false) = (made, spool.oversized()) {
            crate::scan::marker::add_to(key, &made, &mut plan, &spool.head, &header);
        }
    }
    crate::timings::add("policy", policy_started.elapsed());
    let note = stamp.as_ref().map(|s| {
        format!(
            "already scanned by {}: its spamd/clamd results used, local checks run",
            s.host
        )
    });
    let best_score = verdicts.iter().filter_map(|v| v.score).reduce(f64::max);
    // Quarantined by category, blocked or passed (amavisd), with somewhere to put it; the
    // copies delivered then carry its X-Quarantine-ID.
    let has_store =
        !cfg.quarantine.directory.as_os_str().is_empty() || !cfg.quarantine.address.is_empty();
    let quarantine = has_store
        .then(|| policy::quarantine::quarantine_as(cfg, &rcpts, plan.category, &verdicts))
        .flatten();
    let scans = Scans {
        reports: &reports,
        facts: &facts,
        verdicts: &verdicts,
        quarantine: None,
        message_id: message_id.as_deref(),
    };

    if mode == Mode::DryRun {
        return dry_run(cfg, env, &mut spool, &header, &plan, &scans, started);
    }
    // Quarantine first: it is the riskiest step, and nothing is delivered or discarded unless
    // the copy is safe. A message held for retry (75) is not quarantined (it comes back).
    let mut quarantine_id = None;
    if let (Some(cat), false) = (
        quarantine,
        plan.failure
            .as_ref()
            .is_some_and(|f| f.exit == Exit::TempFail),
    ) {
        let stored = crate::timings::time("quarantine", || {
            quarantine_message(cfg, env, &mut spool, &header, cat, &plan, best_score)
        });
        match stored {
            Ok(id) => {
                for g in &mut plan.groups {
                    g.edits
                        .add
                        .push(("X-Quarantine-ID".into(), format!("<{id}>")));
                }
                quarantine_id = Some(id);
            }
            Err(f) => return fail_with(&f, env, Some(&spool), &plan, &scans, started),
        }
    }
    let scans = Scans {
        quarantine: quarantine_id.as_deref(),
        ..scans
    };
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
        if let Some(id) = &quarantine_id {
            edits
                .add
                .push(("X-Quarantine-ID".into(), format!("<{id}>")));
        }
        let rewrite = Rewrite::new(&spool.head, &header, &edits);
        if let Err(f) = write_stdout(&rewrite, &mut spool) {
            return fail_with(&f, env, Some(&spool), &plan, &scans, started);
        }
        log_line(
            &plan,
            env,
            Some(&spool),
            &scans,
            started,
            Some("written to stdout"),
        );
        return Exit::Ok;
    }
    if let Some(f) = &plan.failure {
        if f.exit == Exit::Unavailable && mode == Mode::Reinject {
            // Everyone refused: the admin still hears of it.
            notify(cfg, &hostname, env, &spool, &header, &plan, &scans);
        }
        return fail_with(f, env, Some(&spool), &plan, &scans, started);
    }
    let mut problems = Vec::new();
    let courier = registry::chosen(cfg);
    let mut delivered = Delivered::default();
    for (i, group) in plan.groups.iter().enumerate() {
        let rewrite = Rewrite::new(&spool.head, &header, &group.edits);
        let result = match mode {
            Mode::Stdout => write_stdout(&rewrite, &mut spool),
            _ => match spool.parts() {
                Ok((head, mut rest)) => courier.deliver(&env.sender, &group.recipients, &mut |w| {
                    rewrite.write_to(w, head, rest.as_mut().map(|r| &mut **r as &mut dyn Read))
                }),
                Err(e) => Err(Failure::from(e)),
            },
        };
        if let Err(f) = delivered.count(result) {
            if delivered.any() {
                // Past the point of no return: an earlier group is delivered, a retry would
                // deliver it twice. Say so loudly; these recipients need the admin.
                crate::log::warn(&format!(
                    "reinjection group {} to {} FAILED after other recipients were delivered: {}",
                    i + 1,
                    group.recipients.join(","),
                    f.line()
                ));
                problems.push(f);
                continue;
            }
            return fail_with(&f, env, Some(&spool), &plan, &scans, started);
        }
    }
    if !plan.dsn.is_empty() && mode == Mode::Reinject {
        let head_end = header.body_start.min(spool.head.len());
        let dsn =
            crate::act::dsn::build(&hostname, &env.sender, &plan.dsn, &spool.head[..head_end]);
        let sent = courier.deliver("", std::slice::from_ref(&env.sender), &mut |w| {
            w.write_all(&dsn)?;
            Ok(dsn.len() as u64)
        });
        match delivered.count(sent) {
            Ok(()) => {}
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
            Err(f) => return fail_with(&f, env, Some(&spool), &plan, &scans, started),
        }
    }
    if mode == Mode::Reinject {
        notify(cfg, &hostname, env, &spool, &header, &plan, &scans);
    }
    log_line(&plan, env, Some(&spool), &scans, started, note.as_deref());
    if !problems.is_empty() && !delivered.any() {
        // Nothing was delivered and something failed: retry the whole message.
        return fail_with(&problems[0], env, Some(&spool), &plan, &scans, started);
    }
    Exit::Ok
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

fn dry_run(
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
        if header.eol == crate::message::Eol::CrLf {
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

/// Bulk or list mail gets no DSN: Precedence bulk/list/junk, List-Id, or Auto-Submitted other
/// than "no".
fn is_bulk(header: &Header, raw: &[u8]) -> bool {
    header.fields.iter().any(|f| {
        (f.is("Precedence")
            && matches!(
                f.text(raw).to_ascii_lowercase().as_str(),
                "bulk" | "list" | "junk"
            ))
            || f.is("List-Id")
            || (f.is("Auto-Submitted") && !f.text(raw).eq_ignore_ascii_case("no"))
    })
}

/// What the scanners said, for the log line and the dry run.
pub struct Scans<'a> {
    pub reports: &'a [crate::verdict::ScanReport],
    pub facts: &'a Facts,
    pub verdicts: &'a [crate::verdict::Verdict],
    pub quarantine: Option<&'a str>,
    /// The message's Message-ID, for log lines.
    pub message_id: Option<&'a str>,
}

/// Stores the original message in the quarantine (directory and/or mailbox); its id.
fn quarantine_message(
    cfg: &Config,
    env: &Envelope,
    spool: &mut Spool,
    header: &Header,
    category: &'static str,
    plan: &Plan,
    score: Option<f64>,
) -> Result<String, Failure> {
    use crate::act::quarantine::{record, store};
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
    if !q.directory.as_os_str().is_empty() {
        let (head, rest) = spool.parts().map_err(|e| failed(e.to_string()))?;
        let mut reader: Box<dyn Read> = match rest {
            None => Box::new(head),
            Some(f) => Box::new(head.chain(f)),
        };
        let path = store::store(q, &names, fields.as_bytes(), &mut reader)
            .map_err(|e| failed(format!("{}: {e}", q.directory.display())))?;
        crate::log::info(&format!("quarantined {} as {}", id, path.display()));
    }
    if !q.address.is_empty() {
        let (head, rest) = spool.parts().map_err(|e| failed(e.to_string()))?;
        let mut reader: Box<dyn Read> = match rest {
            None => Box::new(head),
            Some(f) => Box::new(head.chain(f)),
        };
        let courier = registry::chosen(cfg);
        store::to_mailbox(&*courier, &q.address, fields.as_bytes(), &mut reader)
            .map_err(|f| failed(format!("to {}: {}", q.address, f.reason)))?;
    }
    Ok(id)
}

/// Sends the notices the config asks for. Failures are logged, never fatal: the message itself
/// has been handled by now.
fn notify(
    cfg: &Config,
    hostname: &str,
    env: &Envelope,
    spool: &Spool,
    header: &Header,
    plan: &Plan,
    scans: &Scans,
) {
    use crate::act::notify as n;
    use crate::verdict::Category;
    if plan.passed() && !matches!(plan.category, Category::Virus | Category::Banned) {
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
        quarantine_id: scans.quarantine,
        subject: &subject,
        message_id: &message_id,
    };
    let c = &cfg.notify;
    let mut notices: Vec<(Vec<String>, String, &str, &'static str)> = Vec::new();
    if let Some(admin) = n::admin_for(c, category) {
        notices.push((
            vec![admin.to_string()],
            format!("{category} from <{}>", env.sender),
            &c.admin_template,
            n::ADMIN_TEMPLATE,
        ));
    }
    let blocked: Vec<String> = scans
        .verdicts
        .iter()
        .filter(|v| v.destiny != crate::verdict::Destiny::Pass && !v.recipient.is_empty())
        .map(|v| v.recipient.clone())
        .collect();
    let warn_rcpt = match plan.category {
        Category::Virus => c.warn_virus_recipient,
        Category::Banned => c.warn_banned_recipient,
        _ => false,
    };
    if warn_rcpt && !blocked.is_empty() {
        notices.push((
            blocked.clone(),
            format!("{category} message to you was blocked"),
            &c.recipient_template,
            n::RECIPIENT_TEMPLATE,
        ));
    }
    let sender_ok = c.warn_sender
        && !env.sender.is_empty()
        && !scans.facts.bulk
        && plan.category != Category::Virus
        && !blocked.is_empty();
    if sender_ok {
        notices.push((
            vec![env.sender.clone()],
            "Your message was blocked".into(),
            &c.sender_template,
            n::SENDER_TEMPLATE,
        ));
    }
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
        let sent = registry::chosen(cfg).send("", &to, &mut |w| {
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

fn describe(o: &crate::verdict::Outcome) -> String {
    match o {
        crate::verdict::Outcome::Clean => "clean".into(),
        crate::verdict::Outcome::Infected(v) => format!("infected: {}", v.join(", ")),
        crate::verdict::Outcome::Unchecked(w) => format!("unchecked: {w}"),
        crate::verdict::Outcome::Banned(r) if r.is_empty() => "no banned parts".into(),
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
fn summary(plan: &Plan) -> String {
    // amavisd names what was found for these: `Blocked BANNED (x.pdf.exe …)`.
    let reason = match plan.category {
        crate::verdict::Category::Virus
        | crate::verdict::Category::Banned
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
fn log_line(
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
fn ids(message_id: Option<&str>) -> String {
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

fn fail(
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

fn fail_with(
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
