//! Scanners through the built binary: the real spamd and clamd started by scripts/mailstack for
//! behaviour, small fake servers only for faults (refused, hang, garbage, close mid-reply, slow
//! drip, size limit) and failover.
//!
//! Needs PIPESCAN_SPAMD and PIPESCAN_CLAMD (scripts/test sets them); a test fails, it does not
//! skip, when they are missing.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// A filter with the real spamd and clamd, plus `extra` config.
fn real(extra: &str) -> Filter {
    Filter::new(&format!(
        "[spamd]\nservers = [\"{}\"]\n[clamd]\nservers = [\"{}\"]\n{extra}",
        real_spamd(),
        real_clamd()
    ))
}

const GTUBE: &str = concat!(
    "XJS*C4JDBQADN1.NSBN3*2IDNEN*",
    "GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
);

fn gtube_msg() -> Vec<u8> {
    format!(
        "From: promo@example.net\nTo: bob@example.com\nSubject: you won\nDate: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <gtube@example.net>\n\n{GTUBE}\n"
    )
    .into_bytes()
}

fn with_attachment(name: &str, data: &[u8]) -> Vec<u8> {
    let b64 = base64_lines(data);
    format!(
        "From: mallory@example.net\nTo: bob@example.com\nSubject: invoice\nDate: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <att@example.net>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\nsee attachment\n--b1\nContent-Type: application/octet-stream; name=\"{name}\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"{name}\"\n\n{b64}\n--b1--\n"
    )
    .into_bytes()
}

fn argv() -> [&'static str; 4] {
    ["-f", "sender@example.net", "--", "bob@example.com"]
}

/// Unfolded header fields of a delivered copy, in order.
fn fields(msg: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(msg);
    let head = text.split("\n\n").next().unwrap_or("");
    let mut out: Vec<String> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else {
            out.push(line.to_string());
        }
    }
    out
}

