//! Side effects of a plan: quarantine, reinjection, DSNs, notifications.

pub mod dsn;
pub mod notify;
pub mod quarantine;
pub mod reinject;
