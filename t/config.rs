//! The configuration as an admin meets it through the binary: permissions that would hand the
//! filter to someone else (refused), what `check-config` must catch before every message defers,
//! and error messages a person can act on (issue 13 #3, #4, #9).

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const ARGV: &[&str] = &["-f", "a@example.org", "--", "b@example.com"];

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn check_config(f: &Filter) -> Output {
    let mut c = std::process::Command::new(bin());
    c.current_dir(f.cwd())
        .args(["check-config", "-c", f.config.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    feed_and_wait(c.spawn().unwrap(), b"")
}

/// check-config says 78 and names `key` (or the file) and `what`; a filtering run defers with
/// the same first error in its status line and delivers nothing.
fn refused(f: &Filter, key: &str, what: &str) {
    let r = check_config(f);
    assert_eq!(r.code, 78, "{key}: {}{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("configuration OK"), "{}", r.stdout);
    assert!(r.stderr.contains(key), "{key}: {}", r.stderr);
    assert!(r.stderr.contains(what), "{what}: {}", r.stderr);
}

fn ok(f: &Filter) {
    let r = check_config(f);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("configuration OK"), "{}", r.stdout);
}

fn run_defers(f: &Filter, key: &str, what: &str) {
    let r = f.run(ARGV, PLAIN);
    assert_eq!(r.code, 75, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .starts_with("4.3.5 pipescan: configuration error, message kept for retry: "),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(key) && r.stdout.contains(what),
        "{key} / {what}: {}",
        r.stdout
    );
    assert_eq!(f.calls(), 0, "nothing may be delivered");
}

/// A config anyone can rewrite is root for whoever rewrites it (a Sendmail prog mailer with
/// F=S starts pipescan as root): refused, with the chmod to run.
#[test]
fn a_config_anyone_can_rewrite_is_refused_with_the_chmod_to_run() {
    let f = Filter::new("");
    ok(&f);
    chmod(&f.config, 0o666);
    let p = f.config.display().to_string();
    refused(
        &f,
        &format!("{p}: {p} is mode 0666"),
        &format!("chmod go-w {p}"),
    );
    run_defers(&f, &p, &format!("chmod go-w {p}"));
    chmod(&f.config, 0o664);
    refused(&f, "mode 0664: writable by its group", "chmod go-w");
    chmod(&f.config, 0o644);
    ok(&f);
    assert_eq!(f.run(ARGV, PLAIN).code, 0);
}

/// The marker key is a secret: readable by every user is refused (0640 root:pipescan is the
/// recommended setup, 0600 for a key owned by the run user).
#[test]
fn a_marker_key_readable_by_everyone_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let kf = dir.path().join("marker.key");
    std::fs::write(&kf, "0123456789abcdef-test-key\n").unwrap();
    chmod(&kf, 0o644);
    let f = Filter::new(&format!("[loop_marker]\nkey_file = \"{}\"\n", kf.display()));
    refused(&f, "key loop_marker.key_file", "chmod 640");
    run_defers(&f, "key loop_marker.key_file", "readable by every user");
    chmod(&kf, 0o666);
    refused(&f, "key loop_marker.key_file", "chmod go-w");
    chmod(&kf, 0o640);
    ok(&f);
    chmod(&kf, 0o600);
    ok(&f);
    assert_eq!(f.run(ARGV, PLAIN).code, 0);
}

/// A `file:` list, or a directory above it, that others can write: they choose who is a spam
/// lover or whitelisted.
#[test]
fn a_list_file_others_can_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lists = dir.path().join("lists");
    std::fs::create_dir(&lists).unwrap();
    let list = lists.join("lovers");
    std::fs::write(&list, "bob@example.com\n").unwrap();
    chmod(&list, 0o646);
    let f = Filter::new(&format!(
        "[lists]\nspam_lovers = [\"file:{}\"]\n",
        list.display()
    ));
    refused(
        &f,
        "key lists.spam_lovers",
        "mode 0646: writable by every user",
    );
    run_defers(&f, "key lists.spam_lovers", "chmod go-w");
    chmod(&list, 0o644);
    ok(&f);
    chmod(&lists, 0o777);
    refused(
        &f,
        "key lists.spam_lovers",
        &format!("directory {} is mode 0777", lists.display()),
    );
    chmod(&lists, 0o1777);
    ok(&f);
}

