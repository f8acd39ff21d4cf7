//! amavisd-new's bad-header checks (BAD-HEADER): what is wrong with the top-level header section,
//! by RFC 5322 and by what mail programs choke on.
//!
//! Contract: [`check`] reads the raw bytes through our own header scanner
//! (`crate::message::header::Header`), never fails and never panics; it returns one reason per problem
//! (a problem repeated in several fields of one name is reported once). [`findings`] gives each
//! reason with its [`Test`], amavisd's names for the kinds of problem (`%allowed_header_tests`),
//! so a configuration can turn kinds off. Only the top-level header is checked, as amavisd does;
//! MIME structure is the banned-files scanner's business.
//!
//! What is checked, and why it is kept narrow:
//! - `8bit`: bytes above 127 in a field that are not valid UTF-8 (amavisd's most common
//!   BAD-HEADER: raw Latin-1 or other legacy charsets, which no reader can decode for sure).
//! - `utf8`: a field with raw but valid UTF-8 (RFC 6532, SMTPUTF8 mail). amavisd keeps it apart
//!   from `8bit` and off by default (its `8bit` test skips valid UTF-8), and so do we: a filter
//!   cannot see whether the SMTP session negotiated SMTPUTF8, and modern clients send it.
//! - `control`: NUL, and CR not followed by LF ("bare CR"), which programs split lines at
//!   differently.
//! - `empty`: a continuation line of white space only; parsers that take it for the empty line
//!   that ends the header see a different header and body. An upstream SpamAssassin's
//!   X-Spam-Report has such lines: amavisd reports those too.
//! - `long`: a line over 998 bytes (RFC 5322 §2.1.1's MUST), line break not counted.
//! - `syntax`: a field name with a space inside ("Sub ject:"), a line in the header section that is
//!   neither a field nor folded (the header then ends early: what follows is read as body), and
//!   address lists in From, Sender, Reply-To, To and Cc that do not parse as RFC 5322 addresses.
//!   The address check is strict where it matters (the address itself: "a@@b", "<a@b", a missing
//!   "@", unbalanced quotes, brackets or parentheses, ";" between addresses) and lenient where real
//!   mail programs differ harmlessly: unquoted "@", "." and "[...]" in display names, empty list
//!   elements, an empty To or Cc, a group without its final ";", odd dots in a local part (Japanese
//!   mobile carriers hand out "taro..yamada@"), UTF-8 anywhere.
//! - `missing`: From and Date, the two fields RFC 5322 §3.6 requires. amavisd reports a missing
//!   Date too ("Missing required header field: \"Date\""), and so do we: Postfix adds Date only to
//!   locally submitted mail (`always_add_missing_headers = no`), so mail from the network reaches
//!   us as the sender wrote it, and a message without Date is a broken or hand-made sender
//!   (printers and scripts are the usual suspects; BAD-HEADER only tags by default). Also Sender,
//!   when From has several mailboxes (§3.6.2).
//! - `multiple`: the fields RFC 5322 §3.6 allows once (From, Sender, Reply-To, To, Cc, Bcc,
//!   Message-ID, In-Reply-To, References, Subject, Date), MIME-Version, and Content-Type and
//!   Content-Transfer-Encoding, whose duplicates let two programs see two different bodies.
//!   Resent-* blocks and trace fields repeat legitimately and are not counted. (git send-email
//!   has been known to repeat References; amavisd reports that too.)

use crate::message::header::Field;
use crate::message::header::Header;
use crate::message::text::printable;
use crate::scan::gate::Gate;
use crate::scan::scanner::{Job, Scanner};
use crate::verdict::{Kind, Outcome, ScanReport};

/// The kinds of header problem, with amavisd's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Test {
    /// Non-encoded 8-bit data.
    #[serde(rename = "8bit")]
    EightBit,
    /// Raw, valid UTF-8 (off by default, as in amavisd).
    Utf8,
    /// NUL or bare CR.
    Control,
    /// A continuation line of white space only.
    Empty,
    /// A line over 998 bytes.
    Long,
    /// Field names, header lines that are not fields, address syntax.
    Syntax,
    /// A required field is missing.
    Missing,
    /// A field that may occur once occurs more often.
    Multiple,
}

