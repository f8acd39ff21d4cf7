//! The gate between the checks that can block a message for everyone (virus, banned files) and
//! the spam scan: spamd connects only once they are done, or after GATE_HOLD.

use std::time::Duration;

/// How long a spam scan waits for the virus and banned checks before it connects to spamd;
/// after that it goes anyway (a slow clamd must not delay the spam verdict without end).
pub const GATE_HOLD: Duration = Duration::from_secs(2);

/// Opened once the checks that can block a message for everyone are done: `true` lets the spam
/// scan connect and send its request, `false` abandons it unsent.
#[derive(Debug, Default)]
pub struct Gate {
    state: std::sync::Mutex<Option<bool>>,
    changed: std::sync::Condvar,
}

impl Gate {
    pub fn open(&self, go: bool) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.is_none() {
            *s = Some(go);
            self.changed.notify_all();
        }
    }

    /// True once opened with `false`.
    pub fn closed(&self) -> bool {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) == Some(false)
    }

    /// Waits up to `limit` for the decision; no decision by then means go.
    pub fn wait(&self, limit: Duration) -> bool {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (s, _) = self
            .changed
            .wait_timeout_while(s, limit, |s| s.is_none())
            .unwrap_or_else(|e| e.into_inner());
        s.unwrap_or(true)
    }
}
