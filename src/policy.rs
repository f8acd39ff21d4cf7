//! Per-recipient decisions: from what the scanners found to a category, a destiny and the header
//! edits for each recipient.
//!
//! Contract: pure functions of (facts about the message, envelope, settings); no I/O. The
//! categories follow amavisd-new's order (see [`Category`]): the most severe category whose
//! destiny is not pass decides; when every category present passes, the most severe one names
//! the message ("Passed SPAMMY"). Lovers of a category (and recipients bypassing its check when
//! it ran anyway for others) get it passed, with its header fields and tag. White/blacklisting
//! moves the spam score by -100/+100, as amavisd's soft lists do.

use crate::config::Config;
use crate::lookup::Table;
use crate::verdict::Edits;
use crate::verdict::{
    Category, Destiny, Kind, OnFailure, Outcome, ScanReport, SpamReport, Verdict,
};

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

/// Field names we always remove from incoming mail: a copy from outside is forged. Every
/// field that pipescan reads back is here: the spam fields, the loop marker, and the
/// quarantine block's fields (act::quarantine::record::FIELDS; X-Spam-Score is an X-Spam-* one).
pub const FORGEABLE: &[&str] = &[
    "X-Spam-*",
    ALERT,
    crate::marker::FIELD,
    crate::act::quarantine::record::RECORD,
    "X-Envelope-From",
    "X-Envelope-To",
    "X-Quarantine-ID",
    "X-Pipescan-Category",
];

/// Our alert field: what a recipient should know about a message we passed anyway.
pub const ALERT: &str = "X-Pipescan-Alert";

/// The configuration's lookup tables, compiled once per run.
#[derive(Debug, Clone, Default)]
pub struct Lists {
    pub local_domains: Table,
    pub bypass_virus: Table,
    pub bypass_spam: Table,
    pub bypass_banned: Table,
    pub bypass_header: Table,
    pub virus_lovers: Table,
    pub spam_lovers: Table,
    pub banned_lovers: Table,
    pub bad_header_lovers: Table,
    pub whitelist: Table,
    pub blacklist: Table,
    /// (recipients, whitelist, blacklist) of each [[per_recipient]] entry.
    pub per_recipient: Vec<(Table, Table, Table)>,
}

impl Lists {
    /// Compiles every table; Err names the config key.
    pub fn compile(cfg: &Config) -> Result<Lists, (String, String)> {
        let t = |key: &str, v: &[String]| Table::new(v).map_err(|e| (key.to_string(), e.0));
        let l = &cfg.lists;
        let mut per = Vec::new();
        for p in &cfg.per_recipient {
            per.push((
                t("per_recipient.recipients", &p.recipients)?,
                t("per_recipient.whitelist_sender", &p.whitelist_sender)?,
                t("per_recipient.blacklist_sender", &p.blacklist_sender)?,
            ));
        }
        Ok(Lists {
            local_domains: t("general.local_domains", &cfg.general.local_domains)?,
            bypass_virus: t("lists.bypass_virus_checks", &l.bypass_virus_checks)?,
            bypass_spam: t("lists.bypass_spam_checks", &l.bypass_spam_checks)?,
            bypass_banned: t("lists.bypass_banned_checks", &l.bypass_banned_checks)?,
            bypass_header: t("lists.bypass_header_checks", &l.bypass_header_checks)?,
            virus_lovers: t("lists.virus_lovers", &l.virus_lovers)?,
            spam_lovers: t("lists.spam_lovers", &l.spam_lovers)?,
            banned_lovers: t("lists.banned_files_lovers", &l.banned_files_lovers)?,
            bad_header_lovers: t("lists.bad_header_lovers", &l.bad_header_lovers)?,
            whitelist: t("lists.whitelist_sender", &l.whitelist_sender)?,
            blacklist: t("lists.blacklist_sender", &l.blacklist_sender)?,
            per_recipient: per,
        })
    }

    /// Is `rcpt` local? An empty local_domains makes every recipient local (so spam headers
    /// are never silently missing, amavisd's classic trap).
    pub fn is_local(&self, rcpt: &str) -> bool {
        // No envelope (a procmail filter): the mailbox owner is local by definition.
        self.local_domains.is_empty() || rcpt.is_empty() || self.local_domains.contains(rcpt)
    }
}

