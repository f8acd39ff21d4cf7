//! The TOML configuration: schema, embedded defaults, validation.
//!
//! Contract: every key has a default compiled in, so a missing default file means "sane defaults".
//! Any problem in a file that exists (syntax, unknown key, bad value, bad policy bank) is a
//! [`ConfigError`] naming the file, the line and the key; a filtering run turns it into exit 75
//! (a typo in the config must park mail in the queue, never bounce it).
//!
//! Policy banks (`[policy.NAME]`) are partial configs: the chosen bank is merged key by key over
//! the main settings before they are typed, so a bank can override any setting.

pub use crate::verdict::{Destiny, OnFailure};
pub mod units;
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
pub use units::{Dur, Size};

/// Where the configuration is read from when `-c` is not given.
pub const DEFAULT_PATH: &str = "/etc/pipescan/pipescan.toml";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub general: General,
    pub headers: Headers,
    pub reinject: Reinject,
    pub destiny: Destinies,
    pub spam: Spam,
    pub virus: Virus,
    pub spamd: Spamd,
    pub clamd: Clamd,
    pub rspamd: Rspamd,
    /// Banned files: attachment names and types (amavisd's banned_filename_re).
    pub banned: crate::scan::banned::BannedConfig,
    /// Bad-header checks (amavisd's allowed_header_tests).
    pub bad_header: BadHeader,
    /// The authenticated "already scanned" marker.
    pub loop_marker: LoopMarker,
    /// Command-line virus scanners, amavisd's backup scanners: used in order when clamd is not
    /// configured or every clamd server failed.
    pub av_command: Vec<crate::scan::command::AvCommand>,
    pub lists: Lists,
    /// Per-recipient overrides, first matching entry wins for each setting it sets.
    pub per_recipient: Vec<PerRecipient>,
    pub dsn: Dsn,
    pub quarantine: Quarantine,
    pub notify: Notify,
    /// Raw policy banks; only their names and validity matter once a bank has been applied.
    #[serde(skip_serializing)]
    pub policy: toml::Table,
    /// The lookup tables as `validate` compiled them (reading their `file:` lists once): the
    /// filter uses these instead of compiling them again. Not part of the file. A loaded config
    /// is never changed afterwards; one that were would keep its first tables.
    #[serde(skip)]
    compiled_lists: std::sync::OnceLock<crate::policy::Lists>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            general: General::default(),
            headers: Headers::default(),
            reinject: Reinject::default(),
            destiny: Destinies::default(),
            spam: Spam::default(),
            virus: Virus::default(),
            spamd: Spamd::default(),
            clamd: Clamd::default(),
            rspamd: Rspamd::default(),
            banned: Default::default(),
            bad_header: BadHeader::default(),
            loop_marker: LoopMarker::default(),
            av_command: Vec::new(),
            lists: Lists::default(),
            per_recipient: Vec::new(),
            dsn: Dsn::default(),
            quarantine: Quarantine::default(),
            notify: Notify::default(),
            policy: toml::Table::new(),
            compiled_lists: std::sync::OnceLock::new(),
        }
    }
}

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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Destinies {
    /// A virus was found (amavisd's final_virus_destiny).
    pub virus: Destiny,
    /// A banned part was found (final_banned_destiny).
    pub banned: Destiny,
    /// The message could not be virus-checked (clamd's size limit, or a failed scan under
    /// virus.on_failure = "unchecked").
    pub unchecked: Destiny,
    /// Spam at or above spam.kill_level (amavisd's final_spam_destiny).
    pub spam: Destiny,
    /// A bad header section (final_bad_header_destiny).
    pub bad_header: Destiny,
    /// Messages above general.max_message_size (not scanned).
    pub oversized: Destiny,
}

impl Default for Destinies {
    fn default() -> Self {
        Destinies {
            virus: Destiny::Discard,
            banned: Destiny::Discard,
            unchecked: Destiny::Pass,
            spam: Destiny::Pass,
            bad_header: Destiny::Pass,
            oversized: Destiny::Pass,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Spam {
    /// Add X-Spam-* fields (for local recipients) at or above this score.
    pub tag_level: f64,
    /// At or above: SPAMMY, "X-Spam-Flag: YES" and the Subject tag.
    pub tag2_level: f64,
    /// At or above: SPAM, and the spam destiny applies.
    pub kill_level: f64,
    /// At or above: no delivery status notification for a bounced/rejected spam.
    pub dsn_cutoff_level: f64,
    /// At or above: spam is not quarantined (none = always quarantine when enabled).
    pub quarantine_cutoff_level: Option<f64>,
    /// When the spam scan fails: "pass" (default, with an alert field) or "tempfail".
    pub on_failure: OnFailure,
}

impl Default for Spam {
    fn default() -> Self {
        Spam {
            tag_level: 2.0,
            tag2_level: 6.2,
            kill_level: 6.9,
            dsn_cutoff_level: 10.0,
            quarantine_cutoff_level: None,
            on_failure: OnFailure::Pass,
        }
    }
}

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
    /// Which kinds of problem count (amavisd's %allowed_header_tests): "8bit", "control",
    /// "empty", "long", "syntax", "missing", "multiple".
    pub tests: Vec<crate::scan::headers::Test>,
}

impl Default for BadHeader {
    fn default() -> Self {
        BadHeader {
            enabled: true,
            tests: crate::scan::headers::Test::ALL.to_vec(),
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
            max_age: Dur(Duration::from_secs(24 * 3600)),
        }
    }
}

/// Secrets are shown as set or not, never printed (check-config output ends up in tickets).
fn hidden<S: Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if v.is_empty() { "" } else { "(set, not shown)" })
}

