//! The LMTP courier (RFC 2033): hands a copy of the message to an LMTP server (`[reinject]
//! method = "lmtp:unix:/run/dovecot/lmtp"` or `"lmtp:[127.0.0.1]:24"`), e.g. Dovecot's final
//! delivery into the mailboxes. The wire is SMTP's ([`super::smtp_wire`]): LHLO `[general]
//! hostname` instead of EHLO (no HELO fallback), MAIL/RCPT pipelined when offered, DATA with
//! CRLF and dot-stuffing, under one deadline (`[reinject] timeout`), over TCP or a unix socket.
//!
//! What differs: after the final `.` the server gives ONE REPLY PER ACCEPTED RECIPIENT, in RCPT
//! order. The rules (before DATA they are SMTP's: a 4xx to a RCPT resets and retries the whole
//! copy, 5xx to some RCPTs are refusals, to all a hard failure):
//! - 2xx: delivered to that recipient. The first 2xx read is the point of no return: from then
//!   on the run exits 0 for this copy, whatever comes after (never deliver twice);
//! - 5xx: a [`Refusal`] (the run's DSN to the sender covers it), if at least one got 2xx;
//! - 4xx while another recipient got 2xx: the MTA cannot be told per recipient (Postfix's pipe
//!   gets one exit code per run), and a 75 would deliver the others twice. So the recipient is
//!   returned as a [`Refusal`] whose text says it was a temporary failure: logged loudly and in
//!   our DSN to the sender as failed, never lost silently. `pipescan_destination_recipient_limit
//!   = 1` avoids the mix altogether;
//! - no 2xx at all: any 4xx (or anything but 2xx/5xx) is 75, nothing delivered; all 5xx is a
//!   hard failure (`on_hard_failure`);
//! - the connection lost, the deadline reached or garbage before every reply was read: the
//!   recipients whose reply was not read are unknown (the server may have delivered to them). If
//!   no 2xx was read, 75: a duplicate is preferred to a loss. If one was, the run is past the
//!   point of no return: the unknown ones are logged loudly and returned as [`Refusal`]s saying
//!   they may or may not have been delivered (the DSN tells the sender; a retry would certainly
//!   duplicate the confirmed ones).

use crate::act::courier::smtp_wire::{self as smtp_wire, Job, Trouble, WireCourier, write_data};
#[cfg(test)]
use crate::act::courier::traits::Courier;
use crate::act::courier::traits::Refusal;
use crate::config::delivery::HardFailure;
use crate::outcome::Failure;
use crate::scan::wire::{self, ServerAddr};
use std::time::{Duration, Instant};

/// The LMTP courier: [`WireCourier`] with this protocol's conversation. Servers in failover
/// order (`host:port` or a socket path), our LHLO name, the time one delivery may take,
/// and what a hard refusal becomes.
pub fn courier(
    servers: &[String],
    helo: &str,
    timeout: Duration,
    on_hard_failure: HardFailure,
) -> WireCourier {
    WireCourier::new(
        "LMTP",
        "LHLO",
        session,
        servers,
        helo,
        timeout,
        on_hard_failure,
    )
}

/// The recipients the server accepted at RCPT: all but the refused ones (each refusal
/// consumes one occurrence of its address).
fn accepted<'a>(recipients: &'a [String], refused: &[Refusal]) -> Vec<&'a String> {
    let mut left: Vec<&str> = refused.iter().map(|r| r.recipient.as_str()).collect();
    recipients
        .iter()
        .filter(|r| match left.iter().position(|l| *l == r.as_str()) {
            Some(i) => {
                left.remove(i);
                false
            }
            None => true,
        })
        .collect()
}

