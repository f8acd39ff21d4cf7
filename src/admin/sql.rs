//! `check-config --ping` for `[sql]`: the connection opens and every table and column we read
//! is there (a missing table would defer every message under on_failure = "tempfail").

use crate::config::settings::Config;
use crate::sql::conn::Db;
use crate::sql::schema;
use std::time::Instant;

/// Prints one `# ping sql …` line; false when the database or a table is not usable. Nothing
/// to check (no [sql] in use): true, silently.
pub fn ping(cfg: &Config) -> bool {
    let Some(db) = Db::for_run(cfg) else {
        return true;
    };
    let started = Instant::now();
    match schema::check(&db, schema::LOOKUP_TABLES) {
        Ok(()) => {
            crate::process::sayln(format_args!(
                "# ping sql {}: answers, lookup tables present ({} ms)",
                db.server(),
                started.elapsed().as_millis()
            ));
            true
        }
        Err(e) => {
            crate::process::sayln(format_args!("# ping sql: NOT USABLE: {e}"));
            false
        }
    }
}
