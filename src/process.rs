//! The only process-wide state of pipescan: everything that can end a run early (signals, our
//! deadline, panics) and the one stop path; the reinjection child to kill on a stop and the run
//! phase that stop path reads; the once-only status line; privileges (dropping root, and
//! whether this is the static build); the guard around third-party MIME parsers.
//!
//! Contract (DESIGN.md §1): a signal, a panic or the deadline before any reinjection succeeded
//! exits 75 so the MTA keeps the message. A reinjection in progress is killed first, with its
//! process group (a half-fed sendmail queues nothing; one whose input merely ended would queue
//! what it got), and the main thread, which sees whether it had already succeeded, exits 75
//! (see [`spawn_tracked`]). After a reinjection succeeded the message is delivered: exiting 75
//! would deliver it twice, so we log and exit 0 instead. The phase is for this stop path only:
//! the run's own decisions (what to do after a failed group) use the deliveries it counted
//! ([`crate::act::courier::traits::Delivered`]). [`exit_tempfail`] (with the stop path and the
//! panic hook behind it) is the only place that calls `std::process::exit`; `main` returns its
//! exit code.

use crate::outcome::Exit;
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

const WORKING: u8 = 0;
const REINJECTING: u8 = 1;
const DELIVERED: u8 = 2;

static PHASE: AtomicU8 = AtomicU8::new(WORKING);
static STATUS_WRITTEN: AtomicBool = AtomicBool::new(false);
static STOP: Mutex<Option<String>> = Mutex::new(None);

