//! Quarantine: a copy of mail that an admin can find, read and release.
//!
//! Contract: a quarantined message is pipescan's block followed by the original bytes,
//! unchanged. The block is written, read back by `pipescan release` and `pipescan quarantine
//! list`, and told apart from the sender's fields here and nowhere else ([`Record`]): its first
//! field is always [`RECORD`], which holds the envelope and the category in a form that
//! round-trips any address (xtext, RFC 3461) and says how many bytes of human-readable fields
//! (`X-Envelope-From`, `X-Envelope-To`, `X-Quarantine-ID`, `X-Pipescan-Category`, `X-Spam-Score`)
//! follow it; the original starts right after those. Nothing below the block is ever read as
//! ours. Files written before the record existed are still read ([`Record::parse`]).
//! A copy is written atomically: a temp file in the target directory, fsync, rename, fsync of
//! the directory; files are 0600 and directories 0700 (owned, when pipescan runs as root, by
//! the owner of the quarantine directory). Any failure is an I/O error for the caller, which
//! then keeps the message (exit 75): a discard is never a silent loss.
//! File names come from a template with amavisd's placeholders; a name ending in `.gz` is
//! gzip-compressed. `find`, `read` and `peek` serve `pipescan release` and `pipescan quarantine
//! list`; reading a copy back stops at a size cap (a planted gzip bomb is refused, not inflated).

use crate::config::delivery::Quarantine;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A 12-character, URL-safe random mail id (amavisd's %m) that starts with a letter or digit,
/// so that it is never taken for an option (`pipescan release ID`).
pub fn new_mail_id() -> io::Result<String> {
    let mut urandom = File::open("/dev/urandom")?;
    loop {
        let mut b = [0u8; 9];
        urandom.read_exact(&mut b)?;
        let id = crate::message::base64(&b)
            .replace('+', "-")
            .replace('/', "_");
        // An id is an argument of `release`: one starting with `-` would read as an option.
        // Drawn again (1 time in 32) rather than mapped, so every id stays equally likely.
        if id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Ok(id);
        }
    }
}

/// What the template placeholders stand for.
pub struct Names<'a> {
    pub mail_id: &'a str,
    pub category: &'a str,
    pub body_digest: &'a str,
    pub now: SystemTime,
}

/// Expands a file or directory template: %m mail id, %c category (virus, banned, spam, badh,
/// unchecked), %i ISO-8601 time (YYYYMMDDTHHMMSS, UTC), %P partition tag (ISO year-week,
/// e.g. 2026-48), %b body digest, %n log id (our process id), %s first character of the mail
/// id (for sharding), %% a percent sign.
pub fn expand(template: &str, n: &Names) -> String {
    let secs = n.now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut out = String::new();
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('m') => out.push_str(n.mail_id),
            Some('c') => out.push_str(n.category),
            Some('i') => out.push_str(&iso8601(secs)),
            Some('P') => out.push_str(&iso_week(secs)),
            Some('b') => out.push_str(n.body_digest),
            Some('n') => out.push_str(&std::process::id().to_string()),
            Some('s') => out.push_str(&n.mail_id[..1.min(n.mail_id.len())]),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// The first field of every quarantined copy: pipescan's record of the message.
pub const RECORD: &str = "X-Pipescan-Quarantine";

/// The record's format version (files without a record are the older format).
const VERSION: &str = "2";

/// The fields of pipescan's block: incoming copies of them are forged and removed
/// (policy::FORGEABLE), so no message can bring its own.
pub const FIELDS: &[&str] = &[
    RECORD,
    "X-Envelope-From",
    "X-Envelope-To",
    "X-Quarantine-ID",
    "X-Pipescan-Category",
];

/// What pipescan knows about a quarantined message: written at the top of the copy, read back
/// by `release` and `quarantine list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    /// The envelope sender; empty for the null sender.
    pub sender: String,
    pub recipients: Vec<String>,
    /// The category's log name (INFECTED, BANNED, SPAM, ...).
    pub category: String,
    /// What was found: virus names, banned parts, score=...
    pub reason: String,
    /// The spam score as printed in X-Spam-Score, when known.
    pub score: Option<String>,
}

