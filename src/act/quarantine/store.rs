//! Writing quarantined copies (to the directory, and to a mailbox through the courier) and
//! finding and reading them back for `pipescan release` and `pipescan quarantine list`.
//!
//! Contract: a copy is the block of [`crate::act::quarantine::record`] followed by the original
//! bytes, unchanged (the mailbox copy: less the fields a run removes as forged). A file is
//! written atomically: a temp file in the target directory, fsync, rename, fsync of the
//! directory; files are 0600 and directories 0700 (owned, when pipescan
//! runs as root, by the owner of the quarantine directory). Any failure is an I/O error for the
//! caller, which then keeps the message (exit 75): a discard is never a silent loss.
//! File names come from a template with amavisd's placeholders; a name ending in `.gz` is
//! gzip-compressed. `find`, `read` and `peek` serve `pipescan release` and `pipescan quarantine
//! list`; reading a copy back stops at a size cap (a planted gzip bomb is refused, not inflated).
//! `validate` (the templates, at config time) is here until the schema moves to src/config/.

use crate::act::courier::traits::Courier;
use crate::act::quarantine::id::is_id;
use crate::act::quarantine::record::{Record, Unreadable};
use crate::config::delivery::Quarantine;
use crate::message::edit::Rewrite;
use crate::outcome::Failure;
use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
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

/// Sends `fields` + the message (`head`, then `rest` when spooled to disk) to the quarantine
/// mailbox `address` through `courier`, from the null sender, less what `rewrite` removes: the
/// copy goes to a mailbox, where forged fields (our authserv-id's Authentication-Results,
/// X-Spam-*) would be believed, so it loses them as a release does; the file keeps the message
/// as it arrived. A copy, not a delivery of the message: a retry after a later failure only
/// duplicates it ([`Courier::send`]).
pub fn to_mailbox(
    courier: &dyn Courier,
    address: &str,
    fields: &[u8],
    rewrite: &Rewrite,
    head: &[u8],
    mut rest: Option<&mut File>,
) -> Result<(), Failure> {
    courier.send("", &[address.to_string()], &mut |w| {
        if let Some(f) = rest.as_deref_mut() {
            // After the in-memory part, also when a courier feeds the copy twice.
            f.seek(io::SeekFrom::Start(head.len() as u64))?;
        }
        w.write_all(fields)?;
        let n = rewrite.write_to(w, head, rest.as_deref_mut().map(|f| f as &mut dyn Read))?;
        Ok(fields.len() as u64 + n)
    })
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

    use crate::act::quarantine::record::sample as record;

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
