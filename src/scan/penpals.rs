//! amavisd-new's pen pals (`[sql] penpals_bonus_score`): a reply to mail that a local
//! recipient sent earlier to this sender gets a bonus off its spam score, found in the SQL
//! message log (so a reply arriving at mx2 knows what the user sent through mx1).
//!
//! Contract (Amavis.pm, penpals_check, and Amavis/Out/SQL/Log.pm, penpals_find): asked only
//! when the message was spam-scanned, is not a virus, and its score is between
//! penpals_threshold_low and penpals_threshold_high + bonus; never for an unauthenticated
//! sender claiming a local domain, nor from a recipient to itself. For each local recipient
//! the most recent passed, non-virus message from that recipient to the sender counts, a
//! message named in References/In-Reply-To first; the bonus decays by half every
//! penpals_halflife: `adj = -bonus * 2^(-age/halflife)`, added to that recipient's score as
//! the test `AM.PENPAL`. A database failure is `Facts::sql_failed` (the policy holds the
//! message under on_failure = "tempfail"); with "ignore" it is logged and no bonus is given.

use crate::config::settings::Config;
use crate::config::sql::SqlFailure;
use crate::envelope::Envelope;
use crate::message::header::Header;
use crate::policy::facts::Facts;
use crate::policy::lists::Lists;
use crate::policy::recipient::Recipients;
use crate::sql::conn::{Db, DbError};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio_postgres::types::Type;

/// amavisd's sel_penpals_msgid, then its sel_penpals, in one round trip: the most recent
/// passed, non-virus mail from `$1` (the recipient, as an earlier sender) that this message
/// refers to (`$3`: its References/In-Reply-To), preferring mail to `$2` (the sender); else
/// the most recent such mail from `$1` to `$2`. The addresses are looked up in maddr here.
const SEL_PENPALS: &str = "WITH s AS (SELECT id FROM maddr WHERE partition_tag = 0 AND email = $1), \
     r AS (SELECT id FROM maddr WHERE partition_tag = 0 AND email = $2) \
     (SELECT 1 AS pref, msgs.time_num FROM msgs JOIN msgrcpt USING (partition_tag, mail_id) \
       WHERE msgs.sid = (SELECT id FROM s) AND msgs.content != 'V' AND msgrcpt.ds = 'P' \
         AND msgs.message_id = ANY($3) AND msgrcpt.rid != msgs.sid \
       ORDER BY msgrcpt.rid = (SELECT id FROM r) DESC, msgs.time_num DESC LIMIT 1) \
     UNION ALL \
     (SELECT 2, msgs.time_num FROM msgs JOIN msgrcpt USING (partition_tag, mail_id) \
       WHERE msgs.sid = (SELECT id FROM s) AND msgrcpt.rid = (SELECT id FROM r) \
         AND msgs.content != 'V' AND msgrcpt.ds = 'P' \
       ORDER BY msgs.time_num DESC LIMIT 1) \
     ORDER BY pref LIMIT 1";

/// Adds the pen pals bonuses to `facts` (or its failure), when pen pals are on.
pub fn apply(
    cfg: &Config,
    db: Option<&Db>,
    lists: &Lists,
    env: &Envelope,
    (header, head): (&Header, &[u8]),
    rcpts: &Recipients,
    facts: &mut Facts,
) {
    let Some(db) = db.filter(|_| cfg.sql.penpals()) else {
        return;
    };
    if !wanted(cfg, lists, env, facts) {
        return;
    }
    let started = std::time::Instant::now();
    let refs = references(header, head);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match find(cfg, db, env, &refs, rcpts, now) {
        Ok(bonuses) => facts.penpals = bonuses,
        Err(e) => match cfg.sql.on_failure {
            SqlFailure::Tempfail => facts.sql_failed = Some(format!("pen pals: {e}")),
            SqlFailure::Ignore => crate::log::warn(&format!(
                "sql pen pals lookup failed (sql.on_failure = \"ignore\": no bonus): {e}"
            )),
        },
    }
    crate::timings::add("penpals", started.elapsed());
}

