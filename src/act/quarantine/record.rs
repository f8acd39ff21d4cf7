//! The one record format of a quarantined copy: pipescan's block in front of the original
//! bytes. Written by the filter, read back by `pipescan release` and `pipescan quarantine list`,
//! and told apart from the sender's fields here and nowhere else ([`Record`]): its first field
//! is always [`RECORD`], which holds the envelope and the category in a form that round-trips
//! any address (xtext, RFC 3461) and says how many bytes of human-readable fields
//! (`X-Envelope-From`, `X-Envelope-To`, `X-Quarantine-ID`, `X-Pipescan-Category`, `X-Spam-Score`)
//! follow it; the original starts right after those. Nothing below the block is ever read as
//! ours. Files written before the record existed are still read ([`Record::parse`]).

/// The first field of every quarantined copy: pipescan's record of the message.
pub const RECORD: &str = "X-Pipescan-Quarantine";

/// The record's format version (files without a record are the older format).
const VERSION: &str = "2";

/// The fields of pipescan's block: incoming copies of them are forged and removed
/// (policy::FORGEABLE), so no message can bring its own.
pub const FIELDS: &[&str] = &[
    RECORD,
    "X-Envelope-From",
    "X-Envelope-To",
    "X-Quarantine-ID",
    "X-Pipescan-Category",
];

/// What pipescan knows about a quarantined message: written at the top of the copy, read back
/// by `release` and `quarantine list`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    /// The envelope sender; empty for the null sender.
    pub sender: String,
    pub recipients: Vec<String>,
    /// The category's log name (INFECTED, BANNED, SPAM, ...).
    pub category: String,
    /// What was found: virus names, banned parts, score=...
    pub reason: String,
    /// The spam score as printed in X-Spam-Score, when known.
    pub score: Option<String>,
}

/// Why a quarantined copy cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// The record goes on past the bytes given: read more.
    Truncated,
    /// Not a pipescan quarantine copy, or a damaged one.
    Bad(String),
}

impl Record {
    /// The block to write in front of the original message: the record, then the
    /// human-readable fields, with the message's line ending `eol`.
    pub fn block(&self, eol: &str) -> String {
        use crate::envelope::Angle;
        use crate::message::text::fold;
        let mut human = String::new();
        let rcpts: Vec<String> = self
            .recipients
            .iter()
            .map(|r| Angle(r).to_string())
            .collect();
        human.push_str(&fold(
            "X-Envelope-From",
            &Angle(&self.sender).to_string(),
            eol,
        ));
        human.push_str(&fold("X-Envelope-To", &rcpts.join(", "), eol));
        human.push_str(&fold("X-Quarantine-ID", &format!("<{}>", self.id), eol));
        let cat = if self.reason.is_empty() {
            self.category.clone()
        } else {
            format!("{} ({})", self.category, self.reason)
        };
        human.push_str(&fold("X-Pipescan-Category", &cat, eol));
        if let Some(s) = &self.score {
            human.push_str(&fold("X-Spam-Score", s, eol));
        }
        let mut words = vec![
            format!("v={VERSION}"),
            format!("id={}", xtext(&self.id)),
            format!("len={}", human.len()),
            format!("category={}", xtext(&self.category)),
            format!("from={}", xtext(&self.sender)),
        ];
        words.extend(self.recipients.iter().map(|r| format!("to={}", xtext(r))));
        if let Some(s) = &self.score {
            words.push(format!("score={}", xtext(s)));
        }
        words.push(format!("reason={}", xtext(&self.reason)));
        let mut out = fold_words(RECORD, &words, eol);
        out.push_str(&human);
        out
    }

