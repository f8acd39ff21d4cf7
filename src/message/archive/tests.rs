//! Hostile archives, hand-built: bombs (ratio and nesting), member floods, names meant to
//! trick a reader or an extractor, and every truncation of real archives. None may panic, take
//! long or hold more memory than the budget; a broken archive that says it is one is UNCHECKED.

use crate::message::parts::{Inventory, Limits, survey};
use std::io::Write;
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;

fn limits(max_expanded_size: u64) -> Limits {
    Limits {
        max_depth: 20,
        max_parts: 1000,
        max_archive_members: 1000,
        max_expanded_size,
    }
}

/// A message with `data` attached (base64) as `name`.
fn mail(name: &str, data: &[u8]) -> Vec<u8> {
    let b64 = crate::message::text::base64(data);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "From: a@example.org\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/octet-stream; name=\"{name}\"\nContent-Transfer-Encoding: base64\n\n{}\n--b--\n",
        lines.join("\n")
    )
    .into_bytes()
}

fn walk(name: &str, data: &[u8], l: &Limits) -> (Inventory, Duration) {
    let started = Instant::now();
    let inv = survey(&mail(name, data), l).expect("no panic");
    (inv, started.elapsed())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn tar(members: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut b = ::tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = ::tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(::tar::EntryType::Regular);
        // Raw bytes, as an attacker writes them (set_path refuses "..").
        let n = h.as_old_mut();
        let len = name.len().min(99);
        n.name[..len].copy_from_slice(&name[..len]);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A zip whose members are deflated (method 8) or stored, with raw names.
fn zip(members: &[(&[u8], &[u8], bool)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data, deflate) in members {
        let body = if *deflate {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        } else {
            data.to_vec()
        };
        let offset = out.len() as u32;
        let common = |v: &mut Vec<u8>| {
            v.extend_from_slice(&20u16.to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes());
            v.extend_from_slice(&(if *deflate { 8u16 } else { 0 }).to_le_bytes());
            v.extend_from_slice(&0u32.to_le_bytes());
            v.extend_from_slice(&0u32.to_le_bytes()); // crc: nobody checks it here
            v.extend_from_slice(&(body.len() as u32).to_le_bytes());
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(&(name.len() as u16).to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes());
        };
        out.extend_from_slice(b"PK\x03\x04");
        common(&mut out);
        out.extend_from_slice(name);
        out.extend_from_slice(&body);
        central.extend_from_slice(b"PK\x01\x02\x1e\x03");
        common(&mut central);
        central.extend_from_slice(&[0; 10]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name);
    }
    let cd = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn has(list: &[String], text: &str) -> bool {
    list.iter().any(|p| p.contains(text))
}

#[test]
fn ratio_bombs_stop_at_the_budget() {
    let zeros = vec![0u8; 64 * MIB as usize];
    let l = limits(4 * MIB);
    // A gzip of 64 MiB of zeros (64 KiB on the wire): nothing inside to open, so only its
    // first bytes are decompressed to type it. No bomb goes off, nothing to report.
    let (inv, took) = walk("big.gz", &gzip(&zeros), &l);
    assert!(inv.problems.is_empty(), "{inv:?}");
    assert!(inv.parts[1].size <= super::PROBE_BYTES as u64, "{inv:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // The same zeros as a tar member: the tar must be read whole to list it, which the budget
    // refuses.
    let (inv, took) = walk("big.tgz", &gzip(&tar(&[(b"zeros.bin", &zeros)])), &l);
    assert!(has(&inv.problems, "zip bomb guard"), "{inv:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    // A zip with a deflated member that expands to 64 MiB, and a tar.gz of one.
    let (inv, _) = walk("big.zip", &zip(&[(b"zeros.bin", &zeros, true)]), &l);
    assert!(has(&inv.problems, "zip bomb guard"), "{inv:?}");
    let inner = tar(&[(
        b"zeros.tar",
        &tar(&[(b"a.bin", &zeros[..8 * MIB as usize])]),
    )]);
    let (inv, _) = walk("big.tar.gz", &gzip(&inner), &l);
    assert!(has(&inv.problems, "zip bomb guard"), "{inv:?}");
}

#[test]
fn nesting_bombs_stop_at_max_depth() {
    let mut data = b"MZ\x90\0\x03\0 deep down".to_vec();
    for _ in 0..40 {
        data = gzip(&data);
    }
    let (inv, took) = walk("deep.gz", &data, &limits(200 * MIB));
    assert!(has(&inv.problems, "too deeply nested archives"), "{inv:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // Zips in zips, each member deflated.
    let mut z = b"x".to_vec();
    for i in 0..30 {
        z = zip(&[(format!("level{i}.zip").as_bytes(), &z, true)]);
    }
    let (inv, _) = walk("deep.zip", &z, &limits(200 * MIB));
    assert!(has(&inv.problems, "too deeply nested archives"), "{inv:?}");
}

#[test]
fn ten_thousand_members() {
    let names: Vec<Vec<u8>> = (0..10_000)
        .map(|i| format!("f{i}.txt").into_bytes())
        .collect();
    let members: Vec<(&[u8], &[u8])> = names
        .iter()
        .map(|n| (n.as_slice(), b"x".as_slice()))
        .collect();
    let (inv, took) = walk("many.tar", &tar(&members), &limits(200 * MIB));
    assert!(has(&inv.problems, "too many members"), "{:?}", inv.problems);
    assert!(took < Duration::from_secs(10), "{took:?}");
    let zm: Vec<(&[u8], &[u8], bool)> = names
        .iter()
        .map(|n| (n.as_slice(), b"x".as_slice(), false))
        .collect();
    let (inv, _) = walk("many.zip", &zip(&zm), &limits(200 * MIB));
    assert!(has(&inv.problems, "too many members"), "{:?}", inv.problems);
}

#[test]
fn names_meant_to_trick() {
    let long = vec![b'a'; 4096];
    let mut long_exe = long.clone();
    long_exe.extend_from_slice(b".exe");
    let members: Vec<(&[u8], &[u8], bool)> = vec![
        (b"../../../etc/cron.d/x.sh", b"#!/bin/sh\n", true),
        (b"evil.exe\0.txt", b"x", false),
        ("invoice\u{202E}fdp.exe".as_bytes(), b"x", false),
        (&long, b"x", false),
        (&long_exe, b"x", true),
    ];
    let (inv, _) = walk("tricks.zip", &zip(&members), &limits(200 * MIB));
    let names: Vec<&str> = inv.parts.iter().filter_map(|p| p.name.as_deref()).collect();
    assert!(names.contains(&"../../../etc/cron.d/x.sh"), "{names:?}");
    assert!(names.contains(&"evil.exe\0.txt"), "{names:?}");
    // Paths are for log lines and header fields: printable, bounded.
    for p in &inv.parts {
        assert!(!p.path.contains(['\0', '\u{202E}', '\n']), "{}", p.path);
        assert!(p.path.len() < 400, "{}", p.path.len());
    }
    let shell = inv
        .parts
        .iter()
        .find(|p| p.name.as_deref() == Some("../../../etc/cron.d/x.sh"));
    assert_eq!(shell.and_then(|p| p.sniffed), Some("script"));
    let reasons = crate::scan::banned::check(&inv.parts, &Default::default());
    assert!(has(&reasons, "control character"), "{reasons:?}");
    assert!(has(&reasons, "bidirectional"), "{reasons:?}");
    assert!(
        has(&reasons, "executable file name extension .exe"),
        "{reasons:?}"
    );
}

#[test]
fn every_truncation_of_real_archives_is_safe() {
    let exe = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0 program".to_vec();
    let t = tar(&[(b"readme.txt", b"hello"), (b"sub/invoice.exe", &exe)]);
    let mut rar = rars::Builder::new(rars::ArchiveVersion::Rar50);
    rar.add_bytes(b"invoice.exe".to_vec(), exe.clone(), None, None)
        .unwrap();
    let samples: Vec<(&str, Vec<u8>)> = vec![
        ("x.tar.gz", gzip(&t)),
        (
            "x.zip",
            zip(&[
                (b"a.txt", b"hello hello", true),
                (b"invoice.exe", &exe, true),
            ]),
        ),
        ("x.rar", rar.to_bytes().unwrap()),
    ];
    let l = limits(200 * MIB);
    for (name, whole) in &samples {
        let (inv, _) = walk(name, whole, &l);
        assert!(inv.unchecked.is_empty(), "{name}: {:?}", inv.unchecked);
        assert!(
            inv.parts.iter().any(|p| p
                .name
                .as_deref()
                .is_some_and(|n| n.ends_with("invoice.exe"))),
            "{name}: {inv:?}"
        );
        let mut unchecked = 0;
        for cut in 1..whole.len() {
            let (inv, _) = walk(name, &whole[..cut], &l);
            unchecked += usize::from(!inv.unchecked.is_empty());
        }
        // Most cuts are seen (a cut inside gzip's trailer or zip padding may still list all).
        assert!(
            unchecked > whole.len() / 2,
            "{name}: {unchecked} of {}",
            whole.len()
        );
    }
    // Garbage after a valid signature.
    for magic in [
        &b"PK\x03\x04"[..],
        b"7z\xbc\xaf\x27\x1c",
        b"Rar!\x1a\x07\x01\x00",
        b"\x1f\x8b\x08",
        b"BZh91AY&SY",
        b"\xfd7zXZ\x00",
        b"MSCF\0\0\0\0",
    ] {
        let mut junk = magic.to_vec();
        junk.extend((0..3000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
        let (inv, _) = walk("junk.bin", &junk, &l);
        assert!(!inv.unchecked.is_empty(), "{magic:?}: {inv:?}");
    }
}

#[test]
fn ooxml_with_a_vba_project_is_an_office_macro() {
    let docm = zip(&[
        (b"[Content_Types].xml", b"<Types/>", true),
        (b"word/document.xml", b"<w:document/>", true),
        (
            b"word/vbaProject.bin",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            false,
        ),
    ]);
    let (inv, _) = walk("report.docm", &docm, &limits(200 * MIB));
    assert_eq!(inv.parts[0].sniffed, Some("office-macro"), "{inv:?}");
    let docx = zip(&[(b"word/document.xml", b"<w:document/>", true)]);
    let (inv, _) = walk("report.docx", &docx, &limits(200 * MIB));
    assert_eq!(inv.parts[0].sniffed, Some("zip"), "{inv:?}");
}

#[test]
fn documents_are_searched_whole_up_to_the_limit() {
    let small = b"%PDF-1.4\n<< /S /JavaScript >>".to_vec();
    let (inv, _) = walk("form.pdf", &small, &limits(200 * MIB));
    assert_eq!(inv.parts[0].sniffed, Some("pdf-js"));
    // Over the limit: typed by its first bytes, never decoded whole (the memory bound).
    let mut big = b"%PDF-1.4\n".to_vec();
    big.resize(
        crate::message::sniff::DOCUMENT_SEARCH_LIMIT as usize + 10,
        b' ',
    );
    big.extend_from_slice(b"<< /S /JavaScript >>");
    let (inv, _) = walk("big.pdf", &big, &limits(200 * MIB));
    assert_eq!(inv.parts[0].sniffed, Some("pdf"));
}

#[test]
fn a_member_that_does_not_decompress_is_unchecked() {
    let mut z = zip(&[(b"report.pdf", &[b'%'; 50_000], true)]);
    // Break the deflate stream in the middle (the central directory stays intact).
    let at = z.windows(10).position(|w| w == b"report.pdf").unwrap() + 10;
    for b in &mut z[at..at + 40] {
        *b = 0xFF;
    }
    let (inv, _) = walk("r.zip", &z, &limits(200 * MIB));
    assert!(
        inv.unchecked
            .iter()
            .any(|u| u.why.contains("corrupt member")),
        "{inv:?}"
    );
}