impl Test {
    pub const ALL: [Test; 8] = [
        Test::EightBit,
        Test::Utf8,
        Test::Control,
        Test::Empty,
        Test::Long,
        Test::Syntax,
        Test::Missing,
        Test::Multiple,
    ];

    /// The tests on by default: all but `utf8` (amavisd's defaults).
    pub fn defaults() -> Vec<Test> {
        Test::ALL.into_iter().filter(|t| *t != Test::Utf8).collect()
    }

    /// The configuration name ("8bit", "control", ...).
    #[cfg(test)]
    pub fn name(self) -> &'static str {
        match self {
            Test::EightBit => "8bit",
            Test::Utf8 => "utf8",
            Test::Control => "control",
            Test::Empty => "empty",
            Test::Long => "long",
            Test::Syntax => "syntax",
            Test::Missing => "missing",
            Test::Multiple => "multiple",
        }
    }
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub test: Test,
    pub reason: String,
}

/// Fields RFC 5322 §3.6 (and RFC 2045 for the MIME ones) allows at most once in a header.
const SINGLETONS: &[&str] = &[
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Bcc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Subject",
    "Date",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// Fields whose value is an address list (Sender: one mailbox), checked for syntax.
const ADDRESS_FIELDS: &[&str] = &["From", "Sender", "Reply-To", "To", "Cc"];

/// The bad-header checks as one of the run's scanners: the tests the configuration enables.
pub struct HeaderChecks {
    pub tests: Vec<Test>,
}

impl Scanner for HeaderChecks {
    fn name(&self) -> &'static str {
        "headers"
    }
    fn kind(&self) -> Kind {
        Kind::BadHeader
    }
    fn inline(&self) -> bool {
        true
    }
    fn scan(&self, job: &Job, _gate: Option<&Gate>) -> ScanReport {
        let started = std::time::Instant::now();
        let found = crate::timings::time("headers", || findings(&job.msg, &job.header));
        let reasons = found
            .into_iter()
            .filter(|f| self.tests.contains(&f.test))
            .map(|f| f.reason)
            .collect();
        ScanReport {
            scanner: "headers",
            kind: Kind::BadHeader,
            outcome: Outcome::BadHeader(reasons),
            server: None,
            elapsed: started.elapsed(),
        }
    }
}

/// The reasons, e.g. "non-encoded 8-bit data in header field Subject".
#[cfg(test)]
pub fn check(raw: &[u8], header: &Header) -> Vec<String> {
    findings(raw, header)
        .into_iter()
        .map(|f| f.reason)
        .collect()
}

/// Every problem with its kind, in header order; missing and duplicate fields last.
pub fn findings(raw: &[u8], header: &Header) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    let mut add = |test: Test, reason: String| {
        if !out.iter().any(|f| f.reason == reason) {
            out.push(Finding { test, reason });
        }
    };
    for f in &header.fields {
        let Some(bytes) = raw.get(f.start..f.end) else {
            continue;
        };
        let name = field_name(f);
        if bytes.iter().any(|&b| b >= 0x80) {
            if std::str::from_utf8(bytes).is_ok() {
                add(
                    Test::Utf8,
                    format!("non-encoded UTF-8 data in header field {name}"),
                );
            } else {
                add(
                    Test::EightBit,
                    format!("non-encoded 8-bit data in header field {name}"),
                );
            }
        }
        if bytes.contains(&0) {
            add(
                Test::Control,
                format!("NUL character in header field {name}"),
            );
        }
        if bytes
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
        {
            add(Test::Control, format!("bare CR in header field {name}"));
        }
        for (k, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
            let text = line.strip_suffix(b"\n").unwrap_or(line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if text.len() > 998 {
                add(
                    Test::Long,
                    format!("header line longer than 998 characters in header field {name}"),
                );
            }
            if k > 0 && text.iter().all(|&b| b == b' ' || b == b'\t') {
                add(
                    Test::Empty,
                    format!("empty continuation line in header field {name}"),
                );
            }
        }
        if f.name.contains(&b' ') {
            add(
                Test::Syntax,
                format!("invalid header field name \"{name}\""),
            );
        }
        if let Some(canonical) = ADDRESS_FIELDS.iter().find(|n| f.is(n)) {
            let value = unfold(f.value(raw));
            if let Err(item) = check_addresses(&value, canonical) {
                add(
                    Test::Syntax,
                    format!("invalid address in {canonical}: {item}"),
                );
            }
        }
    }
    if let Some(line) = stray_line(raw, header) {
        add(
            Test::Syntax,
            format!(
                "header line that is neither a field nor folded: \"{}\"",
                printable(&String::from_utf8_lossy(line), 60)
            ),
        );
    }
    for required in ["From", "Date"] {
        if header.count(required) == 0 {
            add(
                Test::Missing,
                format!("missing required header field {required}"),
            );
        }
    }
    if header.count("Sender") == 0
        && let Some(from) = header.fields.iter().find(|f| f.is("From"))
        && let Ok(n) = mailbox_count(&unfold(from.value(raw)))
        && n > 1
    {
        add(
            Test::Missing,
            format!("missing required header field Sender (From has {n} mailboxes)"),
        );
    }
    for name in SINGLETONS {
        if header.count(name) > 1 {
            add(Test::Multiple, format!("duplicate header field {name}"));
        }
    }
    out
}

