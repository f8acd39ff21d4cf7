//! The archive listers (`message::archive::list`) on raw bytes: the first byte picks the format
//! (zip and ISO 9660 are our own parsers; the others are the crates we call: tar, flate2,
//! bzip2, lzma-rust2, sevenz-rust2, rars, cab), the rest is the archive.
//!
//! Must never panic in our code. `list` runs each decoder under `process::guarded` (a crate's
//! panic makes that archive corrupt, UNCHECKED); the hook below lets panics located in
//! third-party crates through to that guard, and treats any other panic as a crash (our own
//! zip and ISO readers, the walk). Also asserts: no more members than the cap, never more
//! bytes held than the budget plus one probe per member, and a caught panic reported as
//! trouble.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipescan::message::archive::{Caps, Format, PROBE_BYTES, list};
use std::sync::Once;

static HOOK: Once = Once::new();

fn install_hook() {
    HOOK.call_once(|| {
        // libfuzzer-sys's hook aborts on every panic, caught or not.
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let third_party = info
                .location()
                .is_some_and(|l| l.file().contains("/registry/src/"));
            if pipescan::process::in_guarded_parse() && third_party {
                return; // caught by the guard: the archive is reported corrupt
            }
            fuzzer_hook(info);
        }));
    });
}

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
    install_hook();
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
