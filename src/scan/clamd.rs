//! clamd (ClamAV) client: streams one message with `zINSTREAM` and reads the verdict.
//!
//! Contract: [`scan`] returns `Clean` only when clamd said `stream: OK` for the whole stream we
//! sent. A virus name gives `Infected`; clamd's "INSTREAM size limit exceeded" gives `SizeLimit`,
//! which is not clean (the caller treats it as unchecked); anything else (refused, timed out,
//! no reply, `… ERROR`, garbage) is an `Err` with a sentence for the admin.
//!
//! Protocol (ClamAV 1.4): `zINSTREAM\0`, then chunks of a 4-byte big-endian length and that many
//! bytes, ended by a zero length; every reply ends in `\0`, and clamd closes the connection after
//! it. Pitfalls:
//! - Past `StreamMaxLength` (default 100M, M = 1024²) clamd replies `INSTREAM size limit exceeded.
//!   ERROR` and closes while we are still sending: the write fails (EPIPE/ECONNRESET), and the reply
//!   must be read anyway. Only when there is no usable reply is the write error reported.
//! - If reading the message fails half-way we must NOT send the end marker: clamd would scan the
//!   part it got and might say OK. We drop the connection instead.
//! - A clamd that cannot create its temporary file closes the connection without any reply.
//! - Signature names depend on the database (`Win.Test.EICAR_HDB-1`, `Eicar-Test-Signature`,
//!   `….UNOFFICIAL` for local ones): never match on them.

use super::wire::{self, Conn, ServerAddr};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// Bytes of message per INSTREAM chunk.
pub const CHUNK: usize = 64 * 1024;

/// The most reply we read. A real reply is one short line.
pub const MAX_REPLY: usize = 64 * 1024;

/// clamd's verdict on one message.
#[derive(Debug, Clone, PartialEq)]
pub enum ClamVerdict {
    /// `stream: OK`.
    Clean,
    /// `stream: NAME FOUND`: the signature names, as clamd gave them.
    Infected(Vec<String>),
    /// "INSTREAM size limit exceeded": NOT clean, the caller treats it as unchecked.
    SizeLimit,
}

/// Streams `msg` to clamd (`zINSTREAM`, 64 KiB chunks) and returns its verdict.
///
/// `msg` is read to its end; it may be a large temp file. Errors read like
/// "clamd /run/clamav/clamd.ctl: no such socket file" or
/// "clamd 127.0.0.1:3310: stream: Can't create temporary file ERROR".
pub fn scan(
    addr: &ServerAddr,
    msg: &mut dyn Read,
    connect_timeout: Duration,
    deadline: Instant,
) -> Result<ClamVerdict, String> {
    let fail = |text: String| format!("clamd {addr}: {text}");
    let mut conn =
        wire::connect(addr, connect_timeout, deadline).map_err(|e| fail(wire::describe(&e)))?;
    let sent = match send_stream(&mut conn, msg) {
        Ok(()) => Ok(()),
        // Drop the connection without the end marker: clamd never scans a partial message.
        Err(StreamError::Source(e)) => {
            return Err(fail(format!("cannot read the message to scan: {e}")));
        }
        Err(StreamError::Sink(e)) => Err(e),
    };
    let (reply, read) = wire::read_to_end_capped(&mut conn, MAX_REPLY);
    match (sent, read) {
        (Ok(()), Ok(())) => parse_reply(&reply).map_err(fail),
        (Ok(()), Err(e)) => {
            // A complete reply followed by a reset still says what clamd decided.
            if reply.ends_with(b"\0")
                && let Ok(verdict) = parse_reply(&reply)
            {
                return Ok(verdict);
            }
            Err(fail(format!(
                "{} while reading the reply",
                wire::describe(&e)
            )))
        }
        // Past StreamMaxLength clamd replies and closes while we are still writing.
        (Err(we), _) => {
            let we = format!("{} while sending the message", wire::describe(&we));
            if reply.is_empty() {
                return Err(fail(we));
            }
            parse_reply(&reply).map_err(|reply_err| fail(format!("{we}; reply: {reply_err}")))
        }
    }
}

