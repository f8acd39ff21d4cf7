//! What the lookup tables say about each recipient, resolved once before the policy decides:
//! local or not, white- or blacklisted sender, which checks it bypasses, which categories it
//! loves, and its own spam levels. Everything after this is pure.
//!
//! With `[sql] lookups`, amavisd's tables come first, as amavisd asks SQL before its static
//! maps: the recipient's `wblist` before the TOML white/blacklists, a non-NULL policy flag
//! before the TOML table of the same name (`policy::lists`), a non-NULL policy level before
//! `[[per_recipient]]` and `[spam]`.

use crate::config::settings::Config;
use crate::lookup::pg::Wb;
use crate::lookup::source::LookupError;
use crate::lookup::table::Table;
use crate::policy::lists::Lists;
use crate::verdict::AuthReport;

/// A sender on one of the recipient's lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    White,
    Black,
}

/// One flag per check (or per category of the same name).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checks {
    pub virus: bool,
    pub spam: bool,
    pub banned: bool,
    pub header: bool,
}

/// The spam levels (and tag) that apply to one recipient.
#[derive(Debug, Clone, PartialEq)]
pub struct Levels {
    pub tag: f64,
    pub tag2: f64,
    pub kill: f64,
    pub dsn_cutoff: f64,
    pub subject_tag: String,
    /// quarantine_cutoff_level: the first matching [[per_recipient]] entry that sets one, else
    /// [spam]'s.
    pub quarantine_cutoff: Option<f64>,
}

/// One recipient as the tables see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipient {
    pub address: String,
    /// In local_domains (an empty local_domains makes every recipient local, so spam headers
    /// are never silently missing, amavisd's classic trap); the mailbox owner of a procmail run
    /// is local by definition.
    pub local: bool,
    pub listed: Option<Listed>,
    /// Soft white/blacklisting: the recipient's SQL wblist points for the senders (amavisd's
    /// numeric `wb`), added to its spam score.
    pub wb_score: f64,
    /// The recipient's own quarantine wishes (its SQL policy row's *_quarantine_to); None per
    /// category: the configuration's [quarantine] flag.
    pub quarantine: crate::lookup::pg::Wishes,
    /// The recipient's own admins (its SQL policy row's *_admin).
    pub admins: crate::lookup::pg::Admins,
    /// bypass_*_checks.
    pub bypass: Checks,
    /// *_lovers (virus, spam, banned files, bad header).
    pub lovers: Checks,
    pub levels: Levels,
}

impl Recipient {
    /// Lovers of a category, and recipients bypassing its check when it ran anyway for others,
    /// get it passed.
    pub fn loves(&self) -> Checks {
        Checks {
            virus: self.lovers.virus || self.bypass.virus,
            spam: self.lovers.spam || self.bypass.spam,
            banned: self.lovers.banned || self.bypass.banned,
            header: self.lovers.header || self.bypass.header,
        }
    }
}

/// The recipients of a run, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipients {
    /// One per envelope recipient; with none (a procmail filter), one for the mailbox owner, "".
    pub list: Vec<Recipient>,
    /// No envelope recipients were given.
    pub none_given: bool,
}

/// The lookup tables compiled and read for every recipient of `env`, once, so that the policy
/// after this is pure. A table that cannot be compiled is a configuration error (`4.3.5`), a
/// source that cannot answer a lookup failure (`4.3.0`): both exit 75.
pub fn read_tables(
    cfg: &Config,
    db: Option<&std::sync::Arc<crate::sql::conn::Db>>,
    env: &crate::envelope::Envelope,
    authors: &[String],
    auth: Option<&AuthReport>,
) -> Result<(Lists, Recipients), crate::outcome::Failure> {
    use crate::outcome::Failure;
    let lists = Lists::compile(cfg, db, (&env.sender, authors)).map_err(|(key, msg)| {
        Failure::tempfail("4.3.5", format!("configuration error: key {key}: {msg}"))
    })?;
    let rcpts = resolve(cfg, &lists, &env.sender, authors, &env.recipients, auth)
        .map_err(|e| Failure::tempfail("4.3.0", format!("lookup failed: {e}")))?;
    Ok((lists, rcpts))
}

/// Reads the tables for every recipient of the envelope. `Err` is a lookup that failed: the
/// caller holds the message for retry (a table we cannot read decides nothing).
pub fn resolve(
    cfg: &Config,
    lists: &Lists,
    sender: &str,
    authors: &[String],
    recipients: &[String],
    auth: Option<&AuthReport>,
) -> Result<Recipients, LookupError> {
    let none_given = recipients.is_empty();
    let owner = [String::new()];
    let addresses = if none_given { &owner[..] } else { recipients };
    let list = addresses
        .iter()
        .map(|r| one(cfg, lists, sender, authors, r, auth))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Recipients { list, none_given })
}

