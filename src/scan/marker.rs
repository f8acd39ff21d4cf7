//! The "already scanned" loop marker: an `X-Pipescan-Marker` field that lets a pipescan that sees
//! a message again (a second MTA instance, the next host of a relay chain sharing the key, a
//! transport that filters twice) reuse the network scanners' results instead of asking spamd and
//! clamd again. It never decides for the second pipescan: that one applies its own policy, for
//! its own recipients, to the carried results, and runs its own local checks (banned files, bad
//! header) on the message as it now is.
//!
//! Contract: a marker is trusted only when its HMAC-SHA256, under the site's secret key, covers
//! - the scan results it carries (which checks ran, virus names, spam score and tests),
//! - this very body (every byte after the header),
//! - every header field in [`BOUND`] (all copies, in order, unfolded and otherwise byte for byte;
//!   the MIME fields decide how the body is read, the others what a spam scanner weighs most),
//! - the host that scanned it and a time no older than `max_age` (and not in the future beyond a
//!   small clock skew).
//!
//! Anything else (no key configured, a bad or stale MAC, a changed body or bound field, another
//! format version, a malformed value) means "not scanned": the message is scanned as usual and
//! the untrusted field is removed as forged. A check that the marker does not name as run is
//! never taken from it: see [`Results`] and [`covers`]. A marker is only made when every
//! configured check ran to the end (for spam: one of spamd and rspamd answered, as for the
//! verdict; SECURITY.md, "The loop marker").
//!
//! Value: `v2 HOST UNIXTIME HEXMAC RESULTS…`, where RESULTS is base64url (no padding) of a small
//! JSON object, cut into words so the field folds. MAC over `pipescan-marker v2\n HOST \n UNIXTIME
//! \n RESULTS \n SHA256(bound fields) SHA256(body)`.

use crate::config::settings::Config;
use crate::message::edit::Rewrite;
use crate::message::header::Header;
use crate::plan::Plan;
use crate::policy::facts::Facts;
use crate::policy::needed::Needed;
use crate::verdict::SpamReport;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The field name (also in policy::FORGEABLE: an untrusted copy is removed).
pub const FIELD: &str = "X-Pipescan-Marker";

/// The header fields the MAC binds besides the body. The first four change how the body is read
/// (its MIME structure, transfer encoding and part names: a `text/plain` body that holds a MIME
/// part becomes a multipart with an `.exe` when Content-Type changes). The others name the
/// author, the recipients and the topic, which weigh most in a spam score and in white/black
/// lists. Trace and transport fields (Received, Return-Path, DKIM-Signature, …) are left out:
/// relays add them on the way. Postfix adds a missing From on local submission: then the marker
/// no longer verifies and the message is scanned again (safe, only slower).
pub const BOUND: &[&str] = &[
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "MIME-Version",
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Subject",
];

/// Clocks of hosts sharing a key may differ this much.
const SKEW: u64 = 300;

/// The shortest key accepted: 16 bytes (128 bits).
pub const MIN_KEY_LEN: usize = 16;

/// Results longer than this (encoded) are not trusted: ours are far shorter.
const MAX_RESULTS: usize = 16 * 1024;

/// At most this many spam tests are carried (spamd lists a few dozen at most).
const MAX_TESTS: usize = 100;

/// A loaded secret.
pub struct Key(Vec<u8>);

impl Key {
    pub fn new(bytes: &[u8]) -> Result<Key, String> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(format!(
                "the key must be at least {MIN_KEY_LEN} bytes (it has {}); e.g. `head -c 32 /dev/urandom | base64`",
                bytes.len()
            ));
        }
        Ok(Key(bytes.to_vec()))
    }

    fn mac(&self, host: &str, time: u64, results: &str, d: &Digests) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC accepts keys of any length");
        m.update(b"pipescan-marker v2\n");
        m.update(host.as_bytes());
        m.update(format!("\n{time}\n").as_bytes());
        m.update(results.as_bytes());
        m.update(b"\n");
        m.update(&d.fields);
        m.update(&d.body);
        m
    }
}

/// Reads the key: `key` itself, or the first line of `key_file` (trimmed). `Ok(None)`: no key
/// configured, no markers.
pub fn load(key: &str, key_file: &std::path::Path) -> Result<Option<Key>, String> {
    if !key.is_empty() {
        return Key::new(key.as_bytes()).map(Some);
    }
    if key_file.as_os_str().is_empty() {
        return Ok(None);
    }
    let text = std::fs::read(key_file).map_err(|e| format!("{}: {e}", key_file.display()))?;
    let line = text.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = line.trim_ascii();
    Key::new(line)
        .map(Some)
        .map_err(|e| format!("{}: {e}", key_file.display()))
}

