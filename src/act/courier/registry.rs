//! Which courier a run uses, from the configuration: the one place that names them all.
//!
//! Contract: the choice is made from settings already validated by config (a command that is
//! not a program never gets here); it cannot fail.

use crate::act::courier::lmtp;
use crate::act::courier::sendmail::Sendmail;
use crate::act::courier::smtp;
use crate::act::courier::smtp_wire;
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

/// `check-config --ping`: each SMTP/LMTP server of `[reinject]` greets us, and under
/// `tls = "verify"` passes the certificate check (no mail is sent). False when one does not.
pub fn ping(cfg: &Config) -> bool {
    let r = &cfg.reinject;
    let (proto, verb, servers) = match r.method() {
        Ok(Method::Smtp(s)) => ("smtp", "EHLO", s),
        Ok(Method::Lmtp(s)) => ("lmtp", "LHLO", s),
        _ => return true,
    };
    let tls = tls(r);
    let mut ok = true;
    for s in &servers {
        let started = std::time::Instant::now();
        let deadline = started + r.timeout.0.min(std::time::Duration::from_secs(30));
        let result = s
            .parse::<crate::scan::wire::ServerAddr>()
            .and_then(|a| smtp_wire::ping(&a, verb, &cfg.general.hostname(), &tls, deadline));
        match result {
            Ok(what) => crate::process::sayln(format_args!(
                "# ping reinject {proto} {s}: answers, {what} ({} ms)",
                started.elapsed().as_millis()
            )),
            Err(e) => {
                ok = false;
                crate::process::sayln(format_args!(
                    "# ping reinject {proto} {s}: WOULD NOT TAKE MAIL: {e}"
                ));
            }
        }
    }
    ok
}

/// `[reinject] tls` and `tls_ca_file`.
fn tls(r: &Reinject) -> Tls {
    Tls {
        level: r.tls,
        ca_file: r.tls_ca_file.clone(),
    }
}
