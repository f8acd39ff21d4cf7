//! The table harness t/badinput.rs and t/faults.rs share: run every row, name each as it
//! finishes, check what every MTA-facing run owes the MTA (its exit code, the one status line,
//! the log, no panic, no control characters from the input in the log), read the fields we
//! added to a delivered copy, and report all problems of all rows at once.

use super::{Output, added_block, glob, unfold_fields};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Runs every row of `rows` (at least `min_rows` of them, so a table cannot quietly lose its
/// rows) and fails with every failing row. `run` returns None for a row it does not run here
/// (it says where it runs instead), else the row's result.
pub fn run_table<C>(
    what: &str,
    rows: &[C],
    min_rows: usize,
    name: impl Fn(&C) -> &str,
    mut run: impl FnMut(&C) -> Option<Result<(), String>>,
) {
    assert!(rows.len() >= min_rows, "the {what} lost rows");
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut ran = 0;
    for c in rows {
        let t = Instant::now();
        let Some(result) = run(c) else {
            continue;
        };
        ran += 1;
        match result {
            Ok(()) => eprintln!("ok   {:>5} ms  {}", t.elapsed().as_millis(), name(c)),
            Err(e) => {
                eprintln!("FAIL {:>5} ms  {}", t.elapsed().as_millis(), name(c));
                failures.push(format!("{}: {e}", name(c)));
            }
        }
    }
    eprintln!(
        "{ran} rows run, {} elsewhere, {:?}",
        rows.len() - ran,
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n  {}",
        failures.len(),
        rows.len(),
        failures.join("\n  ")
    );
}

/// What a row expects of any run: `exit`; `status` the one stdout line ('*' matches anything),
/// "" for an empty stdout, None when stdout is not ours to read; `log` a substring of stderr,
/// "" for none; `limit` how long the run may take.
pub struct Expect<'a> {
    pub exit: i32,
    pub status: Option<&'a str>,
    pub log: &'a str,
    pub limit: Duration,
}

/// The checks every row of every table makes of a run; problems go to `bad`.
pub fn check_run(o: &Output, took: Duration, want: &Expect, bad: &mut Vec<String>) {
    if o.code != want.exit {
        bad.push(format!("exit {} (want {})", o.code, want.exit));
    }
    if ![0, 65, 69, 75].contains(&o.code) {
        bad.push(format!(
            "exit {} is not one an MTA-facing run may use",
            o.code
        ));
    }
    if o.stderr.contains("panicked") || o.stderr.contains("internal error") {
        bad.push("a panic".into());
    }
    if let Some(status) = want.status {
        let lines: Vec<&str> = o.stdout.lines().collect();
        match (status, lines.as_slice()) {
            ("", []) => {}
            ("", _) => bad.push(format!("stdout should be empty: {:?}", o.stdout)),
            (want, [one]) if glob(want, one) => {}
            (want, _) => bad.push(format!(
                "status line {:?} (want one line like {want:?})",
                o.stdout
            )),
        }
    }
    if !want.log.is_empty() && !o.stderr.contains(want.log) {
        bad.push(format!("log lacks {:?}", want.log));
    }
    if took > want.limit {
        bad.push(format!("took {took:?}"));
    }
}

/// Log lines are read on terminals and parsed by tools: nothing from the input may put a control
/// character (an escape sequence, a CR that rewrites the line) into them.
pub fn check_log_is_clean(o: &Output, bad: &mut Vec<String>) {
    if let Some(ch) = o.stderr.chars().find(|&ch| ch.is_control() && ch != '\n') {
        bad.push(format!("a raw control character {ch:?} in the log"));
    }
}

/// Ok when nothing is `bad`; else every problem, with the run's stdout and (the start of) its
/// stderr.
pub fn verdict(bad: Vec<String>, o: &Output) -> Result<(), String> {
    if bad.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}\n      stdout: {:?}\n      stderr: {}",
        bad.join("; "),
        o.stdout,
        o.stderr
            .trim_end()
            .chars()
            .take(4000)
            .collect::<String>()
            .replace('\n', "\n              ")
    ))
}

/// The header fields we put in front of `rest` in a delivered copy `msg` (unfolded); `rest`
/// must follow them byte for byte.
pub fn added_fields(msg: &[u8], rest: &[u8]) -> Result<Vec<String>, String> {
    unfold_fields(&String::from_utf8_lossy(added_block(msg, rest)?))
}

/// Every file below `dir` (none when it does not exist), sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, &mut v);
    v.sort();
    v
}
