//! The HTTP API over TLS: the rustls configuration from a PEM certificate
//! chain and key ([`server_config`]): TLS 1.2 and 1.3 with rustls' ring
//! provider, ALPN `h2` and `http/1.1`.
//!
//! The accept loop that serves the API with it (or without it, on plain
//! HTTP) is the one both servers share, `sentinel_http::serve`: each
//! handshake in a task of its own within a time limit, header, body and
//! idle timeouts, a connection cap, the client's address for the rate
//! limit and the request log.
//!
//! Never does: accept connections (`sentinel_http::serve` does).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use zeroize::Zeroizing;

/// Largest certificate or key file read: a chain of a few certificates is
/// a few KiB.
pub const MAX_PEM_FILE_BYTES: u64 = 1 << 20;

/// ALPN protocols offered, in order of preference.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why the TLS configuration cannot be built from the PEM files. Each
/// variant names the file at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpsError {
    /// The file cannot be read (missing, not permitted, too large).
    #[error("cannot read {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    /// The certificate file holds no `CERTIFICATE` block, or a bad one.
    #[error("{} holds no valid PEM certificate: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    /// The key file holds no private key PEM block (PKCS#8, SEC1 or
    /// PKCS#1), or a bad one.
    #[error("{} holds no valid PEM private key: {reason}", path.display())]
    BadKey { path: PathBuf, reason: String },
    /// The key file may be read by group or others (Unix mode bits).
    #[error(
        "{} is readable by group or others (mode {mode:o}); the HTTPS key must be the hub's alone: run `chmod 600` on it",
        path.display()
    )]
    KeyReadableByOthers { path: PathBuf, mode: u32 },
    /// rustls refused the pair: a key that does not belong to the
    /// certificate, or a key type it cannot sign with.
    #[error("{} and {} do not make a usable TLS identity: {reason}", cert.display(), key.display())]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

fn read_pem(path: &Path) -> Result<Vec<u8>, HttpsError> {
    let read = |reason: String| HttpsError::Read {
        path: path.to_path_buf(),
        reason,
    };
    let len = std::fs::metadata(path)
        .map_err(|e| read(e.to_string()))?
        .len();
    if len > MAX_PEM_FILE_BYTES {
        return Err(read(format!(
            "larger than {MAX_PEM_FILE_BYTES} bytes; not a PEM file"
        )));
    }
    std::fs::read(path).map_err(|e| read(e.to_string()))
}

/// Refuses a key file that group or others may read: the key is kept
/// unencrypted (the hub starts unattended), so its mode is its protection
/// (`docs/security.md` 1.10). Unix only; elsewhere nothing is checked.
fn check_key_private(path: &Path) -> Result<(), HttpsError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| HttpsError::Read {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(HttpsError::KeyReadableByOthers {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The rustls server configuration for the HTTP API: the certificate chain
/// in `cert` (PEM, server certificate first, as `sentinel-certs
/// issue-https` writes it) and the private key in `key` (PEM: PKCS#8, SEC1
/// or PKCS#1; refused when group or others may read it), TLS 1.2 and 1.3
/// with the ring provider, ALPN `h2` and `http/1.1`, no client
/// certificates (people sign in with tokens).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, HttpsError> {
    let cert_pem = read_pem(cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| HttpsError::BadCertificate {
            path: cert.to_path_buf(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(HttpsError::BadCertificate {
            path: cert.to_path_buf(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    // The key's PEM text is wiped when dropped; rustls keeps its own copy
    // of the DER.
    let key_pem = Zeroizing::new(read_pem(key)?);
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| HttpsError::BadKey {
        path: key.to_path_buf(),
        reason: e.to_string(),
    })?;
    check_key_private(key)?;
    let pair = |e: rustls::Error| HttpsError::Pair {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        reason: e.to_string(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(pair)?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(pair)?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    // Early data can be replayed; the API has no use for it.
    config.max_early_data_size = 0;
    Ok(Arc::new(config))
}
