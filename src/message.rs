//! A view over the raw header section of a message, and the only edits pipescan makes to it.
//!
//! Contract: the output is the input with (a) our fields inserted at the top of the header (after
//! an mbox `From ` line, if the input has one), (b) whole fields removed, and (c) a tag inserted
//! into Subject values. Every other byte is copied as it is, so an edit never disturbs 8-bit
//! headers, NULs, the body, CRLF or LF line ends, or a missing final newline.
//!
//! The header is scanned here, by hand, rather than through a MIME parser: the rules for where a
//! field starts and ends are few, and owning them keeps header edits exact for any input, however
//! malformed (a MIME parser may normalise, and mail-parser 0.11 panics in debug builds on some
//! input). MIME structure, where it is needed, comes from mail-parser in the scanners.

pub mod archive;
pub mod mime;
pub mod parts;
pub mod sniff;

pub use crate::verdict::Edits;
use std::io::{self, Write};

/// The line ending the message uses, so lines we add match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eol {
    Lf,
    CrLf,
}

impl Eol {
    pub fn as_str(self) -> &'static str {
        match self {
            Eol::Lf => "\n",
            Eol::CrLf => "\r\n",
        }
    }
}

/// One header field: `raw[start..end]` is the whole field, folded lines and line break included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field name as written, without trailing white space (empty for a line with no colon).
    pub name: Vec<u8>,
    pub start: usize,
    /// First byte after the colon (the value keeps its leading space).
    pub value_start: usize,
    pub end: usize,
}

impl Field {
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }
    pub fn value<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        &raw[self.value_start..self.end]
    }
    /// The value unfolded and trimmed, lossily decoded (for logs and comparisons).
    pub fn text(&self, raw: &[u8]) -> String {
        let v: Vec<u8> = self
            .value(raw)
            .iter()
            .copied()
            .filter(|&b| b != b'\r' && b != b'\n')
            .collect();
        String::from_utf8_lossy(&v).trim().to_string()
    }
}

/// The header section of a message.
#[derive(Debug, Clone)]
pub struct Header {
    /// Where our fields go: 0, or just after a leading mbox `From ` line.
    pub insert_at: usize,
    pub fields: Vec<Field>,
    /// Offset of the body: after the empty line, or where the header stopped.
    pub body_start: usize,
    pub eol: Eol,
}

impl Header {
    /// Scans the header section of `raw` (which may be only a prefix of the message).
    pub fn parse(raw: &[u8]) -> Header {
        let mut pos = 0;
        if raw.starts_with(b"From ") {
            pos = line_end(raw, 0);
        }
        let insert_at = pos;
        let first_end = line_end(raw, pos);
        let eol = if first_end >= 2 && raw[first_end - 1] == b'\n' && raw[first_end - 2] == b'\r' {
            Eol::CrLf
        } else {
            Eol::Lf
        };
        let mut fields: Vec<Field> = Vec::new();
        let body_start;
        loop {
            if pos >= raw.len() {
                body_start = raw.len();
                break;
            }
            let end = line_end(raw, pos);
            let line = &raw[pos..end];
            if line == b"\n" || line == b"\r\n" {
                body_start = end;
                break;
            }
            if line[0] == b' ' || line[0] == b'\t' {
                match fields.last_mut() {
                    Some(f) => {
                        f.end = end;
                        pos = end;
                        continue;
                    }
                    // A message starting with white space has no header.
                    None => {
                        body_start = pos;
                        break;
                    }
                }
            }
            match line.iter().position(|&b| b == b':') {
                Some(colon) if is_name(trim_end(&line[..colon])) => {
                    fields.push(Field {
                        name: trim_end(&line[..colon]).to_vec(),
                        start: pos,
                        value_start: pos + colon + 1,
                        end,
                    });
                }
                // Not a field: the header ends here (as Postfix cleanup decides too).
                _ => {
                    body_start = pos;
                    break;
                }
            }
            pos = end;
        }
        Header {
            insert_at,
            fields,
            body_start,
            eol,
        }
    }

