//! Quarantine: a copy of mail that an admin can find, read and release.
//!
//! [`record`] is the one record format (pipescan's block in front of the original bytes) that
//! the writer, `quarantine list` and `release` share; [`store`] writes copies to the directory
//! and to a mailbox (through the courier) and reads them back; [`id`] makes the mail ids (a
//! leaf: the log names every run's id). [`sql`] keeps the same copies in amavisd's
//! `quarantine` table instead of the directory (`[quarantine] method = "sql"`), for every host
//! that shares the database.

pub mod id;
pub mod record;
pub mod sql;
pub mod store;

/// Where a run's copy was kept: its id (the X-Quarantine-ID, the run's mail_id) and amavisd's
/// quarantine type and location, as the SQL message log records them (msgs.quar_type, quar_loc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub id: String,
    /// `F` a file in [quarantine] directory, `Q` the SQL quarantine table, `M` a mailbox (by
    /// mail) only.
    pub kind: char,
    /// The file's path below the quarantine directory; the address for a mailbox.
    pub location: String,
}
