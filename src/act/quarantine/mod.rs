//! Quarantine: a copy of mail that an admin can find, read and release.
//!
//! [`record`] is the one record format (pipescan's block in front of the original bytes) that
//! the writer, `quarantine list` and `release` share; [`store`] writes copies to the directory
//! and to a mailbox (through the courier) and reads them back; [`id`] makes the mail ids (a
//! leaf: the log names every run's id).

pub mod id;
pub mod record;
pub mod store;
