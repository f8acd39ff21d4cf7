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
//! Zip archives are listed from their central directory (names, sizes, method) without
//! decompressing; a stored member's bytes are sniffed, and a stored member that is itself a zip is
//! listed too. Members stored deflated are judged by name and declared size only.

use crate::message::archive;
use crate::message::header::Header;
use crate::message::mime::{MimeInfo, Multipart, decode, decode_prefix};
use crate::message::sniff::{SNIFF_BYTES, sniff};
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
    /// From the first bytes: "exe" (MZ), "elf", "zip", "pdf", "rar", "7z", "gzip", "ole"
    /// (doc/xls/msi), "script" (#!), or None.
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
        // Decoded in full only what is opened (attached messages, zips); other leaves are
        // judged by their first bytes and their decoded size.
        let (head, size) = decode_prefix(body, info.encoding, SNIFF_BYTES);
        let sniffed = sniff(&head);
        self.push(
            &info.names,
            &info.declared,
            sniffed,
            &here,
            depth,
            size as usize,
        );
        let opened = matches!(info.declared.as_str(), "message/rfc822" | "message/global")
            || sniffed == Some("zip")
            || info.names.iter().any(|n| has_zip_extension(n));
        if !opened {
            return;
        }
        let data = match head {
            Cow::Owned(_) if size > head.len() as u64 => decode(body, info.encoding),
            _ => head,
        };
        if matches!(info.declared.as_str(), "message/rfc822" | "message/global") {
            if depth + 1 > self.max_depth {
                self.too_deep(false, &here);
                return;
            }
            if matches!(data, Cow::Owned(_)) && !self.expand_by(data.len() as u64, &here) {
                return;
            }
            let prefix = join(&here, &info.declared);
            self.entity(&data, Loc::Message(&prefix), depth + 1, "text/plain");
        } else if sniffed == Some("zip") || info.names.iter().any(|n| has_zip_extension(n)) {
            let label = match info.names.first() {
                Some(n) => printable(n, 120),
                None => "[unnamed zip]".into(),
            };
            self.archive(&data, &join(&here, &label), depth);
        }
    }

    /// Lists a zip's members under `prefix` (the path ending in the archive's name); `depth` is
    /// the archive's own depth.
    fn archive(&mut self, data: &[u8], prefix: &str, depth: usize) {
        let Some(dir) = archive::Directory::find(data) else {
            return;
        };
        if depth + 1 > self.max_depth {
            self.too_deep(true, prefix);
            return;
        }
        let max = self.cfg.max_archive_members;
        for (i, member) in dir.members(data).enumerate() {
            if i == max {
                self.inv.problems.push(format!(
                    "too many members in archive {prefix} (over max_archive_members, {max})"
                ));
                break;
            }
            if !self.count() {
                break;
            }
            let within = self.expand_by(member.size, prefix);
            if member.is_dir {
                continue;
            }
            let Some(first) = member.names.first() else {
                continue;
            };
            let path = join(prefix, &printable(first, 120));
            let sniffed = member.stored.and_then(sniff);
            for name in &member.names {
                self.inv.parts.push(Part {
                    name: Some(name.clone()),
                    declared_type: String::new(),
                    sniffed,
                    path: path.clone(),
                    depth: depth + 1,
                    size: member.size,
                });
            }
            if within
                && let Some(stored) = member.stored
                && sniffed == Some("zip")
            {
                self.archive(stored, &path, depth + 1);
            }
            if self.stopped {
                break;
            }
        }
    }

    fn push(
        &mut self,
        names: &[String],
        declared: &str,
        sniffed: Option<&'static str>,
        path: &str,
        depth: usize,
        size: usize,
    ) {
        let part = |name: Option<String>| Part {
            name,
            declared_type: declared.to_string(),
            sniffed,
            path: path.to_string(),
            depth,
            size: size as u64,
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