enum StreamError {
    /// Reading the message failed.
    Source(io::Error),
    /// Writing to clamd failed.
    Sink(io::Error),
}

fn send_stream(conn: &mut Conn, msg: &mut dyn Read) -> Result<(), StreamError> {
    conn.write_all(b"zINSTREAM\0").map_err(StreamError::Sink)?;
    // One buffer for the length prefix and the data: one write per chunk.
    let mut buf = vec![0u8; 4 + CHUNK];
    loop {
        let n = fill(msg, &mut buf[4..]).map_err(StreamError::Source)?;
        if n == 0 {
            break;
        }
        let len = n as u32; // n <= CHUNK
        buf[..4].copy_from_slice(&len.to_be_bytes());
        conn.write_all(&buf[..4 + n]).map_err(StreamError::Sink)?;
    }
    conn.write_all(&[0, 0, 0, 0]).map_err(StreamError::Sink)
}

/// Reads until `buf` is full or the reader is at its end; returns the bytes read.
fn fill(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Asks clamd for `PONG`: the daemon is up and its database loaded.
pub fn ping(addr: &ServerAddr, connect_timeout: Duration, deadline: Instant) -> Result<(), String> {
    let fail = |text: String| format!("clamd {addr}: {text}");
    let mut conn =
        wire::connect(addr, connect_timeout, deadline).map_err(|e| fail(wire::describe(&e)))?;
    conn.write_all(b"zPING\0")
        .map_err(|e| fail(format!("{} while sending PING", wire::describe(&e))))?;
    let (reply, read) = wire::read_to_end_capped(&mut conn, 4096);
    match (reply.as_slice(), read) {
        (b"PONG\0", _) => Ok(()),
        (_, Err(e)) => Err(fail(format!(
            "{} while reading the reply to PING",
            wire::describe(&e)
        ))),
        ([], Ok(())) => Err(fail("closed the connection without a reply".to_owned())),
        (other, Ok(())) => Err(fail(format!(
            "unexpected reply to PING: {}",
            wire::quote(other, 120)
        ))),
    }
}

/// Pure parser of a whole reply (for tests and fuzzing): one or more `\0`-terminated messages.
///
/// Any `FOUND` makes it `Infected` (even next to an error: a virus is a virus); otherwise a size
/// limit message makes it `SizeLimit`; otherwise any error is an `Err`; `Clean` needs every
/// message to be `stream: OK`. A reply not ending in `\0` was cut short and is an error. Error
/// texts are written to follow "clamd ADDR: ".
pub fn parse_reply(reply: &[u8]) -> Result<ClamVerdict, String> {
    if reply.is_empty() {
        return Err("closed the connection without a reply".to_owned());
    }
    let Some(body) = reply.strip_suffix(b"\0") else {
        return Err(format!("truncated reply {}", wire::quote(reply, 120)));
    };
    let mut names = Vec::new();
    let mut size_limit = false;
    let mut clean = 0;
    let mut error = None;
    for part in body.split(|&b| b == 0) {
        match parse_one(part) {
            One::Clean => clean += 1,
            One::Found(name) => names.push(name),
            One::SizeLimit => size_limit = true,
            One::Error(text) => {
                error.get_or_insert(text);
            }
        }
    }
    if !names.is_empty() {
        Ok(ClamVerdict::Infected(names))
    } else if size_limit {
        Ok(ClamVerdict::SizeLimit)
    } else if let Some(text) = error {
        Err(text)
    } else if clean > 0 {
        Ok(ClamVerdict::Clean)
    } else {
        Err(format!("unexpected reply {}", wire::quote(reply, 120)))
    }
}

enum One {
    Clean,
    Found(String),
    SizeLimit,
    Error(String),
}

fn parse_one(part: &[u8]) -> One {
    let unexpected = || One::Error(format!("unexpected reply {}", wire::quote(part, 120)));
    let Ok(text) = std::str::from_utf8(part) else {
        return unexpected();
    };
    if text.bytes().any(|b| b.is_ascii_control()) {
        return unexpected();
    }
    if text.starts_with("INSTREAM size limit exceeded") {
        return One::SizeLimit;
    }
    let Some(rest) = text.strip_prefix("stream: ") else {
        // e.g. "UNKNOWN COMMAND", or a session-prefixed reply we never ask for.
        return if text.ends_with(" ERROR") || text == "UNKNOWN COMMAND" {
            One::Error(text.to_owned())
        } else {
            unexpected()
        };
    };
    if rest == "OK" {
        One::Clean
    } else if let Some(name) = rest.strip_suffix(" FOUND") {
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            unexpected()
        } else {
            One::Found(name.to_owned())
        }
    } else if rest.ends_with(" ERROR") {
        One::Error(text.to_owned())
    } else {
        unexpected()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::TcpStream;

    // Real replies captured from clamd 1.4.3 (Debian 12) with a self-made EICAR database.
    pub(crate) const OK: &[u8] = b"stream: OK\0";
    const FOUND: &[u8] = b"stream: Test.EICAR-NDB.UNOFFICIAL FOUND\0";
    const SIZE_LIMIT: &[u8] = b"INSTREAM size limit exceeded. ERROR\0";
    const UNKNOWN: &[u8] = b"UNKNOWN COMMAND\0";

    #[test]
    fn real_replies() {
        assert_eq!(parse_reply(OK), Ok(ClamVerdict::Clean));
        assert_eq!(
            parse_reply(FOUND),
            Ok(ClamVerdict::Infected(vec![
                "Test.EICAR-NDB.UNOFFICIAL".into()
            ]))
        );
        assert_eq!(parse_reply(SIZE_LIMIT), Ok(ClamVerdict::SizeLimit));
        assert_eq!(parse_reply(UNKNOWN), Err("UNKNOWN COMMAND".into()));
    }

    #[test]
    fn errors_and_garbage_are_never_clean() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "without a reply"),
            (b"stream: OK", "truncated"),
            (b"stream: O", "truncated"),
            (
                b"stream: Can't create temporary file ERROR\0",
                "stream: Can't create temporary file ERROR",
            ),
            (b"stream: ERR ERROR\0", "stream: ERR ERROR"),
            (
                b"stream: OK\0stream: Can't allocate memory ERROR\0",
                "Can't allocate memory",
            ),
            (b"stream: FOUND\0", "unexpected reply"),
            (b"stream: two words FOUND\0", "unexpected reply"),
            (b"stream: MAYBE\0", "unexpected reply"),
            (b"PONG\0", "unexpected reply"),
            (b"\0", "unexpected reply"),
            (b"stream: O\x01K\0", "unexpected reply"),
            (b"\xff\xfe\0", "unexpected reply"),
            (b"HTTP/1.0 400 Bad Request\r\n\r\n", "truncated"),
        ];
        for (reply, want) in cases {
            let e = parse_reply(reply).expect_err(&String::from_utf8_lossy(reply));
            assert!(
                e.contains(want),
                "{:?}: {e}",
                String::from_utf8_lossy(reply)
            );
        }
    }

    #[test]
    fn every_name_of_a_multi_reply_is_kept_and_a_virus_beats_an_error() {
        assert_eq!(
            parse_reply(b"stream: A.B FOUND\0stream: C-D_1 FOUND\0"),
            Ok(ClamVerdict::Infected(vec!["A.B".into(), "C-D_1".into()]))
        );
        assert_eq!(
            parse_reply(b"stream: A.B FOUND\0stream: ERR ERROR\0"),
            Ok(ClamVerdict::Infected(vec!["A.B".into()]))
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        for reply in [OK, FOUND, SIZE_LIMIT] {
            for cut in 0..reply.len() {
                assert!(parse_reply(&reply[..cut]).is_err(), "{:?}", &reply[..cut]);
            }
        }
    }

    // ---- fault injection: tiny fake servers on 127.0.0.1:0 ----

    use crate::scan::testdata::fault_server as fake_clamd;

    /// Reads a zINSTREAM request to its end marker; returns the payload.
    pub(crate) fn read_instream(s: &mut TcpStream) -> io::Result<Vec<u8>> {
        let mut cmd = [0u8; 10];
        s.read_exact(&mut cmd)?;
        assert_eq!(&cmd, b"zINSTREAM\0");
        let mut data = Vec::new();
        loop {
            let mut len = [0u8; 4];
            s.read_exact(&mut len)?;
            let len = u32::from_be_bytes(len) as usize;
            if len == 0 {
                return Ok(data);
            }
            let start = data.len();
            data.resize(start + len, 0);
            s.read_exact(&mut data[start..])?;
        }
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn the_stream_is_chunked_and_terminated() {
        let msg: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let expect = msg.clone();
        let (addr, server) = fake_clamd(move |mut s| {
            let mut cmd = [0u8; 10];
            s.read_exact(&mut cmd).expect("cmd");
            let mut sizes = Vec::new();
            let mut data = Vec::new();
            loop {
                let mut len = [0u8; 4];
                s.read_exact(&mut len).expect("len");
                let len = u32::from_be_bytes(len) as usize;
                sizes.push(len);
                if len == 0 {
                    break;
                }
                let start = data.len();
                data.resize(start + len, 0);
                s.read_exact(&mut data[start..]).expect("data");
            }
            assert_eq!(data, expect);
            assert_eq!(sizes, vec![CHUNK, CHUNK, CHUNK, 200_000 - 3 * CHUNK, 0]);
            s.write_all(OK).expect("reply");
        });
        let verdict =
            scan(&addr, &mut msg.as_slice(), Duration::from_secs(1), soon()).expect("scanned");
        assert_eq!(verdict, ClamVerdict::Clean);
        server.join().expect("server");
    }

    #[test]
    fn a_size_limit_reply_mid_stream_is_read_despite_the_write_error() {
        // What clamd does past StreamMaxLength: reply, then close while we are still sending.
        let (addr, server) = fake_clamd(|mut s| {
            let mut some = vec![0u8; 100_000];
            let _ = s.read_exact(&mut some);
            let _ = s.write_all(SIZE_LIMIT);
            let _ = s.shutdown(std::net::Shutdown::Write);
            // Keep reading (and discarding) for a moment so the reply is not lost to a reset,
            // as clamd's own close is graceful when its receive buffer is empty.
            let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
            let mut sink = [0u8; 65536];
            while let Ok(n) = s.read(&mut sink) {
                if n == 0 {
                    break;
                }
            }
        });
        let verdict = scan(
            &addr,
            &mut io::repeat(b'x').take(512 << 20),
            Duration::from_secs(1),
            soon(),
        );
        assert_eq!(verdict, Ok(ClamVerdict::SizeLimit));
        server.join().expect("server");
    }

    #[test]
    fn a_failing_message_reader_never_sends_the_end_marker() {
        struct Broken(usize);
        impl Read for Broken {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("disk on fire"));
                }
                let n = buf.len().min(self.0);
                buf[..n].fill(b'a');
                self.0 -= n;
                Ok(n)
            }
        }
        let (addr, server) = fake_clamd(|mut s| {
            // The stream must end without the zero-length chunk.
            assert!(read_instream(&mut s).is_err(), "end marker was sent");
        });
        let e = scan(&addr, &mut Broken(100_000), Duration::from_secs(1), soon())
            .expect_err("reader fails");
        assert!(
            e.ends_with(": cannot read the message to scan: disk on fire"),
            "{e}"
        );
        server.join().expect("server");
    }

    #[test]
    fn ping_wants_pong() {
        let (addr, server) = fake_clamd(|mut s| {
            let mut cmd = [0u8; 6];
            s.read_exact(&mut cmd).expect("cmd");
            assert_eq!(&cmd, b"zPING\0");
            let _ = s.write_all(b"PONG\0");
        });
        ping(&addr, Duration::from_secs(1), soon()).expect("pong");
        server.join().expect("server");
    }

    /// Tests against a real clamd: `PIPESCAN_CLAMD=DIR/clamd.sock` (started by
    /// `scripts/mailstack up DIR`, with an EICAR signature). They fail, not skip, when it is not set.
    mod live {
        use super::super::*;
        use crate::scan::testdata::eicar;

        fn server() -> ServerAddr {
            crate::scan::testdata::stack_server("PIPESCAN_CLAMD")
        }

        fn deadline() -> Instant {
            Instant::now() + Duration::from_secs(30)
        }

        fn eicar_mail() -> Vec<u8> {
            let eicar = eicar();
            assert_eq!(eicar.len(), 68);
            let b64 = crate::message::text::base64(&eicar);
            format!(
                "From: a@example.com\r\nTo: b@example.org\r\nSubject: virus\r\nMIME-Version: 1.0\r\n\
                 Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\n\
                 see attachment\r\n--XX\r\nContent-Type: application/octet-stream; name=eicar.com\r\n\
                 Content-Transfer-Encoding: base64\r\n\
                 Content-Disposition: attachment; filename=eicar.com\r\n\r\n{b64}\r\n--XX--\r\n"
            )
            .into_bytes()
        }

        /// clamd's TCP socket (`PIPESCAN_CLAMD_TCP`, printed by `scripts/mailstack env`): over TCP
        /// an early close can turn into a reset, so the size-limit path is checked here too.
        fn tcp_server() -> ServerAddr {
            crate::scan::testdata::stack_server("PIPESCAN_CLAMD_TCP")
        }

        #[test]
        fn the_tcp_socket_gives_the_same_answers() {
            let addr = tcp_server();
            ping(&addr, Duration::from_secs(5), deadline()).expect("PONG");
            let plain = b"Subject: hi\r\n\r\nhello\r\n";
            assert_eq!(
                scan(&addr, &mut &plain[..], Duration::from_secs(5), deadline()),
                Ok(ClamVerdict::Clean)
            );
            assert!(matches!(
                scan(
                    &addr,
                    &mut eicar_mail().as_slice(),
                    Duration::from_secs(5),
                    deadline()
                ),
                Ok(ClamVerdict::Infected(_))
            ));
            assert_eq!(
                scan(
                    &addr,
                    &mut io::repeat(b'x'),
                    Duration::from_secs(5),
                    deadline()
                ),
                Ok(ClamVerdict::SizeLimit)
            );
        }

        #[test]
        fn ping_answers() {
            ping(&server(), Duration::from_secs(5), deadline()).expect("PONG");
        }

        #[test]
        fn a_plain_message_is_clean() {
            let msg = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nhello\r\n";
            assert_eq!(
                scan(&server(), &mut &msg[..], Duration::from_secs(5), deadline()),
                Ok(ClamVerdict::Clean)
            );
        }

        #[test]
        fn an_eicar_attachment_is_infected() {
            match scan(
                &server(),
                &mut eicar_mail().as_slice(),
                Duration::from_secs(5),
                deadline(),
            ) {
                Ok(ClamVerdict::Infected(names)) => assert!(!names.is_empty()),
                other => panic!("want Infected, got {other:?}"),
            }
        }

        #[test]
        fn an_endless_stream_hits_the_size_limit() {
            // Whatever StreamMaxLength is (default 100M), an endless stream passes it.
            let verdict = scan(
                &server(),
                &mut io::repeat(b'x'),
                Duration::from_secs(5),
                deadline(),
            );
            assert_eq!(verdict, Ok(ClamVerdict::SizeLimit));
        }
    }
}
