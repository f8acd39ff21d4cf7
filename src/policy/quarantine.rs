//! Whether the message is quarantined, and as what (amavisd's %c).

use crate::config::settings::Config;
use crate::lookup::pg::Wishes;
use crate::policy::recipient::Recipients;
use crate::verdict::{Category, Verdict};

/// The quarantine name (%c) of the message's `category` when its quarantine is enabled,
/// amavisd style: whatever the destiny (blocked, or passed to lovers or by a `pass` destiny).
/// Spam is kept only if some recipient whose verdict is SPAM scored below its own
/// quarantine_cutoff_level ([[per_recipient]], else spam.quarantine_cutoff_level, else none):
/// a recipient at or above its cutoff wants no copy. A recipient's own wish (its SQL policy
/// row's *_quarantine_to: "" none, anything else a copy) replaces the [quarantine] flag for
/// it; the message is kept when some recipient wants it. `verdicts` are in `recipients'` order.
pub fn quarantine_as(
    cfg: &Config,
    recipients: &Recipients,
    category: Category,
    verdicts: &[Verdict],
) -> Option<&'static str> {
    let q = &cfg.quarantine;
    // Some recipient wants a copy: its own wish (the SQL policy row), else the configuration's.
    let wanted = |own: fn(&Wishes) -> Option<bool>, default: bool| {
        recipients
            .list
            .iter()
            .any(|r| own(&r.quarantine).unwrap_or(default))
    };
    match category {
        Category::Virus if wanted(|w| w.virus, q.virus) => Some("virus"),
        Category::Banned if wanted(|w| w.banned, q.banned) => Some("banned"),
        Category::Unchecked if wanted(|w| w.unchecked, q.unchecked) => Some("unchecked"),
        Category::Spam => verdicts
            .iter()
            .zip(&recipients.list)
            .filter(|(v, _)| v.category == Category::Spam)
            .any(|(v, r)| {
                r.quarantine.spam.unwrap_or(q.spam)
                    && r.levels
                        .quarantine_cutoff
                        .is_none_or(|cut| v.score.is_none_or(|s| s < cut))
            })
            .then_some("spam"),
        Category::BadHeader if wanted(|w| w.bad_header, q.bad_header) => Some("badh"),
        Category::Virus
        | Category::Banned
        | Category::Unchecked
        | Category::Spammy
        | Category::BadHeader
        | Category::Oversized
        | Category::Clean => None,
    }
}
