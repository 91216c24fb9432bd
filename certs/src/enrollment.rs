//! An enrollment: what a device needs to take part — the CA to check
//! peers against, its own verified identity and certificate, and its key.
//! Bundles (`bundle.rs`) carry it to the device; the CA (`ca.rs`) makes it.

use std::fmt;

use ed25519_dalek::SigningKey;

use crate::ca_cert::{CaCert, CERT_LABEL};
use crate::error::CertsError;
use crate::files::pem_encode;
use crate::identity::{verify_identity, Identity};

/// Everything a device needs to take part: the CA to check peers against,
/// its own verified identity and certificate, and its key.
#[derive(Clone)]
pub struct Enrollment {
    pub ca: CaCert,
    pub identity: Identity,
    /// The device certificate, DER, as presented in handshakes.
    pub cert_der: Vec<u8>,
    /// The device key: signs entries and TLS handshakes alike.
    pub key: SigningKey,
}

impl fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("Enrollment")
            .field("ca", &self.ca.name())
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Enrollment {
    /// Checks that `cert_der` verifies against `ca` and belongs to `key`.
    pub fn new(ca: CaCert, cert_der: Vec<u8>, key: SigningKey) -> Result<Enrollment, CertsError> {
        let identity = verify_identity(&cert_der, &ca)?;
        if identity.author.0 != key.verifying_key().to_bytes() {
            return Err(CertsError::KeyMismatch);
        }
        Ok(Enrollment {
            ca,
            identity,
            cert_der,
            key,
        })
    }

    /// The device certificate as a `CERTIFICATE` PEM block.
    pub fn cert_pem(&self) -> String {
        // A constant label and a DER blob always encode.
        pem_encode(CERT_LABEL, &self.cert_der).unwrap_or_default()
    }
}
