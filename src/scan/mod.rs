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
pub mod net;
pub mod rspamd;
pub mod spamd;

use crate::config::Config;
use net::ServerAddr;
use std::time::{Duration, Instant};

/// What one scanner concluded.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Virus scanners: nothing found.
    Clean,
    /// Virus scanners: these signature names matched.
    Infected(Vec<String>),
    /// Virus scanners: the scanner could not look at the whole message (clamd's size limit).
    Unchecked(String),
    /// Spam scanners: the score and the tests that hit.
    Spam(spamd::SpamReport),
    /// Not scanned, on purpose (e.g. above spamd.max_size).
    Skipped(String),
    /// Every server failed; the reasons, joined.
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Virus,
    Spam,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScanReport {
    pub scanner: &'static str,
    pub kind: Kind,
    pub outcome: Outcome,
    /// The server that answered, if one did.
    pub server: Option<String>,
    pub elapsed: Duration,
}

/// Which scanners to run for this message (bypass lists decide this later).
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub virus: bool,
    pub spam: bool,
}

/// Runs every configured and wanted scanner on `msg` in parallel.
pub fn run_all(
    cfg: &Config,
    msg: &[u8],
    sender: &str,
    recipients: &[String],
    wanted: Wanted,
) -> Vec<ScanReport> {
    std::thread::scope(|s| {
        let mut jobs = Vec::new();
        if wanted.virus && (!cfg.clamd.servers.is_empty() || !cfg.av_command.is_empty()) {
            jobs.push(s.spawn(|| run_virus(cfg, msg)));
        }
        if wanted.spam && !cfg.spamd.servers.is_empty() {
            jobs.push(s.spawn(|| run_spamd(cfg, msg, recipients)));
        }
        if wanted.spam && !cfg.rspamd.servers.is_empty() {
            jobs.push(s.spawn(|| run_rspamd(cfg, msg, sender, recipients)));
        }
        jobs.into_iter()
            .map(|j| {
                j.join().unwrap_or_else(|_| ScanReport {
                    scanner: "scanner",
                    kind: Kind::Virus,
                    outcome: Outcome::Failed("scanner thread panicked".into()),
                    server: None,
                    elapsed: Duration::ZERO,
                })
            })
            .collect()
    })
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
            Outcome::Spam(spamd::SpamReport {
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

fn run_spamd(cfg: &Config, msg: &[u8], recipients: &[String]) -> ScanReport {
    let c = &cfg.spamd;
    let started = Instant::now();
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
    let (result, server) = walk_pool(&c.servers, c.load_balance, |addr| {
        spamd::check(
            addr,
            msg,
            user,
            c.connect_timeout.0,
            Instant::now() + c.timeout.0,
        )
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
