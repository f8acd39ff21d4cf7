//! Runs a message's scanners together.
//!
//! Contract: every wanted scanner runs at the same time, each on its own thread, so a run takes
//! about as long as the slowest one. Spam scanners are not waited for once a finding blocks the
//! message for everyone (see [`Blocking`]): they are reported as skipped and left to finish on
//! their own (the process exits soon after). When such a verdict is possible, a gated spam
//! scanner (spamd) connects only once the blocking checks are done or [`GATE_HOLD`] passed; when
//! it is the only spam scanner it runs on the caller's thread, which could not start it sooner
//! anyway (BENCHMARKS.md fix 13). The runner knows scanners only by their [`Kind`].

use crate::scan::gate::{GATE_HOLD, Gate};
use crate::scan::scanner::{Job, Shared};
use crate::verdict::{Kind, Outcome, ScanReport};
use std::sync::{Arc, mpsc};
use std::time::Instant;

/// Which checks to run for this message (bypass lists decide this).
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub virus: bool,
    pub spam: bool,
    /// The banned-files walk (`[banned]`), run beside the scanners.
    pub banned: bool,
    /// The bad-header checks (`[bad_header]`).
    pub header: bool,
}

impl Wanted {
    fn wants(&self, kind: Kind) -> bool {
        match kind {
            Kind::Virus => self.virus,
            Kind::Spam => self.spam,
            Kind::Banned => self.banned,
            Kind::BadHeader => self.header,
        }
    }
}

/// Findings that block the message for every recipient whatever its spam score (no lover, a
/// destiny other than pass): once one is in and the virus scan is done, the spam scanners are
/// not waited for (amavisd skips the spam check of blocked mail).
#[derive(Debug, Clone, Copy, Default)]
pub struct Blocking {
    pub virus: bool,
    pub banned: bool,
}

impl Blocking {
    /// The category a report blocks the message with, if it does.
    fn by(&self, r: &ScanReport) -> Option<&'static str> {
        match (&r.outcome, r.kind) {
            (Outcome::Infected(_), _) if self.virus => Some("INFECTED"),
            (Outcome::Banned(reasons), _) if self.banned && !reasons.is_empty() => Some("BANNED"),
            _ => None,
        }
    }
}

