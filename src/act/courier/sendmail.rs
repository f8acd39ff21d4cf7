//! The sendmail courier: hands a copy of the message back to the MTA with
//! `COMMAND... -f SENDER -- RCPT...` (`[reinject] command`).
//!
//! Contract: argv only, never a shell and never `-t`. The null sender is passed as `-f ""`, which
//! Postfix's and Sendmail's sendmail keep null. Our environment is passed on unchanged (Postfix's
//! pipe sets MAIL_CONFIG, which selects the instance to inject into). Success is exit 0 after the
//! whole message was written; anything else is a [`Failure`]: 75 for temporary or unknown
//! trouble, and for the hard codes (65, 66, 67, 68, 69, 77) 75 or 69 as `on_hard_failure` says.
//! A stop request (signal, deadline) while the child runs kills it: an unfinished sendmail
//! queues nothing, so the MTA's retry cannot deliver twice.

use crate::act::courier::traits::{Courier, Feed, Origin, Refusal};
use crate::config::delivery::HardFailure;
use crate::outcome::Failure;
use crate::process;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, Command, ExitStatus, Stdio};

/// The sendmail courier: the command (`[reinject] command`, e.g. `/usr/sbin/sendmail -i`) and
/// what its hard failures become.
#[derive(Debug, Clone)]
pub struct Sendmail {
    command: Vec<String>,
    on_hard_failure: HardFailure,
}

impl Sendmail {
    pub fn new(command: &[String], on_hard_failure: HardFailure) -> Sendmail {
        Sendmail {
            command: command.to_vec(),
            on_hard_failure,
        }
    }
}

impl Courier for Sendmail {
    fn deliver(
        &self,
        sender: &str,
        recipients: &[String],
        _origin: Origin,
        message: Feed,
    ) -> Result<Vec<Refusal>, Failure> {
        // sendmail(1) has no way to hand on the client: the reinjected copy comes from pickup.
        let argv = argv(&self.command, sender, recipients);
        run_as(&argv, self.on_hard_failure, true, message).map(|()| Vec::new())
    }

    fn send(&self, sender: &str, recipients: &[String], message: Feed) -> Result<(), Failure> {
        let argv = argv(&self.command, sender, recipients);
        run_as(&argv, self.on_hard_failure, false, message)
    }

    fn describe(&self, sender: &str, recipients: &[String]) -> String {
        format!(
            "reinject argv {:?}",
            argv(&self.command, sender, recipients)
        )
    }
}

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
/// `commits` says whether success delivers the message (the point of no return, recorded for
/// the stop path). A quarantine copy sent to a mailbox does not: a retry after a later failure
/// only duplicates that copy.
fn run_as(
    argv: &[String],
    on_hard_failure: HardFailure,
    commits: bool,
    write: Feed,
) -> Result<(), Failure> {
    let stage = if commits { "reinject" } else { "send" };
    crate::timings::time(stage, || run_timed(argv, on_hard_failure, commits, write))
}