/// Why a quarantined copy cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// The record goes on past the bytes given: read more.
    Truncated,
    /// Not a pipescan quarantine copy, or a damaged one.
    Bad(String),
}

impl Record {
    /// The block to write in front of the original message: the record, then the
    /// human-readable fields, with the message's line ending `eol`.
    pub fn block(&self, eol: &str) -> String {
        use crate::envelope::Angle;
        use crate::message::fold;
        let mut human = String::new();
        let rcpts: Vec<String> = self
            .recipients
            .iter()
            .map(|r| Angle(r).to_string())
            .collect();
        human.push_str(&fold(
            "X-Envelope-From",
            &Angle(&self.sender).to_string(),
            eol,
        ));
        human.push_str(&fold("X-Envelope-To", &rcpts.join(", "), eol));
        human.push_str(&fold("X-Quarantine-ID", &format!("<{}>", self.id), eol));
        let cat = if self.reason.is_empty() {
            self.category.clone()
        } else {
            format!("{} ({})", self.category, self.reason)
        };
        human.push_str(&fold("X-Pipescan-Category", &cat, eol));
        if let Some(s) = &self.score {
            human.push_str(&fold("X-Spam-Score", s, eol));
        }
        let mut words = vec![
            format!("v={VERSION}"),
            format!("id={}", xtext(&self.id)),
            format!("len={}", human.len()),
            format!("category={}", xtext(&self.category)),
            format!("from={}", xtext(&self.sender)),
        ];
        words.extend(self.recipients.iter().map(|r| format!("to={}", xtext(r))));
        if let Some(s) = &self.score {
            words.push(format!("score={}", xtext(s)));
        }
        words.push(format!("reason={}", xtext(&self.reason)));
        let mut out = fold_words(RECORD, &words, eol);
        out.push_str(&human);
        out
    }

    /// Reads the block at the start of a quarantined copy (`raw`, or its first bytes): the
    /// record and where the original message starts. Only the block pipescan wrote is read:
    /// the record, which gives the block's length; or, in a copy written before the record
    /// existed, the fixed run of fields that pipescan wrote then, each once, in its order.
    pub fn parse(raw: &[u8]) -> Result<(Record, usize), Unreadable> {
        let bad = |s: &str| Unreadable::Bad(s.to_string());
        let marker = format!("{RECORD}:");
        let Some(rest) = raw.strip_prefix(marker.as_bytes()) else {
            if marker.as_bytes().starts_with(raw) {
                return Err(Unreadable::Truncated);
            }
            return legacy(raw);
        };
        // The record field: its first line and every continuation line (ours start with TAB).
        let mut end = RECORD.len() + 1;
        loop {
            match raw[end..].iter().position(|&b| b == b'\n') {
                Some(i) => end += i + 1,
                None => return Err(Unreadable::Truncated),
            }
            match raw.get(end) {
                Some(b'\t' | b' ') => continue,
                Some(_) => break,
                None => return Err(Unreadable::Truncated),
            }
        }
        let value = &rest[..end - RECORD.len() - 1];
        let text = std::str::from_utf8(value).map_err(|_| bad("the record is not ASCII"))?;
        // Unfolded as RFC 5322 says (line breaks out, the white space after them kept), then
        // words; a word without `=` continues the value before it (a long value, folded).
        let text = text.replace(['\r', '\n'], "");
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for word in text.split_ascii_whitespace() {
            match (word.split_once('='), pairs.last_mut()) {
                (Some((key, val)), _) => pairs.push((key, val.to_string())),
                (None, Some((_, val))) => val.push_str(word),
                (None, None) => return Err(bad("the record starts with a word without '='")),
            }
        }
        let mut rec = Record {
            id: String::new(),
            sender: String::new(),
            recipients: Vec::new(),
            category: String::new(),
            reason: String::new(),
            score: None,
        };
        let (mut len, mut version, mut from) = (None, None, None);
        for (key, val) in pairs {
            let val = unxtext(&val).ok_or_else(|| bad("the record has a bad xtext value"))?;
            match key {
                "v" => version = Some(val),
                "id" => rec.id = val,
                "len" => len = val.parse::<usize>().ok(),
                "category" => rec.category = val,
                "from" => from = Some(val),
                "to" => rec.recipients.push(val),
                "score" => rec.score = Some(val),
                "reason" => rec.reason = val,
                _ => {} // a later version's addition
            }
        }
        if version.as_deref() != Some(VERSION) {
            return Err(Unreadable::Bad(format!(
                "record version {:?} is not {VERSION}",
                version.unwrap_or_default()
            )));
        }
        rec.sender = from.ok_or_else(|| bad("the record has no sender"))?;
        if !is_id(&rec.id) {
            return Err(bad("the record has no valid id"));
        }
        let len = len.ok_or_else(|| bad("the record has no length"))?;
        let start = end
            .checked_add(len)
            .ok_or_else(|| bad("the record's length is out of range"))?;
        if start > raw.len() {
            return Err(Unreadable::Truncated);
        }
        Ok((rec, start))
    }
}

