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
//! byte exact) and dot-stuffing, the final `.`, QUIT. XFORWARD of the original client before
//! MAIL FROM when the server lists it; STARTTLS as `[reinject] tls` says (`tls.rs`: none on
//! loopback by default, a verified certificate for a remote relay, never a plaintext fallback
//! under `verify`).
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

#[cfg(test)]
use crate::act::courier::smtp_wire::dot_stuffed;
use crate::act::courier::smtp_wire::{
    self as smtp_wire, Job, Trouble, WireCourier, verdict, write_data,
};
#[cfg(test)]
use crate::act::courier::traits::Courier;
use crate::act::courier::traits::Refusal;
use crate::config::delivery::HardFailure;
use crate::outcome::Failure;
use crate::scan::wire::{self, ServerAddr};
#[cfg(test)]
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// The SMTP courier: [`WireCourier`] with this protocol's conversation. Servers in failover
/// order (`host:port`), our EHLO name, the time one delivery may take,
/// and what a hard refusal becomes.
pub fn courier(
    servers: &[String],
    helo: &str,
    timeout: Duration,
    on_hard_failure: HardFailure,
) -> WireCourier {
    WireCourier::new(
        "SMTP",
        "EHLO",
        session,
        servers,
        helo,
        timeout,
        on_hard_failure,
    )
}

