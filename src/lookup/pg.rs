//! amavisd-new's SQL lookups (`[sql] lookups = true`): the `users` row (and its `policy`) of a
//! recipient, and the recipient's `wblist` verdict on a sender, read with amavisd's own queries
//! (Amavis/Conf.pm sel_policy and sel_wblist) and keys ([`crate::sql::keys`]).
//!
//! Contract: one query per recipient (cached for the run) brings its policy row and its wblist
//! rows for the run's senders (envelope sender and authors); every address is a bound bytea
//! parameter. A Y/N flag of the policy row is
//! also a lookup [`Source`] ([`Flag`]), placed before the TOML entries of the matching table, as
//! amavisd asks SQL before its static maps: `Y` is listed, `N` is not listed, NULL (or no row)
//! lets the TOML entries decide. What a database failure means is `[sql] on_failure`'s: an
//! error (the run is held, exit 75) or, with "ignore", a logged "no answer from SQL".

use crate::config::sql::SqlFailure;
use crate::lookup::source::{LookupError, Source};
use crate::lookup::table::Table;
use crate::sql::conn::Db;
use crate::sql::keys::query_keys;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_postgres::Row;
use tokio_postgres::types::Type;

/// amavisd's sel_policy with the keys as `$1` (a bytea array, one parameter whatever the
/// count), and in the same round trip its sel_wblist for every key of the run's senders (`$2`:
/// the envelope sender's and the authors'), highest mailaddr.priority first; `wblist` picks
/// each sender's rows from those.
const SEL_POLICY: &str = "SELECT u.id AS user_id, u.email, policy.*, \
       w.wb_emails, w.wb_values \
     FROM (SELECT id, email, policy_id FROM users WHERE email = ANY($1) \
           ORDER BY priority DESC LIMIT 1) u \
     LEFT JOIN policy ON u.policy_id = policy.id \
     LEFT JOIN LATERAL (SELECT array_agg(m.email ORDER BY m.priority DESC) AS wb_emails, \
                               array_agg(w.wb::text ORDER BY m.priority DESC) AS wb_values \
                        FROM wblist w JOIN mailaddr m ON w.sid = m.id \
                        WHERE w.rid = u.id AND m.email = ANY($2)) w ON true";

/// amavisd's sel_wblist: the recipient's users.id and the sender's keys.
const SEL_WBLIST: &str = "SELECT wb FROM wblist JOIN mailaddr ON wblist.sid = mailaddr.id \
     WHERE wblist.rid = $1 AND mailaddr.email = ANY($2) ORDER BY mailaddr.priority DESC";

/// A policy row's Y/N flags, by the policy column that holds each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlagColumn {
    VirusLover,
    SpamLover,
    BannedFilesLover,
    BadHeaderLover,
    BypassVirusChecks,
    BypassSpamChecks,
    BypassBannedChecks,
    BypassHeaderChecks,
}

impl FlagColumn {
    fn column(self) -> &'static str {
        match self {
            FlagColumn::VirusLover => "virus_lover",
            FlagColumn::SpamLover => "spam_lover",
            FlagColumn::BannedFilesLover => "banned_files_lover",
            FlagColumn::BadHeaderLover => "bad_header_lover",
            FlagColumn::BypassVirusChecks => "bypass_virus_checks",
            FlagColumn::BypassSpamChecks => "bypass_spam_checks",
            FlagColumn::BypassBannedChecks => "bypass_banned_checks",
            FlagColumn::BypassHeaderChecks => "bypass_header_checks",
        }
    }
}

/// What the `users`/`policy` row of one recipient says (NULL columns are `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    /// users.id: the recipient side of wblist.
    pub user_id: i32,
    /// The users.email key that matched (`@.` is the catch-all).
    pub matched: String,
    flags: HashMap<&'static str, bool>,
    pub tag_level: Option<f64>,
    pub tag2_level: Option<f64>,
    pub kill_level: Option<f64>,
    pub dsn_cutoff_level: Option<f64>,
    pub quarantine_cutoff_level: Option<f64>,
    /// spam_subject_tag2: amavisd's tag for spammy mail (at tag2_level), our spam_subject_tag.
    pub spam_subject_tag: Option<String>,
    /// The recipient's wblist rows for the run's senders: (mailaddr.email, wb), highest
    /// priority first.
    wb: Vec<(Vec<u8>, String)>,
    /// amavisd's *_quarantine_to for virus, banned, unchecked, spam, bad header: NULL = the
    /// configuration decides, "" = no quarantine copy for this recipient, anything else = a
    /// copy (kept in the configured store: the location itself is not used).
    pub quarantine_to: Wishes,
    /// amavisd's per-recipient virus_admin, banned_admin, spam_admin, bad_header_admin.
    pub admins: Admins,
}

/// Per category, the recipient's own admin address (None: [notify]'s; "": none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admins {
    pub virus: Option<String>,
    pub banned: Option<String>,
    pub spam: Option<String>,
    pub bad_header: Option<String>,
}

