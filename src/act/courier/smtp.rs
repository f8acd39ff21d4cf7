//! The SMTP courier: hands a copy of the message to an SMTP server (`[reinject] method =
//! "smtp:[127.0.0.1]:10025"`, e.g. Postfix's return smtpd with its filters off), the way
//! amavisd-new's `$forward_method` does.
//!
//! Contract: one transaction per copy over a connection bounded by one deadline
//! (`[reinject] timeout`, below the run's deadline; every read and write through
//! `scan::wire::Conn`). Greeting, EHLO `[general] hostname` (HELO only when EHLO is refused with
//! 5xx), MAIL FROM (null sender `<>`, `BODY=8BITMIME` when the message has 8-bit bytes,
//! `SMTPUTF8` when the envelope needs it), RCPT TO per recipient (MAIL and the RCPTs in one write
//! when PIPELINING is offered), DATA with CRLF line ends (a lone LF becomes CRLF, every other
//! byte exact) and dot-stuffing, the final `.`, QUIT. No TLS (loopback; STARTTLS for a remote
//! relay is not built yet).
//!
//! Delivered means exactly: the server said 2xx to the final `.`. The rules:
//! - servers are tried in order while the server, not the message, is the trouble (no
//!   connection, no 220, EHLO and HELO refused, a missing extension the message needs, a lost or
//!   garbled conversation) and only until a server answered 354 to DATA: a server that accepted
//!   DATA is never retried elsewhere;
//! - a reply to MAIL, RCPT, DATA or the final `.` is the answer: 4xx is 75, 5xx is a hard
//!   failure (`on_hard_failure`, 75 by default);
//! - any 4xx to a RCPT ends the transaction (RSET, QUIT) before DATA: nothing of this copy is
//!   delivered and the run retries it whole (75 while nothing else was delivered);
//! - 5xx to some RCPTs while others are accepted: the accepted ones get the message, the
//!   refused ones are returned as [`Refusal`]s for the run to log and count; 5xx to every RCPT
//!   is a hard failure;
//! - the connection lost (or the deadline reached) after the final `.` was sent and before its
//!   reply: 75. The server may have the message, so the retry may deliver it twice; the
//!   alternative (0) may lose it. Postfix's smtp client and amavisd-new choose the same:
//!   duplicates are preferred to loss (RFC 1047).
//!
//! The message is read whole into memory before the connection is opened: whether it has 8-bit
//! bytes must be known for MAIL FROM, and the feed can be read only once.

use crate::act::courier::traits::{Courier, Feed, Refusal};
use crate::config::delivery::HardFailure;
use crate::outcome::Failure;
use crate::scan::wire::{self, Conn, ServerAddr};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// The SMTP courier: servers in failover order (`host:port`), our EHLO name, the time one
/// delivery may take, and what a hard refusal becomes.
#[derive(Debug, Clone)]
pub struct Smtp {
    servers: Vec<String>,
    helo: String,
    timeout: Duration,
    on_hard_failure: HardFailure,
}

/// The longest a connect may take within the timeout (then the next server is tried).
const CONNECT: Duration = Duration::from_secs(30);
/// The longest reply line we read, and the most lines of one reply.
const LINE_MAX: usize = 4096;
const LINES_MAX: usize = 200;

impl Smtp {
    pub fn new(
        servers: &[String],
        helo: &str,
        timeout: Duration,
        on_hard_failure: HardFailure,
    ) -> Smtp {
        Smtp {
            servers: servers.to_vec(),
            helo: helo.to_string(),
            timeout,
            on_hard_failure,
        }
    }

    /// One copy: every server in turn until one gives an answer about the message.
    fn transfer(
        &self,
        sender: &str,
        recipients: &[String],
        feed: Feed,
        commits: bool,
    ) -> Result<Vec<Refusal>, Failure> {
        if let Some(reason) = crate::process::stop_requested() {
            return Err(Failure::tempfail("4.3.0", reason));
        }
        let mut message = Vec::new();
        feed(&mut message).map_err(|e| {
            Failure::tempfail("4.3.0", format!("cannot read the message to send it: {e}"))
        })?;
        let job = Job {
            sender,
            recipients,
            message: &message,
            eight_bit: message.iter().any(|&b| b >= 0x80),
            utf8: !sender.is_ascii() || recipients.iter().any(|r| !r.is_ascii()),
            helo: &self.helo,
            on_hard_failure: self.on_hard_failure,
            commits,
        };
        let deadline = Instant::now() + self.timeout;
        let mut errors = Vec::new();
        for name in &self.servers {
            let addr = match name.parse::<ServerAddr>() {
                Ok(a) => a,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            match session(&addr, &job, deadline) {
                Ok(refused) => {
                    if !errors.is_empty() {
                        crate::log::warn(&format!(
                            "{}; failed over to SMTP server {name}",
                            errors.join("; ")
                        ));
                    }
                    return Ok(refused);
                }
                Err(Trouble::Next(why)) => errors.push(format!("SMTP server {name}: {why}")),
                Err(Trouble::Final(mut f)) => {
                    f.reason = format!("SMTP server {name}: {}", f.reason);
                    return Err(f);
                }
            }
        }
        if errors.is_empty() {
            errors.push("no SMTP server configured".into());
        }
        Err(Failure::tempfail("4.4.1", errors.join("; ")))
    }
}

impl Courier for Smtp {
    fn deliver(
        &self,
        sender: &str,
        recipients: &[String],
        message: Feed,
    ) -> Result<Vec<Refusal>, Failure> {
        crate::timings::time("reinject", || {
            self.transfer(sender, recipients, message, true)
        })
    }

