//! What is known about the message once it has been read and scanned: the scanners' reports
//! folded into one value the policy reads.

use crate::verdict::{Kind, Outcome, ScanReport, SpamReport};

/// What is known about the message once it has been read and scanned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// Above general.max_message_size: not scanned.
    pub oversized: bool,
    /// Virus names found by any virus scanner.
    pub viruses: Vec<String>,
    /// Why the message could not be (fully) virus-checked, if so.
    pub virus_unchecked: Option<String>,
    /// Every virus scanner failed: why.
    pub virus_failed: Option<String>,
    /// The spam scan result.
    pub spam: Option<SpamReport>,
    /// The spam scan failed: why.
    pub spam_failed: Option<String>,
    /// The spam scan was skipped on purpose: why.
    pub spam_skipped: Option<String>,
    /// Banned parts, one reason each.
    pub banned: Vec<String>,
    /// Bad header findings.
    pub bad_header: Vec<String>,
    /// The author addresses (From:), for white/blacklists.
    pub authors: Vec<String>,
    /// Bulk or list mail (no DSN): Precedence bulk/list/junk, List-Id, Auto-Submitted.
    pub bulk: bool,
    /// amavisd's pen pals: the (negative) score adjustment per recipient address, for a reply
    /// to mail that recipient sent earlier.
    pub penpals: std::collections::HashMap<String, f64>,
    /// The SQL database could not answer a question of the scan stage (pen pals): why.
    pub sql_failed: Option<String>,
    /// What mail authentication found, when `[auth] verify` is on.
    pub auth: Option<crate::verdict::AuthReport>,
}

impl Facts {
    pub fn from_reports(oversized: bool, reports: &[ScanReport]) -> Facts {
        let mut f = Facts {
            oversized,
            ..Facts::default()
        };
        for r in reports {
            match (&r.outcome, r.kind) {
                (Outcome::Infected(names), _) => f.viruses.extend(names.iter().cloned()),
                // clamd's size limit and the banned walk's encrypted or corrupt archives.
                (Outcome::Unchecked(why), _) => {
                    f.virus_unchecked = Some(match f.virus_unchecked.take() {
                        Some(prev) => format!("{prev}; {why}"),
                        None => why.clone(),
                    })
                }
                (Outcome::Failed(why), Kind::Virus) => f.virus_failed = Some(why.clone()),
                // A message we cannot take apart cannot be said to be free of banned parts.
                // The header checks cannot fail; a report of one that did says nothing.
                (Outcome::Failed(_), Kind::BadHeader) => {}
                (Outcome::Failed(why), Kind::Banned) => {
                    f.virus_unchecked = Some(format!("banned-files check failed: {why}"))
                }
                (Outcome::Failed(why), Kind::Spam) => {
                    f.spam_failed = Some(match f.spam_failed.take() {
                        Some(prev) => format!("{prev}; {why}"),
                        None => why.clone(),
                    })
                }
                // spamd and rspamd both ran: the higher score counts.
                (Outcome::Spam(report), _) => {
                    if f.spam.as_ref().is_none_or(|s| report.score > s.score) {
                        f.spam = Some(report.clone());
                    }
                }
                (Outcome::Skipped(why), _) => f.spam_skipped = Some(why.clone()),
                (Outcome::Banned(reasons), _) => f.banned.extend(reasons.iter().cloned()),
                (Outcome::BadHeader(reasons), _) => f.bad_header.clone_from(reasons),
                (Outcome::Clean, _) => {}
            }
        }
        // One spam scanner answered: the spam check did not fail.
        if f.spam.is_some() {
            f.spam_failed = None;
        }
        f
    }
}
