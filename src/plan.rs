//! From per-recipient verdicts to the actions of one run.
//!
//! Contract: pure. Recipients whose copies need the same header edits share one reinjection
//! group; the exit code of the run follows from the destinies (DESIGN.md §1): any tempfail → 75;
//! all recipients bounced/rejected → 69 (the MTA writes the bounce); otherwise 0 once the groups
//! are delivered. Recipients refused while others get the message are reported to the sender in
//! our own DSN; where a DSN is not allowed (null sender, viruses, bulk mail, spam above the
//! cutoff) a refusal becomes a logged discard, as amavisd's bounce killer does.

use crate::config::delivery::Notify;
use crate::config::settings::Config;
use crate::outcome::{Exit, Failure};
use crate::policy::recipient::Recipients;
use crate::verdict::Destiny;
use crate::verdict::Edits;
use crate::verdict::{Category, Verdict};

/// One reinjection: these recipients get this copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub recipients: Vec<String>,
    pub edits: Edits,
}

/// A recipient refused while others get the message: reported in our DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub recipient: String,
    pub status: &'static str,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub groups: Vec<Group>,
    pub discarded: Vec<String>,
    /// Refused recipients whose refusal may not be reported (counted as discarded too).
    pub no_dsn: Vec<String>,
    pub bounced: Vec<String>,
    /// Refused recipients for our own DSN (set only when others are delivered or discarded).
    pub dsn: Vec<Refused>,
    /// The most severe deciding category among all recipients (for the log line).
    pub category: Category,
    /// Its reason (virus names, score), shown in parentheses for blocked viruses.
    pub reason: String,
    /// Set when the whole message must be retried or refused instead of delivered.
    pub failure: Option<Failure>,
}

impl Plan {
    /// amavisd's action words for the log line: "Relayed", "Discarded", "Bounced", ...
    pub fn actions(&self) -> Vec<&'static str> {
        let mut a = Vec::new();
        if let Some(f) = &self.failure {
            a.push(if f.exit == Exit::TempFail {
                "TempFailed"
            } else {
                "Bounced"
            });
            return a;
        }
        if !self.groups.is_empty() {
            a.push("Relayed");
        }
        if self.groups.iter().any(|g| g.edits.subject_tag.is_some()) {
            a.push("Tagged");
        }
        if !self.discarded.is_empty() {
            a.push("Discarded");
        }
        if !self.bounced.is_empty() {
            a.push("Bounced");
        }
        a
    }

    /// "Passed" when every recipient gets the message, "Blocked" otherwise.
    pub fn passed(&self) -> bool {
        self.failure.is_none() && self.discarded.is_empty() && self.bounced.is_empty()
    }
}

/// The status line for a message refused for `category` (Postfix puts it in the bounce).
fn refusal(category: Category, reason: &str) -> (&'static str, String) {
    match category {
        Category::Virus => ("5.7.0", format!("message rejected: virus {reason}")),
        Category::Banned => (
            "5.7.0",
            format!("message rejected: banned content: {reason}"),
        ),
        Category::BadHeader => ("5.7.0", format!("message rejected: bad header: {reason}")),
        Category::Unchecked => (
            "5.7.0",
            "message rejected: it could not be virus-checked".into(),
        ),
        // A forged author (policy::decide's DMARC reason): RFC 7489 §10.3 suggests 5.7.1.
        Category::Spam if reason.starts_with("DMARC fail") => {
            ("5.7.1", format!("message rejected: {reason}"))
        }
        Category::Spam => ("5.7.0", "message rejected as spam".into()),
        Category::Oversized => ("5.3.4", "message size exceeds the scanning limit".into()),
        Category::Spammy | Category::Clean => ("5.7.1", "message refused by policy".into()),
    }
}