/// True when a `category` finding (Virus or Banned) blocks the message for every recipient: its
/// destiny is not pass and nobody loves or bypasses it. Then the spam score cannot change what
/// anyone gets, and the spam scan need not be waited for.
pub fn blocks_everyone(
    cfg: &Config,
    lists: &Lists,
    recipients: &[String],
    category: Category,
) -> bool {
    let (destiny, lovers, bypass) = match category {
        Category::Virus => (cfg.destiny.virus, &lists.virus_lovers, &lists.bypass_virus),
        Category::Banned => (
            cfg.destiny.banned,
            &lists.banned_lovers,
            &lists.bypass_banned,
        ),
        _ => return false,
    };
    destiny != Destiny::Pass
        && !recipients.is_empty()
        && !recipients
            .iter()
            .any(|r| lovers.contains(r) || bypass.contains(r))
}

/// Which checks must run: a check is skipped only when every recipient bypasses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needed {
    pub virus: bool,
    pub spam: bool,
    pub banned: bool,
    pub header: bool,
}

pub fn needed(lists: &Lists, sender: &str, authors: &[String], recipients: &[String]) -> Needed {
    let all = |t: &Table| !recipients.is_empty() && recipients.iter().all(|r| t.contains(r));
    // Spam checks are also pointless when the sender is whitelisted for everyone.
    let all_whitelisted = !recipients.is_empty()
        && recipients
            .iter()
            .all(|r| listed(lists, r, sender, authors) == Some(Listed::White));
    Needed {
        virus: !all(&lists.bypass_virus),
        spam: !all(&lists.bypass_spam) && !all_whitelisted,
        banned: !all(&lists.bypass_banned),
        header: !all(&lists.bypass_header),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listed {
    White,
    Black,
}

/// The recipient's own lists first, then the global ones; whitelist before blacklist.
fn listed(lists: &Lists, rcpt: &str, sender: &str, authors: &[String]) -> Option<Listed> {
    let hit = |t: &Table| t.contains(sender) || authors.iter().any(|a| t.contains(a));
    for (who, white, black) in &lists.per_recipient {
        if who.contains(rcpt) {
            if hit(white) {
                return Some(Listed::White);
            }
            if hit(black) {
                return Some(Listed::Black);
            }
        }
    }
    if hit(&lists.whitelist) {
        Some(Listed::White)
    } else if hit(&lists.blacklist) {
        Some(Listed::Black)
    } else {
        None
    }
}

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
    lists: &Lists,
    hostname: &str,
    facts: &Facts,
    sender: &str,
    recipients: &[String],
) -> Result<Vec<Verdict>, Hold> {
    if let (Some(why), OnFailure::Tempfail) = (&facts.virus_failed, cfg.virus.on_failure) {
        return Err(Hold {
            status: "4.3.0",
            reason: format!("pipescan: virus scan failed, message kept for retry: {why}"),
        });
    }
    if let (Some(why), OnFailure::Tempfail) = (&facts.spam_failed, cfg.spam.on_failure) {
        return Err(Hold {
            status: "4.3.0",
            reason: format!("pipescan: spam scan failed, message kept for retry: {why}"),
        });
    }
    let one = |r: &str| verdict(cfg, lists, hostname, facts, sender, r);
    Ok(if recipients.is_empty() {
        vec![one("")]
    } else {
        recipients.iter().map(|r| one(r)).collect()
    })
}

/// The spam levels (and tag) that apply to one recipient.
struct Levels {
    tag: f64,
    tag2: f64,
    kill: f64,
    dsn_cutoff: f64,
    subject_tag: String,
}

fn levels(cfg: &Config, lists: &Lists, rcpt: &str) -> Levels {
    let sp = &cfg.spam;
    let mut l = Levels {
        tag: sp.tag_level,
        tag2: sp.tag2_level,
        kill: sp.kill_level,
        dsn_cutoff: sp.dsn_cutoff_level,
        subject_tag: cfg.headers.spam_subject_tag.clone(),
    };
    let (mut tag, mut tag2, mut kill, mut cut, mut subj) = (None, None, None, None, None);
    for (p, (who, _, _)) in cfg.per_recipient.iter().zip(&lists.per_recipient) {
        if who.contains(rcpt) {
            tag = tag.or(p.tag_level);
            tag2 = tag2.or(p.tag2_level);
            kill = kill.or(p.kill_level);
            cut = cut.or(p.dsn_cutoff_level);
            subj = subj.or(p.spam_subject_tag.clone());
        }
    }
    l.tag = tag.unwrap_or(l.tag);
    l.tag2 = tag2.unwrap_or(l.tag2);
    l.kill = kill.unwrap_or(l.kill);
    l.dsn_cutoff = cut.unwrap_or(l.dsn_cutoff);
    l.subject_tag = subj.unwrap_or(l.subject_tag);
    l
}

fn verdict(
    cfg: &Config,
    lists: &Lists,
    hostname: &str,
    facts: &Facts,
    sender: &str,
    rcpt: &str,
) -> Verdict {
    let lv = levels(cfg, lists, rcpt);
    let list = listed(lists, rcpt, sender, &facts.authors);
    // White/blacklisting moves the score; a blacklisted sender is spam even unscanned.
    let mut report = facts.spam.clone();
    match list {
        Some(Listed::White) => {
            if let Some(r) = report.as_mut() {
                r.score -= 100.0;
                r.tests.push(("WHITELISTED".into(), -100.0));
            }
        }
        Some(Listed::Black) => {
            let r = report.get_or_insert(SpamReport {
                is_spam: true,
                score: 0.0,
                required: lv.tag2,
                tests: Vec::new(),
            });
            r.score += 100.0;
            r.tests.push(("BLACKLISTED".into(), 100.0));
        }
        None => {}
    }
    let score = report.as_ref().map(|r| r.score);
    let unchecked = facts.virus_unchecked.clone().or_else(|| {
        (cfg.virus.on_failure == OnFailure::Unchecked)
            .then(|| facts.virus_failed.clone())
            .flatten()
    });
    let loves = |lovers: &Table, bypass: &Table| lovers.contains(rcpt) || bypass.contains(rcpt);
    let d = &cfg.destiny;
    let pick = |love: bool, destiny: Destiny| if love { Destiny::Pass } else { destiny };

    // Every category that applies, most severe first, with its destiny and reason.
    let mut present: Vec<(Category, Destiny, String)> = Vec::new();
    let virus_love = loves(&lists.virus_lovers, &lists.bypass_virus);
    if !facts.viruses.is_empty() {
        present.push((
            Category::Virus,
            pick(virus_love, d.virus),
            facts.viruses.join(", "),
        ));
    }
    if !facts.banned.is_empty() {
        let love = loves(&lists.banned_lovers, &lists.bypass_banned);
        present.push((
            Category::Banned,
            pick(love, d.banned),
            facts.banned.join("; "),
        ));
    }
    if let Some(why) = &unchecked {
        present.push((
            Category::Unchecked,
            pick(virus_love, d.unchecked),
            why.clone(),
        ));
    }
    let spam_love = loves(&lists.spam_lovers, &lists.bypass_spam);
    if let Some(s) = score {
        if s >= lv.kill {
            present.push((
                Category::Spam,
                pick(spam_love, d.spam),
                format!("score={}", num(s)),
            ));
        } else if s >= lv.tag2 {
            present.push((Category::Spammy, Destiny::Pass, format!("score={}", num(s))));
        }
    }
    if !facts.bad_header.is_empty() {
        let love = loves(&lists.bad_header_lovers, &lists.bypass_header);
        present.push((
            Category::BadHeader,
            pick(love, d.bad_header),
            facts.bad_header.join("; "),
        ));
    }
    if facts.oversized {
        present.push((Category::Oversized, d.oversized, "not scanned".into()));
    }
    let (category, destiny, reason) = present
        .iter()
        .find(|(_, d, _)| *d != Destiny::Pass)
        .or(present.first())
        .cloned()
        .unwrap_or((Category::Clean, Destiny::Pass, String::new()));
    let worst = present.first().map_or(Category::Clean, |p| p.0);

    let local = lists.is_local(rcpt);
    let mut edits = base_edits(cfg, hostname);
    let alert = |e: &mut Edits, text: String| e.add.push((ALERT.into(), text));
    if !facts.viruses.is_empty() {
        alert(
            &mut edits,
            format!(
                "INFECTED, message contains virus: {}",
                facts.viruses.join(", ")
            ),
        );
    }
    if !facts.banned.is_empty() {
        alert(
            &mut edits,
            format!("BANNED, message contains {}", facts.banned.join("; ")),
        );
    }
    if unchecked.is_some() {
        alert(
            &mut edits,
            "UNCHECKED, message could not be virus-checked".into(),
        );
    } else if facts.virus_failed.is_some() {
        alert(
            &mut edits,
            "not virus-checked: virus scanner unavailable".into(),
        );
    }
    if facts.spam_failed.is_some() {
        alert(
            &mut edits,
            "not spam-checked: spam scanner unavailable".into(),
        );
    }
    if !facts.bad_header.is_empty() {
        alert(
            &mut edits,
            format!("BAD HEADER SECTION, {}", facts.bad_header.join("; ")),
        );
    }
    if facts.oversized {
        // Never labelled scanned: no scanned tag, and an alert that says why.
        let tag = &cfg.headers.x_header_tag;
        edits.add.retain(|(name, _)| name != tag);
        alert(
            &mut edits,
            format!(
                "not scanned (oversized: above general.max_message_size, {} bytes)",
                cfg.general.max_message_size.0
            ),
        );
    }
    if let (Some(r), true) = (&report, local)
        && r.score >= lv.tag
    {
        edits.add.extend(spam_fields(r, lv.tag, lv.tag2));
    }
    let tag = match worst {
        Category::Virus => cfg.headers.virus_subject_tag.as_str(),
        Category::Unchecked => cfg.headers.unchecked_subject_tag.as_str(),
        _ => "",
    };
    let tag = match (tag, score) {
        ("", Some(s)) if local && s >= lv.tag2 => lv.subject_tag.as_str(),
        (t, _) => t,
    };
    if !tag.is_empty() {
        edits.subject_tag = Some(tag.to_string());
    }
    // `bounce` follows amavisd's rules against backscatter: no DSN for bulk mail, for viruses
    // (they fake senders) or for spam above the cutoff; such a refusal becomes a discard.
    // `reject` is the admin's explicit "refuse it": only the null sender never gets a DSN.
    let backscatter = (cfg.dsn.suppress_for_bulk && facts.bulk)
        || (cfg.dsn.suppress_for_viruses && !facts.viruses.is_empty())
        || score.is_some_and(|s| s >= lv.dsn_cutoff);
    let dsn_allowed = !sender.is_empty() && (destiny == Destiny::Reject || !backscatter);
    Verdict {
        recipient: rcpt.to_string(),
        category,
        destiny,
        reason,
        score,
        dsn_allowed,
        edits,
    }
}

/// The quarantine name (%c) of the message's `category` when its quarantine is enabled,
/// amavisd style: whatever the destiny (blocked, or passed to lovers or by a `pass` destiny).
/// Spam is kept only if some recipient whose verdict is SPAM scored below its own
/// quarantine_cutoff_level ([[per_recipient]], else spam.quarantine_cutoff_level, else none):
/// a recipient at or above its cutoff wants no copy.
pub fn quarantine_as(
    cfg: &Config,
    lists: &Lists,
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
            .filter(|v| v.category == Category::Spam)
            .any(|v| {
                quarantine_cutoff(cfg, lists, &v.recipient)
                    .is_none_or(|cut| v.score.is_none_or(|s| s < cut))
            })
            .then_some("spam"),
        Category::BadHeader if q.bad_header => Some("badh"),
        _ => None,
    }
}

