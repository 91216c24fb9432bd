//! The deployment CA's certificate ([`CaCert`]): public, on every device,
//! the anchor every peer certificate and revocation list is checked
//! against. Parsing and checking it; never signing (that is `ca.rs`).

use std::path::Path;

use ed25519_dalek::VerifyingKey;

use crate::error::{CertError, CertsError};
use crate::files::{pem_blocks, pem_encode, read_pem_file, PemBlock};
use crate::x509;

/// PEM label of a certificate.
pub(crate) const CERT_LABEL: &str = "CERTIFICATE";
/// Reads the DER certificate from a PEM file holding exactly one
/// `CERTIFICATE` block. Does not check it.
pub fn read_cert_file(path: &Path) -> Result<Vec<u8>, CertsError> {
    let text = read_pem_file(path)?;
    let blocks = pem_blocks(path, &text)?;
    match <[PemBlock; 1]>::try_from(blocks) {
        Ok([block]) if block.label == CERT_LABEL => Ok(block.der),
        _ => Err(CertsError::Malformed {
            path: path.to_path_buf(),
            reason: "expected exactly one CERTIFICATE PEM block".to_string(),
        }),
    }
}

/// The deployment CA's certificate: self-signed, ed25519, `CA:TRUE`, key
/// usage `keyCertSign`. Exists only after those checks passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaCert {
    pub(crate) der: Vec<u8>,
    pub(crate) key: VerifyingKey,
    pub(crate) subject: Vec<u8>,
    pub(crate) name: String,
    pub(crate) not_before_ms: u64,
    pub(crate) not_after_ms: u64,
}

impl CaCert {
    /// Parses and checks a CA certificate (DER).
    pub fn from_der(der: &[u8]) -> Result<CaCert, CertError> {
        let parsed = x509::parse(der)?;
        let cert = &parsed.cert;
        if !parsed.is_ca {
            return Err(CertError::NotCa("basic constraints do not say CA:TRUE"));
        }
        let can_sign_certs = cert
            .key_usage()
            .map_err(|e| CertError::Malformed(e.to_string()))?
            .is_some_and(|ku| ku.value.key_cert_sign());
        if !can_sign_certs {
            return Err(CertError::NotCa("key usage does not allow keyCertSign"));
        }
        if cert.issuer().as_raw() != cert.subject().as_raw() {
            return Err(CertError::NotSelfSigned);
        }
        x509::check_signed_by(cert, &parsed.key).map_err(|_| CertError::NotSelfSigned)?;
        Ok(CaCert {
            der: der.to_vec(),
            key: parsed.key,
            subject: cert.subject().as_raw().to_vec(),
            name: parsed.name,
            not_before_ms: parsed.not_before_ms,
            not_after_ms: parsed.not_after_ms,
        })
    }

    /// Reads a CA certificate from a PEM file holding one `CERTIFICATE`.
    pub fn load(path: &Path) -> Result<CaCert, CertsError> {
        Ok(CaCert::from_der(&read_cert_file(path)?)?)
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The CA certificate as a `CERTIFICATE` PEM block.
    pub fn to_pem(&self) -> String {
        // A constant label and a DER blob always encode.
        pem_encode(CERT_LABEL, &self.der).unwrap_or_default()
    }

    /// The CA's public key: it signs device certificates and revocation
    /// lists, nothing else.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The DER subject name, which every device certificate names as its
    /// issuer.
    pub fn subject_der(&self) -> &[u8] {
        &self.subject
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn not_before_ms(&self) -> u64 {
        self.not_before_ms
    }

    pub fn not_after_ms(&self) -> u64 {
        self.not_after_ms
    }

    /// Whether the CA certificate is valid at `ms`, bounds included.
    pub fn valid_at(&self, ms: u64) -> bool {
        self.not_before_ms <= ms && ms <= self.not_after_ms
    }
}
