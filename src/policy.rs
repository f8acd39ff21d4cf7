//! Per-recipient decisions: from what the scanners found to a category, a destiny and the header
//! edits for each recipient.
//!
//! Contract: pure functions of (facts about the message, recipients, settings); no I/O. The
//! categories follow amavisd-new's order (see [`Category`]): the most severe category whose
//! destiny is not pass decides; when every category present passes, the most severe one names
//! the message ("Passed SPAMMY").

use crate::config::{Config, Destiny, OnFailure};
use crate::message::Edits;
use crate::scan::{Kind, Outcome, ScanReport, spamd::SpamReport};
use std::fmt;

/// amavisd-new's content categories, most severe first (the derived order is severity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    Virus,
    Unchecked,
    Spam,
    Spammy,
    Oversized,
    Clean,
}

impl Category {
    /// The name used in log lines, as amavisd writes them ("Blocked INFECTED", "Passed CLEAN").
    pub fn name(self) -> &'static str {
        match self {
            Category::Virus => "INFECTED",
            Category::Unchecked => "UNCHECKED",
            Category::Spam => "SPAM",
            Category::Spammy => "SPAMMY",
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
                (Outcome::Unchecked(why), _) => f.virus_unchecked = Some(why.clone()),
                (Outcome::Failed(why), Kind::Virus) => f.virus_failed = Some(why.clone()),
                (Outcome::Failed(why), Kind::Spam) => f.spam_failed = Some(why.clone()),
                (Outcome::Spam(report), _) => f.spam = Some(report.clone()),
                (Outcome::Skipped(why), _) => f.spam_skipped = Some(why.clone()),
                (Outcome::Clean, _) => {}
            }
        }
        f
    }
}

/// The decision for one recipient.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub recipient: String,
    pub category: Category,
    pub destiny: Destiny,
    /// What the category is about, for logs and refusals: virus names, "score=…", a failure.
    pub reason: String,
    pub edits: Edits,
}

/// Field names we always remove from incoming mail: a copy from outside is forged.
pub const FORGEABLE: &[&str] = &["X-Spam-*", "X-Quarantine-ID", ALERT];

/// Our alert field: what a recipient should know about a message we passed anyway.
pub const ALERT: &str = "X-Pipescan-Alert";

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

/// Is `rcpt` in local_domains? An empty list makes every recipient local (so spam headers are
/// never silently missing, amavisd's classic trap). "example.com" matches that domain,
/// ".example.com" the domain and its subdomains.
pub fn is_local(cfg: &Config, rcpt: &str) -> bool {
    let domains = &cfg.general.local_domains;
    if domains.is_empty() {
        return true;
    }
    let domain = rcpt
        .rsplit_once('@')
        .map_or("", |(_, d)| d)
        .to_ascii_lowercase();
    domains.iter().any(|d| {
        let d = d.to_ascii_lowercase();
        match d.strip_prefix('.') {
            Some(parent) => domain == parent || domain.ends_with(&d),
            None => domain == d,
        }
    })
}

/// A whole-message answer that overrides per-recipient verdicts (a failed scan under a
/// fail-closed policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub status: &'static str,
    pub reason: String,
}

/// Decides for every recipient. With no recipients (procmail), one verdict for the empty
/// recipient stands for the message.
pub fn decide(
    cfg: &Config,
    hostname: &str,
    facts: &Facts,
    recipients: &[String],
) -> Result<Vec<Verdict>, Hold> {
    if let (Some(why), OnFailure::Tempfail) = (&facts.virus_failed, cfg.virus.on_failure) {
        return Err(Hold {
            status: "4.3.0",
            reason: format!("virus scan failed, message kept for retry: {why}"),
        });
    }
    if let (Some(why), OnFailure::Tempfail) = (&facts.spam_failed, cfg.spam.on_failure) {
        return Err(Hold {
            status: "4.3.0",
            reason: format!("spam scan failed, message kept for retry: {why}"),
        });
    }
    let one = |r: &str| verdict(cfg, hostname, facts, r);
    Ok(if recipients.is_empty() {
        vec![one("")]
    } else {
        recipients.iter().map(|r| one(r)).collect()
    })
}

