//! Scanners: what the outside world says about a message.
//!
//! Contract: every configured scanner runs at the same time, each on its own thread, so a run
//! takes about as long as the slowest scanner. Each scanner walks its server pool (in order, or
//! from a random member with `load_balance`), giving every server its own time limit; only when
//! every server failed is the result `Failed`, and what that means is the policy's business
//! (`[virus] on_failure`, `[spam] on_failure`). A scanner never turns a failure into "clean".

pub mod banned;
pub mod clamd;
pub mod command;
pub mod headers;
pub mod http;
pub mod rspamd;
pub mod spamd;
#[cfg(test)]
pub mod testdata;
pub mod wire;

use crate::config::settings::Config;
pub use crate::verdict::{Kind, Outcome, ScanReport};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};
use wire::ServerAddr;

/// Which checks to run for this message (bypass lists decide this later).
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub virus: bool,
    pub spam: bool,
    /// The banned-files walk (`[banned]`), run beside the scanners.
    pub banned: bool,
}

/// Findings that block the message for every recipient whatever its spam score (no lover, a
/// destiny other than pass): once one is in and the virus scan is done, the spam scanners are
/// not waited for (amavisd skips the spam check of blocked mail).
#[derive(Debug, Clone, Copy, Default)]
pub struct Blocking {
    pub virus: bool,
    pub banned: bool,
}

/// What [`run_all`] found.
#[derive(Debug)]
pub struct Results {
    pub reports: Vec<ScanReport>,
    /// The banned-files reasons; `Err` when the walk itself failed (the message is UNCHECKED).
    pub banned: Result<Vec<String>, String>,
}

/// How long a spam scan waits for the virus and banned checks before it connects to spamd;
/// after that it goes anyway (a slow clamd must not delay the spam verdict without end).
pub const GATE_HOLD: Duration = Duration::from_secs(2);

/// Opened once the checks that can block a message for everyone are done: `true` lets the spam
/// scan connect and send its request, `false` abandons it unsent.
#[derive(Debug, Default)]
pub struct Gate {
    state: std::sync::Mutex<Option<bool>>,
    changed: std::sync::Condvar,
}

impl Gate {
    pub fn open(&self, go: bool) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.is_none() {
            *s = Some(go);
            self.changed.notify_all();
        }
    }

    /// True once opened with `false`.
    pub fn closed(&self) -> bool {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) == Some(false)
    }

    /// Waits up to `limit` for the decision; no decision by then means go.
    pub fn wait(&self, limit: Duration) -> bool {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (s, _) = self
            .changed
            .wait_timeout_while(s, limit, |s| s.is_none())
            .unwrap_or_else(|e| e.into_inner());
        s.unwrap_or(true)
    }
}

enum Done {
    Report(ScanReport),
    Banned(Result<Vec<String>, String>),
}