pub fn plan(verdicts: &[Verdict]) -> Plan {
    let main = verdicts.iter().min_by_key(|v| v.category);
    let category = main.map_or(Category::Clean, |v| v.category);
    let reason = main.map(|v| v.reason.clone()).unwrap_or_default();
    let mut p = Plan {
        groups: Vec::new(),
        discarded: Vec::new(),
        no_dsn: Vec::new(),
        bounced: Vec::new(),
        dsn: Vec::new(),
        category,
        reason: reason.clone(),
        failure: None,
    };
    for v in verdicts {
        match v.destiny {
            Destiny::Pass => match p.groups.iter_mut().find(|g| g.edits == v.edits) {
                Some(g) => g.recipients.push(v.recipient.clone()),
                None => p.groups.push(Group {
                    recipients: vec![v.recipient.clone()],
                    edits: v.edits.clone(),
                }),
            },
            Destiny::Discard => p.discarded.push(v.recipient.clone()),
            Destiny::Bounce | Destiny::Reject if v.dsn_allowed => {
                p.bounced.push(v.recipient.clone());
                let (status, text) = refusal(v.category, &v.reason);
                p.dsn.push(Refused {
                    recipient: v.recipient.clone(),
                    status,
                    text,
                });
            }
            Destiny::Bounce | Destiny::Reject => {
                p.discarded.push(v.recipient.clone());
                p.no_dsn.push(v.recipient.clone());
            }
            Destiny::Tempfail => {
                let (_, why) = refusal(v.category, &v.reason);
                p.failure = Some(Failure::tempfail(
                    "4.7.1",
                    format!("{why}: policy says try again later"),
                ));
            }
        }
    }
    if p.failure.is_none() && p.groups.is_empty() && p.discarded.is_empty() && !p.bounced.is_empty()
    {
        // Everyone refused: the MTA writes the bounce from our status line.
        let (status, why) = refusal(category, &reason);
        p.failure = Some(Failure::bounce(status, why));
        p.dsn.clear();
    }
    if p.failure.is_some() {
        p.dsn.clear();
    }
    p
}

/// The quarantine category (%c) of a planned message: by category, blocked or passed
/// (amavisd), and only with somewhere to put it; the copies delivered then carry its
/// X-Quarantine-ID.
pub fn quarantine(
    cfg: &Config,
    rcpts: &Recipients,
    plan: &Plan,
    verdicts: &[Verdict],
) -> Option<&'static str> {
    let q = &cfg.quarantine;
    let has_store = q.method == crate::config::delivery::QuarantineMethod::Sql
        || !q.directory.as_os_str().is_empty()
        || !q.address.is_empty();
    has_store
        .then(|| crate::policy::quarantine::quarantine_as(cfg, rcpts, plan.category, verdicts))
        .flatten()
}

/// Who a notice is for (each has its own template).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Admin,
    Recipients,
    Sender,
}

/// A notice to send about this message, besides the copies (amavisd's notifications).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub audience: Audience,
    pub to: Vec<String>,
    pub subject: String,
}

/// The admin address the configuration names for `category`, if any.
pub fn admin_for(n: &Notify, category: Category) -> Option<&str> {
    let a = match category {
        Category::Virus => &n.virus_admin,
        Category::Banned => &n.banned_admin,
        Category::Spam => &n.spam_admin,
        Category::BadHeader => &n.bad_header_admin,
        Category::Unchecked | Category::Spammy | Category::Oversized | Category::Clean => {
            return None;
        }
    };
    (!a.is_empty()).then_some(a.as_str())
}