    fn send(&self, sender: &str, recipients: &[String], message: Feed) -> Result<(), Failure> {
        let refused =
            crate::timings::time("send", || self.transfer(sender, recipients, message, false))?;
        for r in refused {
            crate::log::warn(&format!(
                "SMTP server refused <{}>: {} (NOT sent to it)",
                r.recipient, r.reply
            ));
        }
        Ok(())
    }

    fn describe(&self, sender: &str, recipients: &[String]) -> String {
        let rcpts: Vec<String> = recipients.iter().map(|r| format!("<{r}>")).collect();
        format!(
            "reinject smtp {} (in this order), EHLO {}, MAIL FROM:<{sender}> RCPT TO:{}",
            self.servers.join(", "),
            self.helo,
            rcpts.join(",")
        )
    }
}

/// What one copy needs from a server.
struct Job<'a> {
    sender: &'a str,
    recipients: &'a [String],
    message: &'a [u8],
    eight_bit: bool,
    utf8: bool,
    helo: &'a str,
    on_hard_failure: HardFailure,
    /// A 2xx to the final dot delivers the message (the point of no return, for the stop path).
    commits: bool,
}

/// Why a session ended without delivering.
#[derive(Debug)]
enum Trouble {
    /// The server failed before it accepted DATA: the next one may be tried.
    Next(String),
    /// The answer for this copy (or trouble after DATA was accepted): no other server.
    Final(Failure),
}

/// A reply: its code and its text (the lines joined with " / ").
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reply {
    code: u16,
    text: String,
}

impl Reply {
    fn class(&self) -> u16 {
        self.code / 100
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// One connection: the socket and what was read of it but not used yet.
struct Session {
    conn: Conn,
    buf: Vec<u8>,
}

impl Session {
    fn send(&mut self, line: &str) -> io::Result<()> {
        self.conn.write_all(line.as_bytes())
    }

    /// Reads one reply, all its lines. Anything that is not "NNN[ -]text" CRLF, or lines that
    /// change the code, is garbage.
    fn reply(&mut self) -> io::Result<Reply> {
        let mut text = Vec::new();
        let mut code = None;
        for _ in 0..LINES_MAX {
            let line = self.line()?;
            let garbage = || {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("garbage reply {:?}", String::from_utf8_lossy(&line)),
                )
            };
            let digits = line.get(..3).ok_or_else(garbage)?;
            let sep = line.get(3).copied();
            if !digits.iter().all(u8::is_ascii_digit)
                || !(b'2'..=b'5').contains(&digits[0])
                || !matches!(sep, None | Some(b' ' | b'-'))
            {
                return Err(garbage());
            }
            let n = u16::from(digits[0] - b'0') * 100
                + u16::from(digits[1] - b'0') * 10
                + u16::from(digits[2] - b'0');
            if *code.get_or_insert(n) != n {
                return Err(garbage());
            }
            text.push(String::from_utf8_lossy(line.get(4..).unwrap_or_default()).into_owned());
            if sep != Some(b'-') {
                return Ok(Reply {
                    code: n,
                    text: text.join(" / "),
                });
            }
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a reply of more than {LINES_MAX} lines"),
        ))
    }

    /// One line without its CRLF (or LF).
    fn line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buf.len() > LINE_MAX {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a reply line longer than {LINE_MAX} bytes"),
                ));
            }
            let mut chunk = [0u8; 4096];
            match self.conn.read(&mut chunk)? {
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed by the server",
                    ));
                }
                n => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Ends politely, whatever the server does (bounded by the deadline).
    fn quit(&mut self) {
        if self.send("QUIT\r\n").is_ok() {
            let _ = self.reply();
        }
    }
}

/// The extensions of the server that matter to us.
#[derive(Debug, Default, Clone, Copy)]
struct Extensions {
    pipelining: bool,
    eight_bit_mime: bool,
    smtputf8: bool,
}

/// An I/O error before DATA was accepted: the next server may do better.
fn lost(step: &str) -> impl Fn(io::Error) -> Trouble + '_ {
    move |e| Trouble::Next(format!("{} {step}", wire::describe(&e)))
}

