//! The Scanner interface: one check of the message that answers with a [`ScanReport`].
//!
//! Contract: `scan` never panics on input and never turns a failure into a clean answer: a
//! scanner whose servers all failed answers `Outcome::Failed` with the reasons, and what that
//! means is the policy's business. A scanner holds its own settings (built by
//! `scan::registry` from the configuration), so it depends on no other part of the program.
//! How scanners run together (threads, the gate, who waits for whom) is `scan::runner`'s job;
//! a scanner only says what [`Kind`] of finding it makes and whether it can wait at the gate.

use crate::config::units::Size;
use crate::message::header::Header;
use crate::scan::gate::Gate;
use crate::verdict::{Kind, Outcome, ScanReport};
use std::sync::Arc;
use std::time::Instant;

/// What every scanner of a run looks at: the message (shared, not copied, with threads that may
/// outlive the decision) and the envelope.
#[derive(Debug)]
pub struct Job {
    pub msg: Arc<Vec<u8>>,
    /// The message's header section, parsed once for every scanner that reads it.
    pub header: Header,
    pub sender: String,
    pub recipients: Vec<String>,
    /// The SMTP client, as far as the MTA told us (SPF reads it).
    pub client: crate::envelope::Client,
    /// When the checks began: a gated scanner's timeout counts from here.
    pub started: Instant,
}

pub trait Scanner: Send + Sync {
    /// The name in reports, logs and `--timings` ("clamd", "spamd", ...).
    fn name(&self) -> &'static str;
    /// What its findings are about: decides which `Wanted` flag runs it and which findings
    /// block the message for everyone.
    fn kind(&self) -> Kind;
    /// A spam scanner that can hold its request at the [`Gate`] until the blocking checks are
    /// done (spamd): then no server child is held while clamd works.
    fn gated(&self) -> bool {
        false
    }
    /// Cheap enough to run on the caller's thread while the others run on theirs.
    fn inline(&self) -> bool {
        false
    }
    /// The stack its thread needs.
    fn stack_size(&self) -> usize {
        2 << 20
    }
    /// Scans `job`; `gate` is given to a gated scanner when the runner made one.
    fn scan(&self, job: &Job, gate: Option<&Gate>) -> ScanReport;
}

/// Why a message of `len` bytes is not sent to a scanner limited to `max` bytes by `key`, if
/// it is not (spamd and rspamd keep a size limit of their own: a message above it is not
/// spam-checked, never called clean).
pub fn above_max_size(what: &str, key: &str, len: usize, max: Size) -> Option<Outcome> {
    (len as u64 > max.0).then(|| {
        Outcome::Skipped(format!(
            "not spam-checked{what}: {len} bytes is above {key} ({max})"
        ))
    })
}

/// A scanner shared with the threads that run it.
pub type Shared = Arc<dyn Scanner>;
