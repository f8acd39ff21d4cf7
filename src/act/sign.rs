//! DKIM signing of the copies we pass on (`[dkim] sign`, meant for the ORIGINATING bank): the
//! last step before a copy leaves, over its final bytes (our header edits included), so the
//! signature covers what is delivered. Only mail from our own clients is signed
//! ([`from_our_client`]).
//!
//! Contract: a copy whose author domain (From:) has a `[[dkim.key]]` is signed or not sent: a
//! key that cannot be read or used is a failure (exit 75), never an unsigned copy from a domain
//! that signs. relaxed/relaxed, rsa-sha256 or ed25519-sha256, every field of `[dkim] headers`
//! oversigned (listed once more than present, so none can be added in transit). The field is
//! written with the message's own line ending (mail-auth writes CRLF).

use crate::config::auth::{Dkim, DkimKey};
use mail_auth::common::crypto::{DkimKey as Key, Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

/// RSA keys below this are refused for signing (RFC 8301: verifiers ignore them).
pub const MIN_RSA_BITS: usize = 1024;

/// Reads `path` (PEM: PKCS#1 or PKCS#8 RSA, PKCS#8 ed25519); the reason when it cannot be used.
pub fn load_key(path: &std::path::Path) -> Result<Key, String> {
    let der = PrivateKeyDer::from_pem_file(path)
        .map_err(|e| format!("cannot read a PEM private key from {}: {e}", path.display()))?;
    let rsa = match &der {
        PrivateKeyDer::Pkcs1(_) | PrivateKeyDer::Pkcs8(_) => {
            RsaKey::<Sha256>::from_key_der(der.clone_key())
        }
        _ => return Err(format!("{}: not an RSA or ed25519 key", path.display())),
    };
    if let Ok(k) = rsa {
        let bits = rsa_bits(&k.public_key());
        if bits < MIN_RSA_BITS {
            return Err(format!(
                "{}: RSA key of {bits} bits: at least {MIN_RSA_BITS} are needed (RFC 8301), 2048 recommended",
                path.display()
            ));
        }
        return Ok(Key::Rsa(k));
    }
    match &der {
        PrivateKeyDer::Pkcs8(p) => Ed25519Key::from_pkcs8_der(p.secret_pkcs8_der())
            .map(Key::Ed25519)
            .map_err(|e| format!("{}: neither an RSA nor an ed25519 key: {e}", path.display())),
        _ => Err(format!("{}: not a usable RSA key", path.display())),
    }
}

/// The modulus length of a PKCS#1 RSAPublicKey (0 when unreadable).
fn rsa_bits(pkcs1: &[u8]) -> usize {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::traits::PublicKeyParts;
    rsa::RsaPublicKey::from_pkcs1_der(pkcs1).map_or(0, |k| k.n().bits())
}

/// The message comes from one of our own clients, whose mail we may sign: a SASL login or
/// an address in `[lists] mynetworks`, or a run under a policy bank the MTA chose for it
/// (`--policy`, or the originating bank). Mail from the Internet that claims one of our
/// domains is never signed, whatever `[dkim] sign` says where it is set: a signature of ours
/// over a forged From: would be a signing oracle (amavisd signs only originating mail).
pub fn from_our_client(
    cfg: &crate::config::settings::Config,
    env: &crate::envelope::Envelope,
) -> bool {
    env.bank.is_some() || env.client.originating(&cfg.lists.mynetworks)
}

/// The keys that sign for `author_domain`: every `[[dkim.key]]` of that domain or, failing
/// that, of the closest parent domain (two keys of one domain, RSA and ed25519, both sign).
pub fn keys_for<'a>(cfg: &'a Dkim, author_domain: &str) -> Vec<&'a DkimKey> {
    let author = author_domain.trim_end_matches('.').to_ascii_lowercase();
    let norm = |k: &DkimKey| k.domain.trim_end_matches('.').to_ascii_lowercase();
    let covering: Vec<&DkimKey> = cfg
        .keys
        .iter()
        .filter(|k| {
            let d = norm(k);
            author == d || author.ends_with(&format!(".{d}"))
        })
        .collect();
    let Some(closest) = covering.iter().map(|k| norm(k).len()).max() else {
        return Vec::new();
    };
    covering
        .into_iter()
        .filter(|k| norm(k).len() == closest)
        .collect()
}

