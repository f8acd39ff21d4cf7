//! The header fields we add to a copy, and those we remove from incoming mail as forged.

use crate::config::settings::Config;
use crate::verdict::{Edits, SpamReport};

/// Field names we always remove from incoming mail: a copy from outside is forged. Every
/// field that pipescan reads back is here: the spam fields, the loop marker, and the
/// quarantine block's fields (X-Spam-Score is an X-Spam-* one). The names are written out
/// here (a test checks them against `marker::FIELD` and the quarantine record's name), so
/// this leaf imports neither.
pub const FORGEABLE: &[&str] = &[
    "X-Spam-*",
    ALERT,
    "X-Pipescan-Marker",
    "X-Pipescan-Quarantine",
    "X-Envelope-From",
    "X-Envelope-To",
    "X-Quarantine-ID",
    "X-Pipescan-Category",
];

/// Our alert field: what a recipient should know about a message we passed anyway.
pub const ALERT: &str = "X-Pipescan-Alert";

/// The edits every copy we pass on gets: forged fields out, our scanned tag in.
pub fn base_edits(cfg: &Config, hostname: &str) -> Edits {
    // Authentication-Results with our authserv-id are forged whether or not we verify.
    let mut e = Edits {
        remove_names: FORGEABLE.iter().map(|s| s.to_string()).collect(),
        remove_authserv_ids: std::iter::once(hostname.to_string())
            .chain(cfg.auth.remove_authserv_ids.iter().cloned())
            .collect(),
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

/// Only the removals of [`base_edits`]: what a copy that leaves the run as the message arrived
/// (the quarantine mailbox copy, a release from the quarantine) must lose on its way to a
/// mailbox, where a forged `Authentication-Results: <our host>; dkim=pass` or
/// `X-Spam-Flag: NO` would be believed.
pub fn forged_edits(cfg: &Config) -> Edits {
    let mut e = base_edits(cfg, &cfg.hostname());
    e.add.clear();
    e
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
