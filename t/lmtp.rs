//! `[reinject] method = "lmtp:unix:…"` through the built binary into a REAL Dovecot LMTP server
//! (Debian's dovecot-lmtpd), started privately by `scripts/dovecot-stack up` in a temporary
//! directory once for this file and stopped at the end (also when an assertion fails). The
//! script installs dovecot-lmtpd with apt-get when it is missing (root); if that is impossible
//! the test FAILS with what to run -- it never skips.
//!
//! Users (see scripts/dovecot-stack): alice, bob (normal), full, full2 (1 KB quota: any real
//! message is over it, a 452 4.2.2 after DATA), anyone else unknown (550 5.1.1 at RCPT).
//! Our DSNs go to the sender bob@example.com through the same LMTP courier, so they land in
//! bob's Maildir, where the test reads them (and the run's log line is checked too).

mod common;

use common::{Filter, Output, added_block, repo};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// The private Dovecot, stopped (and its directory removed) on drop.
struct Dovecot {
    dir: tempfile::TempDir,
}

impl Dovecot {
    fn up() -> Dovecot {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(repo().join("scripts/dovecot-stack"))
            .arg("up")
            .arg(dir.path())
            .output()
            .expect("cannot run scripts/dovecot-stack");
        assert!(
            out.status.success(),
            "the private Dovecot did not start; run `scripts/dovecot-stack up /tmp/dovecot-test` \
             as root (it installs Debian's dovecot-lmtpd with apt-get) and look at its output:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Dovecot { dir }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("lmtp")
    }

    /// The messages in USER's Maildir (new/), oldest first, and clears them.
    fn take(&self, user: &str) -> Vec<Vec<u8>> {
        let new = self.dir.path().join(format!("mail/{user}/Maildir/new"));
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&new) {
            Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
            Err(_) => return Vec::new(),
        };
        files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
        let msgs = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
        for p in files {
            std::fs::remove_file(p).unwrap();
        }
        msgs
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let out = Command::new(repo().join("scripts/dovecot-stack"))
            .arg("down")
            .arg(self.dir.path())
            .output();
        if let Ok(o) = out {
            eprint!("{}", String::from_utf8_lossy(&o.stdout));
        }
    }
}

/// Dovecot's own fields in front of the stored copy, checked and removed.
fn without_dovecot_fields<'a>(stored: &'a [u8], sender: &str, rcpt: &str) -> &'a [u8] {
    let want = format!("Return-Path: <{sender}>\nDelivered-To: {rcpt}\n");
    assert!(
        stored.starts_with(want.as_bytes()),
        "{}",
        String::from_utf8_lossy(stored)
    );
    &stored[want.len()..]
}

fn run(d: &Dovecot, sender: &str, rcpts: &[&str], msg: &[u8]) -> Output {
    let f = Filter::new(&format!(
        "[reinject]\nmethod = \"lmtp:unix:{}\"\ntimeout = \"10s\"\n",
        d.socket().display()
    ));
    let mut args = vec!["-f", sender, "--"];
    args.extend_from_slice(rcpts);
    f.run(&args, msg)
}

/// A message over the 1 KB quota of full and full2.
fn big() -> Vec<u8> {
    let mut m = common::PLAIN.to_vec();
    for i in 0..60 {
        m.extend_from_slice(
            format!("line {i:02} of a message over one kilobyte...........\n").as_bytes(),
        );
    }
    m
}

fn clean_message_lands_byte_exact(d: &Dovecot) {
    let msg = b"From: Carol <carol@example.org>\nTo: alice@example.com\nSubject: bytes\nMessage-ID: <lmtp-1@example.org>\n\n.a line with a leading dot\n..two\nlatin-1 \xe9t\xe9\ntrailing spaces   \n\nend\n";
    let r = run(d, "carol@example.org", &["alice@example.com"], msg);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got = d.take("alice");
    assert_eq!(got.len(), 1, "alice: {got:?}");
    let rest = without_dovecot_fields(&got[0], "carol@example.org", "alice@example.com");
    let ours = added_block(rest, msg).unwrap();
    let ours = String::from_utf8_lossy(ours);
    assert!(
        ours.lines()
            .all(|l| l.starts_with("X-") || l.starts_with([' ', '\t'])),
        "only our X- fields in front: {ours:?}"
    );
}

fn an_unknown_recipient_beside_a_known_one(d: &Dovecot) {
    let r = run(
        d,
        "bob@example.com",
        &["alice@example.com", "nosuchuser@example.com"],
        common::PLAIN,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got = d.take("alice");
    assert_eq!(got.len(), 1);
    let rest = without_dovecot_fields(&got[0], "bob@example.com", "alice@example.com");
    added_block(rest, common::PLAIN).unwrap();
    assert!(
        r.stderr.contains(
            "DSN to <bob@example.com> for nosuchuser@example.com, refused by the next hop"
        ),
        "{}",
        r.stderr
    );
    let dsn = d.take("bob");
    assert_eq!(dsn.len(), 1, "one DSN to the sender");
    let dsn = String::from_utf8_lossy(&dsn[0]);
    assert!(dsn.starts_with("Return-Path: <>\n"), "{dsn}");
    assert!(
        dsn.contains("Final-Recipient: rfc822; nosuchuser@example.com"),
        "{dsn}"
    );
    assert!(dsn.contains("550 5.1.1"), "{dsn}");
}

fn over_quota_beside_a_normal_recipient(d: &Dovecot) {
    let msg = big();
    let r = run(
        d,
        "bob@example.com",
        &["full@example.com", "alice@example.com"],
        &msg,
    );
    // Rule: delivered to alice (the point of no return); full's 452 cannot be retried alone,
    // so it is logged loudly and reported to the sender as failed.
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("<full@example.com> deferred (452 4.2.2"),
        "{}",
        r.stderr
    );
    assert_eq!(d.take("alice").len(), 1);
    assert!(d.take("full").is_empty(), "full is over quota");
    let dsn = d.take("bob");
    assert_eq!(dsn.len(), 1, "one DSN to the sender");
    let dsn = String::from_utf8_lossy(&dsn[0]);
    assert!(
        dsn.contains("Final-Recipient: rfc822; full@example.com"),
        "{dsn}"
    );
    assert!(dsn.contains("Quota exceeded"), "{dsn}");
    // A temporary failure we could not retry keeps its class: 4.2.2, not 5.0.0.
    assert!(dsn.contains("Status: 4.2.2\n"), "{dsn}");
}

fn every_recipient_over_quota_is_75(d: &Dovecot) {
    let msg = big();
    let r = run(
        d,
        "bob@example.com",
        &["full@example.com", "full2@example.com"],
        &msg,
    );
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(d.take("full").is_empty());
    assert!(d.take("full2").is_empty());
    assert!(
        d.take("bob").is_empty(),
        "no DSN: the MTA keeps the message"
    );
    // One recipient alone, too.
    let r = run(d, "bob@example.com", &["full@example.com"], &msg);
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(d.take("full").is_empty());
}

#[test]
fn lmtp_reinjection_into_a_real_dovecot() {
    let t = Instant::now();
    let d = Dovecot::up();
    clean_message_lands_byte_exact(&d);
    an_unknown_recipient_beside_a_known_one(&d);
    over_quota_beside_a_normal_recipient(&d);
    every_recipient_over_quota_is_75(&d);
    assert!(
        d.log().contains("saved mail to INBOX"),
        "Dovecot logged the deliveries: {}",
        d.log()
    );
    eprintln!("lmtp: {:?}", t.elapsed());
}