/// What the network scanners said, as a marker carries it. `None` means the check did not run
/// (or not to the end): a pipescan that needs it scans the message itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Results {
    /// The virus scan ran to the end: the names it found (empty: clean).
    pub virus: Option<Vec<String>>,
    /// The spam scan ran to the end: its report.
    pub spam: Option<SpamReport>,
}

/// The JSON form: short keys, so the field stays short.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    v: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<WireSpam>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSpam {
    /// spamd's own verdict.
    f: bool,
    /// score
    x: f64,
    /// required
    r: f64,
    /// tests
    t: Vec<(String, f64)>,
}

impl Results {
    fn encode(&self) -> String {
        let wire = Wire {
            v: self.virus.clone(),
            s: self.spam.as_ref().map(|s| WireSpam {
                f: s.is_spam,
                x: s.score,
                r: s.required,
                t: s.tests.iter().take(MAX_TESTS).cloned().collect(),
            }),
        };
        let json = serde_json::to_vec(&wire).unwrap_or_default();
        base64url(&json)
    }

    fn decode(text: &str) -> Option<Results> {
        let json = unbase64url(text)?;
        let w: Wire = serde_json::from_slice(&json).ok()?;
        let finite = |x: f64| x.is_finite().then_some(x);
        let spam = match w.s {
            None => None,
            Some(s) => Some(SpamReport {
                is_spam: s.f,
                score: finite(s.x)?,
                required: finite(s.r)?,
                tests: s.t,
            }),
        };
        Some(Results { virus: w.v, spam })
    }
}

/// What a trusted marker says: who scanned the message, when, and what the scanners found.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamp {
    pub host: String,
    pub time: u64,
    pub results: Results,
}

/// What a marker's MAC binds of one message, hashed once however many marker fields it has
/// (a message with thousands of forged markers costs one pass over its body, not thousands).
pub struct Digests {
    fields: [u8; 32],
    body: [u8; 32],
}

impl Digests {
    pub fn of(raw: &[u8], header: &Header, body: &[u8]) -> Digests {
        Digests {
            fields: Sha256::digest(bound_fields(raw, header)).into(),
            body: Sha256::digest(body).into(),
        }
    }
}

/// The bound fields of a header: for each name of [`BOUND`], in that order, every copy in the
/// order written, its value unfolded (RFC 5322: the CR LF of each fold removed, every other byte
/// kept, white space included: a boundary `"x  y"` is not `"x y"`), each value length-prefixed.
/// A relay that only refolds a field keeps the marker; one that changes its spacing breaks it,
/// and the message is scanned again.
fn bound_fields(raw: &[u8], header: &Header) -> Vec<u8> {
    let mut out = Vec::new();
    for name in BOUND {
        let copies: Vec<&crate::message::header::Field> =
            header.fields.iter().filter(|f| f.is(name)).collect();
        out.extend_from_slice(format!("{name}:{}\n", copies.len()).as_bytes());
        for f in copies {
            let v: Vec<u8> = f
                .value(raw)
                .iter()
                .copied()
                .filter(|&b| b != b'\r' && b != b'\n')
                .collect();
            out.extend_from_slice(format!("{}:", v.len()).as_bytes());
            out.extend_from_slice(&v);
            out.push(b'\n');
        }
    }
    out
}

/// False when the header's line structure is read differently by other programs: a CR not
/// followed by LF ends a line for some MIME parsers and scanners but not for us, so a bound
/// field could hide inside an unbound one. Such a message is neither marked nor trusted.
pub fn unambiguous(raw: &[u8], header: &Header) -> bool {
    let head = &raw[..header.body_start.min(raw.len())];
    !head
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\r' && head.get(i + 1) != Some(&b'\n'))
}

/// The field value for a message whose header (as it will be written, our other fields and
/// Subject tag included) is `raw`/`header` and whose body is `body`.
pub fn make(key: &Key, stamp: &Stamp, raw: &[u8], header: &Header, body: &[u8]) -> String {
    // A host name with white space would split into two words: it is never trusted then.
    let host: String = stamp
        .host
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect();
    let results = stamp.results.encode();
    let tag = key
        .mac(&host, stamp.time, &results, &Digests::of(raw, header, body))
        .finalize()
        .into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    let mut value = format!("v2 {host} {} {hex}", stamp.time);
    // Words of 64 characters, so the field folds like our others (fold() breaks at spaces).
    let mut rest = results.as_str();
    while !rest.is_empty() {
        let (word, tail) = rest.split_at(rest.len().min(64));
        value.push(' ');
        value.push_str(word);
        rest = tail;
    }
    value
}

