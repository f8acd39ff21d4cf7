//! rspamd client: one `POST /checkv2` per message, over [`wire::connect`] with the shared HTTP/1.1 reader ([`super::http`]).
//!
//! Contract: [`check`] returns an [`RspamdReport`] only for a complete `200` reply whose JSON
//! carries `score`, `required_score` and `action`; anything else (refused, timed out, closed
//! early, an error status, garbage, an oversized reply) is an `Err` with a sentence for the admin,
//! never a "clean" result.
//!
//! The request carries the envelope the way rspamd's own clients do: `From` (`<>` for the null
//! sender), one `Rcpt` per recipient, `Helo` and `Hostname`, and `Queue-Id`, `User` and
//! `Password` when given. `Pass: all` is never sent: we want rspamd's real verdict, with every
//! rule run. Values with a control character (CR, LF, NUL …) are refused before connecting: they
//! would forge request headers.
//!
//! What rspamd 3.4 answers (checked against Debian 12's package):
//! - `action` is rspamd's decision: "no action", "greylist", "add header", "rewrite subject",
//!   "soft reject", "reject" (sites can define more). `required_score` is the score of the
//!   *reject* action (15 by default), not the "add header" one (6): compare `score` with the
//!   policy's own levels, or use `action`.
//! - GTUBE gives `"is_skipped":true,"score":15.0,"required_score":15.0,"action":"reject"` with
//!   the symbol `GTUBE` at 0 points: the rules did not run, the action was forced. A skipped
//!   result's score is therefore not a sum of rule points.
//! - An empty body is checked as an empty message: "no action", score 0. [`check`] refuses to
//!   send one, so that a spooling bug cannot turn into a clean verdict.
//! - Past `max_message` (50 MiB by default) rspamd resets the connection without a reply.
//! - A wrong or missing controller password gives `HTTP/1.1 401 Unauthorized`; an unknown path
//!   `HTTP/1.1 500 invalid command`.
//! - Replies carry `Content-Length` and `Connection: close`; we also accept a chunked body (a
//!   proxy in between may send one) and stop reading once the body is complete, so a server that
//!   keeps the connection open costs nothing.

use super::http::{complete_len, host_header, read_reply, split_response};
use super::wire::{self, ServerAddr};
use crate::scan::gate::Gate;
use crate::scan::pool::walk_pool;
use crate::scan::scanner::{Job, Scanner, above_max_size};
use crate::verdict::{Kind, Outcome, ScanReport};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::{Duration, Instant};

pub use super::http::MAX_REPLY;

/// rspamd's default `max_message` (50 MiB): past it, a reset connection has a likely cause.
const RSPAMD_DEFAULT_MAX_MESSAGE: usize = 50 << 20;

/// rspamd's verdict on one message.
#[derive(Debug, Clone, PartialEq)]
pub struct RspamdReport {
    /// The message's score (for a skipped message, the score of the forced action).
    pub score: f64,
    /// `required_score`: the score at which rspamd rejects (its "reject" action).
    pub required: f64,
    /// rspamd's decision: "no action", "add header", "rewrite subject", "greylist",
    /// "soft reject", "reject", or a site's own action.
    pub action: String,
    /// True when rspamd skipped the rules (GTUBE, a settings rule, a pre-filter): `action` was
    /// forced and `score` is not a sum of rule points.
    pub is_skipped: bool,
    /// The symbols that fired with their points, sorted by name.
    pub symbols: Vec<(String, f64)>,
}

/// The SMTP envelope as rspamd wants it (request headers).
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// The envelope sender; "" is the null sender, sent as `From: <>`.
    pub from: &'a str,
    /// The envelope recipients, one `Rcpt` header each.
    pub rcpts: &'a [String],
    /// The SMTP client's name as the MTA knows it, sent as `Helo` and `Hostname`; "" when
    /// unknown (neither header is sent).
    pub hostname: &'a str,
    /// The MTA's queue id (`Queue-Id`), for rspamd's log.
    pub queue_id: Option<&'a str>,
    /// The authenticated user (`User`): rspamd then treats the message as outgoing.
    pub user: Option<&'a str>,
}

/// One `POST /checkv2` to one server.
///
/// `password` is the controller password (`Password` header), for a controller or a proxy that
/// wants one; the normal worker needs none. Errors read like
/// "rspamd 127.0.0.1:11333: connection refused" or
/// "rspamd 127.0.0.1:11334: HTTP/1.1 401 Unauthorized".
pub fn check(
    addr: &ServerAddr,
    msg: &[u8],
    env: &Envelope,
    password: Option<&str>,
    connect_timeout: Duration,
    deadline: Instant,
) -> Result<RspamdReport, String> {
    let fail = |text: String| format!("rspamd {addr}: {text}");
    if msg.is_empty() {
        return Err(fail(
            "refusing to check an empty message (rspamd would call it clean)".to_owned(),
        ));
    }
    let head = request_head(addr, msg.len(), env, password).map_err(fail)?;

    let mut conn =
        wire::connect(addr, connect_timeout, deadline).map_err(|e| fail(wire::describe(&e)))?;
    let sent = conn
        .write_all(head.as_bytes())
        .and_then(|()| conn.write_all(msg));
    let (reply, read) = read_reply(&mut conn);
    // Past max_message rspamd resets the connection without a word: say what is likely.
    let hint = |text: String| {
        if msg.len() > RSPAMD_DEFAULT_MAX_MESSAGE && reply.is_empty() {
            format!(
                "{text} (the message has {} bytes: more than rspamd's default max_message of 50 MiB)",
                msg.len()
            )
        } else {
            text
        }
    };
    match (sent, read) {
        (Ok(()), Ok(())) => parse_response(&reply).map_err(|e| fail(hint(e))),
        // A complete reply followed by a reset still says what rspamd decided.
        (Ok(()), Err(e)) => match complete_len(&reply) {
            Ok(Some(_)) => parse_response(&reply).map_err(fail),
            _ => Err(fail(hint(format!(
                "{} while reading the reply",
                wire::describe(&e)
            )))),
        },
        // rspamd may answer an error before reading the whole body, then close: our write
        // fails, but a reply it sent says more than the write error.
        (Err(we), _) => {
            if matches!(complete_len(&reply), Ok(Some(_))) {
                return parse_response(&reply).map_err(fail);
            }
            let text = format!("{} while sending the message", wire::describe(&we));
            if we.kind() == io::ErrorKind::TimedOut {
                Err(fail(text))
            } else {
                Err(fail(hint(text)))
            }
        }
    }
}

