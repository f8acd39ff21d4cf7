//! The policy sections as written in the file: `[spam]` levels, `[destiny]`, the raw
//! `[lists]` entries, `[[per_recipient]]` and `[dsn]`. Leaf types; the lookup tables are compiled
//! from these strings by `policy::Lists::compile`, once per run, outside the parsed file.

use crate::verdict::{Destiny, OnFailure};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Destinies {
    /// A virus was found (amavisd's final_virus_destiny).
    pub virus: Destiny,
    /// A banned part was found (final_banned_destiny).
    pub banned: Destiny,
    /// The message could not be virus-checked (clamd's size limit, or a failed scan under
    /// virus.on_failure = "unchecked").
    pub unchecked: Destiny,
    /// Spam at or above spam.kill_level (amavisd's final_spam_destiny).
    pub spam: Destiny,
    /// A bad header section (final_bad_header_destiny).
    pub bad_header: Destiny,
    /// Messages above general.max_message_size (not scanned).
    pub oversized: Destiny,
}

impl Default for Destinies {
    fn default() -> Self {
        Destinies {
            virus: Destiny::Discard,
            banned: Destiny::Discard,
            unchecked: Destiny::Pass,
            spam: Destiny::Pass,
            bad_header: Destiny::Pass,
            oversized: Destiny::Pass,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Spam {
    /// Add X-Spam-* fields (for local recipients) at or above this score.
    pub tag_level: f64,
    /// At or above: SPAMMY, "X-Spam-Flag: YES" and the Subject tag.
    pub tag2_level: f64,
    /// At or above: SPAM, and the spam destiny applies.
    pub kill_level: f64,
    /// At or above: no delivery status notification for a bounced/rejected spam.
    pub dsn_cutoff_level: f64,
    /// At or above: spam is not quarantined (none = always quarantine when enabled).
    pub quarantine_cutoff_level: Option<f64>,
    /// When the spam scan fails: "pass" (default, with an alert field) or "tempfail".
    pub on_failure: OnFailure,
}

impl Default for Spam {
    fn default() -> Self {
        Spam {
            tag_level: 2.0,
            tag2_level: 6.2,
            kill_level: 6.9,
            dsn_cutoff_level: 10.0,
            quarantine_cutoff_level: None,
            on_failure: OnFailure::Pass,
        }
    }
}

/// amavisd's per-recipient lookup tables (see pipescan.toml(5) for the entry syntax).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lists {
    pub bypass_virus_checks: Vec<String>,
    pub bypass_spam_checks: Vec<String>,
    pub bypass_banned_checks: Vec<String>,
    pub bypass_header_checks: Vec<String>,
    pub virus_lovers: Vec<String>,
    pub spam_lovers: Vec<String>,
    pub banned_files_lovers: Vec<String>,
    pub bad_header_lovers: Vec<String>,
    /// Envelope senders or authors (From:) whose mail is never spam (score -100).
    pub whitelist_sender: Vec<String>,
    /// Envelope senders or authors (From:) whose mail is always spam (score +100).
    pub blacklist_sender: Vec<String>,
    /// Client networks of our own (amavisd's @mynetworks): IP addresses and CIDR blocks
    /// (`192.0.2.0/24`, `2001:db8::/32`); `[auth] originating_bank` applies to them.
    pub mynetworks: Vec<String>,
}

/// Settings for the recipients matching `recipients` (a lookup table).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PerRecipient {
    pub recipients: Vec<String>,
    pub tag_level: Option<f64>,
    pub tag2_level: Option<f64>,
    pub kill_level: Option<f64>,
    pub dsn_cutoff_level: Option<f64>,
    /// At or above it, this recipient wants no quarantine copy of spam.
    pub quarantine_cutoff_level: Option<f64>,
    pub spam_subject_tag: Option<String>,
    pub whitelist_sender: Vec<String>,
    pub blacklist_sender: Vec<String>,
}

/// When pipescan writes its own delivery status notification (for recipients refused while
/// others get the message) and when it must not (backscatter).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dsn {
    /// Viruses fake their senders: no DSN for a virus (amavisd's viruses_that_fake_sender).
    pub suppress_for_viruses: bool,
    /// No DSN for bulk and list mail (Precedence: bulk/list/junk, List-Id, Auto-Submitted).
    pub suppress_for_bulk: bool,
}

impl Default for Dsn {
    fn default() -> Self {
        Dsn {
            suppress_for_viruses: true,
            suppress_for_bulk: true,
        }
    }
}