/// The scanners still out, by kind.
struct Pending {
    spam: Vec<&'static str>,
    other: Vec<(&'static str, Kind)>,
}

/// Runs every wanted scanner of `scanners` on `job`; one report each (a spam scanner not waited
/// for is reported skipped).
pub fn run(
    scanners: &[Shared],
    job: &Arc<Job>,
    wanted: Wanted,
    blocking: Blocking,
) -> Vec<ScanReport> {
    let (tx, rx) = mpsc::channel::<ScanReport>();
    let mut reports = Vec::new();
    let mut pending = Pending {
        spam: Vec::new(),
        other: Vec::new(),
    };
    let start = |s: &Shared, gate: Option<Arc<Gate>>, reports: &mut Vec<ScanReport>| -> bool {
        let (tx, scanner, job) = (tx.clone(), s.clone(), job.clone());
        let spawned = std::thread::Builder::new()
            .name(s.name().into())
            .stack_size(s.stack_size())
            .spawn(move || {
                let _ = tx.send(scanner.scan(&job, gate.as_deref()));
            });
        if let Err(e) = spawned {
            let why = Outcome::Failed(format!("cannot start a thread: {e}"));
            reports.push(ScanReport::unanswered(s.name(), s.kind(), why));
            return false;
        }
        true
    };
    for s in scanners {
        let threaded = s.kind() != Kind::Spam && !s.inline();
        if threaded && wanted.wants(s.kind()) && start(s, None, &mut reports) {
            pending.other.push((s.name(), s.kind()));
        }
    }
    // A spam scanner waits to connect only when something could still make its answer pointless.
    let gated = !pending.other.is_empty() && (blocking.virus || blocking.banned);
    let spam: Vec<&Shared> = scanners
        .iter()
        .filter(|s| s.kind() == Kind::Spam && wanted.wants(Kind::Spam))
        .collect();
    let mut here = match spam.as_slice() {
        [only] if gated && only.gated() => Some(*only),
        _ => None,
    };
    let gate = (gated && here.is_none()).then(|| Arc::new(Gate::default()));
    if here.is_none() {
        for s in spam {
            let g = gate.clone().filter(|_| s.gated());
            if start(s, g, &mut reports) {
                pending.spam.push(s.name());
            }
        }
    }
    drop(tx);
    // The cheap local checks, here, while the others run.
    for s in scanners {
        if s.inline() && wanted.wants(s.kind()) {
            reports.push(s.scan(job, None));
        }
    }
    let blocked_by = collect(
        &rx,
        job,
        blocking,
        &mut here,
        gate.as_deref(),
        &mut pending,
        &mut reports,
    );
    if let Some(g) = &gate {
        g.open(blocked_by.is_none());
    }
    if let Some(s) = here {
        reports.push(match blocked_by {
            Some(why) => skipped(s.name(), why),
            None => s.scan(job, None),
        });
    }
    reports
}

fn skipped(name: &'static str, why: &str) -> ScanReport {
    let outcome = Outcome::Skipped(format!("not needed: the message is {why}"));
    ScanReport::unanswered(name, Kind::Spam, outcome)
}

/// Waits for the reports of the scanners started; the category that blocked the message for
/// everyone, if one did. `here` (a spam scanner for the caller's thread) is run and cleared when
/// the other checks take longer than the hold.
fn collect(
    rx: &mpsc::Receiver<ScanReport>,
    job: &Arc<Job>,
    blocking: Blocking,
    here: &mut Option<&Shared>,
    gate: Option<&Gate>,
    pending: &mut Pending,
    reports: &mut Vec<ScanReport>,
) -> Option<&'static str> {
    let mut blocked_by: Option<&'static str> = None;
    let hold_until = job.started + GATE_HOLD;
    while !pending.other.is_empty() || !pending.spam.is_empty() {
        if pending.other.is_empty() {
            if let Some(g) = gate {
                g.open(blocked_by.is_none());
            }
            if let Some(why) = blocked_by {
                for name in pending.spam.drain(..) {
                    reports.push(skipped(name, why));
                }
                break;
            }
        }
        let next = match here {
            Some(s) => {
                match rx.recv_timeout(hold_until.saturating_duration_since(Instant::now())) {
                    Ok(r) => Ok(r),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        // The other checks are slow: scan now, as the gate lets go after its hold.
                        reports.push(s.scan(job, None));
                        *here = None;
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => Err(mpsc::RecvError),
                }
            }
            None => rx.recv(),
        };
        match next {
            Ok(r) => {
                match pending.spam.iter().position(|n| *n == r.scanner) {
                    Some(i) if r.kind == Kind::Spam => {
                        pending.spam.remove(i);
                    }
                    _ => {
                        if let Some(i) = pending.other.iter().position(|(_, k)| *k == r.kind) {
                            pending.other.remove(i);
                        }
                    }
                }
                // A virus names the message first, as amavisd's category order does.
                blocked_by = match blocking.by(&r) {
                    Some("INFECTED") => Some("INFECTED"),
                    by => blocked_by.or(by),
                };
                reports.push(r);
            }
            // Every job's sender is gone without an answer: a thread died (a panic would
            // have ended the process through the panic hook; this is belt and braces).
            Err(_) => {
                let gone = || Outcome::Failed("scanner thread ended without an answer".into());
                for name in pending.spam.drain(..) {
                    reports.push(ScanReport::unanswered(name, Kind::Spam, gone()));
                }
                for (name, kind) in pending.other.drain(..) {
                    reports.push(ScanReport::unanswered(name, kind, gone()));
                }
                break;
            }
        }
    }
    blocked_by
}