/// The request line and headers of a check, or why a value cannot be sent.
fn request_head(
    addr: &ServerAddr,
    len: usize,
    env: &Envelope,
    password: Option<&str>,
) -> Result<String, String> {
    let mut head = format!(
        "POST /checkv2 HTTP/1.1\r\nHost: {}\r\nContent-Length: {len}\r\nConnection: close\r\n",
        host_header(addr)
    );
    let mut add = |name: &str, value: &str| -> Result<(), String> {
        if value.len() > 2048 || value.chars().any(char::is_control) {
            // The value is not echoed for the password.
            let shown = if name == "Password" {
                "(the configured password)".to_owned()
            } else {
                wire::quote(value.as_bytes(), 80)
            };
            return Err(format!(
                "refusing to send a {name} header with a line break, control character or more than 2048 bytes: {shown}"
            ));
        }
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
        Ok(())
    };
    add("From", if env.from.is_empty() { "<>" } else { env.from })?;
    for rcpt in env.rcpts {
        if rcpt.is_empty() {
            return Err("refusing to send an empty recipient address".to_owned());
        }
        add("Rcpt", rcpt)?;
    }
    if !env.hostname.is_empty() {
        add("Helo", env.hostname)?;
        add("Hostname", env.hostname)?;
    }
    if let Some(q) = env.queue_id.filter(|q| !q.is_empty()) {
        add("Queue-Id", q)?;
    }
    if let Some(u) = env.user.filter(|u| !u.is_empty()) {
        add("User", u)?;
    }
    if let Some(p) = password {
        add("Password", p)?;
    }
    head.push_str("\r\n");
    Ok(head)
}

/// `GET /ping`, which rspamd's workers (normal and controller) answer with "pong" and no
/// password.
pub fn ping(addr: &ServerAddr, connect_timeout: Duration, deadline: Instant) -> Result<(), String> {
    let fail = |text: String| format!("rspamd {addr}: {text}");
    let mut conn =
        wire::connect(addr, connect_timeout, deadline).map_err(|e| fail(wire::describe(&e)))?;
    let req = format!(
        "GET /ping HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        host_header(addr)
    );
    conn.write_all(req.as_bytes())
        .map_err(|e| fail(format!("{} while sending /ping", wire::describe(&e))))?;
    let (reply, read) = read_reply(&mut conn);
    if let Err(e) = read
        && !matches!(complete_len(&reply), Ok(Some(_)))
    {
        return Err(fail(format!(
            "{} while reading the reply to /ping",
            wire::describe(&e)
        )));
    }
    let resp = split_response(&reply).map_err(fail)?;
    if resp.code != 200 {
        return Err(fail(resp.status_text()));
    }
    if resp.body.trim_ascii() != b"pong" {
        return Err(fail(format!(
            "unexpected reply to /ping: {}",
            wire::quote(&resp.body, 80)
        )));
    }
    Ok(())
}

/// Pure parser of a whole HTTP response from rspamd (for tests and fuzzing): status line,
/// headers, and a `Content-Length`, chunked or read-to-end body holding `/checkv2` JSON.
///
/// Error texts are written to follow "rspamd ADDR: ". A non-200 status gives its status line
/// (and the JSON `error` text when it adds something).
pub fn parse_response(resp: &[u8]) -> Result<RspamdReport, String> {
    let resp = split_response(resp)?;
    if resp.code != 200 {
        let mut text = resp.status_text();
        if let Ok(body) = serde_json::from_slice::<ErrorBody>(&resp.body)
            && let Some(error) = body.error
            && !resp.status_text().contains(error.as_str())
        {
            text.push_str(&format!(" ({})", wire::quote(error.as_bytes(), 200)));
        }
        return Err(text);
    }
    parse_json(&resp.body)
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<String>,
}

/// The parts of `/checkv2`'s JSON that we use; everything else is ignored.
#[derive(Deserialize)]
struct CheckV2 {
    score: Option<f64>,
    required_score: Option<f64>,
    action: Option<String>,
    #[serde(default)]
    is_skipped: bool,
    #[serde(default)]
    symbols: BTreeMap<String, Symbol>,
}

#[derive(Deserialize)]
struct Symbol {
    score: Option<f64>,
}

