//! The SQL message log (`[sql] log = true`): amavisd-new's `maddr`, `msgs` and `msgrcpt` rows
//! for every message and recipient, with the columns amavisd fills (Amavis/Out/SQL/Log.pm), so
//! that reporting queries and quarantine UIs built on its schema work unchanged, and pen pals
//! work across hosts.
//!
//! Contract: written after the message was handled, never before: a log write that fails is
//! logged and changes nothing (the message was delivered, discarded or held already). Addresses
//! are normalised as amavisd's find_or_save_addr (lower case, 7-bit printable, at most 255
//! bytes); every value is a bound parameter.

use crate::act::execute::Executed;
use crate::act::quarantine::Kept;
use crate::envelope::Envelope;
use crate::outcome::Exit;
use crate::policy::recipient::{Listed, Recipients};
use crate::sql::conn::{Db, DbError};
use crate::verdict::{Category, Destiny, Verdict};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio_postgres::types::Type;

/// Everything one message's rows say.
pub struct Entry<'a> {
    pub env: &'a Envelope,
    pub hostname: &'a str,
    pub received: SystemTime,
    pub size: u64,
    /// The header section and its raw bytes (Message-ID, From, Subject).
    pub header: (&'a crate::message::header::Header, &'a [u8]),
    /// The run's main category (the most severe one among the recipients).
    pub category: Category,
    pub rcpts: &'a Recipients,
    pub verdicts: &'a [Verdict],
    pub kept: Option<&'a Kept>,
    pub executed: &'a Executed,
    /// Our DSN went out for refused recipients.
    pub dsn_sent: bool,
}

/// The whole log of one message in one statement (one round trip, atomic: a reader never
/// sees a message without its recipients): the addresses' maddr rows, inserted when new (the
/// UNION finds those that exist), the msgs row, one msgrcpt row per recipient ($19.. arrays,
/// in recipient order).
const LOG_MESSAGE: &str = "WITH new AS ( \
       INSERT INTO maddr (partition_tag, email, domain) \
       SELECT 0, e, d FROM unnest($1::bytea[], $2::varchar[]) AS a(e, d) \
       ON CONFLICT (partition_tag, email) DO NOTHING RETURNING id, email), \
     addr AS ( \
       SELECT id, email FROM new UNION ALL \
       SELECT id, email FROM maddr WHERE partition_tag = 0 AND email = ANY($1)), \
     msg AS ( \
       INSERT INTO msgs (partition_tag, mail_id, secret_id, am_id, time_num, time_iso, sid, \
         policy, client_addr, size, originating, content, quar_type, quar_loc, dsn_sent, \
         spam_level, message_id, from_addr, subject, host) \
       SELECT 0, $3, $4, $5, $6, $7, (SELECT id FROM addr WHERE email = $8 LIMIT 1), $29, \
         $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20 \
       RETURNING mail_id) \
     INSERT INTO msgrcpt (partition_tag, mail_id, rseqnum, rid, is_local, content, ds, rs, \
       bl, wl, bspam_level, smtp_resp) \
     SELECT 0, (SELECT mail_id FROM msg), r.n, \
       (SELECT id FROM addr WHERE email = r.email LIMIT 1), r.is_local, r.content, r.ds, ' ', \
       r.bl, r.wl, r.lvl, r.resp \
     FROM unnest($21::bytea[], $22::bpchar[], $23::bpchar[], $24::bpchar[], $25::bpchar[], \
       $26::bpchar[], $27::float4[], $28::varchar[]) \
       WITH ORDINALITY AS r(email, is_local, content, ds, bl, wl, lvl, resp, n)";

/// Writes the rows when `[sql] log` is on; a failure is logged, never returned.
pub fn record(log: bool, db: Option<&Db>, e: &Entry) {
    let Some(db) = db.filter(|_| log) else {
        return;
    };
    let started = std::time::Instant::now();
    match write(db, e) {
        Ok(()) => crate::timings::add("sql log", started.elapsed()),
        Err(err) => crate::log::warn(&format!(
            "sql message log not written (the message is handled all the same): {err}"
        )),
    }
}

