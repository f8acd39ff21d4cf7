//! `check-config --ping` for `[sql]`: the connection opens and every table and column the
//! configuration uses is there (a missing lookup table would defer every message under
//! on_failure = "tempfail", a missing quarantine table every quarantined one).

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
    let tables = schema::used_tables(cfg);
    match schema::check(&db, &tables) {
        Ok(()) => {
            let names: Vec<&str> = tables.iter().map(|(t, _)| *t).collect();
            crate::process::sayln(format_args!(
                "# ping sql {}: answers, tables present: {} ({} ms)",
                db.server(),
                names.join(", "),
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
