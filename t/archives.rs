//! What mail carries, opened (issue 17): the cases where amavisd-new with its archive decoders
//! blocks or flags a message and pipescan once passed it CLEAN. Every archive is made at test
//! time by the real tool an attacker (or a colleague) would use: tar and gzip, 7z (p7zip-full),
//! xorriso, gcab, zip -e; RAR by the `rars` crate's writer, as no free RAR creator exists. A
//! missing tool FAILS the test and names the package (scripts/test installs them).
//!
//! The banned rules, destinies and tags are the defaults: a banned part is discarded and
//! quarantined; UNCHECKED passes with `***UNCHECKED***` and the reason in X-Pipescan-Alert.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The start of a real PE file (DOS header, stub, "PE\0\0"), padded.
fn pe() -> Vec<u8> {
    let mut v = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00\xb8".to_vec();
    v.resize(0x3C, 0);
    v.extend_from_slice(&[0x80, 0, 0, 0]);
    v.extend_from_slice(
        b"\x0e\x1f\xba\x0e\x00\xb4\x09\xcd\x21This program cannot be run in DOS mode.\r\r\n$",
    );
    v.resize(0x80, 0);
    v.extend_from_slice(b"PE\0\0\x4c\x01\x03\x00");
    // Compressible filler, so deflate really compresses it.
    v.extend(std::iter::repeat_n(b"\x90\x90\xc3 padding ".iter().copied(), 600).flatten());
    v
}

/// A work directory with `src/` holding the given files.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new(files: &[(&str, &[u8])]) -> Work {
        let dir = tempfile::tempdir().unwrap();
        for (name, data) in files {
            let p = dir.path().join("src").join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        Work { dir }
    }
    fn src(&self) -> PathBuf {
        self.dir.path().join("src")
    }
    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// Runs a tool in `src/`; fails the test, naming the Debian package, when it is missing.
    fn tool(&self, package: &str, argv: &[&str]) {
        let r = Command::new(argv[0])
            .args(&argv[1..])
            .current_dir(self.src())
            .output()
            .unwrap_or_else(|e| {
                panic!("{} is needed to make this fixture ({e}): apt-get install {package} (scripts/test does)", argv[0])
            });
        assert!(
            r.status.success(),
            "{argv:?}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
    }
    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.out(name)).unwrap()
    }
}

/// A message from mallory with `data` attached as `name`.
fn mail_with(name: &str, data: &[u8]) -> Vec<u8> {
    format!(
        "From: mallory@example.net\nTo: bob@example.com\nSubject: documents\nDate: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <arch@example.net>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\nsee attachment\n--b1\nContent-Type: application/octet-stream; name=\"{name}\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"{name}\"\n\n{}\n--b1--\n",
        base64_lines(data)
    )
    .into_bytes()
}

const ARGV: &[&str] = &["-v", "-f", "mallory@example.net", "--", "bob@example.com"];

/// The message is BANNED (discarded and quarantined by default), naming `what`.
fn assert_banned(story: &str, msg: &[u8], what: &str) {
    let f = Filter::new("");
    let r = f.run(ARGV, msg);
    assert_eq!(r.code, 0, "{story}: {}", r.stderr);
    assert!(
        r.stderr.contains("Blocked BANNED ("),
        "{story}: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains(what),
        "{story}: wanted {what:?} in {}",
        r.stderr
    );
    assert_eq!(f.calls(), 0, "{story}: delivered");
    assert_eq!(f.quarantined().len(), 1, "{story}: not quarantined");
}

