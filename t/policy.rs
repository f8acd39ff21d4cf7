//! The policy engine through the built binary, as an admin would tell it: several recipients
//! with different settings, one message, the right copies, DSNs and log line. GTUBE is scored by
//! the real spamd (scripts/mailstack); sendmail is the recording stand-in.

mod common;

use common::*;

/// The real scanners plus `extra` (which must not define [spamd] or [clamd]).
fn with_scanners(extra: &str) -> Filter {
    Filter::new(&format!(
        "[spamd]\nservers = [\"{}\"]\n[clamd]\nservers = [\"{}\"]\n{extra}",
        real_spamd(),
        real_clamd()
    ))
}

fn gtube(from: &str) -> Vec<u8> {
    format!(
        "From: {from}\nTo: team@example.com\nSubject: offer\nDate: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <offer@example.net>\n\n{}{}\n",
        "XJS*C4JDBQADN1.NSBN3*2IDNEN*",
        "GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
    )
    .into_bytes()
}

fn header_of(msg: &[u8]) -> String {
    let t = String::from_utf8_lossy(msg);
    t.split("\n\n").next().unwrap_or("").replace("\n\t", " ")
}

fn log_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(" -> <") && (l.contains("Passed ") || l.contains("Blocked ")))
        .collect()
}

#[test]
fn gtube_to_a_spam_lover_and_a_non_lover_with_spam_destiny_discard() {
    let f = with_scanners(
        "[destiny]\nspam = \"discard\"\n[lists]\nspam_lovers = [\"lover@example.com\"]\n",
    );
    let r = f.run(
        &[
            "-v",
            "-f",
            "promo@example.net",
            "--",
            "plain@example.com",
            "lover@example.com",
        ],
        &gtube("promo@example.net"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(f.calls(), 1, "one reinjection");
    assert_eq!(
        f.call_argv(0),
        ["-i", "-f", "promo@example.net", "--", "lover@example.com"]
    );
    let h = header_of(&f.call_msg(0));
    assert!(h.contains("X-Spam-Flag: YES"), "{h}");
    assert!(h.contains("Subject: ***SPAM*** offer"), "{h}");
    let lines = log_lines(&r.stderr);
    assert_eq!(lines.len(), 1, "one log line: {}", r.stderr);
    assert!(
        lines[0].contains("Blocked SPAM {Relayed,Tagged,Discarded}, <promo@example.net> -> <plain@example.com>,<lover@example.com>"),
        "{}",
        lines[0]
    );
}

#[test]
fn whitelisted_author_is_not_spam() {
    let f = with_scanners(
        "[lists]\nwhitelist_sender = [\"@partner.example\"]\n[destiny]\nspam = \"discard\"\n",
    );
    // The envelope sender is a bounce handler; the author (From:) is whitelisted.
    let r = f.run(
        &[
            "-v",
            "-f",
            "bounces+123@mailer.example",
            "--",
            "bob@example.com",
        ],
        &gtube("Partner News <news@partner.example>"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(f.calls(), 1, "delivered: {}", r.stderr);
    let h = header_of(&f.call_msg(0));
    assert!(
        h.contains("X-Spam-Flag: NO") || !h.contains("X-Spam-Flag"),
        "{h}"
    );
    assert!(!h.contains("***SPAM***"), "{h}");
    assert!(r.stderr.contains("Passed CLEAN"), "{}", r.stderr);
}

#[test]
fn blacklisted_sender_is_spam_even_for_ham() {
    let f = with_scanners(
        "[lists]\nblacklist_sender = [\"alice@example.org\"]\n[destiny]\nspam = \"discard\"\n",
    );
    let r = f.run(
        &["-v", "-f", "alice@example.org", "--", "bob@example.com"],
        PLAIN,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(f.calls(), 0);
    assert!(
        r.stderr.contains("Blocked SPAM {Discarded}"),
        "{}",
        r.stderr
    );
}

#[test]
fn originating_bank_bypasses_all_scanners() {
    // The shipped example's ORIGINATING bank, on top of real scanners.
    let shipped = std::fs::read_to_string(repo().join("conf/pipescan.toml")).unwrap();
    let bank = &shipped[shipped.find("[policy.ORIGINATING").unwrap()..];
    let f = with_scanners(bank);
    let r = f.run(
        &[
            "-v",
            "--policy",
            "ORIGINATING",
            "-f",
            "www-data@example.com",
            "--",
            "someone@example.net",
        ],
        &gtube("www-data@example.com"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let h = header_of(&f.call_msg(0));
    assert!(
        h.starts_with("X-Virus-Scanned: pipescan at mx.test\n"),
        "still tagged as scanned: {h}"
    );
    assert!(!h.contains("X-Spam"), "not spam-scanned: {h}");
    assert!(r.stderr.contains("Passed CLEAN {Relayed}"), "{}", r.stderr);
    // Without the bank the same message is spam.
    let r = f.run(
        &["-f", "www-data@example.com", "--", "someone@example.net"],
        &gtube("www-data@example.com"),
    );
    assert_eq!(r.code, 0);
    assert!(header_of(&f.call_msg(1)).contains("X-Spam-Flag: YES"));
}

#[test]
fn mixed_bounce_sends_our_dsn_to_the_sender() {
    let f = with_scanners(
        "[destiny]\nspam = \"bounce\"\n[spam]\ndsn_cutoff_level = 5000\n[lists]\nspam_lovers = [\"lover@example.com\"]\n",
    );
    let r = f.run(
        &[
            "-v",
            "-f",
            "promo@example.net",
            "--",
            "plain@example.com",
            "lover@example.com",
        ],
        &gtube("promo@example.net"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(f.calls(), 2, "the lover's copy, then the DSN");
    assert_eq!(
        f.call_argv(0),
        ["-i", "-f", "promo@example.net", "--", "lover@example.com"]
    );
    assert_eq!(
        f.call_argv(1),
        ["-i", "-f", "", "--", "promo@example.net"],
        "DSN from <>"
    );
    let dsn = String::from_utf8_lossy(&f.call_msg(1)).into_owned();
    assert!(
        dsn.contains("Final-Recipient: rfc822; plain@example.com"),
        "{dsn}"
    );
    assert!(
        !dsn.contains("Final-Recipient: rfc822; lover@example.com"),
        "{dsn}"
    );
    assert!(dsn.contains("Status: 5.7.0"), "{dsn}");
    assert!(
        dsn.contains("Message-ID: <offer@example.net>"),
        "original header attached: {dsn}"
    );
    assert!(!dsn.contains("GTUBE-STANDARD"), "no original body: {dsn}");
    // Our own Message-ID is under the configured host name, not the machine's.
    let own = dsn
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("message-id: <pipescan."))
        .unwrap_or_else(|| panic!("no Message-ID of ours: {dsn}"));
    assert!(own.ends_with("@mx.test>"), "{own}");
    assert!(
        r.stderr.contains("{Relayed,Tagged,Bounced}"),
        "{}",
        r.stderr
    );
}

#[test]
fn spam_above_dsn_cutoff_is_discarded_not_bounced() {
    // GTUBE scores 1000, above the default dsn_cutoff_level of 10: no backscatter.
    let f = with_scanners("[destiny]\nspam = \"bounce\"\n");
    let r = f.run(
        &["-v", "-f", "promo@example.net", "--", "plain@example.com"],
        &gtube("promo@example.net"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(f.calls(), 0);
    assert!(
        r.stderr.contains("Blocked SPAM {Discarded}"),
        "{}",
        r.stderr
    );
}

#[test]
fn everyone_rejected_exits_69_and_null_sender_never_gets_a_dsn() {
    let f = with_scanners("[destiny]\nspam = \"reject\"\n");
    let r = f.run(
        &[
            "-f",
            "promo@example.net",
            "--",
            "a@example.com",
            "b@example.com",
        ],
        &gtube("promo@example.net"),
    );
    assert_eq!(r.code, 69);
    assert_eq!(r.stdout, "5.7.0 message rejected as spam\n");
    assert_eq!(f.calls(), 0);
    // The same from the null sender: nobody to tell, a logged discard.
    let f =
        with_scanners("[destiny]\nspam = \"reject\"\n[lists]\nspam_lovers = [\"b@example.com\"]\n");
    let r = f.run(
        &["-v", "-f", "", "--", "a@example.com", "b@example.com"],
        &gtube("MAILER-DAEMON@example.net"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(f.calls(), 1, "only the lover's copy, no DSN");
    assert_eq!(f.call_argv(0), ["-i", "-f", "", "--", "b@example.com"]);
}

#[test]
fn only_local_recipients_get_spam_headers() {
    let f = with_scanners("[general]\nlocal_domains = [\".example.com\"]\n");
    let r = f.run(
        &[
            "-f",
            "promo@example.net",
            "--",
            "in@example.com",
            "out@elsewhere.example",
        ],
        &gtube("promo@example.net"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(f.calls(), 2, "two groups: different header edits");
    let (a, b) = (f.call_argv(0), f.call_argv(1));
    let (local, remote) = if a.last().unwrap() == "in@example.com" {
        (0, 1)
    } else {
        (1, 0)
    };
    assert_eq!([a, b][remote].last().unwrap(), "out@elsewhere.example");
    let hl = header_of(&f.call_msg(local));
    let hr = header_of(&f.call_msg(remote));
    assert!(
        hl.contains("X-Spam-Flag: YES") && hl.contains("***SPAM***"),
        "{hl}"
    );
    assert!(!hr.contains("X-Spam") && !hr.contains("***SPAM***"), "{hr}");
    assert!(
        hr.starts_with("X-Virus-Scanned: pipescan at mx.test"),
        "{hr}"
    );
}

#[test]
fn per_recipient_levels_and_dry_run_table() {
    let f = with_scanners(
        "[destiny]\nspam = \"discard\"\n[[per_recipient]]\nrecipients = [\"@lenient.example\"]\nkill_level = 5000\ntag2_level = 4000\n",
    );
    let r = f.run(
        &[
            "--dry-run",
            "-f",
            "promo@example.net",
            "--",
            "strict@example.com",
            "x@lenient.example",
        ],
        &gtube("promo@example.net"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("recipient <strict@example.com>: category SPAM, score 1000"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("destiny discard, group -"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("recipient <x@lenient.example>: category CLEAN, score 1000"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("reinject argv [") && r.stdout.contains("\"--\", \"x@lenient.example\"]"),
        "{}",
        r.stdout
    );
    assert_eq!(f.calls(), 0);
}

/// A message with one attachment, base64.
fn with_attachment(name: &str, data: &[u8]) -> Vec<u8> {
    format!(
        "From: vendor@example.net\nTo: bob@example.com\nSubject: invoice\nDate: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <inv@example.net>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\nsee attachment\n--b1\nContent-Type: application/zip; name=\"{name}\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"{name}\"\n\n{}--b1--\n",
        base64_lines(data)
    )
    .into_bytes()
}

#[test]
fn banned_pdf_exe_inside_a_zip_is_quarantined_and_the_lover_gets_it_tagged() {
    let zip = stored_zip("scans/invoice.pdf.exe", b"MZ\x90\x00 not really a program");
    let msg = with_attachment("invoice.zip", &zip);
    let f = with_scanners("[lists]\nbanned_files_lovers = [\"lover@example.com\"]\n");
    let r = f.run(
        &[
            "-v",
            "-f",
            "vendor@example.net",
            "--",
            "bob@example.com",
            "lover@example.com",
        ],
        &msg,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = log_lines(&r.stderr);
    assert_eq!(lines.len(), 1, "one log line: {}", r.stderr);
    assert!(
        lines[0].contains(
            "Blocked BANNED (scans/invoice.pdf.exe (part 2 > invoice.zip: double extension .pdf.exe))"
        ),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("{Relayed,Discarded}"), "{}", lines[0]);
    // Only the lover gets a copy: tagged with the alert and the quarantine id, body untouched.
    assert_eq!(f.calls(), 1);
    assert_eq!(
        f.call_argv(0)[1..],
        ["-f", "vendor@example.net", "--", "lover@example.com"]
    );
    let got = f.call_msg(0);
    let head = header_of(&got);
    assert!(
        head.contains("X-Pipescan-Alert: BANNED, message contains scans/invoice.pdf.exe"),
        "{head}"
    );
    assert!(head.contains("X-Quarantine-ID: <"), "{head}");
    assert!(got.ends_with(&msg), "the original bytes follow our fields");
    let q = f.quarantined();
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(
        q[0].file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("banned-"),
        "{q:?}"
    );
}

#[test]
fn a_local_allow_rule_lets_a_sites_own_attachments_through() {
    let msg = with_attachment("nightly.cmd", b"@echo off\r\nrem ERP export\r\n");
    let f = Filter::new("");
    let argv = ["-v", "-f", "erp@example.net", "--", "bob@example.com"];
    let r = f.run(&argv, &msg);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Blocked BANNED (nightly.cmd (part 2: executable file name extension .cmd"),
        "{}",
        r.stderr
    );
    assert_eq!(f.calls(), 0);

    let f = Filter::new(
        "[[banned.local_rules]]\naction = \"allow\"\nname = '(?i)^nightly\\.cmd$'\ndescription = \"the ERP's export job\"\n",
    );
    let r = f.run(&argv, &msg);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Passed CLEAN {Relayed}"), "{}", r.stderr);
    assert_eq!(f.calls(), 1);
    // And an executable under a harmless name is still caught by the built-in rules.
    let r = f.run(&argv, &with_attachment("notes.txt", b"MZ\x90\x00\x03"));
    assert!(
        r.stderr.contains("Blocked BANNED (notes.txt"),
        "{}",
        r.stderr
    );
}

#[test]
fn bad_headers_are_tagged_by_default_and_refused_when_the_admin_says_so() {
    let msg = b"From: a@example.org\nFrom: b@example.org\nTo: bob@example.com\nSubject: caf\xe9\nDate: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <bh@example.org>\n\nhello\n";
    let argv = ["-v", "-f", "a@example.org", "--", "bob@example.com"];
    let f = Filter::new("");
    let r = f.run_bytes(&argv, msg);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Passed BAD-HEADER ("), "{}", r.stderr);
    let got = f.call_msg(0);
    let head = header_of(&got);
    assert!(
        head.contains("X-Pipescan-Alert: BAD HEADER SECTION, non-encoded 8-bit data"),
        "{head}"
    );
    assert!(head.contains("header field From"), "{head}");
    assert!(got.ends_with(msg), "the original bytes follow our fields");

    // Only the kinds the admin counts.
    let f = Filter::new("[bad_header]\ntests = [\"long\", \"missing\"]\n");
    let r = f.run_bytes(&argv, msg);
    assert!(r.stderr.contains("Passed CLEAN {Relayed}"), "{}", r.stderr);

    // A refusal for the only recipient: 69 and the reason for the MTA's bounce.
    let f = Filter::new("[destiny]\nbad_header = \"reject\"\n");
    let r = f.run_bytes(&argv, msg);
    assert_eq!(r.code, 69, "{}", r.stderr);
    assert!(r.stdout.contains("5.7."), "{}", r.stdout);
    assert_eq!(f.calls(), 0);
    // A bypass for everyone skips the check.
    let f = Filter::new("[lists]\nbypass_header_checks = [\"@example.com\"]\n");
    let r = f.run_bytes(&argv, msg);
    assert!(r.stderr.contains("Passed CLEAN {Relayed}"), "{}", r.stderr);
}
