//! Per-recipient decisions: from what the scanners found to a category, a destiny and the header
//! edits for each recipient.
//!
//! Contract: pure functions of (facts about the message, per-recipient facts, settings); no I/O,
//! no lookups: the lookup tables are read once, before the policy runs, into a [`recipient`]
//! fact per recipient (a failing lookup source is a tempfail there, in one place). The
//! categories follow amavisd-new's order (see `verdict::Category`): the most severe category
//! whose destiny is not pass decides; when every category present passes, the most severe one
//! names the message ("Passed SPAMMY"). Lovers of a category (and recipients bypassing its check
//! when it ran anyway for others) get it passed, with its header fields and tag.
//! White/blacklisting moves the spam score by -100/+100, as amavisd's soft lists do.
//!
//! - `facts`: what is known about the message once it was scanned.
//! - `lists`: the configuration's lookup tables, compiled once per run.
//! - `recipient`: what the tables say about each recipient (resolved before deciding).
//! - `needed`: which checks must run at all, and which findings block everyone.
//! - `decide`: the verdict for each recipient.
//! - `quarantine`: whether and as what the message is quarantined.
//! - `fields`: the header fields we add and the ones we remove as forged.

pub mod decide;
pub mod facts;
pub mod fields;
pub mod lists;
pub mod needed;
pub mod quarantine;
pub mod recipient;
#[cfg(test)]
mod tests;