/// amavisd's per-recipient lookup tables (see pipescan.toml(5) for the entry syntax).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lists {
    pub bypass_virus_checks: Vec<String>,
    pub bypass_spam_checks: Vec<String>,
    pub bypass_banned_checks: Vec<String>,
    pub bypass_header_checks: Vec<String>,
    pub virus_lovers: Vec<String>,
    pub spam_lovers: Vec<String>,
    pub banned_files_lovers: Vec<String>,
    pub bad_header_lovers: Vec<String>,
    /// Envelope senders or authors (From:) whose mail is never spam (score -100).
    pub whitelist_sender: Vec<String>,
    /// Envelope senders or authors (From:) whose mail is always spam (score +100).
    pub blacklist_sender: Vec<String>,
}

/// Settings for the recipients matching `recipients` (a lookup table).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PerRecipient {
    pub recipients: Vec<String>,
    pub tag_level: Option<f64>,
    pub tag2_level: Option<f64>,
    pub kill_level: Option<f64>,
    pub dsn_cutoff_level: Option<f64>,
    /// At or above it, this recipient wants no quarantine copy of spam.
    pub quarantine_cutoff_level: Option<f64>,
    pub spam_subject_tag: Option<String>,
    pub whitelist_sender: Vec<String>,
    pub blacklist_sender: Vec<String>,
}

/// When pipescan writes its own delivery status notification (for recipients refused while
/// others get the message) and when it must not (backscatter).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dsn {
    /// Viruses fake their senders: no DSN for a virus (amavisd's viruses_that_fake_sender).
    pub suppress_for_viruses: bool,
    /// No DSN for bulk and list mail (Precedence: bulk/list/junk, List-Id, Auto-Submitted).
    pub suppress_for_bulk: bool,
}

impl Default for Dsn {
    fn default() -> Self {
        Dsn {
            suppress_for_viruses: true,
            suppress_for_bulk: true,
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
        }
    }
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

/// A configuration problem, located: `FILE:LINE: key KEY: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ": key {k}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one configuration file, in file order as far as it is known (never
/// empty). Derefs to the first one; Display prints one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    first: ConfigError,
    rest: Vec<ConfigError>,
}

impl ConfigErrors {
    /// None when `errors` is empty.
    pub fn new(mut errors: Vec<ConfigError>) -> Option<ConfigErrors> {
        if errors.is_empty() {
            return None;
        }
        let first = errors.remove(0);
        Some(ConfigErrors {
            first,
            rest: errors,
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        std::iter::once(&self.first).chain(self.rest.iter())
    }

    pub fn len(&self) -> usize {
        1 + self.rest.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors {
            first: e,
            rest: Vec::new(),
        }
    }
}

impl std::ops::Deref for ConfigErrors {
    type Target = ConfigError;
    fn deref(&self) -> &ConfigError {
        &self.first
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The configuration as loaded: the effective settings and where they came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// The file read, or None when the default path did not exist (built-in defaults).
    pub source: Option<PathBuf>,
    /// The policy bank applied, if any.
    pub bank: Option<String>,
    /// The file's text, to locate problems found later (permissions).
    text: String,
}

impl Loaded {
    /// A problem with `key` (dotted; None: the file itself), located in the file.
    pub fn error(&self, key: Option<&str>, message: String) -> ConfigError {
        ConfigError {
            file: self.file_name(),
            line: key.and_then(|k| locate(&self.text, k)),
            key: key.map(str::to_string),
            message,
        }
    }

    /// The file name as errors show it.
    pub fn file_name(&self) -> String {
        match &self.source {
            Some(p) => p.display().to_string(),
            None => "(built-in defaults)".to_string(),
        }
    }
}

/// Loads `path` (or the default path, which may be missing) and applies policy bank `bank`.
pub fn load(path: Option<&Path>, bank: Option<&str>) -> Result<Loaded, ConfigErrors> {
    let (text, file, source) = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| ConfigError {
                file: p.display().to_string(),
                line: None,
                key: None,
                message: format!("cannot read: {e}"),
            })?;
            (text, p.display().to_string(), Some(p.to_path_buf()))
        }
        None => match std::fs::read_to_string(DEFAULT_PATH) {
            Ok(t) => (
                t,
                DEFAULT_PATH.to_string(),
                Some(PathBuf::from(DEFAULT_PATH)),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (String::new(), "(built-in defaults)".to_string(), None)
            }
            Err(e) => {
                return Err(ConfigError {
                    file: DEFAULT_PATH.into(),
                    line: None,
                    key: None,
                    message: format!("cannot read: {e}"),
                }
                .into());
            }
        },
    };
    let config = parse(&text, &file, bank)?;
    Ok(Loaded {
        config,
        source,
        bank: bank.map(str::to_string),
        text,
    })
}

