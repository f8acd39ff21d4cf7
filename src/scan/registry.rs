//! The registry: which scanners a configuration has, in the order they start. Adding a scanner
//! is one file in scan/ (its client and its `Scanner` impl) and one line here.

use crate::config::settings::Config;
use crate::envelope::Envelope;
use crate::message::header::Header;
use crate::scan::banned::Banned;
use crate::scan::headers::HeaderChecks;
use crate::scan::rspamd::Rspamd;
use crate::scan::runner::{self, Blocking, Wanted};
use crate::scan::scanner::{Job, Shared};
use crate::scan::spamd::Spamd;
use crate::scan::virus::Virus;
use crate::scan::wire::ServerAddr;
use crate::scan::{clamd, rspamd, spamd};
use crate::verdict::{Kind, Outcome, ScanReport};
use std::sync::Arc;
use std::time::Instant;

/// The configured scanners, each with its own settings.
pub fn configured(cfg: &Config) -> Vec<Shared> {
    let mut v: Vec<Shared> = Vec::new();
    if !cfg.clamd.servers.is_empty() || !cfg.av_command.is_empty() {
        v.push(Arc::new(Virus {
            clamd: cfg.clamd.clone(),
            commands: cfg.av_command.clone(),
            tempdir: cfg.general.tempdir.clone(),
        }));
    }
    if cfg.banned.enabled {
        v.push(Arc::new(Banned {
            settings: cfg.banned.clone(),
        }));
    }
    if cfg.bad_header.enabled {
        v.push(Arc::new(HeaderChecks {
            tests: cfg.bad_header.tests.clone(),
        }));
    }
    if !cfg.spamd.servers.is_empty() {
        v.push(Arc::new(Spamd {
            settings: cfg.spamd.clone(),
        }));
    }
    if !cfg.rspamd.servers.is_empty() {
        v.push(Arc::new(Rspamd {
            settings: cfg.rspamd.clone(),
        }));
    }
    v
}

/// What [`run_all`] found.
#[derive(Debug)]
pub struct Results {
    /// The network scanners' reports.
    pub reports: Vec<ScanReport>,
    /// The banned-files reasons; `Err` when the walk itself failed (the message is UNCHECKED).
    pub banned: Result<Vec<String>, String>,
    /// The bad-header reasons, when the checks ran.
    pub bad_header: Option<Vec<String>>,
    /// What the banned-files walk could not look into (encrypted or corrupt archives), when
    /// nothing was banned: the message is UNCHECKED.
    pub unchecked: Option<String>,
}

/// Runs the configured and wanted scanners of `cfg` on `msg`.
pub fn run_all(
    cfg: &Config,
    msg: &Arc<Vec<u8>>,
    header: &Header,
    env: &Envelope,
    wanted: Wanted,
    blocking: Blocking,
) -> Results {
    let job = Arc::new(Job {
        msg: msg.clone(),
        header: header.clone(),
        sender: env.sender.clone(),
        recipients: env.recipients.clone(),
        client: env.client.clone(),
        started: Instant::now(),
    });
    let all = runner::run(&configured(cfg), &job, wanted, blocking);
    let mut banned = Ok(Vec::new());
    let mut bad_header = None;
    let mut unchecked = None;
    let mut reports = Vec::with_capacity(all.len());
    for r in all {
        match (r.kind, r.outcome) {
            (Kind::BadHeader, Outcome::BadHeader(reasons)) => bad_header = Some(reasons),
            (Kind::BadHeader, _) => {}
            (Kind::Banned, Outcome::Banned(reasons)) => banned = Ok(reasons),
            (Kind::Banned, Outcome::Failed(why)) => banned = Err(why),
            (Kind::Banned, Outcome::Unchecked(why)) => unchecked = Some(why),
            (Kind::Banned, other) => banned = Err(format!("unexpected answer: {other:?}")),
            (kind, outcome) => reports.push(ScanReport { kind, outcome, ..r }),
        }
    }
    Results {
        reports,
        banned,
        bad_header,
        unchecked,
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
                Ok(()) => crate::process::sayln(format_args!(
                    "# ping {name} {s}: answers ({} ms)",
                    started.elapsed().as_millis()
                )),
                Err(e) => {
                    ok = false;
                    crate::process::sayln(format_args!("# ping {name} {s}: NO ANSWER: {e}"));
                }
            }
        }
    }
    // The resolver of mail authentication, when it is used.
    if cfg.auth.verify {
        let which = if cfg.dns.servers.is_empty() {
            "(system resolver)".to_string()
        } else {
            cfg.dns.servers.join(",")
        };
        match crate::dns::ping(&cfg.dns, &cfg.hostname()) {
            Ok(t) => crate::process::sayln(format_args!(
                "# ping dns {which}: answers ({} ms)",
                t.as_millis()
            )),
            Err(e) => {
                ok = false;
                crate::process::sayln(format_args!("# ping dns {which}: NO ANSWER: {e}"));
            }
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::gate::GATE_HOLD;
    use std::time::Duration;

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
            header: false,
        };
        let blocking = Blocking {
            virus: true,
            banned: true,
        };
        let t0 = Instant::now();
        let header = crate::message::header::Header::parse(&msg);
        let r = run_all(
            &cfg,
            &msg,
            &header,
            &Envelope::new("a@example.org".into(), vec!["b@example.com".into()]).unwrap(),
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
}
