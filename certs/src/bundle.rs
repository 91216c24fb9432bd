//! Enrollment bundles: the one file an admin hands to a device, holding
//! the deployment CA certificate, the device's certificate and the
//! device's private key (encrypted with a bundle password).
//!
//! # Format
//!
//! A text file: a first line [`BUNDLE_HEADER`], a few lines describing the
//! device for humans (ignored on reading), then exactly three PEM blocks in
//! this order: `CERTIFICATE` (the CA), `CERTIFICATE` (the device),
//! `ENCRYPTED PRIVATE KEY` (PKCS#8, PBES2 scrypt + AES-256-CBC). Standard
//! tools can read each block. Written with mode 0600, never overwritten.

use std::path::Path;

use crate::ca_cert::{CaCert, CERT_LABEL};
use crate::enrollment::Enrollment;
use crate::error::CertsError;
use crate::files::{pem_blocks, pem_encode, read_pem_file, write_new, PemBlock};
use crate::identity::{verify_identity, Identity};
use crate::keyfile::{decrypt_key_der, encrypt_key_pem, Password, ENCRYPTED_KEY_LABEL};

/// The first line of every bundle.
pub const BUNDLE_HEADER: &str = "Sentinel enrollment bundle, format 1";

/// What a bundle says, read without its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleSummary {
    pub ca: CaCert,
    /// The device identity, verified against the bundle's own CA.
    pub identity: Identity,
}

/// The enrollment bundle file format.
#[derive(Debug)]
pub enum Bundle {}

impl Bundle {
    /// Writes `enrollment` to a new file at `path` (mode 0600), its key
    /// encrypted with `password`. Fails if the file exists.
    pub fn export(
        path: &Path,
        enrollment: &Enrollment,
        password: &Password,
    ) -> Result<(), CertsError> {
        let id = &enrollment.identity;
        let mut text = format!(
            "{BUNDLE_HEADER}\n\
             Device: {role} {name:?}, author {author}\n\
             Valid: {from} to {until}\n\
             Deployment CA: {ca:?}\n\
             Blocks: CA certificate, device certificate, device key encrypted\n\
             with the bundle password. Import it with `sentinel-node enroll`.\n\n",
            role = id.role,
            name = id.name,
            author = id.author,
            from = rfc3339(id.not_before_ms),
            until = rfc3339(id.not_after_ms),
            ca = enrollment.ca.name(),
        );
        text.push_str(&pem_encode(CERT_LABEL, enrollment.ca.der())?);
        text.push_str(&pem_encode(CERT_LABEL, &enrollment.cert_der)?);
        text.push_str(&encrypt_key_pem(&enrollment.key, password)?);
        write_new(path, text.as_bytes())
    }

    /// Opens a bundle: checks the device certificate against the bundled CA,
    /// decrypts the key with `password` and checks it matches the
    /// certificate.
    pub fn open(path: &Path, password: &Password) -> Result<Enrollment, CertsError> {
        let (ca, cert, key) = read_blocks(path)?;
        let ca = CaCert::from_der(&ca.der)?;
        let key = decrypt_key_der(path, &key.der, password)?;
        Enrollment::new(ca, cert.der, key)
    }

    /// Reads the certificates in a bundle without decrypting its key, e.g.
    /// to show what it is.
    pub fn summary(path: &Path) -> Result<BundleSummary, CertsError> {
        let (ca, cert, _) = read_blocks(path)?;
        let ca = CaCert::from_der(&ca.der)?;
        let identity = verify_identity(&cert.der, &ca)?;
        Ok(BundleSummary { ca, identity })
    }
}

/// A time for the human-readable header; falls back to Unix ms.
fn rfc3339(ms: u64) -> String {
    i64::try_from(ms / 1000)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{ms} ms since 1970"))
}

fn read_blocks(path: &Path) -> Result<(PemBlock, PemBlock, PemBlock), CertsError> {
    let malformed = |reason: &str| CertsError::Malformed {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let text = read_pem_file(path)?;
    if text.lines().next() != Some(BUNDLE_HEADER) {
        return Err(malformed("not a Sentinel enrollment bundle"));
    }
    let blocks = pem_blocks(path, &text)?;
    let Ok::<[PemBlock; 3], _>([ca, cert, key]) = blocks.try_into() else {
        return Err(malformed("a bundle holds exactly three PEM blocks"));
    };
    if ca.label != CERT_LABEL || cert.label != CERT_LABEL || key.label != ENCRYPTED_KEY_LABEL {
        return Err(malformed(
            "a bundle holds CERTIFICATE, CERTIFICATE, ENCRYPTED PRIVATE KEY, in that order",
        ));
    }
    Ok((ca, cert, key))
}
