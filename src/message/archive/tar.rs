//! tar (ustar, GNU and pax long names), through the `tar` crate over the bytes in memory.

use super::listing::{Caps, Entry, Got, Listing, name_of};
use std::borrow::Cow;

pub fn list<'a>(data: &'a [u8], caps: &mut Caps) -> Listing<'a> {
    let mut archive = ::tar::Archive::new(data);
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => return Listing::corrupt(format!("tar: {e}")),
    };
    let mut listing = Listing::default();
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                listing.trouble = Some(super::listing::Trouble::Corrupt(format!("tar: {e}")));
                break;
            }
        };
        let name = name_of(&entry.path_bytes());
        let kind = entry.header().entry_type();
        let size = entry.size();
        let is_dir = kind.is_dir();
        let (content, got) = if kind.is_file() {
            let (bytes, got) = caps.read(&mut entry, Some(size));
            (Some(Cow::Owned(bytes)), got)
        } else {
            (None, Got::Nothing)
        };
        if !kind.is_file() && !is_dir && !listing_link(kind) {
            continue;
        }
        let e = Entry {
            names: vec![name],
            size,
            is_dir,
            encrypted: false,
            content,
            got,
        };
        if !listing.push(caps, e) {
            break;
        }
    }
    listing
}

/// Links are listed by name (a link named "x.exe" is banned like the file), with no content.
fn listing_link(kind: ::tar::EntryType) -> bool {
    kind.is_symlink() || kind.is_hard_link()
}
