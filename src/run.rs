//! One filtering run, top to bottom: read → parse → resolve → scan → decide → plan → execute →
//! report. Each stage is a call into the module that owns it; this function only hands each
//! stage's value to the next, and turns an early end into its log line and exit code.
//!
//! Contract: all of stdin is read before anything is decided; every failure that reaches the
//! end of this function carries its exit code; exit 0 only after every copy was delivered or
//! after an explicit, logged discard (act::execute).

use crate::act::execute::{self, Message};
use crate::cli::Mode;
use crate::config::settings::Config;
use crate::envelope::Envelope;
use crate::message::header::Header;
use crate::outcome::{Exit, Failure};
use crate::report::{self, Scans};
use crate::scan::marker;
use crate::spool::Spool;
use crate::{plan, policy, scan};
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Instant;

/// `cfg` is shared (not copied) with scanner threads that may outlive the decision.
pub fn run(cfg: &Arc<Config>, env: &Envelope, mode: Mode, input: &mut dyn Read) -> Exit {
    let started = Instant::now();
    let received = std::time::SystemTime::now();
    let hostname = cfg.hostname();
    // Read: the whole message, before anything is decided.
    let read = crate::timings::time("read", || {
        Spool::read(input, cfg.general.max_message_size.0, &cfg.general.tempdir)
    });
    let mut spool = match Spool::nonempty(read) {
        Ok(s) => s,
        Err((f, spool)) => return report::fail(&f, env, spool.as_ref(), None, started),
    };
    // Parse, and what can end the run before any scan: a loop, the tables, a lookup.
    let parse_started = Instant::now();
    let header = Header::parse(&spool.head);
    let message_id = header.first_text(&spool.head, "Message-ID");
    let early = |f: &Failure, spool: &Spool| {
        report::fail(f, env, Some(spool), message_id.as_deref(), started)
    };
    if let Some(f) = policy::needed::forwarding_loop(cfg, header.count("Received")) {
        return early(&f, &spool);
    }
    let authors = crate::message::header::authors(&header, &spool.head);
    // Mail authentication before the tables: its results may choose the author's policy bank
    // (the settings from here on) and whitelist authenticated authors.
    let (auth, banked) = match scan::auth::stage(cfg, &spool, &header, env, &hostname, started) {
        Ok(a) => a,
        Err(f) => return early(&f, &spool),
    };
    let cfg = banked.as_ref().unwrap_or(cfg);
    // The run's database connection, opened by its first query (none when nothing asks).
    let db = crate::sql::conn::Db::for_run(cfg);
    // The lookup tables, read once for every recipient: the policy after this is pure.
    let (lists, rcpts) =
        match policy::recipient::read_tables(cfg, db.as_ref(), env, &authors, auth.as_ref()) {
            Ok(t) => t,
            Err(f) => return early(&f, &spool),
        };
    let needed = policy::needed::needed(&rcpts);
    // The loop marker: a trusted one carries what the network scanners said about this very
    // message (body and bound fields) within max_age; the checks it covers are not asked again.
    let key = marker::site_key(cfg);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let oversized = spool.oversized();
    let stamp = marker::usable(
        cfg,
        key.as_ref(),
        &spool.head,
        &header,
        oversized,
        now,
        needed,
    );
    crate::timings::add("parse", parse_started.elapsed());
    // Scan.
    let mut scanned = scan::stage::scan(
        cfg,
        &mut spool,
        &header,
        env,
        &rcpts,
        needed,
        stamp.as_ref(),
    );
    scanned.facts.auth = auth;
    let (db, facts) = (db.as_deref(), &mut scanned.facts);
    scan::penpals::apply(cfg, db, &lists, env, (&header, &spool.head), &rcpts, facts);
    // Decide, per recipient.
    let policy_started = Instant::now();
    let verdicts = match policy::decide::decide(cfg, &hostname, &scanned.facts, &env.sender, &rcpts)
    {
        Ok(v) => v,
        Err(hold) => {
            let f = Failure::tempfail(hold.status, hold.reason);
            if mode == Mode::DryRun {
                let _ = writeln!(io::stdout(), "result: exit 75 ({})", f.line());
                return Exit::TempFail;
            }
            return early(&f, &spool);
        }
    };
    // Plan: the copies, refusals and DSN; the marker on each copy; the quarantine.
    let mut plan = plan::plan(&verdicts);
    if let Some(key) = &key {
        let found = marker::Found {
            reports: &scanned.reports,
            facts: &scanned.facts,
            banned_ran: scanned.banned_ran,
            oversized,
        };
        let (raw, s) = (&spool.head, stamp.as_ref());
        marker::mark(
            cfg, key, s, &hostname, now, needed, &found, &mut plan, raw, &header,
        );
    }
    crate::timings::add("policy", policy_started.elapsed());
    let note = stamp.as_ref().map(marker::note);
    let quarantine = plan::quarantine(cfg, &rcpts, &plan, &verdicts);
    let mut scans = Scans {
        reports: &scanned.reports,
        facts: &scanned.facts,
        verdicts: &verdicts,
        quarantine: None,
        message_id: message_id.as_deref(),
    };
    if mode == Mode::DryRun {
        return report::dry_run(cfg, env, &mut spool, &header, &plan, &scans, started);
    }
    // Execute, then report what happened.
    let mut kept = None;
    let executed = {
        let mut m = Message {
            env,
            spool: &mut spool,
            header: &header,
            hostname: &hostname,
            bulk: scanned.facts.bulk,
            db,
        };
        execute::execute(
            cfg, &mut m, mode, &mut plan, &verdicts, quarantine, &mut kept,
        )
    };
    scans.quarantine = kept.as_ref().map(|k| k.id.as_str());
    // The SQL message log: after the fact, and never a reason to change the outcome.
    let entry = crate::act::sqllog::Entry {
        env,
        hostname: &hostname,
        received,
        size: spool.size,
        header: (&header, &spool.head),
        category: plan.category,
        rcpts: &rcpts,
        verdicts: &verdicts,
        kept: kept.as_ref(),
        executed: &executed,
        dsn_sent: !plan.dsn.is_empty(),
    };
    crate::act::sqllog::record(cfg.sql.log, db, &entry);
    let note = note.as_deref();
    report::executed(executed, env, &spool, &plan, &scans, started, note)
}
