//! Connections to scanner daemons (spamd, clamd, rspamd) over TCP or a unix socket, bounded by one deadline.
//!
//! Contract: every exchange with a scanner has a deadline (an `Instant`) by which it must be over,
//! whatever the server does. `connect` gives up after the connect timeout (or the deadline, if
//! sooner), including the name lookup and a unix-socket connect whose listen queue is full; after
//! that, [`Conn`] re-arms the socket timeout to "time left until the deadline" before every read
//! and write, so a server that hangs, or drips one byte a second, cannot hold us past the deadline.
//! Once the deadline has passed every I/O call fails with [`std::io::ErrorKind::TimedOut`].
//!
//! Errors are plain `std::io::Error`s; [`describe`] turns one into the few words an admin wants
//! in a log line ("connection refused", "timed out after 30s").

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv6Addr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A scanner server address from the config: "/path/to/socket" (starts with '/') is a unix socket,
/// anything else is "host:port" ("127.0.0.1:783", "[::1]:783", "spam.example:783").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAddr {
    /// "host:port" exactly as configured (resolved at connect time, so DNS changes are seen).
    Tcp(String),
    /// An absolute path to a unix stream socket.
    Unix(PathBuf),
}

impl FromStr for ServerAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        const WANT: &str = "want host:port such as 127.0.0.1:783 or [::1]:783, or an absolute socket path such as /run/clamav/clamd.ctl";
        if s.is_empty() {
            return Err(format!("empty server address ({WANT})"));
        }
        if s.starts_with('/') {
            if s.contains('\0') {
                return Err(format!("socket path {s:?} contains a NUL byte"));
            }
            return Ok(ServerAddr::Unix(PathBuf::from(s)));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "server address {s:?} contains white space ({WANT})"
            ));
        }
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err(format!("server address {s:?} has no port ({WANT})"));
        };
        if host.is_empty() {
            return Err(format!("server address {s:?} has no host ({WANT})"));
        }
        if let Some(inner) = host.strip_prefix('[') {
            let Some(ip) = inner.strip_suffix(']') else {
                return Err(format!("server address {s:?}: unclosed '[' ({WANT})"));
            };
            if ip.parse::<Ipv6Addr>().is_err() {
                return Err(format!(
                    "server address {s:?}: {ip:?} is not an IPv6 address"
                ));
            }
        } else if host.contains([':', '[', ']']) {
            return Err(format!(
                "server address {s:?}: an IPv6 address needs brackets, as in [::1]:783"
            ));
        }
        // u16::from_str accepts a leading '+': insist on plain digits.
        let port_ok = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p != 0);
        if !port_ok {
            return Err(format!(
                "server address {s:?}: bad port {port:?} (want a number from 1 to 65535)"
            ));
        }
        Ok(ServerAddr::Tcp(s.to_owned()))
    }
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddr::Tcp(hostport) => f.write_str(hostport),
            ServerAddr::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// One connection to a scanner, with the deadline of the whole exchange.
///
/// Every `read`/`write` first sets the socket timeout to the time left until the deadline (and
/// fails with `TimedOut` if none is left), so no single call blocks past it.
pub struct Conn {
    stream: Stream,
    deadline: Instant,
    /// deadline - (time `connect` was called): what "timed out after …" reports.
    budget: Duration,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.stream {
            Stream::Tcp(_) => "tcp",
            Stream::Unix(_) => "unix",
        };
        f.debug_struct("Conn")
            .field("stream", &kind)
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl Conn {
    /// Half-closes the connection: the server sees end-of-file, we can still read its reply.
    pub fn shutdown_write(&self) -> io::Result<()> {
        match &self.stream {
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
        }
    }

    /// Time left until the deadline, or a `TimedOut` error once it has passed.
    fn time_left(&self) -> io::Result<Duration> {
        match self.deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(left),
            _ => Err(self.timed_out()),
        }
    }