    pub fn count(&self, name: &str) -> usize {
        self.fields.iter().filter(|f| f.is(name)).count()
    }

    /// The first field's unfolded value, e.g. for Message-ID in the log line.
    pub fn first_text(&self, raw: &[u8], name: &str) -> Option<String> {
        self.fields.iter().find(|f| f.is(name)).map(|f| f.text(raw))
    }
}

fn line_end(raw: &[u8], from: usize) -> usize {
    match raw[from..].iter().position(|&b| b == b'\n') {
        Some(i) => from + i + 1,
        None => raw.len(),
    }
}

fn trim_end(b: &[u8]) -> &[u8] {
    let mut n = b.len();
    while n > 0 && (b[n - 1] == b' ' || b[n - 1] == b'\t') {
        n -= 1;
    }
    &b[..n]
}

/// RFC 5322 field names are printable ASCII but colon; we also take obsolete names with inner
/// spaces ("Sub ject") as fields rather than ending the header on them.
fn is_name(b: &[u8]) -> bool {
    !b.is_empty() && b[0] != b' ' && b.iter().all(|&c| (33..=126).contains(&c) || c == b' ')
}

/// The addresses in an address-list field value (From:, To:), lowercased: the contents of
/// `<...>` where present, otherwise the words containing `@`. Good enough for list lookups;
/// not a validator.
pub fn addresses(value: &str) -> Vec<String> {
    // Split at commas outside quotes, comments and angle brackets.
    let mut items = Vec::new();
    let (mut quoted, mut depth, mut angle, mut start) = (false, 0usize, false, 0);
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = depth.saturating_sub(1),
            '<' if !quoted && depth == 0 => angle = true,
            '>' if !quoted && depth == 0 => angle = false,
            ',' | ';' | ':' if !quoted && depth == 0 && !angle => {
                items.push(&value[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    items.push(&value[start..]);
    items
        .into_iter()
        .filter_map(|item| {
            let a = match (item.rfind('<'), item.rfind('>')) {
                (Some(o), Some(c)) if o < c => item[o + 1..c].trim().to_string(),
                _ => item
                    .split_whitespace()
                    .find(|w| w.contains('@'))?
                    .trim_matches(|c| c == '"' || c == '(' || c == ')')
                    .to_string(),
            };
            a.contains('@').then(|| a.to_lowercase())
        })
        .collect()
}

/// One splice: replace `raw[at..at + remove]` with `insert`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Splice {
    at: usize,
    remove: usize,
    insert: Vec<u8>,
}

/// The edits resolved against one header, ready to write.
#[derive(Debug, Clone)]
pub struct Rewrite {
    splices: Vec<Splice>,
}

impl Rewrite {
    pub fn new(raw: &[u8], header: &Header, edits: &Edits) -> Rewrite {
        let eol = header.eol.as_str();
        let mut splices = Vec::new();
        let mut top = Vec::new();
        for (name, value) in &edits.add {
            top.extend_from_slice(fold(name, value, eol).as_bytes());
        }
        let has_subject = header.fields.iter().any(|f| f.is("Subject"));
        if let (Some(tag), false) = (&edits.subject_tag, has_subject) {
            top.extend_from_slice(format!("Subject: {}{eol}", tag.trim_end()).as_bytes());
        }
        if !top.is_empty() {
            let at = header.insert_at.min(raw.len());
            // An mbox "From " line without its line break: ours must not join it.
            if at > 0 && raw[at - 1] != b'\n' {
                top.splice(0..0, eol.bytes());
            }
            // No header, and the message starts with white space: that line would read as a
            // continuation of our last field. An empty line keeps the whole message body.
            if header.fields.is_empty() && matches!(raw.get(at), Some(b' ' | b'\t')) {
                top.extend_from_slice(eol.as_bytes());
            }
            splices.push(Splice {
                at: header.insert_at,
                remove: 0,
                insert: top,
            });
        }
        for f in &header.fields {
            let forged = edits.remove_names.iter().any(|n| name_matches(&f.name, n))
                || edits
                    .remove_exact
                    .iter()
                    .any(|(n, v)| f.is(n) && f.text(raw) == *v);
            if forged {
                splices.push(Splice {
                    at: f.start,
                    remove: f.end - f.start,
                    insert: Vec::new(),
                });
            } else if let (Some(tag), true) = (&edits.subject_tag, f.is("Subject"))
                && let Some(s) = subject_splice(raw, f, tag)
            {
                splices.push(s);
            }
        }
        Rewrite { splices }
    }

    /// Writes the edited message: `raw` is the whole message, or its first part when `rest`
    /// supplies the remainder (a message spooled to disk).
    pub fn write_to(
        &self,
        out: &mut dyn Write,
        raw: &[u8],
        rest: Option<&mut dyn io::Read>,
    ) -> io::Result<u64> {
        let mut pos = 0;
        let mut n = 0u64;
        for s in &self.splices {
            out.write_all(&raw[pos..s.at])?;
            out.write_all(&s.insert)?;
            n += (s.at - pos + s.insert.len()) as u64;
            pos = s.at + s.remove;
        }
        out.write_all(&raw[pos..])?;
        n += (raw.len() - pos) as u64;
        if let Some(r) = rest {
            n += io::copy(r, out)?;
        }
        Ok(n)
    }

    /// The edited bytes, for tests.
    #[cfg(test)]
    pub fn apply(&self, raw: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(raw.len() + 256);
        self.write_to(&mut v, raw, None)
            .expect("writing to a Vec cannot fail");
        v
    }
}

/// Text made safe for logs, reasons and alerts (file names, Message-IDs, header lines): control,
/// bidi, line-separator and other invisible format characters are escaped (`\u{202e}`), and
/// long text is cut at `max_chars` characters.
pub fn printable(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars.saturating_mul(2)));
    for (n, c) in s.chars().enumerate() {
        if n == max_chars {
            out.push('…');
            break;
        }
        let hidden = c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
                | '\u{2028}' | '\u{2029}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}');
        if hidden {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn name_matches(name: &[u8], pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => {
            name.len() >= prefix.len()
                && name[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        }
        None => name.eq_ignore_ascii_case(pattern.as_bytes()),
    }
}

/// Where to put the Subject tag: after the colon and one space; not at all when the value already
/// starts with the tag (no "***SPAM*** ***SPAM***" on a second pass).
fn subject_splice(raw: &[u8], f: &Field, tag: &str) -> Option<Splice> {
    let value = f.value(raw);
    let lead = value
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    let rest = &value[lead..];
    let bare = tag.trim_end();
    if rest.starts_with(bare.as_bytes()) {
        return None;
    }
    let starts_line = rest.is_empty() || rest[0] == b'\r' || rest[0] == b'\n';
    if lead == 0 || starts_line {
        // "Subject:x" or "Subject:" followed by a folded value: add the spacing ourselves.
        let insert = if starts_line {
            format!(" {bare}")
        } else {
            format!(" {tag}")
        };
        return Some(Splice {
            at: f.value_start + lead,
            remove: 0,
            insert: insert.into_bytes(),
        });
    }
    Some(Splice {
        at: f.value_start + lead,
        remove: 0,
        insert: tag.as_bytes().to_vec(),
    })
}

/// Renders one added field, 7-bit, folded at commas or spaces so no line passes 78 characters
/// where that can be helped (RFC 5322's SHOULD; 998 is the MUST).
pub fn fold(name: &str, value: &str, eol: &str) -> String {
    let value = encode_value(value);
    let mut out = String::with_capacity(name.len() + value.len() + 8);
    out.push_str(name);
    out.push(':');
    let mut line_len = name.len() + 1;
    for (i, word) in value.split(' ').enumerate() {
        if word.is_empty() && i > 0 {
            continue;
        }
        if line_len + 1 + word.len() > 78 && line_len > name.len() + 1 {
            out.push_str(eol);
            out.push('\t');
            line_len = 1;
        } else {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += word.len();
    }
    out.push_str(eol);
    out
}

/// Makes a field value safe to add: control characters become spaces, and anything that is not
/// printable ASCII is RFC 2047 encoded, so our fields never make a message need SMTPUTF8.
pub fn encode_value(value: &str) -> String {
    let clean: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.is_ascii() {
        return clean;
    }
    // Encode word by word, keeping ASCII words readable; each encoded word stays under 75 chars.
    let mut out = Vec::new();
    for word in clean.split(' ') {
        if word.is_ascii() {
            out.push(word.to_string());
            continue;
        }
        let mut chunk = String::new();
        let mut parts = Vec::new();
        for c in word.chars() {
            if (chunk.len() + c.len_utf8()).div_ceil(3) * 4 > 60 {
                parts.push(format!("=?UTF-8?B?{}?=", base64(chunk.as_bytes())));
                chunk.clear();
            }
            chunk.push(c);
        }
        if !chunk.is_empty() {
            parts.push(format!("=?UTF-8?B?{}?=", base64(chunk.as_bytes())));
        }
        out.push(parts.join(" "));
    }
    out.join(" ")
}

pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// The author addresses (From:), lowercased, for white/blacklists.
pub fn authors(header: &Header, raw: &[u8]) -> Vec<String> {
    header
        .fields
        .iter()
        .filter(|f| f.is("From"))
        .flat_map(|f| addresses(&f.text(raw)))
        .collect()
}

/// Bulk or list mail gets no DSN: Precedence bulk/list/junk, List-Id, or Auto-Submitted other
/// than "no".
pub fn is_bulk(header: &Header, raw: &[u8]) -> bool {
    header.fields.iter().any(|f| {
        (f.is("Precedence")
            && matches!(
                f.text(raw).to_ascii_lowercase().as_str(),
                "bulk" | "list" | "junk"
            ))
            || f.is("List-Id")
            || (f.is("Auto-Submitted") && !f.text(raw).eq_ignore_ascii_case("no"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(raw: &[u8], e: &Edits) -> Vec<u8> {
        let h = Header::parse(raw);
        Rewrite::new(raw, &h, e).apply(raw)
    }

    fn add(name: &str, v: &str) -> Edits {
        Edits {
            add: vec![(name.into(), v.into())],
            ..Edits::default()
        }
    }

    #[test]
    fn fields_and_body_offsets() {
        let raw = b"A: 1\nB: two\n  folded\nC:3\n\nbody\n";
        let h = Header::parse(raw);
        assert_eq!(h.fields.len(), 3);
        assert_eq!(
            &raw[h.fields[1].start..h.fields[1].end],
            b"B: two\n  folded\n"
        );
        assert_eq!(&raw[h.body_start..], b"body\n");
        assert_eq!(h.eol, Eol::Lf);
        assert_eq!(h.fields[1].text(raw), "two  folded");
    }

    #[test]
    fn crlf_is_detected_and_used() {
        let raw = b"Subject: x\r\n\r\nbody\r\n";
        assert_eq!(
            edit(raw, &add("X-A", "1")),
            b"X-A: 1\r\nSubject: x\r\n\r\nbody\r\n"
        );
    }

    #[test]
    fn mbox_from_line_stays_first() {
        let raw = b"From a@b Mon Jan  1 00:00:00 2024\nSubject: x\n\nb";
        assert_eq!(
            edit(raw, &add("X-A", "1")),
            b"From a@b Mon Jan  1 00:00:00 2024\nX-A: 1\nSubject: x\n\nb"
        );
    }

    #[test]
    fn removes_forged_fields_whole_and_only_those() {
        let raw = b"X-Spam-Flag: YES\nx-spam-status: Yes,\n score=9\nSubject: s\nX-Spammy: keep\n\nX-Spam-Flag: body\n";
        let e = Edits {
            remove_names: vec!["X-Spam-*".into()],
            ..Edits::default()
        };
        assert_eq!(
            edit(raw, &e),
            b"Subject: s\nX-Spammy: keep\n\nX-Spam-Flag: body\n"
        );
    }

    #[test]
    fn exact_removal_keeps_other_scanners_fields() {
        let raw = b"X-Virus-Scanned: pipescan at mx\nX-Virus-Scanned: ClamAV at other\n\n";
        let e = Edits {
            remove_exact: vec![("X-Virus-Scanned".into(), "pipescan at mx".into())],
            ..Edits::default()
        };
        assert_eq!(edit(raw, &e), b"X-Virus-Scanned: ClamAV at other\n\n");
    }

    #[test]
    fn subject_tagging_variants() {
        let e = Edits {
            subject_tag: Some("***SPAM*** ".into()),
            ..Edits::default()
        };
        assert_eq!(edit(b"Subject: hi\n\n", &e), b"Subject: ***SPAM*** hi\n\n");
        assert_eq!(
            edit(b"Subject: ***SPAM*** hi\n\n", &e),
            b"Subject: ***SPAM*** hi\n\n"
        );
        assert_eq!(edit(b"Subject:hi\n\n", &e), b"Subject: ***SPAM*** hi\n\n");
        assert_eq!(
            edit(b"Subject:\n folded\n\n", &e),
            b"Subject: ***SPAM***\n folded\n\n"
        );
        assert_eq!(
            edit(b"From: a\n\nbody", &e),
            b"Subject: ***SPAM***\nFrom: a\n\nbody"
        );
        // No final newline, empty value.
        assert_eq!(edit(b"Subject:", &e), b"Subject: ***SPAM***");
    }

    #[test]
    fn header_without_body_or_newline() {
        let raw = b"Subject: x";
        let h = Header::parse(raw);
        assert_eq!(h.fields.len(), 1);
        assert_eq!(h.body_start, raw.len());
        assert_eq!(edit(raw, &add("X-A", "1")), b"X-A: 1\nSubject: x");
    }

    #[test]
    fn non_field_line_ends_the_header() {
        let raw = b"just a body line\nSubject: not a header\n";
        let h = Header::parse(raw);
        assert!(h.fields.is_empty());
        assert_eq!(h.body_start, 0);
    }

    #[test]
    fn empty_input() {
        assert_eq!(edit(b"", &add("X-A", "1")), b"X-A: 1\n");
    }

    #[test]
    fn added_values_are_7bit() {
        assert_eq!(encode_value("plain"), "plain");
        assert_eq!(encode_value("a\r\nb"), "a  b");
        let e = encode_value("at h\u{f6}st");
        assert!(e.is_ascii());
        assert_eq!(e, "at =?UTF-8?B?aMO2c3Q=?=");
    }

    #[test]
    fn long_values_fold() {
        let v = (0..30)
            .map(|i| format!("TEST_{i}=1.0,"))
            .collect::<Vec<_>>()
            .join(" ");
        let f = fold("X-Spam-Status", &v, "\n");
        assert!(f.lines().all(|l| l.len() <= 78), "{f}");
        let unfolded: String = f.replace("\n\t", " ");
        assert_eq!(unfolded, format!("X-Spam-Status: {v}\n"));
    }

    #[test]
    fn author_addresses() {
        assert_eq!(
            addresses("Alice <Alice@Example.org>"),
            ["alice@example.org"]
        );
        assert_eq!(
            addresses("a@b.example, \"C, D\" <c@d.example>"),
            ["a@b.example", "c@d.example"]
        );
        assert_eq!(
            addresses("Team: x@y.example, z@w.example;"),
            ["x@y.example", "z@w.example"]
        );
        assert_eq!(
            addresses("a@b.example, c@d.example"),
            ["a@b.example", "c@d.example"]
        );
        assert_eq!(addresses("undisclosed-recipients:;"), Vec::<String>::new());
    }

    #[test]
    fn base64_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
