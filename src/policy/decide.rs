//! The verdict for each recipient: its category, destiny, reason, score, whether a refusal may
//! be reported to the sender, and the header edits of its copy.

use crate::config::settings::Config;
use crate::config::sql::SqlFailure;
use crate::policy::facts::Facts;
use crate::policy::fields::{ALERT, base_edits, num, spam_fields};
use crate::policy::recipient::{Listed, Recipient, Recipients};
use crate::verdict::{Category, Destiny, DmarcPolicy, Edits, OnFailure, SpamReport, Verdict};

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
    sender: &str,
    recipients: &Recipients,
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
    if let (Some(why), SqlFailure::Tempfail) = (&facts.sql_failed, cfg.sql.on_failure) {
        return Err(Hold {
            status: "4.3.0",
            reason: format!("pipescan: sql lookup failed, message kept for retry: {why}"),
        });
    }
    Ok(recipients
        .list
        .iter()
        .map(|r| verdict(cfg, hostname, facts, sender, r))
        .collect())
}

/// The spam report as it applies to `r`: white/blacklisting moves the score; a blacklisted
/// sender is spam even unscanned.
fn spam_report(cfg: &Config, facts: &Facts, r: &Recipient) -> Option<SpamReport> {
    let mut report = facts.spam.clone();
    match r.listed {
        Some(Listed::White) => {
            if let Some(s) = report.as_mut() {
                s.score -= 100.0;
                s.tests.push(("WHITELISTED".into(), -100.0));
            }
        }
        Some(Listed::Black) => {
            let s = report.get_or_insert(SpamReport {
                is_spam: true,
                score: 0.0,
                required: r.levels.tag2,
                tests: Vec::new(),
            });
            s.score += 100.0;
            s.tests.push(("BLACKLISTED".into(), 100.0));
        }
        None => {}
    }
    if let Some(s) = report.as_mut()
        && r.wb_score != 0.0
    {
        s.score += r.wb_score;
        s.tests.push(("AM.WBL".into(), r.wb_score));
    }
    if let (Some(s), Some(&adj)) = (report.as_mut(), facts.penpals.get(&r.address)) {
        s.score += adj;
        s.tests.push(("AM.PENPAL".into(), adj));
    }
    if let (Some(s), Some(policy)) = (report.as_mut(), dmarc_failed(facts)) {
        let test = match policy {
            DmarcPolicy::Reject => "DMARC_POLICY_REJECT",
            DmarcPolicy::Quarantine => "DMARC_POLICY_QUARANTINE",
        };
        s.score += cfg.auth.dmarc_fail_score;
        s.tests.push((test.into(), cfg.auth.dmarc_fail_score));
    }
    report
}

/// DMARC failed under a policy that asks the receiver to act.
fn dmarc_failed(facts: &Facts) -> Option<DmarcPolicy> {
    facts.auth.as_ref().and_then(|a| a.dmarc_failed)
}

/// The destiny `[auth]` gives a DMARC failure under `policy`, and its reason.
fn dmarc_destiny(cfg: &Config, facts: &Facts, policy: DmarcPolicy) -> (Destiny, String) {
    let domain = facts
        .auth
        .as_ref()
        .and_then(|a| a.author_domain.clone())
        .unwrap_or_default();
    match policy {
        DmarcPolicy::Reject => (
            cfg.auth.dmarc_reject,
            format!("DMARC fail, policy reject (From domain {domain})"),
        ),
        DmarcPolicy::Quarantine => (
            cfg.auth.dmarc_quarantine,
            format!("DMARC fail, policy quarantine (From domain {domain})"),
        ),
    }
}

/// Why the message counts as not virus-checked, if it does.
fn unchecked(cfg: &Config, facts: &Facts) -> Option<String> {
    facts.virus_unchecked.clone().or_else(|| {
        (cfg.virus.on_failure == OnFailure::Unchecked)
            .then(|| facts.virus_failed.clone())
            .flatten()
    })
}

/// Every category that applies to `r`, most severe first, with its destiny and reason.
fn present(
    cfg: &Config,
    facts: &Facts,
    r: &Recipient,
    score: Option<f64>,
    unchecked: Option<&String>,
) -> Vec<(Category, Destiny, String)> {
    let d = &cfg.destiny;
    let love = r.loves();
    let pick = |love: bool, destiny: Destiny| if love { Destiny::Pass } else { destiny };
    let mut present: Vec<(Category, Destiny, String)> = Vec::new();
    if !facts.viruses.is_empty() {
        let reason = facts.viruses.join(", ");
        present.push((Category::Virus, pick(love.virus, d.virus), reason));
    }
    if !facts.banned.is_empty() {
        let reason = facts.banned.join("; ");
        present.push((Category::Banned, pick(love.banned, d.banned), reason));
    }
    if let Some(why) = unchecked {
        let destiny = pick(love.virus, d.unchecked);
        present.push((Category::Unchecked, destiny, why.clone()));
    }
    if let Some(s) = score {
        if s >= r.levels.kill {
            let reason = format!("score={}", num(s));
            present.push((Category::Spam, pick(love.spam, d.spam), reason));
        } else if s >= r.levels.tag2 {
            present.push((Category::Spammy, Destiny::Pass, format!("score={}", num(s))));
        }
    }
    // A forged author: the domain's own DMARC policy, as the admin maps it (spam lovers get
    // it passed, like spam; the sender whitelist does not help: its From: is what is forged).
    if let Some(policy) = dmarc_failed(facts) {
        let (destiny, reason) = dmarc_destiny(cfg, facts, policy);
        if destiny != Destiny::Pass {
            present.push((Category::Spam, pick(love.spam, destiny), reason));
        }
    }
    if !facts.bad_header.is_empty() {
        let reason = facts.bad_header.join("; ");
        present.push((Category::BadHeader, pick(love.header, d.bad_header), reason));
    }
    if facts.oversized {
        present.push((Category::Oversized, d.oversized, "not scanned".into()));
    }
    present
}

