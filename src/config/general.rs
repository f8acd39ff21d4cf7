//! The `[general]` and `[headers]` sections: who we are (host name, user, logging) and the
//! fields we add. A leaf: it imports only `config::units`, so `log` can ask for the host name
//! without importing the whole configuration.

use crate::config::units::{Dur, Size};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct General {
    /// Our host name in added header fields; empty = the system's host name.
    pub hostname: String,
    /// Where messages too large to keep in memory are spooled.
    pub tempdir: PathBuf,
    /// Messages above this are not scanned: they get the `oversized` destiny.
    pub max_message_size: Size,
    /// Our own time limit for a whole run; on expiry we exit 75 (keep it below Postfix's
    /// command_time_limit, whose kill bounces).
    pub deadline: Dur,
    /// Domains whose recipients are "local" (get spam headers). Empty = every recipient is local.
    pub local_domains: Vec<String>,
    /// More `Received:` fields than this is a mail loop: exit 65, `5.4.6`.
    pub max_received: usize,
    /// Send the log line to syslog (facility mail). Falls back to stderr when there is no syslog.
    pub syslog: bool,
    /// The syslog socket.
    pub syslog_socket: PathBuf,
    /// The program name in log lines.
    pub syslog_ident: String,
    /// Also append the log lines to this file (an absolute path; empty: none), for hosts
    /// without syslog. Never a reason to defer mail: if it cannot be written, stderr it is.
    pub log_file: PathBuf,
    /// Started as root (a Sendmail prog mailer, a careless setup), switch to this user (and its
    /// groups) before reading the message. Empty: stay as started (a warning when that is root).
    pub user: String,
}

impl Default for General {
    fn default() -> Self {
        General {
            hostname: String::new(),
            tempdir: PathBuf::from("/tmp"),
            max_message_size: Size(50 * 1024 * 1024),
            deadline: Dur(Duration::from_secs(600)),
            local_domains: Vec::new(),
            max_received: 100,
            syslog: true,
            syslog_socket: PathBuf::from("/dev/log"),
            syslog_ident: "pipescan".into(),
            log_file: PathBuf::new(),
            user: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Headers {
    /// amavisd's $X_HEADER_TAG: the "scanned" field name; empty disables the field.
    pub x_header_tag: String,
    /// amavisd's $X_HEADER_LINE: its value; `%h` is replaced by the host name.
    pub x_header_line: String,
    /// Subject tags by category; empty disables. The spam tag is for local recipients at or
    /// above tag2_level (amavisd's sa_spam_subject_tag).
    pub spam_subject_tag: String,
    pub virus_subject_tag: String,
    pub unchecked_subject_tag: String,
}

impl Default for Headers {
    fn default() -> Self {
        Headers {
            x_header_tag: "X-Virus-Scanned".into(),
            x_header_line: "pipescan at %h".into(),
            spam_subject_tag: "***SPAM*** ".into(),
            virus_subject_tag: "***INFECTED*** ".into(),
            unchecked_subject_tag: "***UNCHECKED*** ".into(),
        }
    }
}

impl General {
    /// The host name used in added header fields: `hostname` when set, else the system's.
    pub fn hostname(&self) -> String {
        if !self.hostname.is_empty() {
            return self.hostname.clone();
        }
        system_hostname()
    }
}

/// The system's host name (the kernel's, else /etc/hostname), or "localhost".
pub fn system_hostname() -> String {
    for p in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        if let Ok(s) = std::fs::read_to_string(p) {
            let s = s.trim();
            if !s.is_empty() && is_header_safe(s) {
                return s.to_string();
            }
        }
    }
    "localhost".into()
}

/// Printable ASCII without spaces (a host name in a header field).
pub fn is_header_safe(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic())
}

/// A header field name: printable ASCII, no colon.
pub fn is_field_name(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}