fn one(
    cfg: &Config,
    lists: &Lists,
    sender: &str,
    authors: &[String],
    rcpt: &str,
    auth: Option<&AuthReport>,
) -> Result<Recipient, LookupError> {
    let has = |t: &Table| t.lookup(rcpt);
    // The recipient's SQL policy row (read once; the tables below ask the same cache).
    let own = match &lists.sql {
        Some(sql) => sql.policy(rcpt)?,
        None => None,
    };
    Ok(Recipient {
        address: rcpt.to_string(),
        local: lists.is_local(rcpt)?,
        listed: listed(lists, rcpt, sender, authors, auth)?,
        wb_score: wb_score(lists, rcpt, sender, authors)?,
        quarantine: own.as_ref().map(|p| p.quarantine_to).unwrap_or_default(),
        admins: own.map(|p| p.admins).unwrap_or_default(),
        bypass: Checks {
            virus: has(&lists.bypass_virus)?,
            spam: has(&lists.bypass_spam)?,
            banned: has(&lists.bypass_banned)?,
            header: has(&lists.bypass_header)?,
        },
        lovers: Checks {
            virus: has(&lists.virus_lovers)?,
            spam: has(&lists.spam_lovers)?,
            banned: has(&lists.banned_lovers)?,
            header: has(&lists.bad_header_lovers)?,
        },
        levels: levels(cfg, lists, rcpt)?,
    })
}

/// The recipient's SQL wblist first, then its own TOML lists, then the authenticated
/// whitelist, then the global ones; whitelist before blacklist. The envelope sender and the
/// authors (From:) are asked, in that order.
fn listed(
    lists: &Lists,
    rcpt: &str,
    sender: &str,
    authors: &[String],
    auth: Option<&AuthReport>,
) -> Result<Option<Listed>, LookupError> {
    if let Some(sql) = &lists.sql
        && let Some(policy) = sql.policy(rcpt)?
    {
        for who in std::iter::once(sender).chain(authors.iter().map(String::as_str)) {
            match sql.wblist(&policy, who)? {
                Some(Wb::White) => return Ok(Some(Listed::White)),
                Some(Wb::Black) => return Ok(Some(Listed::Black)),
                Some(Wb::Score(_)) | None => {}
            }
        }
    }
    let hit = |t: &Table| -> Result<bool, LookupError> {
        if t.lookup(sender)? {
            return Ok(true);
        }
        for a in authors {
            if t.lookup(a)? {
                return Ok(true);
            }
        }
        Ok(false)
    };
    for (who, white, black) in &lists.per_recipient {
        if who.lookup(rcpt)? {
            if hit(white)? {
                return Ok(Some(Listed::White));
            }
            if hit(black)? {
                return Ok(Some(Listed::Black));
            }
        }
    }
    if authenticated_author(lists, authors, auth)? {
        return Ok(Some(Listed::White));
    }
    Ok(if hit(&lists.whitelist)? {
        Some(Listed::White)
    } else if hit(&lists.blacklist)? {
        Some(Listed::Black)
    } else {
        None
    })
}

/// The sum of the recipient's soft wblist points over the senders (envelope sender, authors).
fn wb_score(
    lists: &Lists,
    rcpt: &str,
    sender: &str,
    authors: &[String],
) -> Result<f64, LookupError> {
    let mut points = 0.0;
    if let Some(sql) = &lists.sql
        && let Some(policy) = sql.policy(rcpt)?
    {
        for who in std::iter::once(sender).chain(authors.iter().map(String::as_str)) {
            if let Some(Wb::Score(n)) = sql.wblist(&policy, who)? {
                points += n;
            }
        }
    }
    Ok(points)
}

/// An author on `[auth] whitelist_authenticated_sender` whom authentication proved: a valid
/// signature aligned with the From: domain or DMARC pass, never the From: text alone, and
/// only for a single author (a signature proves a domain, not which of several mailboxes).
fn authenticated_author(
    lists: &Lists,
    authors: &[String],
    auth: Option<&AuthReport>,
) -> Result<bool, LookupError> {
    let Some(domain) = auth
        .filter(|a| a.author_authenticated())
        .and_then(|a| a.author_domain.as_deref())
    else {
        return Ok(false);
    };
    if authors.len() != 1 {
        return Ok(false);
    }
    for a in authors {
        let same = a
            .rsplit_once('@')
            .is_some_and(|(_, d)| d.trim_end_matches('.').eq_ignore_ascii_case(domain));
        if same && lists.auth_whitelist.lookup(a)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn levels(cfg: &Config, lists: &Lists, rcpt: &str) -> Result<Levels, LookupError> {
    let sp = &cfg.spam;
    let (mut tag, mut tag2, mut kill, mut cut, mut subj) = (None, None, None, None, None);
    let mut quarantine_cutoff = None;
    if let Some(sql) = &lists.sql
        && let Some(p) = sql.policy(rcpt)?
    {
        (tag, tag2, kill, cut) = (p.tag_level, p.tag2_level, p.kill_level, p.dsn_cutoff_level);
        subj = p.spam_subject_tag.clone();
        quarantine_cutoff = p.quarantine_cutoff_level;
    }
    for (p, (who, _, _)) in cfg.per_recipient.iter().zip(&lists.per_recipient) {
        if who.lookup(rcpt)? {
            tag = tag.or(p.tag_level);
            tag2 = tag2.or(p.tag2_level);
            kill = kill.or(p.kill_level);
            cut = cut.or(p.dsn_cutoff_level);
            subj = subj.or(p.spam_subject_tag.clone());
            quarantine_cutoff = quarantine_cutoff.or(p.quarantine_cutoff_level);
        }
    }
    Ok(Levels {
        tag: tag.unwrap_or(sp.tag_level),
        tag2: tag2.unwrap_or(sp.tag2_level),
        kill: kill.unwrap_or(sp.kill_level),
        dsn_cutoff: cut.unwrap_or(sp.dsn_cutoff_level),
        subject_tag: subj.unwrap_or_else(|| cfg.headers.spam_subject_tag.clone()),
        quarantine_cutoff: quarantine_cutoff.or(sp.quarantine_cutoff_level),
    })
}
