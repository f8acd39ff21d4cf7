//! Text we write into headers and logs, made safe: RFC 2047 encoding and folding for the fields
//! we add (7-bit, so reinjection never needs SMTPUTF8), escaping for what reaches a log line or a
//! terminal, and base64.

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
