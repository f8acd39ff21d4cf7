//! The scanner sections: `[spamd]`, `[clamd]`, `[rspamd]`, `[virus]`, `[bad_header]` and
//! `[loop_marker]`. Leaf types: they import only `config::units`, `verdict` and the header test
//! names of `scan::headers`.

use crate::config::units::{Dur, Size};
use crate::verdict::OnFailure;
use serde::{Deserialize, Serialize, Serializer};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Virus {
    /// When the virus scan fails: "tempfail" (default: never pass unchecked mail silently),
    /// "unchecked" (the UNCHECKED destiny and tag apply) or "pass" (with an alert field).
    pub on_failure: OnFailure,
}

impl Default for Virus {
    fn default() -> Self {
        Virus {
            on_failure: OnFailure::Tempfail,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Spamd {
    /// Servers tried in order: "host:port" or "/path/to.sock". Empty disables spam scanning.
    pub servers: Vec<String>,
    /// Time limit for one whole exchange with one server.
    pub timeout: Dur,
    pub connect_timeout: Dur,
    /// Start at a random server instead of the first (failover still walks the whole list).
    pub load_balance: bool,
    /// Larger messages are not spam-scanned (spamc's default is 500K too).
    pub max_size: Size,
    /// The spamd user (per-user preferences) when a message has several recipients; a message
    /// with exactly one recipient is checked as that recipient, like `spamc -u`. "" = none.
    pub default_user: String,
}

impl Default for Spamd {
    fn default() -> Self {
        Spamd {
            servers: Vec::new(),
            timeout: Dur(Duration::from_secs(30)),
            connect_timeout: Dur(Duration::from_secs(5)),
            load_balance: false,
            max_size: Size(500 * 1024),
            default_user: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Clamd {
    /// Servers tried in order: "/run/clamav/clamd.ctl" or "host:port". Empty disables it.
    pub servers: Vec<String>,
    pub timeout: Dur,
    pub connect_timeout: Dur,
    pub load_balance: bool,
}

impl Default for Clamd {
    fn default() -> Self {
        Clamd {
            servers: Vec::new(),
            timeout: Dur(Duration::from_secs(30)),
            connect_timeout: Dur(Duration::from_secs(5)),
            load_balance: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rspamd {
    /// rspamd normal workers (POST /checkv2), tried in order: "host:port" or "/path.sock".
    /// Empty disables it. If spamd runs too, the higher score counts.
    pub servers: Vec<String>,
    pub timeout: Dur,
    pub connect_timeout: Dur,
    pub load_balance: bool,
    /// Sent as the Password header (for a controller or a proxy that wants one); "" = none.
    pub password: String,
    /// Larger messages are not sent (rspamd's own max_message is 50M).
    pub max_size: Size,
}

impl Default for Rspamd {
    fn default() -> Self {
        Rspamd {
            servers: Vec::new(),
            timeout: Dur(Duration::from_secs(30)),
            connect_timeout: Dur(Duration::from_secs(5)),
            load_balance: false,
            password: String::new(),
            max_size: Size(20 << 20),
        }
    }
}

/// The `[bad_header]` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BadHeader {
    /// Check the header section at all.
    pub enabled: bool,
    /// Which kinds of problem count (amavisd's %allowed_header_tests): "8bit", "utf8" (off
    /// by default, as in amavisd), "control", "empty", "long", "syntax", "missing", "multiple".
    pub tests: Vec<crate::scan::headers::Test>,
}

impl Default for BadHeader {
    fn default() -> Self {
        BadHeader {
            enabled: true,
            tests: crate::scan::headers::Test::defaults(),
        }
    }
}

/// The `[loop_marker]` table: with a key, fully scanned mail carries an `X-Pipescan-Marker`
/// field (the scan results under an HMAC-SHA256, see `marker`), and a message that comes back
/// with a valid one is not sent to the network scanners again. Without a key, no marker is added and every
/// incoming one is removed as forged.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoopMarker {
    /// The secret itself (at least 16 bytes). Prefer key_file: a config file is often readable.
    #[serde(serialize_with = "hidden")]
    pub key: String,
    /// A file whose first line is the secret (e.g. mode 0640 root:pipescan).
    pub key_file: PathBuf,
    /// Markers older than this are not trusted.
    pub max_age: Dur,
}

impl Default for LoopMarker {
    fn default() -> Self {
        LoopMarker {
            key: String::new(),
            key_file: PathBuf::new(),
            max_age: Dur(Duration::from_secs(3600)),
        }
    }
}

/// Secrets are shown as set or not, never printed (check-config output ends up in tickets).
fn hidden<S: Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if v.is_empty() { "" } else { "(set, not shown)" })
}
