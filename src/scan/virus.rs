//! The virus check: clamd first, then the command-line scanners (`[[av_command]]`, in order)
//! when clamd is not configured or every clamd server failed, as amavisd's backup scanners.

use crate::config::scanners::Clamd;
use crate::scan::clamd;
use crate::scan::command::{self, AvCommand};
use crate::scan::gate::Gate;
use crate::scan::pool::walk_pool;
use crate::scan::scanner::{Job, Scanner};
use crate::verdict::{Kind, Outcome, ScanReport};
use std::path::PathBuf;
use std::time::Instant;

/// The virus scanners of the configuration, as one check.
pub struct Virus {
    pub clamd: Clamd,
    pub commands: Vec<AvCommand>,
    /// Where the command scanners' copy of the message is written.
    pub tempdir: PathBuf,
}

impl Scanner for Virus {
    fn name(&self) -> &'static str {
        "virus"
    }
    fn kind(&self) -> Kind {
        Kind::Virus
    }
    fn scan(&self, job: &Job, _gate: Option<&Gate>) -> ScanReport {
        self.run(&job.msg)
    }
}

impl Virus {
    /// clamd first; the command-line scanners (in order) only when clamd is not configured or
    /// failed, as amavisd's backup scanners.
    fn run(&self, msg: &[u8]) -> ScanReport {
        let mut errors = Vec::new();
        if !self.clamd.servers.is_empty() {
            let r = self.run_clamd(msg);
            match &r.outcome {
                Outcome::Failed(e) => errors.push(e.clone()),
                _ => return r,
            }
        }
        let started = Instant::now();
        if !self.commands.is_empty() {
            // The commands read the message from a private temp file.
            let file = tempfile::Builder::new()
                .prefix("pipescan-scan-")
                .tempfile_in(&self.tempdir)
                .and_then(|mut f| {
                    std::io::Write::write_all(&mut f, msg)?;
                    Ok(f)
                });
            match file {
                Err(e) => errors.push(format!(
                    "cannot write the message for the command scanners in {}: {e}",
                    self.tempdir.display()
                )),
                Ok(f) => {
                    for c in &self.commands {
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
            scanner: if self.commands.is_empty() {
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

    fn run_clamd(&self, msg: &[u8]) -> ScanReport {
        let c = &self.clamd;
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
}