/// The whole conversation with one server.
fn session(addr: &ServerAddr, job: &Job, deadline: Instant) -> Result<Vec<Refusal>, Trouble> {
    let conn = wire::connect(addr, CONNECT, deadline)
        .map_err(|e| Trouble::Next(format!("cannot connect: {}", wire::describe(&e))))?;
    let mut s = Session {
        conn,
        buf: Vec::new(),
    };
    let ext = hello(&mut s, job.helo)?;
    let missing = if job.eight_bit && !ext.eight_bit_mime {
        Some("8BITMIME (the message has 8-bit bytes)")
    } else if job.utf8 && !ext.smtputf8 {
        Some("SMTPUTF8 (the envelope has non-ASCII addresses)")
    } else {
        None
    };
    if let Some(what) = missing {
        s.quit();
        return Err(Trouble::Next(format!("does not offer {what}")));
    }
    let refused = envelope(&mut s, &ext, job)?;
    s.send("DATA\r\n").map_err(lost("while sending DATA"))?;
    let r = s
        .reply()
        .map_err(lost("while waiting for the reply to DATA"))?;
    if r.code != 354 {
        s.quit();
        return Err(verdict(&r, "DATA", job.on_hard_failure));
    }
    // From here on, no other server: this one may already hold part of the message.
    let after_data = |e: io::Error| {
        Trouble::Final(Failure::tempfail(
            "4.4.2",
            format!(
                "{} while sending the message: not delivered (an unfinished transaction is discarded)",
                wire::describe(&e)
            ),
        ))
    };
    write_data(&mut s.conn, job.message).map_err(after_data)?;
    match s.reply() {
        Ok(r) if r.class() == 2 => {
            // Delivered: from now on a stop (signal, deadline) must exit 0, even while the
            // server takes its time over QUIT.
            if job.commits {
                crate::process::delivered();
            }
            s.quit();
            Ok(refused)
        }
        Ok(r) => {
            s.quit();
            Err(verdict(&r, "the end of the message", job.on_hard_failure))
        }
        // See the module contract: the server may have it; a retry may duplicate it.
        Err(e) => Err(Trouble::Final(Failure::tempfail(
            "4.4.2",
            format!(
                "{} after the end of the message was sent, before the reply: it may have been delivered; the MTA retries (a duplicate is preferred to a loss)",
                wire::describe(&e)
            ),
        ))),
    }
}

/// The greeting and EHLO (HELO when EHLO is refused with 5xx): the server's extensions.
fn hello(s: &mut Session, helo: &str) -> Result<Extensions, Trouble> {
    let greeting = s.reply().map_err(lost("while waiting for the greeting"))?;
    if greeting.code != 220 {
        s.quit();
        return Err(Trouble::Next(format!("greeting: {greeting}")));
    }
    s.send(&format!("EHLO {helo}\r\n"))
        .map_err(lost("while sending EHLO"))?;
    let r = s
        .reply()
        .map_err(lost("while waiting for the reply to EHLO"))?;
    if r.class() == 2 {
        let mut ext = Extensions::default();
        // The first line is the server's name; each further line one keyword.
        for kw in r.text.split(" / ").skip(1) {
            let kw = kw
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            match kw.as_str() {
                "PIPELINING" => ext.pipelining = true,
                "8BITMIME" => ext.eight_bit_mime = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                _ => {}
            }
        }
        return Ok(ext);
    }
    if r.class() != 5 {
        s.quit();
        return Err(Trouble::Next(format!("EHLO: {r}")));
    }
    s.send(&format!("HELO {helo}\r\n"))
        .map_err(lost("while sending HELO"))?;
    let h = s
        .reply()
        .map_err(lost("while waiting for the reply to HELO"))?;
    if h.class() != 2 {
        s.quit();
        return Err(Trouble::Next(format!("EHLO: {r}; HELO: {h}")));
    }
    Ok(Extensions::default())
}

/// MAIL FROM and the RCPTs (in one write with PIPELINING). Returns the recipients refused
/// with 5xx when at least one was accepted; any 4xx, a refused MAIL or no recipient accepted
/// ends the transaction.
fn envelope(s: &mut Session, ext: &Extensions, job: &Job) -> Result<Vec<Refusal>, Trouble> {
    let mut mail = format!("MAIL FROM:<{}>", job.sender);
    if job.eight_bit {
        mail.push_str(" BODY=8BITMIME");
    }
    if job.utf8 {
        mail.push_str(" SMTPUTF8");
    }
    mail.push_str("\r\n");
    let rcpts: Vec<String> = job
        .recipients
        .iter()
        .map(|r| format!("RCPT TO:<{r}>\r\n"))
        .collect();
    let replies = if ext.pipelining {
        let all = std::iter::once(mail).chain(rcpts).collect::<String>();
        s.send(&all).map_err(lost("while sending MAIL and RCPT"))?;
        let mut replies = vec![
            s.reply()
                .map_err(lost("while waiting for the reply to MAIL"))?,
        ];
        // A refused MAIL is the answer, whatever happens to the RCPT replies after it.
        if replies[0].class() == 2 {
            for _ in job.recipients {
                replies.push(s.reply().map_err(lost("while reading the RCPT replies"))?);
            }
        }
        replies
    } else {
        s.send(&mail).map_err(lost("while sending MAIL"))?;
        let mut replies = vec![
            s.reply()
                .map_err(lost("while waiting for the reply to MAIL"))?,
        ];
        if replies[0].class() == 2 {
            for rcpt in &rcpts {
                s.send(rcpt).map_err(lost("while sending RCPT"))?;
                replies.push(s.reply().map_err(lost("while waiting for a RCPT reply"))?);
            }
        }
        replies
    };
    if replies[0].class() != 2 {
        s.quit();
        return Err(verdict(&replies[0], "MAIL FROM", job.on_hard_failure));
    }
    let mut refused = Vec::new();
    let mut deferred = Vec::new();
    for (r, reply) in job.recipients.iter().zip(&replies[1..]) {
        match reply.class() {
            2 => {}
            5 => refused.push(Refusal {
                recipient: r.clone(),
                reply: reply.to_string(),
            }),
            _ => deferred.push(format!("<{r}>: {reply}")),
        }
    }
    if !deferred.is_empty() {
        // Nothing of this copy may be delivered: the run retries it whole.
        if s.send("RSET\r\n").is_ok() {
            let _ = s.reply();
        }
        s.quit();
        return Err(Trouble::Final(Failure::tempfail(
            "4.3.0",
            format!("RCPT TO deferred, nothing sent: {}", deferred.join("; ")),
        )));
    }
    if refused.len() == job.recipients.len() {
        s.quit();
        let all: Vec<String> = refused
            .iter()
            .map(|r| format!("<{}>: {}", r.recipient, r.reply))
            .collect();
        return Err(Trouble::Final(hard(
            job.on_hard_failure,
            format!("refused every recipient: {}", all.join("; ")),
        )));
    }
    Ok(refused)
}