/// Parses a whole configuration text; `file` names it in errors. Every problem of the file is
/// reported, not only the first: a value of the wrong type or shape is set aside and the rest
/// is read on, then the settings are checked as a whole.
pub fn parse(text: &str, file: &str, bank: Option<&str>) -> Result<Config, ConfigErrors> {
    // Syntax first: a file that is not TOML has no keys to talk about.
    let raw: toml::Table = toml::from_str(text).map_err(|e| located(text, file, &e))?;
    let (base, mut errors) = typed(&raw, text, file, None);
    let base_keys: Vec<(Option<String>, String)> = errors
        .iter()
        .map(|e| (e.key.clone(), e.message.clone()))
        .collect();
    // Every bank must be valid on its own, so check-config catches a broken bank that only one
    // master.cf entry uses.
    let mut chosen = None;
    let names: Vec<String> = match raw.get("policy") {
        Some(toml::Value::Table(t)) => t.keys().cloned().collect(),
        _ => Vec::new(),
    };
    for name in &names {
        match apply_bank(&raw, name, text, file, &base_keys) {
            Ok(c) => {
                if Some(name.as_str()) == bank {
                    chosen = Some(c);
                }
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    // In file order; what has no line (the file as a whole) first.
    errors.sort_by_key(|e| e.line);
    if let Some(e) = ConfigErrors::new(errors) {
        return Err(e);
    }
    let base = base.expect("no errors means the settings were read");
    match bank {
        None => Ok(base),
        Some(name) => chosen.ok_or_else(|| {
            ConfigError {
                file: file.into(),
                line: None,
                key: Some(format!("policy.{name}")),
                message: format!(
                    "policy bank {name:?} (from --policy) is not defined; defined banks: {}",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            }
            .into()
        }),
    }
}

/// Types `raw` into a Config, collecting every problem: each key serde refuses is reported and
/// removed, and the rest read again; then the typed settings are checked. `prefix` ("policy.X.")
/// is put before keys in errors. The Config is Some when no error was found.
fn typed(
    raw: &toml::Table,
    text: &str,
    file: &str,
    prefix: Option<&str>,
) -> (Option<Config>, Vec<ConfigError>) {
    let full = |k: &str| format!("{}{k}", prefix.unwrap_or(""));
    let error = |key: String, message: String| ConfigError {
        file: file.into(),
        line: locate(text, &key),
        key: Some(key),
        message,
    };
    let mut errors = Vec::new();
    let mut table = raw.clone();
    let mut removed: Vec<String> = Vec::new();
    let config = loop {
        match Config::deserialize(toml::Value::Table(table.clone())) {
            Ok(c) => break Some(c),
            Err(e) => {
                let path = error_path(&e);
                let message = explain(e.message(), &path);
                let value = value_at(raw, &path);
                let message = with_value(message, value.as_ref());
                if path.is_empty() {
                    errors.push(ConfigError {
                        file: file.into(),
                        line: None,
                        key: prefix.map(|p| p.trim_end_matches('.').to_string()),
                        message,
                    });
                    break None;
                }
                errors.push(error(full(&path), message));
                removed.push(path.clone());
                // A key that cannot be set aside (or a runaway loop) ends the reading.
                if !remove_path(&mut table, &path) || errors.len() >= 100 {
                    break None;
                }
            }
        }
    };
    let Some(config) = config else {
        return (None, errors);
    };
    for (key, message) in config.problems() {
        // A key set aside above is at its default now: what it breaks is not news.
        if removed.iter().any(|r| r == &key) {
            continue;
        }
        let message = with_value(message, value_at(raw, &key).as_ref());
        errors.push(error(full(&key), message));
    }
    if errors.is_empty() {
        (Some(config), errors)
    } else {
        (None, errors)
    }
}

/// The dotted key a toml error is about. toml names the tables it went through (its Display
/// ends with "in `a.b`" when it has no input text); an unknown field is named in the message.
fn error_path(e: &toml::de::Error) -> String {
    let mut e = e.clone();
    e.set_input(None);
    let shown = e.to_string();
    let mut path = shown
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("in `").and_then(|l| l.strip_suffix('`')))
        .unwrap_or("")
        .to_string();
    if let Some(rest) = e.message().strip_prefix("unknown field `")
        && let Some((field, _)) = rest.split_once('`')
    {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(field);
    }
    path
}

/// Removes dotted `path` from `t`; an array on the way is removed whole. False when nothing
/// could be removed.
fn remove_path(t: &mut toml::Table, path: &str) -> bool {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    match (rest, t.get_mut(head)) {
        (Some(rest), Some(toml::Value::Table(sub))) => remove_path(sub, rest),
        (_, Some(_)) => t.remove(head).is_some(),
        (_, None) => false,
    }
}

/// The value at dotted `path` in `t`, as TOML, shortened.
fn value_at(t: &toml::Table, path: &str) -> Option<toml::Value> {
    let mut cur: &toml::Table = t;
    let mut parts = path.split('.').peekable();
    while let Some(p) = parts.next() {
        let v = cur.get(p)?;
        if parts.peek().is_none() {
            return Some(v.clone());
        }
        match v {
            toml::Value::Table(sub) => cur = sub,
            _ => return None,
        }
    }
    None
}

/// Appends "(given: VALUE)" unless the message already shows the value.
fn with_value(message: String, value: Option<&toml::Value>) -> String {
    let Some(v) = value else { return message };
    if matches!(v, toml::Value::Table(_)) {
        return message;
    }
    // A string is shown quoted, or as itself when long enough not to match by chance.
    let mentioned = |v: &toml::Value| match v {
        toml::Value::String(s) => {
            message.contains(&format!("\"{s}\""))
                || message.contains(&format!("`{s}`"))
                || (s.chars().count() >= 4 && message.contains(s.as_str()))
        }
        other => message.contains(&other.to_string()),
    };
    let shown = match v {
        toml::Value::Array(a) => {
            a.iter().any(mentioned) || (a.is_empty() && message.contains("[]"))
        }
        other => mentioned(other),
    };
    if shown {
        return message;
    }
    let mut text = v.to_string();
    if text.chars().count() > 80 {
        text = text.chars().take(77).collect::<String>() + "...";
    }
    format!("{message} (given: {text})")
}

/// serde's words for Rust types, in the words of the config file (`key`: where it is).
fn explain(message: &str, key: &str) -> String {
    let m = message.trim();
    let mut out = m.to_string();
    // A number or a table where a word is expected: say which words.
    if out.contains("expected string only") {
        let last = key.rsplit('.').next().unwrap_or(key);
        let words = if key.starts_with("destiny.") {
            "\"pass\", \"discard\", \"bounce\", \"reject\" or \"tempfail\""
        } else if last == "on_failure" {
            "\"tempfail\", \"pass\" or \"unchecked\" (viruses only)"
        } else if last == "on_hard_failure" {
            "\"tempfail\" or \"bounce\""
        } else {
            "one of the words pipescan.toml(5) lists"
        };
        return format!("expected {words}, in double quotes");
    }
    for (rust, ours) in [
        ("expected usize", "expected a whole number, e.g. 100"),
        ("expected u64", "expected a whole number, e.g. 100"),
        ("expected u32", "expected a whole number, e.g. 100"),
        ("expected u16", "expected a whole number, e.g. 100"),
        ("expected u8", "expected a whole number, e.g. 10"),
        ("expected i64", "expected a whole number, e.g. 100"),
        ("expected f64", "expected a number, e.g. 6.9"),
        ("expected f32", "expected a number, e.g. 6.9"),
        (
            "expected a boolean",
            "expected true or false (without quotes)",
        ),
        ("expected a string", "expected a string in double quotes"),
        (
            "expected a sequence",
            "expected a list in brackets, e.g. [\"a\", \"b\"]",
        ),
    ] {
        if let Some(at) = out.find(rust)
            && out[at + rust.len()..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric())
        {
            out.replace_range(at..at + rust.len(), ours);
            break;
        }
    }
    out
}

fn apply_bank(
    raw: &toml::Table,
    name: &str,
    text: &str,
    file: &str,
    base_errors: &[(Option<String>, String)],
) -> Result<Config, Vec<ConfigError>> {
    let bank_key = format!("policy.{name}");
    let err = |key: String, message: String| ConfigError {
        file: file.into(),
        line: locate(text, &key).or_else(|| locate(text, &bank_key)),
        key: Some(key),
        message,
    };
    let overrides = match raw.get("policy").and_then(|p| p.get(name)) {
        Some(toml::Value::Table(t)) => t.clone(),
        _ => {
            return Err(vec![err(
                bank_key.clone(),
                "a policy bank must be a table of settings".into(),
            )]);
        }
    };
    if overrides.contains_key("policy") {
        return Err(vec![err(
            format!("{bank_key}.policy"),
            "policy banks cannot contain policy banks".into(),
        )]);
    }
    let mut merged = raw.clone();
    merged.remove("policy");
    merge(&mut merged, &overrides);
    let prefix = format!("{bank_key}.");
    let (cfg, errors) = typed(&merged, text, file, Some(&prefix));
    if let Some(cfg) = cfg {
        return Ok(cfg);
    }
    // What the main settings already got wrong is reported once, for the main settings.
    let errors: Vec<ConfigError> = errors
        .into_iter()
        .filter(|e| {
            let key = e.key.as_deref().and_then(|k| k.strip_prefix(&prefix));
            let in_bank = key.is_some_and(|k| value_at(&overrides, k).is_some());
            in_bank
                || !base_errors
                    .iter()
                    .any(|(bk, bm)| bk.as_deref() == key && *bm == e.message)
        })
        .map(|mut e| {
            if e.line.is_none() {
                e.line = locate(text, &bank_key);
            }
            e.message = format!("in policy bank {name}: {}", e.message);
            e
        })
        .collect();
    if errors.is_empty() {
        // Only repeats of the main settings' errors: those are reported already.
        return Err(Vec::new());
    }
    Err(errors)
}

/// The line of dotted `key`; the spam levels, checked together, fall back on each other.
fn locate(text: &str, key: &str) -> Option<usize> {
    if let Some(l) = find_key_line(text, key) {
        return Some(l);
    }
    let (prefix, last) = key.rsplit_once('.').unwrap_or(("", key));
    if prefix.ends_with("spam") && matches!(last, "tag_level" | "tag2_level" | "kill_level") {
        for other in ["kill_level", "tag2_level", "tag_level"] {
            if let Some(l) = find_key_line(text, &format!("{prefix}.{other}")) {
                return Some(l);
            }
        }
    }
    None
}

/// Deep merge: tables merge key by key, anything else is replaced.
fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

impl Config {
    /// The compiled lookup tables: compiled on first use (in `validate`, when the file is
    /// loaded) and kept. Errors are (key, message).
    pub fn lists(&self) -> Result<&crate::policy::Lists, (String, String)> {
        if let Some(l) = self.compiled_lists.get() {
            return Ok(l);
        }
        let lists = crate::policy::Lists::compile(self)?;
        Ok(self.compiled_lists.get_or_init(|| lists))
    }

    /// Checks what serde cannot: every offending key (dotted) with its problem.
    fn problems(&self) -> Vec<(String, String)> {
        let mut errs: Vec<(String, String)> = Vec::new();
        let g = &self.general;
        if !g.hostname.is_empty() && !is_header_safe(&g.hostname) {
            errs.push((
                "general.hostname".into(),
                "must be printable ASCII without spaces".into(),
            ));
        }
        if g.tempdir.as_os_str().is_empty() {
            errs.push(("general.tempdir".into(), "must not be empty".into()));
        }
        // A relative path means "relative to wherever the MTA started us": fine from one
        // directory, broken (or writing somewhere unexpected) from another.
        let n = &self.notify;
        for (key, path) in [
            ("general.tempdir", g.tempdir.as_path()),
            ("general.syslog_socket", g.syslog_socket.as_path()),
            ("quarantine.directory", self.quarantine.directory.as_path()),
            ("loop_marker.key_file", self.loop_marker.key_file.as_path()),
            ("notify.admin_template", Path::new(&n.admin_template)),
            (
                "notify.recipient_template",
                Path::new(&n.recipient_template),
            ),
            ("notify.sender_template", Path::new(&n.sender_template)),
        ] {
            if !path.as_os_str().is_empty() && !path.is_absolute() {
                errs.push((
                    key.into(),
                    format!(
                        "{path:?} is a relative path (it would depend on the directory pipescan is started in): give an absolute path, starting with /"
                    ),
                ));
            }
        }
        if let Some(program) = self.reinject.command.first()
            && program.contains('/')
            && !Path::new(program).is_absolute()
        {
            errs.push((
                "reinject.command".into(),
                format!(
                    "{program:?} is a relative path (it would depend on the directory pipescan is started in): give an absolute path, e.g. \"/usr/sbin/sendmail\""
                ),
            ));
        }
        if g.deadline.0 < Duration::from_secs(1) {
            errs.push(("general.deadline".into(), "must be at least 1s".into()));
        }
        if g.max_message_size.0 == 0 {
            errs.push(("general.max_message_size".into(), "must be above 0".into()));
        }
        if g.user
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == ':')
        {
            errs.push((
                "general.user".into(),
                "must be a user name (no spaces, colons or control characters)".into(),
            ));
        }
        if g.max_received == 0 {
            errs.push(("general.max_received".into(), "must be above 0".into()));
        }
        let h = &self.headers;
        if !h.x_header_tag.is_empty() && !is_field_name(&h.x_header_tag) {
            errs.push((
                "headers.x_header_tag".into(),
                "must be a header field name (printable ASCII, no colon or space)".into(),
            ));
        }
        if h.x_header_line.contains(['\r', '\n', '\0']) {
            errs.push((
                "headers.x_header_line".into(),
                "must be a single line".into(),
            ));
        }
        if self.reinject.command.is_empty() || self.reinject.command[0].is_empty() {
            errs.push((
                "reinject.command".into(),
                "must name a program, e.g. [\"/usr/sbin/sendmail\", \"-i\"]".into(),
            ));
        }
        if self.reinject.command.iter().any(|a| a == "-t") {
            errs.push((
                "reinject.command".into(),
                "must not contain -t: recipients come from the envelope, never from the header"
                    .into(),
            ));
        }
        let pools = [
            (
                "spamd",
                &self.spamd.servers,
                self.spamd.timeout,
                self.spamd.connect_timeout,
            ),
            (
                "clamd",
                &self.clamd.servers,
                self.clamd.timeout,
                self.clamd.connect_timeout,
            ),
            (
                "rspamd",
                &self.rspamd.servers,
                self.rspamd.timeout,
                self.rspamd.connect_timeout,
            ),
        ];
        for (name, servers, timeout, connect) in pools {
            for s in servers {
                if let Err(e) = s.parse::<crate::scan::wire::ServerAddr>() {
                    errs.push((format!("{name}.servers"), e));
                    break;
                }
            }
            if timeout.0 < Duration::from_millis(100) {
                errs.push((format!("{name}.timeout"), "must be at least 100ms".into()));
            }
            // A connect_timeout above the timeout is fine: the whole exchange, connect
            // included, never outlasts the timeout.
            if connect.0 < Duration::from_millis(10) {
                errs.push((
                    format!("{name}.connect_timeout"),
                    "must be at least 10ms".into(),
                ));
            }
        }
        if self.spam.on_failure == OnFailure::Unchecked {
            errs.push((
                "spam.on_failure".into(),
                "must be \"pass\" or \"tempfail\" (\"unchecked\" is for viruses)".into(),
            ));
        }
        let sp = &self.spam;
        if !(sp.tag_level <= sp.tag2_level && sp.tag2_level <= sp.kill_level) {
            // Name the level that breaks the order: kill_level below tag2_level (the classic
            // "kill_level = 5.0" alone), else tag2_level below tag_level.
            let key = if sp.tag2_level > sp.kill_level {
                "spam.kill_level"
            } else {
                "spam.tag2_level"
            };
            errs.push((
                key.into(),
                format!(
                    "the spam levels must satisfy tag_level <= tag2_level <= kill_level, but tag_level = {:?}, tag2_level = {:?}, kill_level = {:?} (the defaults are 2.0, 6.2, 6.9): set the others too",
                    sp.tag_level, sp.tag2_level, sp.kill_level
                ),
            ));
        }
        for (key, tag) in [
            ("headers.spam_subject_tag", &self.headers.spam_subject_tag),
            ("headers.virus_subject_tag", &self.headers.virus_subject_tag),
            (
                "headers.unchecked_subject_tag",
                &self.headers.unchecked_subject_tag,
            ),
        ] {
            if tag.contains(['\r', '\n', '\0']) {
                errs.push((key.into(), "must be a single line".into()));
            }
        }
        if let Err(e) = self.lists() {
            errs.push(e);
        }
        if let Err(e) = crate::act::quarantine::store::validate(&self.quarantine) {
            errs.push(e);
        }
        if let Err(e) = crate::scan::banned::validate(&self.banned) {
            errs.push(e);
        }
        let m = &self.loop_marker;
        if !m.key.is_empty() && !m.key_file.as_os_str().is_empty() {
            errs.push((
                "loop_marker.key".into(),
                "set key or key_file, not both".into(),
            ));
        }
        if !m.key.is_empty() && m.key.len() < crate::marker::MIN_KEY_LEN {
            errs.push((
                "loop_marker.key".into(),
                format!(
                    "must be at least {} bytes, e.g. the output of `head -c 32 /dev/urandom | base64`",
                    crate::marker::MIN_KEY_LEN
                ),
            ));
        }
        for c in &self.av_command {
            if let Err(e) = crate::scan::command::validate(c) {
                errs.push(("av_command".to_string(), e));
            }
        }
        if self.rspamd.password.chars().any(char::is_control) {
            errs.push((
                "rspamd.password".into(),
                "must not contain control characters".into(),
            ));
        }
        if self.quarantine.address.chars().any(char::is_control) {
            errs.push((
                "quarantine.address".into(),
                "must not contain control characters".into(),
            ));
        }
        for (key, addr) in [
            ("notify.virus_admin", &n.virus_admin),
            ("notify.banned_admin", &n.banned_admin),
            ("notify.spam_admin", &n.spam_admin),
            ("notify.bad_header_admin", &n.bad_header_admin),
        ] {
            if addr.chars().any(|c| c.is_control() || c.is_whitespace()) {
                errs.push((key.into(), "must be one address without spaces".into()));
            }
        }
        for (key, path) in [
            ("notify.admin_template", &n.admin_template),
            ("notify.recipient_template", &n.recipient_template),
            ("notify.sender_template", &n.sender_template),
        ] {
            if Path::new(path).is_absolute() && std::fs::metadata(path).is_err() {
                errs.push((key.into(), format!("cannot read template file {path:?}")));
            }
        }
        for (i, p) in self.per_recipient.iter().enumerate() {
            if p.recipients.is_empty() {
                errs.push((
                    "per_recipient.recipients".into(),
                    format!("entry {} matches no one: recipients is empty", i + 1),
                ));
            }
        }
        if self.spamd.default_user.chars().any(char::is_control) {
            errs.push((
                "spamd.default_user".into(),
                "must not contain control characters".into(),
            ));
        }
        errs
    }

    /// The host name used in added header fields.
    pub fn hostname(&self) -> String {
        if !self.general.hostname.is_empty() {
            return self.general.hostname.clone();
        }
        system_hostname()
    }
}

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

fn is_header_safe(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic())
}

fn is_field_name(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

/// Turns a toml error into file:line with the key the error points at.
fn located(text: &str, file: &str, e: &toml::de::Error) -> ConfigError {
    let (line, key) = match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            (Some(line), key_at_line(text, line))
        }
        None => (None, None),
    };
    ConfigError {
        file: file.into(),
        line,
        key,
        message: e.message().trim().to_string(),
    }
}