/// The message passes UNCHECKED: tagged, with the reason in the alert field and the log.
fn assert_unchecked(story: &str, msg: &[u8], why: &str) {
    let f = Filter::new("");
    let r = f.run(ARGV, msg);
    assert_eq!(r.code, 0, "{story}: {}", r.stderr);
    assert!(
        r.stderr.contains("Passed UNCHECKED (") && r.stderr.contains(why),
        "{story}: wanted UNCHECKED with {why:?}: {}",
        r.stderr
    );
    assert_eq!(f.calls(), 1, "{story}: {}", r.stderr);
    let out = String::from_utf8_lossy(&f.call_msg(0))
        .replace("\n\t", " ")
        .replace("\n ", " ");
    let header = out.split("\n\n").next().unwrap();
    assert!(
        header.contains("Subject: ***UNCHECKED*** documents"),
        "{story}: {header}"
    );
    assert!(!r.stderr.contains("check failed"), "{story}: {}", r.stderr);
    let alert = header
        .lines()
        .find(|l| {
            l.starts_with("X-Pipescan-Alert: UNCHECKED, message could not be virus-checked: ")
        })
        .unwrap_or_else(|| panic!("{story}: no UNCHECKED alert: {header}"));
    let said = alert.split_once("virus-checked: ").unwrap().1;
    assert!(said.starts_with(why), "{story}: {alert}");
    // Every byte after our fields is the message as it came, but for the tagged Subject.
    assert!(
        out.ends_with(
            &String::from_utf8_lossy(msg)
                .replace("Subject: documents", "Subject: ***UNCHECKED*** documents")[..]
        ),
        "{story}"
    );
}

fn assert_clean(story: &str, msg: &[u8]) {
    let f = Filter::new("");
    let r = f.run(ARGV, msg);
    assert_eq!(r.code, 0, "{story}: {}", r.stderr);
    assert!(r.stderr.contains("Passed CLEAN"), "{story}: {}", r.stderr);
}

fn files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("readme.txt", b"hello\n".to_vec()),
        ("sub/invoice.exe", pe()),
    ]
}

fn work() -> Work {
    let f = files();
    let refs: Vec<(&str, &[u8])> = f.iter().map(|(n, d)| (*n, d.as_slice())).collect();
    Work::new(&refs)
}

#[test]
fn an_exe_inside_a_tar_gz_is_banned() {
    let w = work();
    let out = w.out("docs.tar.gz");
    w.tool(
        "tar",
        &["tar", "czf", out.to_str().unwrap(), "readme.txt", "sub"],
    );
    assert_banned(
        "tar.gz",
        &mail_with("docs.tar.gz", &w.read("docs.tar.gz")),
        "invoice.exe",
    );
    // bzip2 and xz, and a single gzipped program that keeps its name in the gzip header.
    for (flag, name) in [
        ("cjf", "docs.tar.bz2"),
        ("cJf", "docs.tar.xz"),
        ("cf", "docs.tar"),
    ] {
        let out = w.out(name);
        w.tool(
            "tar",
            &["tar", flag, out.to_str().unwrap(), "readme.txt", "sub"],
        );
        assert_banned(name, &mail_with(name, &w.read(name)), "invoice.exe");
    }
    let gz = Command::new("gzip")
        .args(["-c", "sub/invoice.exe"])
        .current_dir(w.src())
        .output()
        .unwrap();
    assert!(gz.status.success());
    assert_banned(
        "gzip with FNAME",
        &mail_with("scan.gz", &gz.stdout),
        "invoice.exe",
    );
}

