//! The SQL quarantine (`[quarantine] method = "sql"`): the same copy as the file store (the
//! record block, then the original bytes: [`super::record`]) in amavisd-new's `quarantine`
//! table, in chunks of 16 KiB ($sql_quarantine_chunksize_max), under the run's mail_id, so that
//! every host sharing the database (and amavisd's quarantine UIs) can list and release it.
//!
//! Contract: [`store`] writes every chunk in one transaction (all or nothing: a copy that is
//! half there is never listed); [`read`] gives back the record and the original bytes exactly,
//! refusing more than `cap` bytes; [`list`] reads only the first chunk of each copy;
//! [`mark_released`] sets msgrcpt.rs = 'R' (amavisd's "released") for the message's
//! recipients. Every value is a bound parameter.

use crate::act::quarantine::record::{Record, Unreadable};
use crate::act::quarantine::store::Held;
use crate::sql::conn::{Db, DbError};
use std::io::Read;
use tokio_postgres::types::Type;

/// amavisd's $sql_quarantine_chunksize_max.
pub const CHUNK: usize = 16 * 1024;

const INS_QUAR: &str = "INSERT INTO quarantine (partition_tag, mail_id, chunk_ind, mail_text) \
     VALUES (0, $1, $2, $3)";

/// Writes `fields` + `message` under `id`.
pub fn store(db: &Db, id: &str, fields: &[u8], message: &mut dyn Read) -> Result<u64, DbError> {
    db.batch("BEGIN")?;
    match chunks(db, id, fields, message) {
        Ok(n) => db.batch("COMMIT").map(|()| n),
        Err(e) => {
            let _ = db.batch("ROLLBACK");
            Err(e)
        }
    }
}

fn chunks(db: &Db, id: &str, fields: &[u8], message: &mut dyn Read) -> Result<u64, DbError> {
    let mut reader = fields.chain(message);
    let mut buf = vec![0u8; CHUNK];
    let (mut total, mut ind) = (0u64, 0i32);
    loop {
        let n = fill(&mut reader, &mut buf)
            .map_err(|e| DbError(format!("reading the message: {e}")))?;
        if n == 0 {
            break;
        }
        ind += 1;
        let chunk = &buf[..n];
        db.execute(
            INS_QUAR,
            &[
                (&id.as_bytes(), Type::BYTEA),
                (&ind, Type::INT4),
                (&chunk, Type::BYTEA),
            ],
        )?;
        total += n as u64;
        if n < CHUNK {
            break;
        }
    }
    Ok(total)
}

/// Reads until `buf` is full or the input ends.
fn fill(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Why a copy cannot be read back.
#[derive(Debug)]
pub enum NotRead {
    /// No copy under that id.
    Missing,
    /// The database did not answer.
    Db(DbError),
    /// The copy is larger than allowed, or not a pipescan record.
    Bad(String),
}

/// The whole copy `id`: its record and the original bytes (at most `cap` bytes in all).
pub fn read(db: &Db, id: &str, cap: u64) -> Result<Held, NotRead> {
    let size = db
        .query(
            "SELECT coalesce(sum(length(mail_text)), 0)::bigint, count(*) FROM quarantine \
             WHERE partition_tag = 0 AND mail_id = $1",
            &[(&id.as_bytes(), Type::BYTEA)],
        )
        .map_err(NotRead::Db)?;
    let (bytes, chunks): (i64, i64) = size.first().map(|r| (r.get(0), r.get(1))).unwrap_or((0, 0));
    if chunks == 0 {
        return Err(NotRead::Missing);
    }
    if bytes as u64 > cap {
        return Err(NotRead::Bad(format!(
            "holds {bytes} bytes, more than {cap}: refused (the limit is 4 x general.max_message_size, plus 1 MiB)"
        )));
    }
    let rows = db
        .query(
            "SELECT mail_text FROM quarantine WHERE partition_tag = 0 AND mail_id = $1 \
             ORDER BY chunk_ind",
            &[(&id.as_bytes(), Type::BYTEA)],
        )
        .map_err(NotRead::Db)?;
    let mut raw = Vec::with_capacity(bytes as usize);
    for r in &rows {
        raw.extend_from_slice(r.get::<_, &[u8]>(0));
    }
    let (record, start) = parse(&raw)?;
    raw.drain(..start);
    Ok(Held {
        record,
        original: raw,
    })
}

fn parse(raw: &[u8]) -> Result<(Record, usize), NotRead> {
    Record::parse(raw).map_err(|e| match e {
        Unreadable::Truncated => NotRead::Bad("the quarantine record is cut short".into()),
        Unreadable::Bad(why) => NotRead::Bad(why),
    })
}

/// One copy as `quarantine list` shows it.
pub struct Listed {
    pub id: String,
    /// When the message was received (msgs.time_num), if the message log has its row.
    pub secs: Option<u64>,
    /// The record and the start of the original (its header section, as far as the first
    /// chunk holds it), or why it cannot be read.
    pub read: Result<(Record, Vec<u8>), String>,
}

/// Every copy, oldest first (copies without a msgs row last), from its first chunk.
pub fn list(db: &Db, since_secs: Option<u64>) -> Result<Vec<Listed>, DbError> {
    let rows = db.query(
        "SELECT q.mail_id, q.mail_text, m.time_num FROM quarantine q \
         LEFT JOIN msgs m ON m.partition_tag = q.partition_tag AND m.mail_id = q.mail_id \
         WHERE q.chunk_ind = 1 AND ($1::bigint IS NULL OR m.time_num >= $1) \
         ORDER BY m.time_num NULLS LAST, q.mail_id",
        &[(&since_secs.map(|s| s as i64), Type::INT8)],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let id = String::from_utf8_lossy(r.get::<_, &[u8]>(0)).into_owned();
            let text: &[u8] = r.get(1);
            let secs = r.get::<_, Option<i32>>(2).map(|t| t.max(0) as u64);
            let read = match Record::parse(text) {
                Ok((rec, start)) => Ok((rec, text[start..].to_vec())),
                Err(Unreadable::Truncated) => {
                    Err("the record is longer than the first chunk".into())
                }
                Err(Unreadable::Bad(why)) => Err(why),
            };
            Listed { id, secs, read }
        })
        .collect())
}

/// amavisd's "released" mark (msgrcpt.rs = 'R') on the message's recipients, or on those
/// named in `to`; returns how many rows were marked (none without a message log).
pub fn mark_released(db: &Db, id: &str) -> Result<u64, DbError> {
    db.execute(
        "UPDATE msgrcpt SET rs = 'R' WHERE partition_tag = 0 AND mail_id = $1 RETURNING 1",
        &[(&id.as_bytes(), Type::BYTEA)],
    )
}