fn field_name(f: &Field) -> String {
    printable(&String::from_utf8_lossy(&f.name), 60)
}

/// The header section ended at a line that is neither a field nor the empty line: that line.
fn stray_line<'a>(raw: &'a [u8], header: &Header) -> Option<&'a [u8]> {
    let at = header.body_start;
    if at >= raw.len() {
        return None;
    }
    let before = &raw[header.insert_at.min(at)..at];
    let ended_by_empty_line = before.ends_with(b"\n")
        && matches!(
            before[..before.len() - 1]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(before, |i| &before[i + 1..]),
            b"\n" | b"\r\n"
        );
    if ended_by_empty_line {
        return None;
    }
    let end = raw[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(raw.len(), |i| at + i);
    let line = &raw[at..end];
    Some(line.strip_suffix(b"\r").unwrap_or(line))
}

/// The value without its line breaks (folding keeps the white space after them).
fn unfold(value: &[u8]) -> Vec<u8> {
    value
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect()
}

// ---------------------------------------------------------------------------------------------
// RFC 5322 addresses

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// atext run (bytes above 127 included: RFC 6532).
    Atom,
    /// "quoted string"
    Quoted,
    /// [domain literal]
    Literal,
    Dot,
    At,
    Lt,
    Gt,
    Comma,
    Semi,
    Colon,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Tok,
    start: usize,
}

fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b) || b >= 0x80
}

/// Splits a value into tokens, dropping white space and comments.
fn tokenize(v: &[u8]) -> Result<Vec<Token>, &'static str> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let b = v[i];
        let start = i;
        let single = match b {
            b' ' | b'\t' => {
                i += 1;
                continue;
            }
            b'(' => {
                let mut depth = 0usize;
                loop {
                    match v.get(i) {
                        None => return Err("unbalanced parentheses"),
                        Some(b'\\') => i += 1,
                        Some(b'(') => depth += 1,
                        Some(b')') => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                i += 1;
                continue;
            }
            b'"' | b'[' => {
                let close = if b == b'"' { b'"' } else { b']' };
                i += 1;
                loop {
                    match v.get(i) {
                        None if b == b'"' => return Err("unbalanced quotes"),
                        None => return Err("unclosed ["),
                        Some(b'\\') => i += 1,
                        Some(&c) if c == close => break,
                        Some(b'[') if b == b'[' => return Err("[ inside a domain literal"),
                        _ => {}
                    }
                    i += 1;
                }
                i += 1;
                let kind = if b == b'"' { Tok::Quoted } else { Tok::Literal };
                out.push(Token { kind, start });
                continue;
            }
            b'.' => Tok::Dot,
            b'@' => Tok::At,
            b'<' => Tok::Lt,
            b'>' => Tok::Gt,
            b',' => Tok::Comma,
            b';' => Tok::Semi,
            b':' => Tok::Colon,
            _ if is_atext(b) => {
                while i < v.len() && is_atext(v[i]) {
                    i += 1;
                }
                out.push(Token {
                    kind: Tok::Atom,
                    start,
                });
                continue;
            }
            b')' => return Err("unbalanced parentheses"),
            _ => return Err("unexpected character"),
        };
        out.push(Token {
            kind: single,
            start,
        });
        i += 1;
    }
    Ok(out)
}

/// Why an address list failed: the token where it went wrong.
struct Bad {
    at: usize,
}

