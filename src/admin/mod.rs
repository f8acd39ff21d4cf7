//! Admin commands on the quarantine, run by hand (never by the MTA): [`release`] (`pipescan
//! release`), [`list`] (`pipescan quarantine list`) and [`expire`] (`pipescan quarantine
//! expire`, the daily job). They read copies through act::quarantine (the one record format and
//! directory walk) and print for a terminal; release delivers through the same courier as a
//! filtering run. [`import`] (`pipescan import-amavisd`) translates an amavisd-new configuration,
//! evaluated by perl, into pipescan.toml ([`import_rules`] says what maps to what,
//! [`import_toml`] writes and checks the text, [`import_vars`] holds one scope's variables and
//! results).

pub mod expire;
pub mod import;
pub mod import_rules;
pub mod import_toml;
pub mod import_vars;
pub mod list;
pub mod release;
pub mod sql;
