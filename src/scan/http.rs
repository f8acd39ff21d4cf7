//! The small HTTP/1.1 client our HTTP scanners share (rspamd now, ICAP later): reading one
//! response over a deadline-bound [`Conn`] and splitting it into status and body.
//!
//! Contract: [`read_reply`] stops once the body is complete (by `Content-Length` or the last
//! chunk), at end-of-file, on an error, or at [`MAX_REPLY`] bytes, so a server that keeps the
//! connection open costs nothing; [`split_response`] never panics on garbage and says what is
//! wrong in words that follow "SCANNER ADDR: ". Requests are written by each client (their
//! headers are their protocol); [`host_header`] gives the mandatory `Host:` value.

use super::wire::{self, Conn, ServerAddr, split_line};
use std::io::{self, Read};

/// The largest reply read: far above any scanner's verdict.
pub const MAX_REPLY: usize = 1 << 20;

/// `Host:` is mandatory in HTTP/1.1; rspamd ignores its value. A unix socket has no host name.
pub fn host_header(addr: &ServerAddr) -> &str {
    match addr {
        ServerAddr::Tcp(hostport) => hostport,
        ServerAddr::Unix(_) => "localhost",
    }
}

/// Reads one response: until its body is complete (by `Content-Length` or the last chunk),
/// end-of-file, an error, or [`MAX_REPLY`] bytes. On an error the bytes read so far come with it.
pub fn read_reply(conn: &mut Conn) -> (Vec<u8>, io::Result<()>) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match complete_len(&buf) {
            Ok(Some(n)) => {
                buf.truncate(n);
                return (buf, Ok(()));
            }
            // Malformed framing: let the parser say what is wrong.
            Err(_) => return (buf, Ok(())),
            Ok(None) => {}
        }
        if buf.len() > MAX_REPLY {
            buf.truncate(MAX_REPLY);
            let e = io::Error::new(
                io::ErrorKind::InvalidData,
                format!("reply larger than {MAX_REPLY} bytes"),
            );
            return (buf, Err(e));
        }
        match conn.read(&mut chunk) {
            Ok(0) => return (buf, Ok(())),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (buf, Err(e)),
        }
    }
}

/// A response split into its status and its (de-chunked) body.
pub struct Response {
    pub code: u16,
    /// The status line, as received (without CR LF).
    pub status_line: Vec<u8>,
    pub body: Vec<u8>,
}

impl Response {
    /// The status line for an error text: as is when printable, quoted otherwise.
    pub fn status_text(&self) -> String {
        if self
            .status_line
            .iter()
            .all(|&b| b == b' ' || b.is_ascii_graphic())
        {
            String::from_utf8_lossy(&self.status_line).into_owned()
        } else {
            wire::quote(&self.status_line, 200)
        }
    }
}

/// How the body of a response is delimited.
enum Framing {
    Length(usize),
    Chunked,
    /// Neither header: the body runs to end-of-file.
    ToEof,
}

struct Head<'a> {
    code: u16,
    status_line: &'a [u8],
    framing: Framing,
    /// Offset of the first body byte.
    body_at: usize,
}

const MAX_HEADERS: usize = 100;

/// Parses the status line and headers. `Ok(None)`: the header block is not complete yet.
fn parse_head(resp: &[u8]) -> Result<Option<Head<'_>>, String> {
    let Some((status_line, mut rest)) = split_line(resp) else {
        if resp.is_empty() {
            return Ok(None);
        }
        // Not even a status line yet: garbage is recognised early, a partial one waits.
        if !b"HTTP/".starts_with(&resp[..resp.len().min(5)]) {
            return Err(format!("malformed reply: {}", wire::quote(resp, 120)));
        }
        return Ok(None);
    };
    let code = parse_status(status_line)?;
    let mut framing = Framing::ToEof;
    let mut content_length = None;
    let mut chunked = false;
    let mut headers = 0;
    loop {
        let Some((line, after)) = split_line(rest) else {
            return Ok(None);
        };
        rest = after;
        if line.is_empty() {
            break;
        }
        headers += 1;
        if headers > MAX_HEADERS {
            return Err("malformed reply: too many header lines".to_owned());
        }
        let malformed = || format!("malformed reply header: {}", wire::quote(line, 120));
        let colon = line.iter().position(|&b| b == b':').ok_or_else(malformed)?;
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.is_empty() || name.iter().any(|b| !b.is_ascii_graphic()) {
            return Err(malformed());
        }
        if name.eq_ignore_ascii_case(b"Content-Length") {
            let n = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or_else(malformed)?;
            if content_length.is_some_and(|old| old != n) {
                return Err("malformed reply: two different Content-Length headers".to_owned());
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"Transfer-Encoding") {
            if value.eq_ignore_ascii_case(b"chunked") {
                chunked = true;
            } else if !value.eq_ignore_ascii_case(b"identity") {
                return Err(format!(
                    "unsupported reply: Transfer-Encoding {}",
                    wire::quote(value, 80)
                ));
            }
        } else if name.eq_ignore_ascii_case(b"Content-Encoding")
            && !value.eq_ignore_ascii_case(b"identity")
        {
            // We never ask for compression; a compressed body is not JSON we can read.
            return Err(format!(
                "unsupported reply: Content-Encoding {}",
                wire::quote(value, 80)
            ));
        }
    }
    // RFC 9112 6.3: chunked wins over Content-Length.
    if chunked {
        framing = Framing::Chunked;
    } else if let Some(n) = content_length {
        framing = Framing::Length(n);
    }
    Ok(Some(Head {
        code,
        status_line,
        framing,
        body_at: resp.len() - rest.len(),
    }))
}

