//! The configuration's lookup tables, compiled once per run (a `file:` list is read here).

use crate::config::settings::Config;
use crate::lookup::source::LookupError;
use crate::lookup::table::Table;

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
}

impl Lists {
    /// Compiles every table; Err names the config key.
    pub fn compile(cfg: &Config) -> Result<Lists, (String, String)> {
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
        })
    }

    /// Is `rcpt` local? An empty local_domains makes every recipient local (so spam headers
    /// are never silently missing, amavisd's classic trap).
    pub fn is_local(&self, rcpt: &str) -> Result<bool, LookupError> {
        // No envelope (a procmail filter): the mailbox owner is local by definition.
        Ok(self.local_domains.is_empty() || rcpt.is_empty() || self.local_domains.lookup(rcpt)?)
    }
}
