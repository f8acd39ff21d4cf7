//! The `[auth]`, `[dns]` and `[dkim]` sections: mail authentication (DKIM, SPF, DMARC, ARC
//! verification and what the policy makes of it), the resolver it asks, and DKIM signing. A
//! leaf: it imports only `config::units` and the shared vocabulary.

use crate::config::units::Dur;
use crate::verdict::Destiny;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// `[auth]`: verification and the trust built on it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// Verify DKIM, SPF, DMARC and ARC and add an `Authentication-Results` field. Off by
    /// default: every message then costs DNS lookups.
    pub verify: bool,
    /// At most this many DKIM-Signature fields are verified (from the top); the others are
    /// reported as `policy` and count for nothing.
    pub max_signatures: usize,
    /// Destiny of a message whose author domain publishes DMARC `p=reject` and fails it.
    pub dmarc_reject: Destiny,
    /// The same for `p=quarantine`.
    pub dmarc_quarantine: Destiny,
    /// Added to the spam score of a DMARC failure under `p=reject` or `p=quarantine`.
    pub dmarc_fail_score: f64,
    /// Authors (a lookup table) whitelisted only when a valid signature aligned with the
    /// From domain (or DMARC pass) proves them.
    pub whitelist_authenticated_sender: Vec<String>,
    /// Author domain → policy bank, loaded when a valid aligned DKIM signature proves the author.
    pub author_policy_banks: BTreeMap<String, String>,
    /// The bank for mail from an authenticated (`--sasl-username`) client or a client in
    /// `[lists] mynetworks`, when `--policy` does not name one. Empty: none.
    pub originating_bank: String,
    /// Authentication-Results with these authserv-ids (our other hosts, whose results the
    /// users' filters may trust) are removed as forged, as those with our own hostname are.
    pub remove_authserv_ids: Vec<String>,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            verify: false,
            max_signatures: 10,
            dmarc_reject: Destiny::Pass,
            dmarc_quarantine: Destiny::Pass,
            dmarc_fail_score: 3.0,
            whitelist_authenticated_sender: Vec::new(),
            author_policy_banks: BTreeMap::new(),
            originating_bank: String::new(),
            remove_authserv_ids: Vec::new(),
        }
    }
}

/// `[dns]`: the resolver for authentication.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dns {
    /// `IP` or `IP:PORT` (port 53 by default); empty: the system resolver (/etc/resolv.conf).
    pub servers: Vec<String>,
    /// The whole DNS work of a message (every DKIM key, SPF, DMARC, ARC) ends by this time;
    /// what is unanswered then is `temperror`. Never past [general] deadline.
    pub timeout: Dur,
}

impl Default for Dns {
    fn default() -> Self {
        Dns {
            servers: Vec::new(),
            timeout: Dur(Duration::from_secs(10)),
        }
    }
}

/// `[dkim]`: signing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dkim {
    /// Sign every copy whose author domain (From:) has a key. Meant for the ORIGINATING bank.
    pub sign: bool,
    /// The fields signed; each listed once more than present ("oversigned"), so none can be
    /// added later without breaking the signature.
    pub headers: Vec<String>,
    #[serde(rename = "key")]
    pub keys: Vec<DkimKey>,
}

impl Default for Dkim {
    fn default() -> Self {
        Dkim {
            sign: false,
            headers: [
                "From",
                "Reply-To",
                "Subject",
                "Date",
                "To",
                "Cc",
                "Message-ID",
                "In-Reply-To",
                "References",
                "MIME-Version",
                "Content-Type",
                "Content-Transfer-Encoding",
            ]
            .map(String::from)
            .to_vec(),
            keys: Vec::new(),
        }
    }
}

/// `[[dkim.key]]`: one signing key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DkimKey {
    /// The d= domain; it signs mail whose From: domain is this domain or below it.
    pub domain: String,
    pub selector: String,
    /// A PEM private key: RSA (PKCS#1 or PKCS#8, at least 1024 bits) or ed25519 (PKCS#8).
    pub key_file: PathBuf,
}
