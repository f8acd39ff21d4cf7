//! The header scanner (`Header::parse`) and the header editor (`Edits` -> `Rewrite`).
//!
//! Input: one control byte choosing the edits, then the message. Asserts, besides "never panics":
//! - the parsed header is consistent: fields are contiguous from `insert_at`, each starts with its
//!   name and a colon, continuation lines start with SP/HT, the header ends at the end of input,
//!   after an empty line, or at a line that is not a field;
//! - with no edits the output is byte-identical to the input;
//! - otherwise the output is exactly: the input before `insert_at` (an mbox `From ` line), our added
//!   fields (7-bit, folded, ending in the message's own line ending), a `Subject:` with the tag if
//!   the message had none, then every input field in order, minus the removed ones, with the tag
//!   inserted into Subject values, then the body bytes unchanged;
//! - a second pass with the same Subject tag changes nothing (no doubled tag).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipescan::verdict::Edits;
use pipescan::message::header::Eol;
use pipescan::message::header::Header;
use pipescan::message::edit::Rewrite;
use pipescan::message::text::encode_value;

const FORGEABLE: &[&str] = &["X-Spam-*", "X-Quarantine-ID", "X-Pipescan-Alert"];
const TAGS: &[&str] = &[
    "***SPAM*** ",
    "[SPAM]",
    "***INFECTED***  ",
    "{Spam?}\t",
    "\u{c4}rger ",
    "Subject:",
];

fn edits_for(ctl: u8) -> Edits {
    let mut e = Edits::default();
    if ctl & 1 != 0 {
        e.add
            .push(("X-Virus-Scanned".into(), "pipescan at mx.example".into()));
        if ctl & 0x40 != 0 {
            let status = (0..24)
                .map(|i| format!("TEST_RULE_{i}=1.{i}"))
                .collect::<Vec<_>>()
                .join(",");
            e.add.push((
                "X-Spam-Status".into(),
                format!("Yes, score=9.9 required=5.0 tests={status} autolearn=no"),
            ));
            e.add.push((
                "X-Pipescan-Alert".into(),
                "V\u{ed}rus: h\u{e9}llo\r\nBcc: x".into(),
            ));
        }
    }
    if ctl & 2 != 0 {
        e.remove_names = FORGEABLE.iter().map(|s| s.to_string()).collect();
    }
    if ctl & 4 != 0 {
        e.remove_exact
            .push(("X-Virus-Scanned".into(), "pipescan at mx.example".into()));
    }
    if ctl & 8 != 0 {
        e.subject_tag = Some(TAGS[usize::from(ctl >> 4) % TAGS.len()].into());
    }
    e
}

fn name_matches(name: &[u8], pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(p) => name.len() >= p.len() && name[..p.len()].eq_ignore_ascii_case(p.as_bytes()),
        None => name.eq_ignore_ascii_case(pattern.as_bytes()),
    }
}

fn is_field_name(b: &[u8]) -> bool {
    !b.is_empty() && b[0] != b' ' && b.iter().all(|&c| (33..=126).contains(&c) || c == b' ')
}

