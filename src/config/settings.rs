//! [`Config`]: the whole file, composed of the sections' schemas. It only composes them;
//! `config::validate` checks them and `config::load` reads them.

use crate::config::delivery::{Notify, Quarantine, Reinject};
use crate::config::general::{General, Headers};
use crate::config::policy::{Destinies, Dsn, Lists, PerRecipient, Spam};
use crate::config::scanners::{BadHeader, Clamd, LoopMarker, Rspamd, Spamd, Virus};
use serde::{Deserialize, Serialize};

/// The whole configuration file, every section at its default unless the file sets it.
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
        }
    }
}

impl Config {
    /// The host name used in added header fields.
    pub fn hostname(&self) -> String {
        self.general.hostname()
    }
}