struct Parser<'t> {
    t: &'t [Token],
    i: usize,
    mailboxes: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<Tok> {
        self.t.get(self.i).map(|t| t.kind)
    }

    fn bad<T>(&self) -> Result<T, Bad> {
        Err(Bad { at: self.i })
    }

    fn expect(&mut self, kind: Tok) -> Result<(), Bad> {
        if self.peek() == Some(kind) {
            self.i += 1;
            Ok(())
        } else {
            self.bad()
        }
    }

    /// address-list, with obs-addr-list's empty elements; `item_start` tracks where the address
    /// being read began, for the error text.
    fn address_list(&mut self, item_start: &mut usize) -> Result<(), Bad> {
        loop {
            while self.peek() == Some(Tok::Comma) {
                self.i += 1;
            }
            *item_start = self.i;
            if self.peek().is_none() {
                return Ok(());
            }
            self.address()?;
            match self.peek() {
                None => return Ok(()),
                Some(Tok::Comma) => {}
                Some(_) => return self.bad(),
            }
        }
    }

    /// Looks ahead to the end of this address: a name-addr has "<" before any "," or ";"; a
    /// group has ":" before any "@" (and before "<").
    fn address(&mut self) -> Result<(), Bad> {
        let mut seen_at = false;
        for t in &self.t[self.i..] {
            match t.kind {
                Tok::Lt => return self.name_addr(),
                Tok::Colon if !seen_at => return self.group(),
                Tok::At => seen_at = true,
                Tok::Comma | Tok::Semi => break,
                _ => {}
            }
        }
        self.addr_spec()
    }

    fn group(&mut self) -> Result<(), Bad> {
        let name_start = self.i;
        while matches!(self.peek(), Some(Tok::Atom | Tok::Quoted | Tok::Dot)) {
            self.i += 1;
        }
        if self.i == name_start {
            return self.bad();
        }
        self.expect(Tok::Colon)?;
        loop {
            while self.peek() == Some(Tok::Comma) {
                self.i += 1;
            }
            match self.peek() {
                Some(Tok::Semi) => {
                    self.i += 1;
                    return Ok(());
                }
                // "undisclosed-recipients:" without its ";" is common enough to let pass.
                None => return Ok(()),
                _ => {}
            }
            let mut seen_lt = false;
            for t in &self.t[self.i..] {
                match t.kind {
                    Tok::Lt => {
                        seen_lt = true;
                        break;
                    }
                    Tok::Comma | Tok::Semi => break,
                    _ => {}
                }
            }
            if seen_lt {
                self.name_addr()?;
            } else {
                self.addr_spec()?;
            }
            match self.peek() {
                Some(Tok::Comma | Tok::Semi) | None => {}
                Some(_) => return self.bad(),
            }
        }
    }

    /// [display-name] "<" [obs-route] addr-spec ">". The display name is read leniently: words,
    /// dots, "@" and "[...]" as real mail programs write them unquoted.
    fn name_addr(&mut self) -> Result<(), Bad> {
        while matches!(
            self.peek(),
            Some(Tok::Atom | Tok::Quoted | Tok::Dot | Tok::At | Tok::Literal)
        ) {
            self.i += 1;
        }
        self.expect(Tok::Lt)?;
        if self.peek() == Some(Tok::At) {
            // obs-route: "@a.example,@b.example:"
            loop {
                self.expect(Tok::At)?;
                self.domain()?;
                while self.peek() == Some(Tok::Comma) {
                    self.i += 1;
                }
                if self.peek() != Some(Tok::At) {
                    break;
                }
            }
            self.expect(Tok::Colon)?;
        }
        self.addr_spec()?;
        self.expect(Tok::Gt)
    }

    /// local-part "@" domain. The local part takes words joined by dots, dots doubled or at the
    /// ends included (obs-local-part as deployed); the domain is strict.
    fn addr_spec(&mut self) -> Result<(), Bad> {
        let mut words = 0;
        while let Some(k @ (Tok::Atom | Tok::Quoted | Tok::Dot)) = self.peek() {
            if k != Tok::Dot {
                words += 1;
            }
            self.i += 1;
        }
        if words == 0 {
            return self.bad();
        }
        self.expect(Tok::At)?;
        self.domain()?;
        self.mailboxes += 1;
        Ok(())
    }

    fn domain(&mut self) -> Result<(), Bad> {
        if self.peek() == Some(Tok::Literal) {
            self.i += 1;
            return Ok(());
        }
        self.expect(Tok::Atom)?;
        while self.peek() == Some(Tok::Dot) {
            self.i += 1;
            self.expect(Tok::Atom)?;
        }
        Ok(())
    }
}

