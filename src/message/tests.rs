//! The header view and the edits, byte for byte.

use crate::message::edit::Rewrite;
use crate::message::header::{Eol, Header, addresses};
use crate::message::text::{base64, encode_value, fold};
use crate::verdict::Edits;

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

/// "From : x" is the From field written with a blank before its colon (spamd and MUAs read it
/// so), not an mbox line: it is a field of the header, and our fields go above it.
#[test]
fn a_from_field_with_a_blank_before_its_colon_is_no_mbox_line() {
    for raw in [
        &b"From : ceo@bank.example\nSubject: x\n\nb"[..],
        b"From \t: ceo@bank.example\n\nb",
    ] {
        let h = Header::parse(raw);
        assert_eq!(h.insert_at, 0, "{}", String::from_utf8_lossy(raw));
        assert!(h.fields[0].is("From"), "{}", String::from_utf8_lossy(raw));
    }
    assert_eq!(
        edit(b"From : ceo@bank.example\n\nb", &add("X-A", "1")),
        b"X-A: 1\nFrom : ceo@bank.example\n\nb"
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

#[test]
fn forged_authentication_results_with_our_authserv_id_go_others_stay() {
    let raw = b"Authentication-Results: mx.test; dkim=pass header.d=bank.test\nAuthentication-Results: (c) \"MX.TEST\" 1; spf=pass\nAuthentication-Results: mx.test.evil; dkim=pass\nAuthentication-Results: other.example; dkim=pass header.d=mx.test\nAuthentication-Results:\n mx.test;\n none\nSubject: s\n\nAuthentication-Results: mx.test; body\n";
    let e = Edits {
        remove_authserv_ids: vec!["mx.test".into()],
        ..Edits::default()
    };
    assert_eq!(
        edit(raw, &e),
        &b"Authentication-Results: mx.test.evil; dkim=pass\nAuthentication-Results: other.example; dkim=pass header.d=mx.test\nSubject: s\n\nAuthentication-Results: mx.test; body\n"[..]
    );
}

/// A bare CR ends a line for some readers (MUAs whose parsers take CR, LF and CRLF alike), not
/// for ours or Postfix's: a forged field behind one inside another field's value would reach
/// them as a field of its own. The field that hides it is removed whole.
#[test]
fn forged_fields_hidden_behind_a_bare_cr_go_with_the_field_that_hides_them() {
    let raw = b"X-Foo: a\rAuthentication-Results: mx.test; dkim=pass header.d=bank.test\nX-Bar: b\rx-spam-flag : NO\nX-Ok: c\rd: e\nX-Cr: f\r\n\tg\nSubject: s\n\nbody\n";
    let e = Edits {
        remove_names: vec!["X-Spam-*".into()],
        remove_authserv_ids: vec!["mx.test".into()],
        ..Edits::default()
    };
    assert_eq!(
        edit(raw, &e),
        &b"X-Ok: c\rd: e\nX-Cr: f\r\n\tg\nSubject: s\n\nbody\n"[..]
    );
}

#[test]
fn authserv_id_reading() {
    use crate::message::edit::authserv_id_is;
    assert!(authserv_id_is(b" mx.test; none", "mx.test"));
    assert!(authserv_id_is(b" mx.test", "mx.test"));
    assert!(authserv_id_is(b" (x(y)z) mx.test 1 ; dkim=pass", "mx.test"));
    assert!(!authserv_id_is(b" mx.tester; none", "mx.test"));
    assert!(!authserv_id_is(b" \"mx.test", "mx.test"));
    assert!(!authserv_id_is(b" (unclosed mx.test; none", "mx.test"));
    assert!(!authserv_id_is(b"", "mx.test"));
    // Not valid RFC 8601, but a lenient reader (a regex, a split at white space) would still
    // take mx.test for the authserv-id: removing a field that names us first costs nothing.
    assert!(authserv_id_is(b" mx.test x; dkim=pass", "mx.test"));
    assert!(authserv_id_is(b" mx.test.; dkim=pass", "mx.test"));
    assert!(authserv_id_is(b" MX.Test,; dkim=pass", "mx.test"));
    assert!(authserv_id_is(b"\tmx.test\r\n x=y; dkim=pass", "mx.test"));
    assert!(!authserv_id_is(b" mx.test.evil x; dkim=pass", "mx.test"));
    assert!(!authserv_id_is(b" mx.test-x; dkim=pass", "mx.test"));
}