/// The run's signer: a key with its domain, selector and the fields to sign, for each key.
pub struct Signer {
    signers: Vec<DkimSigner<Key, Done>>,
    what: String,
}

impl Signer {
    /// The signer for mail from `author_domain` under `cfg`: `Ok(None)` when `[dkim] sign` is
    /// off or no key covers the domain; `Err` when a key that should sign cannot.
    pub fn for_author(cfg: &Dkim, author_domain: Option<&str>) -> Result<Option<Signer>, String> {
        if !cfg.sign {
            return Ok(None);
        }
        let keys = author_domain.map_or_else(Vec::new, |d| keys_for(cfg, d));
        if keys.is_empty() {
            return Ok(None);
        }
        // Every name twice: mail-auth signs the fields present and lists a name it did not
        // find once more, so the second copy of each name is the oversigning entry.
        let headers: Vec<&str> = cfg
            .headers
            .iter()
            .flat_map(|h| [h.as_str(), h.as_str()])
            .collect();
        let (mut signers, mut what) = (Vec::new(), Vec::new());
        for k in keys {
            let key = load_key(&k.key_file)?;
            what.push(format!(
                "d={} s={} a={}",
                k.domain,
                k.selector,
                match key {
                    Key::Rsa(_) => "rsa-sha256",
                    Key::Ed25519(_) => "ed25519-sha256",
                }
            ));
            signers.push(
                DkimSigner::from_key(key)
                    .domain(k.domain.as_str())
                    .selector(k.selector.as_str())
                    .headers(headers.iter().copied())
                    .header_canonicalization(Canonicalization::Relaxed)
                    .body_canonicalization(Canonicalization::Relaxed),
            );
        }
        Ok(Some(Signer {
            signers,
            what: what.join(" and "),
        }))
    }

    /// `d=`, `s=` and `a=` of each key, for logs and `--dry-run`.
    pub fn describe(&self) -> &str {
        &self.what
    }

    /// The DKIM-Signature fields for `msg` (the whole copy as it will be sent), one per key,
    /// each ending in `eol`. Each signs `msg` itself: none covers the others.
    pub fn field(&self, msg: &[u8], eol: &str) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        for s in &self.signers {
            let sig = s
                .sign(msg)
                .map_err(|e| format!("DKIM signing with {} failed: {e}", self.what))?;
            out.extend_from_slice(sig.to_header().replace("\r\n", eol).as_bytes());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains_of(cfg: &Dkim, d: &str) -> Vec<String> {
        keys_for(cfg, d).iter().map(|k| k.domain.clone()).collect()
    }

    #[test]
    fn the_closest_domain_signs() {
        let key = |d: &str| DkimKey {
            domain: d.into(),
            selector: "s".into(),
            key_file: "/k".into(),
        };
        let cfg = Dkim {
            sign: true,
            keys: vec![key("example.test"), key("sub.example.test")],
            ..Dkim::default()
        };
        assert_eq!(domains_of(&cfg, "a.sub.example.test"), ["sub.example.test"]);
        assert_eq!(domains_of(&cfg, "Example.TEST"), ["example.test"]);
        assert!(domains_of(&cfg, "badexample.test").is_empty());
        assert!(domains_of(&cfg, "test").is_empty());
        // Two keys of one domain (RSA and ed25519): both sign.
        let mut two = cfg.clone();
        two.keys.push(key("example.test"));
        assert_eq!(
            domains_of(&two, "x.example.test"),
            ["example.test", "example.test"]
        );
    }

    #[test]
    fn unreadable_and_short_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.pem");
        assert!(load_key(&missing).is_err_and(|e| e.contains("cannot read")));
        let junk = dir.path().join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        assert!(load_key(&junk).is_err());
        // A 512-bit RSA key (openssl genrsa 512), refused for signing.
        let short = dir.path().join("short.pem");
        let out = std::process::Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&short)
            .arg("512")
            .output()
            .expect("openssl (Debian package openssl) is needed for this test");
        assert!(out.status.success());
        assert!(load_key(&short).is_err_and(|e| e.contains("512 bits")));
        let ok = dir.path().join("ok.pem");
        let out = std::process::Command::new("openssl")
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&ok)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(matches!(load_key(&ok), Ok(Key::Ed25519(_))));
    }
}
