//! Hands a copy of the message back to the MTA: `COMMAND... -f SENDER -- RCPT...`.
//!
//! Contract: argv only, never a shell and never `-t`. The null sender is passed as `-f ""`, which
//! Postfix's and Sendmail's sendmail keep null. Our environment is passed on unchanged (Postfix's
//! pipe sets MAIL_CONFIG, which selects the instance to inject into). Success is exit 0 after the
//! whole message was written; anything else is a [`Failure`]: 75 for temporary or unknown
//! trouble, and for the hard codes (65, 66, 67, 68, 69, 77) 75 or 69 as `on_hard_failure` says.
//! A stop request (signal, deadline) while the child runs kills it: an unfinished sendmail
//! queues nothing, so the MTA's retry cannot deliver twice.

use crate::config::HardFailure;
use crate::control::{self, Failure};
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::Duration;

/// The argv for one reinjection.
pub fn argv(command: &[String], sender: &str, recipients: &[String]) -> Vec<String> {
    let mut v = command.to_vec();
    v.push("-f".into());
    v.push(sender.into());
    v.push("--".into());
    v.extend(recipients.iter().cloned());
    v
}

/// Runs `argv` and feeds it the message through `write`. Returns when the child has exited.
pub fn run(
    argv: &[String],
    on_hard_failure: HardFailure,
    write: &mut (dyn FnMut(&mut ChildStdin) -> io::Result<u64> + Send),
) -> Result<(), Failure> {
    run_as(argv, on_hard_failure, true, write)
}

/// Like [`run`]; `commits` says whether success delivers the message (the point of no return).
/// A quarantine copy sent to a mailbox does not: a retry after a later failure only duplicates
/// that copy.
pub fn run_as(
    argv: &[String],
    on_hard_failure: HardFailure,
    commits: bool,
    write: &mut (dyn FnMut(&mut ChildStdin) -> io::Result<u64> + Send),
) -> Result<(), Failure> {
    let stage = if commits { "reinject" } else { "send" };
    crate::timings::time(stage, || run_timed(argv, on_hard_failure, commits, write))
}

fn run_timed(
    argv: &[String],
    on_hard_failure: HardFailure,
    commits: bool,
    write: &mut (dyn FnMut(&mut ChildStdin) -> io::Result<u64> + Send),
) -> Result<(), Failure> {
    let prog = &argv[0];
    let mut child = Command::new(prog)
        .args(&argv[1..])
        // Its own process group: a stop kills sendmail's helpers (postdrop) too, so nothing we
        // started can finish a submission after we have told the MTA to retry.
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Failure::tempfail("4.3.5", format!("cannot run {prog}: {e}")))?;
    control::reinjecting();
    let mut stdin = child.stdin.take();
    // Its output is read on detached threads: a grandchild (Sendmail's background delivery, a
    // wrapper's own children) may keep the pipes open long after the child exited.
    let output = collect_output(child.stdout.take(), child.stderr.take());
    let (written, status) = std::thread::scope(|s| {
        let writer = s.spawn(move || {
            let stdin = stdin
                .as_mut()
                .ok_or_else(|| io::Error::other("no stdin pipe"))?;
            let n = write(stdin)?;
            stdin.flush()?;
            Ok::<u64, io::Error>(n)
            // stdin is dropped here: the child sees end of input.
        });
        let status = wait(&mut child);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("writer panicked")));
        (written, status)
    });
    let said = first_line(
        &output
            .recv_timeout(Duration::from_millis(500))
            .unwrap_or_default(),
    );
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            control::reinjection_failed();
            return Err(Failure::tempfail("4.3.0", e));
        }
    };
    let result = classify(prog, status, &written, &said, on_hard_failure);
    match &result {
        Ok(()) if commits => control::delivered(),
        _ => control::reinjection_failed(),
    }
    result
}

/// Waits for the child, killing it if a stop is requested. Err carries the stop reason.
///
/// A helper thread blocks in waitpid and reports at once, so the child's exit is noticed
/// without polling (polling with a 1-5 ms cap noticed a 7 ms sendmail up to milliseconds
/// late); this thread wakes every 20 ms only to look for a stop request (signal, deadline).
fn wait(child: &mut Child) -> Result<ExitStatus, String> {
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::Pid;
    use std::os::unix::process::ExitStatusExt;
    use std::sync::mpsc::{RecvTimeoutError, channel};
    let pid = i32::try_from(child.id())
        .map(Pid::from_raw)
        .map_err(|e| format!("cannot wait for the reinjection command: {e}"))?;
    let (tx, rx) = channel();
    let waiter = std::thread::Builder::new()
        .name("reinject-wait".into())
        .spawn(move || {
            // Only exits and deaths are reported without WUNTRACED: loop over anything else.
            let result = loop {
                match waitpid(pid, None) {
                    Ok(WaitStatus::Exited(_, code)) => break Ok(ExitStatus::from_raw(code << 8)),
                    Ok(WaitStatus::Signaled(_, sig, core)) => {
                        break Ok(ExitStatus::from_raw(
                            sig as i32 | if core { 0x80 } else { 0 },
                        ));
                    }
                    Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => break Err(e),
                }
            };
            let _ = tx.send(result);
        });
    if let Err(e) = waiter {
        control::kill_group(child);
        return Err(format!("cannot wait for the reinjection command: {e}"));
    }
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(Ok(status)) => return Ok(status),
            Ok(Err(e)) => {
                control::kill_group(child);
                return Err(format!("cannot wait for the reinjection command: {e}"));
            }
            Err(RecvTimeoutError::Disconnected) => {
                control::kill_group(child);
                return Err("cannot wait for the reinjection command: waiter gone".into());
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        if let Some(reason) = control::stop_requested() {
            // Kill it, then leave at once: the writer may be blocked on a pipe that a
            // grandchild still holds, and exiting ends every thread of ours.
            control::kill_group(child);
            control::reinjection_failed();
            control::exit_tempfail(&format!("{reason}; reinjection killed before it finished"));
        }
    }
}

