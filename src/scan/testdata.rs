//! Messages the scanner unit tests send to the real spamd, rspamd and clamd, and the fault
//! server they use to misbehave (refuse, hang, garbage, close mid-reply).

use super::wire::ServerAddr;
use std::net::{TcpListener, TcpStream};
use std::thread;

/// A GTUBE message; the GTUBE string is assembled at run time so that this source file
/// is not itself "spam".
pub fn gtube() -> Vec<u8> {
    let (head, tail) = (
        "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD",
        "-ANTI-UBE-TEST-EMAIL*C.34X",
    );
    format!(
        "From: Sender <sender@example.com>\r\nTo: rcpt@example.org\r\n\
         Subject: Test spam mail (GTUBE)\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <gtube-live@example.com>\r\n\r\n{head}{tail}\r\n"
    )
    .into_bytes()
}

/// A 10 KB ham message with the fields a real one has.
pub fn ham_10k() -> Vec<u8> {
    let mut msg =
        b"From: Alice Example <alice@example.com>\r\nTo: Bob Example <bob@example.org>\r\n\
        Subject: Minutes of the Thursday meeting\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\
        Message-ID: <ham-live@example.com>\r\nMIME-Version: 1.0\r\n\
        Content-Type: text/plain; charset=us-ascii\r\n\r\nHi Bob,\r\n\r\n"
            .to_vec();
    let mut n = 0;
    while msg.len() < 10_000 {
        n += 1;
        msg.extend_from_slice(
            format!("Item {n}: we went through the budget for the garden project and agreed on the next steps.\r\n")
                .as_bytes(),
        );
    }
    msg.extend_from_slice(b"\r\nAlice\r\n");
    msg
}

/// The 68-byte EICAR test file, kept as hex so that this source file is not itself a test virus
/// for whatever scanner looks at the repository.
const EICAR_HEX: &str = "58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d\
    5354414e444152442d414e544956495255532d544553542d46494c452124482b482a";

pub fn eicar() -> Vec<u8> {
    (0..EICAR_HEX.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&EICAR_HEX[i..i + 2], 16).ok())
        .collect()
}

/// A fake server on 127.0.0.1:0, for fault injection only: accepts one connection and hands it
/// to `serve`.
pub fn fault_server(
    serve: impl FnOnce(TcpStream) + Send + 'static,
) -> (ServerAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = ServerAddr::Tcp(listener.local_addr().expect("addr").to_string());
    let handle = thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            serve(stream);
        }
    });
    (addr, handle)
}

/// The address of a server of the real stack, from `var` (printed by `scripts/mailstack env`);
/// fails, it does not skip, when the stack's environment is missing.
pub fn stack_server(var: &str) -> ServerAddr {
    let Ok(addr) = std::env::var(var) else {
        panic!(
            "{var} is not set: start the real servers with MAILSTACK_RSPAMD=1 scripts/mailstack up DIR, then `set -a; eval \"$(scripts/mailstack env DIR)\"; set +a` (scripts/test does this)"
        );
    };
    addr.parse().unwrap_or_else(|e| panic!("{var}: {e}"))
}

/// One network-fault suite, run against every scanner client's entry point (spamd::check,
/// clamd::scan, rspamd::check and their pings): a refused connection, a server that hangs, one
/// that never reads, a slow drip, a close before or in the middle of the reply, garbage, an
/// oversized reply and an early error reply. What differs between the clients (their good reply,
/// how they word a broken one) is in [`clients`]; every client must pass every fault.
mod faults {
    use super::super::{clamd, rspamd, spamd};
    use super::*;
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    /// A scanner client as the fault suite sees it.
    struct Client {
        name: &'static str,
        /// The entry point on a message, with a 1 s connect timeout; Ok is any verdict.
        check: fn(&ServerAddr, &[u8], Instant) -> Result<(), String>,
        ping: fn(&ServerAddr, Duration, Instant) -> Result<(), String>,
        /// Reads the whole request, as the real server would before answering.
        read_request: fn(&mut TcpStream),
        /// A complete good reply, for the drip.
        reply: Vec<u8>,
        /// Between two bytes of the drip: slow enough that the reply cannot finish in time.
        drip_every: Duration,
        /// The bytes a server sends before it closes mid-reply, and what the error says.
        truncated: (Vec<u8>, &'static str),
        /// What a confused server sends, and what the error says.
        garbage: (&'static [u8], &'static str),
        /// Whether the client sees garbage at once, while the server keeps the connection open
        /// (spamd's and clamd's clients read their reply to the end before they parse it).
        garbage_at_once: bool,
        /// What comes before megabytes of junk in an oversized reply, and what the error says.
        oversized: (&'static [u8], &'static str),
        /// A server that answers with an error before reading the message, then closes: the
        /// reply and how the error ends (unless a reset lost it: then it is our write error).
        early: Option<(&'static [u8], &'static str)>,
    }