/// Parses `value` as the address list of field `name`; Err is the offending item, printable.
fn check_addresses(value: &[u8], name: &str) -> Result<(), String> {
    let show = |from: usize, to: usize| {
        let s = String::from_utf8_lossy(&value[from.min(value.len())..to.min(value.len())]);
        let s = s.trim();
        if s.is_empty() {
            "(empty)".to_string()
        } else {
            printable(s, 100)
        }
    };
    let tokens = tokenize(value).map_err(|why| format!("{} ({why})", show(0, value.len())))?;
    let mut p = Parser {
        t: &tokens,
        i: 0,
        mailboxes: 0,
    };
    let mut item_start = 0;
    if let Err(Bad { at }) = p.address_list(&mut item_start) {
        let from = tokens.get(item_start).map_or(value.len(), |t| t.start);
        // The item runs to the next comma at or after the error.
        let to = tokens[at.min(tokens.len())..]
            .iter()
            .find(|t| t.kind == Tok::Comma)
            .map_or(value.len(), |t| t.start);
        return Err(show(from, to));
    }
    let need_one = matches!(name, "From" | "Sender");
    if need_one && p.mailboxes == 0 && tokens.iter().all(|t| t.kind != Tok::Colon) {
        return Err(show(0, value.len()));
    }
    if name == "Sender" && (p.mailboxes != 1 || tokens.iter().any(|t| t.kind == Tok::Colon)) {
        return Err(format!(
            "{} (Sender takes one mailbox)",
            show(0, value.len())
        ));
    }
    Ok(())
}

