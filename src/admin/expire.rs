//! `pipescan quarantine expire [--older-than AGE] [-n] [-v]`: the daily job that removes old
//! quarantined copies (what pipescan(1) used to leave to a `find -mtime +30 -delete` line).
//!
//! Contract: every regular file under `[quarantine] directory` (walked as `quarantine list`
//! walks it: at most three levels, unreadable subdirectories skipped with a warning) whose
//! modification time is more than AGE ago (default `[quarantine] max_age`) is removed; a
//! subdirectory this run emptied (an ISO-week `%P` shard) is removed too, never the directory
//! itself nor one that was empty already. `-v` prints one line per file, and a summary line always
//! follows. `-n` removes nothing and says what it would remove. Exit codes: 0 done (also when
//! `directory` is "": nothing to expire); 66 the directory cannot be read; 73 a file or
//! subdirectory could not be removed (each is named on stderr; the others are still removed).

use crate::act::quarantine::store;
use crate::admin::list::skipping;
use crate::config::settings::Config;
use crate::config::units::Dur;
use crate::message::text::printable;
use crate::outcome::Exit;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What a run found and did.
#[derive(Default)]
struct Tally {
    removed: u64,
    bytes: u64,
    kept: u64,
    failed: u64,
    /// Subdirectories a file was removed from: candidates for removal once empty.
    emptied: Vec<PathBuf>,
}

/// `pipescan quarantine expire`.
pub fn expire(cfg: &Config, older_than: Option<Duration>, dry_run: bool, verbose: bool) -> Exit {
    let dir = &cfg.quarantine.directory;
    let age = older_than.unwrap_or(cfg.quarantine.max_age.0);
    if cfg.quarantine.method == crate::config::delivery::QuarantineMethod::Sql {
        return expire_sql(cfg, age, dry_run);
    }
    if dir.as_os_str().is_empty() {
        crate::process::sayln(format_args!(
            "pipescan quarantine expire: no quarantine directory configured: nothing to do"
        ));
        return Exit::Ok;
    }
    let now = SystemTime::now();
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut t = Tally::default();
    let walked = store::walk(
        dir,
        &mut |p| {
            let Ok(meta) = std::fs::symlink_metadata(p) else {
                return;
            };
            let mtime = meta.modified().unwrap_or(now);
            if now.duration_since(mtime).unwrap_or_default() <= age {
                t.kept += 1;
                return;
            }
            if !dry_run && let Err(e) = std::fs::remove_file(p) {
                eprintln!(
                    "pipescan quarantine expire: cannot remove {}: {e}",
                    shown(p)
                );
                t.failed += 1;
                return;
            }
            if verbose {
                crate::process::sayln(format_args!("{verb} {}", shown(p)));
            }
            t.removed += 1;
            t.bytes += meta.len();
            if let Some(parent) = p.parent()
                && parent != dir
                && !t.emptied.iter().any(|d| d == parent)
            {
                t.emptied.push(parent.to_path_buf());
            }
        },
        &mut skipping("quarantine expire"),
    );
    if let Err(e) = walked {
        eprintln!("pipescan quarantine expire: {}: {e}", shown(dir));
        return Exit::NoInput;
    }
    let dirs = if dry_run {
        0
    } else {
        remove_emptied(dir, &mut t)
    };
    crate::process::sayln(format_args!(
        "pipescan quarantine expire: {verb} {} files ({} bytes) and {dirs} empty subdirectories \
         older than {} from {}; {} kept{}",
        t.removed,
        t.bytes,
        Dur(age),
        shown(dir),
        t.kept,
        if t.failed > 0 {
            format!("; {} could not be removed", t.failed)
        } else {
            String::new()
        }
    ));
    crate::log::info(&format!(
        "quarantine expire: {verb} {} files older than {}, {} kept, {} failed",
        t.removed,
        Dur(age),
        t.kept,
        t.failed
    ));
    if t.failed > 0 {
        Exit::CantCreat
    } else {
        Exit::Ok
    }
}

/// Removes the subdirectories files were removed from, deepest first, and then their parents
/// below `root`, each only if it is now empty. Returns how many were removed.
fn remove_emptied(root: &Path, t: &mut Tally) -> u64 {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for d in &t.emptied {
        let mut cur = d.as_path();
        while cur != root && cur.starts_with(root) {
            if !dirs.iter().any(|x| x == cur) {
                dirs.push(cur.to_path_buf());
            }
            let Some(up) = cur.parent() else { break };
            cur = up;
        }
    }
    // Deepest first, so a parent is tried after its children.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    let mut n = 0;
    for d in dirs {
        match std::fs::remove_dir(&d) {
            Ok(()) => n += 1,
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                eprintln!(
                    "pipescan quarantine expire: cannot remove {}: {e}",
                    shown(&d)
                );
                t.failed += 1;
            }
        }
    }
    n
}

/// A path for a terminal: control characters escaped.
fn shown(p: &Path) -> String {
    printable(&p.display().to_string(), 500)
}
/// The SQL quarantine (`[quarantine] method = "sql"`): the copies of messages the log dates
/// before AGE (msgs.time_num) are deleted, in one statement; their msgs and msgrcpt rows stay
/// (reports read them). Copies without a msgs row (the log off) cannot be dated and are kept.
/// Exit codes: 0 done; 75 the database did not answer.
fn expire_sql(cfg: &Config, age: Duration, dry_run: bool) -> Exit {
    use tokio_postgres::types::Type;
    let db = crate::sql::conn::Db::new(&cfg.sql);
    let cutoff = SystemTime::now()
        .checked_sub(age)
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    let sql = if dry_run {
        "SELECT count(DISTINCT q.mail_id), coalesce(sum(length(q.mail_text)), 0)::bigint \
         FROM quarantine q JOIN msgs m USING (partition_tag, mail_id) WHERE m.time_num < $1"
    } else {
        "WITH gone AS (DELETE FROM quarantine q USING msgs m \
           WHERE m.partition_tag = q.partition_tag AND m.mail_id = q.mail_id \
             AND m.time_num < $1 RETURNING q.mail_id, length(q.mail_text) AS n) \
         SELECT count(DISTINCT mail_id), coalesce(sum(n), 0)::bigint FROM gone"
    };
    match db.query(sql, &[(&cutoff, Type::INT8)]) {
        Ok(rows) => {
            let (copies, bytes): (i64, i64) = rows.first().map_or((0, 0), |r| (r.get(0), r.get(1)));
            crate::process::sayln(format_args!(
                "pipescan quarantine expire: {} {copies} copies ({bytes} bytes) from the sql quarantine ({}), older than {}",
                if dry_run { "would remove" } else { "removed" },
                db.server(),
                Dur(age)
            ));
            if !dry_run {
                crate::log::info(&format!(
                    "quarantine expire: removed {copies} copies ({bytes} bytes) from the sql quarantine"
                ));
            }
            Exit::Ok
        }
        Err(e) => {
            eprintln!("pipescan quarantine expire: sql: {e}");
            Exit::TempFail
        }
    }
}