/// The alert fields of a copy: what its recipient should know about a message we passed.
fn alerts(cfg: &Config, facts: &Facts, unchecked: Option<&str>, edits: &mut Edits) {
    let mut alert = |text: String| edits.add.push((ALERT.into(), text));
    if !facts.viruses.is_empty() {
        alert(format!(
            "INFECTED, message contains virus: {}",
            facts.viruses.join(", ")
        ));
    }
    if !facts.banned.is_empty() {
        alert(format!(
            "BANNED, message contains {}",
            facts.banned.join("; ")
        ));
    }
    // The reason too: "encrypted member report.pdf in archive part 2 > secret.zip" tells the
    // recipient what nobody looked at (amavisd's UNCHECKED-ENCRYPTED), not only that.
    if let Some(why) = unchecked {
        alert(format!(
            "UNCHECKED, message could not be virus-checked: {why}"
        ));
    } else if facts.virus_failed.is_some() {
        alert("not virus-checked: virus scanner unavailable".into());
    }
    if facts.spam_failed.is_some() {
        alert("not spam-checked: spam scanner unavailable".into());
    }
    if let Some(policy) = dmarc_failed(facts) {
        alert(dmarc_destiny(cfg, facts, policy).1);
    }
    if !facts.bad_header.is_empty() {
        alert(format!(
            "BAD HEADER SECTION, {}",
            facts.bad_header.join("; ")
        ));
    }
    if facts.oversized {
        alert(format!(
            "not scanned (oversized: above general.max_message_size, {} bytes)",
            cfg.general.max_message_size.0
        ));
    }
}

/// The header edits of `r`'s copy: forged fields out, our tag, alerts, spam fields for local
/// recipients from tag_level on, and the Subject tag of the most severe category present.
fn edits_for(
    cfg: &Config,
    hostname: &str,
    facts: &Facts,
    r: &Recipient,
    report: Option<&SpamReport>,
    unchecked: Option<&str>,
    worst: Category,
) -> Edits {
    let mut edits = base_edits(cfg, hostname);
    if let Some(a) = &facts.auth {
        edits
            .add
            .push(("Authentication-Results".into(), a.results.clone()));
    }
    if facts.oversized {
        // Never labelled scanned: no scanned tag (the alert says why).
        let tag = &cfg.headers.x_header_tag;
        edits.add.retain(|(name, _)| name != tag);
    }
    alerts(cfg, facts, unchecked, &mut edits);
    let lv = &r.levels;
    if let (Some(s), true) = (report, r.local)
        && s.score >= lv.tag
    {
        edits.add.extend(spam_fields(s, lv.tag, lv.tag2));
    }
    let tag = match worst {
        Category::Virus => cfg.headers.virus_subject_tag.as_str(),
        Category::Unchecked => cfg.headers.unchecked_subject_tag.as_str(),
        Category::Banned
        | Category::Spam
        | Category::Spammy
        | Category::BadHeader
        | Category::Oversized
        | Category::Clean => "",
    };
    let tag = match (tag, report.map(|s| s.score)) {
        ("", Some(s)) if r.local && s >= lv.tag2 => lv.subject_tag.as_str(),
        (t, _) => t,
    };
    if !tag.is_empty() {
        edits.subject_tag = Some(tag.to_string());
    }
    edits
}

fn verdict(cfg: &Config, hostname: &str, facts: &Facts, sender: &str, r: &Recipient) -> Verdict {
    let report = spam_report(cfg, facts, r);
    let score = report.as_ref().map(|s| s.score);
    let unchecked = unchecked(cfg, facts);
    let present = present(cfg, facts, r, score, unchecked.as_ref());
    let (category, destiny, reason) = present
        .iter()
        .find(|(_, d, _)| *d != Destiny::Pass)
        .or(present.first())
        .cloned()
        .unwrap_or((Category::Clean, Destiny::Pass, String::new()));
    let worst = present.first().map_or(Category::Clean, |p| p.0);
    let edits = edits_for(
        cfg,
        hostname,
        facts,
        r,
        report.as_ref(),
        unchecked.as_deref(),
        worst,
    );
    // `bounce` follows amavisd's rules against backscatter: no DSN for bulk mail, for viruses
    // (they fake senders) or for spam above the cutoff; such a refusal becomes a discard.
    // `reject` is the admin's explicit "refuse it": only the null sender never gets a DSN.
    let backscatter = (cfg.dsn.suppress_for_bulk && facts.bulk)
        || (cfg.dsn.suppress_for_viruses && !facts.viruses.is_empty())
        || score.is_some_and(|s| s >= r.levels.dsn_cutoff);
    let dsn_allowed = !sender.is_empty() && (destiny == Destiny::Reject || !backscatter);
    Verdict {
        recipient: r.address.clone(),
        category,
        destiny,
        reason,
        score,
        dsn_allowed,
        edits,
        admin: r.admins.of(category),
    }
}