fn parse_json(body: &[u8]) -> Result<RspamdReport, String> {
    if body.is_empty() {
        return Err("malformed reply: 200 OK with an empty body".to_owned());
    }
    let v: CheckV2 = serde_json::from_slice(body).map_err(|e| {
        format!(
            "malformed reply: invalid JSON ({e}): {}",
            wire::quote(body, 120)
        )
    })?;
    let score = v
        .score
        .filter(|s| s.is_finite())
        .ok_or("malformed reply: no score")?;
    let required = v
        .required_score
        .filter(|s| s.is_finite())
        .ok_or("malformed reply: no required_score")?;
    let action = v.action.ok_or("malformed reply: no action")?;
    if action.is_empty()
        || action.len() > 64
        || !action.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
    {
        return Err(format!(
            "malformed reply: unusable action {}",
            wire::quote(action.as_bytes(), 80)
        ));
    }
    // BTreeMap: already sorted by name, and a duplicate name cannot appear twice.
    let mut symbols = Vec::with_capacity(v.symbols.len());
    for (name, sym) in v.symbols {
        if name.is_empty() || name.len() > 128 || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "malformed reply: unusable symbol name {}",
                wire::quote(name.as_bytes(), 80)
            ));
        }
        let Some(points) = sym.score.filter(|p| p.is_finite()) else {
            return Err(format!("malformed reply: symbol {name} has no score"));
        };
        symbols.push((name, points));
    }
    Ok(RspamdReport {
        score,
        required,
        action,
        is_skipped: v.is_skipped,
        symbols,
    })
}

/// rspamd as one of the run's scanners.
pub struct Rspamd {
    pub settings: crate::config::scanners::Rspamd,
}

impl Scanner for Rspamd {
    fn name(&self) -> &'static str {
        "rspamd"
    }
    fn kind(&self) -> Kind {
        Kind::Spam
    }
    fn scan(&self, job: &Job, _gate: Option<&Gate>) -> ScanReport {
        self.run(&job.msg, &job.sender, &job.recipients)
    }
}

