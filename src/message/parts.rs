//! The parts of a message as a person opening it would find them: every MIME leaf, attached
//! message and zip member (zips inside zips too), with its declared name and type, what its first
//! bytes say it is, where it sits and its size. Built by one walk over the raw bytes; the banned
//! rules (scan/banned) and, later, other checks read it.
//!
//! Contract: [`survey`] never fails on odd input; it returns `Err` only when a parser panicked
//! (the panic is caught, see [`crate::process::guarded`]). Structure that is abusive or too
//! deep to look through (the nesting, part, member and expansion [`Limits`], or MIME that
//! parsers would read in different ways) is reported in [`Inventory::problems`], as amavisd treats undecipherable
//! structure as suspicious.
//!
//! The MIME structure is walked here, not by `MessageParser::parse`: mail-parser 0.11.9 ends a
//! multipart at a boundary string in the middle of a line (`hello --XX--` hides every later
//! attachment, which MUAs still show), recurses without limit when it copies a base64-encoded
//! attached message (a 600 KB message of 10,000 nested messages overflows the stack, which aborts
//! the process: no `catch_unwind` can help), copies the whole buffer once per nesting level, and
//! drops deeply nested messages recursively (100,000 levels overflow the stack too). So part
//! boundaries follow RFC 2046 (a delimiter is a whole line), transfer encodings are decoded in
//! `mime` (leniently, like MUAs), every nesting level is counted against `max_depth`, and
//! mail-parser is used for what it is good at: the Content-Type / Content-Disposition
//! parameters, with RFC 2231 continuations and charsets and RFC 2047 encoded words in file names.
//!
//! Archives (`message::archive`: zip, tar, gzip/bzip2/xz, 7z, RAR, cab, ISO 9660) are listed in
//! memory; each member's first bytes are typed (`message::sniff`), and a member that holds more
//! (an archive, OLE, PDF, HTML) is read whole within the expansion budget and looked into, to
//! `max_depth`. What nobody can look into (an encrypted archive or member, a corrupt or
//! truncated archive) is reported in [`Inventory::unchecked`]: amavisd's UNCHECKED.

use crate::message::archive::{self, Caps, Format, Got, Trouble};
use crate::message::header::Header;
use crate::message::mime::{MimeInfo, Multipart, decode, decode_prefix};
use crate::message::sniff::{
    DOCUMENT_SEARCH_LIMIT, SNIFF_BYTES, is_deep, is_document, is_vba_project, refine, sniff,
};
use crate::message::text::printable;
use std::borrow::Cow;
use std::collections::HashSet;

/// How far the walk looks: past a limit, parts are left out and that is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// MIME + archive nesting; clamped to 1..=[`MAX_DEPTH_LIMIT`].
    pub max_depth: usize,
    /// MIME parts (multipart containers included) + archive members, over the whole message.
    pub max_parts: usize,
    /// Members listed per archive.
    pub max_archive_members: usize,
    /// Declared uncompressed archive sizes plus decoded attached messages, in bytes.
    pub max_expanded_size: u64,
}

/// The upper bound for `max_depth`: the walk recurses once per level, so the stack it needs is
/// bounded by this, whatever the message.
pub const MAX_DEPTH_LIMIT: usize = 100;

/// One leaf of the message as the banned rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// Decoded file name (RFC 2231 incl. continuations, RFC 2047), or the zip member name. A part
    /// with several names (Content-Type `name` and Content-Disposition `filename` differ, a zip
    /// member's local header disagrees with the central directory) is listed once per name, all
    /// with the same `path`.
    pub name: Option<String>,
    /// Lowercased `type/subtype` without parameters (RFC 2045 default when absent; zip members: "").
    pub declared_type: String,
    /// From the content: one of the kinds `message::sniff` lists ("exe", "elf", "office-macro",
    /// "pdf-js", "zip", "iso"…), or None.
    pub sniffed: Option<&'static str>,
    /// Where it is, for reasons: "part 3 > message/rfc822 > part 2 > invoice.zip > a/b.exe".
    /// Names in paths are made printable (control and bidi characters escaped).
    pub path: String,
    /// How many containers (multiparts, attached messages, archives) enclose it.
    pub depth: usize,
    /// Decoded size in bytes; for zip members the declared uncompressed size.
    pub size: u64,
}

