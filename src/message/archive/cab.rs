//! Microsoft cabinet files, through the `cab` crate (stored, MSZIP, LZX).

use super::listing::{Caps, Entry, Got, Listing, Trouble};
use std::borrow::Cow;
use std::io::Cursor;

pub fn list<'a>(data: &'a [u8], caps: &mut Caps) -> Listing<'a> {
    let mut cabinet = match cab::Cabinet::new(Cursor::new(data)) {
        Ok(c) => c,
        Err(e) => return Listing::corrupt(format!("cab: {e}")),
    };
    let files: Vec<(String, u64)> = cabinet
        .folder_entries()
        .flat_map(|folder| folder.file_entries())
        .map(|f| (f.name().to_string(), u64::from(f.uncompressed_size())))
        .collect();
    let mut listing = Listing::default();
    for (name, size) in files {
        let (content, got) = match cabinet.read_file(&name) {
            Ok(mut r) => {
                let (bytes, got) = caps.read(&mut r, Some(size));
                (Some(Cow::Owned(bytes)), got)
            }
            Err(_) => (None, Got::Broken),
        };
        if got == Got::Broken {
            listing.trouble = Some(Trouble::Corrupt(format!(
                "cab member {name} does not decompress"
            )));
        }
        let entry = Entry {
            names: vec![name],
            size,
            is_dir: false,
            encrypted: false,
            content,
            got,
        };
        if !listing.push(caps, entry) {
            break;
        }
    }
    listing
}