impl Rspamd {
    fn run(&self, msg: &[u8], sender: &str, recipients: &[String]) -> ScanReport {
        let c = &self.settings;
        let started = Instant::now();
        let report = |outcome, server| ScanReport {
            scanner: "rspamd",
            kind: Kind::Spam,
            outcome,
            server,
            elapsed: started.elapsed(),
        };
        if let Some(skipped) =
            above_max_size(" by rspamd", "rspamd.max_size", msg.len(), c.max_size)
        {
            return report(skipped, None);
        }
        let env = Envelope {
            from: sender,
            rcpts: recipients,
            hostname: "",
            queue_id: None,
            user: None,
        };
        let password = (!c.password.is_empty()).then_some(c.password.as_str());
        let (result, server) = walk_pool(&c.servers, c.load_balance, |addr| {
            check(
                addr,
                msg,
                &env,
                password,
                c.connect_timeout.0,
                Instant::now() + c.timeout.0,
            )
        });
        match result {
            // Our own levels apply to rspamd's score, as they do to spamd's.
            Ok(r) => report(
                Outcome::Spam(crate::verdict::SpamReport {
                    is_spam: r.action != "no action",
                    score: r.score,
                    required: r.required,
                    tests: r.symbols,
                }),
                server,
            ),
            Err(e) => report(Outcome::Failed(e), None),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpStream;
    use std::thread;

    // Real replies captured from rspamd 3.4 (Debian 12) as `scripts/mailstack` runs it
    // (MAILSTACK_RSPAMD=1: packaged rules, no network modules, no redis).

    /// `POST /checkv2` of a GTUBE message.
    const GTUBE: &[u8] = b"HTTP/1.1 200 OK\r\nConnection: close\r\nServer: rspamd/3.4\r\n\
        Date: Mon, 23 Nov 2026 11:57:16 GMT\r\nContent-Length: 243\r\nContent-Type: application/json\r\n\r\n\
        {\"is_skipped\":true,\"score\":15.0,\"required_score\":15.0,\"action\":\"reject\",\"symbols\":{\"GTUBE\":\
        {\"name\":\"GTUBE\",\"score\":0.0,\"metric_score\":0.0}},\"messages\":{\"smtp_message\":\"Gtube pattern\"},\
        \"message-id\":\"gtube-live@example.com\",\"time_real\":0.064830}";

    /// `POST /checkv2` of a 10 KB ham message with Date, Message-ID, From and To.
    pub(crate) const HAM: &[u8] = b"HTTP/1.1 200 OK\r\nConnection: close\r\nServer: rspamd/3.4\r\n\
        Date: Mon, 23 Nov 2026 11:57:16 GMT\r\nContent-Length: 1327\r\nContent-Type: application/json\r\n\r\n\
        {\"is_skipped\":false,\"score\":-0.100000,\"required_score\":15.0,\"action\":\"no action\",\"symbols\":{\
        \"TO_DN_ALL\":{\"name\":\"TO_DN_ALL\",\"score\":0.0,\"metric_score\":0.0,\"description\":\"All the recipients have display names\"},\
        \"FROM_HAS_DN\":{\"name\":\"FROM_HAS_DN\",\"score\":0.0,\"metric_score\":0.0,\"description\":\"From header has a display name\"},\
        \"TO_MATCH_ENVRCPT_ALL\":{\"name\":\"TO_MATCH_ENVRCPT_ALL\",\"score\":0.0,\"metric_score\":0.0,\"description\":\"All of the recipients match the envelope\"},\
        \"RCVD_COUNT_ZERO\":{\"name\":\"RCVD_COUNT_ZERO\",\"score\":0.0,\"metric_score\":0.0,\"description\":\"Message has no Received headers\",\"options\":[\"0\"]},\
        \"FROM_EQ_ENVFROM\":{\"name\":\"FROM_EQ_ENVFROM\",\"score\":0.0,\"metric_score\":0.0,\"description\":\"From address is the same as the envelope\"},\
        \"MIME_TRACE\":{\"name\":\"MIME_TRACE\",\"score\":0.0,\"metric_score\":0.0,\"options\":[\"0:+\"]},\
        \"MIME_GOOD\":{\"name\":\"MIME_GOOD\",\"score\":-0.100000,\"metric_score\":-0.100000,\"description\":\"Known content-type\",\"options\":[\"text/plain\"]},\
        \"RCPT_COUNT_ONE\":{\"name\":\"RCPT_COUNT_ONE\",\"score\":0.0,\"metric_score\":0.0,\"description\":\"One recipient\",\"options\":[\"1\"]},\
        \"MID_RHS_MATCH_FROM\":{\"name\":\"MID_RHS_MATCH_FROM\",\"score\":0.0,\"metric_score\":0.0,\"description\":\"Message-ID RHS matches From domain\"}},\
        \"messages\":{},\"message-id\":\"ham-live@example.com\",\"time_real\":0.006532,\"milter\":{\"remove_headers\":{\"X-Spam\":0}}}";

    /// `POST /checkv2` of 25 bytes of binary junk (no header at all): "add header".
    /// MISSING_SUBJECT shows that `score` (0.5, what counted) differs from `metric_score` (2.0).
    const JUNK: &[u8] = b"HTTP/1.1 200 OK\r\nConnection: close\r\nServer: rspamd/3.4\r\n\
        Date: Mon, 23 Nov 2026 11:57:17 GMT\r\nContent-Length: 1109\r\nContent-Type: application/json\r\n\r\n\
        {\"is_skipped\":false,\"score\":7.900000,\"required_score\":15.0,\"action\":\"add header\",\"symbols\":{\
        \"MISSING_FROM\":{\"name\":\"MISSING_FROM\",\"score\":2.0,\"metric_score\":2.0,\"description\":\"Missing From: header\"},\
        \"MISSING_TO\":{\"name\":\"MISSING_TO\",\"score\":2.0,\"metric_score\":2.0,\"description\":\"To header is missing\"},\
        \"MISSING_SUBJECT\":{\"name\":\"MISSING_SUBJECT\",\"score\":0.500000,\"metric_score\":2.0,\"description\":\"Subject header is missing\"},\
        \"MISSING_DATE\":{\"name\":\"MISSING_DATE\",\"score\":1.0,\"metric_score\":1.0,\"description\":\"Message date is missing\"},\
        \"RCVD_COUNT_ZERO\":{\"name\":\"RCVD_COUNT_ZERO\",\"score\":0.0,\"metric_score\":0.0,\"description\":\"Message has no Received headers\",\"options\":[\"0\"]},\
        \"MIME_GOOD\":{\"name\":\"MIME_GOOD\",\"score\":-0.100000,\"metric_score\":-0.100000,\"description\":\"Known content-type\",\"options\":[\"text/plain\"]},\
        \"MIME_TRACE\":{\"name\":\"MIME_TRACE\",\"score\":0.0,\"metric_score\":0.0,\"options\":[\"0:+\"]},\
        \"MISSING_MID\":{\"name\":\"MISSING_MID\",\"score\":2.500000,\"metric_score\":2.500000,\"description\":\"Message id is missing\"}},\
        \"messages\":{},\"message-id\":\"undef\",\"time_real\":0.000885,\"milter\":{\"remove_headers\":{\"X-Spam\":0}}}";

    /// `GET /ping` on the normal worker.
    const PONG: &[u8] = b"HTTP/1.1 200 OK\r\nConnection: close\r\nServer: rspamd/3.4\r\n\
        Date: Mon, 23 Nov 2026 11:57:16 GMT\r\nContent-Length: 6\r\nContent-Type: text/plain\r\n\r\npong\r\n";

    /// `POST /checkv2` on the controller with no or a wrong `Password`.
    pub(crate) const UNAUTHORIZED: &[u8] = b"HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nServer: rspamd/3.4\r\n\
        Date: Mon, 23 Nov 2026 11:57:16 GMT\r\nContent-Length: 24\r\nContent-Type: application/json\r\n\
        Cache-Control: no-store\r\n\r\n{\"error\":\"Unauthorized\"}";

    /// `POST /nonexistent` on the normal worker.
    const INVALID_COMMAND: &[u8] = b"HTTP/1.1 500 invalid command\r\nConnection: close\r\nServer: rspamd/3.4\r\n\
        Date: Mon, 23 Nov 2026 11:57:17 GMT\r\nContent-Length: 59\r\nContent-Type: application/json\r\n\r\n\
        {\"error\":\"invalid command\",\"error_domain\":\"protocol-error\"}";

    #[test]
    fn gtube_is_a_forced_reject() {
        let r = parse_response(GTUBE).expect("parses");
        assert_eq!(
            r,
            RspamdReport {
                score: 15.0,
                required: 15.0,
                action: "reject".into(),
                is_skipped: true,
                symbols: vec![("GTUBE".into(), 0.0)],
            }
        );
    }

    #[test]
    fn ham_is_no_action_with_sorted_symbols() {
        let r = parse_response(HAM).expect("parses");
        assert_eq!(r.action, "no action");
        assert_eq!((r.score, r.required, r.is_skipped), (-0.1, 15.0, false));
        let names: Vec<&str> = r.symbols.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "FROM_EQ_ENVFROM",
                "FROM_HAS_DN",
                "MID_RHS_MATCH_FROM",
                "MIME_GOOD",
                "MIME_TRACE",
                "RCPT_COUNT_ONE",
                "RCVD_COUNT_ZERO",
                "TO_DN_ALL",
                "TO_MATCH_ENVRCPT_ALL"
            ]
        );
        assert!(r.symbols.contains(&("MIME_GOOD".into(), -0.1)));
    }

