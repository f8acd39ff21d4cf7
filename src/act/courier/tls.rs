//! STARTTLS (RFC 3207) for the SMTP and LMTP couriers, with rustls (ring provider): no
//! OpenSSL, no hand-written bindings.
//!
//! Contract: `[reinject] tls` says what a server gets (Postfix's `smtp_tls_security_level`
//! names): `none` plaintext; `may` STARTTLS when the server offers it, the certificate not
//! checked (only against a passive eavesdropper), plaintext when it is not offered; `verify`
//! STARTTLS required and the certificate checked against `tls_ca_file` and the server's name
//! as configured (host name or IP address) -- a server that does not offer it, refuses it, or
//! fails the check is never used in plaintext: it is a failure of that server (the next one is
//! tried, and 75 when none is left). `auto` (the default) is `none` for a unix socket, an IP
//! loopback address and `localhost`, and `verify` for everything else.
//!
//! The handshake runs under the delivery's deadline (it reads and writes through
//! `scan::wire::Conn`). Anything the server sent after its 220 to STARTTLS and before the
//! handshake is an injection attempt (CVE-2011-0411): the server is given up.

use crate::config::delivery::TlsLevel;
use crate::scan::wire::{Conn, ServerAddr};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, StreamOwned};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the courier does about TLS, from `[reinject] tls` and `tls_ca_file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub level: TlsLevel,
    pub ca_file: PathBuf,
}

impl Default for Tls {
    fn default() -> Tls {
        Tls {
            level: TlsLevel::Auto,
            ca_file: PathBuf::from(crate::config::delivery::CA_FILE),
        }
    }
}

impl Tls {
    /// The level for one server: `auto` resolved by where the server is.
    pub fn level_for(&self, addr: &ServerAddr) -> TlsLevel {
        match (self.level, addr) {
            // No name to check a certificate against, and nobody on the wire: "may" is
            // plaintext; "verify" is refused by check-config (and fails the server).
            (TlsLevel::May, ServerAddr::Unix(_)) => TlsLevel::None,
            (TlsLevel::Auto, a) if local(a) => TlsLevel::None,
            (TlsLevel::Auto, _) => TlsLevel::Verify,
            (l, _) => l,
        }
    }
}

/// A unix socket, a loopback IP address or `localhost`: the wire never leaves the machine.
pub fn local(addr: &ServerAddr) -> bool {
    match addr {
        ServerAddr::Unix(_) => true,
        ServerAddr::Tcp(hostport) => {
            let host = host_of(hostport);
            host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
    }
}

/// The host of "host:port" or "[v6]:port", without brackets: the name the certificate must
/// carry.
fn host_of(hostport: &str) -> &str {
    let host = hostport.rsplit_once(':').map_or(hostport, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The byte stream of a session: plaintext, or TLS over the same deadline-bound socket.
pub(crate) enum Link {
    Plain(Conn),
    Tls(Box<StreamOwned<ClientConnection, Conn>>),
}

impl Link {
    /// TLS: the close_notify alert, so the server sees an orderly end (best effort).
    pub(crate) fn close(&mut self) {
        if let Link::Tls(t) = self {
            t.conn.send_close_notify();
            let _ = t.flush();
        }
    }
}

impl Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Link::Plain(c) => c.read(buf),
            Link::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Link {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Link::Plain(c) => c.write(buf),
            Link::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Link::Plain(c) => c.flush(),
            Link::Tls(t) => t.flush(),
        }
    }
}

/// The TLS handshake over `conn` with the server `addr` at `level` (`may` or `verify`):
/// the encrypted stream, or why not (a certificate that fails the check names the reason).
pub(crate) fn handshake(
    conn: Conn,
    addr: &ServerAddr,
    level: TlsLevel,
    ca_file: &Path,
) -> Result<Link, String> {
    let ServerAddr::Tcp(hostport) = addr else {
        return Err("STARTTLS over a unix socket is not supported".into());
    };
    let config = config(level, ca_file)?;
    let name = ServerName::try_from(host_of(hostport).to_string()).map_err(|e| {
        format!(
            "{:?} is not a name a certificate can carry: {e}",
            host_of(hostport)
        )
    })?;
    let client = ClientConnection::new(config, name).map_err(|e| format!("TLS: {e}"))?;
    let mut tls = StreamOwned::new(client, conn);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
    }
    Ok(Link::Tls(Box::new(tls)))
}

/// The rustls client configuration for `level`: the CA file's roots for `verify`, no
/// certificate check for `may`.
fn config(level: TlsLevel, ca_file: &Path) -> Result<Arc<ClientConfig>, String> {
    // ring builds with the C compiler alone (aws-lc-rs wants cmake); rustls marks it
    // deprecated for lacking the post-quantum key exchange, which SMTP relays do not need yet.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let config = match level {
        TlsLevel::May => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
            .with_no_client_auth(),
        _ => return verifying(builder, ca_file),
    };
    Ok(Arc::new(config))
}

/// The `verify` configuration for `ca_file`, built once per process: a run may hand several
/// copies, DSNs and notices to a TLS relay, and each would otherwise parse the whole system
/// bundle (some 140 certificates) again. Another file (a bank's own) is parsed each time.
fn verifying(
    builder: rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>,
    ca_file: &Path,
) -> Result<Arc<ClientConfig>, String> {
    static BUILT: std::sync::OnceLock<(PathBuf, Result<Arc<ClientConfig>, String>)> =
        std::sync::OnceLock::new();
    let build = || {
        roots(ca_file).map(|r| Arc::new(builder.with_root_certificates(r).with_no_client_auth()))
    };
    match BUILT.get() {
        Some((path, built)) if path == ca_file => built.clone(),
        Some(_) => build(),
        None => BUILT
            .get_or_init(|| (ca_file.to_path_buf(), build()))
            .1
            .clone(),
    }
}

/// The trust anchors of a PEM file (the system's /etc/ssl/certs/ca-certificates.crt by
/// default). A file without one certificate is an error: nothing could ever be verified.
pub fn roots(ca_file: &Path) -> Result<RootCertStore, String> {
    let what =
        |e: &dyn std::fmt::Display| format!("reinject.tls_ca_file {}: {e}", ca_file.display());
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| what(&e))? {
        let cert = cert.map_err(|e| what(&e))?;
        // A certificate rustls cannot use as an anchor is skipped, as every TLS client does
        // with a system bundle.
        let _ = store.add(cert);
    }
    if store.is_empty() {
        return Err(what(&"no usable CA certificate in it"));
    }
    Ok(store)
}

/// `may`: encryption without authentication (Postfix's "may"): any certificate is taken, but
/// the handshake signatures are still checked, so the session key is the server's.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> ServerAddr {
        s.parse().unwrap()
    }

    #[test]
    fn auto_is_none_on_this_machine_and_verify_for_a_remote_relay() {
        let auto = Tls::default();
        for here in [
            "127.0.0.1:10025",
            "[::1]:10025",
            "localhost:24",
            "/run/dovecot/lmtp",
        ] {
            assert_eq!(auto.level_for(&addr(here)), TlsLevel::None, "{here}");
        }
        for away in [
            "relay.example.org:25",
            "192.0.2.1:10025",
            "[2001:db8::1]:25",
        ] {
            assert_eq!(auto.level_for(&addr(away)), TlsLevel::Verify, "{away}");
        }
        let may = Tls {
            level: TlsLevel::May,
            ..Tls::default()
        };
        assert_eq!(may.level_for(&addr("127.0.0.1:25")), TlsLevel::May);
        assert_eq!(may.level_for(&addr("/run/dovecot/lmtp")), TlsLevel::None);
        assert_eq!(host_of("[2001:db8::1]:25"), "2001:db8::1");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("pipescan-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = roots(&empty).unwrap_err();
        assert!(e.contains("empty.pem: no usable CA certificate"), "{e}");
        let e = roots(&dir.join("missing.pem")).unwrap_err();
        assert!(e.contains("reinject.tls_ca_file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
