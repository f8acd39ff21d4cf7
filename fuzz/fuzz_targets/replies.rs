//! The scanner reply parsers, each on the same bytes: `scan::spamd::parse_reply`,
//! `scan::clamd::parse_reply` and `scan::rspamd::parse_response` (all public, pure).
//!
//! Never panics, and what an `Ok` says is backed by the reply:
//! - spamd: the status line is `SPAMD/x.y 0 …`; score and required are finite; rule names are
//!   non-empty without white space;
//! - clamd: the reply ends in NUL; an infected verdict names at least one signature, each
//!   non-empty, without white space, and present in the reply;
//! - rspamd: the status is 200; scores are finite; symbols are sorted by name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipescan::scan::clamd::{self, ClamVerdict};
use pipescan::scan::{rspamd, spamd};

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|reply: &[u8]| {
    if let Ok(r) = spamd::parse_reply(reply) {
        assert!(reply.starts_with(b"SPAMD/"));
        let status = reply.split(|&b| b == b'\n').next().unwrap();
        assert!(
            contains(status, b" 0"),
            "{:?}",
            String::from_utf8_lossy(status)
        );
        assert!(r.score.is_finite() && r.required.is_finite(), "{r:?}");
        for (name, points) in &r.tests {
            assert!(
                !name.is_empty() && !name.contains(char::is_whitespace),
                "{name:?}"
            );
            assert!(points.is_finite());
        }
    }

    match clamd::parse_reply(reply) {
        Ok(ClamVerdict::Infected(names)) => {
            assert!(reply.ends_with(b"\0"));
            assert!(!names.is_empty());
            for n in &names {
                assert!(!n.is_empty() && !n.contains(char::is_whitespace), "{n:?}");
                assert!(contains(reply, n.as_bytes()));
            }
        }
        Ok(_) => assert!(reply.ends_with(b"\0")),
        Err(e) => assert!(!e.is_empty()),
    }

    if let Ok(r) = rspamd::parse_response(reply) {
        assert!(
            reply.starts_with(b"HTTP/"),
            "{:?}",
            String::from_utf8_lossy(&reply[..reply.len().min(40)])
        );
        assert!(r.score.is_finite() && r.required.is_finite(), "{r:?}");
        assert!(
            r.symbols.windows(2).all(|w| w[0].0 <= w[1].0),
            "{:?}",
            r.symbols
        );
        assert!(r.symbols.iter().all(|(_, s)| s.is_finite()));
    }
});
