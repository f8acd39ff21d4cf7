//! Single compressed files: gzip (with its stored file name), bzip2 and xz. Each is one
//! member; a .tar.gz is a gzip whose member is a tar, listed one level deeper.

use super::listing::{Caps, Entry, Format, Got, Listing, name_of};
use std::borrow::Cow;
use std::io::Read;

pub fn list<'a>(format: Format, data: &'a [u8], caps: &mut Caps) -> Listing<'a> {
    let (name, mut reader): (String, Box<dyn Read + 'a>) = match format {
        Format::Gzip => {
            // Several gzip members in a row decompress as one stream, as gunzip does.
            let gz = flate2::read::MultiGzDecoder::new(data);
            let name = gz.header().and_then(|h| h.filename()).map(name_of);
            (name.unwrap_or_default(), Box::new(gz))
        }
        Format::Bzip2 => (
            String::new(),
            Box::new(bzip2::read::MultiBzDecoder::new(data)),
        ),
        Format::Xz => (
            String::new(),
            // 96 MiB of dictionary covers xz -9 (64 MiB); a header asking for more is refused.
            Box::new(lzma_rust2::XzReader::new_mem_limit(data, true, 96 * 1024)),
        ),
        _ => return Listing::corrupt("not a compressed stream"),
    };
    let (bytes, got) = caps.read(&mut reader, None);
    let mut listing = Listing::default();
    if got == Got::Broken {
        listing.trouble = Some(super::listing::Trouble::Corrupt(format!(
            "{} data is truncated or corrupt",
            format.name()
        )));
    }
    let entry = Entry {
        names: if name.is_empty() {
            Vec::new()
        } else {
            vec![name]
        },
        size: bytes.len() as u64,
        is_dir: false,
        encrypted: false,
        content: Some(Cow::Owned(bytes)),
        got,
    };
    listing.push(caps, entry);
    listing
}
