//! `--timings`: where a run's time went, stage by stage, printed as one line on stderr.
//!
//! Contract: recording is a no-op unless [`enable`] was called, so a normal run pays one atomic
//! load per stage. Stages are summed by name (three reinjections are one "reinject" figure) and
//! printed in the order they first ran. Scanners run in parallel, so their figures overlap and
//! do not add up to the total.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static ON: AtomicBool = AtomicBool::new(false);
static STAGES: Mutex<Vec<(String, Duration)>> = Mutex::new(Vec::new());

/// Starts recording.
pub fn enable() {
    ON.store(true, Ordering::Relaxed);
}

/// Adds `d` to `stage`.
pub fn add(stage: &str, d: Duration) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    let mut stages = STAGES.lock().unwrap_or_else(|e| e.into_inner());
    match stages.iter_mut().find(|(s, _)| s == stage) {
        Some((_, total)) => *total += d,
        None => stages.push((stage.to_string(), d)),
    }
}

/// Runs `f`, adding its wall time to `stage`.
pub fn time<T>(stage: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    add(stage, t.elapsed());
    out
}

/// `timings: read 0.1 ms, parse 0.0 ms, spamd 123.4 ms, …, total 130.2 ms`.
pub fn line(total: Duration) -> String {
    let stages = STAGES.lock().unwrap_or_else(|e| e.into_inner());
    let mut parts: Vec<String> = stages
        .iter()
        .map(|(s, d)| format!("{s} {}", ms(*d)))
        .collect();
    parts.push(format!("total {}", ms(total)));
    format!("timings: {}", parts.join(", "))
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_summed_by_name_in_first_run_order() {
        add("ignored", Duration::from_millis(5));
        enable();
        add("read", Duration::from_micros(100));
        add("reinject", Duration::from_millis(2));
        add("read", Duration::from_micros(50));
        assert_eq!(time("policy", || 7), 7);
        let l = line(Duration::from_millis(3));
        assert!(
            l.starts_with("timings: read 0.1 ms, reinject 2.0 ms, policy "),
            "{l}"
        );
        assert!(l.ends_with(", total 3.0 ms"), "{l}");
        assert!(!l.contains("ignored"), "{l}");
    }
}
