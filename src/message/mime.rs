//! MIME as mail user agents read it: the Content-Type / Content-Disposition / transfer-encoding
//! facts of one entity ([`MimeInfo`]), lenient base64 and quoted-printable decoding, and the
//! body parts of a multipart ([`Multipart`]: a delimiter is a whole line, RFC 2046).
//!
//! Contract: nothing here fails or panics on odd input; what cannot be read is read the way
//! MUAs read it (a bad base64 character is skipped, a multipart without its close delimiter
//! runs to the end). mail-parser is used only for header parameters (RFC 2231, RFC 2047).

use crate::message::header::Header;
use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;
use std::borrow::Cow;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Base64,
    QuotedPrintable,
}

/// What a part's header says about its body.
pub struct MimeInfo {
    pub declared: String,
    pub boundary: Option<Vec<u8>>,
    pub encoding: Encoding,
    /// Distinct names: Content-Disposition filename first (what MUAs prefer), then the
    /// Content-Type name; every field counts when a header repeats them.
    pub names: Vec<String>,
    /// Which fields repeat with different values, so that parsers would disagree.
    pub conflict: Option<&'static str>,
    /// The Content-Type's `smime-type` parameter, lowercased (RFC 8551: "enveloped-data" is
    /// encrypted, "signed-data" is not).
    pub smime_type: Option<String>,
}

impl MimeInfo {
    pub fn read(bytes: &[u8], header: &Header, default_type: &str) -> MimeInfo {
        let params = |name: &str| -> Vec<mail_parser::ContentType<'_>> {
            header
                .fields
                .iter()
                .filter(|f| f.is(name))
                .filter_map(|f| {
                    match MessageStream::new(bytes.get(f.value_start..f.end)?).parse_content_type()
                    {
                        HeaderValue::ContentType(ct) => Some(ct),
                        _ => None,
                    }
                })
                .collect()
        };
        let types = params("Content-Type");
        let dispositions = params("Content-Disposition");
        let type_of = |ct: &mail_parser::ContentType<'_>| {
            let t = ct.ctype().trim().to_ascii_lowercase();
            match ct.subtype() {
                Some(s) => format!("{t}/{}", s.trim().to_ascii_lowercase()),
                None => t,
            }
        };
        let declared = match types.first() {
            Some(ct) if !ct.ctype().trim().is_empty() => type_of(ct),
            _ => default_type.to_string(),
        };
        let boundary = types
            .first()
            .and_then(|ct| ct.attribute("boundary"))
            .filter(|b| !b.is_empty())
            .map(|b| b.as_bytes().to_vec());
        let mut conflict = None;
        if types.iter().skip(1).any(|ct| {
            type_of(ct) != declared
                || ct.attribute("boundary").map(str::as_bytes) != boundary.as_deref()
        }) {
            conflict = Some("Content-Type");
        }
        let encodings: Vec<Encoding> = header
            .fields
            .iter()
            .filter(|f| f.is("Content-Transfer-Encoding"))
            .map(|f| encoding(&f.text(bytes)))
            .collect();
        if encodings.windows(2).any(|w| w[0] != w[1]) {
            conflict = Some("Content-Transfer-Encoding");
        }
        let mut names: Vec<String> = Vec::new();
        let found = dispositions
            .iter()
            .flat_map(|cd| [cd.attribute("filename"), cd.attribute("name")])
            .chain(types.iter().map(|ct| ct.attribute("name")))
            .flatten();
        for n in found {
            if !n.is_empty() && !names.iter().any(|m| m == n) {
                names.push(n.to_string());
            }
        }
        let smime_type = types
            .first()
            .and_then(|ct| ct.attribute("smime-type"))
            .map(|t| t.trim().to_ascii_lowercase());
        MimeInfo {
            smime_type,
            declared,
            boundary,
            encoding: encodings.first().copied().unwrap_or(Encoding::Identity),
            names,
            conflict,
        }
    }
}

/// The transfer encoding named by a Content-Transfer-Encoding value; unknown ones ("7bit",
/// "binary", "x-uuencode") are left as they are.
pub fn encoding(value: &str) -> Encoding {
    let token: String = value
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    if token.eq_ignore_ascii_case("base64") {
        Encoding::Base64
    } else if token.eq_ignore_ascii_case("quoted-printable") {
        Encoding::QuotedPrintable
    } else {
        Encoding::Identity
    }
}

pub fn decode(body: &[u8], encoding: Encoding) -> Cow<'_, [u8]> {
    decode_prefix(body, encoding, usize::MAX).0
}

/// The first `keep` decoded bytes and the whole decoded length, without holding the rest: a
/// leaf is judged by its first bytes and its size, so a 50 MB attachment costs no 37 MB copy.
pub fn decode_prefix(body: &[u8], encoding: Encoding, keep: usize) -> (Cow<'_, [u8]>, u64) {
    match encoding {
        Encoding::Identity => (Cow::Borrowed(body), body.len() as u64),
        Encoding::Base64 => {
            let mut out = Sink::new(keep, body.len() / 4 * 3 + 3);
            decode_base64_into(body, &mut out);
            (Cow::Owned(out.kept), out.total)
        }
        Encoding::QuotedPrintable => {
            let mut out = Sink::new(keep, body.len());
            decode_qp_into(body, &mut out);
            (Cow::Owned(out.kept), out.total)
        }
    }
}

/// Decoded bytes: the first `keep` are kept, all are counted.
struct Sink {
    kept: Vec<u8>,
    keep: usize,
    total: u64,
}

impl Sink {
    fn new(keep: usize, estimate: usize) -> Sink {
        Sink {
            kept: Vec::with_capacity(estimate.min(keep)),
            keep,
            total: 0,
        }
    }