fn verdict(cfg: &Config, hostname: &str, facts: &Facts, rcpt: &str) -> Verdict {
    let sp = &cfg.spam;
    let score = facts.spam.as_ref().map(|s| s.score);
    let unchecked = facts.virus_unchecked.clone().or_else(|| {
        (cfg.virus.on_failure == OnFailure::Unchecked)
            .then(|| facts.virus_failed.clone())
            .flatten()
    });
    // Every category that applies, most severe first, with its destiny and reason.
    let mut present: Vec<(Category, Destiny, String)> = Vec::new();
    if !facts.viruses.is_empty() {
        present.push((Category::Virus, cfg.destiny.virus, facts.viruses.join(", ")));
    }
    if let Some(why) = &unchecked {
        present.push((Category::Unchecked, cfg.destiny.unchecked, why.clone()));
    }
    if let Some(s) = score {
        if s >= sp.kill_level {
            present.push((
                Category::Spam,
                cfg.destiny.spam,
                format!("score={}", num(s)),
            ));
        } else if s >= sp.tag2_level {
            present.push((Category::Spammy, Destiny::Pass, format!("score={}", num(s))));
        }
    }
    if facts.oversized {
        present.push((
            Category::Oversized,
            cfg.destiny.oversized,
            "not scanned".into(),
        ));
    }
    let (category, destiny, reason) = present
        .iter()
        .find(|(_, d, _)| *d != Destiny::Pass)
        .or(present.first())
        .cloned()
        .unwrap_or((Category::Clean, Destiny::Pass, String::new()));
    let worst = present.first().map_or(Category::Clean, |p| p.0);

    let local = is_local(cfg, rcpt);
    let mut edits = base_edits(cfg, hostname);
    if !facts.viruses.is_empty() {
        edits.add.push((
            ALERT.into(),
            format!(
                "INFECTED, message contains virus: {}",
                facts.viruses.join(", ")
            ),
        ));
    }
    if unchecked.is_some() {
        edits.add.push((
            ALERT.into(),
            "UNCHECKED, message could not be virus-checked".into(),
        ));
    } else if facts.virus_failed.is_some() {
        edits.add.push((
            ALERT.into(),
            "not virus-checked: virus scanner unavailable".into(),
        ));
    }
    if facts.spam_failed.is_some() {
        edits.add.push((
            ALERT.into(),
            "not spam-checked: spam scanner unavailable".into(),
        ));
    }
    if let (Some(report), true) = (&facts.spam, local)
        && report.score >= sp.tag_level
    {
        edits
            .add
            .extend(spam_fields(report, sp.tag_level, sp.tag2_level));
    }
    let tag = match worst {
        Category::Virus => &cfg.headers.virus_subject_tag,
        Category::Unchecked => &cfg.headers.unchecked_subject_tag,
        Category::Spam | Category::Spammy if local => &cfg.headers.spam_subject_tag,
        _ => "",
    };
    if !tag.is_empty() {
        edits.subject_tag = Some(tag.to_string());
    }
    Verdict {
        recipient: rcpt.to_string(),
        category,
        destiny,
        reason,
        edits,
    }
}

