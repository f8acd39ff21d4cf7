//! Quarantine and release through the built binary: EICAR found by the real clamd is kept,
//! private and readable, and comes back byte for byte; a quarantine that cannot be written
//! keeps the message in the MTA's queue (exit 75).

mod common;

use common::*;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;

fn clamd() -> String {
    std::env::var("PIPESCAN_CLAMD").unwrap_or_else(|_| {
        panic!("PIPESCAN_CLAMD is not set: run scripts/test, or scripts/mailstack up DIR and `set -a; eval \"$(scripts/mailstack env DIR)\"`")
    })
}

fn eicar_mail() -> Vec<u8> {
    let hex = "58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d5354414e444152442d414e544956495255532d544553542d46494c452124482b482a";
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    // A plain (not base64) body line: clamd finds it, and the message has 8-bit bytes too.
    let mut m = b"From: mallory@example.net\nTo: bob@example.com\nSubject: caf\xe9 invoice\nMessage-ID: <q@example.net>\n\n".to_vec();
    m.extend_from_slice(&bytes);
    m.extend_from_slice(b"\n\x00 trailing bytes\n");
    m
}

fn virus_filter(extra: &str) -> Filter {
    Filter::new(&format!("[clamd]\nservers = [\"{}\"]\n{extra}", clamd()))
}

fn quarantine_id(stderr: &str) -> String {
    let at = stderr
        .find("quarantine: ")
        .unwrap_or_else(|| panic!("no quarantine id in the log: {stderr}"));
    stderr[at + 12..at + 24].to_string()
}

