//! Admin commands on the quarantine, run by hand (never by the MTA): [`release`] (`pipescan
//! release`) and [`list`] (`pipescan quarantine list`). Both read copies through
//! act::quarantine (the one record format) and print for a terminal; release delivers through
//! the same courier as a filtering run.

pub mod list;
pub mod release;
