//! Side effects of a plan: quarantine, reinjection, DSNs.

pub mod dsn;
pub mod quarantine;
pub mod reinject;