/// A copy written before the record existed: X-Envelope-From, X-Envelope-To, X-Quarantine-ID,
/// X-Pipescan-Category and, if known, X-Spam-Score, exactly in that order at the very top.
/// Fields of these names further down are the sender's, never read. Recipients are split at
/// the commas between `<...>` (outside quotes); that format could not carry every address.
fn legacy(raw: &[u8]) -> Result<(Record, usize), Unreadable> {
    use crate::message::Header;
    const ORDER: [&str; 5] = [
        "X-Envelope-From",
        "X-Envelope-To",
        "X-Quarantine-ID",
        "X-Pipescan-Category",
        "X-Spam-Score",
    ];
    let h = Header::parse(raw);
    let mut rec = Record {
        id: String::new(),
        sender: String::new(),
        recipients: Vec::new(),
        category: String::new(),
        reason: String::new(),
        score: None,
    };
    let mut end = 0;
    let mut n = 0;
    for f in &h.fields {
        if n == ORDER.len() || f.start != end || !f.is(ORDER[n]) {
            break;
        }
        // A field that reaches the end of what we have may go on: read more.
        if f.end == raw.len() {
            return Err(Unreadable::Truncated);
        }
        let text = f.text(raw);
        let bare = |s: &str| {
            s.strip_prefix('<')
                .and_then(|s| s.strip_suffix('>'))
                .unwrap_or(s)
                .to_string()
        };
        match n {
            0 => rec.sender = bare(&text),
            1 => rec.recipients = split_angles(&text).into_iter().map(|r| bare(&r)).collect(),
            2 => rec.id = bare(&text),
            3 => match text.split_once(" (") {
                Some((c, r)) => {
                    rec.category = c.to_string();
                    rec.reason = r.strip_suffix(')').unwrap_or(r).to_string();
                }
                None => rec.category = text,
            },
            _ => rec.score = Some(text),
        }
        end = f.end;
        n += 1;
    }
    if n < 4 {
        if h.insert_at == 0 && end == raw.len() && n > 0 {
            return Err(Unreadable::Truncated);
        }
        return Err(Unreadable::Bad(format!(
            "no {RECORD} record at the top (not a pipescan quarantine copy?)"
        )));
    }
    if !is_id(&rec.id) {
        return Err(Unreadable::Bad(
            "X-Quarantine-ID is not a quarantine id".into(),
        ));
    }
    Ok((rec, end))
}

/// `<a>, <"b, c"@d>` → [`<a>`, `<"b, c"@d>`]: commas inside quotes or angle brackets do not
/// split.
fn split_angles(s: &str) -> Vec<String> {
    let (mut out, mut cur) = (Vec::new(), String::new());
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    for c in s.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect()
}

