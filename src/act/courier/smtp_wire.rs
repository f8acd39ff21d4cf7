//! The wire of SMTP and LMTP (RFC 5321, RFC 2033), shared by the [`super::smtp`] and
//! [`super::lmtp`] couriers: reply reading and parsing, the greeting and EHLO/LHLO, the
//! (pipelined) envelope, DATA up to its 354, the DATA writer with dot-stuffing and CRLF, and the
//! failover loop over the servers. What differs is after the final dot: SMTP has one reply,
//! LMTP one per accepted recipient; each courier file reads its own.
//!
//! Contract: every read and write through `scan::wire::Conn` under one deadline; an I/O error or
//! a bad reply before the server accepted DATA is [`Trouble::Next`] (the next server may be
//! tried), a reply about the message is [`Trouble::Final`].

use crate::act::courier::tls::{self, Link, Tls};
use crate::act::courier::traits::{Courier, Feed, Origin, Refusal};
use crate::config::delivery::HardFailure;
use crate::config::delivery::TlsLevel;
use crate::outcome::Failure;
use crate::scan::wire::{self, ServerAddr};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// The longest a connect may take within the timeout (then the next server is tried).
pub(crate) const CONNECT: Duration = Duration::from_secs(30);
/// The longest reply line we read, and the most lines of one reply.
const LINE_MAX: usize = 4096;
const LINES_MAX: usize = 200;

/// What one copy needs from a server.
pub(crate) struct Job<'a> {
    pub(crate) sender: &'a str,
    pub(crate) recipients: &'a [String],
    pub(crate) message: &'a [u8],
    pub(crate) eight_bit: bool,
    pub(crate) utf8: bool,
    pub(crate) helo: &'a str,
    /// Where the message came from, for XFORWARD.
    pub(crate) origin: Origin<'a>,
    /// STARTTLS or not, per server.
    pub(crate) tls: &'a Tls,
    pub(crate) on_hard_failure: HardFailure,
    /// A 2xx to the final dot delivers the message (the point of no return, for the stop path).
    pub(crate) commits: bool,
}

/// Why a session ended without delivering.
#[derive(Debug)]
pub(crate) enum Trouble {
    /// The server failed before it accepted DATA: the next one may be tried.
    Next(String),
    /// The answer for this copy (or trouble after DATA was accepted): no other server.
    Final(Failure),
}

/// A reply: its code and its text (the lines joined with " / ").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) code: u16,
    pub(crate) text: String,
}

impl Reply {
    pub(crate) fn class(&self) -> u16 {
        self.code / 100
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// One connection: the socket and what was read of it but not used yet.
pub(crate) struct Session {
    pub(crate) conn: Link,
    buf: Vec<u8>,
}

impl Session {
    pub(crate) fn send(&mut self, line: &str) -> io::Result<()> {
        self.conn.write_all(line.as_bytes())?;
        // TLS: a write only buffers when the socket refuses; the flush reports that.
        self.conn.flush()
    }

    /// Reads one reply, all its lines. Anything that is not "NNN[ -]text" CRLF, or lines that
    /// change the code, is garbage.
    pub(crate) fn reply(&mut self) -> io::Result<Reply> {
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
    pub(crate) fn quit(&mut self) {
        if self.send("QUIT\r\n").is_ok() {
            let _ = self.reply();
        }
        self.conn.close();
    }
}

/// The extensions of the server that matter to us.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Extensions {
    pipelining: bool,
    eight_bit_mime: bool,
    smtputf8: bool,
    starttls: bool,
    dsn: bool,
    xforward: Xforward,
}

/// The XFORWARD attributes a server lists after the keyword in its EHLO reply (Postfix's
/// XFORWARD_README: `250-XFORWARD NAME ADDR PROTO HELO`). Only these may be sent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Xforward {
    name: bool,
    addr: bool,
    proto: bool,
    helo: bool,
    ident: bool,
}

impl Xforward {
    #[cfg(test)]
    pub(crate) fn all() -> Xforward {
        Xforward {
            name: true,
            addr: true,
            proto: true,
            helo: true,
            ident: true,
        }
    }

