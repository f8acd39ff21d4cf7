//! Which courier a run uses, from the configuration: the one place that names them all.
//!
//! Contract: the choice is made from settings already validated by config (a command that is
//! not a program never gets here); it cannot fail.

use crate::act::courier::sendmail::Sendmail;
use crate::act::courier::traits::Courier;
use crate::config::settings::Config;

/// The courier for `cfg` (its `[reinject]` section: the sendmail command today).
pub fn chosen(cfg: &Config) -> Box<dyn Courier> {
    Box::new(Sendmail::new(
        &cfg.reinject.command,
        cfg.reinject.on_hard_failure,
    ))
}
