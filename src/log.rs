//! Logging: one summary line per message, amavisd style, to syslog (facility mail), to
//! `[general] log_file` and/or stderr.
//!
//! Contract: logging never fails a run. Without a syslog socket (containers, CI) lines go to
//! stderr instead; with `-v` they go to both. A log file that cannot be opened or written is
//! warned about (on syslog and stderr) and its lines go to stderr too: never a reason to defer.
//!
//! Every line of a filtering run starts the way log readers expect: the MTA's queue id
//! (`--queue-id`) as Postfix's own lines do, `4F1A2B3C4D: `, then amavisd-new's log id token
//! `(01234-01)` (our pid), which mailgraph and amavis-logwatch anchor their patterns on. With the
//! ident `amavis` or `amavisd` (the program names those tools select) the token comes first and
//! the queue id moves into the summary line's `Queue-ID:` field, exactly where amavisd-new puts
//! it, since both tools' patterns begin at the token. No line, with its syslog header, is
//! longer than [`MAX_DATAGRAM`] bytes: rsyslog cuts datagrams at 8 KB, other daemons at 1 or
//! 2 KB, and what matters (the ids, size and time) sits at the end of the summary line.

use std::fs::File;
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The longest datagram (and log file or stderr line) we write, syslog header included.
pub const MAX_DATAGRAM: usize = 2000;
/// What the summary line's own text may use: [`MAX_DATAGRAM`] less room for the header
/// (`<22>ident[pid]: QUEUEID: (01234-01) `; the ident and queue id are cut to fit it).
pub const LINE_BUDGET: usize = 1800;

struct Logger {
    ident: String,
    syslog: Option<PathBuf>,
    stderr: bool,
    file: Option<PathBuf>,
    /// The log file, opened at the first line (after [general] user took effect, so that the
    /// file belongs to the user that runs us), or why it cannot be.
    opened: OnceLock<Result<File, String>>,
}

/// The ids every line of a filtering run carries.
#[derive(Default)]
struct RunIds {
    queue_id: Option<String>,
    mail_id: OnceLock<String>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();
static RUN: OnceLock<RunIds> = OnceLock::new();

/// Sets where lines go; before this is called (early errors) they go to stderr. `log_file`:
/// `[general] log_file` (empty: none).
pub fn init(ident: &str, syslog: Option<PathBuf>, log_file: &Path, verbose: bool) {
    let _ = LOGGER.set(Logger {
        ident: clip(ident, 48),
        syslog,
        stderr: verbose,
        file: (!log_file.as_os_str().is_empty()).then(|| log_file.to_path_buf()),
        opened: OnceLock::new(),
    });
}

/// This process is a filtering run: its lines carry the log id token and, when the MTA gave
/// one (`--queue-id`), its queue id. An id that is empty after cleaning is no id.
pub fn set_run(queue_id: Option<&str>) {
    let queue_id = queue_id.map(clean_queue_id).filter(|q| !q.is_empty());
    let _ = RUN.set(RunIds {
        queue_id,
        mail_id: OnceLock::new(),
    });
}

/// Queue ids are letters and digits (Postfix, Sendmail, Exim's dashes): anything else becomes
/// `_`, so that a broken argument cannot make a line look like something else; at most 64.
pub fn clean_queue_id(q: &str) -> String {
    q.trim()
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The MTA's queue id, if it gave one.
pub fn queue_id() -> Option<&'static str> {
    RUN.get().and_then(|r| r.queue_id.as_deref())
}

/// The run's mail_id, amavisd-style: 12 random base64url characters, made the first time it
/// is asked for. Every summary line names it and a quarantined copy is stored under it (it is
/// the X-Quarantine-ID), so that the log line of a quarantined message leads to it.
pub fn mail_id() -> &'static str {
    static OUTSIDE_A_RUN: OnceLock<RunIds> = OnceLock::new();
    let run = RUN
        .get()
        .unwrap_or_else(|| OUTSIDE_A_RUN.get_or_init(RunIds::default));
    run.mail_id.get_or_init(|| {
        crate::act::quarantine::id::new_mail_id().unwrap_or_else(|_| {
            // No /dev/urandom: still unique on this host (time and pid), still 12 characters.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let mut b = [0u8; 9];
            b[..5].copy_from_slice(&t.to_be_bytes()[3..]);
            b[5..].copy_from_slice(&std::process::id().to_be_bytes());
            let id = crate::message::text::base64(&b)
                .replace('+', "-")
                .replace('/', "_");
            // Never taken for an option (see new_mail_id).
            format!("p{}", &id[1..])
        })
    })
}

