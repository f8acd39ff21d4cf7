//! The fault matrix (issue 8): every way the world around one pipescan run can break, with the
//! exit code and side effects DESIGN.md §1 requires. One table, one loop; every failing row is
//! reported, not just the first.
//!
//! The rule behind every row: exit 0 only after a successful reinjection or a logged discard;
//! anything pipescan cannot vouch for is 75 (the MTA keeps the message), with one status line on
//! stdout, nothing half-delivered (a hung sendmail is killed, not abandoned) and no quarantine
//! file half-written.
//!
//! The baseline rows use the real spamd and clamd (PIPESCAN_SPAMD, PIPESCAN_CLAMD, from
//! scripts/mailstack); fake servers appear only to break something. Full and read-only disks are
//! small tmpfs mounts (these tests run as root, as CI does; `chmod 000` means nothing to root);
//! a file-size limit is `ulimit -f` in a `sh -c` wrapper.
//!
//! Rows marked `Elsewhere` are cases another test already drives; the table names it (and the
//! loop checks that the test still exists), so this table stays the whole matrix.

mod common;

use common::table::*;
use common::*;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The message a row feeds on stdin.
#[derive(Clone, Copy)]
enum Input {
    Plain,
    /// GTUBE: spam for the real spamd.
    Gtube,
    /// EICAR as a base64 attachment: a virus for the real clamd.
    Eicar,
    /// A Windows program attachment: banned (discarded and quarantined) by default.
    Banned,
    /// PLAIN with this many more body bytes.
    Big(usize),
    /// The first bytes of a header, and then stdin closes.
    Truncated,
}

/// A scanner server as a row breaks it.
#[derive(Clone, Copy)]
enum Srv {
    /// Nothing listens on the port.
    Refused,
    Fault(Misbehave),
    /// The real server behind a proxy that holds its answer back this many ms.
    Slow(u64),
}

/// A directory (general.tempdir or quarantine.directory) as a row breaks it.
#[derive(Clone, Copy)]
enum Disk {
    /// A read-only tmpfs: EROFS.
    ReadOnly,
    /// A path below a regular file: ENOTDIR.
    UnderFile,
    /// A 64 KiB tmpfs: ENOSPC.
    Full,
    /// `ulimit -f 16` (16 KiB files): SIGXFSZ, caught, then EFBIG.
    FileSizeLimit,
    /// Mode 0777 without the sticky bit: anyone may remove or replace what is in it.
    Open,
    /// Mode 1777, like /tmp: shared, but nobody may remove another's files.
    Sticky,
}

/// When a row interrupts the run.
#[derive(Clone, Copy)]
enum Phase {
    /// stdin is still open: half a header arrived.
    Reading,
    /// A scanner server has the request and does not answer.
    Scanning,
    /// The fake sendmail has the message and hangs.
    Reinjecting,
}