/// Runs every configured and wanted check on `msg` in parallel, each on its own thread, and
/// waits for them, except for spam scanners whose answer can no longer matter (see
/// [`Blocking`]): those are reported as skipped and left to finish on their own (the process
/// exits soon after).
pub fn run_all(
    cfg: &Arc<Config>,
    msg: &Arc<Vec<u8>>,
    sender: &str,
    recipients: &[String],
    wanted: Wanted,
    blocking: Blocking,
) -> Results {
    let checks_started = Instant::now();
    let (tx, rx) = mpsc::channel::<Done>();
    let mut pending_spam: Vec<&'static str> = Vec::new();
    let mut pending_other = 0usize;
    let mut reports = Vec::new();
    let mut banned = Ok(Vec::new());
    let start = |name: &'static str,
                 stack: usize,
                 job: Box<dyn FnOnce() -> Done + Send>,
                 reports: &mut Vec<ScanReport>|
     -> bool {
        let tx = tx.clone();
        let spawned = std::thread::Builder::new()
            .name(name.into())
            .stack_size(stack)
            .spawn(move || {
                let _ = tx.send(job());
            });
        if let Err(e) = spawned {
            let kind = if name == "spamd" || name == "rspamd" {
                Kind::Spam
            } else {
                Kind::Virus
            };
            let why = format!("cannot start a thread: {e}");
            reports.push(ScanReport::unanswered(name, kind, Outcome::Failed(why)));
            return false;
        }
        true
    };
    const STACK: usize = 2 << 20;
    if wanted.virus && (!cfg.clamd.servers.is_empty() || !cfg.av_command.is_empty()) {
        let (cfg, msg) = (cfg.clone(), msg.clone());
        let job = Box::new(move || Done::Report(run_virus(&cfg, &msg)));
        if start("virus", STACK, job, &mut reports) {
            pending_other += 1;
        }
    }
    if wanted.banned && cfg.banned.enabled {
        let (cfg, msg) = (cfg.clone(), msg.clone());
        // Sized for banned.max_depth levels of nesting whatever the message.
        let job = Box::new(move || {
            Done::Banned(crate::timings::time("banned", || {
                banned::scan(&msg, &cfg.banned)
            }))
        });
        if start("banned", 32 << 20, job, &mut reports) {
            pending_other += 1;
        } else {
            banned = Err("cannot start a thread for the banned-files walk".into());
        }
    }
    // spamd waits to connect only when something could still make its answer pointless.
    let gated = pending_other > 0 && (blocking.virus || blocking.banned);
    // Then, if spamd is the only spam scanner, it runs on this thread once that is decided (or
    // the hold ran out): it could not start any sooner on a thread of its own, and this saves
    // a thread start and a wake-up per message (BENCHMARKS.md fix 13). A spamd thread waits
    // for the decision at a gate.
    let rspamd_wanted = wanted.spam && !cfg.rspamd.servers.is_empty();
    let spamd_wanted = wanted.spam && !cfg.spamd.servers.is_empty();
    let mut spamd_here = gated && spamd_wanted && !rspamd_wanted;
    let gate = (gated && !spamd_here).then(|| Arc::new(Gate::default()));
    if spamd_wanted && !spamd_here {
        let (cfg, msg, rcpts) = (cfg.clone(), msg.clone(), recipients.to_vec());
        let gate = gate.clone();
        let job = Box::new(move || {
            Done::Report(run_spamd(
                &cfg,
                &msg,
                &rcpts,
                gate.as_deref(),
                Instant::now(),
            ))
        });
        if start("spamd", STACK, job, &mut reports) {
            pending_spam.push("spamd");
        }
    }
    if rspamd_wanted {
        let (cfg, msg, rcpts) = (cfg.clone(), msg.clone(), recipients.to_vec());
        let sender = sender.to_string();
        let job = Box::new(move || Done::Report(run_rspamd(&cfg, &msg, &sender, &rcpts)));
        if start("rspamd", STACK, job, &mut reports) {
            pending_spam.push("rspamd");
        }
    }
    drop(tx);
    let mut blocked_by: Option<&str> = None;
    let hold_until = checks_started + GATE_HOLD;
    while pending_other > 0 || !pending_spam.is_empty() {
        if pending_other == 0 {
            if let Some(g) = &gate {
                g.open(blocked_by.is_none());
            }
            if let Some(why) = blocked_by {
                for name in pending_spam.drain(..) {
                    let skipped = Outcome::Skipped(format!("not needed: the message is {why}"));
                    reports.push(ScanReport::unanswered(name, Kind::Spam, skipped));
                }
                break;
            }
        }
        let next = if spamd_here {
            match rx.recv_timeout(hold_until.saturating_duration_since(Instant::now())) {
                Ok(done) => Ok(done),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    // The other checks are slow: scan now, as the gate lets go after its hold.
                    spamd_here = false;
                    reports.push(run_spamd(cfg, msg, recipients, None, checks_started));
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => Err(mpsc::RecvError),
            }
        } else {
            rx.recv()
        };
        match next {
            Ok(Done::Report(r)) => {
                match pending_spam.iter().position(|n| *n == r.scanner) {
                    Some(i) if r.kind == Kind::Spam => {
                        pending_spam.remove(i);
                    }
                    _ => pending_other -= 1,
                }
                if blocking.virus && matches!(r.outcome, Outcome::Infected(_)) {
                    blocked_by = Some("INFECTED");
                }
                reports.push(r);
            }
            Ok(Done::Banned(b)) => {
                pending_other -= 1;
                if blocking.banned && b.as_ref().is_ok_and(|v| !v.is_empty()) {
                    blocked_by = blocked_by.or(Some("BANNED"));
                }
                banned = b;
            }
            // Every job's sender is gone without an answer: a thread died (a panic would
            // have ended the process through the panic hook; this is belt and braces).
            Err(_) => {
                let gone = || Outcome::Failed("scanner thread ended without an answer".into());
                for name in pending_spam.drain(..) {
                    reports.push(ScanReport::unanswered(name, Kind::Spam, gone()));
                }
                if pending_other > 0 {
                    reports.push(ScanReport::unanswered("virus", Kind::Virus, gone()));
                }
                break;
            }
        }
    }
    if let Some(g) = &gate {
        g.open(blocked_by.is_none());
    }
    if spamd_here {
        reports.push(match blocked_by {
            Some(why) => {
                let skipped = Outcome::Skipped(format!("not needed: the message is {why}"));
                ScanReport::unanswered("spamd", Kind::Spam, skipped)
            }
            None => run_spamd(cfg, msg, recipients, None, checks_started),
        });
    }
    Results { reports, banned }
}