/// What [`survey`] found: the parts, and the ban reasons the structure itself gave (a limit
/// exceeded, MIME that parsers would read differently).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    pub parts: Vec<Part>,
    pub problems: Vec<String>,
    /// What could not be looked into: encrypted archives and members, encrypted PDF, S/MIME
    /// and PGP parts, corrupt or truncated archives (amavisd's UNCHECKED, not CLEAN). The
    /// banned-files check keeps the encrypted kinds its configuration names.
    pub unchecked: Vec<Unchecked>,
}

/// One thing nobody could look into.
#[derive(Debug, Clone, PartialEq)]
pub struct Unchecked {
    /// What kind of encryption hid it; None: corrupt or truncated, which always counts.
    pub encrypted: Option<Encrypted>,
    pub why: String,
}

/// The kinds of encrypted content, as `[banned] unchecked_encrypted` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encrypted {
    /// Password-protected zip, 7z and RAR archives (members or names).
    Archive,
    /// PDF with an /Encrypt dictionary (a password to open, or only to print or copy).
    Pdf,
    /// S/MIME enveloped data (application/pkcs7-mime).
    Smime,
    /// PGP/MIME (multipart/encrypted) and inline PGP messages.
    Pgp,
}

/// Lists every part of `msg` within `limits`, with the ban reasons the structure itself gives
/// (a limit exceeded, MIME that parsers would read differently). `Err` only when a parser
/// panicked.
pub fn survey(msg: &[u8], cfg: &Limits) -> Result<Inventory, String> {
    guarded(|| {
        let mut walk = Walk {
            cfg,
            max_depth: cfg.max_depth.clamp(1, MAX_DEPTH_LIMIT),
            inv: Inventory::default(),
            seen: 0,
            expanded: 0,
            stopped: false,
            flagged: HashSet::new(),
        };
        walk.entity(msg, Loc::Message(""), 0, "text/plain");
        walk.inv
    })
}

/// A parser panic as an error (see [`crate::process::guarded`]).
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    crate::process::guarded(f)
        .map_err(|what| format!("MIME parser panicked: {}", printable(&what, 200)))
}

/// Where an entity (a header section and its body) sits.
#[derive(Clone, Copy)]
enum Loc<'p> {
    /// A whole message: the top one (prefix "") or an attached one ("part 3 > message/rfc822").
    Message(&'p str),
    /// A body part of a multipart, at this path.
    Part(&'p str),
}

fn join(base: &str, element: &str) -> String {
    if base.is_empty() {
        element.to_string()
    } else {
        format!("{base} > {element}")
    }
}

/// Where a leaf or member sits: its path, whether that path already ends in its name (archive
/// members) or not (MIME parts: "part 2"), and its depth.
#[derive(Clone, Copy)]
struct Where<'p> {
    here: &'p str,
    named: bool,
    depth: usize,
}

struct Walk<'c> {
    cfg: &'c Limits,
    max_depth: usize,
    inv: Inventory,
    /// MIME entities and archive members looked at so far.
    seen: usize,
    /// Declared uncompressed archive sizes plus decoded attached messages, in bytes.
    expanded: u64,
    /// max_parts was exceeded: look at nothing more.
    stopped: bool,
    /// Limits already reported (each is reported once).
    flagged: HashSet<&'static str>,
}