/// One thread does it all (no writer, reader or waiter threads: each would cost a run more
/// than the stub sendmail of the benchmarks takes to start). It writes the message while
/// reading what the child says (one pipe for its stdout and stderr), so a child that talks
/// before it reads cannot deadlock us; it learns of the exit from the end of that output, and
/// only if something else keeps the pipe open, from a 10 ms check. A stop request (signal,
/// deadline) kills the child's group from the signal thread (process::spawn_tracked), which
/// ends any write or wait here.
fn run_timed(
    argv: &[String],
    on_hard_failure: HardFailure,
    commits: bool,
    write: Feed,
) -> Result<(), Failure> {
    let prog = &argv[0];
    let cannot = |e: io::Error| Failure::tempfail("4.3.5", format!("cannot run {prog}: {e}"));
    let (output, out_w) = io::pipe().map_err(cannot)?;
    let err_w = out_w.try_clone().map_err(cannot)?;
    let mut cmd = Command::new(prog);
    cmd.args(&argv[1..])
        // Its own process group: a stop kills sendmail's helpers (postdrop) too, so nothing we
        // started can finish a submission after we have told the MTA to retry.
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(out_w)
        .stderr(err_w);
    let spawned = process::spawn_tracked(&mut cmd);
    // Our copies of the output pipe's write end must go, or we never see its end.
    drop(cmd);
    let mut child = match spawned {
        Ok(c) => c,
        // Stopping (after an earlier group was delivered, or about to exit): start nothing.
        Err(process::NotSpawned::Stopping(reason)) => {
            return Err(Failure::tempfail("4.3.0", reason));
        }
        Err(process::NotSpawned::Failed(e)) => return Err(cannot(e)),
    };
    let mut pump = Pump {
        pid: Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX)),
        input: child.stdin.take(),
        output: Some(output),
        said: Vec::new(),
    };
    let written = pump.feed(write);
    let exited = pump.finish();
    if written.is_err() || !matches!(exited, Ok(WaitStatus::Exited(_, 0))) {
        // A failure: whatever of its group is still running (a helper holding part of the
        // message, or all of it) must not submit it after we report the failure. The child is
        // not reaped yet, so its group id cannot have been reused.
        process::kill_group_of(pump.pid.as_raw());
    }
    process::untrack();
    let status = match exited.and_then(|_| child.wait()) {
        Ok(s) => s,
        Err(e) => {
            process::kill_group(&mut child);
            process::reinjection_failed();
            return Err(Failure::tempfail(
                "4.3.0",
                format!("cannot wait for {prog}: {e}"),
            ));
        }
    };
    let said = first_line(&pump.said);
    let result = classify(prog, status, &written, &said, on_hard_failure);
    match &result {
        Ok(()) if commits => process::delivered(),
        // Back to work: a copy that does not deliver the message, or a failure.
        _ => process::reinjection_failed(),
    }
    // A stop killed it: exit 75 now, unless someone already has the message (then the
    // caller logs these recipients as not delivered, and the run ends with 0).
    if result.is_err() {
        process::exit_if_stopped_before_delivery();
    }
    result
}

/// The child's ends of the conversation, driven from one thread with poll(2).
struct Pump {
    pid: Pid,
    input: Option<ChildStdin>,
    output: Option<io::PipeReader>,
    /// The start of what it said (stdout and stderr), at most [`SAID`] bytes.
    said: Vec<u8>,
}

/// How much of the child's output we keep (the rest is read and dropped).
const SAID: usize = 4096;
/// How often to look for an exit nobody told us about (the output pipe held open by a
/// grandchild, such as a sendmail delivering in the background).
const TICK: u16 = 10;

