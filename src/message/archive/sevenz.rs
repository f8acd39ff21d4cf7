//! 7z, through sevenz-rust2: names and sizes from the header, encryption from each block's
//! coders; content decompressed (one thread) only when the declared sizes fit the budget.

use super::listing::{Caps, Entry, Got, Listing, Trouble};
use sevenz_rust2::{Archive, ArchiveReader, EncoderMethod, Error, Password};
use std::borrow::Cow;
use std::io::Cursor;

/// What a 7z may make the decoders allocate (dictionaries; 7z -mx=9 uses 64 MiB): a header
/// asking for more is refused and the archive is UNCHECKED, as undecodable.
const MEMORY_LIMIT_KB: usize = 96 * 1024;

pub fn list<'a>(data: &'a [u8], caps: &mut Caps) -> Listing<'a> {
    let archive = match Archive::read_with_memory_limit(
        &mut Cursor::new(data),
        &Password::empty(),
        MEMORY_LIMIT_KB,
    ) {
        Ok(a) => a,
        Err(Error::PasswordRequired) => {
            return Listing {
                trouble: Some(Trouble::Encrypted(
                    "7z archive with encrypted names (-mhe)".into(),
                )),
                ..Listing::default()
            };
        }
        Err(e) => return Listing::corrupt(format!("7z: {e}")),
    };
    let encrypted = |i: usize| {
        let block = archive
            .stream_map
            .file_block_index
            .get(i)
            .copied()
            .flatten();
        block.and_then(|b| archive.blocks.get(b)).is_some_and(|b| {
            b.coders
                .iter()
                .any(|c| c.encoder_method_id() == EncoderMethod::ID_AES256_SHA256)
        })
    };
    let any_encrypted = (0..archive.files.len()).any(encrypted);
    let declared: u64 = archive
        .files
        .iter()
        .map(|f| f.size())
        .fold(0, u64::saturating_add);
    if !any_encrypted && declared <= caps.budget {
        let mut listing = Listing::default();
        let mut reader = match ArchiveReader::new_with_memory_limit(
            Cursor::new(data),
            Password::empty(),
            MEMORY_LIMIT_KB,
        ) {
            Ok(r) => r,
            Err(e) => return Listing::corrupt(format!("7z: {e}")),
        };
        reader.set_thread_count(1);
        let result = reader.for_each_entries(|f, r| {
            let (content, got) = if f.is_directory() {
                (None, Got::Nothing)
            } else {
                let (bytes, got) = caps.read(r, Some(f.size()));
                (Some(Cow::Owned(bytes)), got)
            };
            let entry = entry(f, false, content, got);
            Ok(listing.push(caps, entry))
        });
        if result.is_ok() {
            return listing;
        }
    }
    // Names only: encrypted, too big to open here, or the data is corrupt.
    let mut listing = Listing::default();
    if !any_encrypted && declared <= caps.budget {
        listing.trouble = Some(Trouble::Corrupt("7z data does not decompress".into()));
    }
    for (i, f) in archive.files.iter().enumerate() {
        if !listing.push(caps, entry(f, encrypted(i), None, Got::Nothing)) {
            break;
        }
    }
    listing
}

fn entry<'a>(
    f: &sevenz_rust2::ArchiveEntry,
    encrypted: bool,
    content: Option<Cow<'a, [u8]>>,
    got: Got,
) -> Entry<'a> {
    Entry {
        names: vec![f.name().to_string()],
        size: f.size(),
        is_dir: f.is_directory(),
        encrypted,
        content,
        got,
    }
}
