//! Logging: one summary line per message, amavisd style, to syslog (facility mail) and/or stderr.
//!
//! Contract: logging never fails a run. Without a syslog socket (containers, CI) lines go to
//! stderr instead; with `-v` they go to both.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::OnceLock;

struct Logger {
    ident: String,
    syslog: Option<PathBuf>,
    stderr: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Sets where lines go; before this is called (early errors) they go to stderr.
pub fn init(ident: &str, syslog: Option<PathBuf>, verbose: bool) {
    let _ = LOGGER.set(Logger {
        ident: ident.to_string(),
        syslog,
        stderr: verbose,
    });
}

/// LOG_MAIL = 2, severities: 6 info, 4 warning.
fn emit(severity: u8, line: &str) {
    // Lines carry what senders wrote (Message-ID, addresses, names): no control, line-breaking
    // or bidi character reaches syslog or a terminal raw.
    let line = &crate::message::printable(line, usize::MAX);
    let pid = std::process::id();
    let (ident, syslog, verbose) = match LOGGER.get() {
        Some(l) => (l.ident.as_str(), l.syslog.as_ref(), l.stderr),
        None => ("pipescan", None, true),
    };
    let mut sent = false;
    if let (Some(path), Ok(sock)) = (syslog, UnixDatagram::unbound()) {
        let pri = 2 * 8 + severity;
        // The syslog daemon adds the timestamp and host.
        let msg = format!("<{pri}>{ident}[{pid}]: {line}");
        sent = sock.send_to(msg.as_bytes(), path).is_ok();
    }
    if verbose || !sent {
        let _ = writeln!(std::io::stderr().lock(), "{ident}[{pid}]: {line}");
    }
}

pub fn info(line: &str) {
    emit(6, line);
}

pub fn warn(line: &str) {
    emit(4, line);
}