impl Pump {
    /// Writes the message, then closes the child's stdin. If the message could not be written
    /// whole, the child's group is killed first: closing stdin would tell whoever in it holds
    /// the pipe that the message is complete (a sendmail given -i would queue what it has).
    fn feed(&mut self, write: Feed) -> io::Result<u64> {
        let result = match &self.input {
            None => Err(io::Error::other("no stdin pipe")),
            Some(stdin) => match nix::fcntl::fcntl(stdin, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)) {
                Ok(_) => write(self),
                Err(e) => Err(e.into()),
            },
        };
        if result.is_err() {
            process::kill_group_of(self.pid.as_raw());
        }
        self.input = None; // the child sees end of input
        result
    }

    /// Waits, reading its output meanwhile, until the child has exited (not reaped: see
    /// process::spawn_tracked), and says how. Its output is read to the end unless something
    /// else holds the pipe.
    fn finish(&mut self) -> io::Result<WaitStatus> {
        while self.output.is_some() {
            self.wait(false)?;
            if self.output.is_some()
                && let Some(how) = self.exited(true)?
            {
                self.drain();
                return Ok(how);
            }
        }
        // Output closed: it has exited or is about to (or closed its stdout and stderr early,
        // which a stop request would still end by killing it).
        self.exited(false)?
            .ok_or_else(|| io::Error::other("waitid returned without an exit"))
    }

    /// Polls for room in the child's stdin (if `writing`) and for output (read at once).
    /// Returns whether anything happened before the tick ran out.
    fn wait(&mut self, writing: bool) -> io::Result<bool> {
        let (input_ready, output_ready) = {
            let mut fds = Vec::with_capacity(2);
            if writing && let Some(i) = &self.input {
                fds.push(PollFd::new(i.as_fd(), PollFlags::POLLOUT));
            }
            if let Some(o) = &self.output {
                fds.push(PollFd::new(o.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::from(TICK)) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            let input_ready = writing && self.input.is_some() && ready(&fds[0]);
            let output_ready = self.output.is_some() && fds.last().is_some_and(ready);
            (input_ready, output_ready)
        };
        if output_ready {
            self.read_output();
        }
        Ok(input_ready || output_ready)
    }

    /// One read of what the child said: the pipe is readable or at its end.
    fn read_output(&mut self) {
        let Some(o) = self.output.as_mut() else {
            return;
        };
        let mut buf = [0u8; 4096];
        match o.read(&mut buf) {
            Ok(0) => self.output = None,
            Ok(n) => {
                let keep = n.min(SAID.saturating_sub(self.said.len()));
                self.said.extend_from_slice(&buf[..keep]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => self.output = None,
        }
    }

    /// What is already in the output pipe after the child exited, without waiting for more.
    fn drain(&mut self) {
        for _ in 0..64 {
            let readable = match &self.output {
                Some(o) => {
                    let mut fds = [PollFd::new(o.as_fd(), PollFlags::POLLIN)];
                    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
                }
                None => false,
            };
            if !readable {
                break;
            }
            self.read_output();
        }
        self.output = None;
    }

    /// Has the child exited, and how? Leaves it a zombie for `Child::wait`. With `poll_only`
    /// false, blocks until it has.
    fn exited(&self, poll_only: bool) -> io::Result<Option<WaitStatus>> {
        let mut flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
        if poll_only {
            flags |= WaitPidFlag::WNOHANG;
        }
        loop {
            match waitid(Id::Pid(self.pid), flags) {
                Ok(WaitStatus::StillAlive) => return Ok(None),
                Ok(how) => return Ok(Some(how)),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Writing to the child: when its stdin pipe is full, wait for room (reading its output
/// meanwhile); a child that exited without reading everything fails the write.
impl Write for Pump {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(stdin) = self.input.as_mut() else {
                return Err(io::Error::other("stdin already closed"));
            };
            match stdin.write(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !self.wait(true)? && self.exited(true)?.is_some() {
                        return Err(io::Error::new(
                            io::ErrorKind::BrokenPipe,
                            "it exited without reading the whole message",
                        ));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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

    #[test]
    fn the_courier_delivers_and_sends_with_the_same_argv() {
        let dir = tempfile::tempdir().unwrap();
        let got = dir.path().join("got");
        let script = format!("printf '%s|' \"$@\" >> '{}'; cat >/dev/null", got.display());
        let courier = Sendmail::new(&sh(&script), HardFailure::Tempfail);
        let rcpts = ["-x@example.com".to_string()];
        let msg = &mut |w: &mut dyn Write| w.write_all(b"m\n").map(|()| 2);
        assert!(
            courier
                .deliver("a@example.org", &rcpts, Origin::NONE, msg)
                .is_ok()
        );
        assert!(courier.send("", &rcpts, msg).is_ok());
        assert_eq!(
            std::fs::read_to_string(&got).unwrap(),
            "-f|a@example.org|--|-x@example.com|-f||--|-x@example.com|"
        );
        assert_eq!(
            courier.describe("", &rcpts),
            format!("reinject argv {:?}", argv(&sh(&script), "", &rcpts))
        );
    }

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into(), "sh".into()]
    }

    fn feed(argv: &[String], hard: HardFailure) -> Result<(), Failure> {
        run_as(argv, hard, true, &mut |w| {
            w.write_all(b"Subject: t\n\nbody\n")?;
            Ok(17)
        })
    }

    /// Runs `feed` on a thread: a deadlock fails the test instead of hanging it.
    fn feed_within(
        secs: u64,
        argv: Vec<String>,
        msg: Vec<u8>,
    ) -> (Result<(), Failure>, std::time::Duration) {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let t = std::time::Instant::now();
            let r = run_as(&argv, HardFailure::Tempfail, false, &mut |w| {
                w.write_all(&msg)?;
                Ok(msg.len() as u64)
            });
            let _ = tx.send((r, t.elapsed()));
        });
        rx.recv_timeout(std::time::Duration::from_secs(secs))
            .expect("the reinjection did not finish: deadlocked?")
    }

    #[test]
    fn a_command_that_talks_before_it_reads_does_not_deadlock() {
        // 256 KiB on stderr before it reads a byte: more than a pipe holds, both ways.
        let (r, _) = feed_within(
            20,
            sh("head -c 262144 /dev/zero >&2; cat >/dev/null; echo done"),
            vec![b'm'; 1 << 20],
        );
        assert!(r.is_ok(), "{r:?}");
        let (r, _) = feed_within(
            20,
            sh("echo 'first words' >&2; head -c 262144 /dev/zero; cat >/dev/null; exit 75"),
            vec![b'm'; 1 << 20],
        );
        let f = r.unwrap_err();
        assert!(f.reason.contains("exit 75: first words"), "{}", f.reason);
    }

    #[test]
    fn an_exit_is_seen_while_a_grandchild_holds_the_output_pipe() {
        // Sendmail delivering in the background keeps our pipes open after it exited.
        let (r, took) = feed_within(
            20,
            sh("cat >/dev/null; echo queued; sleep 5 & exit 0"),
            b"Subject: t\n\nbody\n".to_vec(),
        );
        assert!(r.is_ok(), "{r:?}");
        assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
    }

    #[test]
    fn an_exit_without_reading_is_seen_while_a_grandchild_holds_stdin() {
        // Nobody reads the rest of a 1 MiB message, but the pipe stays open: no EPIPE comes.
        // (Through fd 3: an asynchronous list of sh gets /dev/null as its stdin.)
        let (r, took) = feed_within(
            20,
            sh("exec 3<&0; sleep 5 <&3 & exit 0"),
            vec![b'm'; 1 << 20],
        );
        let f = r.unwrap_err();
        assert!(
            f.reason.contains(
                "exited 0 before reading the whole message (it exited without reading the whole message)"
            ),
            "{}",
            f.reason
        );
        assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
    }

    #[test]
    fn a_helper_holding_part_of_the_message_is_killed_when_the_write_fails() {
        // The command exits 0 at once; a helper in its group keeps stdin and would read what
        // reached the pipe (64 KiB of 1 MiB) once we close it, as if that were the message.
        let dir = tempfile::tempdir().unwrap();
        let got = dir.path().join("got");
        let script = format!(
            "exec 3<&0; (sleep 0.5; cat <&3 > '{}') & exit 0",
            got.display()
        );
        let (r, _) = feed_within(20, sh(&script), vec![b'm'; 1 << 20]);
        assert!(r.is_err(), "{r:?}");
        std::thread::sleep(std::time::Duration::from_millis(1500));
        assert!(
            !got.exists(),
            "a helper read {:?} bytes after the failure",
            std::fs::metadata(&got).map(|m| m.len())
        );
    }

    #[test]
    fn exit_codes_map_to_ours() {
        use crate::outcome::Exit;
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
