//! Quarantine: a copy of blocked mail that an admin can find, read and release.
//!
//! Contract: a quarantined message is the original bytes with `X-Envelope-From`,
//! `X-Envelope-To`, `X-Quarantine-ID` and `X-Pipescan-Category` prepended (and `X-Spam-Score`
//! when known). It is written atomically: a temp file in the target directory, fsync, rename,
//! fsync of the directory; files are 0600 and directories 0700. Any failure is an I/O error for
//! the caller, which then keeps the message (exit 75): a discard is never a silent loss.
//! File names come from a template with amavisd's placeholders; a name ending in `.gz` is
//! gzip-compressed. `find` and `read` serve `pipescan release` and `pipescan quarantine list`.

use crate::config::Quarantine;
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

/// Checks templates at config time: the file name must contain %m (release finds files by
/// id) and must not contain a slash; placeholders must be known.
pub fn validate(q: &Quarantine) -> Result<(), (String, String)> {
    let known = |t: &str| {
        let mut it = t.chars();
        while let Some(c) = it.next() {
            if c == '%'
                && !matches!(
                    it.next(),
                    Some('m' | 'c' | 'i' | 'P' | 'b' | 'n' | 's' | '%')
                )
            {
                return false;
            }
        }
        true
    };
    if !q.filename.contains("%m") || q.filename.contains('/') {
        return Err((
            "quarantine.filename".into(),
            "must contain %m (the mail id) and no slash".into(),
        ));
    }
    if !known(&q.filename) {
        return Err(("quarantine.filename".into(), "unknown % placeholder".into()));
    }
    if !known(&q.subdirectory) || q.subdirectory.contains("..") || q.subdirectory.starts_with('/') {
        return Err((
            "quarantine.subdirectory".into(),
            "must be relative to the directory: no leading '/', no '..', known placeholders only"
                .into(),
        ));
    }
    Ok(())
}

/// Writes `fields` + `message` to the quarantine; returns the file's path.
pub fn store(
    q: &Quarantine,
    names: &Names,
    fields: &[u8],
    message: &mut dyn Read,
) -> io::Result<PathBuf> {
    let mut dir = q.directory.clone();
    if !q.subdirectory.is_empty() {
        dir.push(expand(&q.subdirectory, names));
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let name = expand(&q.filename, names);
    let path = dir.join(&name);
    let mut tmp = tempfile::Builder::new()
        .prefix(".incoming-")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(&dir)?;
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

/// Finds the quarantined file for `id` under the quarantine directory (subdirectories
/// included, three levels deep at most).
pub fn find(root: &Path, id: &str) -> io::Result<PathBuf> {
    if id.len() != 12
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{id:?} is not a quarantine id (12 characters: letters, digits, - and _)"),
        ));
    }
    let mut found = Vec::new();
    walk(root, 0, &mut |p| {
        if p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains(id) && !n.starts_with(".incoming-"))
        {
            found.push(p.to_path_buf());
        }
    })?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no quarantined message with id {id} under {}",
                root.display()
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

/// Calls `f` for every regular file under `dir`, at most three levels down.
pub fn walk(dir: &Path, depth: usize, f: &mut dyn FnMut(&Path)) -> io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() && depth < 3 {
            walk(&e.path(), depth + 1, f)?;
        } else if t.is_file() {
            f(&e.path());
        }
    }
    Ok(())
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
            assert_eq!(find(&q.directory, "AbCdEf012_-x").unwrap(), p);
            fs::remove_file(&p).unwrap();
        }
    }

    #[test]
    fn find_says_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let e = find(dir.path(), "../etc/passwd").unwrap_err();
        assert!(e.to_string().contains("is not a quarantine id"), "{e}");
        let e = find(dir.path(), "AAAAAAAAAAAA").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn templates_are_validated() {
        let mut q = Quarantine::default();
        assert!(validate(&q).is_ok());
        q.filename = "virus".into();
        assert!(validate(&q).is_err());
        q.filename = "a/%m".into();
        assert!(validate(&q).is_err());
        q.filename = "%m-%z".into();
        assert!(validate(&q).is_err());
        q.filename = "%m".into();
        q.subdirectory = "/etc".into();
        assert!(validate(&q).is_err());
    }
}
