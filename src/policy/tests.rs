//! The policy's stories, without I/O.

use crate::config::settings::Config;
use crate::policy::decide::Hold;
use crate::policy::facts::Facts;
use crate::policy::fields::*;
use crate::policy::lists::Lists;
use crate::policy::needed::Needed;
use crate::policy::recipient::{Recipients, resolve};
use crate::verdict::*;

// The stories below were written against the policy's older entry points, which took the
// tables and read them while deciding; these adapters resolve the recipients first, as a run
// does, so each story still states what it states.

fn recipients(c: &Config, l: &Lists, sender: &str, authors: &[String], r: &[String]) -> Recipients {
    resolve(c, l, sender, authors, r, None).unwrap()
}

fn decide(
    c: &Config,
    l: &Lists,
    hostname: &str,
    f: &Facts,
    sender: &str,
    r: &[String],
) -> Result<Vec<Verdict>, Hold> {
    let r = recipients(c, l, sender, &f.authors, r);
    crate::policy::decide::decide(c, hostname, f, sender, &r)
}

fn needed(l: &Lists, sender: &str, authors: &[String], r: &[String]) -> Needed {
    crate::policy::needed::needed(&recipients(&cfg(), l, sender, authors, r))
}

fn quarantine_as(c: &Config, l: &Lists, category: Category, v: &[Verdict]) -> Option<&'static str> {
    let r: Vec<String> = v.iter().map(|v| v.recipient.clone()).collect();
    crate::policy::quarantine::quarantine_as(c, &recipients(c, l, "", &[], &r), category, v)
}