/// A tempdir or quarantine directory others can write without the sticky bit: they can remove
/// or replace spooled and quarantined mail. 1777, like /tmp, is fine.
#[test]
fn shared_directories_need_the_sticky_bit() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("tmp");
    let q = dir.path().join("quarantine");
    std::fs::create_dir(&t).unwrap();
    std::fs::create_dir(&q).unwrap();
    chmod(&t, 0o777);
    let f = Filter::new(&format!(
        "[general]\ntempdir = \"{}\"\n[quarantine]\ndirectory = \"{}\"\n",
        t.display(),
        q.display()
    ));
    refused(&f, "key general.tempdir", "without the sticky bit");
    run_defers(&f, "key general.tempdir", "mode 0777");
    chmod(&t, 0o1777);
    ok(&f);
    chmod(&q, 0o770);
    refused(
        &f,
        "key quarantine.directory",
        "mode 0770: writable by its group",
    );
    run_defers(&f, "key quarantine.directory", "chmod go-w");
    chmod(&q, 0o700);
    ok(&f);
    assert_eq!(f.run(ARGV, PLAIN).code, 0);
}

/// Each of these said "configuration OK" and then deferred every message (or ran as root).
#[test]
fn check_config_catches_what_would_defer_every_message() {
    let dir = tempfile::tempdir().unwrap();
    let not_exec = dir.path().join("sendmail-not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\nexit 0\n").unwrap();
    chmod(&not_exec, 0o644);
    // A directory only root may write to, for a run as nobody.
    let rootonly = dir.path().join("rootonly");
    std::fs::create_dir(&rootonly).unwrap();
    chmod(&rootonly, 0o755);
    chmod(dir.path(), 0o755);
    let cases: Vec<(String, &str, &str)> = vec![
        (
            "[general]\ntempdir = \"/nonexistent/pipescan-tmp\"\n".into(),
            "key general.tempdir",
            "/nonexistent/pipescan-tmp: No such file",
        ),
        (
            "[general]\nuser = \"no-such-user-pipescan\"\n".into(),
            "key general.user",
            "there is no user \"no-such-user-pipescan\"",
        ),
        (
            // Missing, and nobody cannot create it.
            format!(
                "[general]\nuser = \"nobody\"\n[quarantine]\ndirectory = \"{}/quarantine\"\n",
                rootonly.display()
            ),
            "key quarantine.directory",
            "does not exist, and nobody cannot create it",
        ),
        (
            // A remote relay is verified (tls = "auto") against a CA file that is not there:
            // every delivery would defer.
            "[reinject]\nmethod = \"smtp:relay.example.org:25\"\ntls_ca_file = \"/nonexistent/ca.pem\"\n"
                .into(),
            "key reinject.tls_ca_file",
            "/nonexistent/ca.pem: No such file",
        ),
        (
            // The same with a file that has no certificate in it.
            format!(
                "[reinject]\nmethod = \"smtp\"\nservers = [\"[127.0.0.1]:10025\"]\ntls = \"verify\"\ntls_ca_file = \"{}\"\n",
                not_exec.display()
            ),
            "key reinject.tls_ca_file",
            "no usable CA certificate in it",
        ),
        (
            // "verify" over a unix socket: no name to check, every delivery would defer.
            "[reinject]\nmethod = \"lmtp:unix:/run/dovecot/lmtp\"\ntls = \"verify\"\n".into(),
            "key reinject.tls",
            "cannot check a certificate over the unix socket /run/dovecot/lmtp",
        ),
        (
            // There, but not writable by nobody.
            format!(
                "[general]\nuser = \"nobody\"\n[quarantine]\ndirectory = \"{}\"\n",
                rootonly.display()
            ),
            "key quarantine.directory",
            "nobody cannot create files in it",
        ),
    ];
    for (extra, key, what) in &cases {
        let f = Filter::new(extra);
        refused(&f, key, what);
    }
    // The reinjection command (the harness's is the fake sendmail: replace it).
    let not_exec = not_exec.display().to_string();
    for (argv, what) in [
        (
            ["/nonexistent/sendmail", "-i"],
            "/nonexistent/sendmail: No such file",
        ),
        ([not_exec.as_str(), "-i"], "not executable"),
    ] {
        let f = Filter::new("");
        f.set_reinject_command(&argv);
        refused(&f, "key reinject.command", what);
    }
    // On loopback (tls = "auto" is "none" there) the CA file is not needed.
    ok(&Filter::new(
        "[reinject]\nmethod = \"smtp:[127.0.0.1]:10025\"\ntls_ca_file = \"/nonexistent/ca.pem\"\n",
    ));
    // Owned by nobody, the same quarantine directory is fine for a run as nobody.
    nix::unistd::chown(&rootonly, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let f = Filter::new(&format!(
        "[general]\nuser = \"nobody\"\n[quarantine]\ndirectory = \"{}\"\n",
        rootonly.display()
    ));
    ok(&f);
}

/// Relative paths depend on the directory the MTA starts pipescan in: refused in config loading
/// (so a run defers too), and nothing is ever written into the working directory (a relative
/// quarantine directory once committed `%Q/banned-lq-…` to the repository).
#[test]
fn relative_paths_are_refused_and_nothing_lands_in_the_working_directory() {
    for (extra, key) in [
        (
            "[quarantine]\ndirectory = \"%Q\"\n",
            "key quarantine.directory",
        ),
        (
            "[loop_marker]\nkey_file = \"marker.key\"\n",
            "key loop_marker.key_file",
        ),
        (
            "[lists]\nspam_lovers = [\"file:lovers\"]\n",
            "key lists.spam_lovers",
        ),
        ("[general]\ntempdir = \"spool\"\n", "key general.tempdir"),
    ] {
        let f = Filter::new(extra);
        refused(&f, key, "absolute");
        run_defers(&f, key, "absolute");
        let left: Vec<_> = std::fs::read_dir(f.cwd()).unwrap().collect();
        assert!(left.is_empty(), "{extra}: {left:?}");
    }
}

/// Issue 13 #9: every error names file:line, the key, the value given and what is accepted, and
/// all the errors of a file come at once.
#[test]
fn config_errors_say_where_what_was_given_and_what_is_accepted_all_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pipescan.toml");
    std::fs::write(
        &p,
        "[general]\nmax_message_size = 5.5\ndeadline = 30\nmax_received = \"lots\"\n\n[spam]\nkill_level = 5.0\n",
    )
    .unwrap();
    let ps = p.display().to_string();
    let want = [
        format!(
            "{ps}:2: key general.max_message_size: invalid type: floating point `5.5`, expected a size: a whole number of bytes or a string such as \"500K\""
        ),
        format!(
            "{ps}:3: key general.deadline: a bare number (30) is not a duration: write it as a string with a unit, e.g. \"30s\""
        ),
        format!(
            "{ps}:4: key general.max_received: invalid type: string \"lots\", expected a whole number, e.g. 100"
        ),
        format!(
            "{ps}:7: key spam.kill_level: the spam levels must satisfy tag_level <= tag2_level <= kill_level, but tag_level = 2.0, tag2_level = 6.2, kill_level = 5.0"
        ),
    ];
    let r = run_bin(&["check-config", "-c", &ps], b"", &[]);
    assert_eq!(r.code, 78, "{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), want.len(), "{}", r.stderr);
    for (line, w) in lines.iter().zip(&want) {
        assert!(
            line.starts_with(&format!("pipescan: configuration error: {w}")),
            "{line}\nwant {w}"
        );
    }
    for bad in [
        "untagged enum",
        "expected usize",
        "expected f64",
        "expected a string",
    ] {
        assert!(!r.stderr.contains(bad), "{bad}: {}", r.stderr);
    }
    // A run: the first in the status line, every one in the log, nothing delivered.
    let r = run_bin(
        &["-c", &ps, "-f", "a@example.org", "--", "b@example.com"],
        PLAIN,
        &[],
    );
    assert_eq!(r.code, 75);
    assert_eq!(
        r.stdout.trim_end(),
        format!(
            "4.3.5 pipescan: configuration error, message kept for retry: {}",
            lines[0].trim_start_matches("pipescan: configuration error: ")
        )
    );
    for w in &want {
        assert!(r.stderr.contains(w.as_str()), "{w}: {}", r.stderr);
    }
}

/// `pipescan check-config | head -1`, made certain: the reader is gone before check-config
/// writes anything; the command ends quietly (0), as any Unix tool does, never with a panic or
/// an "internal error" 75.
#[test]
fn check_config_into_a_closed_pipe_ends_quietly() {
    let f = Filter::new("");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = f
        .command(&["check-config"])
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .spawn()
        .unwrap()
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("internal error"),
        "{stderr}"
    );
}

