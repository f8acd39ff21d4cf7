//! The archive listers (`message::archive::list`) on raw bytes: the first byte picks the format
//! (zip and ISO 9660 are our own parsers; the others are the crates we call: tar, flate2,
//! bzip2, lzma-rust2, sevenz-rust2, rars, cab), the rest is the archive.
//!
//! Must never panic. Also asserts: no more members than the cap, and never more bytes read
//! into memory than the budget plus one probe per member.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipescan::message::archive::{Caps, Format, PROBE_BYTES, list};

const FORMATS: [Format; 9] = [
    Format::Zip,
    Format::Iso,
    Format::Tar,
    Format::Gzip,
    Format::Bzip2,
    Format::Xz,
    Format::SevenZ,
    Format::Rar,
    Format::Cab,
];

fuzz_target!(|input: &[u8]| {
    let Some((&pick, data)) = input.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(pick) % FORMATS.len()];
    let budget = 1 << 20;
    let mut caps = Caps {
        max_members: 50,
        budget,
    };
    let listing = list(format, data, &mut caps);
    assert!(listing.entries.len() <= 50);
    let held: usize = listing
        .entries
        .iter()
        .filter_map(|e| e.content.as_ref())
        .filter(|c| matches!(c, std::borrow::Cow::Owned(_)))
        .map(|c| c.len())
        .sum();
    assert!(held as u64 <= budget + (PROBE_BYTES * listing.entries.len()) as u64, "{held}");
});