    fn timed_out(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("timed out after {}", fmt_duration(self.budget)),
        )
    }

    /// A socket timeout surfaces as `WouldBlock` (EAGAIN) on unix: call it what it is.
    fn map_timeout(&self, e: io::Error) -> io::Error {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => self.timed_out(),
            _ => e,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.time_left()?;
        let result = match &mut self.stream {
            Stream::Tcp(s) => s.set_read_timeout(Some(left)).and_then(|()| s.read(buf)),
            Stream::Unix(s) => s.set_read_timeout(Some(left)).and_then(|()| s.read(buf)),
        };
        result.map_err(|e| self.map_timeout(e))
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.time_left()?;
        let result = match &mut self.stream {
            Stream::Tcp(s) => s.set_write_timeout(Some(left)).and_then(|()| s.write(buf)),
            Stream::Unix(s) => s.set_write_timeout(Some(left)).and_then(|()| s.write(buf)),
        };
        result.map_err(|e| self.map_timeout(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(()) // sockets are unbuffered here
    }
}

/// Connects within `connect_timeout` (TCP: try each resolved address with connect_timeout;
/// unix: connect then set timeouts), and sets read/write timeouts so that no single I/O call blocks
/// past `deadline` (an Instant: the whole exchange must end by then).
///
/// The connect phase as a whole (name lookup included) never outlasts `connect_timeout` or the
/// deadline, whichever comes first. TCP connections get `TCP_NODELAY`: our last write is often a
/// few bytes (clamd's end-of-stream marker), which Nagle would hold back for a delayed ACK.
pub fn connect(
    addr: &ServerAddr,
    connect_timeout: Duration,
    deadline: Instant,
) -> io::Result<Conn> {
    let start = Instant::now();
    let budget = deadline.saturating_duration_since(start);
    let connect_budget = connect_timeout.min(budget);
    if connect_budget.is_zero() {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no time left before the deadline to connect",
        ));
    }
    let until = start + connect_budget;
    let stream = match addr {
        ServerAddr::Tcp(hostport) => Stream::Tcp(connect_tcp(hostport, until, connect_budget)?),
        ServerAddr::Unix(path) => Stream::Unix(connect_unix(path, until, connect_budget)?),
    };
    let conn = Conn {
        stream,
        deadline,
        budget,
    };
    // Re-armed before every I/O call anyway; set once here so that the socket is never left
    // without a timeout.
    let left = conn.time_left()?;
    match &conn.stream {
        Stream::Tcp(s) => {
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(left))?;
            s.set_write_timeout(Some(left))?;
        }
        Stream::Unix(s) => {
            s.set_read_timeout(Some(left))?;
            s.set_write_timeout(Some(left))?;
        }
    }
    Ok(conn)
}

fn connect_timed_out(budget: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("connect timed out after {}", fmt_duration(budget)),
    )
}

fn connect_tcp(hostport: &str, until: Instant, budget: Duration) -> io::Result<TcpStream> {
    let addrs = resolve(hostport, until, budget)?;
    let mut last_err = None;
    for sa in addrs {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(last_err.unwrap_or_else(|| connect_timed_out(budget)));
        }
        match TcpStream::connect_timeout(&sa, left) {
            Ok(s) => return Ok(s),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                last_err = Some(connect_timed_out(budget));
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("host name in {hostport:?} resolved to no addresses"),
        )
    }))
}

/// Resolves "host:port". IP literals need no lookup; a name lookup (getaddrinfo has no timeout)
/// runs on its own thread so that a dead resolver cannot hold us past `until`. A lookup that
/// outlives us finishes on its own and is dropped.
fn resolve(hostport: &str, until: Instant, budget: Duration) -> io::Result<Vec<SocketAddr>> {
    if let Ok(sa) = hostport.parse::<SocketAddr>() {
        return Ok(vec![sa]);
    }
    // The static build would crash in an NSS module loaded for this lookup (crate::nss).
    if let Some(why) = crate::nss::hosts_unsupported(crate::process::static_build()) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("cannot resolve {hostport:?}: {why}"),
        ));
    }
    let (tx, rx) = mpsc::channel();
    let name = hostport.to_owned();
    thread::Builder::new()
        .name("scan-resolve".into())
        .spawn(move || {
            let result = name.to_socket_addrs().map(|it| it.collect::<Vec<_>>());
            let _ = tx.send(result); // the receiver may have given up: fine
        })?;
    match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(e)) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("cannot resolve {hostport:?}: {e}"),
        )),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "name lookup for {hostport:?} timed out after {}",
                fmt_duration(budget)
            ),
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(io::Error::other(format!(
            "name lookup for {hostport:?} failed"
        ))),
    }
}

/// A unix-socket connect normally returns at once, but blocks while the server's listen queue is
/// full (a stuck clamd): std has no connect timeout for unix sockets, so connect on a thread.
fn connect_unix(path: &Path, until: Instant, budget: Duration) -> io::Result<UnixStream> {
    let (tx, rx) = mpsc::channel();
    let owned = path.to_owned();
    thread::Builder::new()
        .name("scan-connect".into())
        .spawn(move || {
            let _ = tx.send(UnixStream::connect(owned)); // a late stream is dropped (closed)
        })?;
    match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(connect_timed_out(budget)),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(io::Error::other("unix socket connect failed"))
        }
    }
}

