//! What a part is, from its first bytes (like file(1), for the kinds the banned rules care about):
//! a declared name or type can lie, the content cannot.
/// What the first bytes say, like file(1) for the kinds the rules care about.
/// How many decoded bytes [`sniff`] may look at.
pub const SNIFF_BYTES: usize = 4096;

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
        (b"PK\x03\x04", "zip"),
        (b"PK\x05\x06", "zip"),
        (b"PK\x07\x08", "zip"),
        (b"Rar!\x1a\x07", "rar"),
        (b"7z\xbc\xaf\x27\x1c", "7z"),
        (b"\x1f\x8b", "gzip"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),
        (b"#!", "script"),
    ];
    if let Some((_, kind)) = MAGIC.iter().find(|(m, _)| data.starts_with(m)) {
        return Some(kind);
    }
    // PDF readers accept the header anywhere in the first KiB.
    let head = &data[..data.len().min(1024)];
    if head.windows(5).any(|w| w == b"%PDF-") {
        return Some("pdf");
    }
    None
}
