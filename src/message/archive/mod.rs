//! The archives mail carries, listed in memory: zip, tar, gzip/bzip2/xz single files (so
//! .tar.gz is a tar inside a gzip), 7z, RAR 1.5–5, cab and ISO 9660 (with Joliet names). Nothing
//! is written to disk and nothing outside this process is run.
//!
//! Contract: [`list`] never fails and never panics on odd input (the walk that calls it also
//! runs under `process::guarded`); what it cannot read is said in [`Listing::trouble`]: an
//! archive that needs a password, or one that is truncated or corrupt. Every member's content
//! is read through [`Caps`]: the first [`PROBE_BYTES`] to type it, and the whole of it only when
//! that type must be looked into (an archive in the archive, OLE, PDF, HTML) and it fits in the
//! expansion budget the caller gives: a bomb costs at most that budget, never more.
//!
//! One file per format (`zip`, `tar`, `stream`, `sevenz`, `rar`, `cab`, `iso`), each a function
//! `list(data, caps) -> Listing`; [`list`] picks by [`Format`]. Our own parsers (zip, iso) are
//! fuzzed (fuzz/fuzz_targets/archive.rs); the others are maintained pure-Rust crates
//! (tar, flate2, bzip2, lzma-rust2, sevenz-rust2, rars, cab).

mod cab;
mod iso;
mod rar;
mod sevenz;
mod stream;
mod tar;
pub mod zip;

mod listing;

pub use crate::message::sniff::PROBE_BYTES;
pub use listing::{Caps, Entry, Format, Got, Listing, Trouble};

/// Lists `data` as `format` within `caps`. A decoder's panic (a bug in a crate or in our own
/// readers) makes this one archive corrupt, UNCHECKED: it must not end the walk, or one crafted
/// archive would hide a banned file elsewhere in the message.
pub fn list<'a>(format: Format, data: &'a [u8], caps: &mut Caps) -> Listing<'a> {
    crate::process::guarded(|| list_unguarded(format, data, caps)).unwrap_or_else(|panic| {
        Listing::corrupt(format!(
            "the {} decoder failed: {}",
            format.name(),
            crate::message::text::printable(&panic, 200)
        ))
    })
}

fn list_unguarded<'a>(format: Format, data: &'a [u8], caps: &mut Caps) -> Listing<'a> {
    match format {
        Format::Zip => zip::list(data, caps),
        Format::Tar => tar::list(data, caps),
        Format::Gzip | Format::Bzip2 | Format::Xz => stream::list(format, data, caps),
        Format::SevenZ => sevenz::list(data, caps),
        Format::Rar => rar::list(data, caps),
        Format::Cab => cab::list(data, caps),
        Format::Iso => iso::list(data, caps),
    }
}

#[cfg(test)]
mod tests;