/// "HTTP/1.1 200 OK" → 200.
fn parse_status(line: &[u8]) -> Result<u16, String> {
    let malformed = || format!("malformed reply: {}", wire::quote(line, 120));
    let mut parts = line.splitn(3, |&b| b == b' ');
    let proto = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    let version_ok = matches!(proto, b"HTTP/1.0" | b"HTTP/1.1");
    if !version_ok || code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return Err(malformed());
    }
    std::str::from_utf8(code)
        .ok()
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (100..600).contains(c))
        .ok_or_else(malformed)
}

/// The length of the complete response at the start of `buf`: `Ok(None)` while more is needed
/// (or while the body runs to end-of-file), `Err` when the framing is broken.
pub fn complete_len(buf: &[u8]) -> Result<Option<usize>, String> {
    let Some(head) = parse_head(buf)? else {
        return Ok(None);
    };
    let body = &buf[head.body_at..];
    Ok(match head.framing {
        Framing::Length(n) => (body.len() >= n).then_some(head.body_at + n),
        Framing::Chunked => dechunk(body)?.map(|(_, used)| head.body_at + used),
        Framing::ToEof => None,
    })
}

/// Splits a whole response; the body is de-chunked, and must be complete.
pub fn split_response(resp: &[u8]) -> Result<Response, String> {
    if resp.is_empty() {
        return Err("closed the connection without a reply".to_owned());
    }
    let Some(head) = parse_head(resp)? else {
        return Err(format!(
            "truncated reply: connection closed inside the reply headers: {}",
            wire::quote(resp, 120)
        ));
    };
    let body = &resp[head.body_at..];
    let body = match head.framing {
        Framing::Length(n) if body.len() < n => {
            return Err(format!(
                "truncated reply: got {} of {n} body bytes",
                body.len()
            ));
        }
        Framing::Length(n) => body[..n].to_vec(),
        Framing::Chunked => match dechunk(body)? {
            Some((data, _)) => data,
            None => {
                return Err("truncated reply: connection closed inside a chunked body".to_owned());
            }
        },
        Framing::ToEof => body.to_vec(),
    };
    Ok(Response {
        code: head.code,
        status_line: head.status_line.to_vec(),
        body,
    })
}

/// Decodes a chunked body: `Ok(Some((data, bytes used)))` once the last chunk and the trailers
/// are in, `Ok(None)` while incomplete.
fn dechunk(mut body: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let total = body.len();
    let mut data = Vec::new();
    loop {
        let Some((line, rest)) = split_line(body) else {
            return Ok(None);
        };
        // chunk-size [;extensions]
        let size = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = size.trim_ascii();
        let n = std::str::from_utf8(size)
            .ok()
            .filter(|s| !s.is_empty() && s.len() <= 8 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or_else(|| {
                format!(
                    "malformed chunked reply: chunk size {}",
                    wire::quote(line, 40)
                )
            })?;
        body = rest;
        if n == 0 {
            // Trailer fields, then an empty line.
            loop {
                let Some((line, rest)) = split_line(body) else {
                    return Ok(None);
                };
                body = rest;
                if line.is_empty() {
                    return Ok(Some((data, total - body.len())));
                }
            }
        }
        if data.len() + n > MAX_REPLY {
            return Err(format!("reply larger than {MAX_REPLY} bytes"));
        }
        if body.len() < n + 2 {
            return Ok(None);
        }
        data.extend_from_slice(&body[..n]);
        let after = &body[n..];
        body = if let Some(r) = after.strip_prefix(b"\r\n") {
            r
        } else if let Some(r) = after.strip_prefix(b"\n") {
            r
        } else {
            return Err("malformed chunked reply: no line end after a chunk".to_owned());
        };
    }
}
