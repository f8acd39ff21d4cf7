//! Inputs the fuzz targets (fuzz/, see fuzz/README.md) found, replayed through the library.
//!
//! Every file in t/fuzz-crashes/ is named after its target (`TARGET-what.bin`) and holds the input
//! in that target's format. Each is run through the same functions the target calls; none may
//! panic. Inputs that showed a wrong result (rather than a panic) also get a test of the result.

use pipescan::message::edit::Rewrite;
use pipescan::message::header::Header;
use pipescan::verdict::Edits;
use std::path::PathBuf;

fn crashes(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("t/fuzz-crashes");
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("t/fuzz-crashes")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{target}-")) && n.ends_with(".bin"))
        })
        .map(|p| {
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    out.sort();
    out
}

/// The message_edit target's control byte (kept in step with fuzz/fuzz_targets/message_edit.rs,
/// reduced to what the fixtures use: bit 0 adds a field, bit 1 removes forgeable fields, bit 3
/// tags Subject).
fn edits_for(ctl: u8) -> Edits {
    let mut e = Edits::default();
    if ctl & 1 != 0 {
        e.add
            .push(("X-Virus-Scanned".into(), "pipescan at mx.example".into()));
    }
    if ctl & 2 != 0 {
        e.remove_names = ["X-Spam-*", "X-Quarantine-ID", "X-Pipescan-Alert"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    }
    if ctl & 8 != 0 {
        e.subject_tag = Some("[SPAM]".into());
    }
    e
}

fn rewrite(raw: &[u8], e: &Edits) -> Vec<u8> {
    let h = Header::parse(raw);
    let mut out = Vec::new();
    Rewrite::new(raw, &h, e)
        .write_to(&mut out, raw, None)
        .unwrap();
    out
}

#[test]
fn message_edit_inputs_keep_the_byte_contract() {
    let inputs = crashes("message_edit");
    assert!(!inputs.is_empty());
    for (path, data) in inputs {
        let (&ctl, raw) = data.split_first().unwrap();
        let e = edits_for(ctl);
        let h = Header::parse(raw);
        let out = rewrite(raw, &e);
        // The input is copied after our inserted fields, byte for byte (no field of these inputs
        // is removed or tagged), and the body is unchanged.
        assert!(out.ends_with(&raw[h.insert_at..]), "{}", path.display());
        assert!(out.starts_with(&raw[..h.insert_at]), "{}", path.display());
        assert!(out.ends_with(&raw[h.body_start..]), "{}", path.display());
        // Read back: exactly our fields, and the same body (no body line became a field or a
        // continuation of ours, and ours did not vanish into an mbox `From ` line).
        let h2 = Header::parse(&out);
        let added = e.add.len() + usize::from(e.subject_tag.is_some() && h.fields.is_empty());
        assert_eq!(
            h2.fields.len(),
            h.fields.len() + added,
            "{}",
            path.display()
        );
        assert_eq!(
            &out[h2.body_start..],
            &raw[h.body_start..],
            "{}",
            path.display()
        );
    }
}

/// message_edit-no-header-leading-space.bin and -from-line-no-newline.bin, the two fixed
/// findings, as literal bytes.
#[test]
fn added_fields_never_swallow_body_lines_or_join_a_from_line() {
    let mut e = Edits::default();
    e.add
        .push(("X-Virus-Scanned".into(), "pipescan at mx.example".into()));
    let raw = b"  continued\nSubject: body text\n";
    assert_eq!(
        rewrite(raw, &e),
        b"X-Virus-Scanned: pipescan at mx.example\n\n  continued\nSubject: body text\n"
    );
    let raw = b"From a@b Mon Nov 23 10:00:00 2026";
    assert_eq!(
        rewrite(raw, &e),
        b"From a@b Mon Nov 23 10:00:00 2026\nX-Virus-Scanned: pipescan at mx.example\n"
    );
}

/// message_edit-crlf-from-line-only.bin: a message that is only a CRLF mbox `From ` line. The
/// fuzz target's line-ending oracle was too strict here (not a bug in pipescan): with no line after
/// the `From ` line, the added fields take that line's CRLF.
#[test]
fn fields_after_a_lone_crlf_from_line_use_crlf() {
    let data = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("t/fuzz-crashes/message_edit-crlf-from-line-only.bin"),
    )
    .unwrap();
    let (&ctl, raw) = data.split_first().unwrap();
    assert_eq!(raw, b"From \r\n");
    assert_eq!(
        rewrite(raw, &edits_for(ctl)),
        b"From \r\nX-Virus-Scanned: pipescan at mx.example\r\nSubject: [SPAM]\r\n"
    );
}

/// envelope-timeout-not-reproducible.bin: 93 NUL-separated arguments, mostly empty. The envelope
/// target once took over 10 s on it (inside clap, under a loaded machine); replayed it takes
/// milliseconds. Kept to catch a real slowdown in argument parsing.
#[test]
fn many_empty_arguments_parse_quickly() {
    use clap::Parser;
    use pipescan::cli::Cli;
    use pipescan::envelope::Envelope;
    for (path, data) in crashes("envelope") {
        let started = std::time::Instant::now();
        let text = String::from_utf8_lossy(&data);
        let parts: Vec<String> = text.split('\0').map(str::to_string).collect();
        let (sender, rcpts) = parts.split_first().unwrap();
        let _ = Envelope::new(sender.clone(), rcpts.to_vec());
        let argv = ["pipescan", "-f", sender.as_str(), "--"]
            .into_iter()
            .map(str::to_string)
            .chain(rcpts.iter().cloned());
        let cli = Cli::try_parse_from(argv).expect("the Postfix form always parses");
        assert_eq!(
            cli.filter.envelope(),
            Some((sender.clone(), rcpts.to_vec()))
        );
        let argv = std::iter::once("pipescan".to_string()).chain(parts.iter().cloned());
        let _ = Cli::try_parse_from(argv);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{}",
            path.display()
        );
    }
}

/// The archive target's inputs (format byte, then the archive, as fuzz/fuzz_targets/archive.rs
/// reads them): listed without a panic escaping, and a decoder that panicked is reported as a
/// corrupt archive (UNCHECKED), not an empty one. The cab crate indexed past its data blocks on
/// archive-cab-folder-index.bin; unguarded, that panic failed the whole banned-files walk, so
/// one crafted cab would have hidden a banned file elsewhere in the message.
#[test]
fn archive_inputs_are_listed_or_reported_corrupt() {
    use pipescan::message::archive::{Caps, Format, Trouble, list};
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
    let inputs = crashes("archive");
    assert!(!inputs.is_empty());
    for (path, data) in inputs {
        let (&pick, archive) = data.split_first().unwrap();
        let format = FORMATS[usize::from(pick) % FORMATS.len()];
        let mut caps = Caps {
            max_members: 50,
            budget: 1 << 20,
        };
        let listing = list(format, archive, &mut caps);
        assert!(
            matches!(listing.trouble, Some(Trouble::Corrupt(_))),
            "{}",
            path.display()
        );
    }
}