/// RFC 3461 xtext: printable ASCII but `+`, `=` and space as is, every other byte as `+HH`.
fn xtext(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

fn unxtext(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `NAME: k=v k=v ...` folded as RFC 5322 folds (a line break before white space) in lines of
/// at most 78 characters: between words, and inside a value too long for a line (the piece on
/// the next line has no `=`, which xtext never has: [`Record::parse`] joins it to the value).
fn fold_words(name: &str, words: &[String], eol: &str) -> String {
    let mut out = format!("{name}:");
    let mut line = out.len();
    for w in words {
        if line + 1 + w.len() > 78 && line > 1 {
            out.push_str(eol);
            out.push('\t');
            line = 1;
        } else {
            out.push(' ');
            line += 1;
        }
        let key = w.find('=').map_or(w.len(), |i| i + 1);
        for (i, c) in w.char_indices() {
            if line >= 78 && i >= key {
                out.push_str(eol);
                out.push('\t');
                line = 1;
            }
            out.push(c);
            line += 1;
        }
    }
    out.push_str(eol);
    out
}

/// Is `s` a quarantine id: 12 characters, letters, digits, `-` and `_`?
pub fn is_id(s: &str) -> bool {
    s.len() == 12
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Writes `fields` + `message` to the quarantine; returns the file's path.
pub fn store(
    q: &Quarantine,
    names: &Names,
    fields: &[u8],
    message: &mut dyn Read,
) -> io::Result<PathBuf> {
    let owner = owner_when_root(&q.directory);
    let mut dir = q.directory.clone();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    if !q.subdirectory.is_empty() {
        // One level at a time, so that each directory we make gets the owner.
        for part in Path::new(&expand(&q.subdirectory, names)).components() {
            dir.push(part);
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    if let Some((uid, gid)) = owner {
                        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
                Err(e) => return Err(e),
            }
        }
    }
    let name = expand(&q.filename, names);
    let path = dir.join(&name);
    let mut tmp = tempfile::Builder::new()
        .prefix(".incoming-")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(&dir)?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(tmp.as_file(), Some(uid), Some(gid))?;
    }
    if name.ends_with(".gz") {
        let mut gz =
            flate2::write::GzEncoder::new(tmp.as_file_mut(), flate2::Compression::default());
        gz.write_all(fields)?;
        io::copy(message, &mut gz)?;
        gz.finish()?;
    } else {
        let f = tmp.as_file_mut();
        f.write_all(fields)?;
        io::copy(message, f)?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(&path).map_err(|e| e.error)?;
    File::open(&dir)?.sync_all()?;
    Ok(path)
}

/// Run as root (a hand run, no `[general] user`), what we create in the quarantine belongs to
/// the owner of the quarantine directory (the account pipescan normally runs as), not to root:
/// a root-owned week directory would make every later run as that account fail. None when not
/// root, or when the directory is root's own (or missing).
fn owner_when_root(root: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let m = fs::metadata(root).ok()?;
    (m.uid() != 0).then_some((m.uid(), m.gid()))
}

/// Finds the quarantined file for `id` under the quarantine directory (subdirectories
/// included, three levels deep at most). Subdirectories that cannot be read are passed to
/// `skipped` and left out.
pub fn find(
    root: &Path,
    id: &str,
    skipped: &mut dyn FnMut(&Path, &io::Error),
) -> io::Result<PathBuf> {
    if !is_id(id) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{id:?} is not a quarantine id (12 characters: letters, digits, - and _)"),
        ));
    }
    let mut found = Vec::new();
    let mut unread = 0;
    walk(
        root,
        &mut |p| {
            if p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(id) && !n.starts_with(".incoming-"))
            {
                found.push(p.to_path_buf());
            }
        },
        &mut |p, e| {
            unread += 1;
            skipped(p, e);
        },
    )?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no quarantined message with id {id} under {}{}",
                root.display(),
                if unread > 0 {
                    format!(" ({unread} subdirectories could not be read)")
                } else {
                    String::new()
                }
            ),
        )),
        _ => Err(io::Error::other(format!(
            "several files match id {id}: {}",
            found
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Calls `f` for every regular file under `root`, at most three levels down. `root` that
/// cannot be read is an error; a subdirectory that cannot be read is passed to `skipped`.
pub fn walk(
    root: &Path,
    f: &mut dyn FnMut(&Path),
    skipped: &mut dyn FnMut(&Path, &io::Error),
) -> io::Result<()> {
    fn dir(
        d: &Path,
        depth: usize,
        f: &mut dyn FnMut(&Path),
        skipped: &mut dyn FnMut(&Path, &io::Error),
    ) -> io::Result<()> {
        for e in fs::read_dir(d)? {
            let e = e?;
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() && depth < 3 {
                let p = e.path();
                if let Err(err) = dir(&p, depth + 1, f, skipped) {
                    skipped(&p, &err);
                }
            } else if t.is_file() {
                f(&e.path());
            }
        }
        Ok(())
    }
    dir(root, 0, f, skipped)
}

/// Opens a quarantined file, decompressing `.gz` files.
pub fn open(path: &Path) -> io::Result<Box<dyn Read>> {
    let f = File::open(path)?;
    if path.extension().is_some_and(|e| e == "gz") {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(f)))
    } else {
        Ok(Box::new(f))
    }
}

/// A quarantined message, read back.
pub struct Held {
    pub record: Record,
    /// The original message bytes (pipescan's block removed).
    pub original: Vec<u8>,
}

fn invalid(path: &Path, why: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {why}", path.display()),
    )
}

