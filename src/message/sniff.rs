//! What a part is, from its content (like file(1), for the kinds the banned rules care about):
//! a declared name or type can lie, the content cannot. In-process and cheap: a few prefix
//! comparisons per part, and a byte search in the few kinds that hide their danger inside
//! (OLE and OOXML macros, PDF JavaScript, HTML script).
//!
//! The kinds, as banned rules name them (`sniffed = "^office-macro$"`):
//! programs `exe` (MZ/PE), `elf`, `macho`, `script` (#!), `lnk` (Windows shortcut); documents
//! `ole` (doc/xls/msi), `office-macro` (OLE with a VBA project, OOXML with vbaProject.bin),
//! `pdf`, `pdf-js` (PDF with /JavaScript or /JS), `html`, `html-script` (HTML with <script);
//! archives `zip`, `tar`, `gzip`, `bzip2`, `xz`, `7z`, `rar`, `cab`, `iso`.

/// How many decoded bytes [`sniff`] looks at, and so how much of an archive member is read to
/// tell its type: ISO 9660 puts its signature at 32 KiB.
pub const PROBE_BYTES: usize = 0x8000 + 2048;
/// The same, by the name the MIME walk uses.
pub const SNIFF_BYTES: usize = PROBE_BYTES;

/// What the first bytes say.
pub fn sniff(data: &[u8]) -> Option<&'static str> {
    // MZ (or the old ZM) followed by binary header fields; a text that happens to start with
    // "MZ" has none.
    if (data.starts_with(b"MZ") || data.starts_with(b"ZM"))
        && data.len() >= 4
        && data[2..data.len().min(64)]
            .iter()
            .any(|&b| b == 0 || b == 0x7f || (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')))
    {
        return Some("exe");
    }
    const MAGIC: &[(&[u8], &str)] = &[
        (b"\x7fELF", "elf"),
        (b"\xfe\xed\xfa\xce", "macho"),
        (b"\xfe\xed\xfa\xcf", "macho"),
        (b"\xce\xfa\xed\xfe", "macho"),
        (b"\xcf\xfa\xed\xfe", "macho"),
        (b"PK\x03\x04", "zip"),
        (b"PK\x05\x06", "zip"),
        (b"PK\x07\x08", "zip"),
        (b"Rar!\x1a\x07", "rar"),
        (b"7z\xbc\xaf\x27\x1c", "7z"),
        (b"\x1f\x8b\x08", "gzip"),
        (b"BZh", "bzip2"),
        (b"\xfd7zXZ\x00", "xz"),
        (b"MSCF\0\0\0\0", "cab"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),
        // ShellLinkHeader: size 0x4C and the shell link CLSID.
        (
            b"\x4c\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46",
            "lnk",
        ),
        (b"#!", "script"),
    ];
    if let Some((_, kind)) = MAGIC.iter().find(|(m, _)| data.starts_with(m)) {
        // "BZh" is common text: a level digit and a block (pi) or end-of-stream (sqrt pi)
        // magic must follow, or a note starting "BZh1" would be a corrupt archive.
        if *kind == "bzip2"
            && !(data.get(3).is_some_and(|b| (b'1'..=b'9').contains(b))
                && matches!(
                    data.get(4..10),
                    Some(b"1AY&SY" | b"\x17\x72\x45\x38\x50\x90")
                ))
        {
            return None;
        }
        return Some(kind);
    }
    // Universal (fat) Mach-O shares CAFEBABE with Java classes: a fat header has few
    // architectures where a class file has its version (45 and up).
    if data.starts_with(b"\xca\xfe\xba\xbe")
        && data
            .get(4..8)
            .is_some_and(|n| n[..3] == [0, 0, 0] && n[3] < 20)
    {
        return Some("macho");
    }
    if data.get(257..262) == Some(b"ustar") {
        return Some("tar");
    }
    if data.get(0x8001..0x8006) == Some(b"CD001") {
        return Some("iso");
    }
    // PDF readers accept the header anywhere in the first KiB.
    let head = &data[..data.len().min(1024)];
    if head.windows(5).any(|w| w == b"%PDF-") {
        return Some("pdf");
    }
    if is_html(head) {
        return Some("html");
    }
    None
}

/// Kinds whose whole content must be read to know what they hold: archives are listed, and
/// documents searched (see [`refine`]).
pub fn is_deep(kind: &str) -> bool {
    is_document(kind)
        || matches!(
            kind,
            "zip" | "tar" | "gzip" | "bzip2" | "xz" | "7z" | "rar" | "cab" | "iso"
        )
}

/// OLE, PDF and HTML: searched whole for macros, JavaScript, scripts and encryption.
pub fn is_document(kind: &str) -> bool {
    matches!(kind, "ole" | "pdf" | "html")
}

/// A document attachment larger than this (decoded) is typed by its first bytes only, so that
/// a message without archives still needs no more than its size plus a little to scan.
pub const DOCUMENT_SEARCH_LIMIT: u64 = 4 << 20;

/// The kind once the whole content is known: OLE with a VBA project is "office-macro", PDF
/// with JavaScript "pdf-js", HTML with a script "html-script". (OOXML macros are found when
/// the zip is listed: a member named vbaProject.bin.)
pub fn refine(kind: &'static str, whole: &[u8]) -> &'static str {
    match kind {
        // The VBA project's stream names, UTF-16LE in the OLE directory.
        "ole"
            if find(whole, &utf16le("_VBA_PROJECT"))
                || find(whole, &utf16le("VBA")) && find(whole, &utf16le("PROJECT")) =>
        {
            "office-macro"
        }
        "pdf" if find(whole, b"/JavaScript") || find(whole, b"/JS") => "pdf-js",
        "html" if find_ci(whole, b"<script") => "html-script",
        _ => kind,
    }
}

/// A PDF with an encryption dictionary in its trailer: its streams are unreadable without the
/// password (or, with an empty user password, readable only by a PDF library).
pub fn is_encrypted_pdf(whole: &[u8]) -> bool {
    find(whole, b"/Encrypt")
}

/// A member name that makes an OOXML zip (docm, xlsm, pptm…) carry macros.
pub fn is_vba_project(name: &str) -> bool {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.eq_ignore_ascii_case("vbaProject.bin")
}

fn is_html(head: &[u8]) -> bool {
    let text = head
        .strip_prefix(b"\xef\xbb\xbf")
        .unwrap_or(head)
        .trim_ascii_start();
    let lower: Vec<u8> = text.iter().take(15).map(u8::to_ascii_lowercase).collect();
    lower.starts_with(b"<!doctype html")
        || lower.starts_with(b"<html")
        || lower.starts_with(b"<head")
        || lower.starts_with(b"<script")
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn find_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_content() {
        let mut iso = vec![0u8; 0x8010];
        iso[0x8000..0x8006].copy_from_slice(b"\x01CD001");
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"MZ\x90\x00\x03\x00", Some("exe")),
            (b"MZ is a text", None),
            (b"\x7fELF\x02", Some("elf")),
            (b"\xcf\xfa\xed\xfe\x07", Some("macho")),
            (b"\xca\xfe\xba\xbe\x00\x00\x00\x02", Some("macho")),
            (b"\xca\xfe\xba\xbe\x00\x00\x00\x34", None),
            (b"#!/bin/sh\n", Some("script")),
            (b"BZh91AY&SY", Some("bzip2")),
            (b"BZh1 is a note", None),
            (b"BZhx", None),
            (b"\xfd7zXZ\x00\x00", Some("xz")),
            (b"MSCF\0\0\0\0", Some("cab")),
            (&iso, Some("iso")),
            (&tar, Some("tar")),
            (b"  <!DOCTYPE html><p>", Some("html")),
            (b"%PDF-1.7", Some("pdf")),
        ];
        for (data, want) in cases {
            assert_eq!(sniff(data), *want, "{:?}", &data[..data.len().min(12)]);
        }
    }

    #[test]
    fn dangers_inside_documents() {
        assert_eq!(
            refine("pdf", b"%PDF-1.4 << /OpenAction << /S /JavaScript >>"),
            "pdf-js"
        );
        assert_eq!(refine("pdf", b"%PDF-1.4 << /Type /Page >>"), "pdf");
        assert_eq!(refine("html", b"<html><SCRIPT>x()</script>"), "html-script");
        assert_eq!(refine("html", b"<html><p>hi"), "html");
        assert_eq!(refine("ole", &utf16le("_VBA_PROJECT")), "office-macro");
        assert_eq!(refine("ole", b"WordDocument"), "ole");
        assert!(is_vba_project("word/vbaProject.bin"));
        assert!(!is_vba_project("word/document.xml"));
    }
}
