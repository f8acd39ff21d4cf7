//! Envelope arguments: the command line as the MTA gives it (`cli::Cli::try_parse_from`,
//! `FilterArgs::envelope`) and the address checks (`envelope::Envelope::new`).
//!
//! Input: NUL-separated strings. Asserts, besides "never panics":
//! - `Envelope::new` accepts exactly the addresses without control characters, at most 998 bytes,
//!   with non-empty recipients (the sender may be empty), and keeps them byte for byte;
//! - the Postfix form `-f SENDER -- RCPT...` parses for any sender and recipients (recipients may
//!   start with `-` or be subcommand names), and gives them back exactly;
//! - arbitrary argument vectors parse or fail, never panic.
#![no_main]

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use pipescan::cli::Cli;
use pipescan::envelope::Envelope;

fn acceptable(a: &str, may_be_empty: bool) -> bool {
    (may_be_empty || !a.is_empty()) && !a.chars().any(char::is_control) && a.len() <= 998
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parts: Vec<String> = text.split('\0').map(str::to_string).collect();
    let (sender, rcpts) = parts.split_first().expect("split gives one item");
    let rcpts: Vec<String> = rcpts.to_vec();

    let want_ok = acceptable(sender, true) && rcpts.iter().all(|r| acceptable(r, false));
    match Envelope::new(sender.clone(), rcpts.clone()) {
        Ok(e) => {
            assert!(want_ok, "accepted {sender:?} {rcpts:?}");
            assert_eq!(&e.sender, sender);
            assert_eq!(e.recipients, rcpts);
        }
        Err(err) => {
            assert!(!want_ok, "refused {sender:?} {rcpts:?}: {err}");
            assert!(
                !err.0.contains(['\r', '\n', '\0']),
                "error text is one line: {err}"
            );
        }
    }

    // Postfix pipe form: argv=pipescan -f ${sender} -- ${recipient}
    let argv = ["pipescan", "-f", sender.as_str(), "--"]
        .into_iter()
        .map(str::to_string)
        .chain(rcpts.iter().cloned());
    let cli = Cli::try_parse_from(argv);
    match cli {
        Ok(c) => {
            assert!(c.command.is_none());
            assert_eq!(
                c.filter.envelope(),
                Some((sender.clone(), rcpts.clone())),
                "-f {sender:?} -- {rcpts:?}"
            );
        }
        Err(e) => panic!("-f {sender:?} -- {rcpts:?} refused: {e}"),
    }

    // Whatever argv: parse or fail.
    let argv = std::iter::once("pipescan".to_string()).chain(parts.iter().cloned());
    if let Ok(c) = Cli::try_parse_from(argv) {
        let _ = c.filter.envelope();
    }
});