/// Is this the amavisd-new layout (ident `amavis` or `amavisd`)? See the module doc.
pub fn amavis_layout() -> bool {
    LOGGER
        .get()
        .is_some_and(|l| matches!(l.ident.as_str(), "amavis" | "amavisd"))
}

/// `s` made printable (see [`crate::message::text::printable`]) in at most `max` bytes: longer text is
/// cut at a character boundary and ends in `…`.
pub fn clip(s: &str, max: usize) -> String {
    let mut p = crate::message::text::printable(s, usize::MAX);
    if p.len() > max {
        let mut end = max.saturating_sub('…'.len_utf8());
        while !p.is_char_boundary(end) {
            end -= 1;
        }
        p.truncate(end);
        p.push('…');
    }
    p
}

/// `<a>,<b>,...` in at most `budget` bytes: as many whole addresses as fit, then
/// `(... and N more)`. Each address is [`clip`]ped to 256 bytes.
pub fn address_list(addrs: &[String], budget: usize) -> String {
    let mut out = String::new();
    for (i, a) in addrs.iter().enumerate() {
        let item = clip(&crate::envelope::Angle(a).to_string(), 256);
        let left = addrs.len() - i - 1;
        // Room for this one, and for the "more" note unless it is the last.
        let more = if left > 0 {
            format!(",(... and {left} more)").len()
        } else {
            0
        };
        let sep = usize::from(!out.is_empty());
        if out.len() + sep + item.len() + more > budget {
            let n = addrs.len() - i;
            let note = format!("(... and {n} more)");
            if out.is_empty() {
                return format!("({n} recipients)");
            }
            out.push(',');
            out.push_str(&note);
            return out;
        }
        if sep == 1 {
            out.push(',');
        }
        out.push_str(&item);
    }
    out
}

/// The start of a filtering run's lines: `QUEUEID: (01234-01) `, or `(01234-01) ` (see the
/// module doc). Empty outside a filtering run.
fn prefix(pid: u32) -> String {
    let Some(run) = RUN.get() else {
        return String::new();
    };
    match (&run.queue_id, amavis_layout()) {
        (Some(q), false) => format!("{q}: ({pid:05}-01) "),
        _ => format!("({pid:05}-01) "),
    }
}

/// LOG_MAIL = 2, severities: 6 info, 4 warning.
fn emit(severity: u8, line: &str) {
    let pid = std::process::id();
    let (ident, syslog, verbose) = match LOGGER.get() {
        Some(l) => (l.ident.as_str(), l.syslog.as_ref(), l.stderr),
        None => ("pipescan", None, true),
    };
    // Lines carry what senders wrote (Message-ID, addresses, names): no control, line-breaking
    // or bidi character reaches syslog, a file or a terminal raw. None is longer than
    // MAX_DATAGRAM with the longest header we write (the syslog one, "<22>").
    let head = format!("<{}>{ident}[{pid}]: {}", 2 * 8 + severity, prefix(pid));
    let line = &clip(line, MAX_DATAGRAM.saturating_sub(head.len()).max(200));
    let mut sent = false;
    if let (Some(path), Ok(sock)) = (syslog, UnixDatagram::unbound()) {
        // The syslog daemon adds the timestamp and host.
        sent = sock
            .send_to(format!("{head}{line}").as_bytes(), path)
            .is_ok();
    }
    let body = &head[head.find('>').map_or(0, |i| i + 1)..];
    // stderr: when asked for, when nothing else took the line, and when a log file we were
    // given cannot be written (stderr and syslog then stand in for it).
    let mut to_stderr = verbose || !sent;
    if let Some(l) = LOGGER.get()
        && let Some(path) = &l.file
    {
        let wrote = match l.opened.get_or_init(|| open_log_file(path)) {
            Ok(f) => {
                let stamp = chrono::Local::now().format("%b %e %H:%M:%S");
                let host = crate::config::general::system_hostname();
                let host = host.split('.').next().unwrap_or("localhost");
                // One write per line (O_APPEND): lines of concurrent runs never interleave.
                let text = format!("{stamp} {host} {body}{line}\n");
                let mut w: &File = f;
                w.write_all(text.as_bytes()).is_ok()
            }
            Err(_) => false,
        };
        to_stderr = verbose || !wrote;
    }
    if to_stderr {
        let _ = writeln!(std::io::stderr().lock(), "{body}{line}");
    }
}