#[test]
fn an_exe_inside_a_7z_rar_or_iso_is_banned() {
    let w = work();
    let out = w.out("docs.7z");
    w.tool(
        "p7zip-full",
        &[
            "7z",
            "a",
            "-bd",
            "-bso0",
            out.to_str().unwrap(),
            "readme.txt",
            "sub",
        ],
    );
    assert_banned(
        "7z",
        &mail_with("docs.7z", &w.read("docs.7z")),
        "invoice.exe",
    );
    // A program under a text's name is found only by decoding it: LZMA2 with 7-Zip's x86
    // filter (its default for programs), BZip2 and PPMd.
    let disguised = Work::new(&[("notes.txt", &pe()), ("setup.exe", &pe())]);
    for (method, name) in [
        ("-m0=LZMA2", "lzma2.7z"),
        ("-m0=BZip2", "bzip2.7z"),
        ("-m0=PPMd", "ppmd.7z"),
    ] {
        disguised.tool(
            "p7zip-full",
            &[
                "7z",
                "a",
                "-bd",
                "-bso0",
                method,
                &format!("../{name}"),
                "notes.txt",
            ],
        );
        assert_banned(
            name,
            &mail_with(name, &disguised.read(name)),
            "executable content (exe) named .txt",
        );
    }
    disguised.tool(
        "p7zip-full",
        &[
            "7z",
            "a",
            "-bd",
            "-bso0",
            "../bcj.7z",
            "setup.exe",
            "notes.txt",
        ],
    );
    assert_banned(
        "7z with BCJ",
        &mail_with("bcj.7z", &disguised.read("bcj.7z")),
        "executable content (exe) named .txt",
    );

    for (version, label) in [
        (rars::ArchiveVersion::Rar50, "RAR5"),
        (rars::ArchiveVersion::Rar29, "RAR4"),
    ] {
        let mut b = rars::Builder::new(version);
        b.add_bytes(b"readme.txt".to_vec(), b"hello\n".to_vec(), None, None)
            .unwrap();
        b.add_bytes(b"sub/invoice.exe".to_vec(), pe(), None, None)
            .unwrap();
        let rar = b.to_bytes().unwrap();
        assert_banned(label, &mail_with("docs.rar", &rar), "invoice.exe");
        // Decoded, not only listed: a program named notes.txt.
        let mut b = rars::Builder::new(version);
        b.add_bytes(b"notes.txt".to_vec(), pe(), None, None)
            .unwrap();
        let rar = b.to_bytes().unwrap();
        assert_banned(
            label,
            &mail_with("notes.rar", &rar),
            "executable content (exe) named .txt",
        );
    }

    let out = w.out("docs.iso");
    w.tool(
        "xorriso",
        &[
            "xorriso",
            "-as",
            "mkisofs",
            "-quiet",
            "-R",
            "-J",
            "-o",
            out.to_str().unwrap(),
            ".",
        ],
    );
    assert_banned(
        "iso (Joliet)",
        &mail_with("docs.iso", &w.read("docs.iso")),
        "invoice.exe",
    );
    // Plain ISO 9660 names (INVOICE.EXE;1) are what Windows shows without Joliet.
    let out = w.out("plain.iso");
    w.tool(
        "genisoimage",
        &["genisoimage", "-quiet", "-o", out.to_str().unwrap(), "."],
    );
    assert_banned(
        "iso (plain)",
        &mail_with("docs.img", &w.read("plain.iso")),
        "INVOICE.EXE",
    );

    let out = w.out("docs.cab");
    w.tool(
        "gcab",
        &[
            "gcab",
            "-c",
            "-z",
            out.to_str().unwrap(),
            "readme.txt",
            "sub/invoice.exe",
        ],
    );
    assert_banned(
        "cab (MSZIP)",
        &mail_with("docs.cab", &w.read("docs.cab")),
        "invoice.exe",
    );
    // MSZIP decoded: a program named notes.txt; and an ISO's file content read.
    let disguised = Work::new(&[("notes.txt", &pe())]);
    disguised.tool("gcab", &["gcab", "-c", "-z", "../notes.cab", "notes.txt"]);
    assert_banned(
        "cab content",
        &mail_with("notes.cab", &disguised.read("notes.cab")),
        "executable content (exe) named .txt",
    );
    disguised.tool(
        "xorriso",
        &[
            "xorriso",
            "-as",
            "mkisofs",
            "-quiet",
            "-J",
            "-o",
            "../notes.iso",
            ".",
        ],
    );
    assert_banned(
        "iso content",
        &mail_with("notes.iso", &disguised.read("notes.iso")),
        "executable content (exe) named .txt",
    );
}

