//! Zip archives (our own parser: fuzzed by fuzz/fuzz_targets/archive.rs). Just enough of APPNOTE.TXT to list members: the end of central directory record (and its
//! ZIP64 form), central directory entries, and local headers for stored data. Every offset
//! is checked; an archive with data in front (self-extracting) is handled by measuring from
//! the end record back.

pub struct Directory {
    /// Offset of the first central directory entry.
    start: usize,
    /// Where the central directory ends (the end record).
    end: usize,
    /// Added to the offsets the archive declares (data in front of the archive).
    shift: i64,
}

pub struct Member<'a> {
    /// Central directory name, then any different Unicode Path or local header name.
    pub names: Vec<String>,
    pub size: u64,
    /// The member's bytes, when stored uncompressed and unencrypted.
    pub stored: Option<&'a [u8]>,
    /// The member's compressed bytes, when deflated (method 8) and unencrypted.
    pub deflated: Option<&'a [u8]>,
    pub is_dir: bool,
    /// Traditional PKWARE or AES encryption (general purpose flag bit 0).
    pub encrypted: bool,
}

fn le16(d: &[u8], at: usize) -> Option<u64> {
    d.get(at..at.checked_add(2)?)
        .map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])))
}
fn le32(d: &[u8], at: usize) -> Option<u64> {
    d.get(at..at.checked_add(4)?)
        .map(|b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
}
fn le64(d: &[u8], at: usize) -> Option<u64> {
    let b = d.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}
fn sig(d: &[u8], at: usize, s: &[u8; 4]) -> bool {
    d.get(at..at.saturating_add(4)) == Some(&s[..])
}

impl Directory {
    pub fn find(data: &[u8]) -> Option<Directory> {
        if data.len() < 22 {
            return None;
        }
        // The end record is 22 bytes plus a comment of up to 65535.
        let last = data.len() - 22;
        let first = last.saturating_sub(65535);
        let eocd = (first..=last).rev().find(|&i| {
            sig(data, i, b"PK\x05\x06")
                && i + 22 + le16(data, i + 20).unwrap_or(0) as usize <= data.len()
        })?;
        let mut cd_size = le32(data, eocd + 12)?;
        let mut cd_offset = le32(data, eocd + 16)?;
        let mut record = eocd;
        if (cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF || le16(data, eocd + 10)? == 0xFFFF)
            && eocd >= 20
            && sig(data, eocd - 20, b"PK\x06\x07")
        {
            // ZIP64: the locator points at the ZIP64 end record, which normally sits just
            // before the locator.
            let declared = usize::try_from(le64(data, eocd - 20 + 8)?).ok();
            let z = declared
                .filter(|&at| sig(data, at, b"PK\x06\x06"))
                .or_else(|| {
                    (eocd >= 76 && sig(data, eocd - 76, b"PK\x06\x06")).then(|| eocd - 76)
                })?;
            cd_size = le64(data, z + 40)?;
            cd_offset = le64(data, z + 48)?;
            record = z;
        }
        let measured = (record as u64).checked_sub(cd_size)?;
        let (start, shift) = if usize::try_from(cd_offset)
            .is_ok_and(|at| sig(data, at, b"PK\x01\x02") || cd_size == 0)
        {
            (cd_offset, 0)
        } else {
            let shift = i64::try_from(measured)
                .ok()?
                .checked_sub(i64::try_from(cd_offset).ok()?)?;
            (measured, shift)
        };
        Some(Directory {
            start: usize::try_from(start).ok()?,
            end: record,
            shift,
        })
    }

    pub fn members<'a>(&self, data: &'a [u8]) -> impl Iterator<Item = Member<'a>> {
        let mut pos = self.start;
        let end = self.end;
        let shift = self.shift;
        std::iter::from_fn(move || {
            if pos >= end || !sig(data, pos, b"PK\x01\x02") {
                return None;
            }
            let (m, next) = member(data, pos, shift)?;
            pos = next;
            Some(m)
        })
    }
}