    fn push(&mut self, b: u8) {
        if self.kept.len() < self.keep {
            self.kept.push(b);
        }
        self.total += 1;
    }

    fn extend_from_slice(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(b);
        }
    }
}

#[cfg(test)]
pub fn decode_base64(input: &[u8]) -> Vec<u8> {
    let mut out = Sink::new(usize::MAX, input.len());
    decode_base64_into(input, &mut out);
    out.kept
}

#[cfg(test)]
pub fn decode_qp(input: &[u8]) -> Vec<u8> {
    let mut out = Sink::new(usize::MAX, input.len());
    decode_qp_into(input, &mut out);
    out.kept
}

/// Base64 as MUAs decode it: characters outside the alphabet are skipped, and `=` ends a
/// quantum but not the data (so neither a stray character nor early padding hides the rest).
fn decode_base64_into(input: &[u8], out: &mut Sink) {
    const SKIP: u8 = 0xFF;
    const PAD: u8 = 0xFE;
    const TABLE: [u8; 256] = {
        let mut t = [SKIP; 256];
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut i = 0;
        while i < 64 {
            t[alphabet[i] as usize] = i as u8;
            i += 1;
        }
        t[b'=' as usize] = PAD;
        t
    };
    let (mut acc, mut n) = (0u32, 0u8);
    let flush = |out: &mut Sink, acc: u32, n: u8| match n {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => {}
    };
    for &c in input {
        match TABLE[usize::from(c)] {
            SKIP => {}
            PAD => {
                flush(out, acc, n);
                (acc, n) = (0, 0);
            }
            v => {
                acc = (acc << 6) | u32::from(v);
                n += 1;
                if n == 4 {
                    out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
                    (acc, n) = (0, 0);
                }
            }
        }
    }
    flush(out, acc, n);
}

/// Quoted-printable, leniently: `=XX` and soft line breaks are decoded, anything else is kept.
fn decode_qp_into(input: &[u8], out: &mut Sink) {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        if c != b'=' {
            out.push(c);
            i += 1;
            continue;
        }
        if let (Some(h), Some(l)) = (
            input.get(i + 1).and_then(|&b| hex(b)),
            input.get(i + 2).and_then(|&b| hex(b)),
        ) {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        // "=" then optional white space then a line break: a soft break.
        let mut j = i + 1;
        while j < input.len() && matches!(input[j], b' ' | b'\t' | b'\r') {
            j += 1;
        }
        if j == input.len() || input[j] == b'\n' {
            i = (j + 1).min(input.len());
        } else {
            out.push(b'=');
            i += 1;
        }
    }
}

/// The body parts of a multipart body, split at delimiter lines as RFC 2046 defines them: a line
/// that is `--boundary` (or `--boundary--`, the end) followed only by white space. A boundary
/// string elsewhere in a line is content.
pub struct Multipart<'a> {
    body: &'a [u8],
    boundary: &'a [u8],
    /// Start of the current part (after its delimiter line), or None when finished.
    start: Option<usize>,
}

impl<'a> Multipart<'a> {
    /// None when the body holds no delimiter line at all (then the part is not a multipart).
    pub fn new(body: &'a [u8], boundary: &'a [u8]) -> Option<Multipart<'a>> {
        let (_, next, close) = next_delimiter(body, boundary, 0)?;
        Some(Multipart {
            body,
            boundary,
            start: (!close).then_some(next),
        })
    }
}

impl<'a> Iterator for Multipart<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.start?;
        match next_delimiter(self.body, self.boundary, start) {
            Some((line, next, close)) => {
                // The line break before the delimiter belongs to the delimiter.
                let mut end = line.max(start);
                if end > start && self.body[end - 1] == b'\n' {
                    end -= 1;
                    if end > start && self.body[end - 1] == b'\r' {
                        end -= 1;
                    }
                }
                self.start = (!close).then_some(next);
                Some(&self.body[start..end])
            }
            // No closing delimiter: the last part runs to the end.
            None => {
                self.start = None;
                Some(&self.body[start..])
            }
        }
    }
}

/// The next delimiter line at or after `from` (which is a line start): (its start, the start of
/// the line after it, whether it is the close delimiter).
fn next_delimiter(body: &[u8], boundary: &[u8], from: usize) -> Option<(usize, usize, bool)> {
    let mut pos = from;
    while pos < body.len() {
        let end = match body[pos..].iter().position(|&b| b == b'\n') {
            Some(i) => pos + i + 1,
            None => body.len(),
        };
        let line = &body[pos..end];
        if let Some(rest) = line.strip_prefix(b"--")
            && let Some(rest) = rest.strip_prefix(boundary)
        {
            let (close, rest) = match rest.strip_prefix(b"--") {
                Some(r) => (true, r),
                None => (false, rest),
            };
            if rest
                .iter()
                .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            {
                return Some((pos, end, close));
            }
        }
        pos = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_decoders() {
        assert_eq!(decode_base64(b"SGVs\nbG8=\n"), b"Hello");
        assert_eq!(decode_base64(b"SG!V*sbG8"), b"Hello");
        assert_eq!(decode_base64(b"QQ==QUI="), b"AAB");
        assert_eq!(decode_qp(b"a=3Db=\nc= \r\nd=ZZ="), b"a=bcd=ZZ");
        // A leaf keeps only its first bytes but knows its whole decoded size.
        let (head, size) = decode_prefix(b"SGVs\nbG8gd29y\nbGQ=\n", Encoding::Base64, 4);
        assert_eq!((&head[..], size), (&b"Hell"[..], 11));
        let (head, size) = decode_prefix(b"a=3Db=\ncd", Encoding::QuotedPrintable, 2);
        assert_eq!((&head[..], size), (&b"a="[..], 5));
    }
}
