//! The policy engine through the built binary, as an admin would tell it: several recipients
//! with different settings, one message, the right copies, DSNs and log line.
//!
//! Each story is data in t/policy/: `NN-name.eml` (the message), `NN-name.toml` (the config on
//! top of the harness's base config; `@SPAMD@` and `@CLAMD@` stand for the real servers of
//! scripts/mailstack, `@SHIPPED_FROM TEXT@` for conf/pipescan.toml from TEXT to its end),
//! `NN-name.expect` (what must come out) and, where the story needs one, `NN-name.readme`.
//! `@GTUBE@` in a message stands for the GTUBE string (kept out of the repository's files, which
//! should not be spam themselves). Every story runs as LF and as CRLF; a mismatch writes
//! `NN-name.{lf,crlf}.failed` beside it with what came out.
//!
//! The `.expect` format, one check a line (`#` starts a comment):
//!
//! ```text
//! argv: -v -f a@example.org -- b@example.com   pipescan's arguments; "" is the empty string
//! exit: 0                                      the exit code
//! stdout: 5.7.0 message rejected as spam       stdout is exactly this one line ("stdout:": empty)
//! stdout has: TEXT                             stdout contains TEXT
//! log lines: 1                                 how many verdict log lines (Passed/Blocked … -> <…>)
//! log: Blocked SPAM {Discarded}                a verdict log line contains this
//! sent: 2                                      how many times sendmail ran
//! sent N argv: -i -f "" -- a@example.com       the argv of the Nth sendmail run (from 1), exactly
//! sent N has: X-Spam-Flag: YES                 its header section (folds joined) contains this
//! sent N lacks: X-Spam                         … does not contain this
//! sent N first: X-Virus-Scanned: …             … its first line is exactly this
//! subject N: ***SPAM*** offer                  … its Subject field is exactly this
//! sent N whole has: / whole lacks: TEXT        the whole message (header and body) does / does not
//! sent N line: Message-ID: <pipescan.*@mx.test>  a line of the message matches ('*': any run)
//! sent N keeps the message                     it ends with the bytes that came in
//! sent N adds: X-A: b\n\tc\n                   it is exactly these fields ('\n', '\t' escapes),
//!                                              then the message that came in (with LF ends)
//! quarantined: no | banned-* …                 the quarantine's files, one name pattern each
//! ```
//!
//! Instead of a number N, `<addr>` names the sendmail run whose recipients include addr.

mod common;

use common::*;
use std::path::{Path, PathBuf};

const GTUBE: &str = concat!(
    "XJS*C4JDBQADN1.NSBN3*2IDNEN*",
    "GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
);

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

/// `msg` with LF line ends.
fn lf(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len());
    for (i, &b) in msg.iter().enumerate() {
        if !(b == b'\r' && msg.get(i + 1) == Some(&b'\n')) {
            out.push(b);
        }
    }
    out
}

/// `a "" b` → ["a", "", "b"].
fn words(s: &str) -> Vec<String> {
    s.split_whitespace()
        .map(|w| {
            if w == "\"\"" {
                String::new()
            } else {
                w.to_string()
            }
        })
        .collect()
}