impl Walk<'_> {
    fn problem(&mut self, once: &'static str, text: String) {
        if self.flagged.insert(once) {
            self.inv.problems.push(text);
        }
    }

    /// Counts one more entity or member; false (and the walk stops) past max_parts.
    fn count(&mut self) -> bool {
        if self.stopped {
            return false;
        }
        self.seen += 1;
        if self.seen > self.cfg.max_parts {
            self.stopped = true;
            let max = self.cfg.max_parts;
            self.problem(
                "parts",
                format!("too many parts: over {max} MIME parts and archive members"),
            );
            return false;
        }
        true
    }

    /// Adds to the expansion budget; false once it is exceeded.
    fn expand_by(&mut self, bytes: u64, what: &str) -> bool {
        self.expanded = self.expanded.saturating_add(bytes);
        if self.expanded > self.cfg.max_expanded_size {
            let (total, max) = (size(self.expanded), size(self.cfg.max_expanded_size));
            self.problem(
                "expanded",
                format!(
                    "zip bomb guard: archives and encoded attached messages expand to {total}, over max_expanded_size ({max}), at {what}"
                ),
            );
            return false;
        }
        true
    }

    fn too_deep(&mut self, archive: bool, at: &str) {
        let max = self.max_depth;
        if archive {
            self.problem(
                "depth",
                format!("too deeply nested archives at {at} (over {max} levels)"),
            );
        } else {
            self.problem(
                "depth",
                format!("too deeply nested MIME (over {max} levels)"),
            );
        }
    }

    /// One MIME entity: its header section and body. Recursion is bounded by max_depth (each
    /// call is one level deeper), whatever the input.
    fn entity(&mut self, bytes: &[u8], loc: Loc<'_>, depth: usize, default_type: &str) {
        if !self.count() {
            return;
        }
        let header = Header::parse(bytes);
        let body = bytes.get(header.body_start..).unwrap_or_default();
        let here = match loc {
            Loc::Message(prefix) => join(prefix, "part 1"),
            Loc::Part(path) => path.to_string(),
        };
        let info = MimeInfo::read(bytes, &header, default_type);
        if let Some(what) = info.conflict {
            let text = format!("ambiguous MIME structure: conflicting {what} fields ({here})");
            self.inv.problems.push(text);
        }
        if info.declared == "multipart/encrypted" {
            self.unchecked(
                Some(Encrypted::Pgp),
                format!("encrypted part, multipart/encrypted ({here})"),
            );
        }
        if info.declared.starts_with("multipart/")
            && let Some(boundary) = info.boundary.as_deref()
            && let Some(parts) = Multipart::new(body, boundary)
        {
            if depth + 1 > self.max_depth {
                self.too_deep(false, &here);
                return;
            }
            let base = match loc {
                Loc::Message(prefix) => prefix,
                Loc::Part(path) => path,
            };
            let child_type = if info.declared == "multipart/digest" {
                "message/rfc822"
            } else {
                "text/plain"
            };
            for (k, child) in parts.enumerate() {
                if self.stopped {
                    break;
                }
                let path = join(base, &format!("part {}", k + 1));
                self.entity(child, Loc::Part(&path), depth + 1, child_type);
            }
            return;
        }
        // Decoded in full only what is opened (attached messages, archives, documents searched
        // for macros or scripts); other leaves are judged by their first bytes and their size.
        let (head, size) = decode_prefix(body, info.encoding, SNIFF_BYTES);
        let kind = sniff(&head);
        self.encrypted_part(&info, &head, &here);
        let rfc822 = matches!(info.declared.as_str(), "message/rfc822" | "message/global");
        // Documents are searched whole only up to a size: the memory a message without
        // archives needs stays its size plus a few MiB (BENCHMARKS.md, part e).
        let deep =
            kind.is_some_and(|k| is_deep(k) && (!is_document(k) || size <= DOCUMENT_SEARCH_LIMIT));
        let opened = rfc822 || deep || info.names.iter().any(|n| has_zip_extension(n));
        if !opened {
            self.push(&info.names, &info.declared, kind, &here, depth, size);
            return;
        }
        let data = match head {
            Cow::Owned(_) if size > head.len() as u64 => decode(body, info.encoding),
            _ => head,
        };
        if !rfc822 {
            let at = Where {
                here: &here,
                named: false,
                depth,
            };
            self.content(
                &info.names,
                &info.declared,
                Some(&data),
                Got::Whole,
                at,
                size,
            );
            return;
        }
        self.push(&info.names, &info.declared, kind, &here, depth, size);
        if depth + 1 > self.max_depth {
            self.too_deep(false, &here);
            return;
        }
        if matches!(data, Cow::Owned(_)) && !self.expand_by(data.len() as u64, &here) {
            return;
        }
        let prefix = join(&here, &info.declared);
        self.entity(&data, Loc::Message(&prefix), depth + 1, "text/plain");
    }

    /// A leaf's or member's content (`got` says how much of it `data` is): typed, listed as
    /// parts, and opened when it holds more (an archive's members are listed one level down).
    fn content(
        &mut self,
        names: &[String],
        declared: &str,
        data: Option<&[u8]>,
        got: Got,
        at: Where<'_>,
        size: u64,
    ) {
        let (here, depth) = (at.here, at.depth);
        let head = data.and_then(sniff);
        let whole = data.filter(|_| got == Got::Whole);
        let kind = match (head, whole) {
            (Some(k), Some(w)) => Some(refine(k, w)),
            (k, _) => k,
        };
        if let (Some("pdf" | "pdf-js"), Some(w)) = (kind, whole)
            && crate::message::sniff::is_encrypted_pdf(w)
        {
            self.unchecked(Some(Encrypted::Pdf), format!("encrypted PDF ({here})"));
        }
        let first = self.inv.parts.len();
        self.push(names, declared, kind, here, depth, size);
        let own = first..self.inv.parts.len();
        let sniffed = kind.and_then(Format::of);
        let Some(format) = sniffed.or_else(|| {
            names
                .iter()
                .any(|n| has_zip_extension(n))
                .then_some(Format::Zip)
        }) else {
            return;
        };
        let label = match names.first() {
            Some(n) => printable(n, 120),
            None => format!("[unnamed {}]", format.name()),
        };
        let at = if at.named {
            here.to_string()
        } else {
            join(here, &label)
        };
        match (whole, got) {
            (Some(w), _) => {
                if self.archive(w, format, &at, depth, sniffed.is_some()) {
                    for p in &mut self.inv.parts[own] {
                        p.sniffed = Some("office-macro");
                    }
                }
            }
            (None, Got::Broken) if sniffed.is_some() => {
                self.unchecked(
                    None,
                    format!(
                        "corrupt {} archive {at}: its data does not decompress",
                        format.name()
                    ),
                );
            }
            (None, _) if sniffed.is_some() => {
                let max = self::size(self.cfg.max_expanded_size);
                self.problem(
                    "expanded",
                    format!(
                        "zip bomb guard: {at} is too large to open within max_expanded_size ({max})"
                    ),
                );
            }
            (None, _) => {}
        }
    }

    fn unchecked(&mut self, encrypted: Option<Encrypted>, why: String) {
        if !self.inv.unchecked.iter().any(|u| u.why == why) {
            self.inv.unchecked.push(Unchecked { encrypted, why });
        }
    }

    /// Encrypted content a MIME part shows without being opened: S/MIME enveloped data, PGP.
    fn encrypted_part(&mut self, info: &MimeInfo, head: &[u8], here: &str) {
        const ENVELOPED_OID: &[u8] = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03";
        let pkcs7 = matches!(
            info.declared.as_str(),
            "application/pkcs7-mime" | "application/x-pkcs7-mime"
        );
        let enveloped = match info.smime_type.as_deref() {
            Some(t) => t.contains("enveloped"),
            None => head
                .windows(ENVELOPED_OID.len())
                .take(64)
                .any(|w| w == ENVELOPED_OID),
        };
        if pkcs7 && enveloped {
            self.unchecked(
                Some(Encrypted::Smime),
                format!("S/MIME encrypted part ({here})"),
            );
        } else if info.declared == "application/pgp-encrypted"
            || head.starts_with(b"-----BEGIN PGP MESSAGE-----")
        {
            self.unchecked(Some(Encrypted::Pgp), format!("PGP encrypted part ({here})"));
        }
    }

    /// Lists an archive's members under `prefix` (the path ending in the archive's name);
    /// `depth` is the archive's own depth. `sniffed`: its content says it is one (a corrupt one
    /// is then UNCHECKED; a file merely named .zip that is not one is just a file). True when
    /// it is an OOXML document with a VBA project.
    fn archive(
        &mut self,
        data: &[u8],
        format: Format,
        prefix: &str,
        depth: usize,
        sniffed: bool,
    ) -> bool {
        if depth + 1 > self.max_depth {
            self.too_deep(true, prefix);
            return false;
        }
        let max = self.cfg.max_archive_members;
        let mut caps = Caps {
            max_members: max,
            budget: self.cfg.max_expanded_size.saturating_sub(self.expanded),
        };
        let listing = archive::list(format, data, &mut caps);
        match listing.trouble {
            Some(Trouble::Encrypted(why)) => self.unchecked(
                Some(Encrypted::Archive),
                format!("encrypted archive {prefix} ({why})"),
            ),
            Some(Trouble::Corrupt(why)) if sniffed => self.unchecked(
                None,
                format!("corrupt or truncated archive {prefix} ({why})"),
            ),
            _ => {}
        }
        if listing.too_many {
            self.inv.problems.push(format!(
                "too many members in archive {prefix} (over max_archive_members, {max})"
            ));
        }
        let mut vba = false;
        let mut encrypted = Vec::new();
        for member in listing.entries {
            if !self.count() {
                break;
            }
            let within = self.expand_by(member.size, prefix);
            if member.is_dir {
                continue;
            }
            let names = if member.names.is_empty() {
                vec![unpacked_name(prefix)]
            } else {
                member.names
            };
            let path = join(prefix, &printable(&names[0], 120));
            vba |= names.iter().any(|n| is_vba_project(n));
            if member.encrypted {
                encrypted.push(printable(&names[0], 120));
            } else if member.got == Got::Broken {
                // Its data does not decompress: what it holds cannot be said.
                self.unchecked(
                    None,
                    format!("corrupt member {path} (it does not decompress)"),
                );
            }
            let data = member.content.as_deref().filter(|_| within);
            let got = if within { member.got } else { Got::Nothing };
            let at = Where {
                here: &path,
                named: true,
                depth: depth + 1,
            };
            self.content(&names, "", data, got, at, member.size);
            if self.stopped {
                break;
            }
        }
        if !encrypted.is_empty() {
            let n = encrypted.len();
            let shown = encrypted.into_iter().take(3).collect::<Vec<_>>().join(", ");
            let more = if n > 3 {
                format!(" and {} more", n - 3)
            } else {
                String::new()
            };
            self.unchecked(
                Some(Encrypted::Archive),
                format!("encrypted member {shown}{more} in archive {prefix}"),
            );
        }
        vba
    }

    fn push(
        &mut self,
        names: &[String],
        declared: &str,
        sniffed: Option<&'static str>,
        path: &str,
        depth: usize,
        size: u64,
    ) {
        let part = |name: Option<String>| Part {
            name,
            declared_type: declared.to_string(),
            sniffed,
            path: path.to_string(),
            depth,
            size,
        };
        if names.is_empty() {
            self.inv.parts.push(part(None));
        }
        for n in names {
            self.inv.parts.push(part(Some(n.clone())));
        }
    }
}