    /// Reads the block at the start of a quarantined copy (`raw`, or its first bytes): the
    /// record and where the original message starts. Only the block pipescan wrote is read:
    /// the record, which gives the block's length; or, in a copy written before the record
    /// existed, the fixed run of fields that pipescan wrote then, each once, in its order.
    pub fn parse(raw: &[u8]) -> Result<(Record, usize), Unreadable> {
        let bad = |s: &str| Unreadable::Bad(s.to_string());
        let marker = format!("{RECORD}:");
        let Some(rest) = raw.strip_prefix(marker.as_bytes()) else {
            if marker.as_bytes().starts_with(raw) {
                return Err(Unreadable::Truncated);
            }
            return legacy(raw);
        };
        // The record field: its first line and every continuation line (ours start with TAB).
        let mut end = RECORD.len() + 1;
        loop {
            match raw[end..].iter().position(|&b| b == b'\n') {
                Some(i) => end += i + 1,
                None => return Err(Unreadable::Truncated),
            }
            match raw.get(end) {
                Some(b'\t' | b' ') => continue,
                Some(_) => break,
                None => return Err(Unreadable::Truncated),
            }
        }
        let value = &rest[..end - RECORD.len() - 1];
        let text = std::str::from_utf8(value).map_err(|_| bad("the record is not ASCII"))?;
        // Unfolded as RFC 5322 says (line breaks out, the white space after them kept), then
        // words; a word without `=` continues the value before it (a long value, folded).
        let text = text.replace(['\r', '\n'], "");
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for word in text.split_ascii_whitespace() {
            match (word.split_once('='), pairs.last_mut()) {
                (Some((key, val)), _) => pairs.push((key, val.to_string())),
                (None, Some((_, val))) => val.push_str(word),
                (None, None) => return Err(bad("the record starts with a word without '='")),
            }
        }
        let mut rec = Record::default();
        let (mut len, mut version, mut from) = (None, None, None);
        for (key, val) in pairs {
            let val = unxtext(&val).ok_or_else(|| bad("the record has a bad xtext value"))?;
            match key {
                "v" => version = Some(val),
                "id" => rec.id = val,
                "len" => len = val.parse::<usize>().ok(),
                "category" => rec.category = val,
                "from" => from = Some(val),
                "to" => rec.recipients.push(val),
                "score" => rec.score = Some(val),
                "reason" => rec.reason = val,
                _ => {} // a later version's addition
            }
        }
        if version.as_deref() != Some(VERSION) {
            return Err(Unreadable::Bad(format!(
                "record version {:?} is not {VERSION}",
                version.unwrap_or_default()
            )));
        }
        rec.sender = from.ok_or_else(|| bad("the record has no sender"))?;
        if !crate::act::quarantine::id::is_id(&rec.id) {
            return Err(bad("the record has no valid id"));
        }
        let len = len.ok_or_else(|| bad("the record has no length"))?;
        let start = end
            .checked_add(len)
            .ok_or_else(|| bad("the record's length is out of range"))?;
        if start > raw.len() {
            return Err(Unreadable::Truncated);
        }
        Ok((rec, start))
    }
}

/// A copy written before the record existed: X-Envelope-From, X-Envelope-To, X-Quarantine-ID,
/// X-Pipescan-Category and, if known, X-Spam-Score, exactly in that order at the very top.
/// Fields of these names further down are the sender's, never read. Recipients are split at
/// the commas between `<...>` (outside quotes); that format could not carry every address.
fn legacy(raw: &[u8]) -> Result<(Record, usize), Unreadable> {
    use crate::message::header::Header;
    const ORDER: [&str; 5] = [
        "X-Envelope-From",
        "X-Envelope-To",
        "X-Quarantine-ID",
        "X-Pipescan-Category",
        "X-Spam-Score",
    ];
    let h = Header::parse(raw);
    let mut rec = Record::default();
    let mut end = 0;
    let mut n = 0;
    for f in &h.fields {
        if n == ORDER.len() || f.start != end || !f.is(ORDER[n]) {
            break;
        }
        // A field that reaches the end of what we have may go on: read more.
        if f.end == raw.len() {
            return Err(Unreadable::Truncated);
        }
        let text = f.text(raw);
        let bare = |s: &str| {
            s.strip_prefix('<')
                .and_then(|s| s.strip_suffix('>'))
                .unwrap_or(s)
                .to_string()
        };
        match n {
            0 => rec.sender = bare(&text),
            1 => rec.recipients = split_angles(&text).into_iter().map(|r| bare(&r)).collect(),
            2 => rec.id = bare(&text),
            3 => match text.split_once(" (") {
                Some((c, r)) => {
                    rec.category = c.to_string();
                    rec.reason = r.strip_suffix(')').unwrap_or(r).to_string();
                }
                None => rec.category = text,
            },
            _ => rec.score = Some(text),
        }
        end = f.end;
        n += 1;
    }
    if n < 4 {
        if h.insert_at == 0 && end == raw.len() && n > 0 {
            return Err(Unreadable::Truncated);
        }
        return Err(Unreadable::Bad(format!(
            "no {RECORD} record at the top (not a pipescan quarantine copy?)"
        )));
    }
    if !crate::act::quarantine::id::is_id(&rec.id) {
        return Err(Unreadable::Bad(
            "X-Quarantine-ID is not a quarantine id".into(),
        ));
    }
    Ok((rec, end))
}

