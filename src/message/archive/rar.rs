//! RAR 1.5 to 5 (and self-extracting ones), through the pure-Rust `rars` crate (not the non-free
//! UnRAR code): names, sizes and encryption from the headers; content decoded only when the
//! declared sizes fit the budget, with the crate's own output limit as a second guard.

use super::listing::{Caps, Entry, Got, Listing, Trouble, name_of};
use crate::message::sniff::PROBE_BYTES;
use rars::{ArchiveReadOptions, ArchiveReader, ErrorKind, ExtractionDecision};
use std::borrow::Cow;
use std::sync::{Arc, Mutex};

/// The largest RAR5/7 dictionary (decoding window) we allocate.
const RAR5_MAX_WINDOW: u64 = 64 << 20;

pub fn list<'a>(data: &'a [u8], caps: &mut Caps) -> Listing<'a> {
    let archive = match ArchiveReader::read_with_options(data, ArchiveReadOptions::new()) {
        Ok(a) => a,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::PasswordRequired | ErrorKind::BadPassword
            ) =>
        {
            return Listing {
                trouble: Some(Trouble::Encrypted(
                    "RAR archive with encrypted names".into(),
                )),
                ..Listing::default()
            };
        }
        Err(e) => return Listing::corrupt(format!("RAR: {e}")),
    };
    let members: Vec<rars::ArchiveMember> = archive.members().collect();
    let declared: u64 = members
        .iter()
        .map(|m| m.meta.unpacked_size)
        .fold(0, u64::saturating_add);
    let any_encrypted = members.iter().any(|m| m.meta.is_encrypted);
    let mut contents: Vec<Option<Keep>> = Vec::new();
    let mut trouble = None;
    if !any_encrypted && declared <= caps.budget {
        let budget = Arc::new(Mutex::new(caps.budget));
        // A RAR5/7 member declares its window (up to 64 GiB in RAR 7): refused above 64 MiB
        // (WinRAR's default is 32 MiB), so a tiny archive cannot make us allocate gigabytes;
        // such an archive is UNCHECKED, as undecodable.
        let options = ArchiveReadOptions::new()
            .with_max_total_output_bytes(caps.budget)
            .with_rar50_dictionary_size_limit(RAR5_MAX_WINDOW);
        let result = archive.extract_with_control(options, |m| {
            if m.meta.is_directory || m.meta.is_redirection || contents.len() >= caps.max_members {
                contents.push(None);
                return Ok(ExtractionDecision::Skip);
            }
            let keep = Keep::new(Arc::clone(&budget));
            contents.push(Some(keep.clone()));
            Ok(ExtractionDecision::Extract(Box::new(keep)))
        });
        if result.is_err() {
            trouble = Some(Trouble::Corrupt("RAR data does not decode".into()));
            contents.clear();
        }
        let left = *budget.lock().unwrap_or_else(|p| p.into_inner());
        caps.budget = left;
    }
    let mut listing = Listing {
        trouble,
        ..Listing::default()
    };
    for (i, m) in members.iter().enumerate() {
        let (content, got) = match contents.get(i).cloned().flatten() {
            Some(k) => k.take(),
            None => (None, Got::Nothing),
        };
        let entry = Entry {
            names: vec![name_of(&m.meta.name)],
            size: m.meta.unpacked_size,
            is_dir: m.meta.is_directory,
            encrypted: m.meta.is_encrypted,
            content,
            got,
        };
        if !listing.push(caps, entry) {
            break;
        }
    }
    listing
}

/// A member's bytes as they are decoded: the first [`PROBE_BYTES`], and all of them when they
/// must be looked into (and the shared budget allows); the rest is counted and dropped.
#[derive(Clone)]
struct Keep {
    bytes: Arc<Mutex<(Vec<u8>, bool, bool)>>,
    budget: Arc<Mutex<u64>>,
}

impl Keep {
    fn new(budget: Arc<Mutex<u64>>) -> Keep {
        Keep {
            bytes: Arc::new(Mutex::new((Vec::new(), false, false))),
            budget,
        }
    }

    fn take(self) -> (Option<Cow<'static, [u8]>>, Got) {
        let mut g = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        let (bytes, cut, _) = std::mem::take(&mut *g);
        (
            Some(Cow::Owned(bytes)),
            if cut { Got::Head } else { Got::Whole },
        )
    }
}

impl std::io::Write for Keep {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut g = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        let (bytes, cut, deep) = &mut *g;
        let mut budget = self.budget.lock().unwrap_or_else(|p| p.into_inner());
        let mut rest = buf;
        if !*cut && bytes.len() < PROBE_BYTES {
            let n = rest.len().min(PROBE_BYTES - bytes.len());
            bytes.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if bytes.len() == PROBE_BYTES {
                *deep =
                    crate::message::sniff::sniff(bytes).is_some_and(crate::message::sniff::is_deep);
            }
        }
        if !*cut && !rest.is_empty() {
            let room = if *deep {
                usize::try_from(*budget).unwrap_or(usize::MAX)
            } else {
                0
            };
            let n = rest.len().min(room);
            bytes.extend_from_slice(&rest[..n]);
            *budget -= n as u64;
            *cut = n < rest.len();
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