/// clamd first; the command-line scanners (in order) only when clamd is not configured or
/// failed, as amavisd's backup scanners.
fn run_virus(cfg: &Config, msg: &[u8]) -> ScanReport {
    let mut errors = Vec::new();
    if !cfg.clamd.servers.is_empty() {
        let r = run_clamd(cfg, msg);
        match &r.outcome {
            Outcome::Failed(e) => errors.push(e.clone()),
            _ => return r,
        }
    }
    let started = Instant::now();
    if !cfg.av_command.is_empty() {
        // The commands read the message from a private temp file.
        let file = tempfile::Builder::new()
            .prefix("pipescan-scan-")
            .tempfile_in(&cfg.general.tempdir)
            .and_then(|mut f| {
                std::io::Write::write_all(&mut f, msg)?;
                Ok(f)
            });
        match file {
            Err(e) => errors.push(format!(
                "cannot write the message for the command scanners in {}: {e}",
                cfg.general.tempdir.display()
            )),
            Ok(f) => {
                for c in &cfg.av_command {
                    match command::scan(c, f.path(), Instant::now() + c.timeout.0) {
                        Ok(v) => {
                            if !errors.is_empty() {
                                crate::log::warn(&format!(
                                    "{}; backup scanner {} answered",
                                    errors.join("; "),
                                    c.name
                                ));
                            }
                            return ScanReport {
                                scanner: "av_command",
                                kind: Kind::Virus,
                                outcome: match v {
                                    command::CmdVerdict::Clean => Outcome::Clean,
                                    command::CmdVerdict::Infected(n) => Outcome::Infected(n),
                                },
                                server: Some(c.name.clone()),
                                elapsed: started.elapsed(),
                            };
                        }
                        Err(e) => errors.push(e),
                    }
                }
            }
        }
    }
    ScanReport {
        scanner: if cfg.av_command.is_empty() {
            "clamd"
        } else {
            "virus scanners"
        },
        kind: Kind::Virus,
        outcome: Outcome::Failed(errors.join("; ")),
        server: None,
        elapsed: started.elapsed(),
    }
}

fn run_rspamd(cfg: &Config, msg: &[u8], sender: &str, recipients: &[String]) -> ScanReport {
    let c = &cfg.rspamd;
    let started = Instant::now();
    let report = |outcome, server| ScanReport {
        scanner: "rspamd",
        kind: Kind::Spam,
        outcome,
        server,
        elapsed: started.elapsed(),
    };
    if msg.len() as u64 > c.max_size.0 {
        return report(
            Outcome::Skipped(format!(
                "not spam-checked by rspamd: {} bytes is above rspamd.max_size ({})",
                msg.len(),
                c.max_size
            )),
            None,
        );
    }
    let env = rspamd::Envelope {
        from: sender,
        rcpts: recipients,
        hostname: "",
        queue_id: None,
        user: None,
    };
    let password = (!c.password.is_empty()).then_some(c.password.as_str());
    let (result, server) = walk_pool(&c.servers, c.load_balance, |addr| {
        rspamd::check(
            addr,
            msg,
            &env,
            password,
            c.connect_timeout.0,
            Instant::now() + c.timeout.0,
        )
    });
    match result {
        // Our own levels apply to rspamd's score, as they do to spamd's.
        Ok(r) => report(
            Outcome::Spam(crate::verdict::SpamReport {
                is_spam: r.action != "no action",
                score: r.score,
                required: r.required,
                tests: r.symbols,
            }),
            server,
        ),
        Err(e) => report(Outcome::Failed(e), None),
    }
}

