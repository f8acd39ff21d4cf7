//! The only edits pipescan makes to a message it passes on.
//!
//! Contract: the output is the input with (a) our fields inserted at the top of the header (after
//! an mbox `From ` line, if the input has one), (b) whole fields removed, and (c) a tag inserted
//! into Subject values. Every other byte is copied as it is, so an edit never disturbs 8-bit
//! headers, NULs, the body, CRLF or LF line ends, or a missing final newline.

use crate::message::header::{Field, Header};
use crate::message::text::fold;
use crate::verdict::Edits;
use std::io::{self, Write};

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
                    .any(|(n, v)| f.is(n) && f.text(raw) == *v)
                || (f.is("Authentication-Results")
                    && edits
                        .remove_authserv_ids
                        .iter()
                        .any(|id| authserv_id_is(f.value(raw), id)))
                || hides_forged(&raw[f.start..f.end], edits);
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

/// A field whose text holds, after a bare CR (a line break to some readers, not to ours), what
/// those readers would take for a field we remove as forged.
fn hides_forged(field: &[u8], edits: &Edits) -> bool {
    let mut rest = field;
    while let Some(i) = rest.iter().position(|&b| b == b'\r') {
        rest = &rest[i + 1..];
        if rest.first() == Some(&b'\n') {
            continue;
        }
        let line_end = rest
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(rest.len());
        let line = &rest[..line_end];
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii_end();
        if name.is_empty() || name[0] == b' ' || name[0] == b'\t' {
            continue;
        }
        let value = &line[colon + 1..];
        let forged = edits.remove_names.iter().any(|n| name_matches(name, n))
            || edits
                .remove_exact
                .iter()
                .any(|(n, _)| name.eq_ignore_ascii_case(n.as_bytes()))
            || (name.eq_ignore_ascii_case(b"Authentication-Results")
                && edits
                    .remove_authserv_ids
                    .iter()
                    .any(|id| authserv_id_is(value, id)));
        if forged {
            return true;
        }
    }
    false
}

/// The authserv-id of an Authentication-Results value (RFC 8601 §2.2: CFWS, then a token or a
/// quoted string) is `id`, case-insensitively, a trailing dot aside. What follows it is not
/// looked at: a value that is not valid RFC 8601 after our id (`mx.test x; dkim=pass`) would
/// still name us to a lenient reader, and removing a forged field costs nothing. A value we
/// cannot read this far is not ours.
pub fn authserv_id_is(value: &[u8], id: &str) -> bool {
    let rest = skip_cfws(value);
    let word: Vec<u8> = if let Some(q) = rest.strip_prefix(b"\"") {
        let Some(end) = q.iter().position(|&b| b == b'"') else {
            return false;
        };
        q[..end].iter().filter(|&&b| b != b'\\').copied().collect()
    } else {
        let end = rest
            .iter()
            .position(|&b| matches!(b, b';' | b'(' | b',' | b' ' | b'\t' | b'\r' | b'\n'))
            .unwrap_or(rest.len());
        rest[..end].to_vec()
    };
    let word = word.strip_suffix(b".").unwrap_or(&word);
    !word.is_empty() && word.eq_ignore_ascii_case(id.trim_end_matches('.').as_bytes())
}

/// Skips folding white space and (nested) comments.
fn skip_cfws(mut v: &[u8]) -> &[u8] {
    loop {
        let n = v
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .count();
        v = &v[n..];
        if v.first() != Some(&b'(') {
            return v;
        }
        let mut depth = 0usize;
        let mut i = 0;
        while i < v.len() {
            match v[i] {
                b'\\' => i += 1,
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        v = v.get(i + 1..).unwrap_or(&[]);
    }
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