    fn cut(reply: &[u8], n: usize) -> Vec<u8> {
        reply[..reply.len() - n].to_vec()
    }

    fn clients() -> Vec<Client> {
        let gtube_report = spamd::tests::GTUBE_REPORT.concat();
        vec![
            Client {
                name: "spamd",
                check: |a, m, d| {
                    spamd::check(a, m, None, Duration::from_secs(1), d, None).map(|_| ())
                },
                ping: spamd::ping,
                read_request: |s| {
                    let _ = spamd::tests::read_request(s);
                },
                truncated: (cut(&gtube_report, 40), "truncated reply: got"),
                reply: gtube_report,
                drip_every: Duration::from_millis(20),
                garbage: (
                    b"220 smtp.example ESMTP ready\r\n",
                    "malformed reply line: \"220 smtp.example ESMTP ready\"",
                ),
                garbage_at_once: false,
                oversized: (
                    b"SPAMD/1.1 0 EX_OK\r\nContent-length: 99999999\r\nSpam: False ; 0.0 / 5.0\r\n\r\n",
                    "reply larger than 1048576 bytes",
                ),
                early: Some((
                    spamd::tests::BAD_HEADER,
                    ": SPAMD/1.0 76 Bad header line: (header not in 'Name: value' format)",
                )),
            },
            Client {
                name: "clamd",
                check: |a, m, d| {
                    clamd::scan(a, &mut &m[..], Duration::from_secs(1), d).map(|_| ())
                },
                ping: clamd::ping,
                read_request: |s| {
                    let _ = clamd::tests::read_instream(s);
                },
                reply: clamd::tests::OK.to_vec(),
                drip_every: Duration::from_millis(100),
                truncated: (cut(clamd::tests::OK, 2), "truncated reply \"stream: O\""),
                garbage: (b"SSH-2.0-OpenSSH_9.2\r\n\0", "unexpected reply"),
                garbage_at_once: false,
                oversized: (b"stream: ", "reply larger than 65536 bytes while reading the reply"),
                early: None, // clamd's early reply (size limit) is a verdict: see clamd.rs
            },
            Client {
                name: "rspamd",
                check: |a, m, d| {
                    let env = rspamd::Envelope {
                        from: "alice@example.com",
                        rcpts: &[],
                        hostname: "",
                        queue_id: None,
                        user: None,
                    };
                    rspamd::check(a, m, &env, None, Duration::from_secs(1), d).map(|_| ())
                },
                ping: rspamd::ping,
                read_request: |s| {
                    let _ = rspamd::tests::read_request(s);
                },
                reply: rspamd::tests::HAM.to_vec(),
                drip_every: Duration::from_millis(20),
                truncated: (
                    cut(rspamd::tests::HAM, 40),
                    "truncated reply: got 1287 of 1327 body bytes",
                ),
                garbage: (
                    b"SPAMD/1.0 76 Bad header line: (POST)\r\n",
                    "malformed reply: \"SPAMD/1.0 76",
                ),
                garbage_at_once: true,
                oversized: (
                    b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n",
                    "reply larger than 1048576 bytes",
                ),
                early: Some((rspamd::tests::UNAUTHORIZED, ": HTTP/1.1 401 Unauthorized")),
            },
        ]
    }

    const MSG: &[u8] = b"Subject: hi\r\n\r\nhello\r\n";

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    /// Runs `fault` against every client, each with a fresh fake server from `serve`, and
    /// names the client in any failure.
    fn for_every_client(fault: impl Fn(&Client)) {
        for c in clients() {
            println!("{}", c.name);
            fault(&c);
        }
    }

    fn assert_on_time(name: &str, deadline: Instant) {
        let late = Instant::now().saturating_duration_since(deadline);
        assert!(
            late < Duration::from_millis(100),
            "{name}: returned {late:?} after the deadline"
        );
    }

    #[test]
    fn refused_connection_names_the_server() {
        for_every_client(|c| {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("bind");
            let addr = ServerAddr::Tcp(format!("127.0.0.1:{port}"));
            let want = format!("{} 127.0.0.1:{port}: connection refused", c.name);
            assert_eq!((c.check)(&addr, MSG, soon()), Err(want.clone()));
            assert_eq!((c.ping)(&addr, Duration::from_secs(1), soon()), Err(want));
        });
    }

