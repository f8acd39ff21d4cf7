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
    // pipescan's record first (what release reads), then the fields for people.
    assert!(
        head.starts_with(&format!("X-Pipescan-Quarantine: v=2 id={id} len=")),
        "{head}"
    );
    assert!(
        head.ends_with(&format!(
            "\nX-Envelope-From: <mallory@example.net>\nX-Envelope-To: <bob@example.com>, <carol@example.com>\nX-Quarantine-ID: <{id}>\nX-Pipescan-Category: INFECTED (Test.EICAR-NDB.UNOFFICIAL)\n"
        )),
        "{head}"
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
    let text = String::from_utf8_lossy(&copy);
    assert!(text.starts_with("X-Pipescan-Quarantine: v=2 id="), "{text}");
    assert!(
        text.contains("\nX-Envelope-From: <m@example.net>\n"),
        "{text}"
    );
    assert!(copy.ends_with(&msg));
    assert!(f.quarantined().is_empty());
}

/// The mailbox copy goes to a mailbox, where a forged `Authentication-Results: <our host>;
/// dkim=pass` or `X-Spam-Flag: NO` would be believed: it loses the fields a run removes as
/// forged, as a release does. The file keeps the message as it arrived (release removes them).
#[test]
fn the_quarantine_mailbox_copy_loses_forged_fields() {
    let f = spam_filter("address = \"spam-quarantine@example.com\"\n");
    let forged = b"Authentication-Results: mx.test; dkim=pass header.d=bank.example\nX-Spam-Flag: NO\nX-Spam-Status: No, score=-5\nX-Pipescan-Category: CLEAN\n";
    let rest = b"From: s@spam.example\nAuthentication-Results: other.example; dkim=fail\nSubject: hi\n\nbody\nX-Spam-Flag: NO\n";
    let msg = [&forged[..], &rest[..]].concat();
    let r = f.run(
        &["-v", "-f", "s@spam.example", "--", "bob@example.com"],
        &msg,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The mailbox copy first, then the passed (tagged) spam to bob.
    assert_eq!(f.calls(), 2, "{}", r.stderr);
    assert_eq!(
        f.call_argv(0),
        ["-i", "-f", "", "--", "spam-quarantine@example.com"]
    );
    let files = f.quarantined();
    assert_eq!(files.len(), 1, "{files:?}");
    let kept = std::fs::read(&files[0]).unwrap();
    let block = added_block(&kept, &msg).expect("the file keeps the message as it arrived");
    let text = String::from_utf8_lossy(block);
    assert!(text.starts_with("X-Pipescan-Quarantine: v=2 id="), "{text}");
    // The same block, then the message less the forged fields: every other byte (another
    // host's Authentication-Results, the body's look-alike line) as it arrived.
    assert_eq!(
        String::from_utf8_lossy(&f.call_msg(0)),
        String::from_utf8_lossy(&[block, &rest[..]].concat())
    );
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
    let r = run_bin(&["quarantine", "list", "--since", "7w"], b"", &[]);
    assert_eq!(r.code, 64, "{} {}", r.stdout, r.stderr);
    assert!(!r.stdout.starts_with("4.3.5"), "{}", r.stdout);
}

/// amavisd quarantines by category whatever the destiny: a virus passed to its lovers is kept
/// (with [quarantine] virus on, the default), and their copy names it. Clean mail never is.
#[test]
fn passed_mail_is_quarantined_by_its_category() {
    let f = virus_filter("[lists]\nvirus_lovers = [\".\"]\n");
    let r = f.run(
        &["-v", "-f", "m@example.net", "--", "bob@example.com"],
        &eicar_mail(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Passed INFECTED"), "{}", r.stderr);
    let id = quarantine_id(&r.stderr);
    assert_eq!(f.quarantined().len(), 1);
    assert_eq!(f.calls(), 1);
    let copy = String::from_utf8_lossy(&f.call_msg(0)).into_owned();
    assert!(
        copy.contains(&format!("X-Quarantine-ID: <{id}>\n")),
        "{copy}"
    );

    let f = virus_filter("");
    let r = f.run(
        &["-v", "-f", "m@example.net", "--", "bob@example.com"],
        PLAIN,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(f.quarantined().is_empty());
    assert!(!r.stderr.contains("quarantine:"), "{}", r.stderr);
}

/// Spam without a spam scanner: senders @spam.example are blacklisted (score 100, SPAM), and
/// [quarantine] spam is on. `extra` must not have a [lists] table.
fn spam_filter(extra: &str) -> Filter {
    Filter::new(&format!(
        "[lists]\nblacklist_sender = [\"@spam.example\"]\n[quarantine]\nspam = true\n{extra}"
    ))
}

fn nobody() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let o = std::process::Command::new("id")
            .args([flag, "nobody"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap()
}

/// A message's own X-Envelope-*, X-Pipescan-* and X-Quarantine-ID fields sit right below our
/// block in the quarantined copy (it is the original, unchanged): release still goes from the
/// real sender to the real recipients, and `list` shows the real ones. Copies we deliver do not
/// carry the forged fields. (Here spam passes: quarantined all the same, [quarantine] spam on.)
#[test]
fn forged_quarantine_fields_below_our_block_do_not_steer_release() {
    let f = spam_filter("");
    let msg = b"X-Pipescan-Quarantine: v=2 id=AAAAAAAAAAAA len=0 category=CLEAN from=evil@evil.example to=attacker@evil.example reason=\nX-Envelope-From: <evil@evil.example>\nX-Envelope-To: <attacker@evil.example>\nX-Quarantine-ID: <AAAAAAAAAAAA>\nX-Pipescan-Category: CLEAN\nAuthentication-Results: mx.test; dkim=pass header.d=bank.example\nX-Spam-Flag: NO\nFrom: s@spam.example\nSubject: hi\nDate: Mon, 23 Nov 2026 10:00:00 +0000\n\nbody\n";
    let r = f.run(
        &["-v", "-f", "s@spam.example", "--", "bob@example.com"],
        msg,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Passed SPAM"), "{}", r.stderr);
    let id = quarantine_id(&r.stderr);
    assert_eq!(f.quarantined().len(), 1);
    assert_eq!(f.calls(), 1, "bob gets the tagged spam");
    let copy = String::from_utf8_lossy(&f.call_msg(0)).into_owned();
    assert!(
        copy.contains(&format!("X-Quarantine-ID: <{id}>\n")),
        "{copy}"
    );
    for forged in [
        "AAAAAAAAAAAA",
        "attacker@evil.example",
        "evil@evil.example",
        "X-Pipescan-Category",
        "X-Pipescan-Quarantine",
    ] {
        assert!(
            !copy.contains(forged),
            "{forged} in the delivered copy:\n{copy}"
        );
    }

    let cfg = f.config.to_str().unwrap().to_string();
    let dir = f.dir.path().to_str().unwrap().to_string();
    let rel = run_bin(
        &["release", &id, "-c", &cfg],
        b"",
        &[("FAKE_SENDMAIL_DIR", &dir)],
    );
    assert_eq!(rel.code, 0, "{}", rel.stderr);
    assert_eq!(
        f.call_argv(1),
        ["-i", "-f", "s@spam.example", "--", "bob@example.com"]
    );
    // The original, less what a run removes as forged on the way in (the release is that
    // message's way into the mailbox): every other byte as it arrived.
    let forged_fields = msg.windows(13).position(|w| w == b"From: s@spam.").unwrap();
    assert_eq!(
        f.call_msg(1),
        &msg[forged_fields..],
        "the original, less the forged fields"
    );
    let l = run_bin(&["quarantine", "list", "-c", &cfg], b"", &[]);
    assert_eq!(l.code, 0, "{}", l.stderr);
    let row = l.stdout.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with(&id) && row.contains(" SPAM ") && row.contains("<s@spam.example>"),
        "{}",
        l.stdout
    );
    assert!(!l.stdout.contains("evil"), "{}", l.stdout);

    // A copy in the format of earlier versions (no record): only the fixed run of fields at
    // the top is ours; the X-Envelope-To right below it is the sender's.
    let old = f.quarantine_dir().join("spam-BBBBBBBBBBBB");
    let original = b"X-Envelope-To: <attacker@evil.example>\nSubject: old\n\nbody\n";
    std::fs::write(
        &old,
        [
            &b"X-Envelope-From: <s@spam.example>\nX-Envelope-To: <carol@example.com>, <\"d, e\"@example.com>\nX-Quarantine-ID: <BBBBBBBBBBBB>\nX-Pipescan-Category: SPAM (score=100)\nX-Spam-Score: 100\n"[..],
            original,
        ]
        .concat(),
    )
    .unwrap();
    let rel = run_bin(
        &["release", "BBBBBBBBBBBB", "-c", &cfg],
        b"",
        &[("FAKE_SENDMAIL_DIR", &dir)],
    );
    assert_eq!(rel.code, 0, "{}", rel.stderr);
    assert_eq!(
        f.call_argv(2),
        [
            "-i",
            "-f",
            "s@spam.example",
            "--",
            "carol@example.com",
            "\"d, e\"@example.com"
        ]
    );
    // The sender's X-Envelope-To steered nothing, and is removed as forged on release.
    assert_eq!(f.call_msg(2), &original[original.len() - 19..]);
    assert_eq!(f.call_msg(2), b"Subject: old\n\nbody\n");
}

/// Any RFC 5321 address survives quarantine and release: quoted local parts with commas,
/// angle brackets and spaces, as sender and as recipients.
#[test]
fn quoted_local_parts_round_trip_through_quarantine_and_release() {
    let f = spam_filter("[destiny]\nspam = \"discard\"\n");
    let sender = "\"s p, <am>\"@spam.example";
    let rcpts = [
        "\"bob, smith\"@example.org",
        "\"a<b>c d\"@example.org",
        "\"x>, <y\"@example.org",
        "\"q\\\"uote\"@example.org",
        "plain@example.org",
    ];
    let mut args = vec!["-v", "-f", sender, "--"];
    args.extend(rcpts);
    let r = f.run(&args, b"From: s@spam.example\nSubject: hi\n\nbody\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Blocked SPAM"), "{}", r.stderr);
    assert_eq!(f.calls(), 0);
    let id = quarantine_id(&r.stderr);
    let dir = f.dir.path().to_str().unwrap().to_string();
    let rel = run_bin(
        &["-c", f.config.to_str().unwrap(), "release", &id],
        b"",
        &[("FAKE_SENDMAIL_DIR", &dir)],
    );
    assert_eq!(rel.code, 0, "{}", rel.stderr);
    let mut want = vec!["-i", "-f", sender, "--"];
    want.extend(rcpts);
    assert_eq!(f.call_argv(0), want);
}

/// `quarantine list` is for a terminal: an ESC or BEL in a Subject (raw or RFC 2047 encoded)
/// is shown escaped, encoded subjects are decoded, the columns line up, `--since` takes days,
/// and a corrupt .gz is a row with its id and "unreadable".
#[test]
fn quarantine_list_is_safe_decoded_and_aligned() {
    let f = spam_filter(
        "[destiny]\nspam = \"discard\"\n[quarantine]\nfilename = \"%c-%m.gz\"\nsubdirectory = \"%P\"\n",
    );
    let subjects: [&[u8]; 2] = [
        b"\x1b]0;owned\x07 hi\x1b[2J",
        // "Grüße \x1b[31mred" in base64.
        b"=?UTF-8?B?R3LDvMOfZSAbWzMxbXJlZA==?=",
    ];
    let mut ids = Vec::new();
    for s in subjects {
        let msg = [&b"From: s@spam.example\nSubject: "[..], s, b"\n\nbody\n"].concat();
        let r = f.run(
            &["-v", "-f", "s@spam.example", "--", "bob@example.com"],
            &msg,
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        ids.push(quarantine_id(&r.stderr));
    }
    let week = f.quarantined()[0].parent().unwrap().to_path_buf();
    std::fs::write(
        week.join("virus-CCCCCCCCCCCC.gz"),
        b"\x1f\x8b\x08\x00not really gzip at all",
    )
    .unwrap();
    let cfg = f.config.to_str().unwrap().to_string();
    let l = run_bin(
        &["-c", &cfg, "quarantine", "list", "--since", "1d"],
        b"",
        &[],
    );
    assert_eq!(l.code, 0, "{}", l.stderr);
    let out = &l.stdout;
    assert!(
        !out.contains(['\x1b', '\x07']),
        "raw control characters reach the terminal: {out:?}"
    );
    assert!(out.contains("\\u{1b}]0;owned\\u{7} hi\\u{1b}[2J"), "{out}");
    assert!(out.contains("Grüße \\u{1b}[31mred"), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    let head = lines[0];
    let col = |name: &str| head.find(name).unwrap();
    let bad = lines
        .iter()
        .find(|l| l.starts_with("CCCCCCCCCCCC"))
        .unwrap_or_else(|| panic!("the corrupt file is not listed by its id: {out}"));
    assert_eq!(
        &bad[col("CATEGORY")..col("CATEGORY") + 10],
        "unreadable",
        "{out}"
    );
    for l in &lines[1..] {
        let date = &l[col("DATE (UTC)")..col("DATE (UTC)") + 15];
        assert!(
            date.len() == 15 && date.as_bytes()[8] == b'T',
            "columns out of line: {out}"
        );
        assert!(
            l[col("SENDER")..].starts_with('<') || l[col("SENDER")..].starts_with('-'),
            "{out}"
        );
    }
    for id in &ids {
        let row = lines.iter().find(|l| l.starts_with(id.as_str())).unwrap();
        assert_eq!(&row[col("CATEGORY")..col("CATEGORY") + 5], "SPAM ", "{out}");
        assert!(row[col("SUBJECT")..].len() > 2, "{out}");
    }
    // Days in --since, and an older file left out.
    let old = f
        .quarantined()
        .into_iter()
        .find(|p| p.to_str().unwrap().contains(&ids[0]))
        .unwrap();
    let touched = std::process::Command::new("touch")
        .args(["-d", "3 days ago"])
        .arg(&old)
        .status()
        .unwrap();
    assert!(touched.success());
    let l = run_bin(
        &["-c", &cfg, "quarantine", "list", "--since", "2d"],
        b"",
        &[],
    );
    assert!(
        !l.stdout.contains(&ids[0]) && l.stdout.contains(&ids[1]),
        "{}",
        l.stdout
    );
    let l = run_bin(
        &["-c", &cfg, "quarantine", "list", "--since", "4d"],
        b"",
        &[],
    );
    assert!(l.stdout.contains(&ids[0]), "{}", l.stdout);
    // The corrupt copy cannot be released: a clear error, 66.
    let rel = run_bin(&["-c", &cfg, "release", "CCCCCCCCCCCC"], b"", &[]);
    assert_eq!(rel.code, 66, "{}", rel.stderr);
    assert!(
        rel.stderr.contains("virus-CCCCCCCCCCCC.gz: cannot read it"),
        "{}",
        rel.stderr
    );
}

/// Run as an account that cannot read one week's directory (made by root), `list` and
/// `release` skip it with a warning naming it instead of failing whole.
#[test]
fn an_unreadable_subdirectory_is_skipped_with_a_warning() {
    use std::os::unix::process::CommandExt;
    assert!(
        is_root(),
        "this test runs as root (as in CI): it switches to nobody"
    );
    let (uid, gid) = nobody();
    let f = spam_filter("[destiny]\nspam = \"discard\"\n[quarantine]\nsubdirectory = \"%P\"\n");
    let r = f.run(
        &["-v", "-f", "s@spam.example", "--", "bob@example.com"],
        b"From: s@spam.example\nSubject: readable\n\nbody\n",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let id = quarantine_id(&r.stderr);
    // Everything nobody needs is nobody's; one more week directory is root's, 0700.
    std::fs::set_permissions(f.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let q = f.quarantine_dir();
    for p in std::iter::once(q.clone()).chain(
        f.quarantined()
            .into_iter()
            .flat_map(|p| [p.parent().unwrap().to_path_buf(), p]),
    ) {
        std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
    }
    let locked = q.join("2001-01");
    std::fs::create_dir(&locked).unwrap();
    std::fs::write(locked.join("spam-DDDDDDDDDDDD"), b"x").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = tempfile::tempdir().unwrap();
    std::fs::set_permissions(out.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let as_nobody = |args: &[&str]| {
        let mut c = std::process::Command::new(bin());
        c.args(args)
            .env("FAKE_SENDMAIL_DIR", out.path())
            .uid(uid)
            .gid(gid)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        wait_output(c.spawn().unwrap(), std::time::Duration::from_secs(60))
    };
    let cfg = f.config.to_str().unwrap().to_string();
    let l = as_nobody(&["-c", &cfg, "quarantine", "list"]);
    assert_eq!(l.code, 0, "{} {}", l.stdout, l.stderr);
    assert!(l.stdout.contains(&id), "{}", l.stdout);
    assert!(
        l.stderr.contains("warning: skipping") && l.stderr.contains(locked.to_str().unwrap()),
        "{}",
        l.stderr
    );
    let rel = as_nobody(&["-c", &cfg, "release", &id]);
    assert_eq!(rel.code, 0, "{} {}", rel.stdout, rel.stderr);
    assert!(
        rel.stderr.contains(locked.to_str().unwrap()),
        "{}",
        rel.stderr
    );
    assert!(out.path().join("call0.msg").exists());
    let rel = as_nobody(&["-c", &cfg, "release", "DDDDDDDDDDDD"]);
    assert_eq!(rel.code, 66, "{}", rel.stderr);
    assert!(
        rel.stderr.contains("(1 subdirectories could not be read)"),
        "{}",
        rel.stderr
    );
}

/// A planted .gz of 2 MB that inflates to 2 GB: release refuses it at 4 x max_message_size
/// (+1 MiB), with a clear error, inside a 512 MB address-space limit.
#[test]
fn a_gzip_bomb_is_refused_without_inflating_it() {
    let f = spam_filter("[general]\nmax_message_size = \"1M\"\n");
    let q = f.quarantine_dir();
    std::fs::create_dir_all(&q).unwrap();
    let path = q.join("spam-EEEEEEEEEEEE.gz");
    let record = pipescan::act::quarantine::record::Record {
        id: "EEEEEEEEEEEE".into(),
        sender: "s@spam.example".into(),
        recipients: vec!["bob@example.com".into()],
        category: "SPAM".into(),
        reason: "score=100".into(),
        score: Some("100".into()),
    };
    let first = [record.block("\n").as_bytes(), b"Subject: boom\n\n"].concat();
    let mut gz = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(gz.stdin.as_mut().unwrap(), &first).unwrap();
    let mut file = gz.wait_with_output().unwrap().stdout;
    let zeros = std::process::Command::new("sh")
        .args(["-c", "head -c 67108864 /dev/zero | gzip -c"])
        .output()
        .unwrap()
        .stdout;
    for _ in 0..32 {
        file.extend_from_slice(&zeros);
    }
    assert!(file.len() < 4 << 20, "{}", file.len());
    std::fs::write(&path, &file).unwrap();
    let mut c = std::process::Command::new("/bin/sh");
    c.arg("-c")
        .arg("ulimit -v 524288; exec \"$0\" \"$@\"")
        .arg(bin())
        .args(["-c", f.config.to_str().unwrap(), "release", "EEEEEEEEEEEE"])
        .env("FAKE_SENDMAIL_DIR", f.dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let started = std::time::Instant::now();
    let r = wait_output(c.spawn().unwrap(), std::time::Duration::from_secs(60));
    assert_eq!(r.code, 66, "{} {}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("holds more than 5242880 bytes once decompressed: refused"),
        "{}",
        r.stderr
    );
    assert_eq!(f.calls(), 0);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

/// The admin commands work with the options a filter command line starts with (as in a
/// master.cf copied to a shell), and `-v` logs to stderr.
#[test]
fn admin_commands_after_global_options() {
    let f = spam_filter("[destiny]\nspam = \"discard\"\n");
    let r = f.run(
        &["-v", "-f", "s@spam.example", "--", "bob@example.com"],
        b"From: s@spam.example\nSubject: hi\n\nbody\n",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let id = quarantine_id(&r.stderr);
    let cfg = f.config.to_str().unwrap().to_string();
    let dir = f.dir.path().to_str().unwrap().to_string();
    let l = run_bin(&["-c", &cfg, "quarantine", "list"], b"", &[]);
    assert_eq!(l.code, 0, "{} {}", l.stdout, l.stderr);
    assert!(l.stdout.contains(&id), "{}", l.stdout);
    let c = run_bin(&["-c", &cfg, "check-config"], b"", &[]);
    assert_eq!(c.code, 0, "{} {}", c.stdout, c.stderr);
    assert!(c.stdout.contains("configuration OK"), "{}", c.stdout);
    let rel = run_bin(
        &["-v", "-c", &cfg, "release", &id],
        b"",
        &[("FAKE_SENDMAIL_DIR", &dir)],
    );
    assert_eq!(rel.code, 0, "{} {}", rel.stdout, rel.stderr);
    assert_eq!(
        f.call_argv(0),
        ["-i", "-f", "s@spam.example", "--", "bob@example.com"]
    );
    assert!(
        rel.stderr.contains(&format!("Released {id}")),
        "-v logs: {}",
        rel.stderr
    );
}

/// Passed spam is kept when [quarantine] spam is on; a recipient at or above its own
/// quarantine_cutoff_level wants no copy, so with every recipient above it none is made.
#[test]
fn passed_spam_is_quarantined_unless_every_recipient_is_past_its_cutoff() {
    let cut =
        "[[per_recipient]]\nrecipients = [\"@example.com\"]\nquarantine_cutoff_level = 50.0\n";
    let f = spam_filter(cut);
    let r = f.run(
        &[
            "-v",
            "-f",
            "s@spam.example",
            "--",
            "bob@example.com",
            "carol@example.org",
        ],
        b"From: s@spam.example\nSubject: hi\n\nbody\n",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Passed SPAM"), "{}", r.stderr);
    assert_eq!(
        f.quarantined().len(),
        1,
        "carol has no cutoff: {}",
        r.stderr
    );
    let f = spam_filter(cut);
    let r = f.run(
        &["-v", "-f", "s@spam.example", "--", "bob@example.com"],
        b"From: s@spam.example\nSubject: hi\n\nbody\n",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        f.quarantined().is_empty(),
        "bob's 100 is past his cutoff 50"
    );
    assert_eq!(f.calls(), 1);
}

/// A quarantine directory made by install for the account pipescan runs as: a run as root,
/// with [general] user set (pipescan switches first) or not (what it makes is given to the
/// directory's owner), leaves the week directory and the file to that account.
#[test]
fn what_a_root_run_makes_in_the_quarantine_belongs_to_the_run_user() {
    use std::os::unix::fs::MetadataExt;
    assert!(is_root(), "this test runs as root (as in CI)");
    let (uid, gid) = nobody();
    for user in ["user = \"nobody\"\n", ""] {
        let f = spam_filter(&format!(
            "[general]\n{user}[destiny]\nspam = \"discard\"\n[quarantine]\nsubdirectory = \"%P\"\n"
        ));
        std::fs::set_permissions(f.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let q = f.quarantine_dir();
        std::fs::create_dir(&q).unwrap();
        std::os::unix::fs::chown(&q, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(&q, std::fs::Permissions::from_mode(0o700)).unwrap();
        let r = f.run(
            &["-v", "-f", "s@spam.example", "--", "bob@example.com"],
            b"From: s@spam.example\nSubject: hi\n\nbody\n",
        );
        assert_eq!(r.code, 0, "{user}: {}", r.stderr);
        let files = f.quarantined();
        assert_eq!(files.len(), 1, "{user}: {}", r.stderr);
        let week = files[0].parent().unwrap();
        assert_ne!(week, q);
        for p in [week, files[0].as_path()] {
            let m = std::fs::metadata(p).unwrap();
            assert_eq!((m.uid(), m.gid()), (uid, gid), "{user}: {}", p.display());
        }
        assert_eq!(std::fs::metadata(week).unwrap().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(&files[0]).unwrap().mode() & 0o777, 0o600);
    }
}

/// `quarantine expire` with files of different ages (mtimes set with std's File::set_modified):
/// a dry run removes nothing; the default age is `[quarantine] max_age` (here 10d); old files go
/// and new ones stay; a week subdirectory it emptied goes, one it did not empty or was empty
/// already stays; `--older-than 3d` overrides max_age; a missing directory is 66.
#[test]
fn quarantine_expire_removes_old_files_only() {
    use std::time::{Duration, SystemTime};
    let f = Filter::new("[quarantine]\nsubdirectory = \"%P\"\nmax_age = \"10d\"\n");
    let q = f.quarantine_dir();
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();
    // (week directory, file, age in days)
    let files = [
        ("2026-01", "spam-AAAAAAAAAAA1", 40),
        ("2026-01", "virus-AAAAAAAAAAA2.gz", 35),
        ("2026-40", "spam-BBBBBBBBBBB1", 11),
        ("2026-40", "banned-BBBBBBBBBBB2", 5),
        ("2026-48", "spam-CCCCCCCCCCC1", 0),
        ("", "virus-DDDDDDDDDDD1", 20),
    ];
    for (week, name, age) in files {
        let d = q.join(week);
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join(name);
        std::fs::write(&p, b"X-Pipescan-Quarantine: x\n\nbody\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(now - day * age)
            .unwrap();
    }
    std::fs::create_dir(q.join("2025-52")).unwrap();
    let exists = |week: &str, name: &str| q.join(week).join(name).exists();
    let cfg = f.config.to_str().unwrap().to_string();

    let dry = run_bin(&["-c", &cfg, "quarantine", "expire", "-n", "-v"], b"", &[]);
    assert_eq!(dry.code, 0, "{} {}", dry.stdout, dry.stderr);
    assert!(
        dry.stdout.contains("would remove 4 files") && dry.stdout.contains("2 kept"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("spam-AAAAAAAAAAA1") && !dry.stdout.contains("BBBBBBBBBBB2"),
        "{}",
        dry.stdout
    );
    for (week, name, _) in files {
        assert!(exists(week, name), "a dry run removed {week}/{name}");
    }

    let r = run_bin(&["-c", &cfg, "quarantine", "expire"], b"", &[]);
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout.lines().count(),
        1,
        "only the summary without -v: {}",
        r.stdout
    );
    assert!(
        r.stdout.contains("removed 4 files")
            && r.stdout.contains("1 empty subdirectories")
            && r.stdout.contains("older than 10d")
            && r.stdout.contains("2 kept"),
        "{}",
        r.stdout
    );
    for (week, name, age) in files {
        assert_eq!(
            exists(week, name),
            age <= 10,
            "{week}/{name}, {age} days old"
        );
    }
    assert!(!q.join("2026-01").exists(), "the week it emptied stays");
    assert!(q.join("2026-40").is_dir() && q.join("2025-52").is_dir());
    assert!(q.is_dir());

    let r = run_bin(
        &[
            "-c",
            &cfg,
            "quarantine",
            "expire",
            "--older-than",
            "3d",
            "-v",
        ],
        b"",
        &[],
    );
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert!(r.stdout.contains("banned-BBBBBBBBBBB2"), "{}", r.stdout);
    assert!(r.stdout.contains("removed 1 files"), "{}", r.stdout);
    assert!(!exists("2026-40", "banned-BBBBBBBBBBB2") && exists("2026-48", "spam-CCCCCCCCCCC1"));
    assert!(!q.join("2026-40").exists());

    let bad = run_bin(
        &["-c", &cfg, "quarantine", "expire", "--older-than", "3w"],
        b"",
        &[],
    );
    assert_eq!(bad.code, 64, "{}", bad.stderr);
    std::fs::remove_dir_all(&q).unwrap();
    let gone = run_bin(&["-c", &cfg, "quarantine", "expire"], b"", &[]);
    assert_eq!(gone.code, 66, "{}", gone.stderr);
    assert!(gone.stderr.contains(q.to_str().unwrap()), "{}", gone.stderr);
}

/// `[quarantine] max_age` is checked with the rest of the config: no unit, or under a minute,
/// is a configuration error naming the key.
#[test]
fn quarantine_max_age_is_validated() {
    for (value, says) in [("\"0s\"", "at least 1m"), ("30", "bare number")] {
        let f = Filter::new(&format!("[quarantine]\nmax_age = {value}\n"));
        let cfg = f.config.to_str().unwrap().to_string();
        let r = run_bin(&["-c", &cfg, "quarantine", "expire"], b"", &[]);
        assert_eq!(r.code, 78, "{}", r.stderr);
        assert!(
            r.stderr.contains("max_age") && r.stderr.contains(says),
            "{}",
            r.stderr
        );
    }
}

/// Run as the quarantine's owner (nobody here), `quarantine expire` that cannot remove a file
/// (in a week directory root made, 0755) names it, removes the rest and exits 73.
#[test]
fn quarantine_expire_that_cannot_remove_a_file_says_so_and_exits_73() {
    use std::os::unix::process::CommandExt;
    assert!(
        is_root(),
        "this test runs as root (as in CI): it switches to nobody"
    );
    let (uid, gid) = nobody();
    let f = Filter::new("[quarantine]\nsubdirectory = \"%P\"\n");
    std::fs::set_permissions(f.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let q = f.quarantine_dir();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(90 * 86_400);
    let plant = |week: &str, name: &str| {
        let d = q.join(week);
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join(name);
        std::fs::write(&p, b"x").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(old)
            .unwrap();
        p
    };
    let mine = plant("2026-10", "spam-EEEEEEEEEEEE");
    let roots = plant("2026-11", "spam-FFFFFFFFFFFF");
    for p in [&q, &q.join("2026-10"), &mine] {
        std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
    }
    let cfg = f.config.to_str().unwrap().to_string();
    let mut c = std::process::Command::new(bin());
    c.args(["-c", &cfg, "quarantine", "expire"])
        .uid(uid)
        .gid(gid)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let r = wait_output(c.spawn().unwrap(), std::time::Duration::from_secs(60));
    assert_eq!(r.code, 73, "{} {}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("cannot remove") && r.stderr.contains("spam-FFFFFFFFFFFF"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("removed 1 files") && r.stdout.contains("1 could not be removed"),
        "{}",
        r.stdout
    );
    assert!(!mine.exists() && roots.exists());
}
