//! End-to-end scenarios: real Postfix, spamd and clamd on loopback, pipescan as Postfix's content
//! filter (pipe transport), in procmail and (11-sendmail) as a Sendmail prog mailer; 12-smtp-reinject
//! reinjects over SMTP into the stack's return smtpd instead of sendmail(1).
//!
//! 15-authentication also needs the authoritative DNS of scripts/dns-stack: PIPESCAN_DNS and
//! PIPESCAN_DNS_KEYS when scripts/test set them, else this test starts its own on a free port.
//!
//! One test runs every `t/e2e/NN-name/run.sh` in order (they share one Postfix instance and must
//! not run concurrently), collects the failures, and stops what it started. It needs root and a
//! Debian machine: `scripts/postfix-stack up` installs Postfix, swaks and procmail when missing and
//! runs a private Postfix instance in a temporary directory; `scripts/mailstack up` starts spamd
//! and clamd unless PIPESCAN_SPAMD / PIPESCAN_CLAMD already point at running ones (scripts/test
//! sets them). A missing prerequisite fails the test -- it never skips.
//!
//! Environment knobs: PIPESCAN_E2E_ONLY=08,10 runs only the scenarios whose names start with one
//! of the given prefixes; PIPESCAN_E2E_KEEP=1 keeps the state directory (logs, queue, Maildirs)
//! even when everything passed.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A free loopback port (bound and released at once: good enough for a test machine).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind a loopback port")
}

/// Runs a script, returns (success, stdout + stderr).
fn run(cmd: &mut Command) -> (bool, String) {
    match cmd.stdin(Stdio::null()).output() {
        Ok(out) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            (out.status.success(), text)
        }
        Err(e) => (false, format!("cannot run {cmd:?}: {e}")),
    }
}

/// `KEY=value` lines (as printed by `postfix-stack env` / `mailstack env`).
fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
        })
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect()
}

/// What this test started, stopped again on drop (also when an assertion panics).
struct Stacks {
    dir: PathBuf,
    postfix_up: bool,
    mailstack_up: bool,
    dns_up: bool,
    keep: bool,
}

impl Drop for Stacks {
    fn drop(&mut self) {
        let dir = self.dir.display().to_string();
        if self.postfix_up {
            let (_, out) = run(Command::new(repo().join("scripts/postfix-stack"))
                .args(["down", &format!("{dir}/postfix")]));
            eprintln!("{out}");
        }
        if self.dns_up {
            let (_, out) = run(Command::new(repo().join("scripts/dns-stack"))
                .args(["down", &format!("{dir}/dns")]));
            eprintln!("{out}");
        }
        if self.mailstack_up {
            let (_, out) = run(Command::new(repo().join("scripts/mailstack"))
                .args(["down", &format!("{dir}/mailstack")]));
            eprintln!("{out}");
        }
        if self.keep {
            eprintln!(
                "e2e: state kept in {dir} (postfix/postfix.log, postfix/pipescan.log, Maildirs)"
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn scenarios(only: Option<&str>) -> Vec<PathBuf> {
    let dir = repo().join("t/e2e");
    let mut list: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()))
                && p.join("run.sh").is_file()
        })
        .filter(|p| match only {
            None => true,
            Some(prefixes) => {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                prefixes
                    .split(',')
                    .any(|pre| !pre.is_empty() && name.starts_with(pre.trim()))
            }
        })
        .collect();
    list.sort();
    list
}

/// Runs one scenario with a time limit; returns (passed, output, seconds).
fn run_scenario(dir: &Path, env: &BTreeMap<String, String>) -> (bool, String, f64) {
    let started = Instant::now();
    let mut cmd = Command::new("timeout");
    cmd.arg("--kill-after=10")
        .arg(SCENARIO_TIMEOUT.as_secs().to_string())
        .arg("bash")
        .arg(dir.join("run.sh"))
        .current_dir(repo())
        .envs(env);
    let (ok, out) = run(&mut cmd);
    (ok, out, started.elapsed().as_secs_f64())
}