/// The stamp when `value` is a trusted marker for this header and body, else why not.
pub fn verify(
    key: &Key,
    value: &str,
    raw: &[u8],
    header: &Header,
    body: &[u8],
    now: u64,
    max_age: Duration,
) -> Result<Stamp, &'static str> {
    if !unambiguous(raw, header) {
        return Err("a bare CR in the header (lines read differently by other programs)");
    }
    verify_digests(key, value, &Digests::of(raw, header, body), now, max_age)
}

/// [`verify`] against digests already made for this message.
fn verify_digests(
    key: &Key,
    value: &str,
    digests: &Digests,
    now: u64,
    max_age: Duration,
) -> Result<Stamp, &'static str> {
    let mut it = value.split_ascii_whitespace();
    let (Some(version), Some(host), Some(time), Some(hex)) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return Err("malformed");
    };
    if version != "v2" {
        return Err("another format version (scanned again)");
    }
    let results: String = it.collect();
    if results.is_empty() || results.len() > MAX_RESULTS {
        return Err("malformed results");
    }
    let time: u64 = time.parse().map_err(|_| "malformed time")?;
    if time > now.saturating_add(SKEW) {
        return Err("from the future");
    }
    if now.saturating_sub(time) > max_age.as_secs() {
        return Err("too old");
    }
    let tag = decode_hex(hex).ok_or("malformed MAC")?;
    key.mac(host, time, &results, digests)
        .verify_slice(&tag)
        .map_err(|_| "bad MAC (forged, another key, or the message changed)")?;
    // Only now, with the MAC checked, is the JSON parsed: a forger cannot reach the parser.
    let results = Results::decode(&results).ok_or("malformed results")?;
    Ok(Stamp {
        host: host.to_string(),
        time,
        results,
    })
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// RFC 4648 §5 base64url, without padding.
fn base64url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn unbase64url(text: &str) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = B64.iter().position(|&b| b == c)? as u32;
            n |= v << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// The marker in a run: which one to trust, whether it covers what this run needs, what this run
// vouches for, and adding it to each copy.

/// How many marker fields of one message are looked at: ours add one per host, and a chain of
/// hosts replaces it; more than this is a sender's doing.
const MAX_MARKERS: usize = 2;

/// The first `X-Pipescan-Marker` that verifies for this message (of its first [`MAX_MARKERS`]);
/// each one that does not is logged (all are removed as forged with the other fields we own).
pub fn trusted(
    cfg: &Config,
    key: &Key,
    raw: &[u8],
    header: &Header,
    body: &[u8],
    now: u64,
) -> Option<Stamp> {
    let max_age = cfg.loop_marker.max_age.0;
    let markers: Vec<_> = header.fields.iter().filter(|f| f.is(FIELD)).collect();
    if markers.is_empty() {
        return None;
    }
    let untrusted = |why: &str| {
        crate::log::info(&format!(
            "untrusted {FIELD} ({why}): removed, message scanned"
        ))
    };
    if !unambiguous(raw, header) {
        untrusted("a bare CR in the header (lines read differently by other programs)");
        return None;
    }
    if markers.len() > MAX_MARKERS {
        untrusted(&format!(
            "{} of them: only the first {MAX_MARKERS} are looked at",
            markers.len()
        ));
    }
    let digests = Digests::of(raw, header, body);
    markers.iter().take(MAX_MARKERS).find_map(|f| {
        match verify_digests(key, &f.text(raw), &digests, now, max_age) {
            Ok(stamp) => Some(stamp),
            Err(why) => {
                untrusted(why);
                None
            }
        }
    })
}

pub fn virus_configured(cfg: &Config) -> bool {
    !cfg.clamd.servers.is_empty() || !cfg.av_command.is_empty()
}

pub fn spam_configured(cfg: &Config) -> bool {
    !cfg.spamd.servers.is_empty() || !cfg.rspamd.servers.is_empty()
}

