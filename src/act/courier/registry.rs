//! Which courier a run uses, from the configuration: the one place that names them all.
//!
//! Contract: the choice is made from settings already validated by config (a command that is
//! not a program never gets here); it cannot fail.

use crate::act::courier::lmtp;
use crate::act::courier::sendmail::Sendmail;
use crate::act::courier::smtp;
use crate::act::courier::tls::Tls;
use crate::act::courier::traits::Courier;
use crate::config::delivery::{Method, Reinject};
use crate::config::settings::Config;

/// The courier for `cfg` (its `[reinject]` section: `method`).
pub fn chosen(cfg: &Config) -> Box<dyn Courier> {
    let r = &cfg.reinject;
    match r.method() {
        Ok(Method::Sendmail) => Box::new(Sendmail::new(&r.command, r.on_hard_failure)),
        Ok(Method::Smtp(servers)) => Box::new(
            smtp::courier(
                &servers,
                &cfg.general.hostname(),
                r.timeout.0,
                r.on_hard_failure,
            )
            .with_tls(tls(r)),
        ),
        Ok(Method::Lmtp(servers)) => Box::new(
            lmtp::courier(
                &servers,
                &cfg.general.hostname(),
                r.timeout.0,
                r.on_hard_failure,
            )
            .with_tls(tls(r)),
        ),
        // Not reached (validated); no server then, so every delivery is a 75.
        Err(_) => Box::new(smtp::courier(
            &[],
            &cfg.general.hostname(),
            r.timeout.0,
            r.on_hard_failure,
        )),
    }
}

/// `[reinject] tls` and `tls_ca_file`.
fn tls(r: &Reinject) -> Tls {
    Tls {
        level: r.tls,
        ca_file: r.tls_ca_file.clone(),
    }
}
