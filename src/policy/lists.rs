//! The configuration's lookup tables, compiled once per run (a `file:` list is read here).

use crate::config::settings::Config;
use crate::lookup::pg::{Flag, FlagColumn, Lookups};
use crate::lookup::source::LookupError;
use crate::lookup::table::Table;
use crate::sql::conn::Db;
use std::sync::Arc;

/// The configuration's lookup tables, compiled once per run.
#[derive(Debug, Clone, Default)]
pub struct Lists {
    pub local_domains: Table,
    pub bypass_virus: Table,
    pub bypass_spam: Table,
    pub bypass_banned: Table,
    pub bypass_header: Table,
    pub virus_lovers: Table,
    pub spam_lovers: Table,
    pub banned_lovers: Table,
    pub bad_header_lovers: Table,
    pub whitelist: Table,
    pub blacklist: Table,
    /// [auth] whitelist_authenticated_sender: authors whitelisted only when proven.
    pub auth_whitelist: Table,
    /// (recipients, whitelist, blacklist) of each [[per_recipient]] entry.
    pub per_recipient: Vec<(Table, Table, Table)>,
    /// amavisd's SQL tables ([sql] lookups = true): their flags are already the first source
    /// of the bypass and lover tables; the levels and wblist are read by `policy::recipient`.
    pub sql: Option<Arc<Lookups>>,
}

impl Lists {
    /// Compiles every table; Err names the config key. `db`: the run's database connection
    /// (not opened yet), used for the SQL lookups when `[sql] lookups` is on; `senders`: the
    /// envelope sender and the authors, whose wblist rows come with each recipient's policy.
    pub fn compile(
        cfg: &Config,
        db: Option<&Arc<Db>>,
        (sender, authors): (&str, &[String]),
    ) -> Result<Lists, (String, String)> {
        let lists = Lists::compile_toml(cfg)?;
        Ok(match db {
            Some(db) if cfg.sql.lookups => {
                let local = lists.local_domains.clone();
                let senders = std::iter::once(sender.to_string()).chain(authors.to_vec());
                let lookups =
                    Lookups::new(db.clone(), local, cfg.sql.on_failure, senders.collect());
                lists.with_sql(Arc::new(lookups))
            }
            _ => lists,
        })
    }

    /// SQL first in every table a policy flag answers.
    fn with_sql(self, sql: Arc<Lookups>) -> Lists {
        let flag = |t: Table, column| {
            t.with_first(Arc::new(Flag {
                lookups: sql.clone(),
                column,
            }))
        };
        Lists {
            bypass_virus: flag(self.bypass_virus, FlagColumn::BypassVirusChecks),
            bypass_spam: flag(self.bypass_spam, FlagColumn::BypassSpamChecks),
            bypass_banned: flag(self.bypass_banned, FlagColumn::BypassBannedChecks),
            bypass_header: flag(self.bypass_header, FlagColumn::BypassHeaderChecks),
            virus_lovers: flag(self.virus_lovers, FlagColumn::VirusLover),
            spam_lovers: flag(self.spam_lovers, FlagColumn::SpamLover),
            banned_lovers: flag(self.banned_lovers, FlagColumn::BannedFilesLover),
            bad_header_lovers: flag(self.bad_header_lovers, FlagColumn::BadHeaderLover),
            sql: Some(sql.clone()),
            ..self
        }
    }

    fn compile_toml(cfg: &Config) -> Result<Lists, (String, String)> {
        let t = |key: &str, v: &[String]| Table::new(v).map_err(|e| (key.to_string(), e.0));
        let l = &cfg.lists;
        let mut per = Vec::new();
        for p in &cfg.per_recipient {
            per.push((
                t("per_recipient.recipients", &p.recipients)?,
                t("per_recipient.whitelist_sender", &p.whitelist_sender)?,
                t("per_recipient.blacklist_sender", &p.blacklist_sender)?,
            ));
        }
        Ok(Lists {
            local_domains: t("general.local_domains", &cfg.general.local_domains)?,
            bypass_virus: t("lists.bypass_virus_checks", &l.bypass_virus_checks)?,
            bypass_spam: t("lists.bypass_spam_checks", &l.bypass_spam_checks)?,
            bypass_banned: t("lists.bypass_banned_checks", &l.bypass_banned_checks)?,
            bypass_header: t("lists.bypass_header_checks", &l.bypass_header_checks)?,
            virus_lovers: t("lists.virus_lovers", &l.virus_lovers)?,
            spam_lovers: t("lists.spam_lovers", &l.spam_lovers)?,
            banned_lovers: t("lists.banned_files_lovers", &l.banned_files_lovers)?,
            bad_header_lovers: t("lists.bad_header_lovers", &l.bad_header_lovers)?,
            whitelist: t("lists.whitelist_sender", &l.whitelist_sender)?,
            blacklist: t("lists.blacklist_sender", &l.blacklist_sender)?,
            auth_whitelist: t(
                "auth.whitelist_authenticated_sender",
                &cfg.auth.whitelist_authenticated_sender,
            )?,
            per_recipient: per,
            sql: None,
        })
    }

    /// Is `rcpt` local? An empty local_domains makes every recipient local (so spam headers
    /// are never silently missing, amavisd's classic trap).
    pub fn is_local(&self, rcpt: &str) -> Result<bool, LookupError> {
        // No envelope (a procmail filter): the mailbox owner is local by definition.
        if self.local_domains.is_empty() || rcpt.is_empty() || self.local_domains.lookup(rcpt)? {
            return Ok(true);
        }
        // A users row (not the `@.` catch-all) makes the recipient local, as in amavisd.
        Ok(match &self.sql {
            Some(sql) => sql.policy(rcpt)?.is_some_and(|p| p.makes_local()),
            None => false,
        })
    }
}
