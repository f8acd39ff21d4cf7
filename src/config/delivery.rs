//! The delivery sections: `[reinject]`, `[quarantine]` (with the check of its templates) and
//! `[notify]`. Leaf types: `act` imports them, they import nothing of `act`.

use crate::config::units::Dur;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// What to do when the reinjection command fails for good (exit 65, 66, 67, 68, 69 or 77).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HardFailure {
    /// Exit 75: the MTA keeps the message and retries (default: nothing is lost).
    Tempfail,
    /// Exit 69 with sendmail's reason: the MTA bounces the message.
    Bounce,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Reinject {
    /// The submission command; pipescan appends `-f SENDER -- RCPT...`. Run without a shell.
    pub command: Vec<String>,
    pub on_hard_failure: HardFailure,
}

impl Default for Reinject {
    fn default() -> Self {
        Reinject {
            command: vec!["/usr/sbin/sendmail".into(), "-i".into()],
            on_hard_failure: HardFailure::Tempfail,
        }
    }
}

/// Where blocked mail is kept (see pipescan.toml(5) for the templates).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quarantine {
    /// The quarantine directory; "" = no quarantine files.
    pub directory: PathBuf,
    /// File name template; must contain %m. A name ending in .gz is gzip-compressed.
    pub filename: String,
    /// Subdirectory template for sharding (e.g. "%P" or "%s"); "" = none.
    pub subdirectory: String,
    /// Also (or instead) send the quarantined copy to this mailbox, from the null sender.
    pub address: String,
    /// Which categories are quarantined.
    pub virus: bool,
    pub banned: bool,
    pub unchecked: bool,
    pub spam: bool,
    pub bad_header: bool,
    /// `pipescan quarantine expire` removes files older than this (the daily job).
    pub max_age: Dur,
}

impl Default for Quarantine {
    fn default() -> Self {
        Quarantine {
            directory: PathBuf::from("/var/lib/pipescan/quarantine"),
            filename: "%c-%m".into(),
            subdirectory: String::new(),
            address: String::new(),
            virus: true,
            banned: true,
            unchecked: false,
            spam: false,
            bad_header: false,
            max_age: Dur(Duration::from_secs(30 * 86_400)),
        }
    }
}

/// Checks templates at config time: the file name must contain %m (release finds files by
/// id) and must not contain a slash; placeholders must be known (those `act::quarantine::expand`
/// replaces).
pub fn validate_quarantine(q: &Quarantine) -> Result<(), (String, String)> {
    let known = |t: &str| {
        let mut it = t.chars();
        while let Some(c) = it.next() {
            if c == '%'
                && !matches!(
                    it.next(),
                    Some('m' | 'c' | 'i' | 'P' | 'b' | 'n' | 's' | '%')
                )
            {
                return false;
            }
        }
        true
    };
    if !q.filename.contains("%m") || q.filename.contains('/') {
        return Err((
            "quarantine.filename".into(),
            "must contain %m (the mail id) and no slash".into(),
        ));
    }
    if !known(&q.filename) {
        return Err(("quarantine.filename".into(), "unknown % placeholder".into()));
    }
    if !known(&q.subdirectory) || q.subdirectory.contains("..") || q.subdirectory.starts_with('/') {
        return Err((
            "quarantine.subdirectory".into(),
            "must be relative to the directory: no leading '/', no '..', known placeholders only"
                .into(),
        ));
    }
    if q.max_age.0 < Duration::from_secs(60) {
        return Err((
            "quarantine.max_age".into(),
            "must be at least 1m: the daily expiry would remove what was just quarantined".into(),
        ));
    }
    Ok(())
}

/// Notifications about blocked mail (all off by default but the admin ones you set).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Notify {
    /// Admin addresses per category; "" = no notice.
    pub virus_admin: String,
    pub banned_admin: String,
    pub spam_admin: String,
    pub bad_header_admin: String,
    /// Tell recipients who did not get a virus / banned message (amavisd's warn*recip).
    pub warn_virus_recipient: bool,
    pub warn_banned_recipient: bool,
    /// Tell the sender that the message was blocked (never for viruses, bulk mail or the null
    /// sender; off by default: backscatter).
    pub warn_sender: bool,
    /// Template files replacing the built-in texts; "" = built-in.
    pub admin_template: String,
    pub recipient_template: String,
    pub sender_template: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_validated() {
        let mut q = Quarantine::default();
        assert!(validate_quarantine(&q).is_ok());
        q.filename = "virus".into();
        assert!(validate_quarantine(&q).is_err());
        q.filename = "a/%m".into();
        assert!(validate_quarantine(&q).is_err());
        q.filename = "%m-%z".into();
        assert!(validate_quarantine(&q).is_err());
        q.filename = "%m".into();
        q.subdirectory = "/etc".into();
        assert!(validate_quarantine(&q).is_err());
        let mut q = Quarantine::default();
        assert_eq!(q.max_age.to_string(), "30d");
        q.max_age = Dur(Duration::ZERO);
        assert!(validate_quarantine(&q).is_err());
    }
}