#[derive(Clone, Copy)]
enum Fault {
    /// Nothing is broken: the real spamd and clamd.
    None,
    /// spamd broken, the real clamd beside it.
    Spamd(Srv),
    /// clamd broken, the real spamd beside it.
    Clamd(Srv),
    /// Both scanners hang.
    BothHang,
    /// FAKE_SENDMAIL_EXIT for every call: a code, "kill".
    Sendmail(&'static str),
    /// The first sendmail call succeeds; later calls exit with this.
    SendmailFromSecond(&'static str),
    /// `[reinject] command` names a program that does not exist.
    SendmailMissing,
    Tempdir(Disk),
    Quarantine(Disk),
    /// This signal, at this phase.
    Signal(&'static str, Phase),
    /// `[general] deadline = "1s"` runs out at this phase.
    Deadline(Phase),
    /// The config file holds these bytes.
    ConfigText(&'static [u8]),
    /// `-c` names a directory.
    ConfigDir,
    /// The config file has this mode.
    ConfigMode(u32),
    /// `[loop_marker] key_file` names a good key in a file of this mode.
    KeyFileMode(u32),
    /// fd 0 is not open at all.
    StdinClosed,
    /// `--stdout` (procmail) mode and the reader of stdout is gone.
    StdoutGone,
    /// The static binary scripts/build ships (this crate's src/main.rs linked with
    /// `+crt-static`, see [`static_bin`]), started as root with `[general] user` set, under
    /// Debian 12's stock /etc/nsswitch.conf (`group: files systemd`, which made glibc load
    /// libnss_systemd into the static process and crash it with SIGSEGV).
    StaticAsRoot,
    /// Driven by another test: (file, test function, the side effects it checks).
    Elsewhere(&'static str, &'static str, &'static str),
}

/// What sendmail must have seen.
#[derive(Clone, Copy)]
enum Sm {
    /// Never called.
    No,
    /// One call per entry; each got the input unchanged behind exactly these added header
    /// fields (unfolded; a field ending in '*' is matched as a prefix: spamd's numbers vary).
    Got(&'static [&'static [&'static str]]),
    /// Called once with the whole message, then killed by pipescan (and reaped): no sendmail
    /// process of ours survives the run.
    Killed,
}

struct Case {
    name: &'static str,
    fault: Fault,
    input: Input,
    /// Config merged into the row's Filter.
    extra: &'static str,
    exit: i32,
    /// The one status line on stdout, '*' matching anything; "" = stdout stays empty.
    status: &'static str,
    sendmail: Sm,
    /// Files in the quarantine directory after the run.
    quarantined: usize,
    /// A substring of the log (stderr); "" = not checked.
    log: &'static str,
}

const SCANNED: &str = "X-Virus-Scanned: pipescan at mx.test";
const PASSED: Sm = Sm::Got(&[&[SCANNED]]);
const SPAM_UNCHECKED: Sm = Sm::Got(&[&[
    SCANNED,
    "X-Pipescan-Alert: not spam-checked: spam scanner unavailable",
]]);
const VIRUS_FAILED: &str = "4.3.0 pipescan: virus scan failed, message kept for retry: clamd *";
const SPOOL: &str = "[general]\nmax_message_size = \"1K\"\n";
const NO_SPAM_TAG: &str = "[headers]\nspam_subject_tag = \"\"\n";
const SCANNERS_RS: &str = "t/scanners.rs";
const FILTER_RS: &str = "t/filter.rs";
const QUARANTINE_RS: &str = "t/quarantine.rs";

/// Shorthand for rows that only differ in a few columns.
const fn row(name: &'static str, fault: Fault, exit: i32, status: &'static str) -> Case {
    Case {
        name,
        fault,
        input: Input::Plain,
        extra: "",
        exit,
        status,
        sendmail: Sm::No,
        quarantined: 0,
        log: "",
    }
}

/// A case another test drives: its exit code, the side effects that test checks, and its name.
const fn elsewhere(
    name: &'static str,
    exit: i32,
    effects: &'static str,
    file: &'static str,
    test: &'static str,
) -> Case {
    row(name, Fault::Elsewhere(file, test, effects), exit, "")
}

static MATRIX: &[Case] = &[
    // ---- baseline: nothing broken, the real scanners ------------------------------------------
    Case {
        sendmail: PASSED,
        log: "Passed CLEAN {Relayed}",
        ..row(
            "baseline: clean mail, real spamd + clamd",
            Fault::None,
            0,
            "",
        )
    },
    Case {
        input: Input::Eicar,
        quarantined: 1,
        log: "Blocked INFECTED (Test.EICAR-NDB.UNOFFICIAL) {Discarded}",
        ..row(
            "baseline: EICAR is discarded and quarantined",
            Fault::None,
            0,
            "",
        )
    },
    // ---- spamd broken (the real clamd beside it): pass with an alert, by default ------------
    elsewhere(
        "spamd refused",
        0,
        "delivered, X-Pipescan-Alert: not spam-checked, no X-Spam-* fields; log 'spamd FAILED'; < 4 s",
        SCANNERS_RS,
        "spamd_faults_pass_with_an_alert_by_default",
    ),
    elsewhere(
        "spamd hung",
        0,
        "delivered, X-Pipescan-Alert: not spam-checked, no X-Spam-* fields; log 'spamd FAILED'; < 4 s",
        SCANNERS_RS,
        "spamd_faults_pass_with_an_alert_by_default",
    ),
    elsewhere(
        "spamd garbage",
        0,
        "delivered, X-Pipescan-Alert: not spam-checked, no X-Spam-* fields; log 'spamd FAILED'; < 4 s",
        SCANNERS_RS,
        "spamd_faults_pass_with_an_alert_by_default",
    ),
    elsewhere(
        "spamd slow drip past its timeout",
        0,
        "delivered, X-Pipescan-Alert: not spam-checked, no X-Spam-* fields; log 'spamd FAILED'; < 4 s",
        SCANNERS_RS,
        "spamd_faults_pass_with_an_alert_by_default",
    ),
    elsewhere(
        "spamd dies mid-reply",
        0,
        "delivered, X-Pipescan-Alert: not spam-checked, no X-Spam-* fields; log 'spamd FAILED'; < 4 s",
        SCANNERS_RS,
        "spamd_faults_pass_with_an_alert_by_default",
    ),
    elsewhere(
        "spamd down, spam.on_failure = tempfail",
        75,
        "'4.3.0 pipescan: spam scan failed, message kept for retry: spamd ...'",
        SCANNERS_RS,
        "spamd_faults_pass_with_an_alert_by_default",
    ),
    elsewhere(
        "spamd hung, failover to the next server",
        0,
        "delivered with the real spamd's X-Spam-Flag: YES",
        SCANNERS_RS,
        "spamd_failover_from_a_hung_server_to_the_real_one",
    ),
    Case {
        sendmail: SPAM_UNCHECKED,
        log: "spamd FAILED",
        ..row(
            "spamd refused, real clamd: delivered with the alert",
            Fault::Spamd(Srv::Refused),
            0,
            "",
        )
    },
    Case {
        input: Input::Big(400_000),
        sendmail: SPAM_UNCHECKED,
        log: "spamd FAILED",
        ..row(
            "spamd dies while the message is still being sent",
            Fault::Spamd(Srv::Fault(Misbehave::CloseAfter(4096))),
            0,
            "",
        )
    },
    Case {
        input: Input::Big(400_000),
        sendmail: SPAM_UNCHECKED,
        log: "spamd FAILED",
        ..row(
            "spamd never reads the request",
            Fault::Spamd(Srv::Fault(Misbehave::NeverRead)),
            0,
            "",
        )
    },
    Case {
        sendmail: SPAM_UNCHECKED,
        log: "spamd FAILED",
        ..row(
            "spamd answers with its own error (EX_PROTOCOL)",
            Fault::Spamd(Srv::Fault(Misbehave::Reply(
                b"SPAMD/1.0 76 Bad header line: (Content-Length mismatch)\r\n",
            ))),
            0,
            "",
        )
    },
    Case {
        sendmail: SPAM_UNCHECKED,
        log: "spamd FAILED",
        ..row(
            "spamd answers a score that is not a number",
            Fault::Spamd(Srv::Fault(Misbehave::Reply(
                b"SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: True ; lots / 5.0\r\n\r\n",
            ))),
            0,
            "",
        )
    },
    Case {
        input: Input::Gtube,
        extra: NO_SPAM_TAG,
        sendmail: Sm::Got(&[&[
            SCANNED,
            "X-Spam-Flag: YES",
            "X-Spam-Score: 100*",
            "X-Spam-Level: ****************************************************************",
            "X-Spam-Status: Yes, score=100*GTUBE=1000*",
        ]]),
        log: "Passed SPAM {Relayed}",
        ..row(
            "spamd slow (700 ms) but within its timeout: its verdict counts",
            Fault::Spamd(Srv::Slow(700)),
            0,
            "",
        )
    },
    // ---- clamd broken (the real spamd beside it): keep the message (virus.on_failure) -------
    elsewhere(
        "clamd refused",
        75,
        "one line '4.3.0 pipescan: virus scan failed, message kept for retry: clamd ...'; not delivered; < 4 s",
        SCANNERS_RS,
        "clamd_faults_keep_the_message_for_retry",
    ),
    elsewhere(
        "clamd socket missing",
        75,
        "one line '4.3.0 pipescan: virus scan failed, message kept for retry: clamd ...'; not delivered; < 4 s",
        SCANNERS_RS,
        "clamd_faults_keep_the_message_for_retry",
    ),
    elsewhere(
        "clamd hung",
        75,
        "one line '4.3.0 pipescan: virus scan failed, message kept for retry: clamd ...'; not delivered; < 4 s",
        SCANNERS_RS,
        "clamd_faults_keep_the_message_for_retry",
    ),
    elsewhere(
        "clamd garbage",
        75,
        "one line '4.3.0 pipescan: virus scan failed, message kept for retry: clamd ...'; not delivered; < 4 s",
        SCANNERS_RS,
        "clamd_faults_keep_the_message_for_retry",
    ),
    elsewhere(
        "clamd dies mid-reply",
        75,
        "one line '4.3.0 pipescan: virus scan failed, message kept for retry: clamd ...'; not delivered; < 4 s",
        SCANNERS_RS,
        "clamd_faults_keep_the_message_for_retry",
    ),
    elsewhere(
        "clamd slow drip past its timeout",
        75,
        "one line '4.3.0 pipescan: virus scan failed, message kept for retry: clamd ...'; not delivered; < 4 s",
        SCANNERS_RS,
        "clamd_faults_keep_the_message_for_retry",
    ),
    elsewhere(
        "clamd down, virus.on_failure = unchecked",
        0,
        "Passed UNCHECKED {Relayed,Tagged}: ***UNCHECKED*** subject, X-Pipescan-Alert",
        SCANNERS_RS,
        "clamd_failure_as_unchecked_passes_tagged",
    ),
    elsewhere(
        "clamd StreamMaxLength reply",
        0,
        "Passed UNCHECKED, never CLEAN; 75 with destiny unchecked = tempfail",
        SCANNERS_RS,
        "clamd_size_limit_is_unchecked_never_clean",
    ),
    elsewhere(
        "clamd dead servers, failover",
        69,
        "the real clamd's verdict: '5.7.0 message rejected: virus Test.EICAR-NDB.UNOFFICIAL'",
        SCANNERS_RS,
        "clamd_failover_from_dead_servers_to_the_real_one",
    ),
    Case {
        log: "clamd failed: clamd 127.0.0.1:",
        ..row(
            "clamd refused, real spamd: kept",
            Fault::Clamd(Srv::Refused),
            75,
            VIRUS_FAILED,
        )
    },
    Case {
        input: Input::Big(1 << 20),
        log: "clamd failed: clamd 127.0.0.1:",
        ..row(
            "clamd dies while the message is still being streamed",
            Fault::Clamd(Srv::Fault(Misbehave::CloseAfter(4096))),
            75,
            VIRUS_FAILED,
        )
    },
    Case {
        input: Input::Big(1 << 20),
        log: "clamd failed: clamd 127.0.0.1:",
        ..row(
            "clamd never reads the stream",
            Fault::Clamd(Srv::Fault(Misbehave::NeverRead)),
            75,
            VIRUS_FAILED,
        )
    },
    Case {
        log: "clamd failed: clamd 127.0.0.1:",
        ..row(
            "clamd answers with its own error",
            Fault::Clamd(Srv::Fault(Misbehave::Reply(
                b"stream: Can't create temporary file ERROR\0",
            ))),
            75,
            "4.3.0 pipescan: virus scan failed, message kept for retry: clamd *: stream: Can't create temporary file ERROR",
        )
    },
    Case {
        input: Input::Eicar,
        quarantined: 1,
        log: "Blocked INFECTED (Test.EICAR-NDB.UNOFFICIAL) {Discarded}",
        ..row(
            "clamd slow (700 ms) but within its timeout: its verdict counts",
            Fault::Clamd(Srv::Slow(700)),
            0,
            "",
        )
    },
    Case {
        log: "clamd failed: clamd 127.0.0.1:",
        ..row(
            "spamd and clamd both hung: one timeout (parallel), kept",
            Fault::BothHang,
            75,
            VIRUS_FAILED,
        )
    },
    // ---- sendmail (reinjection) -------------------------------------------------------------
    Case {
        sendmail: PASSED,
        log: "Passed CLEAN {Relayed}",
        ..row("sendmail exits 0", Fault::Sendmail("0"), 0, "")
    },
    Case {
        sendmail: PASSED,
        log: "TempFailed",
        ..row(
            "sendmail exits 1",
            Fault::Sendmail("1"),
            75,
            "4.3.0 * failed, exit 1",
        )
    },
    Case {
        sendmail: PASSED,
        log: "TempFailed",
        ..row(
            "sendmail exits 64 (EX_USAGE)",
            Fault::Sendmail("64"),
            75,
            "4.3.0 * failed, exit 64",
        )
    },
    Case {
        sendmail: PASSED,
        log: "TempFailed",
        ..row(
            "sendmail exits 69 (EX_UNAVAILABLE), on_hard_failure = tempfail",
            Fault::Sendmail("69"),
            75,
            "4.3.0 * refused the message, exit 69",
        )
    },
    Case {
        extra: "[reinject]\non_hard_failure = \"bounce\"\n",
        sendmail: PASSED,
        ..row(
            "sendmail exits 69, on_hard_failure = bounce",
            Fault::Sendmail("69"),
            69,
            "5.3.0 * refused the message, exit 69",
        )
    },
    Case {
        sendmail: PASSED,
        log: "TempFailed",
        ..row(
            "sendmail exits 75 (EX_TEMPFAIL)",
            Fault::Sendmail("75"),
            75,
            "4.3.0 * failed, exit 75",
        )
    },
    Case {
        sendmail: PASSED,
        log: "TempFailed",
        ..row(
            "sendmail exits 78 (EX_CONFIG)",
            Fault::Sendmail("78"),
            75,
            "4.3.0 * failed, exit 78",
        )
    },
    Case {
        sendmail: PASSED,
        log: "TempFailed",
        ..row(
            "sendmail killed (SIGKILL)",
            Fault::Sendmail("kill"),
            75,
            "4.3.0 * was killed by signal 9",
        )
    },
    elsewhere(
        "sendmail exits 0 without reading the message",
        75,
        "'4.3.0 ... exited 0 before reading the whole message'",
        FILTER_RS,
        "sendmail_that_does_not_read_the_message_is_not_success",
    ),
    Case {
        log: "TempFailed",
        ..row(
            "sendmail program missing",
            Fault::SendmailMissing,
            75,
            "4.3.5 cannot run /nonexistent/sendmail: *",
        )
    },
    Case {
        extra: "[general]\nlocal_domains = [\"local.example\"]\n[lists]\nblacklist_sender = [\"sender@example.net\"]\n[headers]\nspam_subject_tag = \"\"\n",
        sendmail: Sm::Got(&[
            &[
                SCANNED,
                "X-Spam-Flag: YES",
                "X-Spam-Score: 100",
                "X-Spam-Level: *",
                "X-Spam-Status: Yes, score=100 *",
            ],
            &[SCANNED],
        ]),
        log: "FAILED after other recipients were delivered",
        ..row(
            "two reinjections, the second fails: past the point of no return, 0 and a loud log",
            Fault::SendmailFromSecond("75"),
            0,
            "",
        )
    },
    Case {
        input: Input::Banned,
        extra: "[quarantine]\ndirectory = \"\"\naddress = \"quarantine@mx.test\"\n",
        sendmail: Sm::Got(&[&[
            "X-Pipescan-Quarantine: v=2 id=* len=* category=BANNED from=sender@example.net to=bob@example.com reason=*",
            "X-Envelope-From: <sender@example.net>",
            "X-Envelope-To: <bob@example.com>",
            "X-Quarantine-ID: *",
            "X-Pipescan-Category: BANNED *",
        ]]),
        ..row(
            "quarantine mailbox refuses the copy (75): nothing discarded",
            Fault::Sendmail("75"),
            75,
            "4.3.0 cannot quarantine the message: to quarantine@mx.test: *",
        )
    },
    elsewhere(
        "SIGTERM while the second group's sendmail hangs, the first delivered",
        0,
        "the second sendmail killed (not left to queue a cut message); log names the undelivered",
        "t/faults.rs",
        "a_stop_after_the_first_group_kills_the_second_groups_sendmail",
    ),
    // ---- tempdir (only used for messages above max_message_size) ----------------------------
    elsewhere(
        "tempdir missing",
        75,
        "'4.3.0 reading the message: cannot create a spool file in /nonexistent/...'; not delivered",
        FILTER_RS,
        "unwritable_tempdir_defers_a_large_message",
    ),
    Case {
        input: Input::Big(200_000),
        extra: SPOOL,
        log: "TempFailed",
        ..row(
            "tempdir read-only (tmpfs ro, EROFS)",
            Fault::Tempdir(Disk::ReadOnly),
            75,
            "4.3.0 reading the message: cannot create a spool file in *: Read-only file system*",
        )
    },
    Case {
        input: Input::Big(200_000),
        extra: SPOOL,
        ..row(
            "tempdir below a regular file (ENOTDIR)",
            Fault::Tempdir(Disk::UnderFile),
            75,
            "4.3.0 reading the message: cannot create a spool file in *: Not a directory*",
        )
    },
    Case {
        input: Input::Big(200_000),
        extra: SPOOL,
        ..row(
            "tempdir full (64 KiB tmpfs, ENOSPC)",
            Fault::Tempdir(Disk::Full),
            75,
            "4.3.0 reading the message: cannot write the spool file in *: No space left on device*",
        )
    },
    Case {
        input: Input::Big(200_000),
        extra: SPOOL,
        ..row(
            "tempdir write over RLIMIT_FSIZE (ulimit -f, EFBIG)",
            Fault::Tempdir(Disk::FileSizeLimit),
            75,
            "4.3.0 reading the message: cannot write the spool file in *: File too large*",
        )
    },
    Case {
        sendmail: PASSED,
        ..row(
            "tempdir full, message below max_message_size: not needed, delivered",
            Fault::Tempdir(Disk::Full),
            0,
            "",
        )
    },
    Case {
        log: "key general.tempdir",
        ..row(
            "tempdir mode 0777 without the sticky bit: refused before reading",
            Fault::Tempdir(Disk::Open),
            75,
            "4.3.5 pipescan: configuration error, message kept for retry: *: key general.tempdir: *mode 0777*chmod go-w*",
        )
    },
    Case {
        sendmail: PASSED,
        ..row(
            "tempdir mode 1777 (sticky, like /tmp): accepted",
            Fault::Tempdir(Disk::Sticky),
            0,
            "",
        )
    },
    // ---- quarantine (blocked mail is kept before it is discarded) ---------------------------
    Case {
        input: Input::Banned,
        log: "key quarantine.directory",
        ..row(
            "quarantine mode 0777 without the sticky bit: refused before reading",
            Fault::Quarantine(Disk::Open),
            75,
            "4.3.5 pipescan: configuration error, message kept for retry: *: key quarantine.directory: *mode 0777*",
        )
    },
    elsewhere(
        "quarantine below a regular file (ENOTDIR)",
        75,
        "'4.3.0 cannot quarantine the message: /dev/null/quarantine...'; not delivered",
        QUARANTINE_RS,
        "unwritable_quarantine_keeps_the_message",
    ),
    elsewhere(
        "quarantine write over RLIMIT_FSIZE",
        75,
        "'4.3.0 cannot quarantine the message'; not delivered; no partial file",
        QUARANTINE_RS,
        "full_quarantine_disk_keeps_the_message",
    ),
    Case {
        input: Input::Banned,
        ..row(
            "quarantine read-only (tmpfs ro, EROFS)",
            Fault::Quarantine(Disk::ReadOnly),
            75,
            "4.3.0 cannot quarantine the message: *Read-only file system*",
        )
    },
    Case {
        input: Input::Banned,
        ..row(
            "quarantine full (64 KiB tmpfs, ENOSPC): no partial file",
            Fault::Quarantine(Disk::Full),
            75,
            "4.3.0 cannot quarantine the message: *No space left on device*",
        )
    },
    // ---- signals ----------------------------------------------------------------------------
    elsewhere(
        "SIGTERM while reading stdin",
        75,
        "'4.3.0 pipescan: interrupted by SIGTERM'; not delivered",
        FILTER_RS,
        "sigterm_while_reading_defers",
    ),
    row(
        "SIGHUP while reading stdin",
        Fault::Signal("HUP", Phase::Reading),
        75,
        "4.3.0 pipescan: interrupted by SIGHUP",
    ),
    row(
        "SIGTERM mid-scan (spamd hangs)",
        Fault::Signal("TERM", Phase::Scanning),
        75,
        "4.3.0 pipescan: interrupted by SIGTERM",
    ),
    row(
        "SIGHUP mid-scan (spamd hangs)",
        Fault::Signal("HUP", Phase::Scanning),
        75,
        "4.3.0 pipescan: interrupted by SIGHUP",
    ),
    row(
        "SIGINT mid-scan (spamd hangs)",
        Fault::Signal("INT", Phase::Scanning),
        75,
        "4.3.0 pipescan: interrupted by SIGINT",
    ),
    Case {
        sendmail: Sm::Killed,
        ..row(
            "SIGTERM mid-reinjection: sendmail killed",
            Fault::Signal("TERM", Phase::Reinjecting),
            75,
            "4.3.0 pipescan: interrupted by SIGTERM; reinjection killed before it finished",
        )
    },
    Case {
        sendmail: Sm::Killed,
        ..row(
            "SIGHUP mid-reinjection: sendmail killed",
            Fault::Signal("HUP", Phase::Reinjecting),
            75,
            "4.3.0 pipescan: interrupted by SIGHUP; reinjection killed before it finished",
        )
    },
    // ---- our deadline (1 s here; Postfix's own kill would bounce) ---------------------------
    row(
        "deadline while stdin stays open",
        Fault::Deadline(Phase::Reading),
        75,
        "4.3.0 pipescan: deadline of 1s exceeded",
    ),
    row(
        "deadline mid-scan (spamd hangs, its timeout 30 s)",
        Fault::Deadline(Phase::Scanning),
        75,
        "4.3.0 pipescan: deadline of 1s exceeded",
    ),
    Case {
        sendmail: Sm::Killed,
        ..row(
            "deadline mid-reinjection (sendmail hangs): sendmail killed",
            Fault::Deadline(Phase::Reinjecting),
            75,
            "4.3.0 pipescan: deadline of 1s exceeded; reinjection killed before it finished",
        )
    },
    // ---- configuration ----------------------------------------------------------------------
    elsewhere(
        "config: unknown key, bad duration, bad destiny, TOML syntax, empty command",
        75,
        "'4.3.5 pipescan: configuration error'; log 'FILE:LINE: key KEY: ...'; not delivered; check-config 78",
        FILTER_RS,
        "config_errors_defer_mail_and_check_config_says_78",
    ),
    elsewhere(
        "config: named file missing; unknown policy bank",
        75,
        "'4.3.5 pipescan: configuration error'; log 'FILE: cannot read' / 'policy bank NOPE'; not delivered",
        FILTER_RS,
        "config_errors_defer_mail_and_check_config_says_78",
    ),
    Case {
        log: "cannot read",
        ..row(
            "config: -c names a directory",
            Fault::ConfigDir,
            75,
            "4.3.5 pipescan: configuration error, message kept for retry: *: cannot read: *",
        )
    },
    Case {
        log: "chmod go-w",
        ..row(
            "config: mode 0666 (anyone may rewrite it): refused, nothing delivered",
            Fault::ConfigMode(0o666),
            75,
            "4.3.5 pipescan: configuration error, message kept for retry: *pipescan.toml is mode 0666: writable by its group and every user*chmod go-w *pipescan.toml",
        )
    },
    Case {
        log: "chmod 640",
        ..row(
            "config: loop marker key file mode 0644 (readable by every user): refused",
            Fault::KeyFileMode(0o644),
            75,
            "4.3.5 pipescan: configuration error, message kept for retry: *: key loop_marker.key_file: *marker.key is mode 0644: readable by every user*",
        )
    },
    row(
        "config: not UTF-8",
        Fault::ConfigText(b"[general]\nhostname = \"mx\xff\"\n"),
        75,
        "4.3.5 pipescan: configuration error, message kept for retry: *",
    ),
    Case {
        log: "file:/nonexistent/lovers: cannot read",
        ..row(
            "config: a lookup table file is missing",
            Fault::ConfigText(b"[lists]\nspam_lovers = [\"file:/nonexistent/lovers\"]\n"),
            75,
            "4.3.5 pipescan: configuration error, message kept for retry: *:2: key lists.spam_lovers: file:/nonexistent/lovers: cannot read*",
        )
    },
    Case {
        log: "banned.rules",
        ..row(
            "config: a banned rule with an invalid regex",
            Fault::ConfigText(
                b"[[banned.rules]]\naction = \"ban\"\nname = \"(unclosed\"\ndescription = \"x\"\n",
            ),
            75,
            "4.3.5 pipescan: configuration error, message kept for retry: *: key banned.rules*",
        )
    },
    Case {
        log: "banned.max_depth",
        ..row(
            "config: banned.max_depth out of range",
            Fault::ConfigText(b"[banned]\nmax_depth = 0\n"),
            75,
            "4.3.5 pipescan: configuration error, message kept for retry: *:2: key banned.max_depth: *",
        )
    },
    // ---- stdin and stdout -------------------------------------------------------------------
    elsewhere(
        "stdin empty",
        75,
        "'4.3.0 empty message on stdin'; not delivered",
        FILTER_RS,
        "empty_input_is_kept_for_retry",
    ),
    row(
        "stdin not open at all (fd 0 closed)",
        Fault::StdinClosed,
        75,
        "4.3.0 empty message on stdin (input closed early?)",
    ),
    Case {
        input: Input::Truncated,
        sendmail: Sm::Got(&[&[
            SCANNED,
            "X-Pipescan-Alert: BAD HEADER SECTION, missing required header field Date",
        ]]),
        ..row(
            "stdin closed mid-header: indistinguishable from a message without a final newline, passed byte-exact",
            Fault::Sendmail("0"),
            0,
            "",
        )
    },
    row(
        "--stdout (procmail) and the reader of stdout is gone: never 0",
        Fault::StdoutGone,
        75,
        "",
    ),
    // ---- privileges -------------------------------------------------------------------------
    Case {
        sendmail: PASSED,
        log: "Passed CLEAN {Relayed}",
        ..row(
            "static binary started as root, [general] user with supplementary groups, stock Debian nsswitch.conf: drops root, delivers",
            Fault::StaticAsRoot,
            0,
            "",
        )
    },
];

// ---------------------------------------------------------------------------------------------

fn gtube() -> Vec<u8> {
    let g = concat!(
        "XJS*C4JDBQADN1.NSBN3*2IDNEN*",
        "GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
    );
    format!(
        "From: promo@example.net\nTo: bob@example.com\nSubject: you won\nDate: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <gtube@example.net>\n\n{g}\n"
    )
    .into_bytes()
}

fn with_attachment(name: &str, data: &[u8], pad: usize) -> Vec<u8> {
    format!(
        "From: mallory@example.net\nTo: bob@example.com\nSubject: invoice\nDate: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <att@example.net>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\nsee attachment\n{}\n--b1\nContent-Type: application/octet-stream; name=\"{name}\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"{name}\"\n\n{}\n--b1--\n",
        "padding line of the text part, to make the message bigger than a small disk\n"
            .repeat(pad),
        base64_lines(data)
    )
    .into_bytes()
}

fn input(i: Input) -> Vec<u8> {
    match i {
        Input::Plain => PLAIN.to_vec(),
        Input::Gtube => gtube(),
        Input::Eicar => with_attachment("invoice.com", &eicar(), 0),
        // ~200 KB: more than a 64 KiB quarantine disk holds.
        Input::Banned => with_attachment("invoice.exe", b"MZ\x90\0\x03\0\0\0", 2600),
        Input::Big(n) => {
            let mut m = PLAIN.to_vec();
            let line =
                b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/0123456789abc\n";
            while m.len() < PLAIN.len() + n {
                m.extend_from_slice(line);
            }
            m
        }
        Input::Truncated => b"From: Alice <alice@example.org>\nTo: bob@exa".to_vec(),
    }
}

/// What one run of a row left behind.
struct Run {
    out: Output,
    /// The row's fake sendmail directory.
    fake_dir: PathBuf,
    took: Duration,
    quarantine: PathBuf,
    input: Vec<u8>,
    pids_after: Vec<(u32, bool)>,
}

/// Waits (up to 10 s) until `ready` says yes.
fn wait_until(what: &str, ready: impl Fn() -> bool) -> Result<(), String> {
    let t = Instant::now();
    while !ready() {
        if t.elapsed() > Duration::from_secs(10) {
            return Err(format!("gave up waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// pipescan has installed its signal handlers (its "signals" thread exists).
fn handlers_installed(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|rd| {
            rd.flatten().any(|t| {
                std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "signals")
            })
        })
        .unwrap_or(false)
}

/// A hanging fake sendmail has the whole message (its `sleep` is running).
fn sendmail_hangs(f: &Filter) -> bool {
    let marker = format!("FAKE_SENDMAIL_DIR={}", f.dir.path().display());
    processes_with_env(&marker).into_iter().any(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    })
}

fn run_case(c: &Case) -> Result<Run, String> {
    let msg = input(c.input);
    let real = || {
        format!(
            "[spamd]\nservers = [\"{}\"]\n[clamd]\nservers = [\"{}\"]\n",
            real_spamd(),
            real_clamd()
        )
    };
    let fast = "timeout = \"1s\"\nconnect_timeout = \"500ms\"\n";
    let mut server = None;
    let mut mounts = Vec::new();
    let mut scanners = String::new();
    let mut general = String::new();
    let mut quarantine_dir = None;
    let server_addr = |s: Srv, upstream: &str, server: &mut Option<FaultServer>| match s {
        Srv::Refused => refused_addr(),
        Srv::Fault(m) => {
            let fs = FaultServer::start(m);
            let a = fs.addr.clone();
            *server = Some(fs);
            a
        }
        Srv::Slow(ms) => slow_proxy(upstream, Duration::from_millis(ms)),
    };
    let disk = |d: Disk, mounts: &mut Vec<Tmpfs>, scratch: &Path| -> PathBuf {
        match d {
            Disk::ReadOnly => {
                mounts.push(Tmpfs::mount("64k", true));
                mounts.last().unwrap().path().to_path_buf()
            }
            Disk::Full => {
                mounts.push(Tmpfs::mount("64k", false));
                mounts.last().unwrap().path().to_path_buf()
            }
            Disk::UnderFile => {
                let file = scratch.join("a-file");
                std::fs::write(&file, b"not a directory\n").unwrap();
                file.join("dir")
            }
            Disk::FileSizeLimit => scratch.to_path_buf(),
            Disk::Open | Disk::Sticky => {
                let dir = scratch.join(if matches!(d, Disk::Open) {
                    "open"
                } else {
                    "sticky"
                });
                std::fs::create_dir(&dir).unwrap();
                let mode = if matches!(d, Disk::Open) {
                    0o777
                } else {
                    0o1777
                };
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
                dir
            }
        }
    };
    let scratch = tempfile::tempdir().unwrap();
    match c.fault {
        Fault::None | Fault::Elsewhere(..) | Fault::StaticAsRoot => scanners = real(),
        Fault::Spamd(s) | Fault::Clamd(s) => {
            // The broken one, and the other real one beside it.
            let (broken, real, other, other_real) = match c.fault {
                Fault::Spamd(_) => ("spamd", real_spamd(), "clamd", real_clamd()),
                _ => ("clamd", real_clamd(), "spamd", real_spamd()),
            };
            let a = server_addr(s, &real, &mut server);
            let t = if matches!(s, Srv::Slow(_)) {
                "timeout = \"3s\"\n"
            } else {
                fast
            };
            scanners = format!(
                "[{broken}]\nservers = [\"{a}\"]\n{t}[{other}]\nservers = [\"{other_real}\"]\n"
            );
        }
        Fault::BothHang => {
            let (s1, s2) = (
                FaultServer::start(Misbehave::Hang),
                FaultServer::start(Misbehave::Hang),
            );
            scanners = format!(
                "[spamd]\nservers = [\"{}\"]\n{fast}[clamd]\nservers = [\"{}\"]\n{fast}",
                s1.addr, s2.addr
            );
            server = Some(s1);
            drop(s2); // its threads go on serving
        }
        Fault::Signal(_, Phase::Scanning) | Fault::Deadline(Phase::Scanning) => {
            let s = FaultServer::start(Misbehave::Hang);
            scanners = format!("[spamd]\nservers = [\"{}\"]\ntimeout = \"30s\"\n", s.addr);
            server = Some(s);
        }
        Fault::Tempdir(d) => {
            let dir = disk(d, &mut mounts, scratch.path());
            general = format!("tempdir = \"{}\"\n", dir.display());
        }
        Fault::Quarantine(d) => {
            let dir = disk(d, &mut mounts, scratch.path());
            quarantine_dir = Some(dir);
        }
        _ => {}
    }
    if matches!(c.fault, Fault::Deadline(_)) {
        general.push_str("deadline = \"1s\"\n");
    }
    // Merge the row's [general] keys with ours (Filter::new merges tables it knows).
    let mut extra = String::new();
    if !general.is_empty() {
        extra.push_str(&format!("[general]\n{general}"));
    }
    if let Some(q) = &quarantine_dir {
        extra.push_str(&format!("[quarantine]\ndirectory = \"{}\"\n", q.display()));
    }
    if let Fault::KeyFileMode(mode) = c.fault {
        let key = scratch.path().join("marker.key");
        std::fs::write(&key, "0123456789abcdef-fault-key\n").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
        extra.push_str(&format!(
            "[loop_marker]\nkey_file = \"{}\"\n",
            key.display()
        ));
    }
    extra.push_str(c.extra);
    extra.push('\n');
    extra.push_str(&scanners);
    let f = Filter::new(&extra);
    let quarantine = quarantine_dir.clone().unwrap_or_else(|| f.quarantine_dir());

    let mut env: Vec<(&str, String)> = Vec::new();
    let mut config = f.config.clone();
    let mut wrapper: Option<&str> = None;
    let mut program = bin();
    let mut unshare = false;
    let mut as_user = None;
    let mut stdout_gone = false;
    let mut args: Vec<String> = vec!["-f".into(), "sender@example.net".into(), "--".into()];
    args.push("bob@example.com".into());
    match c.fault {
        Fault::Sendmail(how) => env.push(("FAKE_SENDMAIL_EXIT", how.into())),
        Fault::SendmailFromSecond(code) => {
            f.wrap_sendmail(&format!(
                "if [ $n -ge 1 ]; then export FAKE_SENDMAIL_EXIT={code}; fi"
            ));
            args.pop();
            args.extend(["x@local.example".into(), "y@remote.example".into()]);
        }
        Fault::SendmailMissing => f.set_reinject_command(&["/nonexistent/sendmail", "-i"]),
        Fault::Signal(_, Phase::Reinjecting) | Fault::Deadline(Phase::Reinjecting) => {
            f.wrap_sendmail("export FAKE_SENDMAIL_EXIT=hang");
        }
        Fault::Tempdir(Disk::FileSizeLimit) => wrapper = Some("ulimit -f 16; exec \"$0\" \"$@\""),
        Fault::StdinClosed => wrapper = Some("exec \"$0\" \"$@\" <&-"),
        Fault::ConfigText(text) => std::fs::write(&config, text).unwrap(),
        Fault::ConfigDir => config = scratch.path().to_path_buf(),
        Fault::ConfigMode(mode) => {
            std::fs::set_permissions(&config, std::fs::Permissions::from_mode(mode)).unwrap()
        }
        Fault::StdoutGone => {
            args.insert(0, "--stdout".into());
            stdout_gone = true;
        }
        Fault::StaticAsRoot => {
            program = static_bin()?;
            as_user = Some(RootedFiles::set_up(&f, scratch.path()));
            env.extend(as_user.as_ref().unwrap().env());
            wrapper = Some(RootedFiles::WRAPPER);
            unshare = true;
        }
        _ => {}
    }

    let mut cmd = match wrapper {
        Some(script) if unshare => {
            // A mount namespace of its own: the bind mounts are the child's alone.
            let mut c = Command::new("unshare");
            c.args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
                .arg(script)
                .arg(&program);
            c
        }
        Some(script) => {
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(script).arg(&program);
            c
        }
        None => Command::new(&program),
    };
    cmd.current_dir(f.cwd());
    cmd.arg("-c").arg(&config).args(&args);
    cmd.env("FAKE_SENDMAIL_DIR", f.dir.path());
    for (k, v) in &env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let gone = stdout_gone.then(std::io::pipe).transpose().unwrap();
    if let Some((_, w)) = &gone {
        cmd.stdout(w.try_clone().unwrap());
    }
    let t = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
    // The reader of a gone stdout closes before anything is written.
    drop(gone);
    let pid = child.id();
    let mut stdin = child.stdin.take();
    let mut feed = |all: bool| {
        let data = if all {
            msg.clone()
        } else {
            b"Subject: half a header".to_vec()
        };
        let mut w = stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = w.write_all(&data);
            // Only a whole message closes stdin; half a header keeps it open.
            if !all {
                std::thread::sleep(Duration::from_secs(20));
            }
        })
    };
    let out = match c.fault {
        Fault::Signal(sig, phase) => {
            let trigger = match phase {
                Phase::Reading => {
                    feed(false);
                    wait_until("signal handlers", || handlers_installed(pid))
                }
                Phase::Scanning => {
                    feed(true);
                    let s = server.as_ref().unwrap();
                    wait_until("spamd to get the request", || s.requests() >= 1)
                }
                Phase::Reinjecting => {
                    feed(true);
                    wait_until("sendmail to hang", || sendmail_hangs(&f))
                }
            };
            if let Err(e) = trigger {
                let _ = child.kill();
                let out = finish(child, Duration::from_secs(10));
                f.kill_leftovers();
                return Err(format!(
                    "{e}; stdout {:?} stderr {:?}",
                    out.stdout, out.stderr
                ));
            }
            signal(pid, sig);
            finish(child, Duration::from_secs(15))
        }
        Fault::Deadline(Phase::Reading) => {
            feed(false);
            finish(child, Duration::from_secs(15))
        }
        _ => {
            feed(true);
            finish(child, Duration::from_secs(30))
        }
    };
    let took = t.elapsed();
    let pids_after = f
        .sendmail_pids()
        .into_iter()
        .map(|p| (p, process_alive(p)))
        .collect();
    f.kill_leftovers();
    let run = Run {
        out,
        fake_dir: f.dir.path().to_path_buf(),
        took,
        quarantine,
        input: msg,
        pids_after,
    };
    check(c, &f, &run)?;
    if let Some(u) = &as_user {
        u.check(&run)?;
    }
    drop(mounts);
    Ok(run)
}

/// The user a [`Fault::StaticAsRoot`] row switches to, in copies of /etc/passwd and /etc/group
/// (the real ones plus this user and a second group it is a member of) bind-mounted over the
/// real ones in the run's own mount namespace, beside Debian 12's stock nsswitch.conf. The
/// reinjection command records the ids it runs with, then hands over to the fake sendmail.
struct RootedFiles {
    dir: PathBuf,
}

impl RootedFiles {
    const USER: &str = "pipescan-static-t";
    const UID: u32 = 64990;
    const GROUP2: u32 = 64991;
    /// Debian 12's /etc/nsswitch.conf as installed (comments left out).
    const STOCK_NSSWITCH: &str = "passwd:         files systemd\ngroup:          files systemd\nshadow:         files systemd\ngshadow:        files systemd\n\nhosts:          files dns\nnetworks:       files\n\nprotocols:      db files\nservices:       db files\nethers:         db files\nrpc:            db files\n\nnetgroup:       nis\n";
    const WRAPPER: &str = "mount --bind \"$ROOTED_NSSWITCH\" /etc/nsswitch.conf && mount --bind \"$ROOTED_PASSWD\" /etc/passwd && mount --bind \"$ROOTED_GROUP\" /etc/group && exec \"$0\" \"$@\"";

    fn set_up(f: &Filter, scratch: &Path) -> RootedFiles {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch.to_path_buf();
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        let group = std::fs::read_to_string("/etc/group").unwrap();
        let (u, uid, g2) = (Self::USER, Self::UID, Self::GROUP2);
        std::fs::write(
            dir.join("passwd"),
            format!("{passwd}{u}:x:{uid}:{uid}:pipescan test:/nonexistent:/usr/sbin/nologin\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("group"),
            format!("{group}{u}:x:{uid}:\n{u}-2:x:{g2}:nobody,{u}\n"),
        )
        .unwrap();
        std::fs::write(dir.join("nsswitch.conf"), Self::STOCK_NSSWITCH).unwrap();
        // The unprivileged run writes its records (and the fake sendmail its calls) here.
        let open = |p: &Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        // Sticky, like /tmp: a directory others can write without it is refused above a config.
        open(f.dir.path(), 0o1777);
        open(scratch, 0o755);
        let sendmail = scratch.join("fake-sendmail");
        std::fs::copy(fake_sendmail(), &sendmail).unwrap();
        open(&sendmail, 0o755);
        let record = scratch.join("record-ids");
        std::fs::write(
            &record,
            format!(
                "#!/bin/sh\nid -u > \"$FAKE_SENDMAIL_DIR/uid\"\nid -G > \"$FAKE_SENDMAIL_DIR/groups\"\nexec {} \"$@\"\n",
                sendmail.display()
            ),
        )
        .unwrap();
        open(&record, 0o755);
        f.set_reinject_command(&[&record.display().to_string(), "-i"]);
        let text = std::fs::read_to_string(&f.config).unwrap();
        std::fs::write(
            &f.config,
            text.replacen("[general]\n", &format!("[general]\nuser = \"{u}\"\n"), 1),
        )
        .unwrap();
        RootedFiles { dir }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let p = |n: &str| self.dir.join(n).display().to_string();
        vec![
            ("ROOTED_NSSWITCH", p("nsswitch.conf")),
            ("ROOTED_PASSWD", p("passwd")),
            ("ROOTED_GROUP", p("group")),
        ]
    }

    /// The reinjection ran as the user, with exactly its two groups.
    fn check(&self, r: &Run) -> Result<(), String> {
        let read = |n: &str| std::fs::read_to_string(r.fake_dir.join(n)).unwrap_or_default();
        let (uid, groups) = (read("uid"), read("groups"));
        let mut groups: Vec<&str> = groups.split_whitespace().collect();
        groups.sort();
        let want = format!("{}", Self::UID);
        let want2 = format!("{}", Self::GROUP2);
        if uid.trim() != want || groups != [want.as_str(), want2.as_str()] {
            return Err(format!(
                "the reinjection ran as uid {uid:?} with groups {groups:?} (want {want} with {want} and {want2})"
            ));
        }
        Ok(())
    }
}

/// The binary scripts/build ships: src/main.rs linked with `-C target-feature=+crt-static`
/// against the library and dependencies `cargo test` has just built (as `cargo rustc --bin
/// pipescan -- -C target-feature=+crt-static` does, in about a second instead of a build of
/// its own). Made once per test run; must come out statically linked (no ELF interpreter).
fn static_bin() -> Result<PathBuf, String> {
    static BIN: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let deps = bin().parent().unwrap().join("deps");
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pipescan-static");
        let manifest: toml::Table = std::fs::read_to_string(repo().join("Cargo.toml"))
            .map_err(|e| e.to_string())?
            .parse()
            .map_err(|e| format!("Cargo.toml: {e}"))?;
        let edition = manifest["package"]["edition"].as_str().unwrap_or("2024");
        let mut crates: Vec<String> = vec!["pipescan".into()];
        if let Some(d) = manifest.get("dependencies").and_then(|d| d.as_table()) {
            crates.extend(d.keys().map(|k| k.replace('-', "_")));
        }
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let mut cmd = Command::new(rustc);
        cmd.args([
            "--edition",
            edition,
            "--crate-name",
            "pipescan",
            "--crate-type",
            "bin",
        ])
        .arg(repo().join("src/main.rs"))
        .args(["-C", "target-feature=+crt-static", "-L"])
        .arg(format!("dependency={}", deps.display()))
        .arg("-o")
        .arg(&out)
        .env("CARGO_PKG_VERSION", env!("CARGO_PKG_VERSION"))
        .env("CARGO_PKG_NAME", env!("CARGO_PKG_NAME"));
        for name in &crates {
            // The newest build of each: the one cargo made for this run.
            let prefix = format!("lib{name}-");
            let newest = std::fs::read_dir(&deps)
                .map_err(|e| format!("{}: {e}", deps.display()))?
                .flatten()
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.starts_with(&prefix) && n.ends_with(".rlib")
                })
                .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
            match newest {
                Some(e) => {
                    cmd.arg("--extern")
                        .arg(format!("{name}={}", e.path().display()));
                }
                None if name == "pipescan" => {
                    return Err(format!("no libpipescan rlib in {}", deps.display()));
                }
                None => {}
            }
        }
        let o = cmd.output().map_err(|e| format!("cannot run rustc: {e}"))?;
        if !o.status.success() {
            return Err(format!(
                "linking the static binary failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        if has_interpreter(&out)? {
            return Err(format!("{} is not statically linked", out.display()));
        }
        Ok(out)
    })
    .clone()
}

/// Does the ELF file have a PT_INTERP program header (a dynamic loader)?
fn has_interpreter(path: &Path) -> Result<bool, String> {
    let b = std::fs::read(path).map_err(|e| e.to_string())?;
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 {
        return Err(format!("{}: not a 64-bit ELF file", path.display()));
    }
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap()) as usize;
    let (size, n) = (u16_at(0x36), u16_at(0x38));
    Ok((0..n).any(|i| {
        let o = phoff + i * size;
        b.get(o..o + 4) == Some(&3u32.to_le_bytes()[..])
    }))
}

/// [`wait_output`], also for a child whose stdout is not ours to read.
fn finish(mut child: std::process::Child, limit: Duration) -> Output {
    if child.stdout.is_none() {
        let (r, w) = std::io::pipe().unwrap();
        drop(w);
        child.stdout = Some(std::process::ChildStdout::from(std::os::fd::OwnedFd::from(
            r,
        )));
    }
    wait_output(child, limit)
}

/// Every requirement of the row against what the run left; all problems at once.
fn check(c: &Case, f: &Filter, r: &Run) -> Result<(), String> {
    let mut bad: Vec<String> = Vec::new();
    let o = &r.out;
    let want = Expect {
        exit: c.exit,
        // A gone stdout is not ours to read.
        status: (!matches!(c.fault, Fault::StdoutGone)).then_some(c.status),
        log: c.log,
        limit: Duration::from_secs(8),
    };
    check_run(o, r.took, &want, &mut bad);
    match c.sendmail {
        Sm::No => {
            if f.calls() != 0 {
                bad.push(format!("sendmail called {} times (want never)", f.calls()));
            }
        }
        Sm::Got(want) => {
            if f.calls() != want.len() {
                bad.push(format!(
                    "sendmail called {} times (want {})",
                    f.calls(),
                    want.len()
                ));
            }
            for (n, fields) in want.iter().enumerate().take(f.calls()) {
                let got =
                    std::fs::read(f.dir.path().join(format!("call{n}.msg"))).unwrap_or_default();
                match added_fields(&got, &r.input) {
                    Err(e) => bad.push(format!("call {n}: {e}")),
                    Ok(added) => {
                        let ok = added.len() == fields.len()
                            && added.iter().zip(fields.iter()).all(|(a, w)| glob(w, a));
                        if !ok {
                            bad.push(format!(
                                "call {n}: added fields {added:?} (want {fields:?})"
                            ));
                        }
                    }
                }
            }
        }
        Sm::Killed => {
            if f.calls() != 1 {
                bad.push(format!("sendmail called {} times (want 1)", f.calls()));
            }
            if r.pids_after.is_empty() {
                bad.push("no sendmail pid recorded".into());
            }
            for (pid, alive) in &r.pids_after {
                if *alive {
                    bad.push(format!("sendmail {pid} still runs after pipescan exited"));
                }
            }
        }
    }
    let files = files_under(&r.quarantine).len();
    if files != c.quarantined {
        bad.push(format!(
            "{files} files in the quarantine (want {})",
            c.quarantined
        ));
    }
    verdict(bad, o)
}

/// SIGTERM after the first of two split deliveries went out, while the second group's sendmail
/// has its whole message and hangs: the run is past the point of no return (exit 0, or the
/// first group gets a duplicate), but the second sendmail must be killed, not left to queue
/// whatever it has once our exit ends its input, and the log must say who got nothing.
#[test]
fn a_stop_after_the_first_group_kills_the_second_groups_sendmail() {
    let f = Filter::new(&format!(
        "[general]\nlocal_domains = [\"local.example\"]\n[lists]\nblacklist_sender = [\"sender@example.net\"]\n[headers]\nspam_subject_tag = \"\"\n[spamd]\nservers = [\"{}\"]\n[clamd]\nservers = [\"{}\"]\n",
        real_spamd(),
        real_clamd()
    ));
    f.wrap_sendmail("if [ $n -ge 1 ]; then export FAKE_SENDMAIL_EXIT=hang; fi");
    let msg = input(Input::Plain);
    let mut child = Command::new(bin())
        .current_dir(f.cwd())
        .arg("-c")
        .arg(&f.config)
        .args([
            "-f",
            "sender@example.net",
            "--",
            "x@local.example",
            "y@remote.example",
        ])
        .env("FAKE_SENDMAIL_DIR", f.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&msg).unwrap();
    drop(stdin);
    if let Err(e) = wait_until("the second sendmail to hang", || sendmail_hangs(&f)) {
        let _ = child.kill();
        let out = finish(child, Duration::from_secs(10));
        f.kill_leftovers();
        panic!("{e}; stdout {:?} stderr {:?}", out.stdout, out.stderr);
    }
    signal(child.id(), "TERM");
    let out = finish(child, Duration::from_secs(15));
    let pids = f.sendmail_pids();
    // SIGKILL went to the whole group before pipescan exited, but on a busy machine a victim
    // may not have been scheduled to die yet: give them a moment, then all must be gone.
    let marker = format!("FAKE_SENDMAIL_DIR={}", f.dir.path().display());
    let t = Instant::now();
    let alive = loop {
        let mut alive: Vec<u32> = pids.iter().copied().filter(|p| process_alive(*p)).collect();
        alive.extend(
            processes_with_env(&marker)
                .into_iter()
                .filter(|p| process_alive(*p)),
        );
        if alive.is_empty() || t.elapsed() > Duration::from_secs(2) {
            break alive;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let leftovers = f.kill_leftovers();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(f.calls(), 2, "{}", out.stderr);
    // Whichever thread gets there first says it: the signal thread, or the main thread that
    // saw group 2's sendmail killed.
    assert!(
        (out.stderr.contains("interrupted by SIGTERM after the message was reinjected")
            && out.stderr.contains("NOT delivered to them"))
            || out.stderr.contains(
                "reinjection group 2 to y@remote.example FAILED after other recipients were delivered"
            ),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.is_empty(),
        "a status line for an exit 0: {:?}",
        out.stdout
    );
    assert_eq!(pids.len(), 2, "sendmail pids {pids:?}");
    assert!(
        alive.is_empty() && leftovers == 0,
        "sendmail or its children {alive:?} still ran after pipescan exited ({leftovers} left over)"
    );
}

#[test]
fn fault_matrix() {
    let mut gone = Vec::new();
    run_table(
        "matrix",
        MATRIX,
        40,
        |c| c.name,
        |c| {
            if let Fault::Elsewhere(file, test, effects) = c.fault {
                let text = std::fs::read_to_string(repo().join(file)).unwrap_or_default();
                if !text.contains(&format!("fn {test}()")) {
                    gone.push(format!("{}: the test {file}::{test} is gone", c.name));
                }
                eprintln!("see   {file}::{test}  {}: {} {effects}", c.name, c.exit);
                return None;
            }
            Some(run_case(c).map(|_| ()))
        },
    );
    assert!(gone.is_empty(), "{}", gone.join("\n"));
}