#[test]
fn gtube_gets_amavisd_spam_fields_and_a_tagged_subject() {
    let f = real("");
    let msg = gtube_msg();
    let r = f.run(&argv(), &msg);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = f.call_msg(0);
    let h = fields(&out);
    assert_eq!(h[0], "X-Virus-Scanned: pipescan at mx.test");
    assert_eq!(h[1], "X-Spam-Flag: YES");
    let score: f64 = h[2]
        .strip_prefix("X-Spam-Score: ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(score >= 1000.0, "{}", h[2]);
    assert_eq!(h[3], format!("X-Spam-Level: {}", "*".repeat(64)));
    let status = &h[4];
    let want = format!(
        "X-Spam-Status: Yes, score={} tagged_above=2 required=6.2 tests=[",
        h[2].trim_start_matches("X-Spam-Score: ")
    );
    assert!(status.starts_with(&want), "{status}");
    assert!(status.contains("GTUBE=1000"), "{status}");
    assert!(status.ends_with(']'), "{status}");
    assert!(
        h.contains(&"Subject: ***SPAM*** you won".to_string()),
        "{h:?}"
    );
    // Every line of the raw added header is at most 78 characters, and 7-bit.
    let added = &out[..out.len() - msg.len()];
    assert!(added.is_ascii());
    // The rest is the original with only the Subject tagged.
    let original = String::from_utf8(msg)
        .unwrap()
        .replace("Subject: you won", "Subject: ***SPAM*** you won");
    assert!(out.ends_with(original.as_bytes()));
    assert!(
        r.stderr.is_empty() || !r.stderr.contains("FAILED"),
        "{}",
        r.stderr
    );
}

#[test]
fn ham_stays_below_tag2_and_passes_clean() {
    let f = real("");
    let r = f.run(
        &["-v", "-f", "alice@example.org", "--", "bob@example.com"],
        PLAIN,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Passed CLEAN {Relayed}"), "{}", r.stderr);
    let h = fields(&f.call_msg(0));
    assert!(
        !h.iter().any(|l| l.starts_with("X-Spam-Flag: YES")),
        "{h:?}"
    );
    assert!(h.contains(&"Subject: lunch".to_string()));
}

#[test]
fn eicar_attachment_is_infected_and_discarded_by_default() {
    let f = real("");
    let r = f.run(
        &[&["-v"][..], &argv()].concat(),
        &with_attachment("invoice.com", &eicar()),
    );
    assert_eq!(
        r.code, 0,
        "a discard is a successful, logged delivery: {}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("Blocked INFECTED (Test.EICAR-NDB.UNOFFICIAL) {Discarded}"),
        "{}",
        r.stderr
    );
    assert_eq!(f.calls(), 0, "nothing reinjected");
}

#[test]
fn eicar_with_virus_destiny_reject_is_refused_with_its_name() {
    let f = real("[destiny]\nvirus = \"reject\"\n");
    let r = f.run(&argv(), &with_attachment("invoice.com", &eicar()));
    assert_eq!(r.code, 69);
    assert_eq!(
        r.stdout,
        "5.7.0 message rejected: virus Test.EICAR-NDB.UNOFFICIAL\n"
    );
    assert_eq!(f.calls(), 0);
}

/// `bounce` follows amavisd's bounce killer: viruses fake their senders, so no bounce is
/// generated (that would be backscatter); the message is discarded and the log says so.
#[test]
fn eicar_with_virus_destiny_bounce_is_discarded_without_backscatter() {
    let f = real("[destiny]\nvirus = \"bounce\"\n");
    let r = f.run(
        &[&["-v"][..], &argv()].concat(),
        &with_attachment("invoice.com", &eicar()),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("Blocked INFECTED (Test.EICAR-NDB.UNOFFICIAL) {Discarded}"),
        "{}",
        r.stderr
    );
    assert_eq!(f.calls(), 0);
}

#[test]
fn eicar_inside_a_zip_is_infected() {
    let zip = stored_zip("docs/readme.txt", &eicar());
    let f = real("[destiny]\nvirus = \"pass\"\n");
    let r = f.run(
        &[&["-v"][..], &argv()].concat(),
        &with_attachment("docs.zip", &zip),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Passed INFECTED (Test.EICAR-NDB.UNOFFICIAL) {Relayed,Tagged}"),
        "{}",
        r.stderr
    );
    // Passed to the recipient (virus destiny pass) with an alert and the tag.
    let h = fields(&f.call_msg(0));
    assert!(
        h.contains(
            &"X-Pipescan-Alert: INFECTED, message contains virus: Test.EICAR-NDB.UNOFFICIAL"
                .to_string()
        ),
        "{h:?}"
    );
    assert!(
        h.contains(&"Subject: ***INFECTED*** invoice".to_string()),
        "{h:?}"
    );
}

#[test]
fn clean_attachment_is_clean() {
    let f = real("");
    let r = f.run(
        &[&["-v"][..], &argv()].concat(),
        &with_attachment("notes.txt", b"just notes\n"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Passed CLEAN {Relayed}"), "{}", r.stderr);
}

#[test]
fn spamd_max_size_skips_the_spam_scan_and_says_so() {
    let f = Filter::new(&format!(
        "[spamd]\nservers = [\"{}\"]\nmax_size = \"1K\"\n[clamd]\nservers = [\"{}\"]\n",
        real_spamd(),
        real_clamd()
    ));
    let mut big = gtube_msg();
    big.extend(std::iter::repeat_n(b'x', 2000));
    let r = f.run(&[&["-v"][..], &argv()].concat(), &big);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("spamd: not spam-checked"), "{}", r.stderr);
    assert!(r.stderr.contains("Hits: -"), "{}", r.stderr);
    let h = fields(&f.call_msg(0));
    assert!(!h.iter().any(|l| l.starts_with("X-Spam-")), "{h:?}");
}

/// Bytes that are no scanner's protocol.
const GARBAGE: &[u8] = b"HTTP/1.0 400 what is this\r\n\r\n\0";

/// A fake server (t/common's, for faults only) misbehaving `how`: its "127.0.0.1:PORT".
fn fake(how: Misbehave) -> String {
    FaultServer::start(how).addr
}

fn clamd_with(servers: &[String], extra: &str) -> Filter {
    let list = servers
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    Filter::new(&format!(
        "[clamd]\nservers = [{list}]\ntimeout = \"1s\"\nconnect_timeout = \"500ms\"\n{extra}"
    ))
}

fn spamd_with(servers: &[String], extra: &str) -> Filter {
    let list = servers
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    Filter::new(&format!(
        "[spamd]\nservers = [{list}]\ntimeout = \"1s\"\nconnect_timeout = \"500ms\"\n{extra}"
    ))
}

#[test]
fn clamd_faults_keep_the_message_for_retry() {
    let faults: Vec<(&str, String)> = vec![
        ("refused", refused_addr()),
        ("missing socket", "/nonexistent/clamd.sock".into()),
        ("hang", fake(Misbehave::Hang)),
        ("garbage", fake(Misbehave::Reply(GARBAGE))),
        ("close mid-reply", fake(Misbehave::Reply(b"stream: Te"))),
        ("slow drip", fake(Misbehave::Drip(b"stream: OK\0"))),
    ];
    for (what, server) in faults {
        let f = clamd_with(std::slice::from_ref(&server), "");
        let t = Instant::now();
        let r = f.run(&argv(), PLAIN);
        assert_eq!(r.code, 75, "clamd {what}: {}", r.stderr);
        assert!(
            r.stdout
                .starts_with("4.3.0 pipescan: virus scan failed, message kept for retry: clamd "),
            "clamd {what}: {}",
            r.stdout
        );
        assert_eq!(r.stdout.lines().count(), 1);
        assert!(
            t.elapsed() < Duration::from_secs(4),
            "clamd {what}: took {:?}",
            t.elapsed()
        );
        assert_eq!(f.calls(), 0, "clamd {what}");
    }
}

#[test]
fn clamd_failure_as_unchecked_passes_tagged() {
    let f = clamd_with(&[refused_addr()], "[virus]\non_failure = \"unchecked\"\n");
    let r = f.run(&[&["-v"][..], &argv()].concat(), PLAIN);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The log says why, as it does for BANNED.
    assert!(
        regex::Regex::new(r"Passed UNCHECKED \(.*clamd.*\) \{Relayed,Tagged\}")
            .unwrap()
            .is_match(&r.stderr),
        "{}",
        r.stderr
    );
    let h = fields(&f.call_msg(0));
    assert!(
        h.contains(&"Subject: ***UNCHECKED*** lunch".to_string()),
        "{h:?}"
    );
    assert!(
        h.iter().any(|f| f
            .starts_with("X-Pipescan-Alert: UNCHECKED, message could not be virus-checked: clamd")),
        "{h:?}"
    );
}

#[test]
fn clamd_size_limit_is_unchecked_never_clean() {
    let f = clamd_with(
        &[fake(Misbehave::Reply(
            b"INSTREAM size limit exceeded. ERROR\0",
        ))],
        "",
    );
    let r = f.run(&[&["-v"][..], &argv()].concat(), PLAIN);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("Passed UNCHECKED (") && r.stderr.contains(") {Relayed,Tagged}"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("clamd: larger than clamd's StreamMaxLength"),
        "{}",
        r.stderr
    );
    let f = clamd_with(
        &[fake(Misbehave::Reply(
            b"INSTREAM size limit exceeded. ERROR\0",
        ))],
        "[destiny]\nunchecked = \"tempfail\"\n",
    );
    assert_eq!(f.run(&argv(), PLAIN).code, 75);
}

#[test]
fn clamd_failover_from_dead_servers_to_the_real_one() {
    let f = clamd_with(
        &[
            refused_addr(),
            fake(Misbehave::Reply(GARBAGE)),
            real_clamd(),
        ],
        "[destiny]\nvirus = \"reject\"\n",
    );
    let r = f.run(&argv(), &with_attachment("x.com", &eicar()));
    assert_eq!(r.code, 69, "{}", r.stderr);
    assert!(
        r.stdout.contains("virus Test.EICAR-NDB.UNOFFICIAL"),
        "{}",
        r.stdout
    );
    let r = f.run(&argv(), PLAIN);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn spamd_faults_pass_with_an_alert_by_default() {
    let faults: Vec<(&str, String)> = vec![
        ("refused", refused_addr()),
        ("hang", fake(Misbehave::Hang)),
        ("garbage", fake(Misbehave::Reply(GARBAGE))),
        (
            "close mid-reply",
            fake(Misbehave::Reply(b"SPAMD/1.1 0 EX_OK\r\nContent-len")),
        ),
        ("slow drip", fake(Misbehave::Drip(b"SPAMD/1.1 0 EX_OK\r\n"))),
    ];
    for (what, server) in faults {
        let f = spamd_with(std::slice::from_ref(&server), "");
        let t = Instant::now();
        let r = f.run(&[&["-v"][..], &argv()].concat(), &gtube_msg());
        assert_eq!(r.code, 0, "spamd {what}: {}", r.stderr);
        assert!(
            r.stderr.contains("spamd FAILED"),
            "spamd {what}: {}",
            r.stderr
        );
        let h = fields(&f.call_msg(0));
        assert!(
            h.contains(&"X-Pipescan-Alert: not spam-checked: spam scanner unavailable".to_string()),
            "spamd {what}: {h:?}"
        );
        assert!(
            !h.iter().any(|l| l.starts_with("X-Spam-")),
            "spamd {what}: {h:?}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(4),
            "spamd {what}: took {:?}",
            t.elapsed()
        );
    }
    let f = spamd_with(&[refused_addr()], "[spam]\non_failure = \"tempfail\"\n");
    let r = f.run(&argv(), PLAIN);
    assert_eq!(r.code, 75);
    assert!(
        r.stdout.starts_with(
            "4.3.0 pipescan: spam scan failed, message kept for retry: spamd 127.0.0.1:"
        ),
        "{}",
        r.stdout
    );
}

#[test]
fn spamd_failover_from_a_hung_server_to_the_real_one() {
    let f = spamd_with(&[fake(Misbehave::Hang), real_spamd()], "");
    let r = f.run(&argv(), &gtube_msg());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let h = fields(&f.call_msg(0));
    assert!(h.contains(&"X-Spam-Flag: YES".to_string()), "{h:?}");
}

/// Both scanners at once: two servers that each hang for their whole 1 s timeout cost about 1 s,
/// not 2, because the scanners run in parallel.
#[test]
fn scanners_run_in_parallel() {
    let f = Filter::new(&format!(
        "[spamd]\nservers = [\"{}\"]\ntimeout = \"1s\"\nconnect_timeout = \"500ms\"\n[clamd]\nservers = [\"{}\"]\ntimeout = \"1s\"\nconnect_timeout = \"500ms\"\n[virus]\non_failure = \"pass\"\n",
        fake(Misbehave::Hang),
        fake(Misbehave::Hang)
    ));
    let t = Instant::now();
    let r = f.run(&[&["-v"][..], &argv()].concat(), PLAIN);
    let took = t.elapsed();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("spamd FAILED") && r.stderr.contains("clamd FAILED"),
        "{}",
        r.stderr
    );
    assert!(
        took < Duration::from_millis(1800),
        "took {took:?}: scanners did not overlap"
    );
    assert!(
        took >= Duration::from_millis(900),
        "took {took:?}: timeouts not honoured"
    );
}

#[test]
fn dry_run_shows_each_scanner() {
    let f = real("");
    let r = f.run(
        &["--dry-run", "-f", "a@example.org", "--", "bob@example.com"],
        &gtube_msg(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("scan clamd: clean ("), "{}", r.stdout);
    assert!(r.stdout.contains("scan spamd: score "), "{}", r.stdout);
    assert!(r.stdout.contains("recipient <bob@example.com>: category SPAM, score 1000, destiny pass, group 1, subject tag \"***SPAM*** \""), "{}", r.stdout);
    assert_eq!(f.calls(), 0);
}

fn rspamd_addr() -> String {
    std::env::var("PIPESCAN_RSPAMD").unwrap_or_else(|_| {
        panic!("PIPESCAN_RSPAMD is not set: run scripts/test, or MAILSTACK_RSPAMD=1 scripts/mailstack up DIR and `set -a; eval \"$(scripts/mailstack env DIR)\"`")
    })
}

#[test]
fn rspamd_instead_of_spamd_tags_gtube() {
    let f = Filter::new(&format!("[rspamd]\nservers = [\"{}\"]\n", rspamd_addr()));
    let r = f.run(&[&["-v"][..], &argv()].concat(), &gtube_msg());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let h = fields(&f.call_msg(0));
    assert!(h.contains(&"X-Spam-Flag: YES".to_string()), "{h:?}");
    assert!(
        h.iter()
            .any(|l| l.starts_with("X-Spam-Status: Yes, score=15 ") && l.contains("GTUBE=0")),
        "{h:?}"
    );
    assert!(
        r.stderr.contains("Passed SPAM {Relayed,Tagged}"),
        "{}",
        r.stderr
    );
    // Ham stays clean.
    let r = f.run(&[&["-v"][..], &argv()].concat(), PLAIN);
    assert!(r.stderr.contains("Passed CLEAN"), "{}", r.stderr);
}

#[test]
fn rspamd_down_but_spamd_up_is_still_spam_checked() {
    let f = Filter::new(&format!(
        "[rspamd]\nservers = [\"{}\"]\n[spamd]\nservers = [\"{}\"]\n",
        refused_addr(),
        real_spamd()
    ));
    let r = f.run(&[&["-v"][..], &argv()].concat(), &gtube_msg());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let h = fields(&f.call_msg(0));
    assert!(h.contains(&"X-Spam-Flag: YES".to_string()), "{h:?}");
    assert!(
        !h.iter().any(|l| l.starts_with("X-Pipescan-Alert")),
        "{h:?}"
    );
}

fn clamdb() -> String {
    let dir = std::env::var("PIPESCAN_STACK_DIR").unwrap_or_else(|_| {
        panic!("PIPESCAN_STACK_DIR is not set: run scripts/test, or scripts/mailstack up DIR and `set -a; eval \"$(scripts/mailstack env DIR)\"`")
    });
    format!("{dir}/clamdb")
}

/// clamscan as amavisd's backup scanner: used when every clamd server failed.
#[test]
fn av_command_backs_up_a_dead_clamd() {
    let f = Filter::new(&format!(
        "[clamd]\nservers = [\"{}\"]\ntimeout = \"1s\"\n[[av_command]]\nname = \"clamscan\"\ncommand = [\"clamscan\", \"--no-summary\", \"-d\", \"{}\", \"{{}}\"]\nclean_exit = [0]\ninfected_exit = [1]\ninfected_pattern = \"(?m)^.*?: (.+) FOUND$\"\n[destiny]\nvirus = \"reject\"\n",
        refused_addr(),
        clamdb()
    ));
    let r = f.run(&argv(), &with_attachment("invoice.com", &eicar()));
    assert_eq!(r.code, 69, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "5.7.0 message rejected: virus Test.EICAR-NDB.UNOFFICIAL\n"
    );
    let r = f.run(&[&["-v"][..], &argv()].concat(), PLAIN);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Passed CLEAN"), "{}", r.stderr);
    // A broken backup too: the virus check failed, the message waits (75).
    let f = Filter::new(&format!(
        "[clamd]\nservers = [\"{}\"]\n[[av_command]]\nname = \"broken\"\ncommand = [\"/bin/sh\", \"-c\", \"exit 2\", \"sh\", \"{{}}\"]\nclean_exit = [0]\ninfected_exit = [1]\n",
        refused_addr()
    ));
    let r = f.run(&argv(), PLAIN);
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(
        r.stdout.contains("clamd 127.0.0.1:") && r.stdout.contains("broken"),
        "{}",
        r.stdout
    );
}

/// A message blocked for everyone by a virus (or a banned part) does not wait for the spam
/// scan, as amavisd skips it: here spamd hangs for its whole 3 s timeout, and the run ends as
/// soon as clamd has answered. With a virus lover among the recipients the score matters (the
/// lover gets spam headers), so the spam scan is waited for.
#[test]
fn blocked_mail_does_not_wait_for_the_spam_scan() {
    let hang = fake(Misbehave::Hang);
    let cfg = |extra: &str| {
        Filter::new(&format!(
            "[spamd]\nservers = [\"{hang}\"]\ntimeout = \"3s\"\n[clamd]\nservers = [\"{}\"]\n{extra}",
            real_clamd()
        ))
    };
    let virus = with_attachment("readme.txt", &eicar());
    let f = cfg("");
    let t = Instant::now();
    let r = f.run(&[&["-v"][..], &argv()].concat(), &virus);
    let took = t.elapsed();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Blocked INFECTED (Test.EICAR-NDB.UNOFFICIAL) {Discarded}"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("spamd FAILED"), "{}", r.stderr);
    assert!(
        took < Duration::from_millis(2000),
        "took {took:?}: waited for spamd"
    );

    // A banned part blocks everyone too (no virus here: clamd answers OK).
    let banned = with_attachment("setup.exe", b"MZ\x90\x00 harmless bytes");
    let t = Instant::now();
    let r = f.run(&[&["-v"][..], &argv()].concat(), &banned);
    let took = t.elapsed();
    assert!(
        r.stderr.contains("Blocked BANNED (setup.exe"),
        "{}",
        r.stderr
    );
    assert!(
        took < Duration::from_millis(2000),
        "took {took:?}: waited for spamd"
    );

    // A lover: the spam scan is waited for (and fails after its 3 s).
    let f = cfg("[lists]\nvirus_lovers = [\"bob@example.com\"]\n");
    let t = Instant::now();
    let r = f.run(&[&["-v"][..], &argv()].concat(), &virus);
    let took = t.elapsed();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("spamd FAILED"), "{}", r.stderr);
    assert!(took >= Duration::from_millis(2900), "took {took:?}");
}

/// Blocked mail is not even scanned by spamd: pipescan connects to spamd only once the virus
/// and banned checks are done, and never for a message they block for everyone (this keeps
/// spamd's children free). Checked in the real spamd's log (`mid=<…>` per scan):
/// the clean message with the same scanners shows up there, the infected one never does.
#[test]
fn spamd_never_scans_mail_that_is_blocked_for_everyone() {
    let log = std::path::PathBuf::from(std::env::var("PIPESCAN_STACK_DIR").unwrap_or_else(|_| {
        panic!("PIPESCAN_STACK_DIR is not set: run scripts/test, or scripts/mailstack up DIR and `set -a; eval \"$(scripts/mailstack env DIR)\"`")
    }))
    .join("spamd.log");
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let with_id = |msg: Vec<u8>, id: &str| {
        String::from_utf8(msg)
            .unwrap()
            .replace("<att@example.net>", &format!("<{id}>"))
            .into_bytes()
    };
    let infected = format!("infected-{stamp}@example.net");
    let clean = format!("clean-{stamp}@example.net");
    let f = real("");
    let r = f.run(
        &[&["-v"][..], &argv()].concat(),
        &with_id(with_attachment("readme.txt", &eicar()), &infected),
    );
    assert!(r.stderr.contains("Blocked INFECTED"), "{}", r.stderr);
    let r = f.run(
        &[&["-v"][..], &argv()].concat(),
        &with_id(with_attachment("notes.txt", b"just notes\n"), &clean),
    );
    assert!(r.stderr.contains("Passed CLEAN"), "{}", r.stderr);
    // spamd writes its result line after answering: give it a moment.
    let t = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(&format!("mid=<{clean}>")) || t.elapsed() > Duration::from_secs(5) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        text.contains(&format!("mid=<{clean}>")),
        "the clean message is not in {}: is this the stack's spamd?",
        log.display()
    );
    assert!(
        !text.contains(&format!("mid=<{infected}>")),
        "spamd scanned the blocked message"
    );
}