    fn listed(words: &str) -> Xforward {
        let mut x = Xforward::default();
        for w in words.split_whitespace() {
            match w.to_ascii_uppercase().as_str() {
                "NAME" => x.name = true,
                "ADDR" => x.addr = true,
                "PROTO" => x.proto = true,
                "HELO" => x.helo = true,
                "IDENT" => x.ident = true,
                _ => {}
            }
        }
        x
    }
}

/// The XFORWARD commands that tell the next hop who the client was: like Postfix's own smtp
/// client, NAME and ADDR in one, PROTO, HELO and IDENT (the MTA's queue id, which Postfix logs
/// as `orig_queue_id=`) in another, each with only the attributes the server listed and we know (the server sets the others to [UNAVAILABLE] and logs them as
/// `unknown`). None when there is nothing to say: for mail we write ourselves and for local
/// submissions the next hop logs us, which is the truth.
///
/// A value the server would refuse (Postfix answers 501 to the whole command: a NAME that is
/// not a host name, a PROTO over 64 bytes, any value over 255 bytes once xtext-encoded) is left
/// out rather than lose the others with it. Every value is xtext (RFC 3461): `+`, `=`,
/// controls, space and 8-bit bytes as `+XX`, so nothing can end the command early.
pub(crate) fn xforward(offered: Xforward, origin: Origin) -> Vec<String> {
    let Some(client) = origin.client() else {
        return Vec::new();
    };
    let name = client.name.as_deref().filter(|n| host_name(n));
    // IPv4-mapped IPv6 is the IPv4 client; Postfix writes IPv6 with its IPV6: prefix.
    let addr = client.address.map(|a| match a.to_canonical() {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("IPV6:{v6}"),
    });
    let proto = client.protocol.as_deref().filter(|p| p.len() <= 64);
    let first = [
        ("NAME", offered.name, name.map(str::to_string)),
        ("ADDR", offered.addr, addr),
    ];
    let second = [
        ("PROTO", offered.proto, proto.map(str::to_string)),
        ("HELO", offered.helo, client.helo.clone()),
        (
            "IDENT",
            offered.ident,
            origin.queue_id().map(str::to_string),
        ),
    ];
    [&first[..], &second[..]]
        .iter()
        .filter_map(|attrs| {
            let parts: Vec<String> = attrs
                .iter()
                .filter(|(_, listed, _)| *listed)
                .filter_map(|(key, _, value)| value.as_deref().map(|v| (key, xtext(v))))
                .filter(|(_, v)| v.len() <= 255)
                .map(|(key, v)| format!(" {key}={v}"))
                .collect();
            (!parts.is_empty()).then(|| format!("XFORWARD{}\r\n", parts.concat()))
        })
        .collect()
}

/// xtext (RFC 3461 section 4): bytes outside `!`..`~`, `+` and `=` as `+XX`.
fn xtext(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// A host name Postfix's smtpd takes as an XFORWARD NAME (its valid_hostname): labels of
/// letters, digits, `-` and `_`, none empty or over 63, not all digits, at most 255 in all.
fn host_name(n: &str) -> bool {
    n.len() <= 255
        && !n.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit()))
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// An I/O error before DATA was accepted: the next server may do better.
pub(crate) fn lost(step: &str) -> impl Fn(io::Error) -> Trouble + '_ {
    move |e| Trouble::Next(format!("{} {step}", wire::describe(&e)))
}

/// The greeting and `verb` (EHLO, or LHLO for LMTP; HELO only when EHLO is refused with 5xx):
/// the server's extensions.
fn hello(s: &mut Session, verb: &str, helo: &str) -> Result<Extensions, Trouble> {
    let greeting = s.reply().map_err(lost("while waiting for the greeting"))?;
    if greeting.code != 220 {
        s.quit();
        return Err(Trouble::Next(format!("greeting: {greeting}")));
    }
    ehlo(s, verb, helo)
}