/// amavisd's X-Spam-* fields, in its order and formats:
/// `X-Spam-Flag: YES`, `X-Spam-Score: 1000.1`, `X-Spam-Level: ***…` (one star per whole point,
/// at most 64), `X-Spam-Status: Yes, score=1000.1 tagged_above=2 required=6.2 tests=[GTUBE=1000,
/// MISSING_DATE=1.396]`.
pub fn spam_fields(r: &SpamReport, tag_level: f64, tag2_level: f64) -> Vec<(String, String)> {
    let spammy = r.score >= tag2_level;
    let stars = if r.score >= 1.0 {
        (r.score.floor() as usize).min(64)
    } else {
        0
    };
    // amavisd lists the tests sorted by name.
    let mut tests: Vec<&(String, f64)> = r.tests.iter().collect();
    tests.sort_by(|a, b| a.0.cmp(&b.0));
    let tests = tests
        .iter()
        .map(|(n, s)| format!("{n}={}", num(*s)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut v = vec![
        (
            "X-Spam-Flag".to_string(),
            if spammy { "YES" } else { "NO" }.to_string(),
        ),
        ("X-Spam-Score".to_string(), num(r.score)),
    ];
    if stars > 0 {
        v.push(("X-Spam-Level".to_string(), "*".repeat(stars)));
    }
    v.push((
        "X-Spam-Status".to_string(),
        format!(
            "{}, score={} tagged_above={} required={} tests=[{}]",
            if spammy { "Yes" } else { "No" },
            num(r.score),
            num(tag_level),
            num(tag2_level),
            tests
        ),
    ));
    v
}

/// A score as amavisd prints it: up to three decimals, no trailing zeros ("1000", "6.2", "-0.1").
pub fn num(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        crate::config::parse("", "t", None).unwrap()
    }

    fn spam(score: f64) -> Facts {
        Facts {
            spam: Some(SpamReport {
                is_spam: score >= 5.0,
                score,
                required: 5.0,
                tests: vec![("GTUBE".into(), 1000.0), ("NO_RELAYS".into(), -0.001)],
            }),
            ..Facts::default()
        }
    }

    fn one(c: &Config, f: &Facts, r: &str) -> Verdict {
        decide(c, "mx.test", f, &[r.to_string()]).unwrap().remove(0)
    }

    #[test]
    fn clean_message_passes_with_scanned_tag() {
        let v = one(&cfg(), &Facts::default(), "a@b");
        assert_eq!((v.category, v.destiny), (Category::Clean, Destiny::Pass));
        assert_eq!(
            v.edits.add,
            [(
                "X-Virus-Scanned".to_string(),
                "pipescan at mx.test".to_string()
            )]
        );
        assert_eq!(v.edits.subject_tag, None);
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
            let f = Facts {
                oversized: true,
                ..Facts::default()
            };
            let v = decide(&c, "h", &f, &["a@b".into(), "c@d".into()]).unwrap();
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
        let v = decide(&c, "h", &Facts::default(), &[]).unwrap();
        assert!(v[0].edits.add.is_empty());
        assert_eq!(v[0].recipient, "");
    }

    #[test]
    fn gtube_is_spam_with_amavisd_headers_and_tag() {
        let v = one(&cfg(), &spam(1000.1), "a@b");
        assert_eq!((v.category, v.destiny), (Category::Spam, Destiny::Pass));
        assert_eq!(v.reason, "score=1000.1");
        let add: Vec<String> = v
            .edits
            .add
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        assert_eq!(
            add,
            [
                "X-Virus-Scanned: pipescan at mx.test".to_string(),
                "X-Spam-Flag: YES".into(),
                "X-Spam-Score: 1000.1".into(),
                format!("X-Spam-Level: {}", "*".repeat(64)),
                "X-Spam-Status: Yes, score=1000.1 tagged_above=2 required=6.2 tests=[GTUBE=1000, NO_RELAYS=-0.001]".into(),
            ]
        );
        assert_eq!(v.edits.subject_tag.as_deref(), Some("***SPAM*** "));
    }

    #[test]
    fn levels_decide_headers_flag_and_tag() {
        let c = cfg();
        // Below tag_level: nothing.
        let v = one(&c, &spam(1.9), "a@b");
        assert_eq!(v.category, Category::Clean);
        assert_eq!(v.edits.add.len(), 1);
        // At tag_level: headers, flag NO, 2 stars, no subject tag.
        let v = one(&c, &spam(2.0), "a@b");
        assert_eq!(v.category, Category::Clean);
        assert!(v.edits.add.contains(&("X-Spam-Flag".into(), "NO".into())));
        assert!(v.edits.add.contains(&("X-Spam-Level".into(), "**".into())));
        assert_eq!(v.edits.subject_tag, None);
        // At tag2: SPAMMY, YES, tagged, still passed even if the spam destiny blocks.
        let mut c2 = c.clone();
        c2.destiny.spam = Destiny::Discard;
        let v = one(&c2, &spam(6.2), "a@b");
        assert_eq!((v.category, v.destiny), (Category::Spammy, Destiny::Pass));
        assert!(v.edits.add.contains(&("X-Spam-Flag".into(), "YES".into())));
        assert_eq!(v.edits.subject_tag.as_deref(), Some("***SPAM*** "));
        // At kill level the spam destiny applies.
        let v = one(&c2, &spam(6.9), "a@b");
        assert_eq!((v.category, v.destiny), (Category::Spam, Destiny::Discard));
    }

    #[test]
    fn non_local_recipients_get_no_spam_headers_or_tag() {
        let mut c = cfg();
        c.general.local_domains = vec!["example.com".into(), ".example.net".into()];
        for (r, local) in [
            ("a@example.com", true),
            ("a@EXAMPLE.com", true),
            ("a@sub.example.com", false),
            ("a@example.net", true),
            ("a@deep.sub.example.net", true),
            ("a@badexample.net", false),
            ("a@other.org", false),
        ] {
            assert_eq!(is_local(&c, r), local, "{r}");
            let v = one(&c, &spam(1000.0), r);
            assert_eq!(
                v.category,
                Category::Spam,
                "category does not depend on locality"
            );
            assert_eq!(v.edits.subject_tag.is_some(), local, "{r}");
            assert_eq!(
                v.edits.add.iter().any(|(n, _)| n == "X-Spam-Flag"),
                local,
                "{r}"
            );
        }
    }

    #[test]
    fn virus_beats_spam_and_is_discarded_by_default() {
        let mut f = spam(1000.0);
        f.viruses = vec!["Test.EICAR-NDB.UNOFFICIAL".into()];
        let v = one(&cfg(), &f, "a@b");
        assert_eq!((v.category, v.destiny), (Category::Virus, Destiny::Discard));
        assert_eq!(v.reason, "Test.EICAR-NDB.UNOFFICIAL");
        assert_eq!(v.edits.subject_tag.as_deref(), Some("***INFECTED*** "));
    }

    #[test]
    fn passing_categories_let_a_lower_blocking_one_decide() {
        let mut c = cfg();
        c.destiny.virus = Destiny::Pass;
        c.destiny.spam = Destiny::Reject;
        let mut f = spam(1000.0);
        f.viruses = vec!["V".into()];
        let v = one(&c, &f, "a@b");
        assert_eq!((v.category, v.destiny), (Category::Spam, Destiny::Reject));
        // Still tagged as the worst category found.
        assert_eq!(v.edits.subject_tag.as_deref(), Some("***INFECTED*** "));
        assert!(
            v.edits
                .add
                .iter()
                .any(|(n, v)| n == ALERT && v.contains("virus: V"))
        );
    }

    #[test]
    fn virus_scan_failure_policies() {
        let f = Facts {
            virus_failed: Some("clamd /x.sock: connection refused".into()),
            ..Facts::default()
        };
        let c = cfg();
        let hold = decide(&c, "h", &f, &["a@b".into()]).unwrap_err();
        assert!(
            hold.reason.contains("connection refused"),
            "{}",
            hold.reason
        );
        let mut c2 = c.clone();
        c2.virus.on_failure = OnFailure::Unchecked;
        let v = one(&c2, &f, "a@b");
        assert_eq!(
            (v.category, v.destiny),
            (Category::Unchecked, Destiny::Pass)
        );
        assert_eq!(v.edits.subject_tag.as_deref(), Some("***UNCHECKED*** "));
        c2.virus.on_failure = OnFailure::Pass;
        let v = one(&c2, &f, "a@b");
        assert_eq!(v.category, Category::Clean);
        assert!(
            v.edits
                .add
                .iter()
                .any(|(n, v)| n == ALERT && v.starts_with("not virus-checked"))
        );
    }

    #[test]
    fn spam_scan_failure_passes_with_alert_by_default() {
        let f = Facts {
            spam_failed: Some("spamd 127.0.0.1:1: refused".into()),
            ..Facts::default()
        };
        let v = one(&cfg(), &f, "a@b");
        assert_eq!((v.category, v.destiny), (Category::Clean, Destiny::Pass));
        assert!(v.edits.add.contains(&(
            ALERT.into(),
            "not spam-checked: spam scanner unavailable".into()
        )));
        let mut c = cfg();
        c.spam.on_failure = OnFailure::Tempfail;
        assert!(decide(&c, "h", &f, &["a@b".into()]).is_err());
    }

    #[test]
    fn clamd_size_limit_is_unchecked_not_clean() {
        let f = Facts {
            virus_unchecked: Some("size limit".into()),
            ..Facts::default()
        };
        let v = one(&cfg(), &f, "a@b");
        assert_eq!(v.category, Category::Unchecked);
        assert_eq!(v.edits.subject_tag.as_deref(), Some("***UNCHECKED*** "));
    }

    #[test]
    fn numbers_print_like_amavisd() {
        assert_eq!(num(1000.0), "1000");
        assert_eq!(num(6.2), "6.2");
        assert_eq!(num(-0.001), "-0.001");
        assert_eq!(num(-0.0), "0");
        assert_eq!(num(3.3456), "3.346");
        assert_eq!(num(2.0), "2");
    }
}