    #[test]
    fn a_hanging_server_is_abandoned_at_the_deadline() {
        for_every_client(|c| {
            let read = c.read_request;
            let (addr, server) = fault_server(move |mut s| {
                read(&mut s);
                thread::sleep(Duration::from_secs(1)); // never answers in time
            });
            let deadline = Instant::now() + Duration::from_millis(500);
            let e = (c.check)(&addr, MSG, deadline).expect_err("hang");
            assert_on_time(c.name, deadline);
            assert!(
                e.ends_with(": timed out after 500ms while reading the reply"),
                "{e}"
            );
            server.join().expect("server");
        });
    }

    #[test]
    fn a_server_that_stops_reading_is_abandoned_at_the_deadline() {
        let big = vec![b'a'; 64 << 20];
        for_every_client(|c| {
            let (addr, server) = fault_server(|s| {
                thread::sleep(Duration::from_secs(1)); // never reads: our writes block
                drop(s);
            });
            let deadline = Instant::now() + Duration::from_millis(400);
            let e = (c.check)(&addr, &big, deadline).expect_err("stuck");
            assert_on_time(c.name, deadline);
            assert!(
                e.contains("timed out after 400ms while sending the message"),
                "{e}"
            );
            server.join().expect("server");
        });
    }

    #[test]
    fn a_slow_drip_is_abandoned_at_the_deadline() {
        for_every_client(|c| {
            let (read, reply, every) = (c.read_request, c.reply.clone(), c.drip_every);
            let (addr, server) = fault_server(move |mut s| {
                read(&mut s);
                for b in reply {
                    if s.write_all(&[b]).is_err() {
                        return;
                    }
                    thread::sleep(every);
                }
            });
            let deadline = Instant::now() + Duration::from_millis(400);
            let e = (c.check)(&addr, MSG, deadline).expect_err("drip");
            assert_on_time(c.name, deadline);
            assert!(e.contains("timed out after"), "{e}");
            server.join().expect("server");
        });
    }

    #[test]
    fn a_close_mid_reply_is_an_error() {
        for_every_client(|c| {
            let (read, part) = (c.read_request, c.truncated.0.clone());
            let (addr, server) = fault_server(move |mut s| {
                read(&mut s);
                let _ = s.write_all(&part);
            });
            let e = (c.check)(&addr, MSG, soon()).expect_err("truncated");
            assert!(e.contains(c.truncated.1), "{e}");
            server.join().expect("server");
        });
    }

    #[test]
    fn a_close_without_reply_is_an_error() {
        for_every_client(|c| {
            let read = c.read_request;
            let (addr, server) = fault_server(move |mut s| read(&mut s));
            let e = (c.check)(&addr, MSG, soon()).expect_err("nothing");
            assert!(
                e.ends_with(": closed the connection without a reply"),
                "{e}"
            );
            server.join().expect("server");
        });
    }

    #[test]
    fn garbage_from_the_server_is_an_error() {
        for_every_client(|c| {
            let (read, garbage, at_once) = (c.read_request, c.garbage.0, c.garbage_at_once);
            let (addr, server) = fault_server(move |mut s| {
                read(&mut s);
                let _ = s.write_all(garbage);
                if at_once {
                    thread::sleep(Duration::from_secs(1)); // and keeps the connection open
                }
            });
            let start = Instant::now();
            let e = (c.check)(&addr, MSG, soon()).expect_err("garbage");
            assert!(e.contains(c.garbage.1), "{e}");
            if at_once {
                assert!(
                    start.elapsed() < Duration::from_millis(500),
                    "{}: {:?}",
                    c.name,
                    start.elapsed()
                );
            }
            server.join().expect("server");
        });
    }

    #[test]
    fn an_oversized_reply_is_cut_off() {
        for_every_client(|c| {
            let (read, head) = (c.read_request, c.oversized.0);
            let (addr, server) = fault_server(move |mut s| {
                read(&mut s);
                let _ = s.write_all(head);
                let junk = vec![b' '; 64 * 1024];
                for _ in 0..40 {
                    if s.write_all(&junk).is_err() {
                        return;
                    }
                }
            });
            let e = (c.check)(&addr, MSG, soon()).expect_err("too big");
            assert!(e.contains(c.oversized.1), "{e}");
            server.join().expect("server");
        });
    }

    #[test]
    fn an_early_error_reply_wins_over_our_write_error() {
        let big = vec![b'a'; 8 << 20];
        for_every_client(|c| {
            let Some((reply, ending)) = c.early else {
                return;
            };
            let (addr, server) = fault_server(move |mut s| {
                let mut head = [0u8; 256];
                let _ = s.read(&mut head);
                let _ = s.write_all(reply);
                let _ = s.shutdown(std::net::Shutdown::Both);
            });
            let e = (c.check)(&addr, &big, soon()).expect_err("rejected");
            // On TCP a reset may discard the reply; then the write error is what we can report.
            assert!(
                e.ends_with(ending) || e.contains("while sending the message"),
                "{e}"
            );
            server.join().expect("server");
        });
    }
}