#[test]
fn a_program_named_pdf_in_a_deflated_zip_member_is_banned() {
    let w = Work::new(&[
        ("scan.pdf", &pe()),
        ("note.txt", b"hello hello hello hello\n"),
    ]);
    let out = w.out("scan.zip");
    w.tool(
        "zip",
        &[
            "zip",
            "-q",
            "-9",
            out.to_str().unwrap(),
            "scan.pdf",
            "note.txt",
        ],
    );
    let zip = w.read("scan.zip");
    // Really deflated (method 8 in the central directory), not stored.
    assert!(zip.windows(4).any(|x| x == b"PK\x01\x02"));
    assert_banned(
        "deflated member",
        &mail_with("scan.zip", &zip),
        "executable content (exe) named .pdf",
    );
    // Three levels: the zip inside a tar.gz inside a 7z.
    let w2 = Work::new(&[("scan.zip", &zip)]);
    w2.tool("tar", &["tar", "czf", "../inner.tar.gz", "scan.zip"]);
    w2.tool(
        "p7zip-full",
        &["7z", "a", "-bd", "-bso0", "../outer.7z", "../inner.tar.gz"],
    );
    assert_banned(
        "zip in tar.gz in 7z",
        &mail_with("outer.7z", &w2.read("outer.7z")),
        "scan.pdf",
    );
}

#[test]
fn a_password_protected_archive_is_unchecked() {
    let w = Work::new(&[(
        "report.pdf",
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n",
    )]);
    let out = w.out("report.zip");
    w.tool(
        "zip",
        &[
            "zip",
            "-q",
            "-P",
            "secret",
            out.to_str().unwrap(),
            "report.pdf",
        ],
    );
    assert_unchecked(
        "zip -P",
        &mail_with("report.zip", &w.read("report.zip")),
        "encrypted member report.pdf in archive",
    );

    let out = w.out("report.7z");
    w.tool(
        "p7zip-full",
        &[
            "7z",
            "a",
            "-bd",
            "-bso0",
            "-psecret",
            out.to_str().unwrap(),
            "report.pdf",
        ],
    );
    assert_unchecked(
        "7z -p",
        &mail_with("report.7z", &w.read("report.7z")),
        "encrypted member report.pdf",
    );
    let out = w.out("names.7z");
    w.tool(
        "p7zip-full",
        &[
            "7z",
            "a",
            "-bd",
            "-bso0",
            "-psecret",
            "-mhe=on",
            out.to_str().unwrap(),
            "report.pdf",
        ],
    );
    assert_unchecked(
        "7z -mhe",
        &mail_with("names.7z", &w.read("names.7z")),
        "encrypted archive",
    );

    let mut b = rars::Builder::new(rars::ArchiveVersion::Rar50).password(Some(b"secret".to_vec()));
    b.add_bytes(b"report.pdf".to_vec(), b"%PDF-1.4\n".to_vec(), None, None)
        .unwrap();
    assert_unchecked(
        "rar -p",
        &mail_with("report.rar", &b.to_bytes().unwrap()),
        "encrypted member report.pdf",
    );
    let mut b = rars::Builder::new(rars::ArchiveVersion::Rar50)
        .password(Some(b"secret".to_vec()))
        .header_encryption(true);
    b.add_bytes(b"report.pdf".to_vec(), b"%PDF-1.4\n".to_vec(), None, None)
        .unwrap();
    assert_unchecked(
        "rar -hp",
        &mail_with("report.rar", &b.to_bytes().unwrap()),
        "encrypted archive",
    );
}

#[test]
fn a_corrupt_or_truncated_archive_is_unchecked_never_clean() {
    let w = work();
    for (name, argv, package) in [
        (
            "t.tar.gz",
            vec!["tar", "czf", "../t.tar.gz", "readme.txt", "sub"],
            "tar",
        ),
        (
            "t.7z",
            vec!["7z", "a", "-bd", "-bso0", "../t.7z", "readme.txt", "sub"],
            "p7zip-full",
        ),
        (
            "t.zip",
            vec!["zip", "-q", "-r", "../t.zip", "readme.txt", "sub"],
            "zip",
        ),
    ] {
        w.tool(package, &argv);
        let whole = w.read(name);
        let cut = &whole[..whole.len() * 2 / 3];
        assert_unchecked(
            &format!("truncated {name}"),
            &mail_with(name, cut),
            "corrupt or truncated archive",
        );
    }
    // Not an archive at all, only named like one: a file, judged by its content.
    assert_clean(
        "text named .7z",
        &mail_with("notes.7z", b"just some notes\n"),
    );
}