    #[test]
    fn a_headerless_message_gets_add_header_and_the_points_that_counted() {
        let r = parse_response(JUNK).expect("parses");
        assert_eq!((r.action.as_str(), r.score), ("add header", 7.9));
        assert!(
            r.symbols.contains(&("MISSING_SUBJECT".into(), 0.5)),
            "{r:?}"
        );
        let sum: f64 = r.symbols.iter().map(|(_, p)| p).sum();
        assert!((sum - r.score).abs() < 1e-9, "{sum} vs {}", r.score);
    }

    #[test]
    fn error_statuses_are_errors_with_their_status_line() {
        assert_eq!(
            parse_response(UNAUTHORIZED),
            Err("HTTP/1.1 401 Unauthorized".to_owned())
        );
        assert_eq!(
            parse_response(INVALID_COMMAND),
            Err("HTTP/1.1 500 invalid command".to_owned())
        );
        // The JSON error is added when the status line does not already say it.
        let e = parse_response(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 26\r\n\r\n{\"error\":\"no body given\"}\n",
        )
        .expect_err("400");
        assert_eq!(e, "HTTP/1.1 400 Bad Request (\"no body given\")");
        // Even a 200-like JSON body does not rescue an error status.
        let mut forged = b"HTTP/1.1 503 Service Unavailable\r\n".to_vec();
        forged.extend_from_slice(&HAM[HAM.iter().position(|&b| b == b'\n').unwrap_or(0) + 1..]);
        assert_eq!(
            parse_response(&forged),
            Err("HTTP/1.1 503 Service Unavailable".to_owned())
        );
    }

    #[test]
    fn a_chunked_body_is_decoded() {
        let json = &GTUBE[GTUBE.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4..];
        let mut resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for part in json.chunks(100) {
            resp.extend_from_slice(format!("{:x};ext=1\r\n", part.len()).as_bytes());
            resp.extend_from_slice(part);
            resp.extend_from_slice(b"\r\n");
        }
        resp.extend_from_slice(b"0\r\nX-Trailer: yes\r\n\r\n");
        assert_eq!(parse_response(&resp), parse_response(GTUBE));
        assert_eq!(complete_len(&resp), Ok(Some(resp.len())));
        // Without the final empty line the body is not complete.
        let cut = &resp[..resp.len() - 2];
        assert_eq!(complete_len(cut), Ok(None));
        let e = parse_response(cut).expect_err("cut");
        assert!(e.contains("truncated reply"), "{e}");
    }

    #[test]
    fn a_body_without_length_runs_to_end_of_file() {
        let json = &HAM[HAM.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4..];
        let mut resp = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        resp.extend_from_slice(json);
        assert_eq!(parse_response(&resp), parse_response(HAM));
        assert_eq!(complete_len(&resp), Ok(None));
    }

    #[test]
    fn every_truncation_is_an_error() {
        for reply in [GTUBE, HAM, JUNK] {
            for cut in 0..reply.len() {
                let e = parse_response(&reply[..cut]);
                assert!(e.is_err(), "cut at {cut} parsed: {e:?}");
            }
        }
    }

    #[test]
    fn broken_replies_say_what_is_wrong() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "without a reply"),
            (b"SPAMD/1.1 0 EX_OK\r\n\r\n", "malformed reply: \"SPAMD/1.1 0 EX_OK\""),
            (b"220 smtp.example ESMTP\r\n", "malformed reply"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", "inside the reply headers"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n{}", "got 2 of 99 body bytes"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "malformed reply header"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{} ", "two different"),
            (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "malformed reply header"),
            (b"HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\n\r\n(\xb5/\xfd", "Content-Encoding \"zstd\""),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "Transfer-Encoding \"gzip\""),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size \"zz\""),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "empty body"),
            (b"HTTP/1.1 200 OK\r\n\r\n<html>busy</html>", "invalid JSON"),
            (b"HTTP/1.1 200 OK\r\n\r\n{\"required_score\":15,\"action\":\"reject\"}", "no score"),
            (b"HTTP/1.1 200 OK\r\n\r\n{\"score\":1,\"action\":\"reject\"}", "no required_score"),
            (b"HTTP/1.1 200 OK\r\n\r\n{\"score\":1,\"required_score\":15}", "no action"),
            (b"HTTP/1.1 200 OK\r\n\r\n{\"score\":\"1\",\"required_score\":15,\"action\":\"x\"}", "invalid JSON"),
            (b"HTTP/1.1 200 OK\r\n\r\n{\"score\":1,\"required_score\":15,\"action\":\"\"}", "unusable action"),
            (b"HTTP/1.1 200 OK\r\n\r\n{\"score\":1,\"required_score\":15,\"action\":\"a\\r\\nb\"}", "unusable action"),
            (b"HTTP/1.1 200 OK\r\n\r\n{\"score\":1,\"required_score\":15,\"action\":\"x\",\"symbols\":{\"A\":{}}}", "symbol A has no score"),
            (b"HTTP/1.1 200 OK\r\n\r\n{\"score\":1,\"required_score\":15,\"action\":\"x\",\"symbols\":{\"A B\":{\"score\":1}}}", "unusable symbol name"),
            (b"HTTP/1.1 200 OK\r\n\r\n{\"score\":1e999,\"required_score\":15,\"action\":\"x\"}", "invalid JSON"),
            (b"HTTP/1.1 200 OK\r\n\r\n{\"score\":nan,\"required_score\":15,\"action\":\"x\"}", "invalid JSON"),
            (b"HTTP/2 200\r\n\r\n{}", "malformed reply"),
            (b"HTTP/1.1 2000 OK\r\n\r\n{}", "malformed reply"),
        ];
        for (reply, want) in cases {
            let e = parse_response(reply).expect_err(&String::from_utf8_lossy(reply));
            assert!(
                e.contains(want),
                "{:?}: {e}",
                String::from_utf8_lossy(reply)
            );
        }
    }

    #[test]
    fn a_hostile_reply_never_panics() {
        // Cheap deterministic fuzzing: mutate the real replies byte by byte.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for base in [GTUBE, HAM, JUNK] {
            for _ in 0..10_000 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let mut reply = base.to_vec();
                let at = (seed as usize) % reply.len();
                reply[at] = (seed >> 32) as u8;
                if seed & 1 == 0 {
                    reply.truncate((seed >> 8) as usize % reply.len());
                }
                let _ = parse_response(&reply);
                let _ = complete_len(&reply);
            }
        }
    }

    #[test]
    fn the_request_carries_the_envelope() {
        let rcpts = vec![
            "bob@example.org".to_owned(),
            "-carol@example.org".to_owned(),
        ];
        let env = Envelope {
            from: "",
            rcpts: &rcpts,
            hostname: "mx.example.net",
            queue_id: Some("4XyZ1"),
            user: Some("alice"),
        };
        let head = request_head(
            &ServerAddr::Tcp("127.0.0.1:11333".into()),
            42,
            &env,
            Some("s3cret"),
        )
        .expect("head");
        assert_eq!(
            head,
            "POST /checkv2 HTTP/1.1\r\nHost: 127.0.0.1:11333\r\nContent-Length: 42\r\n\
             Connection: close\r\nFrom: <>\r\nRcpt: bob@example.org\r\nRcpt: -carol@example.org\r\n\
             Helo: mx.example.net\r\nHostname: mx.example.net\r\nQueue-Id: 4XyZ1\r\nUser: alice\r\n\
             Password: s3cret\r\n\r\n"
        );
        let env = Envelope {
            from: "alice@example.com",
            rcpts: &[],
            hostname: "",
            queue_id: None,
            user: None,
        };
        let head = request_head(&ServerAddr::Unix("/run/rspamd.sock".into()), 1, &env, None)
            .expect("head");
        assert_eq!(
            head,
            "POST /checkv2 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\n\
             Connection: close\r\nFrom: alice@example.com\r\n\r\n"
        );
        assert!(!head.contains("Pass:"));
    }

    #[test]
    fn header_injection_is_refused_before_connecting() {
        // Port 9 (discard) is never contacted: the request is refused first.
        let addr = ServerAddr::Tcp("127.0.0.1:9".into());
        let bad_rcpt = vec!["bob@example.org\r\nPass: all".to_owned()];
        let ok_rcpt = vec!["bob@example.org".to_owned()];
        let empty_rcpt = vec![String::new()];
        let cases: Vec<(Envelope, Option<&str>, &str)> = vec![
            (
                Envelope {
                    from: "a@b\r\nPass: all",
                    rcpts: &ok_rcpt,
                    hostname: "",
                    queue_id: None,
                    user: None,
                },
                None,
                "From header",
            ),
            (
                Envelope {
                    from: "a@b",
                    rcpts: &bad_rcpt,
                    hostname: "",
                    queue_id: None,
                    user: None,
                },
                None,
                "Rcpt header",
            ),
            (
                Envelope {
                    from: "a@b",
                    rcpts: &empty_rcpt,
                    hostname: "",
                    queue_id: None,
                    user: None,
                },
                None,
                "empty recipient",
            ),
            (
                Envelope {
                    from: "a@b",
                    rcpts: &ok_rcpt,
                    hostname: "h\0x",
                    queue_id: None,
                    user: None,
                },
                None,
                "Helo header",
            ),
            (
                Envelope {
                    from: "a@b",
                    rcpts: &ok_rcpt,
                    hostname: "",
                    queue_id: Some("Q\n1"),
                    user: None,
                },
                None,
                "Queue-Id header",
            ),
            (
                Envelope {
                    from: "a@b",
                    rcpts: &ok_rcpt,
                    hostname: "",
                    queue_id: None,
                    user: Some("u\r"),
                },
                None,
                "User header",
            ),
            (
                Envelope {
                    from: "a@b",
                    rcpts: &ok_rcpt,
                    hostname: "",
                    queue_id: None,
                    user: None,
                },
                Some("pw\r\nX: y"),
                "(the configured password)",
            ),
        ];
        for (env, password, want) in cases {
            let e = check(
                &addr,
                b"Subject: x\r\n\r\nx\r\n",
                &env,
                password,
                Duration::from_secs(1),
                Instant::now() + Duration::from_secs(1),
            )
            .expect_err(want);
            assert!(e.starts_with("rspamd 127.0.0.1:9: refusing"), "{e}");
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("pw\\r"), "the password leaked: {e}");
        }
    }

    #[test]
    fn an_empty_message_is_refused() {
        let e = check(
            &ServerAddr::Tcp("127.0.0.1:9".into()),
            b"",
            &envelope(),
            None,
            Duration::from_secs(1),
            Instant::now() + Duration::from_secs(1),
        )
        .expect_err("empty");
        assert!(e.contains("refusing to check an empty message"), "{e}");
    }

    // ---- fault injection: tiny fake servers on 127.0.0.1:0 ----

    const MSG: &[u8] = b"Subject: hi\r\n\r\nhello\r\n";

    fn envelope() -> Envelope<'static> {
        Envelope {
            from: "alice@example.com",
            rcpts: &[],
            hostname: "",
            queue_id: None,
            user: None,
        }
    }

    use crate::scan::testdata::fault_server as fake_rspamd;

    /// Reads one request: headers, then Content-Length bytes of body.
    pub(crate) fn read_request(s: &mut TcpStream) -> Vec<u8> {
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&req[..end]).to_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if req.len() >= end + 4 + len {
                    return req;
                }
            }
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return req,
                Ok(n) => req.extend_from_slice(&buf[..n]),
            }
        }
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn the_wire_request_is_headers_then_the_message() {
        let (addr, server) = fake_rspamd(|mut s| {
            let req = read_request(&mut s);
            let _ = s.write_all(GTUBE);
            let text = String::from_utf8_lossy(&req).into_owned();
            assert!(
                text.starts_with("POST /checkv2 HTTP/1.1\r\nHost: 127.0.0.1:"),
                "{text}"
            );
            assert!(
                text.ends_with(
                    "\r\nContent-Length: 22\r\nConnection: close\r\nFrom: alice@example.com\r\n\r\nSubject: hi\r\n\r\nhello\r\n"
                ),
                "{text}"
            );
        });
        let r = check(
            &addr,
            MSG,
            &envelope(),
            None,
            Duration::from_secs(1),
            soon(),
        )
        .expect("fake reply parses");
        assert_eq!(r.action, "reject");
        server.join().expect("server");
    }

    #[test]
    fn a_server_that_keeps_the_connection_open_is_not_waited_for() {
        let (addr, server) = fake_rspamd(|mut s| {
            let _ = read_request(&mut s);
            let _ = s.write_all(HAM);
            thread::sleep(Duration::from_secs(1)); // keep-alive, ignoring Connection: close
        });
        let start = Instant::now();
        let r = check(
            &addr,
            MSG,
            &envelope(),
            None,
            Duration::from_secs(1),
            soon(),
        )
        .expect("complete reply");
        assert_eq!(r.action, "no action");
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "{:?}",
            start.elapsed()
        );
        server.join().expect("server");
    }

    #[test]
    fn ping_wants_pong() {
        let (addr, server) = fake_rspamd(|mut s| {
            let req = read_request(&mut s);
            assert!(req.starts_with(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1:"));
            assert!(req.ends_with(b"\r\nConnection: close\r\n\r\n"));
            let _ = s.write_all(PONG);
        });
        ping(&addr, Duration::from_secs(1), soon()).expect("pong");
        server.join().expect("server");

        let (addr, server) = fake_rspamd(|mut s| {
            let _ = read_request(&mut s);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npang");
        });
        let e = ping(&addr, Duration::from_secs(1), soon()).expect_err("not pong");
        assert!(e.ends_with("unexpected reply to /ping: \"pang\""), "{e}");
        server.join().expect("server");

        let (addr, server) = fake_rspamd(|mut s| {
            let _ = read_request(&mut s);
            let _ = s.write_all(INVALID_COMMAND);
        });
        let e = ping(&addr, Duration::from_secs(1), soon()).expect_err("500");
        assert!(e.ends_with(": HTTP/1.1 500 invalid command"), "{e}");
        server.join().expect("server");
    }

    /// Tests against a real rspamd: `PIPESCAN_RSPAMD=127.0.0.1:11433` and its companions,
    /// exported by `scripts/mailstack env` after `MAILSTACK_RSPAMD=1 scripts/mailstack up`.
    /// They fail, not skip, when it is not set.
    mod live {
        use super::super::*;
        use crate::scan::testdata::{gtube, ham_10k};

        fn var(name: &str) -> String {
            std::env::var(name).unwrap_or_else(|_| {
                panic!(
                    "{name} is not set: start MAILSTACK_RSPAMD=1 scripts/mailstack up, then eval \"$(scripts/mailstack env)\""
                )
            })
        }

        fn server() -> ServerAddr {
            crate::scan::testdata::stack_server("PIPESCAN_RSPAMD")
        }

        fn deadline() -> Instant {
            Instant::now() + Duration::from_secs(30)
        }

        fn env<'a>(from: &'a str, rcpts: &'a [String]) -> Envelope<'a> {
            Envelope {
                from,
                rcpts,
                hostname: "mail.example.com",
                queue_id: Some("4XyZ1pipescan"),
                user: None,
            }
        }

        fn names(r: &RspamdReport) -> Vec<&str> {
            r.symbols.iter().map(|(n, _)| n.as_str()).collect()
        }

        #[test]
        fn ping_answers_on_both_workers() {
            ping(&server(), Duration::from_secs(5), deadline()).expect("pong");
            let ctl: ServerAddr = var("PIPESCAN_RSPAMD_CONTROLLER").parse().expect("addr");
            ping(&ctl, Duration::from_secs(5), deadline()).expect("pong from the controller");
        }

        #[test]
        fn gtube_is_a_forced_reject() {
            let rcpts = vec!["rcpt@example.org".to_owned()];
            let r = check(
                &server(),
                &gtube(),
                &env("sender@example.com", &rcpts),
                None,
                Duration::from_secs(5),
                deadline(),
            )
            .expect("checked");
            assert_eq!(r.action, "reject", "{r:?}");
            assert!(r.is_skipped, "{r:?}");
            assert!(r.score >= r.required, "{r:?}");
            assert!(names(&r).contains(&"GTUBE"), "{r:?}");
        }

        #[test]
        fn ham_is_no_action() {
            let rcpts = vec!["bob@example.org".to_owned()];
            let start = Instant::now();
            let r = check(
                &server(),
                &ham_10k(),
                &env("alice@example.com", &rcpts),
                None,
                Duration::from_secs(5),
                deadline(),
            )
            .expect("checked");
            eprintln!("rspamd checked 10 KB of ham in {:?}", start.elapsed());
            assert_eq!(r.action, "no action", "{r:?}");
            assert!(!r.is_skipped && r.score < r.required, "{r:?}");
            let n = names(&r);
            assert!(n.windows(2).all(|w| w[0] < w[1]), "not sorted: {n:?}");
        }

        #[test]
        fn the_envelope_reaches_rspamd() {
            // rspamd compares the envelope with the header fields: what it says proves it got them.
            let one = vec!["bob@example.org".to_owned()];
            let r = check(
                &server(),
                &ham_10k(),
                &env("alice@example.com", &one),
                None,
                Duration::from_secs(5),
                deadline(),
            )
            .expect("checked");
            let n = names(&r);
            assert!(
                n.contains(&"FROM_EQ_ENVFROM") && n.contains(&"TO_MATCH_ENVRCPT_ALL"),
                "{n:?}"
            );
            assert!(n.contains(&"RCPT_COUNT_ONE"), "{n:?}");

            let two = vec![
                "carol@example.net".to_owned(),
                "dave@example.net".to_owned(),
            ];
            let r = check(
                &server(),
                &ham_10k(),
                &env("mallory@example.net", &two),
                None,
                Duration::from_secs(5),
                deadline(),
            )
            .expect("checked");
            let n = names(&r);
            assert!(n.contains(&"FROM_NEQ_ENVFROM"), "{n:?}");
            // (RCPT_COUNT_* counts the To/Cc fields, not the envelope.)
            assert!(n.contains(&"FORGED_RECIPIENTS"), "{n:?}");
            assert!(!n.contains(&"TO_MATCH_ENVRCPT_ALL"), "{n:?}");

            // The null sender is accepted (a bounce), and so are Queue-Id and User.
            let r = check(
                &server(),
                &ham_10k(),
                &Envelope {
                    from: "",
                    rcpts: &one,
                    hostname: "",
                    queue_id: Some("Q1"),
                    user: Some("alice"),
                },
                None,
                Duration::from_secs(5),
                deadline(),
            )
            .expect("checked");
            assert!(!names(&r).contains(&"FROM_EQ_ENVFROM"), "{r:?}");
        }

        #[test]
        fn the_unix_socket_gives_the_same_answers() {
            let sock: ServerAddr = var("PIPESCAN_RSPAMD_SOCK").parse().expect("socket path");
            assert!(matches!(sock, ServerAddr::Unix(_)));
            ping(&sock, Duration::from_secs(5), deadline()).expect("pong");
            let rcpts = vec!["rcpt@example.org".to_owned()];
            let r = check(
                &sock,
                &gtube(),
                &env("sender@example.com", &rcpts),
                None,
                Duration::from_secs(5),
                deadline(),
            )
            .expect("checked");
            assert_eq!(r.action, "reject", "{r:?}");
        }

        #[test]
        fn the_controller_wants_its_password() {
            let ctl: ServerAddr = var("PIPESCAN_RSPAMD_CONTROLLER").parse().expect("addr");
            let password = var("PIPESCAN_RSPAMD_PASSWORD");
            let rcpts = vec!["bob@example.org".to_owned()];
            let e = env("alice@example.com", &rcpts);
            let r = check(
                &ctl,
                &ham_10k(),
                &e,
                Some(&password),
                Duration::from_secs(5),
                deadline(),
            )
            .expect("checked with the password");
            assert_eq!(r.action, "no action");
            for wrong in [None, Some("wrong")] {
                let err = check(
                    &ctl,
                    &ham_10k(),
                    &e,
                    wrong,
                    Duration::from_secs(5),
                    deadline(),
                )
                .expect_err("refused");
                assert_eq!(err, format!("rspamd {ctl}: HTTP/1.1 401 Unauthorized"));
            }
        }

        #[test]
        fn a_message_above_max_message_is_an_error_not_clean() {
            // rspamd's default max_message is 50 MiB: it resets the connection without a reply.
            let mut big = b"Subject: big\r\n\r\n".to_vec();
            big.resize(51 << 20, b'x');
            let rcpts = vec!["bob@example.org".to_owned()];
            let e = check(
                &server(),
                &big,
                &env("alice@example.com", &rcpts),
                None,
                Duration::from_secs(5),
                deadline(),
            )
            .expect_err("too big");
            assert!(e.contains("max_message"), "{e}");
        }
    }
}