/// Writes the one status line to stdout (only the first call of the run writes): Postfix
/// reads the start of our output as the reason (DESIGN.md §1). The line itself comes from
/// [`crate::outcome::Failure::line`] or the caller.
pub fn status_line(line: &str) {
    if !STATUS_WRITTEN.swap(true, Ordering::SeqCst) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// A reinjection child is running: a stop request must go through the main thread.
pub fn reinjecting() {
    let _ = PHASE.compare_exchange(WORKING, REINJECTING, Ordering::SeqCst, Ordering::SeqCst);
}

/// A reinjection finished without success and nothing was delivered yet.
pub fn reinjection_failed() {
    let _ = PHASE.compare_exchange(REINJECTING, WORKING, Ordering::SeqCst, Ordering::SeqCst);
}

/// A reinjection succeeded: from now on the message counts as delivered.
pub fn delivered() {
    PHASE.store(DELIVERED, Ordering::SeqCst);
}

/// For the stop path only: the run decides from the deliveries it counted.
fn is_delivered() -> bool {
    PHASE.load(Ordering::SeqCst) == DELIVERED
}

/// A reinjection just failed: if a stop request killed it and nothing was delivered yet, exit
/// 75 now. Otherwise (no stop, or someone already has the message) the caller goes on, logs
/// these recipients as not delivered, and the run ends with 0.
pub fn exit_if_stopped_before_delivery() {
    if !is_delivered()
        && let Some(reason) = stop_requested()
    {
        exit_tempfail(&format!("{reason}; reinjection killed before it finished"));
    }
}

/// A pending stop request (signal or deadline), for the main thread's wait loops.
pub fn stop_requested() -> Option<String> {
    STOP.lock().map(|s| s.clone()).unwrap_or(None)
}

/// Ends the run from any thread: see the module contract.
fn stop(reason: String) {
    // A reinjection in progress is killed first, whatever the phase: exiting would end its
    // input, and a sendmail given -i queues whatever it got by then. The request is recorded
    // under TRACKED's lock (always taken before STOP's): a reinjection being started now is
    // either not started at all or tracked, and then killed here (see [`spawn_tracked`]).
    let killed = {
        let t = TRACKED.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(mut s) = STOP.lock() {
            s.get_or_insert(reason.clone());
        }
        t.is_some_and(kill_group_of)
    };
    let phase = PHASE.load(Ordering::SeqCst);
    if phase == REINJECTING {
        // The main thread sees the child gone, finds the stop request and exits 75 (or goes on
        // if the child had already succeeded). If it cannot within 10 s, exit here, with
        // whatever is true by then.
        std::thread::sleep(Duration::from_secs(10));
    }
    // Killed after an earlier group was delivered: this one was for other recipients.
    let also = if killed && phase == DELIVERED {
        "; the reinjection for the remaining recipients was killed: NOT delivered to them"
    } else {
        ""
    };
    end(&reason, also)
}

/// The process group of the running reinjection, while it is not reaped (see [`spawn_tracked`]).
static TRACKED: Mutex<Option<i32>> = Mutex::new(None);

/// Why [`spawn_tracked`] started nothing.
#[derive(Debug)]
pub enum NotSpawned {
    /// A stop was requested (signal, deadline): start nothing new.
    Stopping(String),
    Failed(std::io::Error),
}

/// Starts a reinjection child (`cmd` must use `process_group(0)`) and tracks it, so that a stop
/// request kills its group. One step as far as [`stop`] is concerned: either the stop comes
/// first and nothing is started, or the child is tracked before the stop looks, and killed.
/// The phase becomes "reinjecting". The caller must [`untrack`] the child before reaping it,
/// so that a stop never signals a pid that may have been reused.
pub fn spawn_tracked(cmd: &mut std::process::Command) -> Result<std::process::Child, NotSpawned> {
    let mut t = TRACKED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(reason) = stop_requested() {
        return Err(NotSpawned::Stopping(reason));
    }
    reinjecting();
    match cmd.spawn() {
        Ok(child) => {
            *t = i32::try_from(child.id()).ok();
            Ok(child)
        }
        Err(e) => {
            reinjection_failed();
            Err(NotSpawned::Failed(e))
        }
    }
}

/// The tracked child has exited (not yet reaped) or is being killed by its owner.
pub fn untrack() {
    *TRACKED.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// SIGKILL to a process group; true if it was sent.
pub fn kill_group_of(pgid: i32) -> bool {
    use nix::sys::signal::{Signal, killpg};
    killpg(nix::unistd::Pid::from_raw(pgid), Signal::SIGKILL).is_ok()
}

/// Kills the tracked child's group, if there is one, from an exit path. It tries the lock for
/// up to 100 ms instead of waiting for it: a panic inside [`spawn_tracked`] runs the panic
/// hook on the thread that holds it.
fn kill_tracked() {
    for _ in 0..100 {
        match TRACKED.try_lock() {
            Ok(t) => {
                // Holding the lock: the owner cannot untrack and reap the child meanwhile.
                if let Some(pid) = *t {
                    kill_group_of(pid);
                }
                return;
            }
            Err(std::sync::TryLockError::Poisoned(p)) => {
                if let Some(pid) = *p.into_inner() {
                    kill_group_of(pid);
                }
                return;
            }
            Err(std::sync::TryLockError::WouldBlock) => {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// Exits 75 (the MTA keeps the message), killing a reinjection in progress first. Once the
/// message was delivered to someone, 75 would deliver it again: then it logs and exits 0.
pub fn exit_tempfail(reason: &str) -> ! {
    end(reason, "")
}

/// [`exit_tempfail`]; `also` is added to the log line of a run that exits 0.
fn end(reason: &str, also: &str) -> ! {
    kill_tracked();
    if is_delivered() {
        crate::log::warn(&format!(
            "{reason} after the message was reinjected: exiting 0 to avoid a duplicate{also}"
        ));
        std::process::exit(0);
    }
    status_line(&format!("4.3.0 pipescan: {reason}"));
    crate::log::warn(&format!("{reason}: exit 75, the MTA keeps the message"));
    std::process::exit(Exit::TempFail.code().into());
}

/// Turns panics (in any thread) into exit 75, or 0 once delivered.
/// Output of the commands a person runs (check-config, quarantine list, release, import): a
/// reader that went away (`pipescan check-config | head`) ends the command quietly, as it ends
/// any Unix tool, instead of a panic. Never used for a message (`--stdout` reports a lost
/// reader as a failure: the MTA must retry).
pub fn say(text: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(text).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("pipescan: cannot write to stdout: {e}");
    }
}

/// [`say`] with a line break.
pub fn sayln(text: std::fmt::Arguments) {
    say(format_args!("{text}\n"));
}

pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        // The banned-files walk catches parser panics itself (a message the parser cannot
        // read is UNCHECKED, not a reason to retry for days).
        if in_guarded_parse() {
            return;
        }
        let msg = format!("internal error: {info}").replace('\n', " ");
        kill_tracked();
        if is_delivered() {
            crate::log::warn(&format!("{msg} (after delivery: exiting 0)"));
            std::process::exit(0);
        }
        status_line("4.3.0 pipescan: internal error, message kept for retry");
        crate::log::warn(&msg);
        std::process::exit(Exit::TempFail.code().into());
    }));
}

/// SIGTERM, SIGINT and SIGHUP end the run with 75 (or 0 once delivered), and so does our own
/// time limit `deadline` for the whole run: a timer raises SIGALRM when it runs out. One thread
/// waits for all four (a run starts no other thread unless it scans). SIGXFSZ (a file-size
/// limit) is caught so that the write fails with an I/O error (exit 75) instead of killing us.
pub fn install_signal_handlers(deadline: Duration) -> std::io::Result<()> {
    use signal_hook::consts::{SIGALRM, SIGHUP, SIGINT, SIGTERM, SIGXFSZ};
    signal_hook::flag::register(SIGXFSZ, std::sync::Arc::new(AtomicBool::new(false)))?;
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGALRM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let why = match sig {
                    SIGTERM => "interrupted by SIGTERM".to_string(),
                    SIGINT => "interrupted by SIGINT".to_string(),
                    SIGHUP => "interrupted by SIGHUP".to_string(),
                    _ => deadline_reason(deadline),
                };
                stop(why);
            }
        })?;
    if let Err(e) = arm_deadline(deadline) {
        crate::log::warn(&format!(
            "cannot arm the deadline timer ({e}): using a thread"
        ));
        start_deadline(deadline);
    }
    Ok(())
}

