//! The shared vocabulary: what the stages say to one another. Categories and destinies (amavisd's
//! words), what a scanner found, and the decision for one recipient with the header edits it
//! brings. Every other module imports from here; this one imports nothing of ours, so a new
//! Category or Destiny is caught by the compiler wherever it is matched.

use std::fmt;
use std::time::Duration;

/// amavisd-new's content categories, most severe first (the derived order is severity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    Virus,
    Banned,
    Unchecked,
    Spam,
    Spammy,
    BadHeader,
    Oversized,
    Clean,
}

impl Category {
    /// The name used in log lines, as amavisd writes them ("Blocked INFECTED", "Passed CLEAN").
    pub fn name(self) -> &'static str {
        match self {
            Category::Virus => "INFECTED",
            Category::Banned => "BANNED",
            Category::Unchecked => "UNCHECKED",
            Category::Spam => "SPAM",
            Category::Spammy => "SPAMMY",
            Category::BadHeader => "BAD-HEADER",
            Category::Oversized => "OVERSIZED",
            Category::Clean => "CLEAN",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// amavisd's final_*_destiny values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Destiny {
    Pass,
    Discard,
    Bounce,
    Reject,
    Tempfail,
}

impl fmt::Display for Destiny {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Destiny::Pass => "pass",
            Destiny::Discard => "discard",
            Destiny::Bounce => "bounce",
            Destiny::Reject => "reject",
            Destiny::Tempfail => "tempfail",
        })
    }
}

/// What to do when every server of a scanner failed (refused, timed out, garbage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Exit 75: the MTA keeps the message and retries later.
    Tempfail,
    /// Deliver, with an alert header field and a log entry saying what was not checked.
    Pass,
    /// (virus only) Treat the message as UNCHECKED: its destiny and subject tag apply.
    Unchecked,
}

/// spamd's verdict on one message.
#[derive(Debug, Clone, PartialEq)]
pub struct SpamReport {
    /// spamd's own verdict (`Spam: True`), which already compares score and threshold.
    pub is_spam: bool,
    /// The message's total score, as in the `Spam:` header (one decimal).
    pub score: f64,
    /// The threshold the score was compared with (`required_score` of the spamd user).
    pub required: f64,
    /// Rule names with their points, in spamd's order, as printed in its report.
    pub tests: Vec<(String, f64)>,
}

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
    Spam(SpamReport),
    /// The banned-files check: one reason per banned part (none: nothing banned).
    Banned(Vec<String>),
    /// The bad-header checks: one reason per problem (none: a clean header).
    BadHeader(Vec<String>),
    /// Not scanned, on purpose (e.g. above spamd.max_size).
    Skipped(String),
    /// Every server failed; the reasons, joined.
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Virus,
    Spam,
    /// The banned-files walk: local, cheap, run beside the virus scan.
    Banned,
    /// The bad-header checks: local, cheap, run on the caller's thread.
    BadHeader,
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

impl ScanReport {
    /// A report for a scanner that gave no answer of its own (not started, not waited for).
    pub fn unanswered(scanner: &'static str, kind: Kind, outcome: Outcome) -> ScanReport {
        ScanReport {
            scanner,
            kind,
            outcome,
            server: None,
            elapsed: Duration::ZERO,
        }
    }
}

/// The edits to apply to one copy of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Edits {
    /// Fields to add at the top, in order: (name, value). Values must already be 7-bit.
    pub add: Vec<(String, String)>,
    /// Field names (case-insensitive) to remove; a name ending in `*` is a prefix.
    pub remove_names: Vec<String>,
    /// (name, value) pairs to remove only when the value matches exactly (our own scanned tag).
    pub remove_exact: Vec<(String, String)>,
    /// Tag inserted at the start of every Subject value (e.g. "***SPAM*** ").
    pub subject_tag: Option<String>,
    /// Authentication-Results fields whose authserv-id is one of these (ours and our other
    /// hosts': forged) are removed.
    pub remove_authserv_ids: Vec<String>,
}

/// What mail authentication (scan::auth) found, for the policy, the log line and `--dry-run`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthReport {
    /// The Authentication-Results value, authserv-id first, on one line, 7-bit.
    pub results: String,
    /// The short form for the log line: `dkim=pass spf=none dmarc=pass`.
    pub summary: String,
    /// The From: domain, lowercase (none without exactly one author domain).
    pub author_domain: Option<String>,
    /// A valid DKIM signature without `l=` whose d= is the author domain or a parent of it
    /// (relaxed alignment) proves the author.
    pub author_dkim: bool,
    /// DMARC passed for the author domain.
    pub dmarc_pass: bool,
    /// DMARC failed and the author domain asks for this.
    pub dmarc_failed: Option<DmarcPolicy>,
}

impl AuthReport {
    /// The author is proven: an aligned valid signature, or DMARC pass.
    pub fn author_authenticated(&self) -> bool {
        self.author_dkim || self.dmarc_pass
    }
}

/// The DMARC policies that ask the receiver to act on a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcPolicy {
    Reject,
    Quarantine,
}

/// The decision for one recipient.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub recipient: String,
    pub category: Category,
    pub destiny: Destiny,
    /// What the category is about, for logs and refusals: virus names, "score=…", a reason.
    pub reason: String,
    /// The spam score as it applies to this recipient (after white/blacklisting).
    pub score: Option<f64>,
    /// A refusal for this recipient may be reported to the sender with a DSN.
    pub dsn_allowed: bool,
    pub edits: Edits,
    /// The recipient's own admin for its category (amavisd's per-recipient *_admin, from its
    /// SQL policy row; "" = none), replacing [notify]'s address for it; None: [notify]'s.
    pub admin: Option<String>,
}