/// A trusted marker stands in for the network checks only when it covers every one this run
/// needs: a check that did not run where the marker was made is never taken as passed.
pub fn covers(cfg: &Config, stamp: &Stamp, needed: Needed) -> bool {
    let mut missing = Vec::new();
    if needed.virus && virus_configured(cfg) && stamp.results.virus.is_none() {
        missing.push("virus");
    }
    if needed.spam && spam_configured(cfg) && stamp.results.spam.is_none() {
        missing.push("spam");
    }
    if !missing.is_empty() {
        crate::log::info(&format!(
            "{} of {} does not cover the {} check: message scanned",
            FIELD,
            stamp.host,
            missing.join(" and ")
        ));
    }
    missing.is_empty()
}

/// What this run vouches for in a marker: only when every configured network check ran to the
/// end for this message (none bypassed, failed, skipped or cut short), with what it found.
pub fn ours(
    cfg: &Config,
    hostname: &str,
    now: u64,
    needed: Needed,
    reports: &[crate::verdict::ScanReport],
    facts: &Facts,
) -> Option<Stamp> {
    if facts.virus_unchecked.is_some()
        || facts.virus_failed.is_some()
        || facts.spam_failed.is_some()
        || facts.spam_skipped.is_some()
    {
        return None;
    }
    let virus = if virus_configured(cfg) {
        let ran = reports.iter().any(|r| {
            r.kind == crate::verdict::Kind::Virus
                && matches!(
                    r.outcome,
                    crate::verdict::Outcome::Clean | crate::verdict::Outcome::Infected(_)
                )
        });
        if !(needed.virus && ran) {
            return None;
        }
        Some(facts.viruses.clone())
    } else {
        None
    };
    let spam = if spam_configured(cfg) {
        if !needed.spam {
            return None;
        }
        Some(facts.spam.clone()?)
    } else {
        None
    };
    Some(Stamp {
        host: hostname.to_string(),
        time: now,
        results: Results { virus, spam },
    })
}

/// Adds the marker to every copy: its MAC binds the header as that copy will be written (our
/// Subject tag included), so each group gets its own.
pub fn add_to(key: &Key, stamp: &Stamp, plan: &mut Plan, raw: &[u8], header: &Header) {
    let head_end = header.body_start.min(raw.len());
    let body = &raw[head_end..];
    for g in &mut plan.groups {
        let mut written = Vec::with_capacity(head_end + 512);
        let rewrite = Rewrite::new(&raw[..head_end], header, &g.edits);
        if rewrite
            .write_to(&mut written, &raw[..head_end], None)
            .is_err()
        {
            continue;
        }
        let h = Header::parse(&written);
        if !unambiguous(&written, &h) {
            return;
        }
        let value = make(key, stamp, &written, &h, body);
        g.edits.add.push((FIELD.into(), value));
    }
}

/// The site's marker key, if one is configured and readable; a key that cannot be loaded is
/// logged, and mail then flows scanned and unmarked.
pub fn site_key(cfg: &Config) -> Option<Key> {
    match load(&cfg.loop_marker.key, &cfg.loop_marker.key_file) {
        Ok(k) => k,
        Err(e) => {
            crate::log::warn(&format!(
                "loop marker key: {e}: markers are neither trusted nor added"
            ));
            None
        }
    }
}

/// The stamp of a trusted marker on this message that covers every network check this run
/// needs; never for an oversized message (its body was not all read into memory).
pub fn usable(
    cfg: &Config,
    key: Option<&Key>,
    raw: &[u8],
    header: &Header,
    oversized: bool,
    now: u64,
    needed: Needed,
) -> Option<Stamp> {
    let body = &raw[header.body_start.min(raw.len())..];
    key.filter(|_| !oversized)
        .and_then(|key| trusted(cfg, key, raw, header, body, now))
        .filter(|s| covers(cfg, s, needed))
}

/// What this run found, as a marker needs it.
pub struct Found<'a> {
    pub reports: &'a [crate::verdict::ScanReport],
    pub facts: &'a Facts,
    pub banned_ran: bool,
    pub oversized: bool,
}

/// Adds a marker to every copy of `plan`: the trusted one passed on (same host, time and
/// results), or one for this run's results when every configured check ran to the end.
#[allow(clippy::too_many_arguments)]
pub fn mark(
    cfg: &Config,
    key: &Key,
    stamp: Option<&Stamp>,
    hostname: &str,
    now: u64,
    needed: Needed,
    found: &Found,
    plan: &mut Plan,
    raw: &[u8],
    header: &Header,
) {
    let made = stamp.cloned().or_else(|| {
        let complete = found.banned_ran || !cfg.banned.enabled;
        let complete = complete && (needed.header || !cfg.bad_header.enabled);
        complete
            .then(|| ours(cfg, hostname, now, needed, found.reports, found.facts))
            .flatten()
    });
    if let (Some(made), false) = (made, found.oversized) {
        add_to(key, &made, plan, raw, header);
    }
}