/// The whole conversation with one server.
fn session(addr: &ServerAddr, job: &Job, deadline: Instant) -> Result<Vec<Refusal>, Trouble> {
    let (mut s, refused) = smtp_wire::start(addr, "EHLO", job, deadline)?;
    // From here on, no other server: this one may already hold part of the message.
    write_data(&mut s.conn, job.message).map_err(smtp_wire::after_data)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::act::courier::tls::Tls;
    use crate::act::courier::traits::Origin;
    use crate::config::delivery::TlsLevel;
    use crate::envelope::Client;
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
            l if l.starts_with("XFORWARD") => Say("250 2.0.0 Ok\r\n"),
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

    fn courier(servers: &[&str], hard: HardFailure) -> WireCourier {
        let servers: Vec<String> = servers.iter().map(|s| s.to_string()).collect();
        super::courier(&servers, "mx.example", Duration::from_secs(1), hard)
    }

    fn deliver(
        c: &WireCourier,
        sender: &str,
        rcpts: &[&str],
        msg: &[u8],
    ) -> Result<Vec<Refusal>, Failure> {
        deliver_from(c, &Client::default(), sender, rcpts, msg)
    }

    fn deliver_from(
        c: &WireCourier,
        client: &Client,
        sender: &str,
        rcpts: &[&str],
        msg: &[u8],
    ) -> Result<Vec<Refusal>, Failure> {
        let env = from(client);
        deliver_origin(c, Origin::of(&env), sender, rcpts, msg)
    }

    fn deliver_origin(
        c: &WireCourier,
        origin: Origin,
        sender: &str,
        rcpts: &[&str],
        msg: &[u8],
    ) -> Result<Vec<Refusal>, Failure> {
        let rcpts: Vec<String> = rcpts.iter().map(|s| s.to_string()).collect();
        c.deliver(sender, &rcpts, origin, &mut |w| {
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

    /// The envelope s@x -> a@x received from `client`.
    fn from(client: &Client) -> crate::envelope::Envelope {
        crate::envelope::Envelope::new("s@x".into(), vec!["a@x".into()])
            .unwrap()
            .with_client(client.clone())
    }

    /// The client of the Postfix pipe(8) line, as `--client-address` & co. give it.
    fn remote_client() -> Client {
        Client {
            address: Some("192.0.2.7".parse().unwrap()),
            name: Some("mail.example.net".into()),
            helo: Some("helo+=x".into()),
            protocol: Some("ESMTP".into()),
            sasl_username: None,
        }
    }

    const EHLO_XF: &str = "250-fake.example\r\n250-PIPELINING\r\n250-XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT\r\n250 8BITMIME\r\n";

    #[test]
    fn xforward_names_the_original_client_before_mail_from_in_the_same_write() {
        let (addr, server) = fake(
            Say("220 fake\r\n"),
            postfix_like(EHLO_XF, ok_rcpt, Say("354 go\r\n"), Say("250 ok\r\n")),
        );
        let c = courier(&[&addr], HardFailure::Tempfail);
        let client = remote_client();
        let env = from(&client).with_queue_id(Some("4XyZ1".into()));
        let r = deliver_origin(&c, Origin::of(&env), "s@x", &["a@x"], b"m\n");
        assert_eq!(r, Ok(vec![]));
        assert_eq!(
            text(&server.join().unwrap()),
            "EHLO mx.example\r\n\
             XFORWARD NAME=mail.example.net ADDR=192.0.2.7\r\n\
             XFORWARD PROTO=ESMTP HELO=helo+2B+3Dx IDENT=4XyZ1\r\n\
             MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nDATA\r\nm\r\n.\r\nQUIT\r\n"
        );
    }

    #[test]
    fn xforward_sends_only_what_the_server_lists_and_we_know() {
        let ehlo = "250-fake\r\n250-XFORWARD ADDR helo\r\n250 PIPELINING\r\n";
        let (addr, server) = fake(
            Say("220 fake\r\n"),
            postfix_like(ehlo, ok_rcpt, Say("354 go\r\n"), Say("250 ok\r\n")),
        );
        let client = Client {
            address: Some("2001:db8::1".parse().unwrap()),
            name: Some("not a -host".into()),
            ..Client::default()
        };
        let c = courier(&[&addr], HardFailure::Tempfail);
        assert_eq!(
            deliver_from(&c, &client, "s@x", &["a@x"], b"m\n"),
            Ok(vec![])
        );
        let got = text(&server.join().unwrap());
        assert!(
            got.starts_with("EHLO mx.example\r\nXFORWARD ADDR=IPV6:2001:db8::1\r\nMAIL FROM:"),
            "{got}"
        );
        assert_eq!(got.matches("XFORWARD").count(), 1, "{got}");
    }

    #[test]
    fn no_xforward_without_the_keyword_or_without_a_client() {
        for (ehlo, client) in [(EHLO, remote_client()), (EHLO_XF, Client::default())] {
            let (addr, server) = fake(
                Say("220 fake\r\n"),
                postfix_like(ehlo, ok_rcpt, Say("354 go\r\n"), Say("250 ok\r\n")),
            );
            let c = courier(&[&addr], HardFailure::Tempfail);
            assert_eq!(
                deliver_from(&c, &client, "s@x", &["a@x"], b"m\n"),
                Ok(vec![])
            );
            let got = text(&server.join().unwrap());
            assert!(
                got.starts_with("EHLO mx.example\r\nMAIL FROM:<s@x>\r\n"),
                "{got}"
            );
        }
    }

    #[test]
    fn envid_and_orcpt_go_on_only_to_a_server_offering_dsn() {
        let client = Client::default();
        let (env, _) = from(&client).with_envid(Some("QQ31 4+=x"));
        let (env, _) = env.with_original_recipients(vec!["Old+1@x".into()]);
        let origin = Origin::of(&env);
        let with_dsn = "250-fake\r\n250-PIPELINING\r\n250 DSN\r\n";
        for (ehlo, mail) in [
            (
                with_dsn,
                "MAIL FROM:<s@x> ENVID=QQ31+204+2B+3Dx\r\nRCPT TO:<a@x> ORCPT=rfc822;Old+2B1@x\r\n",
            ),
            (EHLO, "MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\n"),
        ] {
            let (addr, server) = fake(
                Say("220 fake\r\n"),
                postfix_like(ehlo, ok_rcpt, Say("354 go\r\n"), Say("250 ok\r\n")),
            );
            let c = courier(&[&addr], HardFailure::Tempfail);
            assert_eq!(
                deliver_origin(&c, origin, "s@x", &["a@x"], b"m\n"),
                Ok(vec![])
            );
            let got = text(&server.join().unwrap());
            assert!(got.contains(&format!("\r\n{mail}DATA\r\n")), "{got}");
        }
    }

    #[test]
    fn a_refused_xforward_costs_only_the_log_the_message_is_delivered() {
        // Not pipelined, so each XFORWARD waits for its own reply.
        let ehlo = "250-fake\r\n250 XFORWARD NAME ADDR PROTO HELO\r\n";
        let (addr, server) = fake(Say("220 fake\r\n"), move |l: &str| match l {
            l if l.starts_with("EHLO") => Say(ehlo),
            l if l.starts_with("XFORWARD") => {
                Say("550 5.7.0 Error: insufficient authorization\r\n")
            }
            "DATA" => Say("354 go\r\n"),
            "QUIT" => Say("221 bye\r\n"),
            _ => Say("250 ok\r\n"),
        });
        let c = courier(&[&addr], HardFailure::Bounce);
        assert_eq!(
            deliver_from(&c, &remote_client(), "s@x", &["a@x"], b"m\n"),
            Ok(vec![])
        );
        let got = text(&server.join().unwrap());
        assert!(
            got.starts_with("EHLO mx.example\r\nXFORWARD NAME=mail.example.net ADDR=192.0.2.7\r\nXFORWARD PROTO=ESMTP HELO=helo+2B+3Dx\r\nMAIL FROM:<s@x>\r\n"),
            "{got}"
        );
        assert!(got.ends_with("m\r\n.\r\nQUIT\r\n"), "{got}");
    }

    #[test]
    fn a_server_hanging_or_closing_at_xforward_delivers_nothing_there() {
        for act in [Hang, Close] {
            let (addr, _server) = fake(Say("220 fake\r\n"), move |l: &str| match l {
                l if l.starts_with("EHLO") => Say(EHLO_XF),
                l if l.starts_with("XFORWARD") => act,
                "DATA" => Say("354 go\r\n"),
                _ => Say("250 ok\r\n"),
            });
            // A close before MAIL was answered: the next server gets the message.
            let (next, next_server) = fake(Say("220 fake\r\n"), good());
            let c = courier(&[&addr, &next], HardFailure::Bounce);
            let t = Instant::now();
            let r = deliver_from(&c, &remote_client(), "s@x", &["a@x"], b"m\n");
            match act {
                Close => {
                    assert_eq!(r, Ok(vec![]));
                    assert!(text(&next_server.join().unwrap()).contains("\r\nm\r\n.\r\n"));
                }
                _ => {
                    // The deadline covers the whole delivery: nothing left for the next one.
                    let f = r.unwrap_err();
                    assert_eq!(f.exit, Exit::TempFail, "{}", f.reason);
                    assert!(f.reason.contains("XFORWARD"), "{}", f.reason);
                    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
                }
            }
        }
    }

    #[test]
    fn xforward_values_are_xtext_and_what_smtpd_would_refuse_is_left_out() {
        use crate::act::courier::smtp_wire::xforward;
        let all = smtp_wire::Xforward::all();
        let mut c = remote_client();
        c.helo = Some("h\u{e9}lo x".into());
        c.protocol = Some("P".repeat(65));
        c.name = Some("1.2.3.4".into());
        let env = from(&c);
        assert_eq!(
            xforward(all, Origin::of(&env)),
            [
                "XFORWARD ADDR=192.0.2.7\r\n",
                "XFORWARD HELO=h+C3+A9lo+20x\r\n"
            ]
        );
        c.address = Some("::ffff:198.51.100.9".parse().unwrap());
        c.name = Some("a_b-c.example".into());
        c.helo = Some("x".repeat(250) + "++");
        let env = from(&c);
        assert_eq!(
            xforward(all, Origin::of(&env)),
            ["XFORWARD NAME=a_b-c.example ADDR=198.51.100.9\r\n"]
        );
        // Our own mail: nothing at all.
        assert!(xforward(all, Origin::NONE).is_empty());
    }

    /// Without pipe(8)'s flag q Postfix passes a quoted local part unquoted: `"a> X"@d` comes
    /// as `a> X@d`. Written into `<...>` as it is, the rest of it would be parameters of MAIL or
    /// RCPT (a recipient `alice+y@evil.example> ORCPT=rfc822;x@our.example`, valid here through
    /// the recipient delimiter, would be relayed to evil.example): such a local part goes out
    /// quoted, one already quoted as it is, and a domain that cannot be written is refused.
    #[test]
    fn envelope_addresses_cannot_smuggle_parameters() {
        let (addr, server) = fake(Say("220 fake\r\n"), good());
        let c = courier(&[&addr], HardFailure::Tempfail);
        let r = deliver(
            &c,
            "x> BODY=8BITMIME@evil.example",
            &[
                "alice+y@evil.example> ORCPT=rfc822;x@our.example",
                "\"b c\"@our.example",
                "a\\b\"c.@our.example",
                "o'k.name+tag@our.example",
            ],
            b"m\n",
        );
        assert_eq!(r, Ok(vec![]));
        let got = text(&server.join().unwrap());
        assert!(
            got.contains(
                "MAIL FROM:<\"x> BODY=8BITMIME\"@evil.example>\r\n\
                 RCPT TO:<\"alice+y@evil.example> ORCPT=rfc822;x\"@our.example>\r\n\
                 RCPT TO:<\"b c\"@our.example>\r\n\
                 RCPT TO:<\"a\\\\b\\\"c.\"@our.example>\r\n\
                 RCPT TO:<o'k.name+tag@our.example>\r\n"
            ),
            "{got}"
        );
        // A domain with white space or angle brackets is no domain: nothing is sent.
        for bad in ["a@evil.example> NOTIFY=NEVER", "a@b c"] {
            let (addr, server) = fake(Say("220 fake\r\n"), good());
            let c = courier(&[&addr], HardFailure::Tempfail);
            let r = deliver(&c, "s@x", &[bad], b"m\n");
            assert!(r.is_err(), "{bad}: {r:?}");
            let got = text(&server.join().unwrap());
            assert!(!got.contains("RCPT"), "{bad}: {got}");
        }
    }

    fn with_tls(c: WireCourier, level: TlsLevel) -> WireCourier {
        c.with_tls(Tls {
            level,
            ..Tls::default()
        })
    }

    #[test]
    fn tls_verify_never_falls_back_to_plaintext() {
        // No STARTTLS offered; STARTTLS refused; a server that talks on after its 220 (the
        // STARTTLS command injection); a 220 then no TLS: none gets MAIL FROM.
        let starttls_ehlo = "250-fake\r\n250-PIPELINING\r\n250 STARTTLS\r\n";
        let cases: [(&'static str, Act, &str); 4] = [
            (EHLO, Say("220 go\r\n"), "does not offer STARTTLS"),
            (
                starttls_ehlo,
                Say("454 4.7.0 TLS not available\r\n"),
                "STARTTLS: 454",
            ),
            (
                starttls_ehlo,
                Say("220 go\r\n250 injected\r\n"),
                "a command injection",
            ),
            // The server never answers the ClientHello: the handshake is bounded by the timeout.
            (starttls_ehlo, Say("220 go\r\n"), "TLS handshake failed"),
        ];
        for (ehlo, answer, why) in cases {
            let (addr, server) = fake(Say("220 fake\r\n"), move |l: &str| match l {
                l if l.starts_with("EHLO") => Say(ehlo),
                "STARTTLS" => answer,
                "QUIT" => Say("221 bye\r\n"),
                _ => Say("250 ok\r\n"),
            });
            let c = with_tls(courier(&[&addr], HardFailure::Bounce), TlsLevel::Verify);
            let f = deliver(&c, "s@x", &["a@x"], b"m\n").unwrap_err();
            assert_eq!(
                (f.exit, f.status),
                (Exit::TempFail, "4.4.1"),
                "{why}: {}",
                f.reason
            );
            assert!(f.reason.contains(why), "{why}: {}", f.reason);
            let got = text(&server.join().unwrap());
            assert!(!got.contains("MAIL"), "{why}: {got}");
        }
    }

    #[test]
    fn tls_may_goes_on_in_plaintext_when_the_server_has_no_starttls() {
        let (addr, server) = fake(Say("220 fake\r\n"), good());
        let c = with_tls(courier(&[&addr], HardFailure::Bounce), TlsLevel::May);
        assert_eq!(deliver(&c, "s@x", &["a@x"], b"m\n"), Ok(vec![]));
        let got = text(&server.join().unwrap());
        assert!(
            got.starts_with("EHLO mx.example\r\nMAIL FROM:<s@x>"),
            "{got}"
        );
        // And auto on loopback is plaintext even when STARTTLS is offered.
        let ehlo = "250-fake\r\n250-STARTTLS\r\n250 PIPELINING\r\n";
        let (addr, server) = fake(
            Say("220 fake\r\n"),
            postfix_like(ehlo, ok_rcpt, Say("354 go\r\n"), Say("250 ok\r\n")),
        );
        let c = with_tls(courier(&[&addr], HardFailure::Bounce), TlsLevel::Auto);
        assert_eq!(deliver(&c, "s@x", &["a@x"], b"m\n"), Ok(vec![]));
        assert!(!text(&server.join().unwrap()).contains("STARTTLS"));
    }

    #[test]
    fn describe_names_the_servers_in_order() {
        let c = courier(&["127.0.0.1:10025", "[::1]:10025"], HardFailure::Tempfail);
        assert_eq!(
            c.describe("", &["a@x".into()]),
            "reinject smtp 127.0.0.1:10025, [::1]:10025 (in this order), EHLO mx.example, MAIL FROM:<> RCPT TO:<a@x>; TLS: 127.0.0.1:10025 none, [::1]:10025 none"
        );
        let c = with_tls(
            courier(
                &["relay.example.org:25", "[127.0.0.1]:10025"],
                HardFailure::Tempfail,
            ),
            TlsLevel::Auto,
        );
        assert!(
            c.describe("", &["a@x".into()])
                .ends_with("; TLS: relay.example.org:25 verify, [127.0.0.1]:10025 unusable"),
            "{}",
            c.describe("", &["a@x".into()])
        );
    }
}