impl Admins {
    /// The admin for a verdict of `category` (only the categories amavisd has admins for).
    pub fn of(&self, category: crate::verdict::Category) -> Option<String> {
        use crate::verdict::Category as C;
        match category {
            C::Virus => self.virus.clone(),
            C::Banned => self.banned.clone(),
            C::Spam => self.spam.clone(),
            C::BadHeader => self.bad_header.clone(),
            C::Unchecked | C::Spammy | C::Oversized | C::Clean => None,
        }
    }
}

/// Per category, whether the recipient wants a quarantine copy (None: the configuration's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wishes {
    pub virus: Option<bool>,
    pub banned: Option<bool>,
    pub unchecked: Option<bool>,
    pub spam: Option<bool>,
    pub bad_header: Option<bool>,
}

impl Policy {
    pub fn flag(&self, f: FlagColumn) -> Option<bool> {
        self.flags.get(f.column()).copied()
    }

    /// A users row other than the `@.` catch-all makes its recipient local (amavisd: a users
    /// match is a local_domains match, the catch-all leaves it to the static tables).
    pub fn makes_local(&self) -> bool {
        self.matched != "@."
    }

    fn from_row(row: &Row) -> Policy {
        let text = |c: &str| row.try_get::<_, Option<String>>(c).ok().flatten();
        let level = |c: &str| {
            row.try_get::<_, Option<f32>>(c)
                .ok()
                .flatten()
                .map(f64::from)
        };
        let mut flags = HashMap::new();
        for f in [
            FlagColumn::VirusLover,
            FlagColumn::SpamLover,
            FlagColumn::BannedFilesLover,
            FlagColumn::BadHeaderLover,
            FlagColumn::BypassVirusChecks,
            FlagColumn::BypassSpamChecks,
            FlagColumn::BypassBannedChecks,
            FlagColumn::BypassHeaderChecks,
        ] {
            if let Some(v) = text(f.column()).and_then(|v| yes_no(&v)) {
                flags.insert(f.column(), v);
            }
        }
        let matched = row
            .try_get::<_, Vec<u8>>("email")
            .map(|e| String::from_utf8_lossy(&e).into_owned())
            .unwrap_or_default();
        let emails: Vec<Vec<u8>> = row
            .try_get::<_, Option<Vec<Vec<u8>>>>("wb_emails")
            .ok()
            .flatten()
            .unwrap_or_default();
        let values: Vec<String> = row
            .try_get::<_, Option<Vec<String>>>("wb_values")
            .ok()
            .flatten()
            .unwrap_or_default();
        let wish = |c: &str| text(c).map(|v| !v.trim().is_empty());
        // An address as amavisd would use it: one token, printable, no list.
        let admin = |c: &str| {
            text(c).map(|v| {
                let v = v.trim();
                if v.chars().all(|c| c.is_ascii_graphic()) && !v.contains(',') {
                    v.to_string()
                } else {
                    String::new()
                }
            })
        };
        Policy {
            admins: Admins {
                virus: admin("virus_admin"),
                banned: admin("banned_admin"),
                spam: admin("spam_admin"),
                bad_header: admin("bad_header_admin"),
            },
            quarantine_to: Wishes {
                virus: wish("virus_quarantine_to"),
                banned: wish("banned_quarantine_to"),
                unchecked: wish("unchecked_quarantine_to"),
                spam: wish("spam_quarantine_to"),
                bad_header: wish("bad_header_quarantine_to"),
            },
            wb: emails.into_iter().zip(values).collect(),
            user_id: row.try_get("user_id").unwrap_or(0),
            matched,
            flags,
            tag_level: level("spam_tag_level"),
            tag2_level: level("spam_tag2_level"),
            kill_level: level("spam_kill_level"),
            dsn_cutoff_level: level("spam_dsn_cutoff_level"),
            quarantine_cutoff_level: level("spam_quarantine_cutoff_level"),
            spam_subject_tag: text("spam_subject_tag2"),
        }
    }
}

