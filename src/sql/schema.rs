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