/// The quarantine_cutoff_level that applies to `rcpt`: the first matching [[per_recipient]]
/// entry that sets one, else [spam]'s.
fn quarantine_cutoff(cfg: &Config, lists: &Lists, rcpt: &str) -> Option<f64> {
    cfg.per_recipient
        .iter()
        .zip(&lists.per_recipient)
        .find_map(|(p, (who, _, _))| {
            who.contains(rcpt)
                .then_some(p.quarantine_cutoff_level)
                .flatten()
        })
        .or(cfg.spam.quarantine_cutoff_level)
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

    fn lists(c: &Config) -> Lists {
        Lists::compile(c).unwrap()
    }

    fn one(c: &Config, f: &Facts, r: &str) -> Verdict {
        decide(
            c,
            &lists(c),
            "mx.test",
            f,
            "sender@example.org",
            &[r.to_string()],
        )
        .unwrap()
        .remove(0)
    }

    fn from_toml(t: &str) -> Config {
        crate::config::parse(t, "t", None).unwrap()
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
            let v = decide(
                &c,
                &lists(&c),
                "h",
                &f,
                "s@x",
                &["a@b".into(), "c@d".into()],
            )
            .unwrap();
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
        let v = decide(&c, &lists(&c), "h", &Facts::default(), "s@x", &[]).unwrap();
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
            assert_eq!(lists(&c).is_local(r), local, "{r}");
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
        let hold = decide(&c, &lists(&c), "h", &f, "s@x", &["a@b".into()]).unwrap_err();
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
        assert!(decide(&c, &lists(&c), "h", &f, "s@x", &["a@b".into()]).is_err());
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

    fn infected() -> Facts {
        Facts {
            viruses: vec!["V".into()],
            ..Facts::default()
        }
    }

    fn banned() -> Facts {
        Facts {
            banned: vec!["a.exe (executable)".into()],
            ..Facts::default()
        }
    }

    fn bad_header() -> Facts {
        Facts {
            bad_header: vec!["duplicate header field From".into()],
            ..Facts::default()
        }
    }

    /// Every category × destiny × (plain, lover, bypass) recipient: the category's destiny
    /// applies to plain recipients; lovers and bypassers get the message passed.
    #[test]
    fn every_category_destiny_and_lover_combination() {
        use Destiny::*;
        let cats: Vec<(&str, &str, Category, Facts)> = vec![
            ("virus", "virus_lovers", Category::Virus, infected()),
            ("banned", "banned_files_lovers", Category::Banned, banned()),
            ("spam", "spam_lovers", Category::Spam, spam(50.0)),
            (
                "bad_header",
                "bad_header_lovers",
                Category::BadHeader,
                bad_header(),
            ),
            (
                "unchecked",
                "virus_lovers",
                Category::Unchecked,
                Facts {
                    virus_unchecked: Some("size".into()),
                    ..Facts::default()
                },
            ),
        ];
        let bypass = |lover: &str| match lover {
            "virus_lovers" => "bypass_virus_checks",
            "banned_files_lovers" => "bypass_banned_checks",
            "spam_lovers" => "bypass_spam_checks",
            _ => "bypass_header_checks",
        };
        for (key, lover, cat, facts) in &cats {
            for d in [Pass, Discard, Bounce, Reject, Tempfail] {
                let c = from_toml(&format!(
                    "[destiny]\n{key} = \"{d}\"\n[lists]\n{lover} = [\"lover@example.com\"]\n{} = [\"bypass@example.com\"]\n",
                    bypass(lover)
                ));
                let v = decide(
                    &c,
                    &lists(&c),
                    "h",
                    facts,
                    "s@example.org",
                    &[
                        "plain@example.com".into(),
                        "lover@example.com".into(),
                        "bypass@example.com".into(),
                    ],
                )
                .unwrap();
                assert_eq!((v[0].category, v[0].destiny), (*cat, d), "{key}={d} plain");
                for v in &v[1..] {
                    assert_eq!(v.category, *cat, "{key}={d} {}", v.recipient);
                    assert_eq!(v.destiny, Pass, "{key}={d} {}", v.recipient);
                }
                // Lovers get the same header edits as plain recipients when passed.
                assert_eq!(v[1].edits, v[2].edits);
            }
        }
    }

    #[test]
    fn most_severe_blocking_category_decides() {
        let mut f = spam(50.0);
        f.viruses = vec!["V".into()];
        f.banned = vec!["x.exe".into()];
        f.bad_header = vec!["8-bit".into()];
        let c = from_toml("[destiny]\nvirus = \"pass\"\nbanned = \"bounce\"\nspam = \"discard\"\n");
        let v = one(&c, &f, "a@b");
        assert_eq!((v.category, v.destiny), (Category::Banned, Destiny::Bounce));
        let c = from_toml("[destiny]\nvirus = \"pass\"\nbanned = \"pass\"\nspam = \"discard\"\n");
        assert_eq!(one(&c, &f, "a@b").category, Category::Spam);
        let c =
            from_toml("[destiny]\nvirus = \"pass\"\nbanned = \"pass\"\nbad_header = \"reject\"\n");
        let v = one(&c, &f, "a@b");
        assert_eq!(
            (v.category, v.destiny),
            (Category::BadHeader, Destiny::Reject)
        );
    }

    #[test]
    fn white_and_blacklists_move_the_score() {
        let c = from_toml(
            "[lists]\nwhitelist_sender = [\"@friends.example\"]\nblacklist_sender = [\"@spammer.example\", \"boss@corp.example\"]\n",
        );
        let l = lists(&c);
        let f = spam(50.0);
        let v = decide(&c, &l, "h", &f, "x@friends.example", &["r@b".into()]).unwrap();
        assert_eq!(v[0].category, Category::Clean);
        assert_eq!(v[0].score, Some(-50.0));
        // Blacklisted sender: spam even when the message scored nothing or was not scanned.
        let v = decide(
            &c,
            &l,
            "h",
            &Facts::default(),
            "x@spammer.example",
            &["r@b".into()],
        )
        .unwrap();
        assert_eq!((v[0].category, v[0].score), (Category::Spam, Some(100.0)));
        assert!(
            v[0].edits
                .add
                .iter()
                .any(|(n, v)| n == "X-Spam-Status" && v.contains("BLACKLISTED=100"))
        );
        // The author (From:) counts too.
        let f = Facts {
            authors: vec!["boss@corp.example".into()],
            ..Facts::default()
        };
        let v = decide(
            &c,
            &l,
            "h",
            &f,
            "bounce-handler@corp.example",
            &["r@b".into()],
        )
        .unwrap();
        assert_eq!(v[0].category, Category::Spam);
    }

    #[test]
    fn per_recipient_lists_and_levels() {
        let c = from_toml(
            "[[per_recipient]]\nrecipients = [\"@strict.example\"]\ntag2_level = 3.0\nkill_level = 4.0\nspam_subject_tag = \"[SPAM] \"\n\n[[per_recipient]]\nrecipients = [\"alice@example.com\"]\nwhitelist_sender = [\"@newsletter.example\"]\n",
        );
        let l = lists(&c);
        let f = spam(4.5);
        let v = decide(
            &c,
            &l,
            "h",
            &f,
            "x@newsletter.example",
            &[
                "a@strict.example".into(),
                "alice@example.com".into(),
                "bob@example.com".into(),
            ],
        )
        .unwrap();
        assert_eq!(v[0].category, Category::Spam, "strict levels");
        assert_eq!(v[0].edits.subject_tag.as_deref(), Some("[SPAM] "));
        assert_eq!(
            v[1].category,
            Category::Clean,
            "alice whitelists the sender"
        );
        assert_eq!(
            v[2].category,
            Category::Clean,
            "4.5 is below the global tag2 6.2"
        );
        assert!(
            v[2].edits
                .add
                .iter()
                .any(|(n, v)| n == "X-Spam-Flag" && v == "NO")
        );
    }

    #[test]
    fn checks_are_skipped_only_when_every_recipient_bypasses_them() {
        let c = from_toml(
            "[lists]\nbypass_spam_checks = [\"@a.example\"]\nbypass_virus_checks = [\".\"]\nwhitelist_sender = [\"friend@x.example\"]\n",
        );
        let l = lists(&c);
        let n = needed(
            &l,
            "s@x",
            &[],
            &["1@a.example".into(), "2@a.example".into()],
        );
        assert_eq!(
            (n.virus, n.spam, n.banned, n.header),
            (false, false, true, true)
        );
        let n = needed(
            &l,
            "s@x",
            &[],
            &["1@a.example".into(), "2@b.example".into()],
        );
        assert!(n.spam);
        let n = needed(&l, "friend@x.example", &[], &["2@b.example".into()]);
        assert!(!n.spam, "whitelisted for everyone: no spam scan");
    }

    #[test]
    fn dsn_rules_against_backscatter() {
        let c = cfg();
        let l = lists(&c);
        let dsn = |f: &Facts, sender: &str| {
            decide(&c, &l, "h", f, sender, &["r@b".into()]).unwrap()[0].dsn_allowed
        };
        assert!(dsn(&banned(), "s@x"));
        assert!(!dsn(&banned(), ""), "null sender");
        assert!(!dsn(&infected(), "s@x"), "viruses fake senders");
        let c2 = from_toml("[destiny]\nvirus = \"reject\"\n");
        let v = decide(&c2, &lists(&c2), "h", &infected(), "s@x", &["r@b".into()]).unwrap();
        assert!(v[0].dsn_allowed, "reject is explicit");
        let v = decide(&c2, &lists(&c2), "h", &infected(), "", &["r@b".into()]).unwrap();
        assert!(!v[0].dsn_allowed, "but never to the null sender");
        assert!(dsn(&spam(9.0), "s@x"));
        assert!(!dsn(&spam(10.0), "s@x"), "at dsn_cutoff_level");
        let mut bulk = banned();
        bulk.bulk = true;
        assert!(!dsn(&bulk, "s@x"), "list mail");
    }

    /// amavisd quarantines by category whatever the destiny; spam only for a SPAM recipient
    /// below its own quarantine_cutoff_level.
    #[test]
    fn quarantine_follows_the_category_not_the_destiny() {
        let rcpts = ["a@example.com".to_string(), "b@other.example".to_string()];
        let c = from_toml("[quarantine]\nspam = true\n");
        let l = lists(&c);
        let v = decide(&c, &l, "h", &spam(50.0), "s@x", &rcpts).unwrap();
        assert!(v.iter().all(|v| v.destiny == Destiny::Pass));
        assert_eq!(quarantine_as(&c, &l, Category::Spam, &v), Some("spam"));
        // Passed viruses (lovers everywhere) are kept too; SPAMMY never is.
        let c2 = from_toml("[lists]\nvirus_lovers = [\".\"]\n[quarantine]\nspam = true\n");
        let v2 = decide(&c2, &lists(&c2), "h", &infected(), "s@x", &rcpts).unwrap();
        assert_eq!(
            quarantine_as(&c2, &lists(&c2), Category::Virus, &v2),
            Some("virus")
        );
        let v3 = decide(&c, &l, "h", &spam(6.5), "s@x", &rcpts).unwrap();
        assert_eq!(quarantine_as(&c, &l, Category::Spammy, &v3), None);
        // Off by default.
        let d = cfg();
        assert_eq!(quarantine_as(&d, &lists(&d), Category::Spam, &v), None);

        // Cutoffs: [spam]'s, overridden per recipient.
        let c = from_toml(
            "[quarantine]\nspam = true\n[spam]\nquarantine_cutoff_level = 40.0\n[[per_recipient]]\nrecipients = [\"@other.example\"]\nquarantine_cutoff_level = 60.0\n",
        );
        let l = lists(&c);
        let v = decide(&c, &l, "h", &spam(50.0), "s@x", &rcpts).unwrap();
        assert_eq!(
            quarantine_as(&c, &l, Category::Spam, &v),
            Some("spam"),
            "b@other.example is below its own cutoff"
        );
        let v = decide(&c, &l, "h", &spam(50.0), "s@x", &rcpts[..1]).unwrap();
        assert_eq!(
            quarantine_as(&c, &l, Category::Spam, &v),
            None,
            "a@example.com is at or above [spam]'s"
        );
        let v = decide(&c, &l, "h", &spam(60.0), "s@x", &rcpts).unwrap();
        assert_eq!(quarantine_as(&c, &l, Category::Spam, &v), None);
        let v = decide(&c, &l, "h", &spam(39.0), "s@x", &rcpts[..1]).unwrap();
        assert_eq!(quarantine_as(&c, &l, Category::Spam, &v), Some("spam"));
    }

    #[test]
    fn fields_pipescan_reads_back_are_forgeable() {
        for f in crate::act::quarantine::record::FIELDS {
            assert!(FORGEABLE.contains(f), "{f}");
        }
        let e = base_edits(&cfg(), "h");
        let raw = b"X-Envelope-To: <evil@example.net>\nx-pipescan-quarantine: v=2\nX-Pipescan-Category: CLEAN\nX-Envelope-From: <e@x>\nSubject: s\n\nb\n";
        let h = crate::message::Header::parse(raw);
        let out = crate::message::Rewrite::new(raw, &h, &e).apply(raw);
        assert!(
            out.ends_with(b"\nSubject: s\n\nb\n"),
            "{}",
            String::from_utf8_lossy(&out)
        );
        assert!(
            !String::from_utf8_lossy(&out)
                .to_ascii_lowercase()
                .contains("envelope")
        );
    }
}
