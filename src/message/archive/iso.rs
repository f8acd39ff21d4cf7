//! ISO 9660 images (.iso, .img: what Windows mounts on a double click), our own reader (fuzzed
//! by fuzz/fuzz_targets/archive.rs): the volume descriptors, then the directory tree from the
//! Joliet descriptor when there is one (UCS-2 names), else the primary one with Rock Ridge `NM`
//! names when present. Files are slices of the image: nothing is decompressed. Every offset is
//! checked, each directory is read once (a loop of directories ends), and the walk stops at the
//! member limit.

use super::listing::{Caps, Entry, Got, Listing};
use std::borrow::Cow;
use std::collections::HashSet;

const SECTOR: usize = 2048;
/// Directories deeper than this are not entered (ISO 9660 itself allows 8 levels).
const MAX_DIR_DEPTH: usize = 64;

fn le32(d: &[u8], at: usize) -> Option<usize> {
    let b = d.get(at..at.checked_add(4)?)?;
    usize::try_from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok()
}

/// The root directory record and whether names are Joliet (UCS-2BE).
fn root(data: &[u8]) -> Option<(usize, usize, bool)> {
    let mut primary = None;
    for n in 16..16 + 32 {
        let at = n * SECTOR;
        let vd = data.get(at..at + SECTOR)?;
        if &vd[1..6] != b"CD001" {
            return None;
        }
        let root = (le32(vd, 156 + 2)?, le32(vd, 156 + 10)?);
        match vd[0] {
            1 => primary = primary.or(Some(root)),
            2 if vd[88] == b'%' && vd[89] == b'/' && matches!(vd[90], b'@' | b'C' | b'E') => {
                return Some((root.0, root.1, true));
            }
            255 => break,
            _ => {}
        }
    }
    primary.map(|(lba, size)| (lba, size, false))
}

pub fn list<'a>(data: &'a [u8], caps: &mut Caps) -> Listing<'a> {
    let Some((lba, size, joliet)) = root(data) else {
        return Listing::corrupt("ISO 9660 image without a readable volume descriptor");
    };
    let mut listing = Listing::default();
    let mut seen = HashSet::new();
    let mut todo = vec![(lba, size, String::new(), 0usize)];
    while let Some((lba, size, prefix, depth)) = todo.pop() {
        if !seen.insert(lba) || depth > MAX_DIR_DEPTH {
            continue;
        }
        let Some(dir) = lba
            .checked_mul(SECTOR)
            .and_then(|at| data.get(at..at.checked_add(size)?))
        else {
            listing.trouble = Some(super::listing::Trouble::Corrupt(
                "ISO 9660 directory outside the image (truncated?)".into(),
            ));
            continue;
        };
        for rec in records(dir) {
            let Some(name) = record_name(rec, joliet) else {
                continue;
            };
            let path = format!("{prefix}{name}");
            let (lba, size) = (le32(rec, 2).unwrap_or(0), le32(rec, 10).unwrap_or(0));
            let is_dir = rec[25] & 2 != 0;
            if is_dir {
                todo.push((lba, size, format!("{path}/"), depth + 1));
            }
            let content = lba
                .checked_mul(SECTOR)
                .and_then(|at| data.get(at..at.checked_add(size)?));
            let got = match (is_dir, content) {
                (true, _) => Got::Nothing,
                (false, Some(_)) => Got::Whole,
                (false, None) => Got::Broken,
            };
            let entry = Entry {
                names: vec![path],
                size: size as u64,
                is_dir,
                encrypted: false,
                content: content.filter(|_| !is_dir).map(Cow::Borrowed),
                got,
            };
            if !listing.push(caps, entry) {
                return listing;
            }
        }
    }
    listing
}

/// The directory records of one directory's extent (a record never crosses a sector; a zero
/// length byte means "go to the next sector").
fn records(dir: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    std::iter::from_fn(move || {
        loop {
            let len = usize::from(*dir.get(at)?);
            if len == 0 {
                at = (at / SECTOR + 1) * SECTOR;
                continue;
            }
            let rec = dir.get(at..at + len);
            at += len;
            match rec {
                Some(r) if len >= 34 => return Some(r),
                Some(_) => continue,
                None => return None,
            }
        }
    })
}

/// The record's name; None for "." and "..".
fn record_name(rec: &[u8], joliet: bool) -> Option<String> {
    let nlen = usize::from(rec[32]);
    let raw = rec.get(33..33 + nlen)?;
    if raw == [0] || raw == [1] {
        return None;
    }
    let name = if joliet {
        let units: Vec<u16> = raw
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else if let Some(nm) = rock_ridge_name(rec, 33 + nlen + (1 - nlen % 2)) {
        return Some(nm);
    } else {
        super::listing::name_of(raw)
    };
    // "README.TXT;1" is README.TXT to whoever opens the image.
    let name = match name.rsplit_once(';') {
        Some((n, v)) if v.bytes().all(|b| b.is_ascii_digit()) => n.to_string(),
        _ => name,
    };
    Some(name.strip_suffix('.').unwrap_or(&name).to_string())
}

/// The Rock Ridge alternate name (SUSP `NM` entries) in the record's system use area.
fn rock_ridge_name(rec: &[u8], mut at: usize) -> Option<String> {
    let mut name = Vec::new();
    while at + 4 <= rec.len() {
        let len = usize::from(rec[at + 2]);
        if len < 4 {
            break;
        }
        let entry = rec.get(at..at + len)?;
        if &entry[..2] == b"NM" && entry.len() > 5 {
            name.extend_from_slice(&entry[5..]);
        }
        at += len;
    }
    (!name.is_empty()).then(|| super::listing::name_of(&name))
}