/// The dotted key defined on `line` (1-based), from the nearest table header above it.
fn key_at_line(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line.checked_sub(1)?)?.trim();
    let table = lines[..line - 1]
        .iter()
        .rev()
        .find_map(|l| table_header(l.trim()));
    if let Some(t) = table_header(here) {
        return Some(t);
    }
    let key = here.split('=').next()?.trim().trim_matches('"');
    if key.is_empty() || here.starts_with('#') || !here.contains('=') {
        return table;
    }
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    })
}

fn table_header(l: &str) -> Option<String> {
    let l = l.split('#').next()?.trim();
    if l.starts_with('[') && l.ends_with(']') {
        Some(l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
    } else {
        None
    }
}

/// The line on which dotted `key` is set, for errors found after typing.
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut table = String::new();
    let mut table_line = None;
    let sub = format!("{key}.");
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim();
        if let Some(h) = table_header(t) {
            table = h;
            if table_line.is_none() && (table == key || table.starts_with(&sub)) {
                table_line = Some(i + 1);
            }
            continue;
        }
        if let Some((k, _)) = t.split_once('=') {
            let k = k.trim().trim_matches('"');
            let full = if table.is_empty() {
                k.to_string()
            } else {
                format!("{table}.{k}")
            };
            if full == key {
                return Some(i + 1);
            }
        }
    }
    table_line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_is_the_defaults() {
        let c = parse("", "x.toml", None).unwrap();
        assert_eq!(c.general.max_message_size, Size(50 << 20));
        assert_eq!(c.general.deadline, Dur(Duration::from_secs(600)));
        assert_eq!(c.reinject.command, ["/usr/sbin/sendmail", "-i"]);
        assert_eq!(c.destiny.oversized, Destiny::Pass);
    }

    #[test]
    fn sizes_are_binary_multiples() {
        assert_eq!("500K".parse::<Size>().unwrap(), Size(512_000));
        assert_eq!("50M".parse::<Size>().unwrap(), Size(52_428_800));
        assert_eq!("1G".parse::<Size>().unwrap(), Size(1 << 30));
        assert_eq!("123".parse::<Size>().unwrap(), Size(123));
        assert!("5X".parse::<Size>().is_err());
        assert!("M".parse::<Size>().is_err());
        assert_eq!(Size(512_000).to_string(), "500K");
        assert_eq!(Size(1000).to_string(), "1000");
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!("30s".parse::<Dur>().unwrap(), Dur(Duration::from_secs(30)));
        assert_eq!("10m".parse::<Dur>().unwrap(), Dur(Duration::from_secs(600)));
        assert_eq!(
            "250ms".parse::<Dur>().unwrap(),
            Dur(Duration::from_millis(250))
        );
        let e = "30".parse::<Dur>().unwrap_err();
        assert!(e.contains("unit is required"), "{e}");
        assert_eq!(Dur(Duration::from_secs(600)).to_string(), "10m");
        assert_eq!(Dur(Duration::from_millis(1500)).to_string(), "1500ms");
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = "[general]\nhostname = \"mx.example\"\nmax_mesage_size = \"5M\"\n";
        let e = parse(text, "/etc/p.toml", None).unwrap_err();
        assert_eq!(e.file, "/etc/p.toml");
        assert_eq!(e.line, Some(3));
        assert_eq!(e.key.as_deref(), Some("general.max_mesage_size"));
        assert!(e.message.contains("unknown field"), "{}", e.message);
    }

    #[test]
    fn bad_value_names_the_key() {
        let text = "\n[general]\ndeadline = \"600\"\n";
        let e = parse(text, "p.toml", None).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(3), Some("general.deadline"))
        );
        assert!(e.message.contains("unit is required"), "{}", e.message);
        let text = "[destiny]\noversized = \"burn\"\n";
        let e = parse(text, "p.toml", None).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(2), Some("destiny.oversized"))
        );
    }

    #[test]
    fn syntax_error_has_a_line() {
        let e = parse("[general\nhostname = 1\n", "p.toml", None).unwrap_err();
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn validation_errors_find_their_line() {
        let text = "[reinject]\n\ncommand = [\"/usr/sbin/sendmail\", \"-t\"]\n";
        let e = parse(text, "p.toml", None).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(3), Some("reinject.command"))
        );
        let text = "[spamd]\nservers = [\"localhost\"]\n";
        let e = parse(text, "p.toml", None).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("spamd.servers")));
    }

    #[test]
    fn policy_bank_overrides_any_setting() {
        let text = r#"
[general]
max_message_size = "10M"
hostname = "mx.example"

[policy.ORIGINATING.general]
max_message_size = "1M"
"#;
        let base = parse(text, "p.toml", None).unwrap();
        assert_eq!(base.general.max_message_size, Size(10 << 20));
        let bank = parse(text, "p.toml", Some("ORIGINATING")).unwrap();
        assert_eq!(bank.general.max_message_size, Size(1 << 20));
        assert_eq!(bank.general.hostname, "mx.example");
    }

    #[test]
    fn unknown_or_broken_bank_is_an_error() {
        let text = "[policy.ORIGINATING.general]\nmax_message_size = \"1M\"\n";
        let e = parse(text, "p.toml", Some("MYNETS")).unwrap_err();
        assert!(e.message.contains("ORIGINATING"), "{}", e.message);
        let text = "[general]\n\n[policy.X.general]\nbogus = 1\n";
        let e = parse(text, "p.toml", None).unwrap_err();
        assert!(e.message.contains("bogus"), "{}", e.message);
        // The line of the key itself (it was the bank's table line, 3, before).
        assert_eq!(e.line, Some(4));
        assert_eq!(e.key.as_deref(), Some("policy.X.general.bogus"));
    }

    /// The four messages of issue 13 #9 that a person could not act on, now with the line, the
    /// key, the value given and what is accepted.
    #[test]
    fn a_wrong_value_says_what_was_given_and_what_is_accepted() {
        let one = |text: &str| {
            let e = parse(text, "/etc/p.toml", None).unwrap_err();
            assert_eq!(e.len(), 1, "{e}");
            e.to_string()
        };
        let e = one("[general]\nmax_message_size = 5.5\n");
        assert!(
            e.starts_with("/etc/p.toml:2: key general.max_message_size: ")
                && e.contains("5.5")
                && e.contains("a whole number of bytes or a string such as \"500K\""),
            "{e}"
        );
        assert!(!e.contains("untagged enum"), "{e}");
        let e = one("[general]\nmax_received = \"many\"\n");
        assert!(
            e.starts_with("/etc/p.toml:2: key general.max_received: ")
                && e.contains("\"many\"")
                && e.contains("expected a whole number, e.g. 100"),
            "{e}"
        );
        assert!(!e.contains("usize"), "{e}");
        let e = one("[spam]\ntag_level = \"high\"\n");
        assert!(
            e.starts_with("/etc/p.toml:2: key spam.tag_level: ")
                && e.contains("\"high\"")
                && e.contains("expected a number, e.g. 6.9"),
            "{e}"
        );
        assert!(!e.contains("f64"), "{e}");
        let e = one("\n[general]\ndeadline = 30\n");
        assert!(
            e.starts_with("/etc/p.toml:3: key general.deadline: ")
                && e.contains("(30)")
                && e.contains("\"30s\""),
            "{e}"
        );
        assert!(!e.contains("expected a string"), "{e}");
        let e = one("[spam]\nkill_level = 5.0\n");
        assert!(
            e.starts_with("/etc/p.toml:2: key spam.kill_level: ")
                && e.contains("tag_level = 2.0, tag2_level = 6.2, kill_level = 5.0"),
            "{e}"
        );
        let e = one("[destiny]\nvirus = 3\n");
        assert!(
            e.starts_with("/etc/p.toml:2: key destiny.virus: ")
                && e.contains("\"discard\"")
                && e.contains("(given: 3)"),
            "{e}"
        );
    }

    #[test]
    fn every_bad_key_of_a_file_is_reported_at_once() {
        let text = "[general]\nmax_message_size = 5.5\ndeadline = 30\nbogus = 1\n\n[spam]\nkill_level = 5.0\n[reinject]\ncommand = [\"/usr/sbin/sendmail\", \"-t\"]\n";
        let e = parse(text, "p.toml", None).unwrap_err();
        let got: Vec<(Option<usize>, Option<&str>)> =
            e.iter().map(|e| (e.line, e.key.as_deref())).collect();
        assert_eq!(
            got,
            [
                (Some(2), Some("general.max_message_size")),
                (Some(3), Some("general.deadline")),
                (Some(4), Some("general.bogus")),
                (Some(7), Some("spam.kill_level")),
                (Some(9), Some("reinject.command")),
            ],
            "{e}"
        );
        // Display: one line per error, in file order.
        assert_eq!(e.to_string().lines().count(), 5, "{e}");
        // A bank repeats none of the main settings' errors, and adds its own.
        let text = "[general]\ndeadline = 30\n[policy.B.general]\nmax_received = -1\n";
        let e = parse(text, "p.toml", None).unwrap_err();
        let keys: Vec<&str> = e.iter().filter_map(|e| e.key.as_deref()).collect();
        assert_eq!(
            keys,
            ["general.deadline", "policy.B.general.max_received"],
            "{e}"
        );
    }

    #[test]
    fn relative_paths_are_refused_with_their_key() {
        for (text, key) in [
            ("[general]\ntempdir = \"tmp\"\n", "general.tempdir"),
            ("[quarantine]\ndirectory = \"%Q\"\n", "quarantine.directory"),
            (
                "[loop_marker]\nkey_file = \"marker.key\"\n",
                "loop_marker.key_file",
            ),
            (
                "[lists]\nspam_lovers = [\"file:lovers.txt\"]\n",
                "lists.spam_lovers",
            ),
            (
                "[reinject]\ncommand = [\"bin/sendmail\", \"-i\"]\n",
                "reinject.command",
            ),
        ] {
            let e = parse(text, "p.toml", None).unwrap_err();
            assert_eq!((e.line, e.key.as_deref()), (Some(2), Some(key)), "{e}");
            assert!(
                e.message.contains("relative") || e.message.contains("absolute"),
                "{e}"
            );
        }
        // A bare program name is looked up in PATH, as execvp does: not a relative path.
        assert!(parse("[reinject]\ncommand = [\"sendmail\"]\n", "p.toml", None).is_ok());
    }
}
