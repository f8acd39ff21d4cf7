//! Shared helpers for the integration tests: run the built binary with a config and a recording
//! fake sendmail (t/bin/fake-sendmail), and read back what it was given.
#![allow(dead_code)]

pub mod table;

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

    /// The working directory every run of this filter gets: an empty directory of the test's
    /// own, so that a relative path can never write into the repository (a relative quarantine
    /// directory once committed `%Q/banned-lq-…` at its root).
    pub fn cwd(&self) -> PathBuf {
        let d = self.dir.path().join("cwd");
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.current_dir(self.cwd());
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
        table::files_under(&self.quarantine_dir())
    }

    pub fn call_msg(&self, n: usize) -> Vec<u8> {
        std::fs::read(self.dir.path().join(format!("call{n}.msg")))
            .unwrap_or_else(|e| panic!("sendmail call {n} has no message: {e}"))
    }
}

/// The block pipescan put in front of `rest` in a delivered copy; `rest` must follow it
/// byte for byte.
pub fn added_block<'a>(msg: &'a [u8], rest: &[u8]) -> Result<&'a [u8], String> {
    if msg.len() < rest.len() || msg[msg.len() - rest.len()..] != *rest {
        return Err(format!(
            "the delivered copy is not our fields + the input ({} bytes delivered, {} expected after our fields); it starts {:?}",
            msg.len(),
            rest.len(),
            String::from_utf8_lossy(&msg[..msg.len().min(400)])
        ));
    }
    Ok(&msg[..msg.len() - rest.len()])
}

/// The fields of an added block, each continuation line unfolded into its field with one space.
pub fn unfold_fields(block: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for line in block.split_inclusive('\n') {
        let line = line.trim_end_matches('\n').trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            match out.last_mut() {
                Some(last) => {
                    last.push(' ');
                    last.push_str(line.trim());
                }
                None => return Err(format!("added block starts with a continuation: {block:?}")),
            }
        } else {
            out.push(line.to_string());
        }
    }
    Ok(out)
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
    // In an empty working directory of its own (see Filter::cwd).
    let cwd = tempfile::tempdir().unwrap();
    let mut c = Command::new(bin());
    c.current_dir(cwd.path());
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

// ---------------------------------------------------------------------------------------------
// Fault injection (t/faults.rs, t/badinput.rs): the real spamd/clamd addresses, a different
// reinjection command, misbehaving servers, small file systems, processes left behind.

/// The real spamd started by scripts/mailstack (host:port); fails with instructions if unset.
pub fn real_spamd() -> String {
    std::env::var("PIPESCAN_SPAMD").unwrap_or_else(|_| {
        panic!("PIPESCAN_SPAMD is not set: run scripts/test, or scripts/mailstack up DIR and `set -a; eval \"$(scripts/mailstack env DIR)\"`")
    })
}

/// The real clamd started by scripts/mailstack (a socket path); fails with instructions if unset.
pub fn real_clamd() -> String {
    std::env::var("PIPESCAN_CLAMD").unwrap_or_else(|_| {
        panic!("PIPESCAN_CLAMD is not set: run scripts/test, or scripts/mailstack up DIR and `set -a; eval \"$(scripts/mailstack env DIR)\"`")
    })
}

