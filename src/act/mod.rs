//! Side effects of a plan: quarantine, reinjection, DSNs, notifications.

pub mod dsn;
pub mod notify;
pub mod quarantine;
pub mod reinject;

/// A Message-ID for mail we write (DSNs, notices, released copies) under our configured host
/// name: mail-builder's default would use the machine's own name, which may not be a mail
/// domain at all. Random part from the quarantine id generator; time and pid if that fails.
pub fn message_id(hostname: &str) -> String {
    let unique = quarantine::new_mail_id().unwrap_or_else(|_| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{t:x}.{}", std::process::id())
    });
    format!("pipescan.{unique}@{hostname}")
}
