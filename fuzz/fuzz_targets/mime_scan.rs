//! The bad-header checks (`scan::headers::findings`) and the banned-files walk
//! (`scan::banned::survey` / `scan`: MIME walker, transfer decodings, zip central directory reader,
//! RFC 2231 / 2047 names) on one message.
//!
//! Must never panic. `survey` catches panics inside its parse and returns `Err`: that is fine for a
//! panic inside mail-parser (a known debug_assert in 0.11.9), which is why this target installs a
//! hook like pipescan's own (silent while `in_guarded_parse()`). A panic *in pipescan's own code*
//! inside the guard would also come back as `Err` (and tempfail the message in production), so the
//! hook treats those as crashes: only panics located in mail-parser are tolerated.
//! Also asserts: every part is within the depth limit; every finding, structural problem and
//! ban reason is one line (they go to log lines and header fields).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipescan::config::units::Size;
use pipescan::message::header::Header;
use pipescan::scan::banned::{self, BannedConfig};
use pipescan::scan::headers;
use std::sync::Once;

static HOOK: Once = Once::new();

fn install_hook() {
    HOOK.call_once(|| {
        // libfuzzer-sys's hook aborts on every panic, caught or not.
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_mail_parser = info.location().is_some_and(|l| {
                l.file().contains("mail-parser") || l.file().contains("mail_parser")
            });
            if banned::in_guarded_parse() && in_mail_parser {
                return; // caught by the guard: survey returns Err
            }
            fuzzer_hook(info);
        }));
    });
}

fuzz_target!(|msg: &[u8]| {
    install_hook();

    let h = Header::parse(msg);
    for f in headers::findings(msg, &h) {
        assert!(!f.reason.contains(['\r', '\n', '\0']), "{:?}", f.reason);
    }

    let default = BannedConfig::default();
    let small = BannedConfig {
        max_depth: 3,
        max_parts: 12,
        max_archive_members: 5,
        max_expanded_size: Size(4096),
        ..BannedConfig::default()
    };
    for cfg in [&default, &small] {
        match banned::survey(msg, cfg) {
            Ok(inv) => {
                for p in &inv.parts {
                    assert!(
                        p.depth <= cfg.max_depth,
                        "{p:?} deeper than {}",
                        cfg.max_depth
                    );
                    assert!(!p.path.contains(['\r', '\n', '\0']), "{:?}", p.path);
                }
                for r in &inv.problems {
                    assert!(!r.contains(['\r', '\n']), "{r:?}");
                }
            }
            Err(e) => assert!(e.starts_with("MIME parser panicked"), "{e}"),
        }
    }
    // The rule check compiles the rule regexes on every call (~10 ms with fuzzing
    // instrumentation), so it runs on one input in four to keep the walk fast.
    if msg.len().is_multiple_of(4) {
        match banned::scan(msg, &default) {
            Ok(reasons) => {
                for r in &reasons {
                    assert!(!r.contains(['\r', '\n']), "{r:?}");
                }
            }
            Err(e) => assert!(e.starts_with("MIME parser panicked"), "{e}"),
        }
    }
});
