//! The configuration parser and validator (`config::load::parse`, what `config::load::load` does
//! after reading the file), with and without a policy bank.
//!
//! Input: the TOML text (inputs mentioning `file:` are skipped: lookup tables would read files).
//! Never panics, and what check-config prints for a valid configuration (`toml::to_string_pretty`
//! of the effective settings) loads again and prints the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipescan::config::load as config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.contains("file:") {
        return;
    }
    let base = config::parse(text, "fuzz.toml", None);
    if let Err(e) = &base {
        // Errors are located in the text when a line is given. (They may quote control
        // characters from the text as they are: the file is the administrator's own.)
        if let Some(l) = e.line {
            assert!(
                l >= 1 && l <= text.lines().count().max(1) + 1,
                "line {l} in {text:?}"
            );
        }
    }
    for bank in ["ORIGINATING", "MYNETS", ""] {
        let _ = config::parse(text, "fuzz.toml", Some(bank));
    }
    if let Ok(cfg) = base {
        let printed = toml::to_string_pretty(&cfg).expect("check-config can print it");
        let again = config::parse(&printed, "printed.toml", None)
            .unwrap_or_else(|e| panic!("printed config does not load: {e}\n{printed}"));
        let printed2 = toml::to_string_pretty(&again).unwrap();
        assert_eq!(printed, printed2, "printing is not stable");
    }
});
