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
    /// amavisd's SQL schema in PostgreSQL (lookups shared by several mail hosts).
    pub sql: crate::config::sql::Sql,
    /// Mail authentication: verification and the policy built on it.
    pub auth: crate::config::auth::Auth,
    /// The resolver for authentication.
    pub dns: crate::config::auth::Dns,
    /// DKIM signing.
    pub dkim: crate::config::auth::Dkim,
    /// Raw policy banks; only their names and validity matter once a bank has been applied.
    #[serde(skip_serializing)]
    pub policy: toml::Table,
    /// The policy bank these settings were loaded with (`--policy`, or chosen later), if any.
    #[serde(skip)]
    pub bank: Option<String>,
    /// The file's text and name, so that a bank chosen during a run (`[auth]
    /// originating_bank`, `author_policy_banks`) is applied exactly as `--policy` would.
    #[serde(skip)]
    pub source: Option<std::sync::Arc<(String, String)>>,
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
            sql: Default::default(),
            auth: Default::default(),
            dns: Default::default(),
            dkim: Default::default(),
            policy: toml::Table::new(),
            bank: None,
            source: None,
        }
    }
}

impl Config {
    /// The host name used in added header fields.
    pub fn hostname(&self) -> String {
        self.general.hostname()
    }

    /// Every lookup table of the file with its key, in the order `policy::Lists::compile`
    /// compiles them: each [[per_recipient]] entry's, then the global ones.
    pub fn lookup_tables(&self) -> Vec<(&'static str, &[String])> {
        let l = &self.lists;
        let mut tables: Vec<(&'static str, &[String])> = Vec::new();
        for p in &self.per_recipient {
            tables.push(("per_recipient.recipients", &p.recipients));
            tables.push(("per_recipient.whitelist_sender", &p.whitelist_sender));
            tables.push(("per_recipient.blacklist_sender", &p.blacklist_sender));
        }
        tables.extend([
            ("general.local_domains", &self.general.local_domains[..]),
            ("lists.bypass_virus_checks", &l.bypass_virus_checks),
            ("lists.bypass_spam_checks", &l.bypass_spam_checks),
            ("lists.bypass_banned_checks", &l.bypass_banned_checks),
            ("lists.bypass_header_checks", &l.bypass_header_checks),
            ("lists.virus_lovers", &l.virus_lovers),
            ("lists.spam_lovers", &l.spam_lovers),
            ("lists.banned_files_lovers", &l.banned_files_lovers),
            ("lists.bad_header_lovers", &l.bad_header_lovers),
            ("lists.whitelist_sender", &l.whitelist_sender),
            ("lists.blacklist_sender", &l.blacklist_sender),
            (
                "auth.whitelist_authenticated_sender",
                &self.auth.whitelist_authenticated_sender,
            ),
        ]);
        tables
    }
}