fn classify(
    prog: &str,
    status: ExitStatus,
    written: &io::Result<u64>,
    said: &str,
    on_hard_failure: HardFailure,
) -> Result<(), Failure> {
    use std::os::unix::process::ExitStatusExt;
    let detail = if said.is_empty() {
        String::new()
    } else {
        format!(": {said}")
    };
    match status.code() {
        Some(0) => match written {
            Ok(_) => Ok(()),
            // It exited 0 without reading the whole message: it may hold a truncated copy, but
            // only a retry guarantees the whole one is delivered.
            Err(e) => Err(Failure::tempfail(
                "4.3.0",
                format!("{prog} exited 0 before reading the whole message ({e})"),
            )),
        },
        Some(code @ (65 | 66 | 67 | 68 | 69 | 77)) => {
            let reason = format!("{prog} refused the message, exit {code}{detail}");
            Err(match on_hard_failure {
                HardFailure::Tempfail => Failure::tempfail("4.3.0", reason),
                HardFailure::Bounce => Failure::bounce("5.3.0", reason),
            })
        }
        Some(code) => Err(Failure::tempfail(
            "4.3.0",
            format!("{prog} failed, exit {code}{detail}"),
        )),
        None => Err(Failure::tempfail(
            "4.3.0",
            format!(
                "{prog} was killed by signal {}{detail}",
                status.signal().unwrap_or(0)
            ),
        )),
    }
}

/// Up to 4 KB of the child's stdout then stderr, delivered on a channel when both are closed.
fn collect_output(
    out: Option<std::process::ChildStdout>,
    err: Option<std::process::ChildStderr>,
) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = Vec::new();
        let err_thread = std::thread::spawn(move || {
            let mut t = Vec::new();
            if let Some(mut e) = err {
                let _ = (&mut e).take(4096).read_to_end(&mut t);
                let _ = io::copy(&mut e, &mut io::sink());
            }
            t
        });
        if let Some(mut o) = out {
            let _ = (&mut o).take(4096).read_to_end(&mut text);
            let _ = io::copy(&mut o, &mut io::sink());
        }
        text.extend(err_thread.join().unwrap_or_default());
        let _ = tx.send(text);
    });
    rx
}

fn first_line(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_keeps_null_sender_and_dash_recipients_as_addresses() {
        let v = argv(
            &["/usr/sbin/sendmail".into(), "-i".into()],
            "",
            &["-oQ/tmp/x@example.com".into()],
        );
        assert_eq!(
            v,
            [
                "/usr/sbin/sendmail",
                "-i",
                "-f",
                "",
                "--",
                "-oQ/tmp/x@example.com"
            ]
        );
    }

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into(), "sh".into()]
    }

    fn feed(argv: &[String], hard: HardFailure) -> Result<(), Failure> {
        run(argv, hard, &mut |w| {
            w.write_all(b"Subject: t\n\nbody\n")?;
            Ok(17)
        })
    }

    #[test]
    fn exit_codes_map_to_ours() {
        use crate::control::Exit;
        assert!(feed(&sh("cat >/dev/null"), HardFailure::Tempfail).is_ok());
        let code = |s: &str, h| feed(&sh(s), h).unwrap_err();
        let f = code(
            "cat >/dev/null; echo 'no way' >&2; exit 69",
            HardFailure::Tempfail,
        );
        assert_eq!((f.exit, f.status), (Exit::TempFail, "4.3.0"));
        assert!(f.reason.contains("exit 69: no way"), "{}", f.reason);
        let f = code("cat >/dev/null; exit 69", HardFailure::Bounce);
        assert_eq!((f.exit, f.status), (Exit::Unavailable, "5.3.0"));
        assert_eq!(code("exit 75", HardFailure::Bounce).exit, Exit::TempFail);
        assert_eq!(code("exit 1", HardFailure::Bounce).exit, Exit::TempFail);
        let f = code("kill -9 $$", HardFailure::Bounce);
        assert!(f.reason.contains("signal 9"), "{}", f.reason);
        let f = feed(&["/nonexistent/sendmail".into()], HardFailure::Tempfail).unwrap_err();
        assert_eq!((f.exit, f.status), (Exit::TempFail, "4.3.5"));
    }
}