/// The whole conversation with one server.
fn session(addr: &ServerAddr, job: &Job, deadline: Instant) -> Result<Vec<Refusal>, Trouble> {
    let (mut s, mut refused) = smtp_wire::start(addr, "LHLO", job, deadline)?;
    // From here on, no other server: this one may already hold part of the message.
    write_data(&mut s.conn, job.message).map_err(smtp_wire::after_data)?;
    let rcpts = accepted(job.recipients, &refused);
    let mut delivered = 0;
    let mut hard = Vec::new(); // 5xx after the data
    let mut deferred = Vec::new(); // anything else but 2xx
    let mut lost = None; // (the first recipient without a reply, why)
    for (i, r) in rcpts.iter().enumerate() {
        match s.reply() {
            Ok(reply) if reply.class() == 2 => {
                delivered += 1;
                if delivered == 1 && job.commits {
                    // The point of no return: a stop from now on exits 0.
                    crate::process::delivered();
                }
            }
            Ok(reply) if reply.class() == 5 => hard.push(((*r).clone(), reply.to_string())),
            Ok(reply) => deferred.push(((*r).clone(), reply.to_string())),
            Err(e) => {
                lost = Some((i, wire::describe(&e)));
                break;
            }
        }
    }
    if lost.is_none() {
        s.quit();
    }
    let unknown: Vec<String> = match &lost {
        Some((i, _)) => rcpts[*i..].iter().map(|r| (*r).clone()).collect(),
        None => Vec::new(),
    };
    let list = |v: &[(String, String)]| {
        v.iter()
            .map(|(r, why)| format!("<{r}>: {why}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if delivered == 0 {
        let f = if let Some((_, why)) = &lost {
            Failure::tempfail(
                "4.4.2",
                format!(
                    "{why} after the end of the message was sent, before a reply for {}: it may have been delivered; the MTA retries (a duplicate is preferred to a loss)",
                    unknown
                        .iter()
                        .map(|r| format!("<{r}>"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        } else if !deferred.is_empty() {
            Failure::tempfail(
                "4.3.0",
                format!(
                    "the end of the message: deferred {}, nothing delivered",
                    list(&[deferred, hard].concat())
                ),
            )
        } else {
            smtp_wire::hard(
                job.on_hard_failure,
                format!(
                    "the end of the message: refused every recipient: {}",
                    list(&hard)
                ),
            )
        };
        return Err(Trouble::Final(f));
    }
    for (r, why) in hard {
        refused.push(Refusal {
            recipient: r,
            reply: why,
        });
    }
    for (r, why) in deferred {
        crate::log::warn(&format!(
            "LMTP: <{r}> deferred ({why}) after the message was delivered to other recipients: the MTA cannot retry one recipient, so it is NOT delivered and reported as failed"
        ));
        refused.push(Refusal {
            recipient: r,
            reply: format!(
                "{why} (temporary, but the message was delivered to other recipients: not retried)"
            ),
        });
    }
    if let Some((_, why)) = lost {
        for r in unknown {
            crate::log::warn(&format!(
                "LMTP: no reply for <{r}> after the end of the message ({why}); others were delivered, so no retry: it may or may not have been delivered"
            ));
            refused.push(Refusal {
                recipient: r,
                reply: format!("no reply after the end of the message ({why}): it may or may not have been delivered"),
            });
        }
    }
    Ok(refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Exit;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::thread;

    /// What the fake server does once it has sent its replies to the final dot.
    #[derive(Clone, Copy, PartialEq)]
    enum Then {
        /// Goes on: answers QUIT.
        Quit,
        Close,
        /// Sleeps past every timeout of these tests, then goes.
        Hang,
    }

    const LHLO: &str = "250-fake.example\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n";

    /// One LMTP session like Dovecot's: the RCPT reply from `rcpt(address)`, after the content
    /// `after_dot` (the per-recipient replies), then `then`. Returns every byte received.
    fn serve(
        mut s: impl Read + Write,
        rcpt: fn(&str) -> &'static str,
        after_dot: &'static str,
        then: Then,
    ) -> Vec<u8> {
        let mut got = Vec::new();
        let mut pos = 0;
        let mut in_data = false;
        let mut buf = [0u8; 65536];
        if s.write_all(b"220 fake LMTP ready\r\n").is_err() {
            return got;
        }
        loop {
            let n = match s.read(&mut buf) {
                Ok(0) | Err(_) => return got,
                Ok(n) => n,
            };
            got.extend_from_slice(&buf[..n]);
            loop {
                let rest = &got[pos..];
                if in_data {
                    let Some(i) = rest.windows(5).position(|w| w == b"\r\n.\r\n") else {
                        break;
                    };
                    pos += i + 5;
                    in_data = false;
                    if s.write_all(after_dot.as_bytes()).is_err() {
                        return got;
                    }
                    match then {
                        Then::Quit => continue,
                        Then::Close => return got,
                        Then::Hang => {
                            thread::sleep(Duration::from_secs(4));
                            return got;
                        }
                    }
                }
                let Some(i) = rest.windows(2).position(|w| w == b"\r\n") else {
                    break;
                };
                let line = String::from_utf8_lossy(&rest[..i]).into_owned();
                pos += i + 2;
                let answer = match line.as_str() {
                    l if l.starts_with("LHLO ") => LHLO,
                    l if l.starts_with("MAIL FROM:") => "250 2.1.0 OK\r\n",
                    l if l.starts_with("RCPT TO:") => rcpt(&l[8..]),
                    "DATA" => {
                        in_data = true;
                        "354 OK\r\n"
                    }
                    "RSET" => "250 2.0.0 OK\r\n",
                    "QUIT" => {
                        let _ = s.write_all(b"221 2.0.0 Bye\r\n");
                        return got;
                    }
                    _ => "500 5.5.1 Unknown command\r\n",
                };
                if s.write_all(answer.as_bytes()).is_err() {
                    return got;
                }
            }
        }
    }

    fn fake(
        rcpt: fn(&str) -> &'static str,
        after_dot: &'static str,
        then: Then,
    ) -> (String, thread::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let h = thread::spawn(move || serve(l.accept().unwrap().0, rcpt, after_dot, then));
        (addr, h)
    }

    fn ok(_: &str) -> &'static str {
        "250 2.1.5 OK\r\n"
    }

    fn courier(addr: &str, hard: HardFailure) -> WireCourier {
        super::courier(
            &[addr.to_string()],
            "mx.example",
            Duration::from_secs(1),
            hard,
        )
    }

    fn deliver(c: &WireCourier, rcpts: &[&str], msg: &[u8]) -> Result<Vec<Refusal>, Failure> {
        let rcpts: Vec<String> = rcpts.iter().map(|s| s.to_string()).collect();
        c.deliver(
            "s@x",
            &rcpts,
            crate::act::courier::traits::Origin::NONE,
            &mut |w| {
                w.write_all(msg)?;
                Ok(msg.len() as u64)
            },
        )
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn every_recipient_250_is_delivered_with_lhlo_pipelining_and_exact_bytes() {
        let (addr, h) = fake(
            ok,
            "250 2.0.0 <a@x> saved\r\n250 2.0.0 <b@x> saved\r\n",
            Then::Quit,
        );
        let msg = b"Subject: t\n\n.dot\nbin \xff\r\nend";
        assert_eq!(
            deliver(&courier(&addr, HardFailure::Tempfail), &["a@x", "b@x"], msg),
            Ok(vec![])
        );
        let got = text(&h.join().unwrap());
        assert_eq!(
            got,
            "LHLO mx.example\r\nMAIL FROM:<s@x> BODY=8BITMIME\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nSubject: t\r\n\r\n..dot\r\nbin \u{fffd}\r\nend\r\n.\r\nQUIT\r\n"
        );
    }

    #[test]
    fn mixed_250_550_after_data_is_a_refusal_of_the_550_one() {
        let (addr, _h) = fake(
            ok,
            "250 2.0.0 <a@x> saved\r\n550 5.1.1 <b@x> User doesn't exist\r\n",
            Then::Quit,
        );
        let r = deliver(
            &courier(&addr, HardFailure::Tempfail),
            &["a@x", "b@x"],
            b"m\n",
        )
        .unwrap();
        assert_eq!(
            r,
            vec![Refusal {
                recipient: "b@x".into(),
                reply: "550 5.1.1 <b@x> User doesn't exist".into()
            }]
        );
    }

    #[test]
    fn a_5xx_at_rcpt_gets_no_reply_after_data_and_is_a_refusal() {
        fn rcpt(a: &str) -> &'static str {
            if a.contains("nobody") {
                "550 5.1.1 <nobody@x> User doesn't exist\r\n"
            } else {
                "250 2.1.5 OK\r\n"
            }
        }
        // One reply only, for the one accepted: a second read would hang to the deadline.
        let (addr, h) = fake(rcpt, "250 2.0.0 <a@x> saved\r\n", Then::Quit);
        let t = Instant::now();
        let r = deliver(
            &courier(&addr, HardFailure::Tempfail),
            &["nobody@x", "a@x"],
            b"m\n",
        )
        .unwrap();
        assert!(t.elapsed() < Duration::from_millis(900));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].recipient, "nobody@x");
        assert!(text(&h.join().unwrap()).ends_with("QUIT\r\n"));
    }

    #[test]
    fn mixed_250_452_is_delivered_and_the_452_one_reported_as_failed_never_retried() {
        let (addr, _h) = fake(
            ok,
            "452 4.2.2 <a@x> Quota exceeded (mailbox for user is full)\r\n250 2.0.0 <b@x> saved\r\n",
            Then::Quit,
        );
        let r = deliver(
            &courier(&addr, HardFailure::Tempfail),
            &["a@x", "b@x"],
            b"m\n",
        )
        .unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].recipient, "a@x");
        assert!(r[0].reply.starts_with("452 4.2.2"), "{}", r[0].reply);
        assert!(r[0].reply.contains("not retried"), "{}", r[0].reply);
    }

    #[test]
    fn no_2xx_after_data_is_75_for_any_4xx_and_hard_for_all_5xx() {
        let (addr, _h) = fake(ok, "452 4.2.2 full\r\n550 5.1.1 no\r\n", Then::Quit);
        let f = deliver(
            &courier(&addr, HardFailure::Bounce),
            &["a@x", "b@x"],
            b"m\n",
        )
        .unwrap_err();
        assert_eq!(f.exit, Exit::TempFail);
        assert!(f.reason.contains("nothing delivered"), "{}", f.reason);
        let (addr, _h) = fake(ok, "452 4.2.2 full\r\n452 4.2.2 full\r\n", Then::Quit);
        let f = deliver(
            &courier(&addr, HardFailure::Bounce),
            &["a@x", "b@x"],
            b"m\n",
        )
        .unwrap_err();
        assert_eq!(f.exit, Exit::TempFail);
        let (addr, _h) = fake(ok, "550 5.1.1 no\r\n554 5.6.0 bad\r\n", Then::Quit);
        let f = deliver(
            &courier(&addr, HardFailure::Bounce),
            &["a@x", "b@x"],
            b"m\n",
        )
        .unwrap_err();
        assert_eq!(f.exit, Exit::Unavailable);
        assert!(f.reason.contains("refused every recipient"), "{}", f.reason);
        let (addr, _h) = fake(ok, "550 5.1.1 no\r\n", Then::Quit);
        let f = deliver(&courier(&addr, HardFailure::Tempfail), &["a@x"], b"m\n").unwrap_err();
        assert_eq!(f.exit, Exit::TempFail);
    }

    #[test]
    fn a_connection_lost_after_the_first_of_two_replies_keeps_the_delivery() {
        let (addr, _h) = fake(ok, "250 2.0.0 <a@x> saved\r\n", Then::Close);
        let r = deliver(
            &courier(&addr, HardFailure::Tempfail),
            &["a@x", "b@x"],
            b"m\n",
        )
        .unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].recipient, "b@x");
        assert!(r[0].reply.contains("may or may not"), "{}", r[0].reply);
        // Lost before any reply: the server may have it all, but nothing is confirmed: 75.
        let (addr, _h) = fake(ok, "", Then::Close);
        let f = deliver(
            &courier(&addr, HardFailure::Bounce),
            &["a@x", "b@x"],
            b"m\n",
        )
        .unwrap_err();
        assert_eq!(f.exit, Exit::TempFail);
        assert!(f.reason.contains("may have been delivered"), "{}", f.reason);
        assert!(f.reason.contains("<a@x>, <b@x>"), "{}", f.reason);
    }

    #[test]
    fn garbage_after_data_is_an_unknown_reply() {
        let (addr, _h) = fake(ok, "250 2.0.0 saved\r\nHTTP/1.1 200 OK\r\n", Then::Quit);
        let r = deliver(
            &courier(&addr, HardFailure::Tempfail),
            &["a@x", "b@x"],
            b"m\n",
        )
        .unwrap();
        assert_eq!(r.len(), 1);
        assert!(r[0].reply.contains("garbage reply"), "{}", r[0].reply);
        let (addr, _h) = fake(ok, "ok\r\n", Then::Quit);
        let f = deliver(&courier(&addr, HardFailure::Bounce), &["a@x"], b"m\n").unwrap_err();
        assert_eq!(f.exit, Exit::TempFail);
        assert!(f.reason.contains("garbage reply"), "{}", f.reason);
        // Garbage in the greeting: the server, not the message, is the trouble: 75.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let _h = thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let _ = s.write_all(b"SSH-2.0-OpenSSH\r\n");
            thread::sleep(Duration::from_millis(200));
        });
        let f = deliver(&courier(&addr, HardFailure::Bounce), &["a@x"], b"m\n").unwrap_err();
        assert_eq!(f.exit, Exit::TempFail);
        assert!(f.reason.starts_with("LMTP server"), "{}", f.reason);
    }

    #[test]
    fn a_hang_after_data_is_left_at_the_deadline() {
        let (addr, _h) = fake(ok, "", Then::Hang);
        let t = Instant::now();
        let f = deliver(&courier(&addr, HardFailure::Bounce), &["a@x"], b"m\n").unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        assert_eq!(f.exit, Exit::TempFail);
        let (addr, _h) = fake(ok, "250 2.0.0 saved\r\n", Then::Hang);
        let r = deliver(
            &courier(&addr, HardFailure::Bounce),
            &["a@x", "b@x"],
            b"m\n",
        )
        .unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].recipient, "b@x");
    }

    #[test]
    fn a_4xx_rcpt_resets_and_nothing_is_sent() {
        fn rcpt(a: &str) -> &'static str {
            if a.contains('b') {
                "451 4.3.0 try later\r\n"
            } else {
                "250 2.1.5 OK\r\n"
            }
        }
        let (addr, h) = fake(rcpt, "", Then::Quit);
        let f = deliver(
            &courier(&addr, HardFailure::Bounce),
            &["a@x", "b@x"],
            b"m\n",
        )
        .unwrap_err();
        assert_eq!(f.exit, Exit::TempFail);
        let got = text(&h.join().unwrap());
        assert!(!got.contains("DATA"), "{got}");
        assert!(got.contains("RSET"), "{got}");
    }

    #[test]
    fn a_unix_socket_server_is_reached() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lmtp");
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let h = thread::spawn(move || {
            serve(l.accept().unwrap().0, ok, "250 2.0.0 saved\r\n", Then::Quit)
        });
        let c = courier(path.to_str().unwrap(), HardFailure::Tempfail);
        assert_eq!(deliver(&c, &["a@x"], b"m\n"), Ok(vec![]));
        assert!(text(&h.join().unwrap()).starts_with("LHLO mx.example\r\n"));
        assert_eq!(
            c.describe("", &["a@x".into()]),
            format!(
                "reinject lmtp {} (in this order), LHLO mx.example, MAIL FROM:<> RCPT TO:<a@x>; TLS: {} none",
                path.display(),
                path.display()
            )
        );
    }
}
