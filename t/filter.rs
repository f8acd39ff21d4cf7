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
        line.contains(&format!(
            "Passed CLEAN {{Relayed}}, <alice@example.org> -> <bob@example.com>, Message-ID: <plain-1@example.org>, Hits: -, size: {}, ",
            PLAIN.len()
        )),
        "{}",
        r.stderr
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
fn oversized_destinies() {
    let big = {
        let mut m = PLAIN.to_vec();
        m.extend(std::iter::repeat_n(b'x', 2000));
        m
    };
    let cases = [
        ("discard", 0, "", "Blocked OVERSIZED {Discarded}"),
        ("bounce", 69, "5.3.4", "Blocked OVERSIZED {Bounced}"),
        ("reject", 69, "5.3.4", "Blocked OVERSIZED {Bounced}"),
        ("tempfail", 75, "4.7.1", "Blocked OVERSIZED {TempFailed}"),
    ];
    for (destiny, code, status, log) in cases {
        let f = Filter::new(&format!(
            "[general]\nmax_message_size = \"1K\"\n[destiny]\noversized = \"{destiny}\"\n"
        ));
        let r = f.run(&["-v", "-f", "a@example.org", "--", "b@example.com"], &big);
        assert_eq!(r.code, code, "{destiny}: {}", r.stderr);
        assert!(r.stdout.starts_with(status), "{destiny}: {}", r.stdout);
        assert!(r.stderr.contains(log), "{destiny}: {}", r.stderr);
        assert_eq!(f.calls(), 0, "{destiny}");
    }
}

/// Oversized mail is not scanned, but the cheap banned-files walk still reads its first
/// max_message_size bytes: an .exe early in a big message is BANNED, not passed as OVERSIZED.
/// Passed oversized mail carries the "not scanned" alert and never the scanned tag.
#[test]
fn an_oversized_message_is_labelled_unscanned_and_still_walked_for_banned_names() {
    let f = Filter::new("[general]\nmax_message_size = \"1K\"\n");
    let exe = format!(
        "From: a@example.org\nSubject: big\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: application/octet-stream; name=\"invoice.exe\"\nContent-Transfer-Encoding: base64\n\nTVqQAAMAAAA=\n--XX\nContent-Type: text/plain\n\n{}\n--XX--\n",
        "x".repeat(3000)
    );
    let argv = ["-v", "-f", "a@example.org", "--", "b@example.com"];
    let r = f.run(&argv, exe.as_bytes());
    assert!(r.stderr.contains("Blocked BANNED"), "{}", r.stderr);
    assert!(r.stderr.contains("invoice.exe"), "{}", r.stderr);
    assert_eq!(f.calls(), 0);

    let mut big = PLAIN.to_vec();
    big.extend(std::iter::repeat_n(b'x', 2000));
    let r = f.run(&argv, &big);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Passed OVERSIZED"), "{}", r.stderr);
    let got = String::from_utf8_lossy(&f.call_msg(0)).into_owned();
    let block = &got[..got.len() - big.len()];
    assert_eq!(
        block,
        "X-Pipescan-Alert: not scanned (oversized: above general.max_message_size, 1024\n\tbytes)\n"
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
        line.contains(", Message-ID: <defer-me@example.org>, size: "),
        "{line}"
    );
    assert_eq!(f.calls(), 0);
}