fn run_clamd(cfg: &Config, msg: &[u8]) -> ScanReport {
    let c = &cfg.clamd;
    let started = Instant::now();
    let (result, server) = walk_pool(&c.servers, c.load_balance, |addr| {
        clamd::scan(
            addr,
            &mut &msg[..],
            c.connect_timeout.0,
            Instant::now() + c.timeout.0,
        )
    });
    let outcome = match result {
        Ok(clamd::ClamVerdict::Clean) => Outcome::Clean,
        Ok(clamd::ClamVerdict::Infected(names)) => Outcome::Infected(names),
        Ok(clamd::ClamVerdict::SizeLimit) => Outcome::Unchecked(
            "larger than clamd's StreamMaxLength (INSTREAM size limit exceeded)".into(),
        ),
        Err(e) => Outcome::Failed(e),
    };
    ScanReport {
        scanner: "clamd",
        kind: Kind::Virus,
        outcome,
        server,
        elapsed: started.elapsed(),
    }
}

/// `started`: when the checks began; spamd's timeout counts from then, whether it waited for
/// the gate on a thread of its own or on the caller's.
fn run_spamd(
    cfg: &Config,
    msg: &[u8],
    recipients: &[String],
    gate: Option<&Gate>,
    started: Instant,
) -> ScanReport {
    let c = &cfg.spamd;
    let report = |outcome, server| ScanReport {
        scanner: "spamd",
        kind: Kind::Spam,
        outcome,
        server,
        elapsed: started.elapsed(),
    };
    if msg.len() as u64 > c.max_size.0 {
        return report(
            Outcome::Skipped(format!(
                "not spam-checked: {} bytes is above spamd.max_size ({})",
                msg.len(),
                c.max_size
            )),
            None,
        );
    }
    // One recipient: check as that user (per-user preferences, like `spamc -u`).
    let user = match recipients {
        [one] => Some(one.as_str()),
        _ if !c.default_user.is_empty() => Some(c.default_user.as_str()),
        _ => None,
    };
    // The first server's time counts from `started`; a failover server gets a whole timeout.
    let mut deadline = started + c.timeout.0;
    let (result, server) = walk_pool(&c.servers, c.load_balance, |addr| {
        let r = spamd::check(addr, msg, user, c.connect_timeout.0, deadline, gate);
        deadline = Instant::now() + c.timeout.0;
        r
    });
    match result {
        Ok(r) => report(Outcome::Spam(r), server),
        Err(e) => report(Outcome::Failed(e), None),
    }
}

/// Contacts every configured server and prints one line each; true when all answered.
pub fn ping_all(cfg: &Config) -> bool {
    let mut ok = true;
    let pools = [
        (
            "spamd",
            &cfg.spamd.servers,
            cfg.spamd.connect_timeout.0,
            cfg.spamd.timeout.0,
        ),
        (
            "clamd",
            &cfg.clamd.servers,
            cfg.clamd.connect_timeout.0,
            cfg.clamd.timeout.0,
        ),
        (
            "rspamd",
            &cfg.rspamd.servers,
            cfg.rspamd.connect_timeout.0,
            cfg.rspamd.timeout.0,
        ),
    ];
    for (name, servers, connect, timeout) in pools {
        for s in servers {
            let started = Instant::now();
            let result = s.parse::<ServerAddr>().and_then(|a| {
                let deadline = Instant::now() + timeout;
                match name {
                    "spamd" => spamd::ping(&a, connect, deadline),
                    "clamd" => clamd::ping(&a, connect, deadline),
                    _ => rspamd::ping(&a, connect, deadline),
                }
            });
            match result {
                Ok(()) => println!(
                    "# ping {name} {s}: answers ({} ms)",
                    started.elapsed().as_millis()
                ),
                Err(e) => {
                    ok = false;
                    println!("# ping {name} {s}: NO ANSWER: {e}");
                }
            }
        }
    }
    ok
}