/// The log line's note for a message whose network checks a marker stood in for.
pub fn note(stamp: &Stamp) -> String {
    format!(
        "already scanned by {}: its spamd/clamd results used, local checks run",
        stamp.host
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86400);

    fn stamp(results: Results) -> Stamp {
        Stamp {
            host: "mx1.example".into(),
            time: 1_800_000_000,
            results,
        }
    }

    fn spam(score: f64) -> SpamReport {
        SpamReport {
            is_spam: false,
            score,
            required: 5.0,
            tests: vec![("BAYES_00".into(), -1.9), ("HTML_MESSAGE".into(), 0.001)],
        }
    }

    /// Splits a message into (raw header part, parsed header, body).
    fn parts(msg: &[u8]) -> (Header, &[u8]) {
        let h = Header::parse(msg);
        let body = &msg[h.body_start..];
        (h, body)
    }

    #[test]
    fn a_marker_verifies_only_for_its_results_body_fields_key_host_and_time() {
        let key = Key::new(b"0123456789abcdef0123").unwrap();
        let msg = b"From: a@example.org\r\nSubject: hi\r\nContent-Type: text/plain\r\n\r\nhello\r\nworld\r\n";
        let (h, body) = parts(msg);
        let s = stamp(Results {
            virus: Some(vec![]),
            spam: Some(spam(1.5)),
        });
        let v = make(&key, &s, msg, &h, body);
        assert!(v.starts_with("v2 mx1.example 1800000000 "), "{v}");
        let check = |v: &str, msg: &[u8], now: u64| {
            let (h, body) = parts(msg);
            verify(&key, v, msg, &h, body, now, DAY)
        };
        assert_eq!(check(&v, msg, 1_800_000_100), Ok(s.clone()));
        // Folded by a relay: still the same value to us.
        let folded = v.replace(' ', "\r\n\t");
        assert_eq!(check(&folded, msg, 1_800_000_100), Ok(s.clone()));
        // A relay refolding a bound field (a line break before existing white space), or adding
        // a trace field: still trusted.
        let refolded = b"Received: from x by y\r\nFrom: a@example.org\r\nSubject:\r\n hi\r\nContent-Type: text/plain\r\n\r\nhello\r\nworld\r\n";
        assert_eq!(check(&v, refolded, 1_800_000_100), Ok(s.clone()));
        // Changing white space inside a value is not refolding: a boundary "x  y" is not "x y"
        // (the body's delimiter lines would start to match and show parts).
        let quoted = |b: &str| {
            format!("From: a@example.org\r\nContent-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n--x y\r\nContent-Type: application/octet-stream; name=\"a.exe\"\r\n\r\nMZ\r\n--x y--\r\n")
                .into_bytes()
        };
        let two = quoted("x  y");
        let (h2, b2) = parts(&two);
        let v2 = make(&key, &s, &two, &h2, b2);
        assert!(check(&v2, &two, 1_800_000_100).is_ok());
        for respaced in ["x y", "x\ty", "x   y", " x  y"] {
            let m = quoted(respaced);
            assert!(
                check(&v2, &m, 1_800_000_100)
                    .unwrap_err()
                    .starts_with("bad MAC"),
                "{respaced:?}"
            );
        }

        let bad = |v: &str, msg: &[u8], now: u64| check(v, msg, now).unwrap_err();
        let changed_body =
            b"From: a@example.org\r\nSubject: hi\r\nContent-Type: text/plain\r\n\r\nhello\r\nworld!\r\n";
        assert!(bad(&v, changed_body, 1_800_000_100).starts_with("bad MAC"));
        // Every bound field is covered: changed, added (even a second copy) or removed.
        for other in [
            &b"From: a@example.org\r\nSubject: hi\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\nhello\r\nworld\r\n"[..],
            b"From: a@example.org\r\nSubject: hi\r\nContent-Type: text/plain\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\nhello\r\nworld\r\n",
            b"From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\nworld\r\n",
            b"From: a@example.org\r\nSubject: hi\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nhello\r\nworld\r\n",
            b"From: boss@example.org\r\nSubject: hi\r\nContent-Type: text/plain\r\n\r\nhello\r\nworld\r\n",
            b"From: a@example.org\r\nSubject: cheap pills\r\nContent-Type: text/plain\r\n\r\nhello\r\nworld\r\n",
            b"From: a@example.org\r\nSubject: hi\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhello\r\nworld\r\n",
        ] {
            assert!(
                bad(&v, other, 1_800_000_100).starts_with("bad MAC"),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
        assert_eq!(bad(&v, msg, 1_800_000_000 + 86_401), "too old");
        assert_eq!(bad(&v, msg, 1_800_000_000 - 301), "from the future");
        let other = Key::new(b"another key of 16+ bytes").unwrap();
        assert!(verify(&other, &v, msg, &h, body, 1_800_000_100, DAY).is_err());
        // The host, the time and the results are covered by the MAC.
        let moved = v.replace("mx1.example", "mx2.example");
        assert!(bad(&moved, msg, 1_800_000_100).starts_with("bad MAC"));
        let later = v.replace("1800000000", "1800000050");
        assert!(bad(&later, msg, 1_800_000_100).starts_with("bad MAC"));
        let clean = make(
            &key,
            &stamp(Results {
                virus: Some(vec![]),
                spam: Some(spam(-5.0)),
            }),
            msg,
            &h,
            body,
        );
        // Another marker's results under this marker's MAC.
        let words: Vec<&str> = v.split(' ').collect();
        let theirs: Vec<&str> = clean.split(' ').collect();
        let spliced = [&words[..4], &theirs[4..]].concat().join(" ");
        assert!(bad(&spliced, msg, 1_800_000_100).starts_with("bad MAC"));
        // A bound field hidden behind a bare CR inside an unbound one: never trusted.
        let hidden = b"From: a@example.org\r\nSubject: hi\r\nX-Junk: x\rContent-Type: multipart/mixed; boundary=x\r\nContent-Type: text/plain\r\n\r\nhello\r\nworld\r\n";
        let (hh, hb) = parts(hidden);
        assert!(!unambiguous(hidden, &hh));
        let v_hidden = make(&key, &s, hidden, &hh, hb);
        assert!(bad(&v_hidden, hidden, 1_800_000_100).starts_with("a bare CR"));
        // The old format is never trusted.
        let v1 = format!("v1 mx1.example 1800000000 {}", words[3]);
        assert_eq!(
            bad(&v1, msg, 1_800_000_100),
            "another format version (scanned again)"
        );
        for junk in ["", "v2", "v2 h 1 00", "v2 h x 00 AAAA", "v2 h 1 zz AAAA"] {
            assert!(check(junk, msg, 1_800_000_100).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn results_round_trip_and_say_which_checks_ran() {
        for r in [
            Results::default(),
            Results {
                virus: Some(vec![]),
                spam: None,
            },
            Results {
                virus: Some(vec!["Eicar-Signature".into(), "odd \"name\" ü".into()]),
                spam: Some(spam(12.25)),
            },
        ] {
            assert_eq!(Results::decode(&r.encode()), Some(r.clone()));
        }
        assert_eq!(Results::decode("!!!!"), None);
        assert_eq!(Results::decode(&base64url(b"{\"z\":1}")), None);
        assert_eq!(
            Results::decode(&base64url(
                b"{\"s\":{\"f\":true,\"x\":1e999,\"r\":5,\"t\":[]}}"
            )),
            None
        );
    }

    #[test]
    fn base64url_matches_rfc_4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64url(plain.as_bytes()), enc);
            assert_eq!(unbase64url(enc).unwrap(), plain.as_bytes());
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(unbase64url("Z"), None);
        assert_eq!(unbase64url("Zm9=v"), None);
    }

    #[test]
    fn keys_are_long_enough_and_files_give_their_first_line() {
        assert!(Key::new(b"short").is_err());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        std::fs::write(&p, "  0123456789abcdef0123  \nignored\n").unwrap();
        let k = load("", &p).unwrap().unwrap();
        assert_eq!(k.0, b"0123456789abcdef0123");
        assert!(load("", std::path::Path::new("")).unwrap().is_none());
        let e = load("", &dir.path().join("missing")).err().unwrap();
        assert!(e.contains("missing"), "{e}");
        std::fs::write(&p, "tiny\n").unwrap();
        assert!(load("", &p).err().unwrap().contains("at least 16 bytes"));
    }
}
