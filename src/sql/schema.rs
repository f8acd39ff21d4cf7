//! The schema we support (`pipescan sql schema`) and the check that a database has it
//! (`check-config --ping`): every table and column pipescan reads or writes.

use crate::sql::conn::{Db, DbError};

/// amavisd-new 2.13's PostgreSQL schema (README.sql-pg), with no index of our own: the ones
/// it suggests cover our queries (users.email and mailaddr.email are UNIQUE, so indexed).
pub const SCHEMA: &str = include_str!("schema.sql");

/// The lookup tables and the columns of each that pipescan reads.
pub const LOOKUP_TABLES: &[(&str, &str)] = &[
    ("users", "id, priority, policy_id, email"),
    (
        "policy",
        "id, virus_lover, spam_lover, banned_files_lover, bad_header_lover, \
         bypass_virus_checks, bypass_spam_checks, bypass_banned_checks, bypass_header_checks, \
         spam_tag_level, spam_tag2_level, spam_kill_level, spam_dsn_cutoff_level, \
         spam_quarantine_cutoff_level, spam_subject_tag2",
    ),
    ("mailaddr", "id, priority, email"),
    ("wblist", "rid, sid, wb"),
];

/// The message log's tables and the columns pipescan writes and reads (pen pals).
pub const LOG_TABLES: &[(&str, &str)] = &[
    ("maddr", "id, partition_tag, email, domain"),
    (
        "msgs",
        "partition_tag, mail_id, secret_id, am_id, time_num, time_iso, sid, policy, \
         client_addr, size, originating, content, quar_type, quar_loc, dsn_sent, spam_level, \
         message_id, from_addr, subject, host",
    ),
    (
        "msgrcpt",
        "partition_tag, mail_id, rseqnum, rid, is_local, content, ds, rs, bl, wl, \
         bspam_level, smtp_resp",
    ),
];

/// The SQL quarantine's table (its list and release also read msgs and msgrcpt).
pub const QUARANTINE_TABLES: &[(&str, &str)] =
    &[("quarantine", "partition_tag, mail_id, chunk_ind, mail_text")];

/// The tables a configuration uses: the lookups', the log's (pen pals read it), the quarantine's.
pub fn used_tables(cfg: &crate::config::settings::Config) -> Vec<(&'static str, &'static str)> {
    let q = &cfg.sql;
    let sql_quarantine = cfg.quarantine.method == crate::config::delivery::QuarantineMethod::Sql;
    let mut t = Vec::new();
    if q.lookups {
        t.extend_from_slice(LOOKUP_TABLES);
    }
    if q.log || q.penpals() || sql_quarantine {
        t.extend_from_slice(LOG_TABLES);
    }
    if sql_quarantine {
        t.extend_from_slice(QUARANTINE_TABLES);
    }
    t
}

/// Does the database have every table and column we read? One query per table, each
/// selecting no row; the first failure names the table.
pub fn check(db: &Db, tables: &[(&str, &str)]) -> Result<(), DbError> {
    db.query("SELECT 1", &[])?;
    for (table, columns) in tables {
        // Table and column names are our constants, never input.
        let sql = format!("SELECT {columns} FROM {table} WHERE false");
        db.query(&sql, &[])
            .map_err(|e| DbError(format!("table {table}: {e}")))?;
    }
    Ok(())
}