/// `verb` (EHLO or LHLO) and its reply: the server's extensions (again after STARTTLS).
fn ehlo(s: &mut Session, verb: &str, helo: &str) -> Result<Extensions, Trouble> {
    s.send(&format!("{verb} {helo}\r\n"))
        .map_err(lost(&format!("while sending {verb}")))?;
    let r = s
        .reply()
        .map_err(lost(&format!("while waiting for the reply to {verb}")))?;
    if r.class() == 2 {
        let mut ext = Extensions::default();
        // The first line is the server's name; each further line one keyword.
        for line in r.text.split(" / ").skip(1) {
            let (kw, params) = line.split_once(' ').unwrap_or((line, ""));
            match kw.to_ascii_uppercase().as_str() {
                "PIPELINING" => ext.pipelining = true,
                "8BITMIME" => ext.eight_bit_mime = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "STARTTLS" => ext.starttls = true,
                "DSN" => ext.dsn = true,
                "XFORWARD" => ext.xforward = Xforward::listed(params),
                _ => {}
            }
        }
        return Ok(ext);
    }
    if r.class() != 5 || verb != "EHLO" {
        s.quit();
        return Err(Trouble::Next(format!("{verb}: {r}")));
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
pub(crate) fn envelope(
    s: &mut Session,
    ext: &Extensions,
    job: &Job,
) -> Result<Vec<Refusal>, Trouble> {
    let paths = std::iter::once(job.sender)
        .chain(job.recipients.iter().map(String::as_str))
        .map(path)
        .collect::<Result<Vec<String>, String>>();
    let paths = match paths {
        Ok(p) => p,
        Err(why) => {
            s.quit();
            return Err(Trouble::Final(hard(job.on_hard_failure, why)));
        }
    };
    let mut mail = format!("MAIL FROM:<{}>", paths[0]);
    if job.eight_bit {
        mail.push_str(" BODY=8BITMIME");
    }
    if job.utf8 {
        mail.push_str(" SMTPUTF8");
    }
    // The sender's envelope id, for the next hop's DSNs (only to a server that offers DSN,
    // as Postfix's smtp client does).
    if let (true, Some(envid)) = (ext.dsn, job.origin.envid()) {
        mail.push_str(" ENVID=");
        mail.push_str(&xtext(envid));
    }
    mail.push_str("\r\n");
    let rcpts: Vec<String> = job
        .recipients
        .iter()
        .zip(&paths[1..])
        .map(|(r, p)| format!("RCPT TO:<{p}>{}\r\n", orcpt(ext, job, r)))
        .collect();
    let xf = xforward(ext.xforward, job.origin);
    let replies = if ext.pipelining {
        let all = xf
            .iter()
            .cloned()
            .chain(std::iter::once(mail))
            .chain(rcpts)
            .collect::<String>();
        s.send(&all).map_err(lost("while sending MAIL and RCPT"))?;
        for _ in &xf {
            xforward_reply(s)?;
        }
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
        for cmd in &xf {
            s.send(cmd).map_err(lost("while sending XFORWARD"))?;
            xforward_reply(s)?;
        }
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

/// `addr` as the inside of an RFC 5321 path. Without pipe(8)'s flag q, Postfix passes a quoted
/// local part unquoted (`"a> X"@d` as `a> X@d`): written as it is, the rest would become MAIL
/// or RCPT parameters. A local part that is not a Dot-string is quoted (as Postfix's smtp
/// client does), one that is already a quoted-string is kept; a domain with white space, angle
/// brackets, a quote or a backslash cannot be written and is refused.
pub(crate) fn path(addr: &str) -> Result<String, String> {
    let (local, domain) = match addr.rsplit_once('@') {
        Some((l, d)) => (l, Some(d)),
        None => (addr, None),
    };
    if let Some(d) = domain
        && d.chars()
            .any(|c| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\\'))
    {
        return Err(format!(
            "the address {:?} has a domain that cannot be written in SMTP: not sent",
            addr.escape_debug().to_string()
        ));
    }
    if addr.is_empty() || dot_string(local) || quoted_string(local) {
        return Ok(addr.to_string());
    }
    let mut q = String::with_capacity(local.len() + 2 + addr.len() - local.len());
    q.push('"');
    for c in local.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    if let Some(d) = domain {
        q.push('@');
        q.push_str(d);
    }
    Ok(q)
}

/// RFC 5321 Dot-string (atext, and UTF-8 under SMTPUTF8, RFC 6531).
fn dot_string(l: &str) -> bool {
    l.split('.').all(|atom| {
        !atom.is_empty()
            && atom.chars().all(|c| {
                c.is_ascii_alphanumeric() || !c.is_ascii() || "!#$%&'*+-/=?^_`{|}~".contains(c)
            })
    })
}

/// RFC 5321 Quoted-string: `"`, then text with `"` and `\` only escaped, then `"`.
fn quoted_string(l: &str) -> bool {
    let Some(inner) = l.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return false;
    };
    let mut escaped = false;
    for c in inner.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return false,
            _ => {}
        }
    }
    !escaped
}

/// ` ORCPT=rfc822;ADDR` for `rcpt` (xtext, RFC 3461) when the server offers DSN and the MTA
/// gave the address before rewriting, as Postfix's smtp client sends it; an address that is
/// not ASCII is left out (it would need RFC 6533's utf-8 type).
fn orcpt(ext: &Extensions, job: &Job, rcpt: &str) -> String {
    match job.origin.original_recipient(rcpt) {
        Some(o) if ext.dsn && o.is_ascii() => format!(" ORCPT=rfc822;{}", xtext(o)),
        _ => String::new(),
    }
}

/// The reply to an XFORWARD: a refusal (550 when `smtpd_authorized_xforward_hosts` does not
/// list us) costs only the log's accuracy, so it is a warning and the delivery goes on, as in
/// Postfix's smtp client.
fn xforward_reply(s: &mut Session) -> Result<(), Trouble> {
    let r = s
        .reply()
        .map_err(lost("while waiting for the reply to XFORWARD"))?;
    if r.class() != 2 {
        crate::log::warn(&format!(
            "XFORWARD refused ({r}): the next hop logs this filter as the client"
        ));
    }
    Ok(())
}

/// A reply refusing a step: 4xx is 75, 5xx a hard failure, anything else (a 2xx or 3xx where
/// it makes no sense) 75.
pub(crate) fn verdict(r: &Reply, step: &str, on_hard_failure: HardFailure) -> Trouble {
    let reason = format!("{step}: {r}");
    Trouble::Final(match r.class() {
        5 => hard(on_hard_failure, reason),
        _ => Failure::tempfail("4.3.0", reason),
    })
}

/// A hard refusal, as `[reinject] on_hard_failure` says (like sendmail's exit 69).
pub(crate) fn hard(on_hard_failure: HardFailure, reason: String) -> Failure {
    match on_hard_failure {
        HardFailure::Tempfail => Failure::tempfail("4.3.0", reason),
        HardFailure::Bounce => Failure::bounce("5.3.0", reason),
    }
}

/// Writes the message as DATA content: CRLF line ends, dot-stuffed, then the final ".".
pub(crate) fn write_data(conn: &mut dyn Write, message: &[u8]) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(64 << 10, conn);
    out.write_all(&dot_stuffed(message))?;
    out.flush()
}

/// The DATA content of `message`: each line (a lone LF or CRLF ends one; a final line without
/// one gets it) with CRLF, a line starting with "." gets another, then ".\r\n".
pub(crate) fn dot_stuffed(message: &[u8]) -> Vec<u8> {
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

/// The conversation up to the server's 354 to DATA: connect, greeting, `verb` (EHLO or LHLO),
/// the extensions the message needs, the envelope. Returns the session, ready for the content,
/// and the recipients refused with 5xx while others were accepted.
pub(crate) fn start(
    addr: &ServerAddr,
    verb: &str,
    job: &Job,
    deadline: Instant,
) -> Result<(Session, Vec<Refusal>), Trouble> {
    let conn = wire::connect(addr, CONNECT, deadline)
        .map_err(|e| Trouble::Next(format!("cannot connect: {}", wire::describe(&e))))?;
    let mut s = Session {
        conn: Link::Plain(conn),
        buf: Vec::new(),
    };
    let ext = hello(&mut s, verb, job.helo)?;
    let (mut s, ext) = starttls(s, ext, addr, verb, job)?;
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
    Ok((s, refused))
}

/// STARTTLS as `[reinject] tls` wants it for `addr` (see `tls.rs`): the session to go on
/// with (encrypted, or plaintext when allowed) and the extensions of the EHLO after it. Under
/// `verify` a server without STARTTLS, refusing it or failing the certificate check is given
/// up (the next one is tried), never used in plaintext.
fn starttls(
    mut s: Session,
    ext: Extensions,
    addr: &ServerAddr,
    verb: &str,
    job: &Job,
) -> Result<(Session, Extensions), Trouble> {
    let level = job.tls.level_for(addr);
    let required = level == TlsLevel::Verify;
    if level == TlsLevel::None || level == TlsLevel::Auto || (!ext.starttls && !required) {
        return Ok((s, ext));
    }
    if !ext.starttls {
        s.quit();
        return Err(Trouble::Next(
            "does not offer STARTTLS (reinject.tls = \"verify\": never in plaintext)".into(),
        ));
    }
    s.send("STARTTLS\r\n")
        .map_err(lost("while sending STARTTLS"))?;
    let r = s
        .reply()
        .map_err(lost("while waiting for the reply to STARTTLS"))?;
    if r.code != 220 {
        if required {
            s.quit();
            return Err(Trouble::Next(format!("STARTTLS: {r} (never in plaintext)")));
        }
        crate::log::warn(&format!(
            "STARTTLS refused ({r}): going on in plaintext (reinject.tls = \"may\")"
        ));
        return Ok((s, ext));
    }
    if !s.buf.is_empty() {
        return Err(Trouble::Next(
            "sent more after its 220 to STARTTLS (a command injection?): given up".into(),
        ));
    }
    let Link::Plain(conn) = s.conn else {
        return Err(Trouble::Next("STARTTLS twice".into()));
    };
    let link = tls::handshake(conn, addr, level, &job.tls.ca_file).map_err(Trouble::Next)?;
    let mut s = Session {
        conn: link,
        buf: Vec::new(),
    };
    let ext = ehlo(&mut s, verb, job.helo)?;
    Ok((s, ext))
}

/// `check-config --ping`: connect, greeting, `verb`, STARTTLS as `tls` says (the certificate
/// checked under "verify"), QUIT; no transaction. What the server offers, or why it would not
/// take a message.
pub(crate) fn ping(
    addr: &ServerAddr,
    verb: &str,
    helo: &str,
    tls: &Tls,
    deadline: Instant,
) -> Result<String, String> {
    let conn = wire::connect(addr, CONNECT, deadline)
        .map_err(|e| format!("cannot connect: {}", wire::describe(&e)))?;
    let mut s = Session {
        conn: Link::Plain(conn),
        buf: Vec::new(),
    };
    let why = |t: Trouble| match t {
        Trouble::Next(w) => w,
        Trouble::Final(f) => f.reason,
    };
    let ext = hello(&mut s, verb, helo).map_err(why)?;
    let origin = Origin::NONE;
    let job = Job {
        sender: "",
        recipients: &[],
        message: &[],
        eight_bit: false,
        utf8: false,
        helo,
        origin,
        tls,
        on_hard_failure: HardFailure::Tempfail,
        commits: false,
    };
    let (mut s, ext2) = starttls(s, ext, addr, verb, &job).map_err(why)?;
    s.quit();
    let level = tls.level_for(addr);
    let secured = match (&s.conn, level) {
        (Link::Tls(_), TlsLevel::Verify) => "TLS, certificate verified",
        (Link::Tls(_), _) => "TLS, certificate not checked",
        _ => "plaintext",
    };
    Ok(format!(
        "{secured}{}{}",
        if ext2.pipelining { ", PIPELINING" } else { "" },
        if ext2.xforward != Xforward::default() {
            ", XFORWARD"
        } else {
            ""
        }
    ))
}

/// An I/O error while the content was sent (after 354): no other server, nothing delivered.
pub(crate) fn after_data(e: io::Error) -> Trouble {
    Trouble::Final(Failure::tempfail(
        "4.4.2",
        format!(
            "{} while sending the message: not delivered (an unfinished transaction is discarded)",
            wire::describe(&e)
        ),
    ))
}

/// What a courier's failover loop needs: the protocol's name for messages ("SMTP", "LMTP"),
/// the servers in order, our EHLO/LHLO name, the time one delivery may take, what a hard
/// refusal becomes.
pub(crate) struct Route<'a> {
    pub(crate) proto: &'a str,
    pub(crate) servers: &'a [String],
    pub(crate) helo: &'a str,
    pub(crate) timeout: Duration,
    pub(crate) on_hard_failure: HardFailure,
    pub(crate) tls: &'a Tls,
}

/// One copy: reads the message, then tries every server in turn with `session` until one
/// gives an answer about the message.
pub(crate) fn transfer(
    route: &Route,
    sender: &str,
    recipients: &[String],
    origin: Origin,
    feed: Feed,
    commits: bool,
    session: fn(&ServerAddr, &Job, Instant) -> Result<Vec<Refusal>, Trouble>,
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
        helo: route.helo,
        origin,
        tls: route.tls,
        on_hard_failure: route.on_hard_failure,
        commits,
    };
    let proto = route.proto;
    let deadline = Instant::now() + route.timeout;
    let mut errors = Vec::new();
    for name in route.servers {
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
                        "{}; failed over to {proto} server {name}",
                        errors.join("; ")
                    ));
                }
                return Ok(refused);
            }
            Err(Trouble::Next(why)) => errors.push(format!("{proto} server {name}: {why}")),
            Err(Trouble::Final(mut f)) => {
                f.reason = format!("{proto} server {name}: {}", f.reason);
                return Err(f);
            }
        }
    }
    if errors.is_empty() {
        errors.push(format!("no {proto} server configured"));
    }
    Err(Failure::tempfail("4.4.1", errors.join("; ")))
}
/// A courier of the SMTP family (SMTP, LMTP): the same wire, route and Courier behaviour; what
/// differs is the protocol's name, its greeting verb and its conversation with one server.
#[derive(Debug, Clone)]
pub struct WireCourier {
    proto: &'static str,
    hello: &'static str,
    session: SessionFn,
    servers: Vec<String>,
    helo: String,
    timeout: Duration,
    on_hard_failure: HardFailure,
    tls: Tls,
}

