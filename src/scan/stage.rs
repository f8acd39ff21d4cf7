//! The scan stage of a run: what every check says about this message, folded into the
//! policy's [`Facts`]. The network scanners are skipped when a trusted loop marker already
//! carries their results; the local checks (banned files, bad header) always run, on the message
//! as it is. An oversized message is not scanned: only the banned-files walk reads its first
//! `max_message_size` bytes, so size is no way around the banned rules.

use crate::config::settings::Config;
use crate::envelope::Envelope;
use crate::message::header::Header;
use crate::policy::facts::Facts;
use crate::policy::needed::{Needed, blocks_everyone};
use crate::policy::recipient::Recipients;
use crate::scan::marker::Stamp;
use crate::scan::registry;
use crate::scan::runner::{Blocking, Wanted};
use crate::spool::Spool;
use crate::verdict::{Category, Outcome, ScanReport};
use std::sync::Arc;

/// What the scan stage found.
pub struct Scanned {
    pub reports: Vec<ScanReport>,
    pub facts: Facts,
    /// The banned-files walk ran to the end (a marker may vouch for this message).
    pub banned_ran: bool,
}

/// Runs the checks `needed` asks for (less what `stamp` covers) and gathers the facts.
pub fn scan(
    cfg: &Arc<Config>,
    spool: &mut Spool,
    header: &Header,
    env: &Envelope,
    rcpts: &Recipients,
    needed: Needed,
    stamp: Option<&Stamp>,
) -> Scanned {
    let (reports, banned, bad_header) = if spool.oversized() {
        (
            Vec::new(),
            oversized_walk(cfg, spool, header, env, needed),
            None,
        )
    } else {
        let wanted = Wanted {
            virus: needed.virus && stamp.is_none(),
            spam: needed.spam && stamp.is_none(),
            banned: needed.banned,
            header: needed.header,
        };
        let blocking = Blocking {
            virus: blocks_everyone(cfg, rcpts, Category::Virus),
            banned: blocks_everyone(cfg, rcpts, Category::Banned),
        };
        let r = registry::run_all(cfg, &spool.head, header, env, wanted, blocking);
        (r.reports, r.banned, r.bad_header)
    };
    for r in &reports {
        match &r.outcome {
            Outcome::Skipped(_) => {
                crate::timings::add(&format!("{} skipped", r.scanner), r.elapsed)
            }
            _ => crate::timings::add(r.scanner, r.elapsed),
        }
        if let Outcome::Failed(why) = &r.outcome {
            crate::log::warn(&format!("{} failed: {why}", r.scanner));
        }
    }
    let mut facts = Facts::from_reports(spool.oversized(), &reports);
    if let Some(s) = stamp {
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
    if let Some(reasons) = bad_header {
        facts.bad_header = reasons;
    }
    facts.authors = crate::message::header::authors(header, &spool.head);
    facts.bulk = crate::message::header::is_bulk(header, &spool.head);
    Scanned {
        reports,
        facts,
        banned_ran,
    }
}

/// The banned-files walk over the first max_message_size bytes of an oversized message.
fn oversized_walk(
    cfg: &Arc<Config>,
    spool: &mut Spool,
    header: &Header,
    env: &Envelope,
    needed: Needed,
) -> Result<Vec<String>, String> {
    if !(needed.banned && cfg.banned.enabled) {
        return Ok(Vec::new());
    }
    match spool.prefix(cfg.general.max_message_size.0) {
        Ok(prefix) => {
            let only_banned = Wanted {
                virus: false,
                spam: false,
                banned: true,
                header: false,
            };
            let prefix = Arc::new(prefix);
            let r = registry::run_all(cfg, &prefix, header, env, only_banned, Blocking::default());
            r.banned
        }
        Err(e) => Err(format!("reading the spool file: {e}")),
    }
}
