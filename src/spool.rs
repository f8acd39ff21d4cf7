//! Reads the whole message from stdin before anything is decided.
//!
//! Contract: a message up to `max_size` bytes is held in memory once. A larger one is written to
//! an anonymous temp file in the configured tempdir (mode 0600, unlinked at creation, so nothing
//! is left behind even on a crash) and only its first `HEAD_MAX` bytes stay in memory for header
//! edits; it is flagged oversized and is not scanned. Any read or write error is an I/O error for
//! the caller to turn into exit 75.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// How much of an oversized message stays in memory: enough for any sane header section.
const HEAD_MAX: usize = 1 << 20;

pub struct Spool {
    /// The whole message, or (when `file` is set) its first bytes. Shared (not copied) with
    /// scanner threads that may outlive the decision (a spam scan no longer needed).
    pub head: std::sync::Arc<Vec<u8>>,
    /// The whole message on disk, for messages above the size limit.
    file: Option<File>,
    /// Total size in bytes.
    pub size: u64,
}

impl Spool {
    /// Reads `input` to its end. `max_size` is the largest message kept in memory and scanned.
    pub fn read(input: &mut dyn Read, max_size: u64, tempdir: &Path) -> io::Result<Spool> {
        let mut head = Vec::with_capacity(64 * 1024);
        // Read one byte past the limit to learn whether the message is over it.
        let limit = max_size.saturating_add(1);
        input.take(limit).read_to_end(&mut head)?;
        if (head.len() as u64) <= max_size {
            let size = head.len() as u64;
            return Ok(Spool {
                head: head.into(),
                file: None,
                size,
            });
        }
        let mut file = tempfile::tempfile_in(tempdir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create a spool file in {}: {e}", tempdir.display()),
            )
        })?;
        let spool_err = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("cannot write the spool file in {}: {e}", tempdir.display()),
            )
        };
        file.write_all(&head).map_err(spool_err)?;
        let mut size = head.len() as u64;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            file.write_all(&buf[..n]).map_err(spool_err)?;
            size += n as u64;
        }
        // No fsync: the MTA keeps its own copy until we exit 0; this file only saves memory.
        head.truncate(HEAD_MAX);
        head.shrink_to_fit();
        Ok(Spool {
            head: head.into(),
            file: Some(file),
            size,
        })
    }

    /// A read that gave a message, or the failure that ends the run (with the spool when it
    /// was read but empty: the input closed early).
    pub fn nonempty(
        read: io::Result<Spool>,
    ) -> Result<Spool, (crate::outcome::Failure, Option<Spool>)> {
        use crate::outcome::Failure;
        match read {
            Err(e) => Err((
                Failure::tempfail("4.3.0", format!("reading the message: {e}")),
                None,
            )),
            Ok(s) if s.size == 0 => Err((
                Failure::tempfail("4.3.0", "empty message on stdin (input closed early?)"),
                Some(s),
            )),
            Ok(s) => Ok(s),
        }
    }

    /// True when the message was above the size limit (spooled to disk, not scanned).
    pub fn oversized(&self) -> bool {
        self.file.is_some()
    }

    /// The first `limit` bytes of the message (the cheap checks that still look at an
    /// oversized message read this much).
    pub fn prefix(&mut self, limit: u64) -> io::Result<Vec<u8>> {
        match self.file.as_mut() {
            None => Ok(self.head[..self.head.len().min(limit as usize)].to_vec()),
            Some(f) => {
                f.seek(SeekFrom::Start(0))?;
                let mut out = Vec::with_capacity(limit.min(self.size) as usize);
                f.take(limit).read_to_end(&mut out)?;
                Ok(out)
            }
        }
    }

    /// The in-memory bytes and, for a message on disk, a reader positioned just after them.
    pub fn parts(&mut self) -> io::Result<(&[u8], Option<&mut File>)> {
        let skip = self.head.len() as u64;
        let file = match self.file.as_mut() {
            None => None,
            Some(f) => {
                f.seek(SeekFrom::Start(skip))?;
                Some(f)
            }
        };
        Ok((&self.head, file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_message_stays_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::read(&mut &b"Subject: x\n\nhi\n"[..], 100, dir.path()).unwrap();
        assert!(!s.oversized());
        assert_eq!(*s.head, b"Subject: x\n\nhi\n");
        assert_eq!(s.size, 15);
    }

    #[test]
    fn exactly_at_the_limit_is_not_oversized() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::read(&mut &[b'a'; 100][..], 100, dir.path()).unwrap();
        assert!(!s.oversized());
        let s = Spool::read(&mut &[b'a'; 101][..], 100, dir.path()).unwrap();
        assert!(s.oversized());
        assert_eq!(s.size, 101);
    }

    #[test]
    fn large_message_goes_to_disk_and_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let msg: Vec<u8> = (0..3 * HEAD_MAX).map(|i| (i % 251) as u8).collect();
        let mut s = Spool::read(&mut &msg[..], 1000, dir.path()).unwrap();
        assert!(s.oversized());
        assert_eq!(s.head.len(), 1001);
        let (head, rest) = s.parts().unwrap();
        let mut back = head.to_vec();
        rest.unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, msg);
        // The spool file is anonymous: nothing is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn head_of_a_huge_message_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let msg = vec![b'x'; HEAD_MAX + 10];
        let s = Spool::read(&mut &msg[..], HEAD_MAX as u64 + 5, dir.path()).unwrap();
        assert!(s.oversized());
        assert_eq!(s.head.len(), HEAD_MAX);
    }

    #[test]
    fn unusable_tempdir_is_an_error_only_when_needed() {
        let bad = Path::new("/dev/null/nope");
        assert!(Spool::read(&mut &b"small"[..], 100, bad).is_ok());
        let e = Spool::read(&mut &[b'a'; 200][..], 100, bad).err().unwrap();
        assert!(e.to_string().contains("/dev/null/nope"), "{e}");
    }
}