#[test]
fn e2e_scenarios() {
    let started = Instant::now();
    let only = std::env::var("PIPESCAN_E2E_ONLY").ok();
    let list = scenarios(only.as_deref());
    assert!(
        !list.is_empty(),
        "no scenarios found under t/e2e (PIPESCAN_E2E_ONLY={only:?})"
    );

    // Prerequisites: fail, never skip, and say what to do.
    let uid = run(Command::new("id").arg("-u")).1;
    assert_eq!(
        uid.trim(),
        "0",
        "the e2e scenarios need root: they install Debian packages (postfix, swaks, procmail, \
         spamd, clamav-daemon), create the users pipescan and pipescan-e2e and run a private \
         Postfix instance. Run them as root, e.g. with scripts/test on a Debian 12 machine."
    );
    for tool in [
        "bash", "timeout", "perl", "flock", "runuser", "useradd", "unshare",
    ] {
        let (ok, _) = run(Command::new("sh").args(["-c", &format!("command -v {tool}")]));
        assert!(
            ok,
            "{tool} is missing: install it (Debian: apt-get install coreutils perl util-linux passwd)"
        );
    }

    // One e2e run at a time on a machine: the runs share the users pipescan and pipescan-e2e
    // (whose home directory, where procmail delivers, moves to each run's state directory),
    // /etc/postfix/main.cf's alternate_config_directories and the Debian packages. A second
    // `cargo test` waits here instead of stealing the first one's procmail deliveries.
    let lock_path = "/run/lock/pipescan-e2e.lock";
    let _ = std::fs::create_dir_all("/run/lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(lock_path)
        .unwrap_or_else(|e| panic!("cannot open {lock_path}: {e}"));
    if lock.try_lock().is_err() {
        eprintln!("e2e: another e2e run holds {lock_path}; waiting for it");
        lock.lock()
            .unwrap_or_else(|e| panic!("cannot lock {lock_path}: {e}"));
    }

    let state = tempfile::Builder::new()
        .prefix("pipescan-e2e-")
        .tempdir_in("/tmp")
        .expect("cannot create a state directory in /tmp")
        .keep();
    // The pipe user (pipescan) and the procmail user must traverse it.
    let _ = run(Command::new("chmod").args(["755", &state.display().to_string()]));
    let mut stacks = Stacks {
        dir: state.clone(),
        postfix_up: false,
        mailstack_up: false,
        dns_up: false,
        keep: std::env::var_os("PIPESCAN_E2E_KEEP").is_some(),
    };
    let mut env: BTreeMap<String, String> = BTreeMap::new();

    // spamd + clamd: use the caller's (scripts/test), or start our own on free ports.
    let t0 = Instant::now();
    match (
        std::env::var("PIPESCAN_SPAMD"),
        std::env::var("PIPESCAN_CLAMD"),
    ) {
        (Ok(s), Ok(c)) if !s.is_empty() && !c.is_empty() => {
            env.insert("PIPESCAN_SPAMD".into(), s);
            env.insert("PIPESCAN_CLAMD".into(), c);
        }
        _ => {
            let ms = state.join("mailstack").display().to_string();
            let (ok, out) = run(Command::new(repo().join("scripts/mailstack"))
                .args(["up", &ms])
                .env("MAILSTACK_SPAMD_PORT", free_port().to_string())
                .env("MAILSTACK_CLAMD_PORT", free_port().to_string()));
            stacks.mailstack_up = true;
            stacks.keep |= !ok;
            assert!(
                ok,
                "scripts/mailstack up {ms} failed (it installs spamd, spamc, spamassassin, clamav-daemon, clamdscan, swaks with apt-get):\n{out}"
            );
            let (_, out) = run(Command::new(repo().join("scripts/mailstack")).args(["env", &ms]));
            env.extend(parse_env(&out));
        }
    }
    // The authoritative DNS of 15-authentication: the caller's (scripts/test), or our own.
    match (
        std::env::var("PIPESCAN_DNS"),
        std::env::var("PIPESCAN_DNS_KEYS"),
    ) {
        (Ok(d), Ok(k)) if !d.is_empty() && !k.is_empty() => {
            env.insert("PIPESCAN_DNS".into(), d);
            env.insert("PIPESCAN_DNS_KEYS".into(), k);
        }
        _ => {
            let dns = state.join("dns").display().to_string();
            let (ok, out) = run(Command::new(repo().join("scripts/dns-stack"))
                .args(["up", &dns])
                .env("DNSSTACK_PORT", free_port().to_string()));
            stacks.dns_up = true;
            stacks.keep |= !ok;
            assert!(
                ok,
                "scripts/dns-stack up {dns} failed (it installs unbound, opendkim-tools, python3-dkim with apt-get):\n{out}"
            );
            let (_, out) = run(Command::new(repo().join("scripts/dns-stack")).args(["env", &dns]));
            env.extend(parse_env(&out));
        }
    }
    let mailstack_secs = t0.elapsed().as_secs_f64();

    // The private Postfix instance with the binary cargo just built.
    let t0 = Instant::now();
    let pf = state.join("postfix").display().to_string();
    let (ok, out) = run(Command::new(repo().join("scripts/postfix-stack"))
        .args(["up", &pf])
        .env("PIPESCAN_BIN", env!("CARGO_BIN_EXE_pipescan"))
        .env("PIPESCAN_SPAMD", &env["PIPESCAN_SPAMD"])
        .env("PIPESCAN_CLAMD", &env["PIPESCAN_CLAMD"])
        .env("POSTFIX_STACK_SMTP_PORT", free_port().to_string())
        .env("POSTFIX_STACK_SUBMIT_PORT", free_port().to_string())
        .env("POSTFIX_STACK_RETURN_PORT", free_port().to_string())
        .env("POSTFIX_STACK_TLS_PORT", free_port().to_string())
        .env("POSTFIX_STACK_TLS_WRONG_PORT", free_port().to_string()));
    stacks.postfix_up = true;
    stacks.keep |= !ok;
    assert!(
        ok,
        "scripts/postfix-stack up {pf} failed (it installs postfix, swaks and procmail with apt-get):\n{out}"
    );
    env.extend(parse_env(&out));
    let postfix_secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "e2e: mailstack ready in {mailstack_secs:.1} s, postfix-stack in {postfix_secs:.1} s"
    );

    // Both scanners must answer before any story starts: a dead spamd would otherwise show up as
    // "passed, not spam-checked" deep inside a scenario. The stack's initial pipescan.toml names
    // exactly PIPESCAN_SPAMD and PIPESCAN_CLAMD.
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_pipescan")).args([
        "check-config",
        "--ping",
        "-c",
        &format!("{pf}/pipescan.toml"),
    ]));
    let pings: Vec<&str> = out.lines().filter(|l| l.starts_with("# ping")).collect();
    assert!(
        ok && pings.len() == 2,
        "spamd and clamd must both answer (PIPESCAN_SPAMD={}, PIPESCAN_CLAMD={}); start them with \
         scripts/mailstack up DIR (it installs spamd, spamc, spamassassin, clamav-daemon) and \
         export what `scripts/mailstack env DIR` prints, or unset both variables to let this test \
         start its own:\n{}",
        env["PIPESCAN_SPAMD"],
        env["PIPESCAN_CLAMD"],
        pings.join("\n")
    );

    let mut failures = Vec::new();
    for dir in &list {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let (ok, out, secs) = run_scenario(dir, &env);
        eprintln!("{out}");
        eprintln!(
            "e2e: {name}: {} in {secs:.1} s",
            if ok { "ok" } else { "FAILED" }
        );
        if !ok {
            failures.push(name);
        }
    }
    stacks.keep |= !failures.is_empty();
    let total = started.elapsed().as_secs_f64();
    eprintln!(
        "e2e: {} scenario(s) in {total:.1} s, {} failed",
        list.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "failed scenarios: {failures:?} (output above; state kept in {})",
        state.display()
    );
}