/// `<a>, <"b, c"@d>` → [`<a>`, `<"b, c"@d>`]: commas inside quotes or angle brackets do not
/// split.
fn split_angles(s: &str) -> Vec<String> {
    let (mut out, mut cur) = (Vec::new(), String::new());
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    for c in s.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect()
}

/// RFC 3461 xtext: printable ASCII but `+`, `=` and space as is, every other byte as `+HH`.
fn xtext(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

fn unxtext(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `NAME: k=v k=v ...` folded as RFC 5322 folds (a line break before white space) in lines of
/// at most 78 characters: between words, and inside a value too long for a line (the piece on
/// the next line has no `=`, which xtext never has: [`Record::parse`] joins it to the value).
fn fold_words(name: &str, words: &[String], eol: &str) -> String {
    let mut out = format!("{name}:");
    let mut line = out.len();
    for w in words {
        if line + 1 + w.len() > 78 && line > 1 {
            out.push_str(eol);
            out.push('\t');
            line = 1;
        } else {
            out.push(' ');
            line += 1;
        }
        let key = w.find('=').map_or(w.len(), |i| i + 1);
        for (i, c) in w.char_indices() {
            if line >= 78 && i >= key {
                out.push_str(eol);
                out.push('\t');
                line = 1;
            }
            out.push(c);
            line += 1;
        }
    }
    out.push_str(eol);
    out
}

/// A record as the filter writes one, for the tests here and in store.rs.
#[cfg(test)]
pub(crate) fn sample(recipients: &[&str]) -> Record {
    Record {
        id: "AbCdEf012_-x".into(),
        sender: "a@example.org".into(),
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
        category: "INFECTED".into(),
        reason: "Eicar-Signature".into(),
        score: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(recipients: &[&str]) -> Record {
        sample(recipients)
    }

    /// Addresses RFC 5321 allows (quoted local parts with commas, angle brackets, spaces,
    /// quotes, plus and equals signs; UTF-8) come back exactly, with LF and CRLF, and the
    /// original follows the block byte for byte.
    #[test]
    fn the_record_round_trips_any_address() {
        let long = format!("\"{}\"@example.org", "x ".repeat(400));
        let rcpts = [
            "\"bob, smith\"@example.org",
            "\"a<b>c d\"@example.org",
            "\"q\\\"uote, <x@y>\"@example.org",
            "plus+tag=eq@example.org",
            "j\u{f6}rg@b\u{fc}cher.example",
            "-oQ/tmp/x@example.com",
            long.as_str(),
        ];
        for eol in ["\n", "\r\n"] {
            let mut r = record(&rcpts);
            r.sender = String::new();
            r.score = Some("1000.1".into());
            r.reason = "a.exe (executable); b, c".into();
            let block = r.block(eol);
            assert!(block.is_ascii(), "{block}");
            for line in block.split(eol) {
                assert!(line.len() <= 78, "{} chars: {line}", line.len());
                assert!(!line.contains(['\r', '\n']), "{line:?}");
            }
            let original =
                format!("Subject: x{eol}X-Envelope-To: <evil@example.net>{eol}{eol}body{eol}");
            let raw = [block.as_bytes(), original.as_bytes()].concat();
            let (back, start) = Record::parse(&raw).unwrap();
            assert_eq!(back, r);
            assert_eq!(&raw[start..], original.as_bytes());
            // Any prefix that ends inside the block asks for more.
            for cut in [10, 100, block.len() - 1] {
                assert_eq!(
                    Record::parse(&raw[..cut]),
                    Err(Unreadable::Truncated),
                    "{cut}"
                );
            }
        }
    }

    #[test]
    fn the_human_fields_are_still_there() {
        let b = record(&["b@example.com", "c@example.com"]).block("\n");
        assert!(
            b.starts_with("X-Pipescan-Quarantine: v=2 id=AbCdEf012_-x len="),
            "{b}"
        );
        assert!(
            b.ends_with("X-Envelope-From: <a@example.org>\nX-Envelope-To: <b@example.com>, <c@example.com>\nX-Quarantine-ID: <AbCdEf012_-x>\nX-Pipescan-Category: INFECTED (Eicar-Signature)\n"),
            "{b}"
        );
    }

    #[test]
    fn a_damaged_record_is_refused() {
        let good = record(&["b@example.com"]).block("\n");
        for (bad, why) in [
            (good.replace("v=2", "v=9"), "version"),
            (good.replace("id=AbCdEf012_-x", "id=short"), "id"),
            (
                good.replace("from=a@example.org", "xfrom=a@example.org"),
                "sender",
            ),
            (good.replace("to=b", "to=+ZZb"), "xtext"),
        ] {
            assert_ne!(bad, good, "{why}");
            let e = Record::parse(format!("{bad}\nrest").as_bytes()).unwrap_err();
            assert!(
                matches!(&e, Unreadable::Bad(w) if w.contains(why)),
                "{why}: {e:?}"
            );
        }
        assert!(matches!(
            Record::parse(b"Subject: hi\n\nbody"),
            Err(Unreadable::Bad(_))
        ));
    }

    /// A copy written before the record existed is still read, and only pipescan's fixed run of
    /// fields at the top counts: the sender's X-Envelope-* fields below it are the message's.
    #[test]
    fn old_copies_are_read_without_trusting_the_senders_fields() {
        let original = b"X-Envelope-To: <evil@example.net>\r\nX-Spam-Flag: forged stays\r\nSubject: s\r\n\r\nbody\x00\r\n";
        let ours = b"X-Envelope-From: <a@example.org>\r\nX-Envelope-To: <b@example.com>,\r\n <\"c, d\"@example.com>\r\nX-Quarantine-ID: <AbCdEf012_-x>\r\nX-Pipescan-Category: INFECTED (EICAR)\r\n";
        let raw = [&ours[..], &original[..]].concat();
        let (r, start) = Record::parse(&raw).unwrap();
        assert_eq!(r.sender, "a@example.org");
        assert_eq!(r.recipients, ["b@example.com", "\"c, d\"@example.com"]);
        assert_eq!(
            (r.category.as_str(), r.reason.as_str()),
            ("INFECTED", "EICAR")
        );
        assert_eq!(r.id, "AbCdEf012_-x");
        assert_eq!(&raw[start..], original);
        // With a score field.
        let ours = b"X-Envelope-From: <>\nX-Envelope-To: <b@x>\nX-Quarantine-ID: <AbCdEf012_-x>\nX-Pipescan-Category: SPAM (score=9)\nX-Spam-Score: 9\n";
        let raw = [&ours[..], b"X-Spam-Score: 0\nSubject: s\n\n"].concat();
        let (r, start) = Record::parse(&raw).unwrap();
        assert_eq!((r.sender.as_str(), r.score.as_deref()), ("", Some("9")));
        assert_eq!(&raw[start..], b"X-Spam-Score: 0\nSubject: s\n\n");
        // Out of order or missing: not ours.
        assert!(Record::parse(b"X-Envelope-To: <b@x>\nX-Envelope-From: <a@x>\nX-Quarantine-ID: <AbCdEf012_-x>\nX-Pipescan-Category: V\n\n").is_err());
    }

    #[test]
    fn xtext_round_trips() {
        for s in ["", "a@b", "\"a b\"@c", "+=+", "\u{e9}\u{1F600}"] {
            let x = xtext(s);
            assert!(x.bytes().all(|b| (b'!'..=b'~').contains(&b)), "{x}");
            assert_eq!(unxtext(&x).as_deref(), Some(s));
        }
        assert_eq!(xtext("a b+c=d"), "a+20b+2Bc+3Dd");
        assert_eq!(unxtext("+4"), None);
        assert_eq!(unxtext("+FF"), None, "not UTF-8");
    }
}