/// The few words an admin wants for an I/O error: "connection refused", "no such socket file",
/// "timed out after 30s". Errors made here (timeouts, lookups) keep their own text.
pub fn describe(e: &io::Error) -> String {
    if e.raw_os_error().is_none()
        && let Some(inner) = e.get_ref()
    {
        return inner.to_string();
    }
    let text = match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused",
        io::ErrorKind::NotFound => "no such socket file",
        io::ErrorKind::PermissionDenied => "permission denied",
        io::ErrorKind::ConnectionReset => "connection reset by the server",
        io::ErrorKind::ConnectionAborted => "connection aborted",
        io::ErrorKind::BrokenPipe => "connection closed by the server (broken pipe)",
        io::ErrorKind::NotConnected => "not connected",
        io::ErrorKind::AddrNotAvailable => "address not available",
        io::ErrorKind::HostUnreachable => "host unreachable",
        io::ErrorKind::NetworkUnreachable => "network unreachable",
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timed out",
        io::ErrorKind::UnexpectedEof => "connection closed unexpectedly",
        _ => return e.to_string(),
    };
    text.to_owned()
}

/// "30s", "1.5s", "250ms": durations as an admin writes them in a config file.
pub fn fmt_duration(d: Duration) -> String {
    // Rounded: a budget measured a few microseconds after the caller's clock read "500ms".
    let ms = (d.as_micros() + 500) / 1000;
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        let tenths = (ms + 50) / 100;
        if tenths.is_multiple_of(10) {
            format!("{}s", tenths / 10)
        } else {
            format!("{}.{}s", tenths / 10, tenths % 10)
        }
    }
}

/// Reads until end-of-file, keeping at most `cap` bytes; more is an error (a hostile or confused
/// server must not eat our memory). On a read error the bytes read so far are returned with it.
pub fn read_to_end_capped(conn: &mut Conn, cap: usize) -> (Vec<u8>, io::Result<()>) {
    let mut buf = Vec::new();
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    let result = Read::take(conn, limit).read_to_end(&mut buf);
    match result {
        Ok(_) if buf.len() > cap => {
            buf.truncate(cap);
            let e = io::Error::new(
                io::ErrorKind::InvalidData,
                format!("reply larger than {} bytes", cap),
            );
            (buf, Err(e))
        }
        Ok(_) => (buf, Ok(())),
        Err(e) => (buf, Err(e)),
    }
}

/// Bytes from a server, quoted for a log line: printable ASCII as is, everything else escaped
/// (the result is 7-bit, safe for a log line or a header), cut at `max` bytes.
pub fn quote(bytes: &[u8], max: usize) -> String {
    let cut = &bytes[..bytes.len().min(max)];
    let mut s = String::from("\"");
    for chunk in cut.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                c if c == ' ' || c.is_ascii_graphic() => s.push(c),
                c => s.extend(c.escape_default()),
            }
        }
        for b in chunk.invalid() {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s.push('"');
    if bytes.len() > max {
        s.push_str("...");
    }
    s
}