/// A reply refusing a step: 4xx is 75, 5xx a hard failure, anything else (a 2xx or 3xx where
/// it makes no sense) 75.
fn verdict(r: &Reply, step: &str, on_hard_failure: HardFailure) -> Trouble {
    let reason = format!("{step}: {r}");
    Trouble::Final(match r.class() {
        5 => hard(on_hard_failure, reason),
        _ => Failure::tempfail("4.3.0", reason),
    })
}

/// A hard refusal, as `[reinject] on_hard_failure` says (like sendmail's exit 69).
fn hard(on_hard_failure: HardFailure, reason: String) -> Failure {
    match on_hard_failure {
        HardFailure::Tempfail => Failure::tempfail("4.3.0", reason),
        HardFailure::Bounce => Failure::bounce("5.3.0", reason),
    }
}

/// Writes the message as DATA content: CRLF line ends, dot-stuffed, then the final ".".
fn write_data(conn: &mut dyn Write, message: &[u8]) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(64 << 10, conn);
    out.write_all(&dot_stuffed(message))?;
    out.flush()
}

/// The DATA content of `message`: each line (a lone LF or CRLF ends one; a final line without
/// one gets it) with CRLF, a line starting with "." gets another, then ".\r\n".
fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 32 + 8);
    let mut rest = message;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (
                rest[..i].strip_suffix(b"\r").unwrap_or(&rest[..i]),
                &rest[i + 1..],
            ),
            None => (rest, &rest[rest.len()..]),
        };
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
        rest = next;
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Exit;
    use std::net::TcpListener;
    use std::thread;

    /// What the fake server does at a step.
    #[derive(Clone, Copy)]
    enum Act {
        Say(&'static str),
        /// Sleeps past every timeout of these tests, then goes.
        Hang,
        Close,
    }
    use Act::{Close, Hang, Say};

    const EHLO: &str = "250-fake.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n";

    /// A fake SMTP server for one connection: `greeting`, then `answer(command line)` for each
    /// line, and after a 354 the content up to "\r\n.\r\n", answered by `answer(".")`. It
    /// returns every byte it received.
    fn fake(
        greeting: Act,
        answer: impl Fn(&str) -> Act + Send + 'static,
    ) -> (String, thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let handle = thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut got = Vec::new();
            let act = |s: &mut std::net::TcpStream, a: Act| match a {
                Say(text) => s.write_all(text.as_bytes()).is_ok(),
                Hang => {
                    thread::sleep(Duration::from_secs(4));
                    false
                }
                Close => false,
            };
            if !act(&mut s, greeting) {
                return got;
            }
            let mut pos = 0; // where the next command starts in `got`
            let mut in_data = false;
            let mut buf = [0u8; 65536];
            loop {
                let n = match s.read(&mut buf) {
                    Ok(0) | Err(_) => return got,
                    Ok(n) => n,
                };
                got.extend_from_slice(&buf[..n]);
                loop {
                    let rest = &got[pos..];
                    let (end, what) = if in_data {
                        let end = if rest.starts_with(b".\r\n") {
                            Some(3)
                        } else {
                            rest.windows(5)
                                .position(|w| w == b"\r\n.\r\n")
                                .map(|i| i + 5)
                        };
                        (end, ".".to_string())
                    } else {
                        let end = rest.windows(2).position(|w| w == b"\r\n").map(|i| i + 2);
                        let line =
                            end.map(|e| String::from_utf8_lossy(&rest[..e - 2]).into_owned());
                        (end, line.unwrap_or_default())
                    };
                    let Some(end) = end else { break };
                    pos += end;
                    let a = answer(&what);
                    in_data = matches!(a, Say(t) if t.starts_with("354"));
                    if !act(&mut s, a) {
                        return got;
                    }
                    if what == "QUIT" {
                        return got;
                    }
                }
            }
        });
        (addr, handle)
    }

    /// A server that answers like Postfix's smtpd, with `ehlo` and `rcpt` (per address).
    fn postfix_like(
        ehlo: &'static str,
        rcpt: fn(&str) -> Act,
        data: Act,
        end: Act,
    ) -> impl Fn(&str) -> Act + Send + 'static {
        move |line: &str| match line {
            l if l.starts_with("EHLO") => Say(ehlo),
            l if l.starts_with("MAIL") => Say("250 2.1.0 Ok\r\n"),
            l if l.starts_with("RCPT") => rcpt(l),
            "DATA" => data,
            "." => end,
            "RSET" => Say("250 2.0.0 Ok\r\n"),
            "QUIT" => Say("221 2.0.0 Bye\r\n"),
            _ => Say("502 5.5.2 Error: command not recognized\r\n"),
        }
    }

    fn ok_rcpt(_: &str) -> Act {
        Say("250 2.1.5 Ok\r\n")
    }

    fn good() -> impl Fn(&str) -> Act + Send + 'static {
        postfix_like(
            EHLO,
            ok_rcpt,
            Say("354 End data with <CR><LF>.<CR><LF>\r\n"),
            Say("250 2.0.0 Ok: queued as ABC123\r\n"),
        )
    }

    fn courier(servers: &[&str], hard: HardFailure) -> Smtp {
        let servers: Vec<String> = servers.iter().map(|s| s.to_string()).collect();
        Smtp::new(&servers, "mx.example", Duration::from_secs(1), hard)
    }

    fn deliver(
        c: &Smtp,
        sender: &str,
        rcpts: &[&str],
        msg: &[u8],
    ) -> Result<Vec<Refusal>, Failure> {
        let rcpts: Vec<String> = rcpts.iter().map(|s| s.to_string()).collect();
        c.deliver(sender, &rcpts, &mut |w| {
            w.write_all(msg)?;
            Ok(msg.len() as u64)
        })
    }

    const MSG: &[u8] = b"Subject: t\n\nbody\n.hidden dot\r\n..two\nlone\rCR\nend";

    /// A port where nobody listens (bound, then closed).
    fn closed_port() -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    }

    /// A listener that must not be contacted: check with [`untouched`].
    fn spare() -> (String, TcpListener) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        (l.local_addr().unwrap().to_string(), l)
    }

    fn untouched(l: &TcpListener) -> bool {
        matches!(l.accept(), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn dot_stuffing_and_crlf_keep_every_other_byte() {
        assert_eq!(dot_stuffed(b""), b".\r\n");
        assert_eq!(dot_stuffed(b"a\n"), b"a\r\n.\r\n");
        assert_eq!(
            dot_stuffed(b".\n..x\r\n\r\nx\r\r\ny\rz\n\xff\xfe.\n."),
            b"..\r\n...x\r\n\r\nx\r\r\ny\rz\r\n\xff\xfe.\r\n..\r\n.\r\n"
        );
        assert_eq!(dot_stuffed(b"no end\r"), b"no end\r\r\n.\r\n");
    }

    #[test]
    fn a_clean_delivery_pipelines_and_sends_the_exact_bytes() {
        let (addr, server) = fake(Say("220 fake ESMTP\r\n"), good());
        let c = courier(&[&addr], HardFailure::Tempfail);
        let r = deliver(&c, "", &["a@example.org", "-b@example.org"], MSG);
        assert_eq!(r, Ok(vec![]));
        let got = server.join().unwrap();
        assert_eq!(
            text(&got),
            "EHLO mx.example\r\n\
             MAIL FROM:<>\r\nRCPT TO:<a@example.org>\r\nRCPT TO:<-b@example.org>\r\n\
             DATA\r\n\
             Subject: t\r\n\r\nbody\r\n..hidden dot\r\n...two\r\nlone\rCR\r\nend\r\n.\r\n\
             QUIT\r\n"
        );
    }

    #[test]
    fn eight_bit_and_utf8_get_their_parameters() {
        let (addr, server) = fake(Say("220 fake\r\n"), good());
        let c = courier(&[&addr], HardFailure::Tempfail);
        let msg = b"Subject: caf\xc3\xa9\r\n\r\n\xe9t\xe9\r\n";
        assert_eq!(
            deliver(&c, "s@example.org", &["r\u{e9}@example.org"], msg),
            Ok(vec![])
        );
        let got = server.join().unwrap();
        let want = [
            b"EHLO mx.example\r\nMAIL FROM:<s@example.org> BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<r\xc3\xa9@example.org>\r\nDATA\r\n".as_slice(),
            msg,
            b".\r\nQUIT\r\n",
        ]
        .concat();
        assert_eq!(text(&got), text(&want));
    }

    #[test]
    fn a_server_without_8bitmime_is_not_given_an_8bit_message() {
        let ehlo = "250-old.example\r\n250 PIPELINING\r\n";
        let (addr, server) = fake(
            Say("220 old\r\n"),
            postfix_like(ehlo, ok_rcpt, Say("354 go\r\n"), Say("250 ok\r\n")),
        );
        let c = courier(&[&addr], HardFailure::Bounce);
        let f = deliver(&c, "s@example.org", &["r@example.org"], b"x: \xff\n\nb\n").unwrap_err();
        assert_eq!((f.exit, f.status), (Exit::TempFail, "4.4.1"));
        assert!(f.reason.contains("does not offer 8BITMIME"), "{}", f.reason);
        assert_eq!(text(&server.join().unwrap()), "EHLO mx.example\r\nQUIT\r\n");
    }

    #[test]
    fn ehlo_refused_with_5xx_falls_back_to_helo_without_pipelining() {
        let (addr, server) = fake(Say("220 fake\r\n"), |l: &str| match l {
            l if l.starts_with("EHLO") => Say("502 5.5.1 no EHLO here\r\n"),
            l if l.starts_with("HELO") => Say("250 old.example\r\n"),
            "DATA" => Say("354 go\r\n"),
            "QUIT" => Say("221 bye\r\n"),
            _ => Say("250 ok\r\n"),
        });
        let c = courier(&[&addr], HardFailure::Tempfail);
        assert_eq!(
            deliver(&c, "s@x", &["a@x", "b@x"], b"s: 1\n\nb\n"),
            Ok(vec![])
        );
        assert_eq!(
            text(&server.join().unwrap()),
            "EHLO mx.example\r\nHELO mx.example\r\nMAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\ns: 1\r\n\r\nb\r\n.\r\nQUIT\r\n"
        );
    }

    #[test]
    fn a_refused_connect_or_a_bad_greeting_fails_over_to_the_next_server() {
        let dead = closed_port();
        let (busy, busy_server) = fake(Say("421 4.3.2 busy\r\n"), good());
        let (no, no_server) = fake(Say("554 5.3.2 go away\r\n"), good());
        let (addr, server) = fake(Say("220 fake\r\n"), good());
        let c = courier(&[&dead, &busy, &no, &addr], HardFailure::Tempfail);
        assert_eq!(deliver(&c, "", &["a@x"], b"m\n"), Ok(vec![]));
        assert!(text(&server.join().unwrap()).contains("\r\nm\r\n.\r\n"));
        assert_eq!(text(&busy_server.join().unwrap()), "QUIT\r\n");
        assert_eq!(text(&no_server.join().unwrap()), "QUIT\r\n");
        // Every one down: 75, every reason named.
        let (no, _s) = fake(Say("554 5.3.2 go away\r\n"), good());
        let f = deliver(
            &courier(&[&dead, &no], HardFailure::Bounce),
            "",
            &["a@x"],
            b"m\n",
        )
        .unwrap_err();
        assert_eq!(f.exit, Exit::TempFail);
        assert!(
            f.reason
                .contains(&format!("SMTP server {dead}: cannot connect")),
            "{}",
            f.reason
        );
        assert!(
            f.reason.contains("greeting: 554 5.3.2 go away"),
            "{}",
            f.reason
        );
    }

    #[test]
    fn a_refused_mail_from_is_the_answer_no_other_server_is_tried() {
        let (spare_addr, spare) = spare();
        for (reply, exit) in [
            ("451 4.3.0 try later\r\n", Exit::TempFail),
            ("553 5.1.8 bad sender\r\n", Exit::Unavailable),
        ] {
            let (addr, server) = fake(Say("220 fake\r\n"), move |l: &str| match l {
                l if l.starts_with("EHLO") => Say(EHLO),
                l if l.starts_with("MAIL") => Say(reply),
                l if l.starts_with("RCPT") => Say("503 5.5.1 need MAIL\r\n"),
                _ => Say("221 bye\r\n"),
            });
            let c = courier(&[&addr, &spare_addr], HardFailure::Bounce);
            let f = deliver(&c, "s@x", &["a@x"], b"m\n").unwrap_err();
            assert_eq!(f.exit, exit, "{}", f.reason);
            assert!(
                f.reason
                    .contains(&format!("MAIL FROM: {}", reply.trim_end())),
                "{}",
                f.reason
            );
            let got = text(&server.join().unwrap());
            assert!(!got.contains("DATA"), "{got}");
        }
        assert!(untouched(&spare));
    }

    #[test]
    fn a_refused_mail_from_then_a_close_is_still_the_answer() {
        let (spare_addr, spare) = spare();
        let (addr, _server) = fake(Say("220 fake\r\n"), |l: &str| match l {
            l if l.starts_with("EHLO") => Say(EHLO),
            l if l.starts_with("MAIL") => Say("554 5.7.1 no\r\n"),
            _ => Close,
        });
        let c = courier(&[&addr, &spare_addr], HardFailure::Bounce);
        let f = deliver(&c, "s@x", &["a@x", "b@x"], b"m\n").unwrap_err();
        assert_eq!(f.exit, Exit::Unavailable, "{}", f.reason);
        assert!(untouched(&spare));
    }

    #[test]
    fn one_refused_recipient_among_two_gets_nothing_the_other_gets_the_message() {
        let (addr, server) = fake(
            Say("220 fake\r\n"),
            postfix_like(
                EHLO,
                |l| {
                    if l.contains("bad@") {
                        Say("550 5.1.1 <bad@x>: Recipient address rejected: User unknown\r\n")
                    } else {
                        Say("250 2.1.5 Ok\r\n")
                    }
                },
                Say("354 go\r\n"),
                Say("250 2.0.0 queued\r\n"),
            ),
        );
        let c = courier(&[&addr], HardFailure::Tempfail);
        let refused = deliver(&c, "s@x", &["good@x", "bad@x"], b"m\n").unwrap();
        assert_eq!(
            refused,
            [Refusal {
                recipient: "bad@x".into(),
                reply: "550 5.1.1 <bad@x>: Recipient address rejected: User unknown".into()
            }]
        );
        assert!(text(&server.join().unwrap()).ends_with("DATA\r\nm\r\n.\r\nQUIT\r\n"));
    }

    #[test]
    fn every_recipient_refused_is_a_hard_failure_and_sends_no_data() {
        for (hard, exit) in [
            (HardFailure::Tempfail, Exit::TempFail),
            (HardFailure::Bounce, Exit::Unavailable),
        ] {
            let (addr, server) = fake(
                Say("220 fake\r\n"),
                postfix_like(
                    EHLO,
                    |_| Say("550 5.1.1 unknown\r\n"),
                    Say("354 go\r\n"),
                    Say("250 ok\r\n"),
                ),
            );
            let f = deliver(&courier(&[&addr], hard), "s@x", &["a@x", "b@x"], b"m\n").unwrap_err();
            assert_eq!(f.exit, exit);
            assert!(
                f.reason.contains(
                    "refused every recipient: <a@x>: 550 5.1.1 unknown; <b@x>: 550 5.1.1 unknown"
                ),
                "{}",
                f.reason
            );
            assert!(!text(&server.join().unwrap()).contains("DATA"));
        }
    }

    #[test]
    fn a_deferred_recipient_resets_the_transaction_nothing_is_delivered() {
        let (spare_addr, spare) = spare();
        let (addr, server) = fake(
            Say("220 fake\r\n"),
            postfix_like(
                EHLO,
                |l| {
                    if l.contains("later@") {
                        Say("450 4.2.0 <later@x>: greylisted\r\n")
                    } else {
                        Say("250 ok\r\n")
                    }
                },
                Say("354 go\r\n"),
                Say("250 ok\r\n"),
            ),
        );
        let c = courier(&[&addr, &spare_addr], HardFailure::Bounce);
        let f = deliver(&c, "s@x", &["now@x", "later@x"], b"m\n").unwrap_err();
        assert_eq!(f.exit, Exit::TempFail);
        assert!(f.reason.contains("<later@x>: 450 4.2.0"), "{}", f.reason);
        let got = text(&server.join().unwrap());
        assert!(
            got.ends_with("RCPT TO:<later@x>\r\nRSET\r\nQUIT\r\n"),
            "{got}"
        );
        assert!(untouched(&spare));
    }

    #[test]
    fn refusals_at_data_and_at_the_end_of_data_deliver_nothing() {
        let cases = [
            (
                Say("451 4.3.0 no DATA now\r\n"),
                Say("250 ok\r\n"),
                Exit::TempFail,
                "DATA: 451",
            ),
            (
                Say("554 5.5.1 no valid recipients\r\n"),
                Say("250 ok\r\n"),
                Exit::Unavailable,
                "DATA: 554",
            ),
            (
                Say("354 go\r\n"),
                Say("554 5.7.1 content rejected\r\n"),
                Exit::Unavailable,
                "end of the message: 554",
            ),
            (
                Say("354 go\r\n"),
                Say("452 4.3.1 no space\r\n"),
                Exit::TempFail,
                "end of the message: 452",
            ),
        ];
        for (data, end, exit, said) in cases {
            let (addr, server) = fake(Say("220 fake\r\n"), postfix_like(EHLO, ok_rcpt, data, end));
            let f = deliver(
                &courier(&[&addr], HardFailure::Bounce),
                "s@x",
                &["a@x"],
                b"m\n",
            )
            .unwrap_err();
            assert_eq!(f.exit, exit, "{}", f.reason);
            assert!(f.reason.contains(said), "{}", f.reason);
            let got = text(&server.join().unwrap());
            assert!(got.ends_with("QUIT\r\n"), "{got}");
        }
    }

    /// The server hangs at `step`: a failure at the 1 s timeout, never a delivery.
    fn hangs_at(step: &'static str) -> (Failure, Duration) {
        let greeting = if step == "greeting" {
            Hang
        } else {
            Say("220 fake\r\n")
        };
        let (addr, _server) = fake(greeting, move |l: &str| {
            let at = match l {
                l if l.starts_with("EHLO") => "EHLO",
                l if l.starts_with("MAIL") => "MAIL",
                l if l.starts_with("RCPT") => "RCPT",
                l => l,
            };
            if at == step {
                return Hang;
            }
            match at {
                "EHLO" => Say(EHLO),
                "DATA" => Say("354 go\r\n"),
                _ => Say("250 ok\r\n"),
            }
        });
        let t = Instant::now();
        let f = deliver(
            &courier(&[&addr], HardFailure::Bounce),
            "s@x",
            &["a@x"],
            b"m\n",
        )
        .unwrap_err();
        (f, t.elapsed())
    }

    #[test]
    fn a_server_hanging_at_any_step_is_left_at_the_timeout() {
        for step in ["greeting", "EHLO", "MAIL", "DATA", "."] {
            let (f, took) = hangs_at(step);
            assert_eq!(f.exit, Exit::TempFail, "{step}: {}", f.reason);
            assert!(f.reason.contains("timed out"), "{step}: {}", f.reason);
            assert!(took < Duration::from_secs(2), "{step}: took {took:?}");
            if step == "." {
                assert!(
                    f.reason.contains("it may have been delivered"),
                    "{}",
                    f.reason
                );
            }
        }
    }

    #[test]
    fn a_server_hanging_at_quit_after_accepting_the_message_delivered_it() {
        let (addr, _server) = fake(Say("220 fake\r\n"), |l: &str| match l {
            l if l.starts_with("EHLO") => Say(EHLO),
            "DATA" => Say("354 go\r\n"),
            "QUIT" => Hang,
            _ => Say("250 ok\r\n"),
        });
        let t = Instant::now();
        let r = deliver(
            &courier(&[&addr], HardFailure::Bounce),
            "s@x",
            &["a@x"],
            b"m\n",
        );
        assert_eq!(r, Ok(vec![]));
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    #[test]
    fn a_close_mid_data_is_not_a_delivery_and_no_other_server_gets_it() {
        let (spare_addr, spare) = spare();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut r = io::BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            s.write_all(b"220 fake\r\n").unwrap();
            for reply in [EHLO, "250 ok\r\n", "250 ok\r\n", "354 go\r\n"] {
                line.clear();
                io::BufRead::read_line(&mut r, &mut line).unwrap();
                s.write_all(reply.as_bytes()).unwrap();
            }
            let mut some = [0u8; 1000];
            let _ = r.read(&mut some);
            // Gone, without reading the rest (the reset reaches the client's writes).
        });
        let big = vec![b'x'; 8 << 20];
        let f = deliver(
            &courier(&[&addr, &spare_addr], HardFailure::Bounce),
            "s@x",
            &["a@x"],
            &big,
        )
        .unwrap_err();
        server.join().unwrap();
        assert_eq!((f.exit, f.status), (Exit::TempFail, "4.4.2"));
        assert!(
            f.reason
                .contains("while sending the message: not delivered"),
            "{}",
            f.reason
        );
        assert!(untouched(&spare));
    }

    #[test]
    fn a_lost_connection_after_the_final_dot_is_a_tempfail() {
        let (addr, server) = fake(
            Say("220 fake\r\n"),
            postfix_like(EHLO, ok_rcpt, Say("354 go\r\n"), Close),
        );
        let f = deliver(
            &courier(&[&addr], HardFailure::Bounce),
            "s@x",
            &["a@x"],
            b"m\n",
        )
        .unwrap_err();
        assert_eq!((f.exit, f.status), (Exit::TempFail, "4.4.2"));
        assert!(
            f.reason
                .contains("connection closed by the server after the end of the message was sent"),
            "{}",
            f.reason
        );
        assert!(text(&server.join().unwrap()).ends_with("m\r\n.\r\n"));
    }

    #[test]
    fn garbage_and_multiline_replies() {
        for bad in [
            "HTTP/1.1 400 Bad Request\r\n",
            "2\r\n",
            "220-a\r\n250 b\r\n",
            "999 what\r\n",
        ] {
            let (addr, _server) = fake(Say(bad), good());
            let f = deliver(
                &courier(&[&addr], HardFailure::Bounce),
                "s@x",
                &["a@x"],
                b"m\n",
            )
            .unwrap_err();
            assert_eq!(f.exit, Exit::TempFail);
            assert!(f.reason.contains("garbage reply"), "{bad:?}: {}", f.reason);
        }
        // Garbage after the final dot: may be delivered, so 75 with that said.
        let (addr, _server) = fake(
            Say("220-fake\r\n220-more\r\n220 ESMTP\r\n"),
            postfix_like(EHLO, ok_rcpt, Say("354 go\r\n"), Say("ok thanks\r\n")),
        );
        let f = deliver(
            &courier(&[&addr], HardFailure::Bounce),
            "s@x",
            &["a@x"],
            b"m\n",
        )
        .unwrap_err();
        assert!(
            f.reason
                .contains("garbage reply \"ok thanks\" after the end"),
            "{}",
            f.reason
        );
        // A long multi-line reply to the end of the data is one 250.
        let (addr, _server) = fake(
            Say("220 fake\r\n"),
            postfix_like(
                EHLO,
                ok_rcpt,
                Say("354 go\r\n"),
                Say("250-queued\r\n250-as\r\n250 X1\r\n"),
            ),
        );
        assert_eq!(
            deliver(
                &courier(&[&addr], HardFailure::Bounce),
                "s@x",
                &["a@x"],
                b"m\n"
            ),
            Ok(vec![])
        );
    }

    #[test]
    fn describe_names_the_servers_in_order() {
        let c = courier(&["127.0.0.1:10025", "[::1]:10025"], HardFailure::Tempfail);
        assert_eq!(
            c.describe("", &["a@x".into()]),
            "reinject smtp 127.0.0.1:10025, [::1]:10025 (in this order), EHLO mx.example, MAIL FROM:<> RCPT TO:<a@x>"
        );
    }
}