/// The 68-byte EICAR test file, built from hex so this source is not itself a test virus.
pub fn eicar() -> Vec<u8> {
    let hex = "58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d5354414e444152442d414e544956495255532d544553542d46494c452124482b482a";
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Base64 in 76-character lines, as MUAs write attachments.
pub fn base64_lines(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len() * 4 / 3 + data.len() / 57 + 4);
    for (i, c) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            s.push('\n');
        }
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            s.push(if k <= c.len() {
                T[((n >> (18 - 6 * k)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    s
}

impl Filter {
    /// Replaces this filter's `[reinject] command` (the fake sendmail) with `argv`.
    pub fn set_reinject_command(&self, argv: &[&str]) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let old = format!("[reinject]\ncommand = [\"{}\", \"-i\"]\n", fake_sendmail());
        assert!(text.contains(&old), "no base [reinject] command in {text}");
        let list = argv
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let new = format!("[reinject]\ncommand = [{list}]\n");
        std::fs::write(&self.config, text.replacen(&old, &new, 1)).unwrap();
    }

    /// Puts a shell wrapper in front of the fake sendmail: it appends its pid (the pid pipescan
    /// started) to `sendmail.pids`, runs `script` (which may set FAKE_SENDMAIL_EXIT, e.g. per
    /// call: `$n` is the number of calls recorded before this one), then execs the fake sendmail.
    pub fn wrap_sendmail(&self, script: &str) {
        let wrapper = self.dir.path().join("sendmail-wrapper.sh");
        std::fs::write(
            &wrapper,
            format!(
                "echo $$ >> \"$FAKE_SENDMAIL_DIR/sendmail.pids\"\nn=0\nwhile [ -e \"$FAKE_SENDMAIL_DIR/call$n.argv\" ]; do n=$((n + 1)); done\n{script}\nexec \"{}\" \"$@\"\n",
                fake_sendmail()
            ),
        )
        .unwrap();
        // Run through /bin/sh, not exec'd: a script written just now could be "text file busy".
        self.set_reinject_command(&["/bin/sh", wrapper.to_str().unwrap(), "-i"]);
    }

    /// The pids of the sendmail processes pipescan started (with [`Filter::wrap_sendmail`]).
    pub fn sendmail_pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.path().join("sendmail.pids"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Kills (by pid) what a hanging fake sendmail left behind: every process whose environment
    /// names this filter's recording directory. Returns how many there were.
    pub fn kill_leftovers(&self) -> usize {
        let marker = format!("FAKE_SENDMAIL_DIR={}", self.dir.path().display());
        let mut n = 0;
        for pid in processes_with_env(&marker) {
            if pid != std::process::id() {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
                n += 1;
            }
        }
        n
    }
}

/// Pids of the processes whose environment contains the entry `entry` ("NAME=value").
pub fn processes_with_env(entry: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(env) = std::fs::read(e.path().join("environ"))
            && env.split(|&b| b == 0).any(|v| v == entry.as_bytes())
            && process_alive(pid)
        {
            out.push(pid);
        }
    }
    out
}

/// True while `pid` exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// A TCP address on 127.0.0.1 where nothing listens.
pub fn refused_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap().to_string();
    drop(l);
    a
}

/// How a fault server misbehaves once it has the whole request (spamd's header and body, or
/// clamd's zINSTREAM chunks up to the empty one).
#[derive(Clone, Copy, Debug)]
pub enum Misbehave {
    /// Never answers; holds the connection for 30 s.
    Hang,
    /// Answers these bytes and closes: garbage, an error reply, or a reply cut short.
    Reply(&'static [u8]),
    /// Answers one byte of this every 300 ms.
    Drip(&'static [u8]),
    /// Reads this many bytes of the request, then closes while the client is still sending.
    CloseAfter(usize),
    /// Accepts and never reads (the client's writes block once the socket buffers are full);
    /// holds the connection for 30 s.
    NeverRead,
}

/// A fake scanner on 127.0.0.1:0, for faults only; counts connections and whole requests.
pub struct FaultServer {
    /// "127.0.0.1:PORT".
    pub addr: String,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FaultServer {
    pub fn start(how: Misbehave) -> FaultServer {
        use std::sync::atomic::Ordering;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { return };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let hold = Duration::from_secs(30);
                    if let Misbehave::NeverRead = how {
                        seen.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(hold);
                        return;
                    }
                    c.set_read_timeout(Some(Duration::from_secs(5))).ok();
                    let mut req = Vec::new();
                    let mut buf = [0u8; 65536];
                    loop {
                        if let Misbehave::CloseAfter(n) = how
                            && req.len() >= n
                        {
                            seen.fetch_add(1, Ordering::SeqCst);
                            return; // dropped with unread data: the client sees a reset
                        }
                        match c.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(k) => req.extend_from_slice(&buf[..k]),
                        }
                        if request_complete(&req) {
                            break;
                        }
                    }
                    seen.fetch_add(1, Ordering::SeqCst);
                    match how {
                        Misbehave::Hang | Misbehave::NeverRead | Misbehave::CloseAfter(_) => {
                            std::thread::sleep(hold)
                        }
                        Misbehave::Reply(b) => {
                            let _ = c.write_all(b);
                        }
                        Misbehave::Drip(b) => {
                            for byte in b {
                                if c.write_all(&[*byte]).is_err() {
                                    break;
                                }
                                std::thread::sleep(Duration::from_millis(300));
                            }
                        }
                    }
                });
            }
        });
        FaultServer { addr, requests }
    }

    /// Requests received so far (for NeverRead and CloseAfter: connections).
    pub fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Is this a whole spamd request (header + Content-length bytes) or a whole clamd zINSTREAM