fn check_header(raw: &[u8], h: &Header) {
    // An mbox line is "From " not followed (after blanks) by a colon: "From : x" is a field.
    let from_field = raw.starts_with(b"From ")
        && raw[4..]
            .iter()
            .find(|&&b| b != b' ' && b != b'\t')
            .is_some_and(|&b| b == b':');
    if raw.starts_with(b"From ") && !from_field {
        let nl = raw
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| i + 1);
        assert_eq!(h.insert_at, nl, "mbox From line");
    } else {
        assert_eq!(h.insert_at, 0);
    }
    let mut pos = h.insert_at;
    for f in &h.fields {
        assert_eq!(f.start, pos, "fields are contiguous");
        assert!(f.start < f.value_start && f.value_start <= f.end && f.end <= raw.len());
        let before_colon = &raw[f.start..f.value_start - 1];
        assert_eq!(raw[f.value_start - 1], b':');
        assert!(
            !before_colon.contains(&b':'),
            "name is up to the first colon"
        );
        assert!(before_colon.starts_with(&f.name));
        assert!(
            before_colon[f.name.len()..]
                .iter()
                .all(|&b| b == b' ' || b == b'\t')
        );
        assert!(
            is_field_name(&f.name),
            "{:?}",
            String::from_utf8_lossy(&f.name)
        );
        let bytes = &raw[f.start..f.end];
        assert!(f.end == raw.len() || bytes.ends_with(b"\n"));
        for (k, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
            if k > 0 {
                assert!(line[0] == b' ' || line[0] == b'\t', "continuation line");
            }
        }
        pos = f.end;
    }
    let rest = &raw[pos..];
    let b = h.body_start;
    if b == raw.len() && pos == raw.len() {
        return;
    }
    if rest.starts_with(b"\n") {
        assert_eq!(b, pos + 1, "empty line ends the header");
    } else if rest.starts_with(b"\r\n") {
        assert_eq!(b, pos + 2, "empty CRLF line ends the header");
    } else {
        assert_eq!(b, pos, "a line that is not a field ends the header");
        // It really is not a field, nor a continuation of the last one.
        let line_end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let line = &rest[..line_end];
        let is_cont = !h.fields.is_empty() && (line[0] == b' ' || line[0] == b'\t');
        assert!(!is_cont);
        if let Some(c) = line.iter().position(|&b| b == b':') {
            let mut n = &line[..c];
            while let [r @ .., b' ' | b'\t'] = n {
                n = r;
            }
            assert!(!is_field_name(n) || line[0] == b' ' || line[0] == b'\t');
        }
    }
}

/// The Subject field as the editor must leave it.
fn tagged_subject(field: &[u8], value_off: usize, tag: &str) -> Vec<u8> {
    let value = &field[value_off..];
    let lead = value
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    let rest = &value[lead..];
    let bare = tag.trim_end();
    if rest.starts_with(bare.as_bytes()) {
        return field.to_vec();
    }
    let at = value_off + lead;
    let starts_line = rest.is_empty() || rest[0] == b'\r' || rest[0] == b'\n';
    let insert = if starts_line {
        format!(" {bare}")
    } else if lead == 0 {
        format!(" {tag}")
    } else {
        tag.to_string()
    };
    [&field[..at], insert.as_bytes(), &field[at..]].concat()
}