fn replace_between(text: &str, open: &str, with: impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(open) {
        out.push_str(&rest[..at]);
        let after = &rest[at + open.len()..];
        let end = after.find('@').expect("unclosed placeholder");
        out.push_str(&with(&after[..end]));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn config_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = if text.contains("@SPAMD@") {
        text.replace("@SPAMD@", &real_spamd())
    } else {
        text
    };
    let text = if text.contains("@CLAMD@") {
        text.replace("@CLAMD@", &real_clamd())
    } else {
        text
    };
    replace_between(&text, "@SHIPPED_FROM ", |from| {
        let shipped = std::fs::read_to_string(repo().join("conf/pipescan.toml")).unwrap();
        let at = shipped
            .find(from)
            .unwrap_or_else(|| panic!("{from} not in conf/pipescan.toml"));
        shipped[at..].to_string()
    })
}

/// Every check of `expect` against one run; the failed ones, in words.
fn check(f: &Filter, expect: &str, input: &[u8], crlf: bool) -> (Vec<String>, String) {
    let mut failed = Vec::new();
    let argv_line = expect
        .lines()
        .find_map(|l| l.strip_prefix("argv:"))
        .expect("an argv: line");
    let argv = words(argv_line);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let r = f.run_bytes(&argv, input);
    let calls = f.calls();
    // What the checks look at: LF line ends, whatever the run was.
    let msgs: Vec<Vec<u8>> = (0..calls)
        .map(|n| {
            let m = f.call_msg(n);
            if crlf { lf(&m) } else { m }
        })
        .collect();
    let raw: Vec<Vec<u8>> = (0..calls).map(|n| f.call_msg(n)).collect();
    let argvs: Vec<Vec<String>> = (0..calls).map(|n| f.call_argv(n)).collect();
    let logs = log_lines(&r.stderr);
    let select = |sel: &str| -> Result<usize, String> {
        let n = if let Some(addr) = sel.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
            argvs
                .iter()
                .position(|a| {
                    a.iter()
                        .skip_while(|w| *w != "--")
                        .skip(1)
                        .any(|w| w == addr)
                })
                .ok_or(format!("no sendmail run for {sel}"))?
        } else {
            sel.parse::<usize>()
                .map_err(|e| format!("bad selector {sel}: {e}"))?
                .checked_sub(1)
                .ok_or("runs count from 1")?
        };
        if n < calls {
            Ok(n)
        } else {
            Err(format!("no sendmail run {sel}: {calls} runs"))
        }
    };
    for line in expect.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') || line.starts_with("argv:") {
            continue;
        }
        let ok: Result<(), String> = (|| {
            let (key, value) = line
                .split_once(": ")
                .or_else(|| line.split_once(':'))
                .map(|(k, v)| (k.trim(), v))
                .unwrap_or((line, ""));
            let want = |c: bool, what: String| if c { Ok(()) } else { Err(what) };
            match key {
                "exit" => want(r.code.to_string() == value, format!("exit {}", r.code)),
                "stdout" => want(
                    r.stdout
                        == value
                            .is_empty()
                            .then(String::new)
                            .unwrap_or(format!("{value}\n")),
                    format!("stdout {:?}", r.stdout),
                ),
                "stdout has" => want(r.stdout.contains(value), format!("stdout {:?}", r.stdout)),
                "log lines" => want(
                    logs.len().to_string() == value,
                    format!("log lines {logs:?}"),
                ),
                "log" => want(
                    logs.iter().any(|l| l.contains(value)),
                    format!("log lines {logs:?}"),
                ),
                "sent" => want(calls.to_string() == value, format!("sent {calls}")),
                "quarantined" => {
                    let mut names: Vec<String> = f
                        .quarantined()
                        .iter()
                        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                        .collect();
                    names.sort();
                    let pats = if value == "no" { vec![] } else { words(value) };
                    want(
                        names.len() == pats.len()
                            && pats.iter().all(|p| names.iter().any(|n| glob(p, n))),
                        format!("quarantined {names:?}"),
                    )
                }
                _ if key.starts_with("subject ") => {
                    let n = select(&key["subject ".len()..])?;
                    let h = header_of(&msgs[n]);
                    let subj: Vec<&str> = h
                        .lines()
                        .filter_map(|l| l.strip_prefix("Subject: "))
                        .collect();
                    want(subj == [value], format!("Subject fields {subj:?}"))
                }
                _ if key.starts_with("sent ") => {
                    let rest = &key["sent ".len()..];
                    let (sel, what) = rest.split_once(' ').unwrap_or((rest, ""));
                    let n = select(sel)?;
                    let m = &msgs[n];
                    let whole = String::from_utf8_lossy(m);
                    let h = header_of(m);
                    match what {
                        "argv" => want(words(value) == argvs[n], format!("argv {:?}", argvs[n])),
                        "has" => want(h.contains(value), format!("header:\n{h}")),
                        "lacks" => want(!h.contains(value), format!("header:\n{h}")),
                        "first" => want(h.lines().next() == Some(value), format!("header:\n{h}")),
                        "whole has" => want(whole.contains(value), format!("message:\n{whole}")),
                        "whole lacks" => want(!whole.contains(value), format!("message:\n{whole}")),
                        "line" => want(
                            whole.lines().any(|l| glob(value, l)),
                            format!("message:\n{whole}"),
                        ),
                        "keeps the message" => {
                            want(raw[n].ends_with(input), format!("message:\n{whole}"))
                        }
                        "adds" => {
                            let added = value.replace("\\n", "\n").replace("\\t", "\t");
                            let want_msg = [added.as_bytes(), &lf(input)].concat();
                            want(*m == want_msg, format!("message:\n{whole}"))
                        }
                        _ => Err(format!("unknown check {what:?}")),
                    }
                }
                _ => Err("unknown check".to_string()),
            }
        })();
        if let Err(e) = ok {
            failed.push(format!("  {line}\n    got: {e}"));
        }
    }
    let mut seen = format!(
        "exit {}\n--- stdout\n{}--- stderr\n{}",
        r.code, r.stdout, r.stderr
    );
    for n in 0..calls {
        seen.push_str(&format!(
            "--- sendmail run {} {:?}\n{}",
            n + 1,
            argvs[n],
            String::from_utf8_lossy(&raw[n])
        ));
    }
    (failed, seen)
}

/// Every story in t/policy/ tells the same as LF and as CRLF.
#[test]
fn policy_stories_lf_and_crlf() {
    let dir = repo().join("t/policy");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "expect"))
        .collect();
    names.sort();
    assert!(names.len() >= 25, "story list is (nearly) empty: {names:?}");
    let mut failures = Vec::new();
    for path in &names {
        let story = path.file_stem().unwrap().to_string_lossy().into_owned();
        let expect = std::fs::read_to_string(path).unwrap();
        let config = config_of(&path.with_extension("toml"));
        let eml = std::fs::read(path.with_extension("eml")).unwrap();
        let eml = match String::from_utf8(eml.clone()) {
            Ok(text) if text.contains("@GTUBE@") => text.replace("@GTUBE@", GTUBE).into_bytes(),
            _ => eml,
        };
        for crlf in [false, true] {
            let tag = if crlf { "crlf" } else { "lf" };
            let input = if crlf { to_crlf(&eml) } else { eml.clone() };
            let f = Filter::new(&config);
            let (failed, seen) = check(&f, &expect, &input, crlf);
            let out = path.with_extension(format!("{tag}.failed"));
            if failed.is_empty() {
                println!("story {story} ({tag}): ok");
                let _ = std::fs::remove_file(&out);
            } else {
                println!("story {story} ({tag}): FAILED");
                std::fs::write(&out, &seen).unwrap();
                failures.push(format!(
                    "{story} ({tag}), see {}:\n{}",
                    out.display(),
                    failed.join("\n")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "policy stories that did not come true:\n{}",
        failures.join("\n")
    );
}