/// How many mailboxes an address list names (groups' members included).
fn mailbox_count(value: &[u8]) -> Result<usize, ()> {
    let tokens = tokenize(value).map_err(|_| ())?;
    let mut p = Parser {
        t: &tokens,
        i: 0,
        mailboxes: 0,
    };
    let mut item_start = 0;
    p.address_list(&mut item_start).map_err(|_| ())?;
    Ok(p.mailboxes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crlf(lf: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for &b in lf {
            if b == b'\n' {
                v.push(b'\r');
            }
            v.push(b);
        }
        v
    }

    fn run(msg: &[u8]) -> Vec<String> {
        check(msg, &Header::parse(msg))
    }

    /// Both as written (LF) and with CRLF line ends.
    fn assert_reasons(story: &str, msg: &[u8], want: &[&str]) {
        for (ending, m) in [("LF", msg.to_vec()), ("CRLF", crlf(msg))] {
            assert_eq!(run(&m), want, "{story} ({ending})");
        }
    }

    const THUNDERBIRD: &str = "\
Message-ID: <3b5d2f8e-1c2a-4b8e-9f0e-6a1e2d3c4b5a@example.org>
Date: Tue, 4 Mar 2025 09:12:45 +0100
MIME-Version: 1.0
User-Agent: Mozilla Thunderbird
Content-Language: en-US
To: \"Doe, John\" <john.doe@example.com>
Cc: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.de>,
 team@example.org
From: Alice Example <alice@example.org>
Subject: =?UTF-8?Q?R=C3=A9union_de_lundi?=
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: 8bit

Bonjour,
";

    const OUTLOOK: &str = "\
Received: from AM0PR02MB1234.eurprd02.prod.outlook.com (2603:10a6:208:11::11)
 by AM0PR02MB5678.eurprd02.prod.outlook.com with HTTPS; Tue, 4 Mar 2025
 08:12:46 +0000
From: \"Smith, Jane\" <Jane.Smith@contoso.com>
To: \"Doe, John\" <john.doe@example.com>, \"O'Brien, Pat\"
\t<pat.obrien@example.com>
CC: =?iso-8859-1?Q?Ren=E9_Dupr=E9?= <rene@example.fr>
Subject: RE: Budget 2025
Thread-Topic: Budget 2025
Thread-Index: AQHZ1234567890abcdefABCDEF==
Date: Tue, 4 Mar 2025 08:12:45 +0000
Message-ID:
\t<AM0PR02MB1234ABCDEF0123456789@AM0PR02MB1234.eurprd02.prod.outlook.com>
References: <CAF=abc@mail.gmail.com>
 <AM0PR02MB9999@AM0PR02MB9999.eurprd02.prod.outlook.com>
In-Reply-To: <AM0PR02MB9999@AM0PR02MB9999.eurprd02.prod.outlook.com>
Accept-Language: en-US
Content-Language: en-US
X-MS-Has-Attach:
X-MS-TNEF-Correlator:
x-ms-exchange-organization-authas: Internal
Content-Type: multipart/alternative;
\tboundary=\"_000_AM0PR02MB1234ABCDEF0123456789_\"
MIME-Version: 1.0

--_000_AM0PR02MB1234ABCDEF0123456789_
";

    const GMAIL: &str = "\
Return-Path: <bob.jones@gmail.com>
Received: from mail-ed1-f44.google.com (mail-ed1-f44.google.com [209.85.208.44])
\tby mx.example.org (Postfix) with ESMTPS id 4Z7abc1234
\tfor <alice@example.org>; Tue,  4 Mar 2025 10:01:04 +0100 (CET)
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;
        d=gmail.com; s=20230601; t=1741078863; x=1741683663; darn=example.org;
        h=to:subject:message-id:date:from:in-reply-to:references:mime-version
         :from:to:cc:subject:date:message-id:reply-to;
        bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;
        b=Kx1abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/
         Kx1abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789==
X-Gm-Message-State: AOJu0YzAbCdEf
X-Google-Smtp-Source: AGHT+IFabc
MIME-Version: 1.0
References: <3b5d2f8e-1c2a-4b8e-9f0e-6a1e2d3c4b5a@example.org>
In-Reply-To: <3b5d2f8e-1c2a-4b8e-9f0e-6a1e2d3c4b5a@example.org>
From: Bob Jones <bob.jones@gmail.com>
Date: Tue, 4 Mar 2025 10:01:02 +0100
X-Gm-Features: AQ5f1Jabc
Message-ID: <CAG+xyz123=Q-abc@mail.gmail.com>
Subject: Re: lunch?
To: Alice <alice@example.org>
Content-Type: multipart/alternative; boundary=\"000000000000a1b2c3d4e5f6\"

--000000000000a1b2c3d4e5f6
";

    const MAILING_LIST: &str = "\
From MAILER-DAEMON Tue Mar  4 10:00:00 2025
Return-Path: <dev-bounces+alice=example.org@lists.example.org>
From: Carol via dev <dev@lists.example.org>
Reply-To: Carol <carol@example.net>, dev@lists.example.org
To: dev@lists.example.org
Cc: dave@example.com, \"Eve (QA)\" <eve@example.com>
Subject: [dev] Re: patch review
Date: Tue, 04 Mar 2025 09:59:58 -0000
Message-ID: <20250304095958.12345-1-carol@example.net>
X-Mailer: git-send-email 2.43.0
List-Id: Developers <dev.lists.example.org>
List-Unsubscribe: <mailto:dev-leave@lists.example.org>
List-Archive: <https://lists.example.org/archives/list/dev@lists.example.org/>
List-Post: <mailto:dev@lists.example.org>
List-Help: <mailto:dev-request@lists.example.org?subject=help>
List-Subscribe: <mailto:dev-join@lists.example.org>
Precedence: list
Sender: \"dev\" <dev-bounces@lists.example.org>
Errors-To: dev-bounces@lists.example.org

body
";

    #[test]
    fn ordinary_mail_from_common_programs_is_clean() {
        let table = [
            ("Thunderbird", THUNDERBIRD),
            ("Outlook", OUTLOOK),
            ("Gmail", GMAIL),
            ("a mailing list", MAILING_LIST),
            (
                "a bounce",
                "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\nTo: alice@example.org\n\
                 Date: Tue, 4 Mar 2025 10:00:00 +0100\nSubject: Undelivered Mail Returned to Sender\n\n",
            ),
            (
                "Bcc only, as Thunderbird writes it",
                "From: a@example.org\nTo: undisclosed-recipients: ;\nDate: Tue, 4 Mar 2025 10:00:00 +0100\n\n",
            ),
            (
                "RFC 5322's own examples",
                "From: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>\n\
                 To:A Group(Some people)\n     :Chris Jones <c@(Chris's host.)public.example>,\n\
                 \x20        joe@example.org,\n  John <jdoe@one.test> (my dear friend); (the end of the group)\n\
                 Cc:(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;\n\
                 Reply-To: \"Joe Q. Public\" <john.q.public@example.com>, Mary Smith <@node.test:mary@example.net>\n\
                 Date: Thu,\n      13\n        Feb\n          1969\n      23:32\n               -0330 (Newfoundland Time)\n\n",
            ),
            (
                "what real programs write that RFC 5322 frowns on",
                "From: john@example.com <john@example.com>\n\
                 To: Dr. Who <who@tardis.example>, taro..yamada.@docomo.ne.jp, [EXT] Ann <ann@example.com>,\n\
                 Cc: \"quoted local\"@example.com, user@[192.0.2.1], ,\n\
                 Reply-To: Undisclosed recipients:\n\
                 Date: Tue, 4 Mar 2025 10:00:00 +0100\n\n",
            ),
        ];
        for (story, msg) in table {
            assert_reasons(story, msg.as_bytes(), &[]);
        }
    }

    #[test]
    fn bad_headers_and_their_reasons() {
        let ok = "From: a@example.org\nDate: Tue, 4 Mar 2025 10:00:00 +0100\n";
        let long = format!("{ok}X-Long: {}\n\n", "x".repeat(995));
        let not_long = format!("{ok}X-Long: {}\n\n", "x".repeat(990));
        let table: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
            (
                "a raw UTF-8 Subject (SMTPUTF8 mail): amavisd's utf8 test, not 8bit",
                format!("{ok}Subject: Gr\u{fc}\u{df}e\n\n").into_bytes(),
                vec!["non-encoded UTF-8 data in header field Subject"],
            ),
            (
                "a raw Latin-1 Subject",
                [ok.as_bytes(), b"Subject: Gr\xfc\xdfe\n\n"].concat(),
                vec!["non-encoded 8-bit data in header field Subject"],
            ),
            (
                "Latin-1 in a display name, twice",
                [
                    ok.as_bytes(),
                    b"To: J\xfcrgen <j@example.de>\nCc: J\xfcrgen <j@example.de>\n\n",
                ]
                .concat(),
                vec![
                    "non-encoded 8-bit data in header field To",
                    "non-encoded 8-bit data in header field Cc",
                ],
            ),
            (
                "a NUL",
                format!("{ok}Subject: a\0b\n\n").into_bytes(),
                vec!["NUL character in header field Subject"],
            ),
            (
                "a bare CR",
                format!("{ok}References: <a@b.example>\r <c@d.example>\n\n").into_bytes(),
                vec!["bare CR in header field References"],
            ),
            (
                "an empty continuation line",
                format!("{ok}X-Spam-Report: a\n \n\tb\n\n").into_bytes(),
                vec!["empty continuation line in header field X-Spam-Report"],
            ),
            (
                "a 1000-byte line",
                long.into_bytes(),
                vec!["header line longer than 998 characters in header field X-Long"],
            ),
            ("a 998-byte line", not_long.into_bytes(), vec![]),
            (
                "duplicates",
                format!(
                    "{ok}Subject: a\nSubject: b\nFrom: b@example.org\nReceived: x\nReceived: y\n\n"
                )
                .into_bytes(),
                vec![
                    "duplicate header field From",
                    "duplicate header field Subject",
                ],
            ),
            (
                "two Content-Types",
                format!("{ok}Content-Type: text/plain\ncontent-type: text/html\n\n").into_bytes(),
                vec!["duplicate header field Content-Type"],
            ),
            (
                "no Date",
                b"From: printer@example.org\nSubject: out of paper\n\n".to_vec(),
                vec!["missing required header field Date"],
            ),
            (
                "no header at all",
                b"".to_vec(),
                vec![
                    "missing required header field From",
                    "missing required header field Date",
                ],
            ),
            (
                "two authors and no Sender",
                b"From: a@example.org, b@example.org\nDate: Tue, 4 Mar 2025 10:00:00 +0100\n\n"
                    .to_vec(),
                vec!["missing required header field Sender (From has 2 mailboxes)"],
            ),
            (
                "an obsolete field name with a space",
                format!("{ok}Sub ject: x\n\n").into_bytes(),
                vec!["invalid header field name \"Sub ject\""],
            ),
            (
                "a folded line that lost its indent",
                format!("{ok}Subject: a long subject\nthat wrapped\n\nbody\n").into_bytes(),
                vec!["header line that is neither a field nor folded: \"that wrapped\""],
            ),
        ];
        for (story, msg, want) in &table {
            assert_reasons(story, msg, want);
        }
        let kinds: Vec<Test> = findings(b"Subject: \xff\0\n", &Header::parse(b"Subject: \xff\0\n"))
            .iter()
            .map(|f| f.test)
            .collect();
        assert_eq!(
            kinds,
            [Test::EightBit, Test::Control, Test::Missing, Test::Missing]
        );
    }

    #[test]
    fn invalid_addresses() {
        let table = [
            ("From", "a@@b.example", "a@@b.example"),
            ("From", "<a@b.example", "<a@b.example"),
            ("From", "a@b.example>", "a@b.example>"),
            (
                "From",
                "\"Unbalanced <a@b.example>",
                "\"Unbalanced <a@b.example> (unbalanced quotes)",
            ),
            (
                "From",
                "(comment a@b.example",
                "(comment a@b.example (unbalanced parentheses)",
            ),
            ("From", "John Smith", "John Smith"),
            ("From", "root", "root"),
            ("From", "", "(empty)"),
            ("From", "<>", "<>"),
            ("From", "a@", "a@"),
            ("From", "@b.example", "@b.example"),
            ("From", "a@b.example.", "a@b.example."),
            ("From", "a@b..example", "a@b..example"),
            ("To", "a@b.example; c@d.example", "a@b.example; c@d.example"),
            ("To", "ok@b.example, Smith, John <j@x.example>", "Smith"),
            (
                "To",
                "ok@b.example, bad@@x.example, fine@c.example",
                "bad@@x.example",
            ),
            (
                "Cc",
                "Team: a@b.example, broken;",
                "Team: a@b.example, broken;",
            ),
            ("Cc", "x@[1.2.3.4", "x@[1.2.3.4 (unclosed [)"),
            (
                "Sender",
                "a@b.example, c@d.example",
                "a@b.example, c@d.example (Sender takes one mailbox)",
            ),
            (
                "Reply-To",
                "a@b.example\\",
                "a@b.example\\ (unexpected character)",
            ),
        ];
        for (field, value, item) in table {
            let from = if field == "From" {
                ""
            } else {
                "From: a@example.org\n"
            };
            let msg = format!("{from}{field}: {value}\nDate: Tue, 4 Mar 2025 10:00:00 +0100\n\n");
            assert_reasons(
                &format!("{field}: {value}"),
                msg.as_bytes(),
                &[&format!("invalid address in {field}: {item}")],
            );
        }
    }

    #[test]
    fn hostile_headers_do_not_panic() {
        let mut inputs: Vec<Vec<u8>> = vec![
            b"\n".to_vec(),
            b" leading white space\n\n".to_vec(),
            b"From:".to_vec(),
            b"From: (((((((((((((((\n".to_vec(),
            b"From: \"\\".to_vec(),
            b"To: <<<<>>>>,,,;;;:::@@@...\n".to_vec(),
            b"To: a:b:c:d@e;\n".to_vec(),
            "To: \u{202e}evil@example.org\n".as_bytes().to_vec(),
        ];
        inputs.push((0u8..=255).cycle().take(10_000).collect());
        inputs.push(format!("To: {}\n\n", "(".repeat(100_000)).into_bytes());
        inputs.push(format!("To: {}\n\n", "a@b.example, ".repeat(50_000)).into_bytes());
        for msg in &inputs {
            for m in [msg.clone(), crlf(msg)] {
                let _ = run(&m);
            }
        }
    }

    #[test]
    fn test_names_are_amavisd_names() {
        let names: Vec<&str> = Test::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(
            names,
            [
                "8bit", "utf8", "control", "empty", "long", "syntax", "missing", "multiple"
            ]
        );
        // utf8 is off by default, as in amavisd.
        assert_eq!(Test::defaults().len(), Test::ALL.len() - 1);
        assert!(!Test::defaults().contains(&Test::Utf8));
        for t in Test::ALL {
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.name()));
            assert_eq!(serde_json::from_str::<Test>(&json).unwrap(), t);
        }
    }
}