/// The whole conversation with one server: what it refused, or why it gave no answer.
pub(crate) type SessionFn = fn(&ServerAddr, &Job, Instant) -> Result<Vec<Refusal>, Trouble>;

impl WireCourier {
    /// Servers in failover order (`host:port`, or for LMTP a socket path), our greeting name,
    /// the time one delivery may take, and what a hard refusal becomes.
    pub(crate) fn new(
        proto: &'static str,
        hello: &'static str,
        session: SessionFn,
        servers: &[String],
        helo: &str,
        timeout: Duration,
        on_hard_failure: HardFailure,
    ) -> WireCourier {
        WireCourier {
            proto,
            hello,
            session,
            servers: servers.to_vec(),
            helo: helo.to_string(),
            timeout,
            on_hard_failure,
            tls: Tls::default(),
        }
    }

    /// The same courier with `[reinject] tls` and `tls_ca_file` (the default is `auto`).
    pub fn with_tls(self, tls: Tls) -> WireCourier {
        WireCourier { tls, ..self }
    }

    /// One copy: every server in turn until one gives an answer about the message.
    fn transfer(
        &self,
        sender: &str,
        recipients: &[String],
        origin: Origin,
        feed: Feed,
        commits: bool,
    ) -> Result<Vec<Refusal>, Failure> {
        let route = Route {
            proto: self.proto,
            servers: &self.servers,
            helo: &self.helo,
            timeout: self.timeout,
            on_hard_failure: self.on_hard_failure,
            tls: &self.tls,
        };
        transfer(
            &route,
            sender,
            recipients,
            origin,
            feed,
            commits,
            self.session,
        )
    }
}