/// The first line (without its CR LF or LF) and the rest, or None if there is no line end.
pub fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let nl = bytes.iter().position(|&b| b == b'\n')?;
    let line = &bytes[..nl];
    Some((line.strip_suffix(b"\r").unwrap_or(line), &bytes[nl + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::unix::net::UnixListener;

    fn parse(s: &str) -> Result<ServerAddr, String> {
        s.parse()
    }

    #[test]
    fn addresses_from_the_config() {
        assert_eq!(
            parse("127.0.0.1:783"),
            Ok(ServerAddr::Tcp("127.0.0.1:783".into()))
        );
        assert_eq!(parse("[::1]:783"), Ok(ServerAddr::Tcp("[::1]:783".into())));
        assert_eq!(
            parse("spam.example:783"),
            Ok(ServerAddr::Tcp("spam.example:783".into()))
        );
        assert_eq!(
            parse("/run/clamav/clamd.ctl"),
            Ok(ServerAddr::Unix("/run/clamav/clamd.ctl".into()))
        );
        for s in [
            "127.0.0.1:783",
            "[::1]:783",
            "spam.example:783",
            "/run/clamav/clamd.ctl",
            "/tmp/with space/sock",
        ] {
            assert_eq!(parse(s).map(|a| a.to_string()).as_deref(), Ok(s), "{s}");
        }
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        for (s, why) in [
            ("", "empty"),
            ("localhost", "no port"),
            ("clamd.sock", "no port"),
            (":783", "no host"),
            ("localhost:", "bad port"),
            ("localhost:0", "bad port"),
            ("localhost:65536", "bad port"),
            ("localhost:+783", "bad port"),
            ("localhost:spamd", "bad port"),
            ("::1:783", "brackets"),
            ("[::1:783", "unclosed"),
            ("[nothost]:783", "not an IPv6"),
            ("spam example:783", "white space"),
            ("spam.example:783\n", "white space"),
        ] {
            let e = parse(s).expect_err(s);
            assert!(e.contains(why), "{s:?}: {e}");
        }
    }

    #[test]
    fn refused_tcp_connect_is_connection_refused() {
        // Bind then drop: the port is (almost certainly) closed for the moment.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("bind");
        let addr = ServerAddr::Tcp(format!("127.0.0.1:{port}"));
        let e = connect(
            &addr,
            Duration::from_secs(1),
            Instant::now() + Duration::from_secs(2),
        )
        .expect_err("nothing listens");
        assert_eq!(describe(&e), "connection refused");
    }

    #[test]
    fn missing_unix_socket_is_reported_as_such() {
        let addr = ServerAddr::Unix("/nonexistent/pipescan-test.sock".into());
        let e = connect(
            &addr,
            Duration::from_secs(1),
            Instant::now() + Duration::from_secs(2),
        )
        .expect_err("no socket");
        assert_eq!(describe(&e), "no such socket file");
    }

    #[test]
    fn no_time_left_is_a_timeout_without_connecting() {
        let addr = ServerAddr::Tcp("127.0.0.1:9".into());
        let e =
            connect(&addr, Duration::from_secs(1), Instant::now()).expect_err("deadline passed");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn reads_stop_at_the_deadline_even_when_the_server_drips() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            // One byte every 50 ms for 3 s: each read succeeds quickly, the sum does not.
            for _ in 0..60 {
                if s.write_all(b"x").is_err() {
                    break;
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        let addr = ServerAddr::Tcp(format!("127.0.0.1:{port}"));
        let start = Instant::now();
        let deadline = start + Duration::from_millis(400);
        let mut conn = connect(&addr, Duration::from_secs(1), deadline).expect("connect");
        let mut sink = Vec::new();
        let e = conn.read_to_end(&mut sink).expect_err("must time out");
        let took = start.elapsed();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(describe(&e).starts_with("timed out after"), "{e}");
        assert!(!sink.is_empty());
        assert!(took < Duration::from_millis(500), "took {took:?}");
        drop(conn);
        server.join().expect("server");
    }

    #[test]
    fn writes_stop_at_the_deadline_when_the_server_does_not_read() {
        let dir = std::env::temp_dir().join(format!("pipescan-net-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("stuck.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind");
        let server = thread::spawn(move || {
            let (s, _) = listener.accept().expect("accept");
            thread::sleep(Duration::from_millis(800));
            drop(s);
        });
        let start = Instant::now();
        let deadline = start + Duration::from_millis(300);
        let mut conn = connect(
            &ServerAddr::Unix(path.clone()),
            Duration::from_secs(1),
            deadline,
        )
        .expect("connect");
        let chunk = vec![0u8; 1 << 16];
        let e = loop {
            if let Err(e) = conn.write_all(&chunk) {
                break e;
            }
        };
        let took = start.elapsed();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(took < Duration::from_millis(400), "took {took:?}");
        server.join().expect("server");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn durations_read_like_config_values() {
        assert_eq!(fmt_duration(Duration::from_secs(30)), "30s");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(fmt_duration(Duration::from_micros(499_990)), "500ms");
        assert_eq!(fmt_duration(Duration::from_micros(29_999_990)), "30s");
    }

    #[test]
    fn quoting_escapes_and_cuts() {
        assert_eq!(quote(b"ok", 10), "\"ok\"");
        assert_eq!(quote(b"a\r\n\0\xff\"", 10), "\"a\\r\\n\\u{0}\\xff\\\"\"");
        assert_eq!(quote(b"abcdef", 3), "\"abc\"...");
        assert_eq!(quote("grüße".as_bytes(), 10), "\"gr\\u{fc}\\u{df}e\"");
    }
}