/// Reads a whole quarantined copy: at most `cap` bytes (after decompression); beyond that it
/// is refused unread, so a small planted `.gz` cannot make us inflate gigabytes.
pub fn read(path: &Path, cap: u64) -> io::Result<Held> {
    let mut raw = Vec::new();
    let mut r = open(path)?.take(cap.saturating_add(1));
    r.read_to_end(&mut raw)
        .map_err(|e| invalid(path, format!("cannot read it: {e}")))?;
    if raw.len() as u64 > cap {
        return Err(invalid(
            path,
            format!(
                "holds more than {cap} bytes{}: refused (the limit is 4 x general.max_message_size, plus 1 MiB)",
                if path.extension().is_some_and(|e| e == "gz") {
                    " once decompressed"
                } else {
                    ""
                }
            ),
        ));
    }
    let (record, start) = match Record::parse(&raw) {
        Ok(r) => r,
        Err(Unreadable::Truncated) => {
            return Err(invalid(path, "the quarantine record is cut short"));
        }
        Err(Unreadable::Bad(why)) => return Err(invalid(path, why)),
    };
    raw.drain(..start);
    Ok(Held {
        record,
        original: raw,
    })
}

/// Reads the record and the first bytes of the original message (its header section, for
/// `quarantine list`), reading no more than it needs (1 MiB at most).
pub fn peek(path: &Path) -> io::Result<(Record, Vec<u8>)> {
    const LIMIT: u64 = 1 << 20;
    let mut r = open(path)?;
    let mut raw = Vec::new();
    let mut want: u64 = 64 * 1024;
    loop {
        let had = raw.len();
        (&mut r)
            .take(want - had as u64)
            .read_to_end(&mut raw)
            .map_err(|e| invalid(path, format!("cannot read it: {e}")))?;
        let eof = (raw.len() as u64) < want;
        match Record::parse(&raw) {
            Ok((rec, start)) => {
                raw.drain(..start);
                return Ok((rec, raw));
            }
            Err(Unreadable::Truncated) if !eof && want < LIMIT => want = LIMIT,
            Err(Unreadable::Truncated) => {
                return Err(invalid(path, "the quarantine record is cut short"));
            }
            Err(Unreadable::Bad(why)) => return Err(invalid(path, why)),
        }
    }
}

/// The mail id and the category (%m, %c) in a file name made from `template`, when it
/// matches: for a copy that cannot be read.
pub fn name_parts(template: &str, name: &str) -> Option<(String, Option<String>)> {
    let mut re = String::from("^");
    let mut it = template.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            re.push_str(&regex::escape(&c.to_string()));
            continue;
        }
        re.push_str(match it.next() {
            Some('m') => "(?P<m>[A-Za-z0-9_-]{12})",
            Some('c') => "(?P<c>[a-z]+)",
            Some('i') => "[0-9]{8}T[0-9]{6}",
            Some('P') => "[0-9]{4}-[0-9]{2}",
            Some('b') => "[0-9a-f]{16}",
            Some('n') => "[0-9]+",
            Some('s') => "[A-Za-z0-9_-]",
            Some('%') => "%",
            _ => return None,
        });
    }
    re.push('$');
    // A template with %m twice (or %c twice) is valid but cannot name groups twice.
    let re = regex::Regex::new(&re).ok()?;
    let caps = re.captures(name)?;
    Some((
        caps.name("m")?.as_str().to_string(),
        caps.name("c").map(|c| c.as_str().to_string()),
    ))
}