/// Tries each server until one answers; returns its answer and name, or every error joined.
fn walk_pool<T>(
    servers: &[String],
    load_balance: bool,
    mut f: impl FnMut(&ServerAddr) -> Result<T, String>,
) -> (Result<T, String>, Option<String>) {
    let start = if load_balance && servers.len() > 1 {
        random_index(servers.len())
    } else {
        0
    };
    let mut errors = Vec::new();
    for i in 0..servers.len() {
        let name = &servers[(start + i) % servers.len()];
        let addr = match name.parse::<ServerAddr>() {
            Ok(a) => a,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match f(&addr) {
            Ok(v) => {
                if !errors.is_empty() {
                    crate::log::warn(&format!("{}; failed over to {name}", errors.join("; ")));
                }
                return (Ok(v), Some(name.clone()));
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        errors.push("no servers configured".into());
    }
    (Err(errors.join("; ")), None)
}

/// A per-process random index: RandomState is seeded from the OS for each process.
fn random_index(n: usize) -> usize {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    (h.finish() % n as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_fails_over_in_order_and_joins_errors() {
        let servers = vec!["/a.sock".to_string(), "/b.sock".into(), "/c.sock".into()];
        let mut tried = Vec::new();
        let (r, who) = walk_pool(&servers, false, |a| {
            tried.push(a.to_string());
            if a.to_string() == "/b.sock" {
                Ok(42)
            } else {
                Err(format!("{a}: refused"))
            }
        });
        assert_eq!((r, who.as_deref()), (Ok(42), Some("/b.sock")));
        assert_eq!(tried, ["/a.sock", "/b.sock"]);
        let (r, who) = walk_pool(&servers, false, |a| Err::<(), _>(format!("{a}: down")));
        assert_eq!(r, Err("/a.sock: down; /b.sock: down; /c.sock: down".into()));
        assert_eq!(who, None);
    }

    /// With a gate, spamd runs on the caller's thread once the virus check is done; a virus
    /// check slower than GATE_HOLD holds spamd back no longer than that, and spamd's timeout
    /// still counts from the start of the checks.
    #[test]
    fn a_slow_virus_check_holds_spamd_back_for_gate_hold_only() {
        use crate::scan::testdata::fault_server;
        use std::sync::mpsc::channel;
        // clamd reads everything and never answers: it fails at its 3 s timeout.
        let (clamd, _c) = fault_server(|mut s| {
            let _ = std::io::copy(&mut s, &mut std::io::sink());
            std::thread::sleep(Duration::from_secs(4));
        });
        let (tx, rx) = channel();
        let (spamd, _s) = fault_server(move |s| {
            let _ = tx.send(Instant::now());
            drop(s);
        });
        let cfg = Arc::new(
            crate::config::load::parse(
                &format!(
                    "[clamd]\nservers = [\"{clamd}\"]\ntimeout = \"3s\"\n\
                     [spamd]\nservers = [\"{spamd}\"]\ntimeout = \"10s\"\n"
                ),
                "t",
                None,
            )
            .unwrap(),
        );
        let msg = Arc::new(b"Subject: t\n\nbody\n".to_vec());
        let wanted = Wanted {
            virus: true,
            spam: true,
            banned: true,
        };
        let blocking = Blocking {
            virus: true,
            banned: true,
        };
        let t0 = Instant::now();
        let r = run_all(
            &cfg,
            &msg,
            "a@example.org",
            &["b@example.com".into()],
            wanted,
            blocking,
        );
        let took = t0.elapsed();
        let connected = rx.try_recv().expect("spamd was never contacted") - t0;
        assert!(
            connected >= GATE_HOLD - Duration::from_millis(50)
                && connected < GATE_HOLD + Duration::from_millis(700),
            "spamd contacted after {connected:?}"
        );
        assert!(took < Duration::from_millis(3900), "took {took:?}");
        let names: Vec<_> = r.reports.iter().map(|r| r.scanner).collect();
        assert!(
            names.contains(&"spamd") && names.contains(&"clamd"),
            "{names:?}"
        );
    }

    #[test]
    fn load_balance_still_tries_every_server() {
        let servers: Vec<String> = (0..5).map(|i| format!("/s{i}.sock")).collect();
        let mut n = 0;
        let (r, _) = walk_pool(&servers, true, |_| {
            n += 1;
            Err::<(), _>("x".to_string())
        });
        assert!(r.is_err());
        assert_eq!(n, 5);
        assert!(random_index(5) < 5);
    }
}
