//! Admin commands on the quarantine, run by hand (never by the MTA): [`release`] (`pipescan
//! release`), [`list`] (`pipescan quarantine list`) and [`expire`] (`pipescan quarantine
//! expire`, the daily job). They read copies through act::quarantine (the one record format and
//! directory walk) and print for a terminal; release delivers through the same courier as a
//! filtering run.

pub mod expire;
pub mod list;
pub mod release;