#[test]
fn clean_archives_stay_clean() {
    let w = Work::new(&[
        ("readme.txt", b"hello\n"),
        ("data/report.csv", b"a,b\n1,2\n"),
    ]);
    w.tool("tar", &["tar", "czf", "../ok.tar.gz", "readme.txt", "data"]);
    assert_clean("tar.gz", &mail_with("ok.tar.gz", &w.read("ok.tar.gz")));
    w.tool(
        "p7zip-full",
        &["7z", "a", "-bd", "-bso0", "../ok.7z", "readme.txt", "data"],
    );
    assert_clean("7z", &mail_with("ok.7z", &w.read("ok.7z")));
    w.tool(
        "zip",
        &["zip", "-q", "-r", "../ok.zip", "readme.txt", "data"],
    );
    assert_clean("zip", &mail_with("ok.zip", &w.read("ok.zip")));
    let _ = Path::new("");
}

/// The shipped config's commented "malware carriers" rules, uncommented, as an admin would.
fn carrier_rules() -> String {
    let shipped = std::fs::read_to_string(repo().join("conf/pipescan.toml")).unwrap();
    let start = shipped
        .find("# --- malware carriers of the 2020s")
        .expect("the rule set is in conf/pipescan.toml");
    let end = shipped[start..]
        .find("# --- end of malware carriers ---")
        .unwrap()
        + start;
    let mut rules = String::from("[banned]\n");
    for line in shipped[start..end].lines() {
        let l = line.strip_prefix("# ").unwrap_or(line);
        if l.starts_with("[[")
            || l.starts_with("action")
            || l.starts_with("name")
            || l.starts_with("sniffed")
            || l.starts_with("description")
        {
            rules.push_str(l);
            rules.push('\n');
        }
    }
    assert!(
        rules.matches("[[banned.local_rules]]").count() >= 5,
        "{rules}"
    );
    rules
}

#[test]
fn the_shipped_macro_rules_ban_the_2020s_carriers_when_uncommented() {
    let rules = carrier_rules();
    let f = Filter::new(&rules);
    let r = Command::new(bin())
        .args(["-c", f.config.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));

    let docm = Work::new(&[
        ("[Content_Types].xml", b"<Types/>"),
        ("word/document.xml", b"<w:document/>"),
        (
            "word/vbaProject.bin",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 not much of a project",
        ),
    ]);
    docm.tool("zip", &["zip", "-q", "-r", "../r.docm", "."]);
    let html =
        b"<!DOCTYPE html><html><body><script>location='https://x.example/'</script></body></html>";
    let iso = Work::new(&[("setup.txt", b"readme")]);
    iso.tool(
        "xorriso",
        &["xorriso", "-as", "mkisofs", "-quiet", "-o", "../d.bin", "."],
    );
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "a Word document with macros",
            "report.docm",
            docm.read("r.docm"),
            "Office document with macros",
        ),
        (
            "an ISO image",
            "invoice.img",
            iso.read("d.bin"),
            "disk image .img",
        ),
        (
            "ISO content under another name",
            "invoice.dat",
            iso.read("d.bin"),
            "ISO 9660 disk image content",
        ),
        (
            "a OneNote file",
            "notes.one",
            b"\xe4\x52\x5c\x7b\x8c\xd8\xa7\x4d".to_vec(),
            "OneNote file .one",
        ),
        (
            "HTML smuggling",
            "invoice.html",
            html.to_vec(),
            "HTML attachment with a script",
        ),
        (
            "a PDF with JavaScript",
            "form.pdf",
            b"%PDF-1.4\n<< /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>".to_vec(),
            "PDF with JavaScript",
        ),
    ];
    for (story, name, data, why) in cases {
        let f = Filter::new(&rules);
        let r = f.run(ARGV, &mail_with(name, &data));
        assert!(
            r.stderr.contains("Blocked BANNED (") && r.stderr.contains(why),
            "{story}: {}",
            r.stderr
        );
    }
    // Without the rules (the default), all of these pass: they are the admin's choice.
    let docx_like = mail_with("report.docm", &docm.read("r.docm"));
    assert_clean("docm without the rules", &docx_like);
    // With them, ordinary documents still pass.
    let plain = Work::new(&[("word/document.xml", b"<w:document/>")]);
    plain.tool("zip", &["zip", "-q", "-r", "../r.docx", "."]);
    let f = Filter::new(&rules);
    let r = f.run(ARGV, &mail_with("report.docx", &plain.read("r.docx")));
    assert!(r.stderr.contains("Passed CLEAN"), "{}", r.stderr);
    let r = f.run(
        ARGV,
        &mail_with("page.html", b"<html><body><p>hello</p></body></html>"),
    );
    assert!(r.stderr.contains("Passed CLEAN"), "{}", r.stderr);
}