/// One statement; tried twice, as two hosts inserting the same new address at the same
/// moment can make it miss that address's id once (then the NOT NULL of sid/rid refuses it
/// and the second try, with a fresh snapshot, sees the other host's row).
pub fn write(db: &Db, e: &Entry) -> Result<(), DbError> {
    match log_message(db, e) {
        Err(err) if err.0.contains("(23502)") => log_message(db, e),
        other => other,
    }
}

fn log_message(db: &Db, e: &Entry) -> Result<(), DbError> {
    let mail_id = crate::log::mail_id().as_bytes().to_vec();
    let secs = e
        .received
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let time_num = i32::try_from(secs).unwrap_or(i32::MAX);
    let size = i32::try_from(e.size).unwrap_or(i32::MAX);
    let spam_level = e
        .verdicts
        .iter()
        .filter_map(|v| v.score)
        .reduce(f64::min)
        .map(|s| s as f32);
    let (quar_type, quar_loc) = match e.kept {
        Some(k) => (k.kind.to_string(), clip(&k.location)),
        None => (" ".to_string(), String::new()),
    };
    let am_id = format!("{:05}-01", std::process::id());
    let client = e
        .env
        .client
        .address
        .map(|a| a.to_string())
        .unwrap_or_default();
    // amavisd's "originating": from inside or authenticated; here the ORIGINATING bank (the
    // master.cf transport for local submission) or a SASL login.
    let bank = e.env.bank.as_deref().unwrap_or("");
    let originating = yn(e.env.client.sasl_username.is_some() || bank == "ORIGINATING");
    let policy = clip(bank);
    let field = |name: &str| clip(&e.header.0.first_text(e.header.1, name).unwrap_or_default());
    // Every address once (an address may be sender and recipient, or given twice).
    let (sender, _) = normalise(&e.env.sender);
    let (mut emails, mut domains): (Vec<Vec<u8>>, Vec<String>) = (Vec::new(), Vec::new());
    for a in std::iter::once(e.env.sender.as_str())
        .chain(e.verdicts.iter().map(|v| v.recipient.as_str()))
    {
        let (email, domain) = normalise(a);
        if !emails.contains(&email) {
            emails.push(email);
            domains.push(domain);
        }
    }
    let r = Rows::of(e);
    db.execute(
        LOG_MESSAGE,
        &[
            (&emails, Type::BYTEA_ARRAY),
            (&domains, Type::VARCHAR_ARRAY),
            (&mail_id, Type::BYTEA),
            (&Vec::<u8>::new(), Type::BYTEA),
            (&am_id, Type::VARCHAR),
            (&time_num, Type::INT4),
            (&e.received, Type::TIMESTAMPTZ),
            (&sender, Type::BYTEA),
            (&client, Type::VARCHAR),
            (&size, Type::INT4),
            (&originating, Type::BPCHAR),
            (&content(e.category), Type::BPCHAR),
            (&quar_type, Type::BPCHAR),
            (&quar_loc, Type::VARCHAR),
            (&yn(e.dsn_sent), Type::BPCHAR),
            (&spam_level, Type::FLOAT4),
            (&field("Message-ID"), Type::VARCHAR),
            (&field("From"), Type::VARCHAR),
            (&field("Subject"), Type::VARCHAR),
            (&clip(e.hostname), Type::VARCHAR),
            (&r.email, Type::BYTEA_ARRAY),
            (&r.is_local, Type::BPCHAR_ARRAY),
            (&r.content, Type::BPCHAR_ARRAY),
            (&r.ds, Type::BPCHAR_ARRAY),
            (&r.bl, Type::BPCHAR_ARRAY),
            (&r.wl, Type::BPCHAR_ARRAY),
            (&r.level, Type::FLOAT4_ARRAY),
            (&r.resp, Type::VARCHAR_ARRAY),
            (&policy, Type::VARCHAR),
        ],
    )?;
    Ok(())
}

/// The msgrcpt columns, one array each, in recipient order.
#[derive(Default)]
struct Rows {
    email: Vec<Vec<u8>>,
    is_local: Vec<String>,
    content: Vec<String>,
    ds: Vec<String>,
    bl: Vec<String>,
    wl: Vec<String>,
    level: Vec<Option<f32>>,
    resp: Vec<String>,
}

