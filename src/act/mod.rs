//! Side effects of a plan: delivery ([`courier`]: how a copy leaves, and where to add a
//! delivery method), [`quarantine`] (one record format; the directory store), [`dsn`] and
//! [`notify`] (mail we write ourselves, built with [`compose`]). "Delivered" is a value the
//! caller counts from what the courier returns, never a global that decisions read.

pub mod compose;
pub mod courier;
pub mod dsn;
pub mod execute;
pub mod notify;
pub mod quarantine;
pub mod sign;
pub mod sqllog;