/// YYYYMMDDTHHMMSS in UTC.
pub fn iso8601(secs: u64) -> String {
    let (y, m, d) = civil(secs / 86400);
    let t = secs % 86400;
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// ISO 8601 week of the UTC date: "2026-48".
pub fn iso_week(secs: u64) -> String {
    let days = secs / 86400;
    let weekday = (days + 3) % 7; // 0 = Monday (1970-01-01 was a Thursday)
    let thursday = days + 3 - weekday; // the Thursday of this ISO week
    let (year, _, _) = civil(thursday);
    let jan1 = days_from_civil(year, 1, 1);
    format!("{year}-{:02}", (thursday - jan1) / 7 + 1)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's method).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_ids_never_start_with_a_dash_or_underscore() {
        for _ in 0..2000 {
            let id = new_mail_id().unwrap();
            assert_eq!(id.len(), 12, "{id}");
            assert!(id.starts_with(|c: char| c.is_ascii_alphanumeric()), "{id}");
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{id}"
            );
        }
    }
    use std::time::Duration;

    fn names(now: u64) -> Names<'static> {
        Names {
            mail_id: "AbCdEf012_-x",
            category: "virus",
            body_digest: "d1g3st",
            now: UNIX_EPOCH + Duration::from_secs(now),
        }
    }

    #[test]
    fn dates_and_weeks() {
        // 2026-11-23 12:53:00 UTC is a Monday of ISO week 48.
        let t = 1_795_438_380;
        assert_eq!(iso8601(t), "20261123T125300");
        assert_eq!(iso_week(t), "2026-48");
        assert_eq!(iso8601(0), "19700101T000000");
        // 2021-01-03 (a Sunday) belongs to ISO week 2020-53; 2024-12-30 to 2025-01.
        assert_eq!(iso_week(days_from_civil(2021, 1, 3) * 86400), "2020-53");
        assert_eq!(iso_week(days_from_civil(2024, 12, 30) * 86400), "2025-01");
        assert_eq!(civil(days_from_civil(2000, 2, 29)), (2000, 2, 29));
    }

    #[test]
    fn templates_expand() {
        let n = names(1_795_438_380);
        assert_eq!(expand("%c-%m", &n), "virus-AbCdEf012_-x");
        assert_eq!(expand("%P/%s", &n), "2026-48/A");
        assert_eq!(
            expand("%i-%b-100%%.gz", &n),
            "20261123T125300-d1g3st-100%.gz"
        );
    }

    #[test]
    fn ids_are_12_url_safe_characters() {
        let a = new_mail_id().unwrap();
        assert_eq!(a.len(), 12);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{a}"
        );
        assert_ne!(a, new_mail_id().unwrap());
        // 1 in 32 raw ids would start with '-' or '_': none of a thousand may.
        for _ in 0..1000 {
            let id = new_mail_id().unwrap();
            assert!(id.starts_with(|c: char| c.is_ascii_alphanumeric()), "{id}");
        }
    }

    #[test]
    fn store_is_private_atomic_and_round_trips_plain_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["%c-%m", "%c-%m.gz"] {
            let q = Quarantine {
                directory: dir.path().join("q"),
                filename: file.into(),
                subdirectory: "%P".into(),
                ..Quarantine::default()
            };
            let msg = b"Subject: x\r\n\r\nbody \x00\xff\r\n".to_vec();
            let p = store(
                &q,
                &names(1_795_438_380),
                b"X-Quarantine-ID: <AbCdEf012_-x>\r\n",
                &mut &msg[..],
            )
            .unwrap();
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
            assert_eq!(
                fs::metadata(p.parent().unwrap())
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777,
                0o700
            );
            let mut back = Vec::new();
            open(&p).unwrap().read_to_end(&mut back).unwrap();
            assert_eq!(
                back,
                [&b"X-Quarantine-ID: <AbCdEf012_-x>\r\n"[..], &msg].concat()
            );
            assert_eq!(
                find(&q.directory, "AbCdEf012_-x", &mut |_, _| {}).unwrap(),
                p
            );
            fs::remove_file(&p).unwrap();
        }
    }

    #[test]
    fn find_says_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let e = find(dir.path(), "../etc/passwd", &mut |_, _| {}).unwrap_err();
        assert!(e.to_string().contains("is not a quarantine id"), "{e}");
        let e = find(dir.path(), "AAAAAAAAAAAA", &mut |_, _| {}).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    fn record(recipients: &[&str]) -> Record {
        Record {
            id: "AbCdEf012_-x".into(),
            sender: "a@example.org".into(),
            recipients: recipients.iter().map(|r| r.to_string()).collect(),
            category: "INFECTED".into(),
            reason: "Eicar-Signature".into(),
            score: None,
        }
    }

    /// Addresses RFC 5321 allows (quoted local parts with commas, angle brackets, spaces,
    /// quotes, plus and equals signs; UTF-8) come back exactly, with LF and CRLF, and the
    /// original follows the block byte for byte.
    #[test]
    fn the_record_round_trips_any_address() {
        let long = format!("\"{}\"@example.org", "x ".repeat(400));
        let rcpts = [
            "\"bob, smith\"@example.org",
            "\"a<b>c d\"@example.org",
            "\"q\\\"uote, <x@y>\"@example.org",
            "plus+tag=eq@example.org",
            "j\u{f6}rg@b\u{fc}cher.example",
            "-oQ/tmp/x@example.com",
            long.as_str(),
        ];
        for eol in ["\n", "\r\n"] {
            let mut r = record(&rcpts);
            r.sender = String::new();
            r.score = Some("1000.1".into());
            r.reason = "a.exe (executable); b, c".into();
            let block = r.block(eol);
            assert!(block.is_ascii(), "{block}");
            for line in block.split(eol) {
                assert!(line.len() <= 78, "{} chars: {line}", line.len());
                assert!(!line.contains(['\r', '\n']), "{line:?}");
            }
            let original =
                format!("Subject: x{eol}X-Envelope-To: <evil@example.net>{eol}{eol}body{eol}");
            let raw = [block.as_bytes(), original.as_bytes()].concat();
            let (back, start) = Record::parse(&raw).unwrap();
            assert_eq!(back, r);
            assert_eq!(&raw[start..], original.as_bytes());
            // Any prefix that ends inside the block asks for more.
            for cut in [10, 100, block.len() - 1] {
                assert_eq!(
                    Record::parse(&raw[..cut]),
                    Err(Unreadable::Truncated),
                    "{cut}"
                );
            }
        }
    }

    #[test]
    fn the_human_fields_are_still_there() {
        let b = record(&["b@example.com", "c@example.com"]).block("\n");
        assert!(
            b.starts_with("X-Pipescan-Quarantine: v=2 id=AbCdEf012_-x len="),
            "{b}"
        );
        assert!(
            b.ends_with("X-Envelope-From: <a@example.org>\nX-Envelope-To: <b@example.com>, <c@example.com>\nX-Quarantine-ID: <AbCdEf012_-x>\nX-Pipescan-Category: INFECTED (Eicar-Signature)\n"),
            "{b}"
        );
    }

    #[test]
    fn a_damaged_record_is_refused() {
        let good = record(&["b@example.com"]).block("\n");
        for (bad, why) in [
            (good.replace("v=2", "v=9"), "version"),
            (good.replace("id=AbCdEf012_-x", "id=short"), "id"),
            (
                good.replace("from=a@example.org", "xfrom=a@example.org"),
                "sender",
            ),
            (good.replace("to=b", "to=+ZZb"), "xtext"),
        ] {
            assert_ne!(bad, good, "{why}");
            let e = Record::parse(format!("{bad}\nrest").as_bytes()).unwrap_err();
            assert!(
                matches!(&e, Unreadable::Bad(w) if w.contains(why)),
                "{why}: {e:?}"
            );
        }
        assert!(matches!(
            Record::parse(b"Subject: hi\n\nbody"),
            Err(Unreadable::Bad(_))
        ));
    }

    /// A copy written before the record existed is still read, and only pipescan's fixed run of
    /// fields at the top counts: the sender's X-Envelope-* fields below it are the message's.
    #[test]
    fn old_copies_are_read_without_trusting_the_senders_fields() {
        let original = b"X-Envelope-To: <evil@example.net>\r\nX-Spam-Flag: forged stays\r\nSubject: s\r\n\r\nbody\x00\r\n";
        let ours = b"X-Envelope-From: <a@example.org>\r\nX-Envelope-To: <b@example.com>,\r\n <\"c, d\"@example.com>\r\nX-Quarantine-ID: <AbCdEf012_-x>\r\nX-Pipescan-Category: INFECTED (EICAR)\r\n";
        let raw = [&ours[..], &original[..]].concat();
        let (r, start) = Record::parse(&raw).unwrap();
        assert_eq!(r.sender, "a@example.org");
        assert_eq!(r.recipients, ["b@example.com", "\"c, d\"@example.com"]);
        assert_eq!(
            (r.category.as_str(), r.reason.as_str()),
            ("INFECTED", "EICAR")
        );
        assert_eq!(r.id, "AbCdEf012_-x");
        assert_eq!(&raw[start..], original);
        // With a score field.
        let ours = b"X-Envelope-From: <>\nX-Envelope-To: <b@x>\nX-Quarantine-ID: <AbCdEf012_-x>\nX-Pipescan-Category: SPAM (score=9)\nX-Spam-Score: 9\n";
        let raw = [&ours[..], b"X-Spam-Score: 0\nSubject: s\n\n"].concat();
        let (r, start) = Record::parse(&raw).unwrap();
        assert_eq!((r.sender.as_str(), r.score.as_deref()), ("", Some("9")));
        assert_eq!(&raw[start..], b"X-Spam-Score: 0\nSubject: s\n\n");
        // Out of order or missing: not ours.
        assert!(Record::parse(b"X-Envelope-To: <b@x>\nX-Envelope-From: <a@x>\nX-Quarantine-ID: <AbCdEf012_-x>\nX-Pipescan-Category: V\n\n").is_err());
    }

    #[test]
    fn xtext_round_trips() {
        for s in ["", "a@b", "\"a b\"@c", "+=+", "\u{e9}\u{1F600}"] {
            let x = xtext(s);
            assert!(x.bytes().all(|b| (b'!'..=b'~').contains(&b)), "{x}");
            assert_eq!(unxtext(&x).as_deref(), Some(s));
        }
        assert_eq!(xtext("a b+c=d"), "a+20b+2Bc+3Dd");
        assert_eq!(unxtext("+4"), None);
        assert_eq!(unxtext("+FF"), None, "not UTF-8");
    }

    #[test]
    fn ids_and_categories_come_from_file_names() {
        assert_eq!(
            name_parts("%c-%m", "virus-AbCdEf012_-x"),
            Some(("AbCdEf012_-x".into(), Some("virus".into())))
        );
        assert_eq!(
            name_parts("%c-%m.gz", "badh-AbCdEf012_-x.gz"),
            Some(("AbCdEf012_-x".into(), Some("badh".into())))
        );
        assert_eq!(
            name_parts(
                "%i-%m-%b.eml",
                "20261123T125300-AbCdEf012_-x-0123456789abcdef.eml"
            ),
            Some(("AbCdEf012_-x".into(), None))
        );
        assert_eq!(name_parts("%c-%m", "notes.txt"), None);
    }

    /// A copy that decompresses to more than the cap is refused after reading just past the
    /// cap, not inflated whole.
    #[test]
    fn a_gzip_bomb_is_refused_at_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("virus-AbCdEf012_-x.gz");
        let mut gz =
            flate2::write::GzEncoder::new(File::create(&p).unwrap(), flate2::Compression::best());
        gz.write_all(record(&["b@example.com"]).block("\n").as_bytes())
            .unwrap();
        gz.write_all(b"Subject: x\n\n").unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            gz.write_all(&zeros).unwrap();
        }
        gz.finish().unwrap();
        assert!(fs::metadata(&p).unwrap().len() < 1 << 20);
        let e = read(&p, 4 << 20).err().expect("refused");
        assert!(
            e.to_string()
                .contains("holds more than 4194304 bytes once decompressed"),
            "{e}"
        );
        let held = read(&p, 100 << 20).unwrap();
        assert_eq!(held.original.len(), 12 + (64 << 20));
        // And list reads only the start.
        let (rec, head) = peek(&p).unwrap();
        assert_eq!(rec.recipients, ["b@example.com"]);
        assert!(head.len() <= 1 << 20);
    }

    #[test]
    fn a_corrupt_gzip_is_an_error_not_an_empty_record() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("virus-AbCdEf012_-x.gz");
        fs::write(&p, b"\x1f\x8b\x08\x00garbage garbage garbage").unwrap();
        assert!(peek(&p).is_err());
        assert!(read(&p, 1 << 20).is_err());
    }
}