fn cfg() -> Config {
    crate::config::load::parse("", "t", None).unwrap()
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
    Lists::compile(c, None, ("", &[])).unwrap()
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
    crate::config::load::parse(t, "t", None).unwrap()
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
        assert_eq!(lists(&c).is_local(r).unwrap(), local, "{r}");
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
    let c = from_toml("[destiny]\nvirus = \"pass\"\nbanned = \"pass\"\nbad_header = \"reject\"\n");
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
    let h = crate::message::header::Header::parse(raw);
    let out = crate::message::edit::Rewrite::new(raw, &h, &e).apply(raw);
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

// Mail authentication's facts (scan::auth) as the policy reads them.

fn spoofed(policy: DmarcPolicy) -> AuthReport {
    AuthReport {
        results: "mx.test; dkim=none; spf=fail smtp.mailfrom=x@evil.example; dmarc=fail header.from=bank.test policy.dmarc=reject; arc=none".into(),
        summary: "dkim=none spf=fail dmarc=fail arc=none".into(),
        author_domain: Some("bank.test".into()),
        dmarc_failed: Some(policy),
        ..AuthReport::default()
    }
}

#[test]
fn a_dmarc_reject_failure_passes_with_an_alert_and_score_by_default() {
    let c = cfg();
    let mut f = spam(1.0);
    f.auth = Some(spoofed(DmarcPolicy::Reject));
    let v = decide(
        &c,
        &lists(&c),
        "mx.test",
        &f,
        "x@evil.example",
        &["bob@example.com".into()],
    )
    .unwrap();
    assert_eq!(v[0].destiny, Destiny::Pass);
    assert_eq!(v[0].score, Some(1.0 + c.auth.dmarc_fail_score));
    let add = &v[0].edits.add;
    assert!(
        add.iter()
            .any(|(n, t)| n == ALERT && t == "DMARC fail, policy reject (From domain bank.test)"),
        "{add:?}"
    );
    // Our Authentication-Results field is added, and forged ones with our id go.
    assert!(
        add.iter()
            .any(|(n, t)| n == "Authentication-Results" && t.starts_with("mx.test; dkim=none"))
    );
    assert_eq!(v[0].edits.remove_authserv_ids, ["mx.test"]);
}

#[test]
fn dmarc_destinies_follow_the_domains_policy_and_spare_spam_lovers() {
    let mut c = cfg();
    c.auth.dmarc_reject = Destiny::Reject;
    c.auth.dmarc_quarantine = Destiny::Discard;
    c.lists.spam_lovers = vec!["lover@example.com".into()];
    let l = lists(&c);
    let rcpts: Vec<String> = vec!["bob@example.com".into(), "lover@example.com".into()];
    let mut f = Facts {
        auth: Some(spoofed(DmarcPolicy::Reject)),
        ..Facts::default()
    };
    let v = decide(&c, &l, "mx.test", &f, "x@evil.example", &rcpts).unwrap();
    assert_eq!(
        (v[0].category, v[0].destiny),
        (Category::Spam, Destiny::Reject)
    );
    assert!(v[0].reason.starts_with("DMARC fail, policy reject"));
    assert_eq!(v[1].destiny, Destiny::Pass, "a spam lover gets it");
    f.auth = Some(spoofed(DmarcPolicy::Quarantine));
    let v = decide(&c, &l, "mx.test", &f, "x@evil.example", &rcpts).unwrap();
    assert_eq!(v[0].destiny, Destiny::Discard);
    // The plan's refusal says why, with RFC 7489's 5.7.1.
    f.auth = Some(spoofed(DmarcPolicy::Reject));
    let v = decide(&c, &l, "mx.test", &f, "x@evil.example", &rcpts[..1]).unwrap();
    let p = crate::plan::plan(&v);
    let failure = p.failure.expect("refused");
    assert_eq!(failure.status, "5.7.1");
    assert!(
        failure
            .reason
            .contains("DMARC fail, policy reject (From domain bank.test)")
    );
}

#[test]
fn the_authenticated_whitelist_needs_a_proven_author() {
    let mut c = cfg();
    c.auth.whitelist_authenticated_sender = vec!["bank.test".into()];
    let l = lists(&c);
    let authors = vec!["news@bank.test".to_string()];
    let rcpt = ["bob@example.com".to_string()];
    let listed = |auth: Option<&AuthReport>| {
        resolve(&c, &l, "x@evil.example", &authors, &rcpt, auth)
            .unwrap()
            .list[0]
            .listed
    };
    let mut a = AuthReport {
        author_domain: Some("bank.test".into()),
        ..AuthReport::default()
    };
    assert_eq!(listed(None), None);
    assert_eq!(listed(Some(&a)), None, "the From: text alone");
    a.author_dkim = true;
    assert_eq!(
        listed(Some(&a)),
        Some(crate::policy::recipient::Listed::White)
    );
    a.author_dkim = false;
    a.dmarc_pass = true;
    assert_eq!(
        listed(Some(&a)),
        Some(crate::policy::recipient::Listed::White)
    );
    // Proven for another domain than the author's: nothing.
    a.author_domain = Some("other.test".into());
    assert_eq!(listed(Some(&a)), None);
}

/// A signature proves a domain, never a mailbox: with several From: addresses of that domain,
/// the whitelisted one may be the one the signer never sent as (a provider that signs for
/// every user: `From: mallory@bank.test, ceo@bank.test`). Only a single author is looked up.
#[test]
fn the_authenticated_whitelist_takes_only_a_single_author() {
    let mut c = cfg();
    c.auth.whitelist_authenticated_sender = vec!["ceo@bank.test".into()];
    let l = lists(&c);
    let rcpt = ["bob@example.com".to_string()];
    let a = AuthReport {
        author_domain: Some("bank.test".into()),
        author_dkim: true,
        ..AuthReport::default()
    };
    let listed = |authors: &[&str]| {
        let authors: Vec<String> = authors.iter().map(|s| s.to_string()).collect();
        resolve(&c, &l, "x@evil.example", &authors, &rcpt, Some(&a))
            .unwrap()
            .list[0]
            .listed
    };
    assert_eq!(
        listed(&["ceo@bank.test"]),
        Some(crate::policy::recipient::Listed::White)
    );
    assert_eq!(listed(&["mallory@bank.test", "ceo@bank.test"]), None);
}
