//! Side effects of a plan: reinjection (and, later, quarantine and notifications).

pub mod dsn;
pub mod reinject;