/// Opens `[general] log_file` for appending (created 0640 when missing). On failure, warns on
/// syslog and stderr (once: the result is kept) and the lines go to stderr.
fn open_log_file(path: &Path) -> Result<File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let opened = if path.is_absolute() {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(path)
            .map_err(|e| e.to_string())
    } else {
        Err("not an absolute path".to_string())
    };
    if let Err(e) = &opened {
        let warning = format!(
            "cannot write [general] log_file {}: {e}; logging to syslog and stderr instead",
            path.display()
        );
        let pid = std::process::id();
        if let Some(l) = LOGGER.get() {
            if let (Some(sock), Ok(s)) = (&l.syslog, UnixDatagram::unbound()) {
                let msg = format!(
                    "<{}>{}[{pid}]: {}{warning}",
                    2 * 8 + 4,
                    l.ident,
                    prefix(pid)
                );
                let _ = s.send_to(msg.as_bytes(), sock);
            }
            let _ = writeln!(
                std::io::stderr().lock(),
                "{}[{pid}]: {}{warning}",
                l.ident,
                prefix(pid)
            );
        }
    }
    opened
}

pub fn info(line: &str) {
    emit(6, line);
}

pub fn warn(line: &str) {
    emit(4, line);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_lists_stop_at_the_budget_and_say_how_many_more() {
        let addrs: Vec<String> = (0..5000).map(|i| format!("user{i}@example.com")).collect();
        let l = address_list(&addrs, 200);
        assert!(l.len() <= 200, "{} {l}", l.len());
        assert!(
            l.starts_with("<user0@example.com>,<user1@example.com>,"),
            "{l}"
        );
        let shown = l.matches('<').count();
        assert!(
            l.ends_with(&format!(",(... and {} more)", 5000 - shown)),
            "{l}"
        );
        // All of them when they fit; none but a count when not even one does.
        assert_eq!(
            address_list(&addrs[..2], 200),
            "<user0@example.com>,<user1@example.com>"
        );
        assert_eq!(address_list(&addrs[..3], 10), "(3 recipients)");
        assert_eq!(address_list(&[], 10), "");
        assert_eq!(address_list(&[String::new()], 10), "<>");
    }

    #[test]
    fn clip_cuts_at_a_character_boundary() {
        assert_eq!(clip("abc", 10), "abc");
        assert_eq!(clip("abcdefghijkl", 10), "abcdefg…");
        assert_eq!(clip("ééééé", 8), "éé…");
        assert!(clip(&"é".repeat(1000), 2000).len() <= 2000);
        assert_eq!(clip("a\nb", 10), "a\\u{a}b");
    }

    #[test]
    fn queue_ids_are_cleaned() {
        assert_eq!(clean_queue_id("4F1A2B3C4D"), "4F1A2B3C4D");
        assert_eq!(clean_queue_id(" 1rABCD-0004xY-8z "), "1rABCD-0004xY-8z");
        assert_eq!(clean_queue_id("a b:c\n"), "a_b_c");
        assert_eq!(clean_queue_id(&"A".repeat(100)).len(), 64);
    }
}