/// `[lists] mynetworks` with a /0 block makes every client ours: every message from the
/// Internet would get the originating bank (unscanned as conf/pipescan.toml ships it, and
/// DKIM-signed). Refused with the reason; a /1 or a host is fine.
#[test]
fn mynetworks_that_is_every_address_is_refused() {
    for all in ["0.0.0.0/0", "::/0", "::ffff:0.0.0.0/0"] {
        let f = Filter::new(&format!("[lists]\nmynetworks = [\"{all}\"]\n"));
        refused(&f, "key lists.mynetworks", "every address");
        run_defers(&f, "lists.mynetworks", "every address");
    }
    ok(&Filter::new(
        "[lists]\nmynetworks = [\"10.0.0.0/8\", \"2001:db8::/32\", \"127.0.0.1\"]\n",
    ));
}

/// An author bank for a one-label domain ("com") would go to every DKIM-proven author under
/// it: anyone can sign for a .com domain of their own. Refused (alignment never takes a d= of
/// one label either).
#[test]
fn an_author_bank_for_a_top_level_domain_is_refused() {
    let banks = "[policy.P.headers]\nx_header_line = \"P\"\n";
    for tld in ["com", "com.", ".com"] {
        let f = Filter::new(&format!(
            "[auth]\nauthor_policy_banks = {{ \"{tld}\" = \"P\" }}\n{banks}"
        ));
        refused(&f, "key auth.author_policy_banks", "one label");
    }
    ok(&Filter::new(&format!(
        "[auth]\nauthor_policy_banks = {{ \"partner.example\" = \"P\" }}\n{banks}"
    )));
}

/// whitelist_authenticated_sender trusts a DKIM-proven domain: entries that any domain
/// matches make every sender with a key for a domain of their own whitelisted ("." everyone,
/// "ceo@" that local part at any domain, "com" or ".com" every domain under .com). Refused.
#[test]
fn an_authenticated_whitelist_that_anyone_can_join_is_refused() {
    for entry in [
        ".",
        "@.",
        "ceo@",
        "com",
        ".com",
        "@com",
        "@.com",
        "!x@y.example",
    ] {
        let f = Filter::new(&format!(
            "[auth]\nwhitelist_authenticated_sender = [\"{entry}\"]\n"
        ));
        if entry.starts_with('!') {
            ok(&f);
            continue;
        }
        refused(&f, "key auth.whitelist_authenticated_sender", "anyone");
    }
    ok(&Filter::new(
        "[auth]\nwhitelist_authenticated_sender = [\"ceo@bank.example\", \"@partner.example\", \".partner.example\", \"partner.example\"]\n",
    ));
}