/// (chunks up to the empty one), or another NUL/newline-terminated clamd command?
fn request_complete(req: &[u8]) -> bool {
    if req.starts_with(b"zINSTREAM\0") || req.starts_with(b"nINSTREAM\n") {
        let mut at = 10;
        loop {
            let Some(len) = req.get(at..at + 4) else {
                return false;
            };
            let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            if n == 0 {
                return true;
            }
            at += 4 + n;
        }
    }
    if req.starts_with(b"z") {
        return req.contains(&0);
    }
    let Some(end) = req.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&req[..end]).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    req.len() >= end + 4 + len
}

/// A proxy on 127.0.0.1:0 in front of a real server ("host:port" or a socket path) that holds
/// back the server's answer for `delay`: a slow scanner that still answers.
pub fn slow_proxy(upstream: &str, delay: Duration) -> String {
    type Halves = (Box<dyn Read + Send>, Box<dyn Write + Send>);
    enum Up {
        Tcp(std::net::TcpStream),
        Unix(std::os::unix::net::UnixStream),
    }
    impl Up {
        fn connect(to: &str) -> std::io::Result<Up> {
            if to.starts_with('/') {
                std::os::unix::net::UnixStream::connect(to).map(Up::Unix)
            } else {
                std::net::TcpStream::connect(to).map(Up::Tcp)
            }
        }
        fn split(self) -> std::io::Result<(Halves, Up)> {
            Ok(match self {
                Up::Tcp(s) => (
                    (Box::new(s.try_clone()?), Box::new(s.try_clone()?)),
                    Up::Tcp(s),
                ),
                Up::Unix(s) => (
                    (Box::new(s.try_clone()?), Box::new(s.try_clone()?)),
                    Up::Unix(s),
                ),
            })
        }
        fn shutdown_write(&self) {
            let _ = match self {
                Up::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
                Up::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            };
        }
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let upstream = upstream.to_string();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(client) = conn else { return };
            let Ok(up) = Up::connect(&upstream) else {
                continue;
            };
            let Ok(((mut up_r, mut up_w), up)) = up.split() else {
                continue;
            };
            let mut client_r = client.try_clone().unwrap();
            let mut client_w = client;
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_r, &mut up_w);
                up.shutdown_write();
            });
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let mut first = true;
                while let Ok(n) = up_r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if first {
                        std::thread::sleep(delay);
                        first = false;
                    }
                    if client_w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = client_w.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    addr
}

/// A small tmpfs mounted on a fresh directory (we run as root), unmounted on drop.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `size` as mount(8) takes it ("64k"); `read_only` mounts it read-only.
    pub fn mount(size: &str, read_only: bool) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let opts = format!(
            "size={size},mode=0755{}",
            if read_only { ",ro" } else { "" }
        );
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run mount: {e}"));
        assert!(
            out.status.success(),
            "cannot mount a {size} tmpfs on {} (these tests run as root, as in CI): {}",
            dir.path().display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Busy (a process still holds a file there): detach it now, freed when released.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Does `text` match `pattern`, where '*' matches any run of characters?
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(at) => rest = &rest[at + p.len()..],
            None => return false,
        }
    }
    true
}