/// amavisd's reading of a Y/N column: Y/y/1 true, N/n/0 false, anything else (a space) no
/// answer.
fn yes_no(v: &str) -> Option<bool> {
    match v.trim() {
        "Y" | "y" | "1" => Some(true),
        "N" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// A wblist verdict on one sender.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wb {
    White,
    Black,
    /// Soft white/blacklisting: points added to the recipient's spam score.
    Score(f64),
}

/// amavisd's reading of wblist.wb (Amavis/SpamControl.pm): W/Y/T white, B/N/F black, a number
/// soft points, blank neutral (no verdict); anything else is white, as in amavisd (which logs it
/// as unexpected).
fn wb_value(v: &str) -> Option<Wb> {
    let t = v.trim_matches(' ');
    if t.trim_matches('\0').is_empty() {
        return None;
    }
    if let Ok(n) = t.parse::<f64>()
        && n.is_finite()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.'))
    {
        return Some(Wb::Score(n));
    }
    Some(match t {
        "B" | "b" | "N" | "n" | "F" | "f" => Wb::Black,
        _ => Wb::White,
    })
}

/// The run's SQL lookups: the connection, the static local_domains (for the keys), the
/// policy rows read so far.
#[derive(Debug)]
pub struct Lookups {
    db: Arc<Db>,
    local_domains: Table,
    on_failure: SqlFailure,
    policies: Mutex<HashMap<String, Option<Policy>>>,
    /// The run's senders (envelope sender, authors): their wblist rows come with each policy.
    senders: Vec<String>,
}

impl Lookups {
    pub fn new(
        db: Arc<Db>,
        local_domains: Table,
        on_failure: SqlFailure,
        senders: Vec<String>,
    ) -> Lookups {
        Lookups {
            db,
            local_domains,
            on_failure,
            policies: Mutex::new(HashMap::new()),
            senders,
        }
    }

    fn sender_keys(&self, sender: &str) -> Result<Vec<Vec<u8>>, LookupError> {
        Ok(bytes(query_keys(sender, self.is_local(sender)?)))
    }

    fn is_local(&self, addr: &str) -> Result<bool, LookupError> {
        Ok(self.local_domains.is_empty() || self.local_domains.lookup(addr)?)
    }

    /// The recipient's users/policy row, if any (read once per address and run).
    pub fn policy(&self, rcpt: &str) -> Result<Option<Policy>, LookupError> {
        // Tables ask in lower case; one cache entry (one query) per recipient either way.
        let rcpt = &rcpt.to_lowercase();
        let mut cache = self.policies.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = cache.get(rcpt) {
            return Ok(p.clone());
        }
        let keys = bytes(query_keys(rcpt, self.is_local(rcpt)?));
        let mut senders = Vec::new();
        for s in &self.senders {
            senders.extend(self.sender_keys(s)?);
        }
        let found = match self.db.query(
            SEL_POLICY,
            &[(&keys, Type::BYTEA_ARRAY), (&senders, Type::BYTEA_ARRAY)],
        ) {
            Ok(rows) => rows.first().map(Policy::from_row),
            Err(e) => self.failed("policy", rcpt, &e.0)?,
        };
        cache.insert(rcpt.to_string(), found.clone());
        Ok(found)
    }

    /// The recipient's wblist verdict on `sender`: the row of the highest mailaddr.priority
    /// among the sender's keys decides, as amavisd's lookup takes the first row (a blank `wb`
    /// is no verdict). From the rows read with its policy for the run's senders, else with
    /// amavisd's own query.
    pub fn wblist(&self, policy: &Policy, sender: &str) -> Result<Option<Wb>, LookupError> {
        let keys = self.sender_keys(sender)?;
        if self.senders.iter().any(|s| s == sender) {
            return Ok(policy
                .wb
                .iter()
                .find(|(email, _)| keys.contains(email))
                .and_then(|(_, v)| wb_value(v)));
        }
        match self.db.query(
            SEL_WBLIST,
            &[(&policy.user_id, Type::INT4), (&keys, Type::BYTEA_ARRAY)],
        ) {
            Ok(rows) => Ok(rows
                .first()
                .and_then(|r| r.try_get::<_, String>("wb").ok())
                .and_then(|v| wb_value(&v))),
            Err(e) => self.failed("wblist", sender, &e.0),
        }
    }

    /// A query failed: an error under on_failure = "tempfail", a logged miss under "ignore".
    fn failed<T>(&self, what: &str, addr: &str, err: &str) -> Result<Option<T>, LookupError> {
        let msg = format!(
            "sql {what} lookup for <{}>: {err}",
            crate::log::clip(addr, 200)
        );
        match self.on_failure {
            SqlFailure::Tempfail => Err(LookupError::new(msg)),
            SqlFailure::Ignore => {
                crate::log::warn(&format!("{msg} (sql.on_failure = \"ignore\": not asked)"));
                Ok(None)
            }
        }
    }
}

fn bytes(keys: Vec<String>) -> Vec<Vec<u8>> {
    keys.into_iter().map(String::into_bytes).collect()
}

/// One Y/N column of the recipient's policy row as an entry of a lookup table.
#[derive(Debug)]
pub struct Flag {
    pub lookups: Arc<Lookups>,
    pub column: FlagColumn,
}

impl Source for Flag {
    fn find(&self, address: &str) -> Result<Option<bool>, LookupError> {
        Ok(self
            .lookups
            .policy(address)?
            .and_then(|p| p.flag(self.column)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amavisd_values() {
        assert_eq!(yes_no("Y"), Some(true));
        assert_eq!(yes_no("N"), Some(false));
        assert_eq!(yes_no(" "), None);
        assert_eq!(wb_value("W"), Some(Wb::White));
        assert_eq!(wb_value("Y"), Some(Wb::White));
        assert_eq!(wb_value("B"), Some(Wb::Black));
        assert_eq!(wb_value("N"), Some(Wb::Black));
        assert_eq!(wb_value("F"), Some(Wb::Black));
        assert_eq!(wb_value(" "), None);
        assert_eq!(wb_value(""), None);
        assert_eq!(wb_value("-3.5"), Some(Wb::Score(-3.5)));
        assert_eq!(wb_value(" +2 "), Some(Wb::Score(2.0)));
        assert_eq!(
            wb_value("inf"),
            Some(Wb::White),
            "not a number amavisd reads"
        );
    }
}