impl Courier for WireCourier {
    fn deliver(
        &self,
        sender: &str,
        recipients: &[String],
        origin: Origin,
        message: Feed,
    ) -> Result<Vec<Refusal>, Failure> {
        crate::timings::time("reinject", || {
            self.transfer(sender, recipients, origin, message, true)
        })
    }

    fn send(&self, sender: &str, recipients: &[String], message: Feed) -> Result<(), Failure> {
        let refused = crate::timings::time("send", || {
            self.transfer(sender, recipients, Origin::NONE, message, false)
        })?;
        for r in refused {
            crate::log::warn(&format!(
                "{} server did not take <{}>: {} (NOT sent to it)",
                self.proto, r.recipient, r.reply
            ));
        }
        Ok(())
    }

    fn describe(&self, sender: &str, recipients: &[String]) -> String {
        let rcpts: Vec<String> = recipients.iter().map(|r| format!("<{r}>")).collect();
        // What `[reinject] tls` comes to for each server ("auto" resolved).
        let tls: Vec<String> = self
            .servers
            .iter()
            .map(|name| match name.parse::<ServerAddr>() {
                Ok(a) => format!("{name} {}", self.tls.level_for(&a).name()),
                Err(_) => format!("{name} unusable"),
            })
            .collect();
        format!(
            "reinject {} {} (in this order), {} {}, MAIL FROM:<{sender}> RCPT TO:{}; TLS: {}",
            self.proto.to_ascii_lowercase(),
            self.servers.join(", "),
            self.hello,
            self.helo,
            rcpts.join(","),
            tls.join(", ")
        )
    }
}