/// A message whose body is `part` (a whole MIME entity: its header fields, a blank line, body).
fn mail_of(part: &str) -> Vec<u8> {
    format!(
        "From: mallory@example.net\nTo: bob@example.com\nSubject: documents\nDate: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <enc@example.net>\nMIME-Version: 1.0\n{part}"
    )
    .into_bytes()
}

#[test]
fn encrypted_pdf_smime_and_pgp_are_unchecked_when_the_admin_says_so() {
    let w = Work::new(&[("readme.txt", b"hello")]);
    // A real PDF, encrypted by qpdf (it writes the /Encrypt dictionary a reader asks about).
    w.tool(
        "qpdf",
        &[
            "qpdf",
            "--empty",
            "--encrypt",
            "user",
            "owner",
            "256",
            "--",
            "../locked.pdf",
        ],
    );
    let pdf = mail_with("statement.pdf", &w.read("locked.pdf"));
    // S/MIME enveloped data, by openssl with a throwaway certificate.
    w.tool(
        "openssl",
        &[
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=bob",
            "-keyout",
            "../key.pem",
            "-out",
            "../cert.pem",
            "-days",
            "1",
        ],
    );
    std::fs::write(
        w.src().join("note.txt"),
        b"Content-Type: text/plain\n\nthe secret\n",
    )
    .unwrap();
    w.tool(
        "openssl",
        &[
            "openssl",
            "smime",
            "-encrypt",
            "-aes256",
            "-in",
            "note.txt",
            "-out",
            "../smime.eml",
            "../cert.pem",
        ],
    );
    let smime_entity = String::from_utf8(w.read("smime.eml")).unwrap();
    // openssl writes MIME-Version and the entity; keep the entity.
    let smime_entity = smime_entity.replace("MIME-Version: 1.0\n", "");
    let smime = mail_of(&smime_entity);
    // PGP/MIME (RFC 3156) around a message gpg encrypted.
    let home = w.out("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    w.tool(
        "gpg",
        &[
            "gpg",
            "--homedir",
            home.to_str().unwrap(),
            "--batch",
            "--yes",
            "--passphrase",
            "x",
            "--symmetric",
            "--armor",
            "-o",
            "../msg.asc",
            "note.txt",
        ],
    );
    let armored = String::from_utf8(w.read("msg.asc")).unwrap();
    let pgp = mail_of(&format!(
        "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"pgp\"\n\n--pgp\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n--pgp\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\n\n{armored}\n--pgp--\n"
    ));
    // Default: only encrypted archives count, so all three pass CLEAN.
    for (story, msg) in [
        ("encrypted PDF", &pdf),
        ("S/MIME", &smime),
        ("PGP/MIME", &pgp),
    ] {
        assert_clean(&format!("{story}, default"), msg);
    }
    let f =
        Filter::new("[banned]\nunchecked_encrypted = [\"archive\", \"pdf\", \"smime\", \"pgp\"]\n");
    for (story, msg, why) in [
        ("encrypted PDF", &pdf, "encrypted PDF (part 2)"),
        ("S/MIME", &smime, "S/MIME encrypted part (part 1)"),
        (
            "PGP/MIME",
            &pgp,
            "encrypted part, multipart/encrypted (part 1)",
        ),
    ] {
        let r = f.run(ARGV, msg);
        assert_eq!(r.code, 0, "{story}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!("Passed UNCHECKED ({why}")),
            "{story}: {}",
            r.stderr
        );
    }
    // A PDF without a password stays CLEAN under that setting too.
    w.tool("qpdf", &["qpdf", "--empty", "../open.pdf"]);
    let r = f.run(ARGV, &mail_with("statement.pdf", &w.read("open.pdf")));
    assert!(r.stderr.contains("Passed CLEAN"), "{}", r.stderr);
    let f = Filter::new("[banned]\nunchecked_encrypted = [\"zip\"]\n");
    let r = Command::new(bin())
        .args(["-c", f.config.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert_eq!(
        r.status.code(),
        Some(78),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("unchecked_encrypted"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
}

/// A 7z whose plain (uncompressed) header claims 2^36 files: sevenz-rust2 0.20 allocated for
/// them first and aborted the whole process (no panic to catch). Now UNCHECKED, as corrupt.
#[test]
fn a_7z_header_claiming_billions_of_files_is_unchecked_not_a_crash() {
    let w = Work::new(&[("one.txt", b"hello\n")]);
    w.tool(
        "p7zip-full",
        &["7z", "a", "-bd", "-bso0", "-mhc=off", "../h.7z", "one.txt"],
    );
    let mut d = w.read("h.7z");
    let le64 = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap()) as usize;
    let (off, size) = (le64(&d[12..20]), le64(&d[20..28]));
    let header = d[32 + off..32 + off + size].to_vec();
    // kFilesInfo (0x05) with one file: the count becomes 0xFF + 8 bytes (2^36).
    let at = header
        .windows(2)
        .position(|x| x == b"\x05\x01")
        .expect("kFilesInfo");
    let mut evil = header[..=at].to_vec();
    evil.push(0xFF);
    evil.extend_from_slice(&(1u64 << 36).to_le_bytes());
    evil.extend_from_slice(&header[at + 2..]);
    d.truncate(32 + off);
    d.extend_from_slice(&evil);
    d[20..28].copy_from_slice(&(evil.len() as u64).to_le_bytes());
    d[28..32].copy_from_slice(&crc32(&evil).to_le_bytes());
    let start = crc32(&d[12..32]);
    d[8..12].copy_from_slice(&start.to_le_bytes());
    assert_unchecked(
        "7z with 2^36 files",
        &mail_with("evil.7z", &d),
        "corrupt or truncated archive",
    );
}

/// A cab that makes its decoder panic (found by fuzzing) must not hide a program attached
/// beside it: the panic makes that cab corrupt, and the rest of the message is still judged.
#[test]
fn a_decoder_panic_hides_nothing_else() {
    let cab = std::fs::read(repo().join("t/fuzz-crashes/archive-cab-folder-index.bin")).unwrap();
    let msg = format!(
        "From: mallory@example.net\nTo: bob@example.com\nSubject: documents\nDate: Mon, 23 Nov 2026 10:00:00 +0000\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: application/octet-stream; name=\"a.cab\"\nContent-Transfer-Encoding: base64\n\n{}\n--b1\nContent-Type: application/octet-stream; name=\"setup.exe\"\nContent-Transfer-Encoding: base64\n\n{}\n--b1--\n",
        base64_lines(&cab[1..]),
        base64_lines(&pe())
    );
    assert_banned("crashing cab beside an exe", msg.as_bytes(), "setup.exe");
    assert_unchecked(
        "crashing cab alone",
        &mail_with("a.cab", &cab[1..]),
        "corrupt or truncated archive",
    );
}