/// amavisd's conditions for asking at all.
fn wanted(cfg: &Config, lists: &Lists, env: &Envelope, facts: &Facts) -> bool {
    let q = &cfg.sql;
    let Some(spam) = &facts.spam else {
        return false;
    };
    if !facts.viruses.is_empty() {
        return false;
    }
    if q.penpals_threshold_low.is_some_and(|low| spam.score < low) {
        return false;
    }
    if q.penpals_threshold_high
        .is_some_and(|high| spam.score - q.penpals_bonus_score > high)
    {
        return false;
    }
    // An outside sender claiming one of our domains gets no bonus (unless authenticated).
    let claims_local = !env.sender.is_empty()
        && !lists.local_domains.is_empty()
        && lists.local_domains.lookup(&env.sender).unwrap_or(true);
    !(claims_local && env.client.sasl_username.is_none())
}

/// The Message-IDs this message refers to (References, In-Reply-To), as `<…>`, 7-bit.
pub fn references(header: &Header, head: &[u8]) -> Vec<String> {
    let mut refs = Vec::new();
    for name in ["In-Reply-To", "References"] {
        for f in header.fields.iter().filter(|f| f.is(name)) {
            let text = f.text(head);
            let mut rest = text.as_str();
            while let Some(open) = rest.find('<') {
                let Some(close) = rest[open..].find('>') else {
                    break;
                };
                let id: String = rest[open..open + close + 1]
                    .chars()
                    .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
                    .collect();
                if id.len() <= 255 && !refs.contains(&id) && refs.len() < 50 {
                    refs.push(id);
                }
                rest = &rest[open + close + 1..];
            }
        }
    }
    refs
}

fn find(
    cfg: &Config,
    db: &Db,
    env: &Envelope,
    refs: &[String],
    rcpts: &Recipients,
    now: u64,
) -> Result<std::collections::HashMap<String, f64>, DbError> {
    let mut bonuses = std::collections::HashMap::new();
    let (sender, _) = crate::act::sqllog::normalise(&env.sender);
    let halflife = cfg.sql.penpals_halflife.0.as_secs_f64();
    for r in &rcpts.list {
        if !r.local || r.address.eq_ignore_ascii_case(&env.sender) || r.address.is_empty() {
            continue;
        }
        // Swapped, as in amavisd: did this recipient send mail to this sender?
        let (rcpt, _) = crate::act::sqllog::normalise(&r.address);
        let rows = db.query(
            SEL_PENPALS,
            &[
                (&rcpt, Type::BYTEA),
                (&sender, Type::BYTEA),
                (&refs, Type::VARCHAR_ARRAY),
            ],
        )?;
        let sent = rows.first().map(|row| row.get::<_, i32>(1));
        if let Some(t) = sent {
            let age = now.saturating_sub(t.max(0) as u64) as f64;
            let weight = (-(age / halflife) * std::f64::consts::LN_2).exp();
            let adj = -weight * cfg.sql.penpals_bonus_score;
            crate::log::info(&format!(
                "penpals: bonus {:.3}, age {age:.0} s, <{}> replying to <{}>",
                -adj,
                crate::log::clip(&env.sender, 200),
                crate::log::clip(&r.address, 200)
            ));
            bonuses.insert(r.address.clone(), adj);
        }
    }
    Ok(bonuses)
}

#[cfg(test)]
mod tests {
    use super::references;
    use crate::message::header::Header;

    #[test]
    fn references_are_the_message_ids_of_both_fields() {
        let head = b"In-Reply-To: <a@x>\nReferences: <b@y>\n <a@x> junk <c@\x01z>\nSubject: s\n\n";
        let h = Header::parse(head);
        assert_eq!(references(&h, head), ["<a@x>", "<b@y>", "<c@?z>"]);
        let head = b"References: <unclosed\n\n";
        assert!(references(&Header::parse(head), head).is_empty());
    }
}