fn deadline_reason(limit: Duration) -> String {
    format!("deadline of {} exceeded", crate::config::units::Dur(limit))
}

/// A one-shot CLOCK_MONOTONIC timer that raises SIGALRM after `limit`. It lives until we exit.
fn arm_deadline(limit: Duration) -> nix::Result<()> {
    use nix::sys::signal::{SigEvent, SigevNotify, Signal};
    use nix::sys::time::TimeSpec;
    use nix::sys::timer::{Expiration, Timer, TimerSetTimeFlags};
    use nix::time::ClockId;
    let mut timer = Timer::new(
        ClockId::CLOCK_MONOTONIC,
        SigEvent::new(SigevNotify::SigevSignal {
            signal: Signal::SIGALRM,
            si_value: 0,
        }),
    )?;
    timer.set(
        Expiration::OneShot(TimeSpec::from_duration(limit)),
        TimerSetTimeFlags::empty(),
    )?;
    // Dropping it would delete it.
    std::mem::forget(timer);
    Ok(())
}

/// Our own time limit on a thread of its own: only when no timer can be armed, or when the
/// signal handlers could not be installed.
pub fn start_deadline(limit: Duration) {
    let _ = std::thread::Builder::new()
        .name("deadline".into())
        .spawn(move || {
            std::thread::sleep(limit);
            stop(deadline_reason(limit));
        });
}

static STATIC_BUILD: AtomicBool = AtomicBool::new(false);

/// Called first thing by the binary when it was linked statically (`crt-static`): only the
/// binary's own crate is built with that flag, so the library cannot tell by itself (see
/// [`crate::nss`] for what the static build does instead of NSS).
pub fn set_static_build(yes: bool) {
    STATIC_BUILD.store(yes, Ordering::Relaxed);
}

pub fn static_build() -> bool {
    STATIC_BUILD.load(Ordering::Relaxed)
}

/// What [`drop_root`] did, for the log.
#[derive(Debug, PartialEq, Eq)]
pub enum Privileges {
    /// Not started as root: nothing to do.
    Unprivileged,
    /// Now running as this user (uid, gid).
    Switched(String, u32, u32),
    /// Still root, and why (no user configured, the user does not exist).
    StillRoot(String),
}