impl Rows {
    fn of(e: &Entry) -> Rows {
        let mut rows = Rows::default();
        for (n, v) in e.verdicts.iter().enumerate() {
            let r = e.rcpts.list.get(n);
            let ds = delivery_status(e.executed, v.destiny);
            rows.email.push(normalise(&v.recipient).0);
            rows.is_local.push(yn(r.is_some_and(|r| r.local)));
            rows.content.push(content(v.category));
            rows.ds.push(ds.to_string());
            rows.bl
                .push(yn(r.is_some_and(|r| r.listed == Some(Listed::Black))));
            rows.wl
                .push(yn(r.is_some_and(|r| r.listed == Some(Listed::White))));
            rows.level.push(v.score.map(|s| s as f32));
            rows.resp.push(smtp_response(ds, e.executed));
        }
        rows
    }
}

/// amavisd's find_or_save_addr: (email, domain with its labels reversed). The local part and
/// domain lower-cased, trailing dots cut, at most 255 bytes, bytes outside printable ASCII `?`;
/// the null sender stays empty.
pub fn normalise(addr: &str) -> (Vec<u8>, String) {
    if addr.is_empty() {
        return (Vec::new(), String::new());
    }
    let (local, domain) = match addr.rfind('@') {
        Some(i) => (&addr[..i], &addr[i + 1..]),
        None => (addr, ""),
    };
    let domain = domain.trim_end_matches('.').to_lowercase();
    let email = seven_bit(&format!("{}@{domain}", local.to_lowercase()));
    let reversed: Vec<&str> = domain.split('.').rev().collect();
    let mut domain = seven_bit(&reversed.join("."));
    truncate(&mut domain, 255);
    let mut email = email;
    truncate(&mut email, 255);
    (email.into_bytes(), domain)
}

fn seven_bit(s: &str) -> String {
    s.chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// A varchar(255) value: control characters (NUL, which PostgreSQL refuses, included) as `?`,
/// at most 255 characters.
fn clip(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(255)
        .collect()
}

fn yn(b: bool) -> String {
    if b { "Y" } else { "N" }.to_string()
}

/// amavisd's content type letters (msgs.content, msgrcpt.content).
fn content(c: Category) -> String {
    match c {
        Category::Virus => "V",
        Category::Banned => "B",
        Category::Unchecked => "U",
        Category::Spam => "S",
        Category::Spammy => "Y",
        Category::BadHeader => "H",
        Category::Oversized => "O",
        Category::Clean => "C",
    }
    .to_string()
}

/// msgrcpt.ds: P(ass), R(eject), B(ounce), D(iscard), T(empfail), as it came out.
fn delivery_status(executed: &Executed, destiny: Destiny) -> char {
    match executed {
        Executed::Failed(f) | Executed::Refused(f) if f.exit == Exit::TempFail => 'T',
        Executed::Failed(_) | Executed::Refused(_) => match destiny {
            Destiny::Reject => 'R',
            _ => 'B',
        },
        // Nothing delivered and a copy failed: the whole message is retried.
        Executed::Done {
            delivered: false,
            problems,
            ..
        } if !problems.is_empty() => 'T',
        Executed::Done { .. } => match destiny {
            Destiny::Pass => 'P',
            Destiny::Discard => 'D',
            Destiny::Bounce => 'B',
            Destiny::Reject => 'R',
            Destiny::Tempfail => 'T',
        },
    }
}

fn smtp_response(ds: char, executed: &Executed) -> String {
    if let Executed::Failed(f) | Executed::Refused(f) = executed {
        let code = if f.exit == Exit::TempFail {
            "451"
        } else {
            "554"
        };
        return clip(&format!("{code} {}", f.line()));
    }
    match ds {
        'P' => "250 2.0.0 Ok",
        'D' => "250 2.7.0 Ok, discarded",
        'B' => "554 5.7.0 Bounced",
        'R' => "554 5.7.0 Rejected",
        _ => "451 4.5.0 Try again later",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn addresses_as_amavisd_stores_them() {
        assert_eq!(
            normalise("Bob@Sub.Example.COM."),
            (b"bob@sub.example.com".to_vec(), "com.example.sub".into())
        );
        assert_eq!(normalise(""), (Vec::new(), String::new()));
        let (e, _) = normalise("a\0b@exämple.org");
        assert_eq!(e, b"a?b@ex?mple.org");
        let (e, _) = normalise(&format!("{}@example.org", "x".repeat(1000)));
        assert_eq!(e.len(), 255);
    }
}
