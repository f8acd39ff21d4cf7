//! The TOML configuration: schema, embedded defaults, validation.
//!
//! Contract: every key has a default compiled in, so a missing default file means "sane defaults".
//! Any problem in a file that exists (syntax, unknown key, bad value, bad policy bank) is a
//! [`errors::ConfigError`] naming the file, the line and the key; a filtering run turns it into
//! exit 75 (a typo in the config must park mail in the queue, never bounce it).
//!
//! Policy banks (`[policy.NAME]`) are partial configs: the chosen bank is merged key by key over
//! the main settings before they are typed, so a bank can override any setting.
//!
//! Layout: each section's schema is a leaf type (it imports only `config::units`, `verdict` and
//! std/serde), either here or beside its owner (`scan::banned::BannedConfig`,
//! `scan::command::AvCommand`, `scan::headers::Test`); [`settings::Config`] composes them,
//! [`validate`] checks what serde cannot, [`load`] reads the file and [`errors`] locates what
//! is wrong in it. Compiled settings (the lookup tables) are not part of the parsed file: a run
//! compiles them once with `policy::Lists::compile`.

pub mod auth;
pub mod delivery;
pub mod errors;
pub mod general;
pub mod load;
pub mod policy;
pub mod scanners;
pub mod settings;
pub mod sql;
pub mod units;
pub mod validate;