fn has_zip_extension(name: &str) -> bool {
    let n = name.trim_end_matches(['.', ' ', '\t']);
    n.len() >= 4 && n.is_char_boundary(n.len() - 4) && n[n.len() - 4..].eq_ignore_ascii_case(".zip")
}

/// The name gunzip would give a gzip/bzip2/xz member that stores none: "a.tar.gz" → "a.tar".
fn unpacked_name(prefix: &str) -> String {
    let outer = prefix.rsplit(" > ").next().unwrap_or(prefix);
    let lower = outer.to_ascii_lowercase();
    for (ext, to) in [
        (".tgz", ".tar"),
        (".tbz2", ".tar"),
        (".tbz", ".tar"),
        (".txz", ".tar"),
        (".gz", ""),
        (".bz2", ""),
        (".xz", ""),
    ] {
        if lower.ends_with(ext) && outer.is_char_boundary(outer.len() - ext.len()) {
            return format!("{}{to}", &outer[..outer.len() - ext.len()]);
        }
    }
    format!("{outer} (unpacked)")
}

fn size(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= 1024 * MIB {
        format!("{:.1} GiB", n as f64 / (1024 * MIB) as f64)
    } else if n >= MIB {
        format!("{:.1} MiB", n as f64 / MIB as f64)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::in_guarded_parse;

    #[test]
    fn a_parser_panic_is_an_error_not_a_crash() {
        assert!(!in_guarded_parse());
        let r = guarded(|| {
            assert!(in_guarded_parse());
            panic!("boom")
        });
        assert_eq!(r, Err::<(), _>("MIME parser panicked: boom".into()));
        assert!(!in_guarded_parse());
    }
}
