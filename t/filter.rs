//! The filter core through the built binary, with a recording fake sendmail (t/bin/fake-sendmail).
//!
//! Each test is one admin's story: a message in, the exact bytes and argv handed to sendmail, the
//! exit code the MTA sees, and the status line it would put in a bounce or the queue.

mod common;

use common::*;
use std::io::Write;
use std::time::{Duration, Instant};

/// Every fixture t/msg/NAME.eml must come out as t/msg/NAME.out, as LF and as CRLF.
#[test]
fn golden_fixtures_lf_and_crlf() {
    let mut names: Vec<_> = std::fs::read_dir(repo().join("t/msg"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 10,
        "fixture list is (nearly) empty: {names:?}"
    );
    let mut failures = Vec::new();
    for path in &names {
        let input = std::fs::read(path).unwrap();
        let expected = std::fs::read(path.with_extension("out")).unwrap();
        for crlf in [false, true] {
            let (input, expected) = if crlf {
                (to_crlf(&input), to_crlf(&expected))
            } else {
                (input.clone(), expected.clone())
            };
            // These fixtures are about bytes; several are odd on purpose (no Date, NUL bytes,
            // 8-bit fields), which the bad-header check would flag with an alert field. That
            // alert has tests of its own (t/policy.rs).
            let f = Filter::new("[bad_header]\nenabled = false\n");
            let r = f.run(
                &["-f", "alice@example.org", "--", "bob@example.com"],
                &input,
            );
            assert_eq!(r.code, 0, "{}: {}", path.display(), r.stderr);
            let got = f.call_msg(0);
            if got != expected {
                let tag = if crlf { "crlf" } else { "lf" };
                let failed = path.with_extension(format!("{tag}.failed"));
                std::fs::write(&failed, &got).unwrap();
                failures.push(format!(
                    "{} ({tag}): see {}",
                    path.display(),
                    failed.display()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches:\n{}",
        failures.join("\n")
    );
}

#[test]
fn argv_is_sendmail_i_f_sender_dashdash_recipients() {
    let f = Filter::new("");
    let r = f.run(
        &[
            "-f",
            "alice@example.org",
            "--",
            "bob@example.com",
            "carol@example.net",
        ],
        PLAIN,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        f.call_argv(0),
        [
            "-i",
            "-f",
            "alice@example.org",
            "--",
            "bob@example.com",
            "carol@example.net"
        ]
    );
    assert_eq!(f.calls(), 1);
}

#[test]
fn null_sender_stays_null() {
    let f = Filter::new("");
    let r = f.run(&["-f", "", "--", "postmaster@example.com"], PLAIN);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        f.call_argv(0),
        ["-i", "-f", "", "--", "postmaster@example.com"]
    );
}

#[test]
fn recipient_that_looks_like_an_option_is_an_address() {
    let f = Filter::new("");
    let r = f.run(
        &["-f", "a@example.org", "--", "-oQ/tmp/x@example.com"],
        PLAIN,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        f.call_argv(0),
        ["-i", "-f", "a@example.org", "--", "-oQ/tmp/x@example.com"]
    );
}

#[test]
fn positional_form_like_pf_spamfilt() {
    let f = Filter::new("");
    let r = f.run(&["a@example.org", "b@example.com", "c@example.com"], PLAIN);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        f.call_argv(0),
        [
            "-i",
            "-f",
            "a@example.org",
            "--",
            "b@example.com",
            "c@example.com"
        ]
    );
}

#[test]
fn sendmail_exit_codes_become_ours() {
    // (fake sendmail behaviour, on_hard_failure, our exit, status prefix)
    let cases = [
        ("0", "tempfail", 0, ""),
        ("75", "tempfail", 75, "4.3.0"),
        ("69", "tempfail", 75, "4.3.0"),
        ("69", "bounce", 69, "5.3.0"),
        ("1", "bounce", 75, "4.3.0"),
        ("64", "bounce", 75, "4.3.0"),
        ("78", "bounce", 75, "4.3.0"),
        ("kill", "tempfail", 75, "4.3.0"),
    ];
    for (behaviour, hard, code, status) in cases {
        let f = Filter::new(&format!("[reinject]\non_hard_failure = \"{hard}\"\n"));
        let r = f
            .env("FAKE_SENDMAIL_EXIT", behaviour)
            .env("FAKE_SENDMAIL_SAY", "5.7.1 cleanup said no")
            .run(&["-f", "a@example.org", "--", "b@example.com"], PLAIN);
        assert_eq!(r.code, code, "sendmail {behaviour}/{hard}: {}", r.stderr);
        assert!(
            r.stdout.starts_with(status),
            "sendmail {behaviour}: stdout {:?}",
            r.stdout
        );
        if code != 0 {
            assert_eq!(
                r.stdout.lines().count(),
                1,
                "one status line: {:?}",
                r.stdout
            );
        }
    }
}

/// A sendmail that exits 0 without reading the message (bigger than a pipe buffer) may have
/// queued a truncated copy: only a retry guarantees the whole message arrives.
#[test]
fn sendmail_that_does_not_read_the_message_is_not_success() {
    let mut big = PLAIN.to_vec();
    big.extend(std::iter::repeat_n(b'x', 1 << 20));
    let f = Filter::new("");
    let r = f
        .env("FAKE_SENDMAIL_EXIT", "noread")
        .run(&["-f", "a@example.org", "--", "b@example.com"], &big);
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("exited 0 before reading the whole message"),
        "{}",
        r.stdout
    );
}

#[test]
fn status_line_carries_sendmail_reason() {
    let f = Filter::new("[reinject]\non_hard_failure = \"bounce\"\n");
    let r = f
        .env("FAKE_SENDMAIL_EXIT", "69")
        .env("FAKE_SENDMAIL_SAY", "550 5.7.1 rejected by cleanup")
        .run(&["-f", "a@example.org", "--", "b@example.com"], PLAIN);
    assert_eq!(r.code, 69);
    assert!(
        r.stdout.contains("exit 69: 550 5.7.1 rejected by cleanup"),
        "{}",
        r.stdout
    );
}

#[test]
fn mail_loop_with_150_received_fields_is_refused() {
    let mut msg = Vec::new();
    for i in 0..150 {
        writeln!(
            msg,
            "Received: from hop{i}.example by hop{} ; Mon, 23 Nov 2026 10:00:00 +0000",
            i + 1
        )
        .unwrap();
    }
    msg.extend_from_slice(PLAIN);
    let f = Filter::new("");
    let r = f.run(&["-f", "a@example.org", "--", "b@example.com"], &msg);
    assert_eq!(r.code, 65);
    assert!(
        r.stdout.starts_with("5.4.6 mail forwarding loop"),
        "{}",
        r.stdout
    );
    assert_eq!(f.calls(), 0);
    // 100 is still fine (the limit is "more than 100").
    let msg100: Vec<u8> = msg
        .split(|&b| b == b'\n')
        .skip(50)
        .collect::<Vec<_>>()
        .join(&b'\n');
    let r = f.run(&["-f", "a@example.org", "--", "b@example.com"], &msg100);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn empty_input_is_kept_for_retry() {
    let f = Filter::new("");
    let r = f.run(&["-f", "a@example.org", "--", "b@example.com"], b"");
    assert_eq!(r.code, 75);
    assert!(r.stdout.starts_with("4.3.0 empty message"), "{}", r.stdout);
    assert_eq!(f.calls(), 0);
}

#[test]
fn control_characters_in_envelope_are_refused() {
    let f = Filter::new("");
    for args in [
        [
            "-f",
            "a@example.org",
            "--",
            "b@example.com\r\nBcc: evil@example.net",
        ],
        ["-f", "a@example.org\n", "--", "b@example.com"],
    ] {
        let r = f.run(&args, PLAIN);
        assert_eq!(r.code, 65, "{args:?}");
        assert!(r.stdout.starts_with("5.1.3 "), "{}", r.stdout);
    }
    assert_eq!(f.calls(), 0);
}

#[test]
fn bad_arguments_defer_instead_of_bouncing() {
    let f = Filter::new("");
    let r = f.run(
        &["--no-such-option", "a@example.org", "b@example.com"],
        PLAIN,
    );
    assert_eq!(r.code, 75);
    assert!(
        r.stdout.starts_with("4.3.5 pipescan: bad arguments"),
        "{}",
        r.stdout
    );
    // No recipients from an MTA (stdin is a pipe): defer, never 64.
    let r = f.run(&["-f", "a@example.org", "--"], PLAIN);
    assert_eq!(r.code, 75);
    assert!(
        r.stdout.starts_with("4.3.5 pipescan: no recipients"),
        "{}",
        r.stdout
    );
    assert_eq!(f.calls(), 0);
}

#[test]
fn config_errors_defer_mail_and_check_config_says_78() {
    let cases = [
        (
            "[general]\nmax_mesage_size = \"1M\"\n",
            ":2: key general.max_mesage_size: unknown field",
        ),
        (
            "[general]\nhostname = \"mx\"\ndeadline = \"600\"\n",
            ":3: key general.deadline: invalid duration",
        ),
        (
            "[destiny]\noversized = \"burn\"\n",
            ":2: key destiny.oversized: unknown variant",
        ),
        ("[general\n", ":1"),
        (
            "[reinject]\ncommand = []\n",
            ":2: key reinject.command: must name a program",
        ),
    ];
    for (text, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.toml");
        std::fs::write(&path, text).unwrap();
        let p = path.to_str().unwrap();
        let r = run_bin(
            &["-c", p, "-f", "a@example.org", "--", "b@example.com"],
            PLAIN,
            &[],
        );
        assert_eq!(r.code, 75, "{text}");
        assert!(
            r.stdout.starts_with("4.3.5 pipescan: configuration error"),
            "{}",
            r.stdout
        );
        assert!(
            r.stderr.contains(&format!("{p}{want}")),
            "{text}: {}",
            r.stderr
        );
        let r = run_bin(&["check-config", "-c", p], b"", &[]);
        assert_eq!(r.code, 78, "{text}");
        assert!(
            r.stderr.contains(&format!("{p}{want}")),
            "{text}: {}",
            r.stderr
        );
    }
    // A named file that does not exist is an error (only the default path may be missing).
    let r = run_bin(
        &[
            "-c",
            "/nonexistent/p.toml",
            "a@example.org",
            "b@example.com",
        ],
        PLAIN,
        &[],
    );
    assert_eq!(r.code, 75);
    assert!(
        r.stderr.contains("/nonexistent/p.toml: cannot read"),
        "{}",
        r.stderr
    );
    // An unknown policy bank too.
    let f = Filter::new("");
    let r = f.run(
        &[
            "--policy",
            "NOPE",
            "-f",
            "a@example.org",
            "--",
            "b@example.com",
        ],
        PLAIN,
    );
    assert_eq!(r.code, 75);
    assert!(r.stderr.contains("policy bank \"NOPE\""), "{}", r.stderr);
    assert_eq!(f.calls(), 0);
}

#[test]
fn shipped_example_config_is_valid() {
    let p = repo().join("conf/pipescan.toml");
    let r = run_bin(&["check-config", "-c", p.to_str().unwrap()], b"", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("configuration OK"));
    let r = run_bin(
        &[
            "check-config",
            "-c",
            p.to_str().unwrap(),
            "--policy",
            "ORIGINATING",
        ],
        b"",
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn stdout_mode_writes_the_message_and_calls_no_sendmail() {
    let f = Filter::new("[bad_header]\nenabled = false\n");
    let input = std::fs::read(repo().join("t/msg/mbox-from-line.eml")).unwrap();
    let r = f.run_bytes(
        &["--stdout", "-f", "a@example.org", "--", "b@example.com"],
        &input,
    );
    assert_eq!(r.code, 0);
    let expected = std::fs::read(repo().join("t/msg/mbox-from-line.out")).unwrap();
    assert_eq!(r.stdout_bytes, expected);
    assert_eq!(f.calls(), 0);
    // procmail gives no envelope at all: still fine.
    let r = f.run_bytes(&["--stdout"], &input);
    assert_eq!((r.code, r.stdout_bytes), (0, expected));
}

#[test]
fn dry_run_shows_verdict_argv_and_message_and_delivers_nothing() {
    let f = Filter::new("");
    let r = f.run(&["--dry-run", "-f", "", "--", "b@example.com"], PLAIN);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("verdict: Passed CLEAN {Relayed}"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("recipient <b@example.com>: category CLEAN, score -, destiny pass, group 1")
    );
    assert!(
        r.stdout.contains(&format!(
            "reinject argv [\"{}\", \"-i\", \"-f\", \"\", \"--\", \"b@example.com\"]",
            fake_sendmail()
        )),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("X-Virus-Scanned: pipescan at mx.test\nFrom: Alice")
    );
    assert_eq!(f.calls(), 0);
}

#[test]
fn log_line_is_amavisd_style() {
    let f = Filter::new("");
    let r = f.run(
        &["-v", "-f", "alice@example.org", "--", "bob@example.com"],
        PLAIN,
    );
    assert_eq!(r.code, 0);
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("Passed"))
        .unwrap_or("");
    assert!(
        line.contains(
            "Passed CLEAN {Relayed}, <alice@example.org> -> <bob@example.com>, Message-ID: <plain-1@example.org>, mail_id: "
        ),
        "{}",
        r.stderr
    );
    assert!(
        line.contains(&format!(", Hits: -, size: {}, ", PLAIN.len())),
        "{line}"
    );
    assert!(line.starts_with("pipescan["), "{line}");
    assert!(line.ends_with(" ms"), "{line}");
}

#[test]
fn scanned_tag_is_configurable_and_can_be_disabled() {
    let f = Filter::new(
        "[headers]\nx_header_tag = \"X-Scanned-By\"\nx_header_line = \"pipescan on %h (test)\"\n",
    );
    assert_eq!(f.run(&["a@example.org", "b@example.com"], PLAIN).code, 0);
    assert!(
        f.call_msg(0)
            .starts_with(b"X-Scanned-By: pipescan on mx.test (test)\nFrom: Alice")
    );
    let f = Filter::new("[headers]\nx_header_tag = \"\"\n");
    assert_eq!(f.run(&["a@example.org", "b@example.com"], PLAIN).code, 0);
    assert_eq!(f.call_msg(0), PLAIN);
}

/// A 60 MB message is above the 50M default: spooled to disk, not scanned, passed byte-exact,
/// with an alert that says it was not scanned (and no X-Virus-Scanned: it was not).
#[test]
fn sixty_megabyte_message_passes_byte_exact_as_oversized() {
    let body_line =
        b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/0123456789abcd\n";
    let mut msg =
        b"From: big@example.org\nSubject: sixty megabytes\nMessage-ID: <big@example.org>\n\n"
            .to_vec();
    while msg.len() < 60 * 1000 * 1000 {
        msg.extend_from_slice(body_line);
    }
    let f = Filter::new("");
    let r = f.run(
        &["-v", "-f", "big@example.org", "--", "bob@example.com"],
        &msg,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("Passed OVERSIZED {Relayed}"),
        "{}",
        r.stderr
    );
    let got = f.call_msg(0);
    let tag = b"X-Pipescan-Alert: not scanned (oversized: above general.max_message_size,\n\t52428800 bytes)\n";
    assert_eq!(got.len(), msg.len() + tag.len());
    assert!(
        got[..tag.len()] == tag[..] && got[tag.len()..] == msg[..],
        "bytes differ"
    );
}

#[test]
fn unwritable_tempdir_defers_a_large_message() {
    let f = Filter::new(
        "[general]\nmax_message_size = \"1K\"\ntempdir = \"/nonexistent/pipescan-tmp\"\n",
    );
    let mut big = PLAIN.to_vec();
    big.extend(std::iter::repeat_n(b'x', 5000));
    let r = f.run(&["-f", "a@example.org", "--", "b@example.com"], &big);
    assert_eq!(r.code, 75);
    assert!(
        r.stdout.starts_with(
            "4.3.0 reading the message: cannot create a spool file in /nonexistent/pipescan-tmp"
        ),
        "{}",
        r.stdout
    );
    assert_eq!(f.calls(), 0);
}

#[test]
fn sigterm_while_reading_defers() {
    let f = Filter::new("");
    let mut child = f
        .command(&["-f", "a@example.org", "--", "b@example.com"])
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"Subject: half a message\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    signal(child.id(), "TERM");
    let out = wait_output(child, Duration::from_secs(10));
    drop(stdin);
    assert_eq!(out.code, 75);
    assert!(
        out.stdout
            .starts_with("4.3.0 pipescan: interrupted by SIGTERM"),
        "{}",
        out.stdout
    );
    assert_eq!(f.calls(), 0);
}

#[test]
fn sigterm_during_reinjection_kills_sendmail_and_defers() {
    let f = Filter::new("");
    let mut child = f
        .env("FAKE_SENDMAIL_EXIT", "hang")
        .command(&["-f", "a@example.org", "--", "b@example.com"])
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(PLAIN).unwrap();
    // Wait until the fake sendmail has the message, then stop pipescan.
    let t = Instant::now();
    while !f.dir.path().join("call0.msg").exists() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    signal(child.id(), "TERM");
    let out = wait_output(child, Duration::from_secs(10));
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(
        out.stdout.contains("interrupted by SIGTERM"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("reinjection killed"), "{}", out.stdout);
}

#[test]
fn our_deadline_defers_before_the_mta_kills_us() {
    let f = Filter::new("[general]\ndeadline = \"1s\"\n");
    let t = Instant::now();
    let r = f
        .env("FAKE_SENDMAIL_EXIT", "hang")
        .run(&["-f", "a@example.org", "--", "b@example.com"], PLAIN);
    assert_eq!(r.code, 75);
    assert!(r.stdout.contains("deadline of 1s exceeded"), "{}", r.stdout);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn help_and_version_exit_0() {
    let r = run_bin(&["--version"], b"", &[]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("pipescan "));
    let r = run_bin(&["--help"], b"", &[]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("--dry-run"));
}

/// Started as root (a Sendmail prog mailer), pipescan becomes `[general] user` before it reads
/// the message; a user that does not exist is logged, never a reason to refuse mail. Not root,
/// the setting changes nothing.
#[test]
fn root_drops_to_the_configured_user_before_reading_the_message() {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        out.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let script = format!(
        "id -u > {0}/uid; id -G > {0}/groups; cat > {0}/msg",
        out.path().display()
    );
    let msg = b"From: a@example.org\nDate: Mon, 23 Nov 2026 10:00:00 +0000\nSubject: x\n\nhi\n";
    let argv = ["-f", "a@example.org", "--", "b@example.com"];
    let read = |f: &str| {
        std::fs::read_to_string(out.path().join(f))
            .unwrap()
            .trim()
            .to_string()
    };

    let f = Filter::new("[general]\nuser = \"nobody\"\n");
    f.set_reinject_command(&["/bin/sh", "-c", &script, "sh"]);
    let r = f.run_bytes(&argv, msg);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let nobody = std::process::Command::new("id")
        .args(["-u", "nobody"])
        .output()
        .unwrap();
    let nobody = String::from_utf8_lossy(&nobody.stdout).trim().to_string();
    let me = if root { nobody.clone() } else { read("uid") };
    assert_eq!(read("uid"), me, "the reinjection ran as {}", read("uid"));
    if root {
        assert_ne!(read("uid"), "0");
        assert!(
            !read("groups").split(' ').any(|g| g == "0"),
            "{}",
            read("groups")
        );
        assert!(!r.stderr.contains("running as root"), "{}", r.stderr);
    }
    assert!(read("msg").ends_with("hi"), "{}", read("msg"));

    let f = Filter::new("[general]\nuser = \"no-such-user-pipescan\"\n");
    f.set_reinject_command(&["/bin/sh", "-c", &script, "sh"]);
    let r = f.run_bytes(&argv, msg);
    assert_eq!(r.code, 0, "{}", r.stderr);
    if root {
        assert!(
            r.stderr.contains(
                "[general] user \"no-such-user-pipescan\" does not exist: running as root"
            ),
            "{}",
            r.stderr
        );
        assert_eq!(read("uid"), "0");
    } else {
        assert!(!r.stderr.contains("running as root"), "{}", r.stderr);
    }
}

/// With a `[loop_marker]` key, passed mail carries an HMAC marker with the scan results; the
/// same message coming back is not sent to spamd again: the marker's results go through this
/// run's own policy (here: the same bytes come out). A marker that does not verify (another key,
/// a changed body, none configured) is removed and the message is scanned: here the only spamd
/// refuses connections and `[spam] on_failure = "tempfail"`, so "scanned" shows as 75.
#[test]
fn the_loop_marker_skips_a_second_scan_only_when_it_verifies() {
    let key = "[loop_marker]\nkey = \"0123456789abcdef-test-key\"\n";
    let live_spamd = format!("[spamd]\nservers = [\"{}\"]\n", real_spamd());
    let dead_spamd = format!(
        "[spamd]\nservers = [\"{}\"]\n[spam]\non_failure = \"tempfail\"\n",
        refused_addr()
    );
    let msg = b"From: a@example.org\r\nTo: b@example.com\r\nSubject: hi\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m@example.org>\r\n\r\nbody\r\n";
    let argv = ["-v", "-f", "a@example.org", "--", "b@example.com"];

    // First pass, scanned by a real spamd: the marker is added.
    let first = Filter::new(&format!("{key}{live_spamd}"));
    let r = first.run_bytes(&argv, msg);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let scanned = first.call_msg(0);
    let text = String::from_utf8_lossy(&scanned);
    // Folded like our other long fields; unfolded it is "v2 HOST TIME 64-HEX RESULTS...".
    let at = text.find("X-Pipescan-Marker: ").expect("no marker");
    let rest = &text[at + "X-Pipescan-Marker: ".len()..];
    let end = (0..rest.len())
        .find(|&i| rest[i..].starts_with("\r\n") && !rest[i + 2..].starts_with([' ', '\t']))
        .unwrap();
    let value = rest[..end].replace("\r\n", "");
    let parts: Vec<&str> = value.split_whitespace().collect();
    assert!(parts.len() >= 5, "{value:?}");
    assert_eq!((parts[0], parts[1]), ("v2", "mx.test"), "{value:?}");
    assert_eq!(parts[3].len(), 64, "{value:?}");
    assert!(scanned.ends_with(msg));

    // Second pass with a dead spamd: trusted, so spamd is not asked, and this run's policy,
    // given the same results, writes the same bytes.
    let second = Filter::new(&format!("{key}{dead_spamd}"));
    let r = second.run_bytes(&argv, &scanned);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Passed CLEAN {Relayed}"), "{}", r.stderr);
    assert!(
        r.stderr.contains("already scanned by mx.test"),
        "{}",
        r.stderr
    );
    assert_eq!(
        String::from_utf8_lossy(&second.call_msg(0)),
        String::from_utf8_lossy(&scanned)
    );

    // The body changed after scanning: not trusted, scanned (spamd down: 75).
    let mut changed = scanned.clone();
    let n = changed.len();
    changed[n - 3] = b'Y';
    let r = second.run_bytes(&argv, &changed);
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(
        r.stderr.contains("untrusted X-Pipescan-Marker (bad MAC"),
        "{}",
        r.stderr
    );

    // Another site's key: not trusted either.
    let other = Filter::new(&format!(
        "[loop_marker]\nkey = \"another-sites-key-0123\"\n{dead_spamd}"
    ));
    let r = other.run_bytes(&argv, &scanned);
    assert_eq!(r.code, 75, "{}", r.stderr);

    // No key here: the marker is a forgery to remove, and none is added.
    let plain = Filter::new("");
    let r = plain.run_bytes(&argv, &scanned);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = plain.call_msg(0);
    assert!(
        !String::from_utf8_lossy(&out).contains("X-Pipescan-Marker"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert!(out.ends_with(msg));

    // A key file works like the key; a missing one is logged and mail still flows, scanned.
    let dir = tempfile::tempdir().unwrap();
    let kf = dir.path().join("marker.key");
    std::fs::write(&kf, "0123456789abcdef-test-key\n").unwrap();
    // A secret: not readable by every user (0644 is refused since issue 13 #3).
    std::fs::set_permissions(&kf, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let from_file = Filter::new(&format!(
        "[loop_marker]\nkey_file = \"{}\"\n{dead_spamd}",
        kf.display()
    ));
    let r = from_file.run_bytes(&argv, &scanned);
    assert_eq!(r.code, 0, "{}", r.stderr);
    std::fs::remove_file(&kf).unwrap();
    let r = from_file.run_bytes(&argv, &scanned);
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(r.stderr.contains("loop marker key: "), "{}", r.stderr);

    // Marked where no spam scanner was configured: the marker does not say spam was checked,
    // so a run that has spamd asks it (down: 75), never takes the missing check as passed.
    let no_spamd = Filter::new(key);
    let r = no_spamd.run_bytes(&argv, msg);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let unscanned_for_spam = no_spamd.call_msg(0);
    assert!(String::from_utf8_lossy(&unscanned_for_spam).contains("X-Pipescan-Marker: v2"));
    let r = second.run_bytes(&argv, &unscanned_for_spam);
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("X-Pipescan-Marker of mx.test does not cover the spam check"),
        "{}",
        r.stderr
    );
}

fn marker_of(msg: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(msg);
    let fields = unfold_fields(&text[..text.find("\r\n\r\n").unwrap_or(text.len())]).ok()?;
    fields
        .into_iter()
        .find(|f| f.starts_with("X-Pipescan-Marker:"))
}

/// The attacks of the hostile review: a marker never vouches for mail whose checks were
/// bypassed, and never for a body read another way than the one scanned. Both replays end
/// BANNED; a bypassed copy is not marked; a scan that failed open is not marked.
#[test]
fn a_marker_never_vouches_for_bypassed_or_reshaped_mail() {
    let key = "[loop_marker]\nkey = \"0123456789abcdef-test-key\"\n";
    let argv = ["-v", "-f", "a@example.org", "--", "b@example.com"];
    let head = "From: a@example.org\r\nTo: b@example.com\r\nSubject: invoice\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m@example.org>\r\nMIME-Version: 1.0\r\n";
    let exe_part = "--XX\r\nContent-Type: application/octet-stream; name=\"invoice.exe\"\r\nContent-Disposition: attachment; filename=\"invoice.exe\"\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAA=\r\n--XX--\r\n";

    // 1. The shipped ORIGINATING bank bypasses every check: the .exe is passed, unmarked.
    let shipped = std::fs::read_to_string(repo().join("conf/pipescan.toml")).unwrap();
    let bank = &shipped[shipped.find("[policy.ORIGINATING").unwrap()..];
    let bank = &bank[..bank.find("\n\n").unwrap_or(bank.len())];
    let local = Filter::new(&format!("{key}{bank}\n"));
    let exe = format!("{head}Content-Type: multipart/mixed; boundary=XX\r\n\r\n{exe_part}");
    let mut args = vec!["--policy", "ORIGINATING"];
    args.extend(argv);
    let r = local.run_bytes(&args, exe.as_bytes());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let passed = local.call_msg(0);
    assert_eq!(marker_of(&passed), None, "a bypassed copy was marked");
    // Sent on to another recipient through the default policy: BANNED.
    let mx = Filter::new(key);
    let r = mx.run_bytes(&argv, &passed);
    assert!(r.stderr.contains("Blocked BANNED"), "{}", r.stderr);
    assert_eq!(mx.calls(), 0);

    // 2. A text/plain body that holds a MIME part: clean, and marked...
    let plain = format!("{head}Content-Type: text/plain\r\n\r\n{exe_part}");
    let r = mx.run_bytes(&argv, plain.as_bytes());
    assert!(r.stderr.contains("Passed CLEAN"), "{}", r.stderr);
    let marked = mx.call_msg(0);
    assert!(marker_of(&marked).is_some());
    // ... replayed as a multipart: the marker does not verify, the .exe is found.
    let replay = String::from_utf8_lossy(&marked).replace(
        "Content-Type: text/plain\r\n",
        "Content-Type: multipart/mixed; boundary=XX\r\n",
    );
    let r = mx.run_bytes(&argv, replay.as_bytes());
    assert!(r.stderr.contains("Blocked BANNED"), "{}", r.stderr);
    assert!(
        r.stderr.contains("untrusted X-Pipescan-Marker (bad MAC"),
        "{}",
        r.stderr
    );
    // ... and with a second Content-Type field added below the real one: the same.
    let added = String::from_utf8_lossy(&marked).replace(
        "Content-Type: text/plain\r\n",
        "Content-Type: text/plain\r\nContent-Type: multipart/mixed; boundary=XX\r\n",
    );
    let r = mx.run_bytes(&argv, added.as_bytes());
    assert!(
        r.stderr.contains("untrusted X-Pipescan-Marker (bad MAC"),
        "{}",
        r.stderr
    );
    assert_eq!(mx.calls(), 1, "a replay was delivered");

    // 3. A banned-files lover's copy is marked (the virus scan and spam scan ran), but the
    // next run checks banned files itself: blocked for a recipient who is no lover.
    let lover = Filter::new(&format!(
        "{key}[lists]\nbanned_files_lovers = [\"b@example.com\"]\n"
    ));
    let r = lover.run_bytes(&argv, exe.as_bytes());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let loved = lover.call_msg(0);
    assert!(marker_of(&loved).is_some());
    let other = ["-v", "-f", "a@example.org", "--", "c@example.com"];
    let r = mx.run_bytes(&other, &loved);
    assert!(
        r.stderr.contains("already scanned by mx.test"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Blocked BANNED"), "{}", r.stderr);
    assert_eq!(
        mx.calls(),
        1,
        "the lover's copy was delivered to another recipient"
    );

    // 4. A spam scan that failed open (on_failure = "pass") vouches for nothing.
    let failed_open = Filter::new(&format!(
        "{key}[spamd]\nservers = [\"{}\"]\n[spam]\non_failure = \"pass\"\n",
        refused_addr()
    ));
    let clean = format!("{head}Content-Type: text/plain\r\n\r\nhello\r\n");
    let r = failed_open.run_bytes(&argv, clean.as_bytes());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(marker_of(&failed_open.call_msg(0)), None);
}

/// A virus lover's copy carries the virus name under the marker: the next run, which does not
/// ask clamd again (here it could not: its clamd is down and fails closed), blocks it for a
/// recipient who is no lover.
#[test]
fn a_virus_lovers_marked_copy_is_still_infected_for_the_next_run() {
    let key = "[loop_marker]\nkey = \"0123456789abcdef-test-key\"\n";
    let lover = Filter::new(&format!(
        "{key}[clamd]\nservers = [\"{}\"]\n[lists]\nvirus_lovers = [\"b@example.com\"]\n",
        real_clamd()
    ));
    let mut msg = b"From: a@example.org\r\nTo: b@example.com\r\nSubject: x\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <v@example.org>\r\n\r\n".to_vec();
    msg.extend_from_slice(&eicar());
    msg.extend_from_slice(b"\r\n");
    let r = lover.run_bytes(&["-v", "-f", "a@example.org", "--", "b@example.com"], &msg);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let loved = lover.call_msg(0);
    assert!(
        marker_of(&loved).is_some(),
        "{}",
        String::from_utf8_lossy(&loved)
    );
    let next = Filter::new(&format!(
        "{key}[clamd]\nservers = [\"/nonexistent/clamd.sock\"]\n[virus]\non_failure = \"tempfail\"\n"
    ));
    let r = next.run_bytes(
        &["-v", "-f", "a@example.org", "--", "c@example.com"],
        &loved,
    );
    assert!(
        r.stderr.contains("already scanned by mx.test"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Blocked INFECTED"), "{}", r.stderr);
    assert_eq!(next.calls(), 0);
}

/// A deferral's log line names the Message-ID, so the admin can match it to the message when
/// the MTA retries it.
#[test]
fn a_deferral_log_line_names_the_message_id() {
    let f = Filter::new("[clamd]\nservers = [\"/nonexistent/clamd.sock\"]\n");
    let msg = b"From: a@example.org\nDate: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <defer-me@example.org>\nSubject: x\n\nhi\n";
    let r = f.run_bytes(&["-f", "a@example.org", "--", "b@example.com"], msg);
    assert_eq!(r.code, 75, "{}", r.stderr);
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("TempFailed {75}"))
        .unwrap_or_else(|| panic!("no deferral line: {}", r.stderr));
    assert!(
        line.contains(", Message-ID: <defer-me@example.org>, mail_id: "),
        "{line}"
    );
    assert!(line.contains(", size: "), "{line}");
    assert_eq!(f.calls(), 0);
}

// ---- log lines that existing tools read (issue 13) -----------------------------------------

/// A message with a Windows program attached: banned, discarded and quarantined by default,
/// no scanner needed.
fn banned_mail() -> Vec<u8> {
    let exe = base64_lines(
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00 not really a program",
    );
    format!(
        "From: mallory@example.net\nTo: bob@example.com\nSubject: invoice\nDate: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <att@example.net>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\nsee attachment\n--b1\nContent-Type: application/octet-stream; name=\"invoice.pdf.exe\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"invoice.pdf.exe\"\n\n{exe}\n--b1--\n"
    )
    .into_bytes()
}

/// The summary line of a run's stderr (`-v`).
fn summary_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.contains(" -> <"))
        .unwrap_or_else(|| panic!("no summary line: {stderr}"))
}

/// `--queue-id` puts the MTA's queue id first, as Postfix's own lines have it; then amavisd's
/// log id token; and every summary line names the run's mail_id, which is the quarantine id of
/// a quarantined message.
#[test]
fn log_lines_start_with_the_queue_id_and_always_name_the_mail_id() {
    let f = Filter::new("");
    let args = [
        "-v",
        "--queue-id",
        "4F1A2B3C4D",
        "-f",
        "alice@example.org",
        "--",
        "bob@example.com",
    ];
    let r = f.run(&args, PLAIN);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = summary_line(&r.stderr);
    let re = regex::Regex::new(
        r"^pipescan\[(\d+)\]: 4F1A2B3C4D: \((\d{5,})-01\) Passed CLEAN \{Relayed\}, <alice@example\.org> -> <bob@example\.com>, Message-ID: <plain-1@example\.org>, mail_id: [A-Za-z0-9_-]{12}, Hits: -, size: \d+, \d+ ms$",
    )
    .unwrap();
    let c = re
        .captures(line)
        .unwrap_or_else(|| panic!("not the expected layout: {line}"));
    assert_eq!(c[1].parse::<u32>(), c[2].parse::<u32>(), "{line}");
    // Every line of the run, not only the summary.
    for l in r.stderr.lines() {
        assert!(l.contains("]: 4F1A2B3C4D: ("), "{l}");
    }

    // A quarantined message: its quarantine id is the mail_id.
    let r = f.run(
        &[
            "-v",
            "--queue-id",
            "5B2C3D4E5F",
            "-f",
            "mallory@example.net",
            "--",
            "bob@example.com",
        ],
        &banned_mail(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = summary_line(&r.stderr);
    let re = regex::Regex::new(r"quarantine: ([A-Za-z0-9_-]{12}), Message-ID: <att@example\.net>, mail_id: ([A-Za-z0-9_-]{12}), ").unwrap();
    let c = re.captures(line).unwrap_or_else(|| panic!("{line}"));
    assert_eq!(&c[1], &c[2], "{line}");
    assert!(line.contains("5B2C3D4E5F: ("), "{line}");
    assert_eq!(f.quarantined().len(), 1);

    // No queue id (procmail, a shell): the token alone; a queue id that is not one is cleaned.
    let r = f.run(&["-v", "-f", "a@example.org", "--", "b@example.com"], PLAIN);
    assert!(
        regex::Regex::new(r"^pipescan\[\d+\]: \(\d{5,}-01\) Passed CLEAN")
            .unwrap()
            .is_match(summary_line(&r.stderr)),
        "{}",
        r.stderr
    );
    let r = f.run(
        &[
            "-v",
            "--queue-id",
            "a b:\u{1b}c",
            "-f",
            "a@example.org",
            "--",
            "b@example.com",
        ],
        PLAIN,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        summary_line(&r.stderr).contains("]: a_b__c: ("),
        "{}",
        r.stderr
    );
}

/// A log file line in the traditional syslog format, as mailgraph reads it: the header regex of
/// Parse::Syslog 1.10 (Debian's libparse-syslog-perl 1.10-4, Syslog.pm, sub _next_syslog),
/// then its program[pid] regex. (program, text).
fn parse_syslog(line: &str) -> Option<(String, String)> {
    let head = regex::Regex::new(
        r"^(\S{3})\s+(\d+)\s(\d+):(\d+):(\d+)(?:\s<\w+\.\w+>)?\s([-\w\.\@:]+)\s+(?:\[LOG_[A-Z]+\]\s+)?(.*)$",
    )
    .unwrap();
    let prog = regex::Regex::new(
        r"^([^:]+?)(?:\[(\d+)\])?:\s+(?:\[ID (\d+) ([a-z0-9]+)\.([a-z]+)\] )?(.*)$",
    )
    .unwrap();
    let text = head.captures(line)?[7].to_string();
    let c = prog.captures(&text)?;
    Some((c[1].to_string(), c[6].to_string()))
}

/// What mailgraph counts for one of its parsed lines: its amavis branch, copied from
/// mailgraph 1.14 (Debian's mailgraph 1.14-20, /usr/sbin/mailgraph, sub process_line).
fn mailgraph_event(prog: &str, text: &str) -> Option<&'static str> {
    if prog != "amavis" && prog != "amavisd" {
        return None;
    }
    let re = |p: &str| regex::Regex::new(p).unwrap();
    let tag2 = re(r"\btag2=");
    if re(r"^\([\w-]+\) (Passed|Blocked) SPAM(?:MY)?\b").is_match(text) {
        return (!tag2.is_match(text)).then_some("spam");
    }
    if re(r"^\([\w-]+\) (Passed|Not-Delivered)\b.*\bquarantine spam").is_match(text) {
        return Some("spam");
    }
    if re(r"^\([\w-]+\) (Passed |Blocked )?INFECTED\b").is_match(text)
        || re(r"^\([\w-]+\) (Passed |Blocked )?BANNED\b").is_match(text)
    {
        return (!tag2.is_match(text)).then_some("virus");
    }
    None
}

/// What amavis-logwatch makes of a log file line, standalone with `--syslog_name amavis` (its
/// default): the header it strips, the log id it strips, then its Passed/Blocked pattern,
/// copied from logwatch 7.7 (Debian's logwatch 7.7-1, scripts/services/amavis, main loop).
/// (action, ccatmajor, from, reciplist, hits, size).
fn amavis_logwatch(line: &str) -> Option<[String; 6]> {
    let re = |p: &str| regex::Regex::new(p).unwrap();
    let header = re(
        r"^[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} (?:<[^>]+> )?\S+ amavis(?:\[\d+\])?: (?:\[ID \d+ \w+\.\w+\] )?",
    );
    let p1 = header.replace(line, "");
    if p1.len() == line.len() {
        return None;
    }
    let p1 = match re(r"^\(([^)]+)\) (.*)$").captures(&p1) {
        Some(c) => c[2].to_string(),
        None => p1.to_string(),
    };
    let c = re(r"^(Passed|Blocked)(.*)").captures(&p1)?;
    let action = c[1].to_lowercase();
    let rest = c[2].trim_start().to_string();
    let c = re(r"^(CLEAN|SPAM(?:MY)?|INFECTED \(.*?\)|BANNED \(.*?\)|BAD-HEADER(?:-\d)?|UNCHECKED|MTA-BLOCKED|OVERSIZED|OTHER|TEMPFAIL)(?: \{[^}]+\})?, ([^\[]+ )?(?:([^<]+) )?[<(](.*?)[>)] -> ([(<].*?[)>]), (?:.*Hits: ([-+.\d]+))(?:.* size: (\d+))?(?:.* autolearn=(\w+))?").captures(&rest)?;
    let g = |i: usize| c.get(i).map_or(String::new(), |m| m.as_str().to_string());
    Some([action, g(1), g(4), g(5), g(6), g(7)])
}

/// With the ident mailgraph and logwatch select (`amavis`), our summary lines are what both
/// count: the lines a real run wrote to `[general] log_file`, read with those tools' own
/// patterns (copied above, their sources named). With our default ident the queue id comes
/// first, where these anchored patterns cannot have it: they read no line of ours then.
#[test]
fn mailgraph_and_amavis_logwatch_read_our_summary_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let f = Filter::new(&format!(
        "[general]\nsyslog_ident = \"amavis\"\nlog_file = \"{}\"\n[lists]\nblacklist_sender = [\"promo@example.net\"]\n[clamd]\nservers = [\"{}\"]\n",
        log.display(),
        real_clamd()
    ));
    let run = |qid: &str, from: &str, msg: &[u8]| {
        let r = f.run(
            &["--queue-id", qid, "-f", from, "--", "bob@example.com"],
            msg,
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
    };
    run("1A2B3C4D5E", "alice@example.org", PLAIN);
    run("2B3C4D5E6F", "promo@example.net", PLAIN);
    run("3C4D5E6F70", "mallory@example.net", &banned_mail());
    let eicar = format!(
        "From: mallory@example.net\nTo: bob@example.com\nSubject: x\nDate: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <eicar@example.net>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\nhi\n--b1\nContent-Type: application/octet-stream; name=\"e.com\"\nContent-Transfer-Encoding: base64\n\n{}\n--b1--\n",
        base64_lines(&eicar())
    );
    run("4D5E6F7081", "mallory@example.net", eicar.as_bytes());
    let text = std::fs::read_to_string(&log).unwrap();
    let summaries: Vec<&str> = text.lines().filter(|l| l.contains(" -> <")).collect();
    assert_eq!(summaries.len(), 4, "{text}");

    // amavisd-new's own layout: the queue id in its Queue-ID field.
    let amavisd = regex::Regex::new(r"\]: \(\d{5,}-01\) (Passed|Blocked) .*, Queue-ID: [0-9A-F]{10}, Message-ID: <[^>]+>, mail_id: [\w-]{12}, Hits: ").unwrap();
    let mut events = Vec::new();
    let mut logwatch = Vec::new();
    for l in &summaries {
        let (prog, msg) = parse_syslog(l).unwrap_or_else(|| panic!("Parse::Syslog: {l}"));
        assert_eq!(prog, "amavis", "{l}");
        events.push(mailgraph_event(&prog, &msg));
        let got = amavis_logwatch(l).unwrap_or_else(|| panic!("amavis-logwatch: {l}"));
        logwatch.push(got[..2].join(" "));
        assert_eq!(got[3], "<bob@example.com>", "{l}");
        assert_eq!(got[4], "-", "{l}");
        assert!(got[5].parse::<u64>().is_ok(), "{l}");
        assert!(amavisd.is_match(l), "{l}");
    }
    assert_eq!(events, [None, Some("spam"), Some("virus"), Some("virus")]);
    assert_eq!(
        logwatch,
        [
            "passed CLEAN",
            "passed SPAM",
            "blocked BANNED (invoice.pdf.exe (part 2: double extension .pdf.exe))",
            "blocked INFECTED (Test.EICAR-NDB.UNOFFICIAL)"
        ]
    );

    // The default ident, with a queue id: first on the line, so neither tool reads it.
    let f = Filter::new(&format!("[general]\nlog_file = \"{}\"\n", log.display()));
    let r = f.run(
        &[
            "--queue-id",
            "5E6F708192",
            "-f",
            "alice@example.org",
            "--",
            "bob@example.com",
        ],
        PLAIN,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(&log).unwrap();
    let last = text.lines().last().unwrap();
    let (prog, msg) = parse_syslog(last).unwrap();
    assert_eq!(prog, "pipescan");
    assert!(msg.starts_with("5E6F708192: ("), "{msg}");
    assert_eq!(mailgraph_event("amavis", &msg), None);
    assert!(amavis_logwatch(&last.replace("pipescan[", "amavis[")).is_none());
}

/// 5,000 recipients: each datagram stays under 2 KB (rsyslog cuts at 8 KB and dropped the ends
/// of our 114 KB lines), and what matters, at the end of the line, survives: queue id, mail_id,
/// Message-ID, quarantine id, size, time; the recipients that do not fit are counted.
#[test]
fn a_run_with_5000_recipients_logs_datagrams_under_2_kb() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("log.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let f = Filter::new("");
    let text = std::fs::read_to_string(&f.config).unwrap().replacen(
        "syslog = false\n",
        &format!(
            "syslog = true\nsyslog_socket = \"{}\"\n",
            sock_path.display()
        ),
        1,
    );
    std::fs::write(&f.config, text).unwrap();
    let rcpts: Vec<String> = (0..5000)
        .map(|i| format!("recipient-number-{i:04}@example.com"))
        .collect();
    let mut args = vec![
        "--queue-id",
        "4F1A2B3C4D",
        "-f",
        "mallory@example.net",
        "--",
    ];
    args.extend(rcpts.iter().map(|s| s.as_str()));
    let r = f.run(&args, &banned_mail());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut datagrams = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    while let Ok(n) = sock.recv(&mut buf) {
        datagrams.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(!datagrams.is_empty(), "nothing logged: {}", r.stderr);
    for d in &datagrams {
        assert!(d.len() < 2048, "a {}-byte datagram: {d}", d.len());
    }
    let line = datagrams
        .iter()
        .find(|d| d.contains("Blocked BANNED"))
        .unwrap_or_else(|| panic!("no summary: {datagrams:?}"));
    let re = regex::Regex::new(
        r"^<22>pipescan\[\d+\]: 4F1A2B3C4D: \(\d{5,}-01\) Blocked BANNED \(invoice\.pdf\.exe .*\) \{Discarded\}, <mallory@example\.net> -> <recipient-number-0000@example\.com>,<recipient-number-0001@example\.com>,.*,\(\.\.\. and (\d+) more\), quarantine: ([\w-]{12}), Message-ID: <att@example\.net>, mail_id: ([\w-]{12}), Hits: -, size: \d+, \d+ ms$",
    )
    .unwrap();
    let c = re
        .captures(line)
        .unwrap_or_else(|| panic!("{} bytes: {line}", line.len()));
    assert_eq!(&c[2], &c[3]);
    let shown = line.matches("<recipient-number-").count();
    assert_eq!(c[1].parse::<usize>().unwrap() + shown, 5000, "{line}");
    assert!(shown > 20, "only {shown} recipients shown: {line}");
}

/// `[general] log_file`: appended to, one line per write, created 0640, in the traditional
/// syslog format; with no syslog, the file is the log (not stderr). A log file that cannot be
/// written never defers mail: a warning, and the lines go to stderr.
#[test]
fn log_file_is_appended_to_and_an_unwritable_one_never_defers() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pipescan.log");
    let f = Filter::new(&format!("[general]\nlog_file = \"{}\"\n", log.display()));
    for qid in ["AAAAAA0001", "AAAAAA0002"] {
        let r = f.run(
            &[
                "--queue-id",
                qid,
                "-f",
                "a@example.org",
                "--",
                "b@example.com",
            ],
            PLAIN,
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(!r.stderr.contains("Passed"), "{}", r.stderr);
    }
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let text = std::fs::read_to_string(&log).unwrap();
    let re = regex::Regex::new(
        r"^[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \S+ pipescan\[\d+\]: AAAAAA000(\d): \(\d{5,}-01\) ",
    )
    .unwrap();
    let summaries: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Passed CLEAN"))
        .collect();
    assert_eq!(summaries.len(), 2, "{text}");
    for (n, l) in summaries.iter().enumerate() {
        let c = re.captures(l).unwrap_or_else(|| panic!("{l}"));
        assert_eq!(c[1].parse::<usize>().unwrap(), n + 1, "{l}");
    }
    assert!(text.lines().all(|l| re.is_match(l)), "{text}");

    for bad in ["/nonexistent/dir/pipescan.log", "relative.log"] {
        let f = Filter::new(&format!("[general]\nlog_file = \"{bad}\"\n"));
        let r = f.run(&["-f", "a@example.org", "--", "b@example.com"], PLAIN);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(f.calls(), 1);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
        assert!(
            r.stderr
                .contains(&format!("cannot write [general] log_file {bad}: ")),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("Passed CLEAN {Relayed}"), "{}", r.stderr);
    }
}

/// A queue id that is not UTF-8 (Sendmail's `$&i` in a mailer's argv arrives as an unexpanded
/// macro byte) is only a log field: the run goes on (replaced characters), it never defers.
#[test]
fn a_queue_id_that_is_not_utf8_never_defers() {
    use std::os::unix::ffi::OsStrExt;
    let f = Filter::new("");
    let mut c = f.command(&["-v"]);
    c.arg("--queue-id")
        .arg(std::ffi::OsStr::from_bytes(b"\x83i"))
        .args(["-f", "a@example.org", "--", "b@example.com"]);
    let r = feed_and_wait(c.spawn().unwrap(), PLAIN);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(summary_line(&r.stderr).contains("]: _i: ("), "{}", r.stderr);
}

/// `[reinject] method = "smtp:..."` through the binary, against a scripted SMTP server on
/// loopback: what the run makes of the server's per-recipient answers (pipescan(1), EXIT
/// STATUS). `rcpt` answers each RCPT line; `end` answers the final dot (None: close instead).
/// Returns the run and everything the server received.
fn smtp_run(
    hard: &str,
    rcpts: &[&str],
    rcpt: fn(&str) -> &'static str,
    end: Option<&'static str>,
) -> (Output, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Every connection pipescan makes (the copy, then our DSN if any) until the run is over;
    // their transcripts one after the other.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let over = done.clone();
    listener.set_nonblocking(true).unwrap();
    let server = std::thread::spawn(move || {
        let mut all = String::new();
        while !over.load(std::sync::atomic::Ordering::SeqCst) {
            match listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    all.push_str(&smtp_session(s, rcpt, end));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        all
    });
    let f = Filter::new(&format!(
        "[reinject]\nmethod = \"smtp:[127.0.0.1]:{port}\"\ntimeout = \"10s\"\non_hard_failure = \"{hard}\"\n"
    ));
    let mut args = vec!["-f", "a@example.org", "--"];
    args.extend_from_slice(rcpts);
    let r = f.run(&args, PLAIN);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    (r, server.join().unwrap())
}

/// One SMTP session of the fake next hop: its transcript (commands and DATA as received).
fn smtp_session(
    mut s: std::net::TcpStream,
    rcpt: fn(&str) -> &'static str,
    end: Option<&'static str>,
) -> String {
    use std::io::{BufRead, BufReader, Read};
    {
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut got = String::new();
        s.write_all(b"220 fake ESMTP\r\n").unwrap();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return got;
            }
            got.push_str(&line);
            let cmd = line.trim_end();
            let reply: String = match cmd {
                c if c.starts_with("EHLO") => {
                    "250-fake\r\n250-PIPELINING\r\n250 8BITMIME\r\n".into()
                }
                c if c.starts_with("RCPT") => rcpt(c).into(),
                "DATA" => {
                    s.write_all(b"354 go\r\n").unwrap();
                    let mut data = Vec::new();
                    while !data.ends_with(b"\r\n.\r\n") {
                        let mut b = [0u8; 1];
                        if r.read(&mut b).unwrap_or(0) == 0 {
                            return got;
                        }
                        data.push(b[0]);
                    }
                    got.push_str(&String::from_utf8_lossy(&data));
                    match end {
                        Some(e) => e.into(),
                        None => return got, // gone before the reply
                    }
                }
                "QUIT" => {
                    let _ = s.write_all(b"221 bye\r\n");
                    return got;
                }
                _ => "250 ok\r\n".into(),
            };
            if s.write_all(reply.as_bytes()).is_err() {
                return got;
            }
        }
    }
}

fn refuse_bad(l: &str) -> &'static str {
    if l.contains("bad@") {
        "550 5.1.1 <bad@example.com>: Recipient address rejected: User unknown\r\n"
    } else {
        "250 2.1.5 Ok\r\n"
    }
}

#[test]
fn smtp_reinjection_delivers_to_the_accepted_and_logs_the_refused_loudly() {
    let (r, got) = smtp_run(
        "bounce",
        &["good@example.com", "bad@example.com"],
        refuse_bad,
        Some("250 2.0.0 Ok: queued as X\r\n"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("reinjection group 1 to <bad@example.com> REFUSED by the next hop, NOT delivered to it: 550 5.1.1"),
        "{}",
        r.stderr
    );
    assert!(got.starts_with("EHLO mx.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<good@example.com>\r\nRCPT TO:<bad@example.com>\r\nDATA\r\n"), "{got}");
    assert!(got.ends_with("\r\n.\r\nQUIT\r\n"), "{got}");
    // The refused recipient is not lost: the sender gets our DSN for it, from the null sender.
    let dsn = &got[got.find("QUIT\r\n").expect("no first session") + 6..];
    assert!(
        dsn.contains("MAIL FROM:<> BODY=8BITMIME\r\n") || dsn.contains("MAIL FROM:<>\r\n"),
        "no DSN session: {got}"
    );
    assert!(dsn.contains("RCPT TO:<a@example.org>\r\n"), "{dsn}");
    assert!(
        dsn.contains("bad@example.com") && dsn.contains("5.1.1"),
        "{dsn}"
    );
    assert!(!dsn.contains("good@example.com"), "{dsn}");
    assert!(
        r.stderr
            .contains("DSN to <a@example.org> for bad@example.com, refused by the next hop"),
        "{}",
        r.stderr
    );
}

#[test]
fn smtp_reinjection_refused_for_everyone_follows_on_hard_failure() {
    for (hard, code, status) in [("tempfail", 75, "4.3.0"), ("bounce", 69, "5.3.0")] {
        let (r, got) = smtp_run(hard, &["bad@example.com"], refuse_bad, Some("250 ok\r\n"));
        assert_eq!(r.code, code, "{hard}: {}", r.stderr);
        assert!(r.stdout.starts_with(status), "{hard}: {}", r.stdout);
        assert!(r.stdout.contains("refused every recipient"), "{}", r.stdout);
        assert!(!got.contains("DATA"), "{got}");
    }
}

#[test]
fn smtp_reinjection_with_a_deferred_recipient_delivers_nothing_and_defers() {
    let (r, got) = smtp_run(
        "bounce",
        &["good@example.com", "later@example.com"],
        |l| {
            if l.contains("later@") {
                "450 4.2.0 greylisted\r\n"
            } else {
                "250 ok\r\n"
            }
        },
        Some("250 ok\r\n"),
    );
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("<later@example.com>: 450 4.2.0 greylisted"),
        "{}",
        r.stdout
    );
    assert!(got.ends_with("RSET\r\nQUIT\r\n"), "{got}");
}

#[test]
fn smtp_reinjection_without_a_reply_to_the_final_dot_is_retried() {
    let (r, got) = smtp_run("bounce", &["good@example.com"], refuse_bad, None);
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(r.stdout.starts_with("4.4.2 "), "{}", r.stdout);
    assert!(
        r.stdout.contains("it may have been delivered"),
        "{}",
        r.stdout
    );
    assert!(got.ends_with("\r\n.\r\n"), "{got}");
}