#[test]
fn eicar_is_quarantined_private_and_released_byte_identical() {
    let f = virus_filter("");
    let msg = eicar_mail();
    let r = f.run(
        &[
            "-v",
            "-f",
            "mallory@example.net",
            "--",
            "bob@example.com",
            "carol@example.com",
        ],
        &msg,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(f.calls(), 0, "discarded");
    assert!(
        r.stderr
            .contains("Blocked INFECTED (Test.EICAR-NDB.UNOFFICIAL) {Discarded}"),
        "{}",
        r.stderr
    );
    let id = quarantine_id(&r.stderr);
    let files = f.quarantined();
    assert_eq!(files.len(), 1, "{files:?}");
    let file = &files[0];
    assert_eq!(
        file.file_name().unwrap().to_str().unwrap(),
        format!("virus-{id}")
    );
    assert_eq!(
        std::fs::metadata(file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(f.quarantine_dir())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    let stored = std::fs::read(file).unwrap();
    let head = String::from_utf8_lossy(&stored[..stored.len() - msg.len()]).into_owned();
    assert_eq!(
        head,
        format!(
            "X-Envelope-From: <mallory@example.net>\nX-Envelope-To: <bob@example.com>, <carol@example.com>\nX-Quarantine-ID: <{id}>\nX-Pipescan-Category: INFECTED (Test.EICAR-NDB.UNOFFICIAL)\n"
        )
    );
    assert!(stored.ends_with(&msg), "the original follows unchanged");

    // The admin lists it and releases it to the original recipients.
    let cfg = f.config.to_str().unwrap().to_string();
    let l = run_bin(&["quarantine", "list", "-c", &cfg], b"", &[]);
    assert_eq!(l.code, 0, "{}", l.stderr);
    let row = l
        .stdout
        .lines()
        .find(|x| x.starts_with(&id))
        .unwrap_or_else(|| panic!("{}", l.stdout));
    assert!(
        row.contains("INFECTED") && row.contains("<mallory@example.net>"),
        "{row}"
    );
    let l = run_bin(
        &["quarantine", "list", "-c", &cfg, "--category", "spam"],
        b"",
        &[],
    );
    assert!(
        !l.stdout.contains(&id),
        "filtered by category: {}",
        l.stdout
    );

    let dir = f.dir.path().to_str().unwrap().to_string();
    let rel = run_bin(
        &["release", &id, "-c", &cfg],
        b"",
        &[("FAKE_SENDMAIL_DIR", &dir)],
    );
    assert_eq!(rel.code, 0, "{}", rel.stderr);
    assert_eq!(f.calls(), 1);
    assert_eq!(
        f.call_argv(0),
        [
            "-i",
            "-f",
            "mallory@example.net",
            "--",
            "bob@example.com",
            "carol@example.com"
        ]
    );
    assert_eq!(f.call_msg(0), msg, "released byte for byte");

    // To someone else, wrapped as an attachment.
    let rel = run_bin(
        &[
            "release",
            &id,
            "-c",
            &cfg,
            "--to",
            "admin@example.com",
            "--format",
            "attach",
        ],
        b"",
        &[("FAKE_SENDMAIL_DIR", &dir)],
    );
    assert_eq!(rel.code, 0, "{}", rel.stderr);
    assert_eq!(f.call_argv(1), ["-i", "-f", "", "--", "admin@example.com"]);
    let notice = f.call_msg(1);
    let text = String::from_utf8_lossy(&notice);
    assert!(text.contains("Content-Type: message/rfc822"), "{text}");
    assert!(
        notice.windows(msg.len()).any(|w| w == &msg[..]),
        "the original is attached unchanged"
    );
}

#[test]
fn gzip_quarantine_round_trips() {
    let f = virus_filter("[quarantine]\nfilename = \"%c-%m.gz\"\nsubdirectory = \"%P\"\n");
    let msg = eicar_mail();
    let r = f.run(
        &["-v", "-f", "m@example.net", "--", "bob@example.com"],
        &msg,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let id = quarantine_id(&r.stderr);
    let files = f.quarantined();
    assert_eq!(files.len(), 1);
    assert!(
        files[0]
            .to_str()
            .unwrap()
            .ends_with(&format!("virus-{id}.gz"))
    );
    let week = files[0]
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(week.len(), 7, "ISO year-week subdirectory: {week}");
    let mut back = Vec::new();
    flate2_free_gunzip(&files[0], &mut back);
    assert!(back.ends_with(&msg));
    let dir = f.dir.path().to_str().unwrap().to_string();
    let rel = run_bin(
        &["release", &id, "-c", f.config.to_str().unwrap()],
        b"",
        &[("FAKE_SENDMAIL_DIR", &dir)],
    );
    assert_eq!(rel.code, 0, "{}", rel.stderr);
    assert_eq!(f.call_msg(0), msg);
}

/// Reads a .gz with the system's gzip, independently of our own code.
fn flate2_free_gunzip(p: &std::path::Path, out: &mut Vec<u8>) {
    let mut child = std::process::Command::new("gzip")
        .args(["-dc"])
        .arg(p)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip is part of every Debian system");
    child.stdout.take().unwrap().read_to_end(out).unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn unknown_id_is_a_clear_error() {
    let f = virus_filter("");
    std::fs::create_dir_all(f.quarantine_dir()).unwrap();
    let r = run_bin(
        &["release", "AAAAAAAAAAAA", "-c", f.config.to_str().unwrap()],
        b"",
        &[],
    );
    assert_eq!(r.code, 66);
    assert!(
        r.stderr
            .contains("no quarantined message with id AAAAAAAAAAAA"),
        "{}",
        r.stderr
    );
    let r = run_bin(
        &["release", "../../etc/pw", "-c", f.config.to_str().unwrap()],
        b"",
        &[],
    );
    assert_eq!(r.code, 66);
    assert!(r.stderr.contains("is not a quarantine id"), "{}", r.stderr);
}

#[test]
fn unwritable_quarantine_keeps_the_message() {
    let f = virus_filter("[quarantine]\ndirectory = \"/dev/null/quarantine\"\n");
    let r = f.run(
        &["-f", "m@example.net", "--", "bob@example.com"],
        &eicar_mail(),
    );
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(
        r.stdout
            .starts_with("4.3.0 cannot quarantine the message: /dev/null/quarantine"),
        "{}",
        r.stdout
    );
    assert_eq!(f.calls(), 0);
}

/// A full disk, simulated with a file-size limit: the quarantine write fails, the message stays
/// with the MTA (75), and no half-written file is left behind.
#[test]
fn full_quarantine_disk_keeps_the_message() {
    let f = virus_filter("");
    let mut msg = eicar_mail();
    msg.extend(std::iter::repeat_n(b'x', 8192));
    let mut c = std::process::Command::new("/bin/sh");
    c.current_dir(f.cwd())
        .arg("-c")
        .arg("ulimit -f 4; exec \"$0\" \"$@\"")
        .arg(bin())
        .args([
            "-c",
            f.config.to_str().unwrap(),
            "-f",
            "m@example.net",
            "--",
            "bob@example.com",
        ])
        .env("FAKE_SENDMAIL_DIR", f.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let r = feed_and_wait(c.spawn().unwrap(), &msg);
    assert_eq!(r.code, 75, "{} {}", r.stdout, r.stderr);
    assert!(
        r.stdout.starts_with("4.3.0 cannot quarantine the message"),
        "{}",
        r.stdout
    );
    assert_eq!(f.calls(), 0);
    assert!(
        f.quarantined().is_empty(),
        "no partial file: {:?}",
        f.quarantined()
    );
}

#[test]
fn lovers_get_the_quarantine_id_on_their_copy() {
    let f = virus_filter("[lists]\nvirus_lovers = [\"lab@example.com\"]\n");
    let r = f.run(
        &[
            "-v",
            "-f",
            "m@example.net",
            "--",
            "bob@example.com",
            "lab@example.com",
        ],
        &eicar_mail(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let id = quarantine_id(&r.stderr);
    assert_eq!(f.calls(), 1);
    assert_eq!(f.call_argv(0).last().unwrap(), "lab@example.com");
    let copy = String::from_utf8_lossy(&f.call_msg(0)).into_owned();
    assert!(
        copy.contains(&format!("X-Quarantine-ID: <{id}>\n")),
        "{copy}"
    );
    assert!(copy.contains("Subject: ***INFECTED*** caf"), "{copy}");
}

#[test]
fn quarantine_to_a_mailbox_from_the_null_sender() {
    let f = virus_filter(
        "[quarantine]\ndirectory = \"\"\naddress = \"virus-quarantine@example.com\"\n",
    );
    let msg = eicar_mail();
    let r = f.run(
        &["-v", "-f", "m@example.net", "--", "bob@example.com"],
        &msg,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(f.calls(), 1);
    assert_eq!(
        f.call_argv(0),
        ["-i", "-f", "", "--", "virus-quarantine@example.com"]
    );
    let copy = f.call_msg(0);
    assert!(copy.starts_with(b"X-Envelope-From: <m@example.net>\n"));
    assert!(copy.ends_with(&msg));
    assert!(f.quarantined().is_empty());
}

/// Replaces what changes from run to run (quarantine id, Date, Message-ID, MIME boundaries).
fn normalize(notice: &[u8], id: &str) -> String {
    let t = String::from_utf8_lossy(notice).replace(id, "QUARANTINE-ID");
    let mut boundaries: Vec<String> = Vec::new();
    for l in t.lines() {
        if let Some(b) = l.split("boundary=\"").nth(1) {
            boundaries.push(b.trim_end_matches('"').to_string());
        }
    }
    let mut out = String::new();
    for l in t.split_inclusive('\n') {
        let l = if l.starts_with("Date: ") {
            "Date: DATE\r\n".to_string()
        } else if let Some(rest) = l.strip_prefix("Message-ID: <pipescan.") {
            // Ours: random, under the configured host name.
            let domain = rest.split_once('@').map_or("", |(_, d)| d);
            format!("Message-ID: <pipescan.ID@{domain}")
        } else {
            l.to_string()
        };
        out.push_str(&l);
    }
    for (i, b) in boundaries.iter().enumerate() {
        out = out.replace(b.as_str(), &format!("BOUNDARY{i}"));
    }
    out
}

#[test]
fn admin_notification_matches_the_golden_file() {
    let f = virus_filter("[notify]\nvirus_admin = \"virusalert@example.com\"\n");
    let r = f.run(
        &["-v", "-f", "mallory@example.net", "--", "bob@example.com"],
        &eicar_mail(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let id = quarantine_id(&r.stderr);
    assert_eq!(
        f.calls(),
        1,
        "only the notice: the message itself was discarded"
    );
    assert_eq!(
        f.call_argv(0),
        ["-i", "-f", "", "--", "virusalert@example.com"]
    );
    let got = normalize(&f.call_msg(0), &id);
    let golden = repo().join("t/golden/admin-notice-virus.txt");
    let want = std::fs::read_to_string(&golden).unwrap_or_default();
    if got != want {
        std::fs::write(golden.with_extension("txt.failed"), &got).unwrap();
        panic!(
            "admin notice differs from {}; see the .failed file beside it",
            golden.display()
        );
    }
    assert!(
        r.stderr.contains("notified virusalert@example.com"),
        "{}",
        r.stderr
    );
}

#[test]
fn recipient_warning_and_sender_notice_are_opt_in() {
    let f = virus_filter("[notify]\nwarn_virus_recipient = true\nwarn_sender = true\n");
    let r = f.run(
        &["-v", "-f", "mallory@example.net", "--", "bob@example.com"],
        &eicar_mail(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The recipient is warned; the sender of a virus never is (viruses fake senders).
    assert_eq!(f.calls(), 1, "{}", r.stderr);
    assert_eq!(f.call_argv(0), ["-i", "-f", "", "--", "bob@example.com"]);
    let t = String::from_utf8_lossy(&f.call_msg(0)).into_owned();
    assert!(
        t.contains("was blocked by the content filter on mx.test"),
        "{t}"
    );
}

/// procmail's `:0 fw` cannot discard: a virus comes back tagged for the recipe to file, and it
/// is quarantined all the same.
#[test]
fn stdout_mode_hands_back_a_blocked_message_tagged() {
    let f = virus_filter("[quarantine]\nfilename = \"%m\"\n");
    let msg = eicar_mail();
    let r = f.run_bytes(&["--stdout"], &msg);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = String::from_utf8_lossy(&r.stdout_bytes).into_owned();
    assert!(
        out.contains(
            "X-Pipescan-Alert: INFECTED, message contains virus: Test.EICAR-NDB.UNOFFICIAL\n"
        ),
        "{out}"
    );
    assert!(out.contains("X-Quarantine-ID: <"), "{out}");
    assert!(out.contains("Subject: ***INFECTED*** caf"), "{out}");
    assert_eq!(f.quarantined().len(), 1);
    // And the category filter works whatever the file name template.
    let l = run_bin(
        &[
            "quarantine",
            "list",
            "-c",
            f.config.to_str().unwrap(),
            "--category",
            "virus",
        ],
        b"",
        &[],
    );
    assert_eq!(l.stdout.lines().count(), 2, "{}", l.stdout);
}

#[test]
fn admin_command_typos_are_usage_errors_not_mta_deferrals() {
    let r = run_bin(&["quarantine", "list", "--since", "7d"], b"", &[]);
    assert_eq!(r.code, 64, "{} {}", r.stdout, r.stderr);
    assert!(!r.stdout.starts_with("4.3.5"), "{}", r.stdout);
}

#[test]
fn passed_mail_is_not_quarantined() {
    // Everyone loves viruses here: nothing is blocked, so nothing is kept.
    let f = virus_filter("[lists]\nvirus_lovers = [\".\"]\n");
    let r = f.run(
        &["-v", "-f", "m@example.net", "--", "bob@example.com"],
        &eicar_mail(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(f.quarantined().is_empty());
    assert!(!r.stderr.contains("quarantine:"), "{}", r.stderr);
}
