//! Shared helpers for the integration tests: run the built binary with a config and a recording
//! fake sendmail (t/bin/fake-sendmail), and read back what it was given.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PLAIN: &[u8] = b"From: Alice <alice@example.org>\nTo: bob@example.com\nSubject: lunch\nDate: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <plain-1@example.org>\n\nSee you at noon.\n";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pipescan"))
}

pub fn fake_sendmail() -> String {
    repo().join("t/bin/fake-sendmail").display().to_string()
}

pub fn to_crlf(b: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(b.len() + b.len() / 20);
    for &c in b {
        if c == b'\n' {
            v.push(b'\r');
        }
        v.push(c);
    }
    v
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stdout_bytes: Vec<u8>,
    pub stderr: String,
}

/// A test's own directory, config (hostname mx.test, no syslog, fake sendmail) and environment.
pub struct Filter {
    pub dir: std::rc::Rc<tempfile::TempDir>,
    pub config: PathBuf,
    env: Vec<(String, String)>,
}

impl Filter {
    /// `extra` is TOML merged into the base config: the base sets [general] hostname/syslog,
    /// [reinject] command and [quarantine] directory (a per-test directory); keys the caller
    /// gives for those tables are added to them.
    pub fn new(extra: &str) -> Filter {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("pipescan.toml");
        let mut text = String::new();
        let (mut general, mut reinject, mut rest) = (String::new(), String::new(), String::new());
        let mut quarantine = String::new();
        // Merge the base keys into the caller's tables so no table is defined twice.
        let mut current = String::new();
        for line in extra.lines() {
            if line.trim_start().starts_with('[') {
                current = line.trim().to_string();
                if current != "[general]" && current != "[reinject]" && current != "[quarantine]" {
                    rest.push_str(line);
                    rest.push('\n');
                }
                continue;
            }
            match current.as_str() {
                "[general]" => general.push_str(&format!("{line}\n")),
                "[reinject]" => reinject.push_str(&format!("{line}\n")),
                "[quarantine]" => quarantine.push_str(&format!("{line}\n")),
                _ => rest.push_str(&format!("{line}\n")),
            }
        }
        text.push_str("[general]\nhostname = \"mx.test\"\nsyslog = false\n");
        text.push_str(&general);
        text.push_str(&format!(
            "[reinject]\ncommand = [\"{}\", \"-i\"]\n",
            fake_sendmail()
        ));
        text.push_str(&reinject);
        if !quarantine
            .lines()
            .any(|l| l.trim_start().starts_with("directory"))
        {
            text.push_str(&format!(
                "[quarantine]\ndirectory = \"{}\"\n",
                dir.path().join("quarantine").display()
            ));
        } else {
            text.push_str("[quarantine]\n");
        }
        text.push_str(&quarantine);
        text.push_str(&rest);
        std::fs::write(&config, text).unwrap();
        Filter {
            dir: std::rc::Rc::new(dir),
            config,
            env: Vec::new(),
        }
    }

    /// The same filter (same config, same recording directory) with one more environment
    /// variable for pipescan and, through it, the fake sendmail.
    pub fn env(&self, k: &str, v: &str) -> Filter {
        let mut env = self.env.clone();
        env.push((k.into(), v.into()));
        Filter {
            dir: self.dir.clone(),
            config: self.config.clone(),
            env,
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("-c").arg(&self.config).args(args);
        c.env("FAKE_SENDMAIL_DIR", self.dir.path());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    pub fn run(&self, args: &[&str], input: &[u8]) -> Output {
        self.run_bytes(args, input)
    }

    pub fn run_bytes(&self, args: &[&str], input: &[u8]) -> Output {
        let child = self.command(args).spawn().unwrap();
        feed_and_wait(child, input)
    }

    pub fn calls(&self) -> usize {
        (0..)
            .take_while(|n| self.dir.path().join(format!("call{n}.argv")).exists())
            .count()
    }

    pub fn call_argv(&self, n: usize) -> Vec<String> {
        let raw = std::fs::read(self.dir.path().join(format!("call{n}.argv"))).unwrap();
        raw.split(|&b| b == 0)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, v)| v.to_vec())
            .unwrap_or_default()
    }

    pub fn quarantine_dir(&self) -> PathBuf {
        self.dir.path().join("quarantine")
    }

    /// Every file under the quarantine directory.
    pub fn quarantined(&self) -> Vec<PathBuf> {
        fn walk(d: &std::path::Path, out: &mut Vec<PathBuf>) {
            if let Ok(rd) = std::fs::read_dir(d) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p, out);
                    } else {
                        out.push(p);
                    }
                }
            }
        }
        let mut v = Vec::new();
        walk(&self.quarantine_dir(), &mut v);
        v.sort();
        v
    }

    pub fn call_msg(&self, n: usize) -> Vec<u8> {
        std::fs::read(self.dir.path().join(format!("call{n}.msg")))
            .unwrap_or_else(|e| panic!("sendmail call {n} has no message: {e}"))
    }
}

pub fn feed_and_wait(mut child: Child, input: &[u8]) -> Output {
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = wait_output(child, Duration::from_secs(120));
    let _ = writer.join();
    out
}

/// Waits for the child with a time limit (a hung test fails instead of hanging CI).
pub fn wait_output(mut child: Child, limit: Duration) -> Output {
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let ro = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let re = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            panic!("pipescan did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout_bytes = ro.join().unwrap();
    let stderr = String::from_utf8_lossy(&re.join().unwrap()).into_owned();
    Output {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
        stdout_bytes,
        stderr,
    }
}

pub fn run_bin(args: &[&str], input: &[u8], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    feed_and_wait(c.spawn().unwrap(), input)
}

pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid} failed");
}

/// CRC-32 (IEEE), for building zip files in tests.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zip archive holding one file, stored (not compressed): what a mail attachment may carry.
pub fn stored_zip(name: &str, data: &[u8]) -> Vec<u8> {
    let crc = crc32(data);
    let (n, len) = (name.len() as u16, data.len() as u32);
    let mut z = Vec::new();
    // Local file header.
    z.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    for v in [20u16, 0, 0, 0, 0] {
        z.extend_from_slice(&v.to_le_bytes()); // version, flags, method (stored), time, date
    }
    z.extend_from_slice(&crc.to_le_bytes());
    z.extend_from_slice(&len.to_le_bytes());
    z.extend_from_slice(&len.to_le_bytes());
    z.extend_from_slice(&n.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z.extend_from_slice(name.as_bytes());
    z.extend_from_slice(data);
    let central = z.len() as u32;
    // Central directory entry.
    z.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    for v in [20u16, 20, 0, 0, 0, 0] {
        z.extend_from_slice(&v.to_le_bytes()); // made by, needed, flags, method, time, date
    }
    z.extend_from_slice(&crc.to_le_bytes());
    z.extend_from_slice(&len.to_le_bytes());
    z.extend_from_slice(&len.to_le_bytes());
    z.extend_from_slice(&n.to_le_bytes());
    for v in [0u16, 0, 0, 0] {
        z.extend_from_slice(&v.to_le_bytes()); // extra, comment, disk, internal attrs
    }
    z.extend_from_slice(&0u32.to_le_bytes()); // external attrs
    z.extend_from_slice(&0u32.to_le_bytes()); // offset of the local header
    z.extend_from_slice(name.as_bytes());
    let central_len = z.len() as u32 - central;
    // End of central directory.
    z.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    for v in [0u16, 0, 1, 1] {
        z.extend_from_slice(&v.to_le_bytes());
    }
    z.extend_from_slice(&central_len.to_le_bytes());
    z.extend_from_slice(&central.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z
}
