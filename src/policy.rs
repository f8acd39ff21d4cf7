//! Per-recipient decisions: from what the scanners found to a category, a destiny and the header
//! edits for each recipient.
//!
//! Contract: pure functions of (facts about the message, envelope, settings); no I/O. The
//! categories follow amavisd-new's order (see `Category`); the highest category found decides.

use crate::config::{Config, Destiny};
use crate::message::Edits;
use std::fmt;

/// amavisd-new's content categories, most severe first (the derived order is severity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    Oversized,
    Clean,
}

impl Category {
    /// The name used in log lines ("Passed CLEAN", "Blocked OVERSIZED").
    pub fn name(self) -> &'static str {
        match self {
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

/// What is known about the message once it has been read (and, later, scanned).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Above general.max_message_size: not scanned.
    pub oversized: bool,
}

/// The decision for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub recipient: String,
    pub category: Category,
    pub destiny: Destiny,
    pub edits: Edits,
}

/// Field names we always remove from incoming mail: a copy from outside is forged.
pub const FORGEABLE: &[&str] = &["X-Spam-*", "X-Quarantine-ID"];

/// The edits every copy we pass on gets: forged fields out, our scanned tag in.
pub fn base_edits(cfg: &Config, hostname: &str) -> Edits {
    let mut e = Edits {
        remove_names: FORGEABLE.iter().map(|s| s.to_string()).collect(),
        ..Edits::default()
    };
    let tag = &cfg.headers.x_header_tag;
    if !tag.is_empty() {
        let line = cfg.headers.x_header_line.replace("%h", hostname);
        e.remove_exact.push((tag.clone(), line.clone()));
        e.add.push((tag.clone(), line));
    }
    e
}

/// Decides for every recipient. With no recipients (filter mode without an envelope), one
/// verdict for the empty recipient stands for the message.
pub fn decide(cfg: &Config, hostname: &str, facts: &Facts, recipients: &[String]) -> Vec<Verdict> {
    let category = if facts.oversized {
        Category::Oversized
    } else {
        Category::Clean
    };
    let destiny = match category {
        Category::Oversized => cfg.destiny.oversized,
        Category::Clean => Destiny::Pass,
    };
    let edits = base_edits(cfg, hostname);
    let one = |r: &str| Verdict {
        recipient: r.to_string(),
        category,
        destiny,
        edits: edits.clone(),
    };
    if recipients.is_empty() {
        vec![one("")]
    } else {
        recipients.iter().map(|r| one(r)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        crate::config::parse("", "t", None).unwrap()
    }

    #[test]
    fn clean_message_passes_with_scanned_tag() {
        let v = decide(&cfg(), "mx.test", &Facts::default(), &["a@b".into()]);
        assert_eq!(v.len(), 1);
        assert_eq!(
            (v[0].category, v[0].destiny),
            (Category::Clean, Destiny::Pass)
        );
        assert_eq!(
            v[0].edits.add,
            [(
                "X-Virus-Scanned".to_string(),
                "pipescan at mx.test".to_string()
            )]
        );
    }

    #[test]
    fn oversized_takes_its_configured_destiny() {
        for d in [
            Destiny::Pass,
            Destiny::Discard,
            Destiny::Bounce,
            Destiny::Reject,
            Destiny::Tempfail,
        ] {
            let mut c = cfg();
            c.destiny.oversized = d;
            let f = Facts { oversized: true };
            let v = decide(&c, "h", &f, &["a@b".into(), "c@d".into()]);
            assert!(
                v.iter()
                    .all(|v| v.category == Category::Oversized && v.destiny == d)
            );
        }
    }

    #[test]
    fn scanned_tag_can_be_disabled() {
        let mut c = cfg();
        c.headers.x_header_tag.clear();
        let v = decide(&c, "h", &Facts::default(), &[]);
        assert!(v[0].edits.add.is_empty());
        assert_eq!(v[0].recipient, "");
    }
}
