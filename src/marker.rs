//! The "already scanned" loop marker: an `X-Pipescan-Marker` field that lets a pipescan that sees
//! a message again (a second MTA instance, the next host of a relay chain sharing the key, a
//! transport that filters twice) pass it on unscanned and unchanged.
//!
//! Contract: a marker is trusted only when its HMAC-SHA256, under the site's secret key, covers
//! this very body (every byte after the header), the host that scanned it and a time no older
//! than `max_age` (and not in the future beyond a small clock skew). Anything else (no key
//! configured, a bad or stale MAC, a changed body, a malformed value) means "not scanned": the
//! message is scanned as usual and the untrusted field is removed as forged. A forger without
//! the key cannot make a marker; one who copies a real marker gets only the body we scanned
//! through, within `max_age` (see SECURITY.md).
//!
//! Value: `v1 HOST UNIXTIME HEXMAC`, MAC over `pipescan-marker v1\n HOST \n UNIXTIME \n
//! SHA256(body)`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The field name (also in policy::FORGEABLE: an untrusted copy is removed).
pub const FIELD: &str = "X-Pipescan-Marker";

/// Clocks of hosts sharing a key may differ this much.
const SKEW: u64 = 300;

/// The shortest key accepted: 16 bytes (128 bits).
pub const MIN_KEY_LEN: usize = 16;

/// A loaded secret.
pub struct Key(Vec<u8>);

impl Key {
    pub fn new(bytes: &[u8]) -> Result<Key, String> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(format!(
                "the key must be at least {MIN_KEY_LEN} bytes (it has {}); e.g. `head -c 32 /dev/urandom | base64`",
                bytes.len()
            ));
        }
        Ok(Key(bytes.to_vec()))
    }

    fn mac(&self, host: &str, time: u64, body: &[u8]) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC accepts keys of any length");
        m.update(b"pipescan-marker v1\n");
        m.update(host.as_bytes());
        m.update(format!("\n{time}\n").as_bytes());
        m.update(&Sha256::digest(body));
        m
    }
}

/// Reads the key: `key` itself, or the first line of `key_file` (trimmed). `Ok(None)`: no key
/// configured, no markers.
pub fn load(key: &str, key_file: &std::path::Path) -> Result<Option<Key>, String> {
    if !key.is_empty() {
        return Key::new(key.as_bytes()).map(Some);
    }
    if key_file.as_os_str().is_empty() {
        return Ok(None);
    }
    let text = std::fs::read(key_file).map_err(|e| format!("{}: {e}", key_file.display()))?;
    let line = text.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = line.trim_ascii();
    Key::new(line)
        .map(Some)
        .map_err(|e| format!("{}: {e}", key_file.display()))
}

/// The field value for a message with `body`, scanned by `host` at `now` (Unix seconds).
pub fn make(key: &Key, host: &str, now: u64, body: &[u8]) -> String {
    let tag = key.mac(host, now, body).finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("v1 {host} {now} {hex}")
}

/// The scanning host when `value` is a trusted marker for `body`, else why not.
pub fn verify(
    key: &Key,
    value: &str,
    body: &[u8],
    now: u64,
    max_age: Duration,
) -> Result<String, &'static str> {
    let mut it = value.split_ascii_whitespace();
    let (Some("v1"), Some(host), Some(time), Some(hex), None) =
        (it.next(), it.next(), it.next(), it.next(), it.next())
    else {
        return Err("malformed");
    };
    let time: u64 = time.parse().map_err(|_| "malformed time")?;
    if time > now.saturating_add(SKEW) {
        return Err("from the future");
    }
    if now.saturating_sub(time) > max_age.as_secs() {
        return Err("too old");
    }
    let tag = decode_hex(hex).ok_or("malformed MAC")?;
    key.mac(host, time, body)
        .verify_slice(&tag)
        .map_err(|_| "bad MAC (forged, another key, or the body changed)")?;
    Ok(host.to_string())
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86400);

    #[test]
    fn a_marker_verifies_only_for_its_body_key_host_and_time() {
        let key = Key::new(b"0123456789abcdef0123").unwrap();
        let body = b"hello\r\nworld\r\n";
        let v = make(&key, "mx1.example", 1_800_000_000, body);
        assert!(v.starts_with("v1 mx1.example 1800000000 "), "{v}");
        assert_eq!(v.len(), "v1 mx1.example 1800000000 ".len() + 64);
        assert_eq!(
            verify(&key, &v, body, 1_800_000_100, DAY),
            Ok("mx1.example".to_string())
        );
        // Folded by a relay: still the same value to us.
        let folded = v.replacen(' ', "\r\n\t", 1);
        assert!(verify(&key, &folded, body, 1_800_000_100, DAY).is_ok());

        let bad = |v: &str, body: &[u8], now: u64| verify(&key, v, body, now, DAY).unwrap_err();
        assert_eq!(
            bad(&v, b"hello\r\nworld!\r\n", 1_800_000_100),
            "bad MAC (forged, another key, or the body changed)"
        );
        assert_eq!(bad(&v, body, 1_800_000_000 + 86_401), "too old");
        assert_eq!(bad(&v, body, 1_800_000_000 - 301), "from the future");
        let other = Key::new(b"another key of 16+ bytes").unwrap();
        assert!(verify(&other, &v, body, 1_800_000_100, DAY).is_err());
        // The host and the time are covered by the MAC.
        let moved = v.replace("mx1.example", "mx2.example");
        assert!(bad(&moved, body, 1_800_000_100).starts_with("bad MAC"));
        let later = v.replace("1800000000", "1800000050");
        assert!(bad(&later, body, 1_800_000_100).starts_with("bad MAC"));
        for junk in [
            "",
            "v1",
            "v2 h 1 00",
            "v1 h x 00",
            "v1 h 1 zz",
            &format!("{v} extra"),
        ] {
            assert!(
                verify(&key, junk, body, 1_800_000_100, DAY).is_err(),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn keys_are_long_enough_and_files_give_their_first_line() {
        assert!(Key::new(b"short").is_err());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        std::fs::write(&p, "  0123456789abcdef0123  \nignored\n").unwrap();
        let k = load("", &p).unwrap().unwrap();
        assert_eq!(k.0, b"0123456789abcdef0123");
        assert!(load("", std::path::Path::new("")).unwrap().is_none());
        let e = load("", &dir.path().join("missing")).err().unwrap();
        assert!(e.contains("missing"), "{e}");
        std::fs::write(&p, "tiny\n").unwrap();
        assert!(load("", &p).err().unwrap().contains("at least 16 bytes"));
    }
}