fn rewrite(raw: &[u8], e: &Edits) -> (Header, Vec<u8>) {
    let h = Header::parse(raw);
    let mut out = Vec::new();
    let n = Rewrite::new(raw, &h, e)
        .write_to(&mut out, raw, None)
        .expect("a Vec");
    assert_eq!(n as usize, out.len(), "byte count returned");
    (h, out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, raw)) = data.split_first() else {
        return;
    };
    let e = edits_for(ctl);
    let (h, out) = rewrite(raw, &e);
    check_header(raw, &h);

    // Field::text never panics and has no line breaks.
    for f in &h.fields {
        assert!(!f.text(raw).contains(['\r', '\n']));
    }

    if e == Edits::default() {
        assert!(out == raw, "no edits: output must be the input");
        return;
    }

    let eol = h.eol.as_str();
    // The ending of the first line after the mbox `From ` line; when that line is empty or has no
    // line break, the ending before it (the `From ` line's) is used, and either is fine.
    let rest = &raw[h.insert_at..];
    if let Some(i) = rest.iter().position(|&b| b == b'\n')
        && i >= 1
    {
        let crlf = rest[i - 1] == b'\r';
        assert_eq!(h.eol == Eol::CrLf, crlf, "line ending detection");
    }

    // Expected output, built from the spec.
    let mut top = Vec::new();
    for (name, value) in &e.add {
        let start = top.len();
        let enc = encode_value(value);
        assert!(enc.is_ascii());
        crate_fold_check(name, &enc, eol, &mut top);
        let added = &top[start..];
        assert!(added.is_ascii());
    }
    let has_subject = h.fields.iter().any(|f| f.is("Subject"));
    if let (Some(tag), false) = (&e.subject_tag, has_subject) {
        top.extend_from_slice(format!("Subject: {}{eol}", tag.trim_end()).as_bytes());
    }
    // Two separators the rewrite adds so that nothing changes meaning (fuzz/README.md, Findings
    // 1 and 2, fixed): a line break after an mbox `From ` line that had none, and an empty line
    // after our fields when there is no header and the message starts with white space.
    if !top.is_empty() {
        if h.insert_at > 0 && raw[h.insert_at - 1] != b'\n' {
            top.splice(0..0, eol.bytes());
        }
        if h.fields.is_empty() && matches!(raw.get(h.insert_at), Some(b' ' | b'\t')) {
            top.extend_from_slice(eol.as_bytes());
        }
    }
    let mut want = raw[..h.insert_at].to_vec();
    want.extend_from_slice(&top);
    for f in &h.fields {
        let text = f.text(raw);
        let removed = e.remove_names.iter().any(|n| name_matches(&f.name, n))
            || e.remove_exact.iter().any(|(n, v)| f.is(n) && text == *v);
        let bytes = &raw[f.start..f.end];
        if removed {
            continue;
        }
        match (&e.subject_tag, f.is("Subject")) {
            (Some(tag), true) => {
                want.extend_from_slice(&tagged_subject(bytes, f.value_start - f.start, tag))
            }
            _ => want.extend_from_slice(bytes),
        }
    }
    let fields_end = h.fields.last().map_or(h.insert_at, |f| f.end);
    want.extend_from_slice(&raw[fields_end..]);
    assert!(
        out == want,
        "output differs from the documented edits:\n got {:?}\nwant {:?}",
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&want)
    );
    // The body never changes.
    assert!(out.ends_with(&raw[h.body_start..]));

    // Read back, the output has our fields, the kept fields, and the same body: the edits did
    // not turn body lines into header lines or hide our fields.
    let h2 = Header::parse(&out);
    let kept = h
        .fields
        .iter()
        .filter(|f| {
            let text = f.text(raw);
            !(e.remove_names.iter().any(|n| name_matches(&f.name, n))
                || e.remove_exact.iter().any(|(n, v)| f.is(n) && text == *v))
        })
        .count();
    let added = e.add.len() + usize::from(e.subject_tag.is_some() && !has_subject);
    assert_eq!(
        h2.fields.len(),
        added + kept,
        "fields after the edit, read back"
    );
    assert!(
        out[h2.body_start..] == raw[h.body_start..],
        "body after the edit, read back"
    );

    // A second pass with the same tag adds no second tag.
    if let Some(tag) = &e.subject_tag {
        let again = Edits {
            subject_tag: Some(tag.clone()),
            ..Edits::default()
        };
        let (_, out2) = rewrite(&out, &again);
        assert!(
            out2 == out,
            "Subject tag doubled on a second pass:\n{:?}",
            String::from_utf8_lossy(&out2)
        );
    }
});

/// Appends our rendering of an added field after checking `message::fold`'s output against the
/// rules: lines end in `eol`, continuation lines start with a tab, no line passes 78 characters
/// unless one word is longer, and unfolding gives back `name: value`.
fn crate_fold_check(name: &str, enc: &str, eol: &str, top: &mut Vec<u8>) {
    let folded = pipescan::message::text::fold(name, enc, eol);
    assert!(folded.ends_with(eol));
    let body = &folded[..folded.len() - eol.len()];
    for (i, line) in body.split(eol).enumerate() {
        assert!(
            !line.contains(['\r', '\n']),
            "stray line break in {folded:?}"
        );
        if i > 0 {
            assert!(line.starts_with('\t'));
        }
        let words = if i == 0 {
            &line[name.len() + 1..]
        } else {
            &line[1..]
        };
        let words = words.split(' ').filter(|w| !w.is_empty()).count();
        assert!(line.len() <= 78 || words <= 1, "{line:?}");
    }
    let unfolded = body.replace(&format!("{eol}\t"), " ");
    let words: Vec<&str> = enc.split(' ').filter(|w| !w.is_empty()).collect();
    let want = if words.is_empty() {
        format!("{name}: ")
    } else {
        format!("{name}: {}", words.join(" "))
    };
    assert_eq!(unfolded.trim_end(), want.trim_end());
    top.extend_from_slice(folded.as_bytes());
}