/// The notices a planned message calls for: the category's admin; the recipients who did not
/// get a virus or banned message, when asked for; its sender, when asked for and when it is
/// neither a virus (they fake senders), bulk mail nor the null sender. Only for blocked mail,
/// and for viruses and banned files passed to lovers.
pub fn notices(
    n: &Notify,
    plan: &Plan,
    verdicts: &[Verdict],
    sender: &str,
    bulk: bool,
) -> Vec<Notice> {
    let mut notices = Vec::new();
    if plan.passed() && !matches!(plan.category, Category::Virus | Category::Banned) {
        return notices;
    }
    let category = plan.category;
    // Each recipient of that category names its admin (its own, else [notify]'s); one notice
    // to all of them.
    let mut admins: Vec<String> = Vec::new();
    for v in verdicts.iter().filter(|v| v.category == category) {
        let a = match &v.admin {
            Some(own) => own.as_str(),
            None => admin_for(n, category).unwrap_or(""),
        };
        if !a.is_empty() && !admins.iter().any(|x| x == a) {
            admins.push(a.to_string());
        }
    }
    if !admins.is_empty() {
        notices.push(Notice {
            audience: Audience::Admin,
            to: admins,
            subject: format!("{category} from <{sender}>"),
        });
    }
    let blocked: Vec<String> = verdicts
        .iter()
        .filter(|v| v.destiny != Destiny::Pass && !v.recipient.is_empty())
        .map(|v| v.recipient.clone())
        .collect();
    let warn_rcpt = match category {
        Category::Virus => n.warn_virus_recipient,
        Category::Banned => n.warn_banned_recipient,
        Category::Unchecked
        | Category::Spam
        | Category::Spammy
        | Category::BadHeader
        | Category::Oversized
        | Category::Clean => false,
    };
    if warn_rcpt && !blocked.is_empty() {
        notices.push(Notice {
            audience: Audience::Recipients,
            to: blocked.clone(),
            subject: format!("{category} message to you was blocked"),
        });
    }
    let sender_ok = n.warn_sender
        && !sender.is_empty()
        && !bulk
        && category != Category::Virus
        && !blocked.is_empty();
    if sender_ok {
        notices.push(Notice {
            audience: Audience::Sender,
            to: vec![sender.to_string()],
            subject: "Your message was blocked".into(),
        });
    }
    notices
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The notices are decided here, without I/O: the admin of the category; the blocked
    /// recipients and the sender only when asked for; never the sender of a virus (they fake
    /// senders), of bulk mail, or the null sender; nothing for clean passed mail.
    #[test]
    fn notices_follow_the_category_and_the_backscatter_rules() {
        let n = Notify {
            virus_admin: "virusalert@example.com".into(),
            banned_admin: "postmaster@example.com".into(),
            warn_virus_recipient: true,
            warn_sender: true,
            ..Notify::default()
        };
        let blocked = |c| {
            vec![
                v("a@x", c, Destiny::Discard, None),
                v("b@x", c, Destiny::Pass, None),
            ]
        };
        let who = |c: Category, sender: &str, bulk: bool| -> Vec<(Audience, Vec<String>)> {
            let vs = blocked(c);
            notices(&n, &plan(&vs), &vs, sender, bulk)
                .into_iter()
                .map(|x| (x.audience, x.to))
                .collect()
        };
        assert_eq!(
            who(Category::Virus, "s@y", false),
            [
                (Audience::Admin, vec!["virusalert@example.com".to_string()]),
                (Audience::Recipients, vec!["a@x".to_string()]),
            ]
        );
        assert_eq!(
            who(Category::Banned, "s@y", false),
            [
                (Audience::Admin, vec!["postmaster@example.com".to_string()]),
                (Audience::Sender, vec!["s@y".to_string()]),
            ]
        );
        assert_eq!(
            who(Category::Banned, "s@y", true),
            [(Audience::Admin, vec!["postmaster@example.com".to_string()])]
        );
        assert_eq!(
            who(Category::Banned, "", false),
            [(Audience::Admin, vec!["postmaster@example.com".to_string()])]
        );
        let clean = vec![v("a@x", Category::Clean, Destiny::Pass, None)];
        assert!(notices(&n, &plan(&clean), &clean, "s@y", false).is_empty());
        let subject = &notices(
            &n,
            &plan(&blocked(Category::Virus)),
            &blocked(Category::Virus),
            "s@y",
            false,
        )[0]
        .subject;
        assert_eq!(subject, "INFECTED from <s@y>");
    }

    fn v(r: &str, c: Category, d: Destiny, tag: Option<&str>) -> Verdict {
        Verdict {
            recipient: r.into(),
            category: c,
            destiny: d,
            reason: "EICAR".into(),
            score: None,
            dsn_allowed: true,
            edits: Edits {
                subject_tag: tag.map(str::to_string),
                ..Edits::default()
            },
            admin: None,
        }
    }

    #[test]
    fn each_recipient_names_its_admin() {
        let n = Notify {
            virus_admin: "virusalert@example.com".into(),
            ..Notify::default()
        };
        let with = |r: &str, admin: Option<&str>| Verdict {
            admin: admin.map(str::to_string),
            ..v(r, Category::Virus, Destiny::Discard, None)
        };
        let vs = vec![
            with("a@x", Some("own@x")),
            with("b@x", None),
            with("c@x", Some("")),
            with("d@x", Some("own@x")),
        ];
        let admin: Vec<Vec<String>> = notices(&n, &plan(&vs), &vs, "s@y", false)
            .into_iter()
            .filter(|x| x.audience == Audience::Admin)
            .map(|x| x.to)
            .collect();
        assert_eq!(admin, [vec!["own@x", "virusalert@example.com"]]);
        let vs = vec![with("c@x", Some(""))];
        assert!(
            notices(&n, &plan(&vs), &vs, "s@y", false)
                .iter()
                .all(|x| x.audience != Audience::Admin),
            "an empty admin of its own: no notice"
        );
    }

    #[test]
    fn same_edits_share_a_group() {
        let p = plan(&[
            v("a", Category::Clean, Destiny::Pass, None),
            v("b", Category::Clean, Destiny::Pass, Some("T ")),
            v("c", Category::Clean, Destiny::Pass, None),
        ]);
        assert_eq!(p.groups.len(), 2);
        assert_eq!(p.groups[0].recipients, ["a", "c"]);
        assert_eq!(p.groups[1].recipients, ["b"]);
        assert!(p.passed());
        assert_eq!(p.actions(), ["Relayed", "Tagged"]);
    }

    #[test]
    fn destinies_to_exit() {
        use Destiny::*;
        let o = Category::Oversized;
        let exit = |d: Destiny| plan(&[v("a", o, d, None)]).failure.map(|f| f.exit);
        assert_eq!(exit(Pass), None);
        assert_eq!(exit(Discard), None);
        assert_eq!(exit(Bounce), Some(Exit::Unavailable));
        assert_eq!(exit(Reject), Some(Exit::Unavailable));
        assert_eq!(exit(Tempfail), Some(Exit::TempFail));
        let p = plan(&[v("a", o, Discard, None)]);
        assert_eq!((p.passed(), p.actions()), (false, vec!["Discarded"]));
        let p = plan(&[v("a", o, Bounce, None)]);
        let f = p.failure.unwrap();
        assert_eq!(f.status, "5.3.4");
        let p = plan(&[v("a", Category::Virus, Bounce, None)]);
        assert_eq!(
            p.failure.unwrap().line(),
            "5.7.0 message rejected: virus EICAR"
        );
    }

    #[test]
    fn any_tempfail_holds_the_whole_message() {
        let p = plan(&[
            v("a", Category::Clean, Destiny::Pass, None),
            v("b", Category::Oversized, Destiny::Tempfail, None),
        ]);
        assert_eq!(p.failure.unwrap().exit, Exit::TempFail);
        assert_eq!(p.category, Category::Oversized);
    }

    #[test]
    fn mixed_refusal_goes_into_our_dsn_and_suppressed_ones_are_discards() {
        let mut refused = v("b", Category::Spam, Destiny::Bounce, None);
        let p = plan(&[
            v("a", Category::Spam, Destiny::Pass, Some("T ")),
            refused.clone(),
        ]);
        assert_eq!(p.failure, None);
        assert_eq!(p.groups[0].recipients, ["a"]);
        assert_eq!(p.dsn.len(), 1);
        assert_eq!(
            (p.dsn[0].recipient.as_str(), p.dsn[0].status),
            ("b", "5.7.0")
        );
        assert_eq!(p.actions(), ["Relayed", "Tagged", "Bounced"]);
        refused.dsn_allowed = false;
        let p = plan(&[v("a", Category::Spam, Destiny::Pass, None), refused.clone()]);
        assert!(p.dsn.is_empty());
        assert_eq!(
            (p.discarded.clone(), p.no_dsn.clone()),
            (vec!["b".to_string()], vec!["b".to_string()])
        );
        // Everyone refused without a DSN allowed: a logged discard, exit 0, no backscatter.
        let p = plan(&[refused]);
        assert_eq!(p.failure, None);
        assert_eq!(p.actions(), ["Discarded"]);
    }
}