fn member(data: &[u8], at: usize, shift: i64) -> Option<(Member<'_>, usize)> {
    let flags = le16(data, at + 8)?;
    let method = le16(data, at + 10)?;
    let mut csize = le32(data, at + 20)?;
    let mut usize_ = le32(data, at + 24)?;
    let nlen = le16(data, at + 28)? as usize;
    let xlen = le16(data, at + 30)? as usize;
    let clen = le16(data, at + 32)? as usize;
    let mut local = le32(data, at + 42)?;
    let name_at = at + 46;
    let raw_name = data.get(name_at..name_at + nlen)?;
    let extra = data
        .get(name_at + nlen..name_at + nlen + xlen)
        .unwrap_or_default();
    let next = name_at + nlen + xlen + clen;
    let utf8 = flags & 0x0800 != 0;
    let mut names = vec![decode_name(raw_name, utf8)];
    // Extra fields: ZIP64 sizes and offset, and Info-ZIP's Unicode Path.
    let mut x = 0;
    while x + 4 <= extra.len() {
        let id = le16(extra, x)?;
        let len = le16(extra, x + 2)? as usize;
        let Some(body) = extra.get(x + 4..x + 4 + len) else {
            break;
        };
        if id == 0x0001 {
            let mut f = 0;
            for v in [&mut usize_, &mut csize, &mut local] {
                if *v == 0xFFFF_FFFF {
                    if let Some(big) = le64(body, f) {
                        *v = big;
                    }
                    f += 8;
                }
            }
        } else if id == 0x7075 && body.len() > 5 && body[0] == 1 {
            names.push(String::from_utf8_lossy(&body[5..]).into_owned());
        }
        x += 4 + len;
    }
    // The local header repeats the name; extractors that read it see that one.
    let mut stored = None;
    let mut deflated = None;
    let local_header = i64::try_from(local)
        .ok()
        .and_then(|l| l.checked_add(shift))
        .and_then(|l| usize::try_from(l).ok())
        .filter(|&lh| sig(data, lh, b"PK\x03\x04"));
    if let Some(lh) = local_header {
        let ln = le16(data, lh + 26).unwrap_or(0) as usize;
        let lx = le16(data, lh + 28).unwrap_or(0) as usize;
        if let Some(lname) = data.get(lh + 30..lh + 30 + ln) {
            names.push(decode_name(lname, utf8));
        }
        let start = lh + 30 + ln + lx;
        let bytes = usize::try_from(csize)
            .ok()
            .and_then(|n| data.get(start..start.checked_add(n)?));
        match (method, flags & 1) {
            (0, 0) => stored = bytes,
            (8, 0) => deflated = bytes,
            _ => {}
        }
    }
    let mut distinct: Vec<String> = Vec::new();
    for n in names {
        if !distinct.contains(&n) {
            distinct.push(n);
        }
    }
    let is_dir = distinct[0].ends_with('/') && usize_ == 0;
    Some((
        Member {
            names: distinct,
            size: usize_,
            stored,
            deflated,
            is_dir,
            encrypted: flags & 1 != 0,
        },
        next,
    ))
}

/// UTF-8 when flagged or valid; otherwise the original IBM PC code page the format defaults to.
fn decode_name(raw: &[u8], utf8: bool) -> String {
    if utf8 {
        return String::from_utf8_lossy(raw).into_owned();
    }
    if let Ok(s) = std::str::from_utf8(raw) {
        return s.to_string();
    }
    const CP437: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐\
        └┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";
    let high: Vec<char> = CP437.chars().collect();
    raw.iter()
        .map(|&b| {
            if b < 0x80 {
                b as char
            } else {
                high.get(usize::from(b - 0x80))
                    .copied()
                    .unwrap_or('\u{fffd}')
            }
        })
        .collect()
}

/// Lists a zip: names from the central directory; stored members' bytes as they are, deflated
/// ones decompressed through `caps` (so "scan.pdf" that is a program is seen as one).
pub fn list<'a>(data: &'a [u8], caps: &mut super::listing::Caps) -> super::listing::Listing<'a> {
    let Some(dir) = Directory::find(data) else {
        return super::listing::Listing::corrupt("zip without a central directory (truncated?)");
    };
    let mut listing = super::listing::Listing::default();
    for m in dir.members(data) {
        let (content, got) = match (m.stored, m.deflated) {
            (Some(s), _) => (
                Some(std::borrow::Cow::Borrowed(s)),
                super::listing::Got::Whole,
            ),
            (None, Some(d)) if !m.is_dir => {
                let mut inflate = flate2::read::DeflateDecoder::new(d);
                let (bytes, got) = caps.read(&mut inflate, Some(m.size));
                (Some(std::borrow::Cow::Owned(bytes)), got)
            }
            _ => (None, super::listing::Got::Nothing),
        };
        let entry = super::listing::Entry {
            names: m.names,
            size: m.size,
            is_dir: m.is_dir,
            encrypted: m.encrypted,
            content,
            got,
        };
        if !listing.push(caps, entry) {
            break;
        }
    }
    listing
}
