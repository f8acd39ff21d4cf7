//! A view over the raw header section of a message: where each field starts and ends, its
//! name and value, where the body starts, the line ending in use.
//!
//! The header is scanned here, by hand, rather than through a MIME parser: the rules for where a
//! field starts and ends are few, and owning them keeps header edits exact for any input, however
//! malformed (a MIME parser may normalise, and mail-parser 0.11 panics in debug builds on some
//! input). MIME structure, where it is needed, comes from message::mime and message::parts.

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
        if is_mbox_from_line(raw) {
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

/// An mbox `From sender date` line starts the message: "From " and not a From field written with
/// white space before its colon (`From : x@y`, which spamd and MUAs read as the From field).
fn is_mbox_from_line(raw: &[u8]) -> bool {
    if !raw.starts_with(b"From ") {
        return false;
    }
    let line = &raw[..line_end(raw, 0)];
    let after = &line[4..];
    let name_rest = after
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    after.get(name_rest) != Some(&b':')
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
