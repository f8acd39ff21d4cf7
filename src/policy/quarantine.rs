//! Whether the message is quarantined, and as what (amavisd's %c).

use crate::config::settings::Config;
use crate::policy::recipient::Recipients;
use crate::verdict::{Category, Verdict};

/// The quarantine name (%c) of the message's `category` when its quarantine is enabled,
/// amavisd style: whatever the destiny (blocked, or passed to lovers or by a `pass` destiny).
/// Spam is kept only if some recipient whose verdict is SPAM scored below its own
/// quarantine_cutoff_level ([[per_recipient]], else spam.quarantine_cutoff_level, else none):
/// a recipient at or above its cutoff wants no copy. `verdicts` are in `recipients`' order.
pub fn quarantine_as(
    cfg: &Config,
    recipients: &Recipients,
    category: Category,
    verdicts: &[Verdict],
) -> Option<&'static str> {
    let q = &cfg.quarantine;
    match category {
        Category::Virus if q.virus => Some("virus"),
        Category::Banned if q.banned => Some("banned"),
        Category::Unchecked if q.unchecked => Some("unchecked"),
        Category::Spam if q.spam => verdicts
            .iter()
            .zip(&recipients.list)
            .filter(|(v, _)| v.category == Category::Spam)
            .any(|(v, r)| {
                r.levels
                    .quarantine_cutoff
                    .is_none_or(|cut| v.score.is_none_or(|s| s < cut))
            })
            .then_some("spam"),
        Category::BadHeader if q.bad_header => Some("badh"),
        Category::Virus
        | Category::Banned
        | Category::Unchecked
        | Category::Spam
        | Category::Spammy
        | Category::BadHeader
        | Category::Oversized
        | Category::Clean => None,
    }
}