/// Started as root, become `user` (its gid, its supplementary groups, then its uid) before the
/// message is touched. A missing user is not a reason to refuse or delay mail: the run goes on
/// as root and says so. A failing switch for a user that exists is an error (exit 75).
///
/// The static build never asks NSS (see [`crate::nss`]): the user and its groups come from
/// /etc/passwd and /etc/group, and a user that is not there is an error, since it may well
/// exist elsewhere (LDAP, systemd): running as root because we could not look would be wrong.
pub fn drop_root(user: &str) -> Result<Privileges, String> {
    use nix::unistd::{Gid, Uid, geteuid, getuid};
    if !geteuid().is_root() && !getuid().is_root() {
        return Ok(Privileges::Unprivileged);
    }
    if user.is_empty() {
        return Ok(Privileges::StillRoot(
            "running as root: set [general] user to an unprivileged account".into(),
        ));
    }
    let found = if static_build() {
        account_from_files(user)?
    } else {
        account_from_nss(user)?
    };
    let account = match found {
        Ok(a) => a,
        Err(still_root) => return Ok(Privileges::StillRoot(still_root)),
    };
    if account.uid == 0 {
        return Ok(Privileges::StillRoot(format!(
            "[general] user {user:?} is root: running as root"
        )));
    }
    match &account.groups {
        Some(groups) => {
            let gids: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
            nix::unistd::setgroups(&gids).map_err(|e| format!("setgroups({groups:?}): {e}"))?;
        }
        None => {
            let name = std::ffi::CString::new(user).map_err(|e| e.to_string())?;
            nix::unistd::initgroups(&name, Gid::from_raw(account.gid))
                .map_err(|e| format!("initgroups({user}): {e}"))?;
        }
    }
    nix::unistd::setgid(Gid::from_raw(account.gid))
        .map_err(|e| format!("setgid({}): {e}", account.gid))?;
    nix::unistd::setuid(Uid::from_raw(account.uid))
        .map_err(|e| format!("setuid({}): {e}", account.uid))?;
    // setuid from root sets the real, effective and saved ids: there is no way back.
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(format!(
            "still able to regain root after switching to {user}"
        ));
    }
    Ok(Privileges::Switched(
        user.to_string(),
        account.uid,
        account.gid,
    ))
}

/// A user to switch to: its groups when we looked them up ourselves (None: `initgroups`).
struct Target {
    uid: u32,
    gid: u32,
    groups: Option<Vec<u32>>,
}

/// The static build: /etc/passwd and /etc/group only. Outer error: the run cannot go on.
fn account_from_files(user: &str) -> Result<Result<Target, String>, String> {
    use crate::nss;
    match nss::account(nss::PASSWD.as_ref(), nss::GROUP.as_ref(), user) {
        Ok(Some(a)) => Ok(Ok(Target {
            uid: a.uid,
            gid: a.gid,
            groups: Some(a.groups),
        })),
        Ok(None) => Err(nss::not_in_files(user)),
        Err(e) => Err(format!(
            "cannot read {} or {} to look up [general] user {user:?}: {e}",
            nss::PASSWD,
            nss::GROUP
        )),
    }
}

/// The dynamic build: NSS (getpwnam, then initgroups). Inner error: still root, and why.
fn account_from_nss(user: &str) -> Result<Result<Target, String>, String> {
    Ok(match nix::unistd::User::from_name(user) {
        Ok(Some(u)) => Ok(Target {
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            groups: None,
        }),
        Ok(None) => Err(format!(
            "[general] user {user:?} does not exist: running as root"
        )),
        Err(e) => Err(format!(
            "cannot look up [general] user {user:?} ({e}): running as root"
        )),
    })
}

/// Kills a child started with `process_group(0)` and everything in its group (a sendmail's
/// postdrop, a scanner wrapper's children), then reaps the child. What left the group (setsid)
/// is out of reach, as for any supervisor.
pub fn kill_group(child: &mut std::process::Child) {
    // The child is the group leader: its pid is the group id. Linux does not reuse a pid while
    // a process group still has it, so this hits only that group even if the child is gone.
    if let Ok(pid) = i32::try_from(child.id()) {
        kill_group_of(pid);
    }
    let _ = child.kill(); // already dead: an error we do not care about
    let _ = child.wait();
}

thread_local! {
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// True while this thread is inside [`guarded`]. A process-wide panic hook that exits
/// (pipescan's exits 75) runs before unwinding starts, so `catch_unwind` only helps if the
/// hook returns early when this is true.
pub fn in_guarded_parse() -> bool {
    GUARDED.with(std::cell::Cell::get)
}

/// Runs a third-party parser whose panic must not end the run (a message it cannot read is
/// UNCHECKED, not a reason to retry for days): `Err` holds the panic's text.
pub fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let outer = GUARDED.with(|g| g.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(outer));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into())
    })
}
