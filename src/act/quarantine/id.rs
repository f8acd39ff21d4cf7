//! Quarantine ids (amavisd's mail_id): random, URL-safe, never taken for an option. A leaf
//! that imports nothing of ours but the base64 encoder, so that the log (every line names the
//! run's mail_id) can use it without a circle.

use std::fs::File;
use std::io::{self, Read};

/// A 12-character, URL-safe random mail id (amavisd's %m) that starts with a letter or digit,
/// so that it is never taken for an option (`pipescan release ID`).
pub fn new_mail_id() -> io::Result<String> {
    let mut urandom = File::open("/dev/urandom")?;
    loop {
        let mut b = [0u8; 9];
        urandom.read_exact(&mut b)?;
        let id = crate::message::text::base64(&b)
            .replace('+', "-")
            .replace('/', "_");
        // An id is an argument of `release`: one starting with `-` would read as an option.
        // Drawn again (1 time in 32) rather than mapped, so every id stays equally likely.
        if id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Ok(id);
        }
    }
}

/// Is `s` a quarantine id: 12 characters, letters, digits, `-` and `_`?
pub fn is_id(s: &str) -> bool {
    s.len() == 12
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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
}
