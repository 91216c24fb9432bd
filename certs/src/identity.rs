//! Device identities: what a verified certificate says about its holder,
//! and the pure check that turns presented bytes into one.

use sentinel_schema::{AuthorId, DeviceRole};
use x509_parser::extensions::GeneralName;

use crate::ca_cert::CaCert;
use crate::error::CertError;
use crate::files::pem_encode;
use crate::x509;

/// The SAN URI prefix that carries a device's role, e.g.
/// `sentinel:role:node`. A URI rather than a custom critical extension:
/// TLS stacks refuse certificates with critical extensions they do not
/// know, and a non-critical custom extension is easy to drop unnoticed.
pub const ROLE_URI_PREFIX: &str = "sentinel:role:";

/// A device identity, as a certificate verified against the deployment
/// CA states it.
///
/// `author` is the certificate's subject key, which is also the key that
/// signs the device's entries: transport identity and log identity are the
/// same thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub author: AuthorId,
    pub role: DeviceRole,
    /// The subject common name: a label for humans (`node-7`), never used
    /// for access decisions.
    pub name: String,
    /// First moment of validity, Unix milliseconds (whole seconds).
    pub not_before_ms: u64,
    /// Last moment of validity, Unix milliseconds (whole seconds).
    pub not_after_ms: u64,
}

impl Identity {
    /// Whether the certificate is valid at `ms` (Unix milliseconds), bounds
    /// included.
    ///
    /// [`verify_identity`] does not read a clock because the right time
    /// depends on the question: a handshake is judged now (the verifiers
    /// of [`crate::server_config`] and [`crate::client_config`] use the
    /// handshake time rustls passes), whereas an entry relayed long after
    /// it was written is judged at the entry's own HLC time, so an entry
    /// signed while the certificate was valid stays valid after the
    /// certificate expires.
    pub fn valid_at(&self, ms: u64) -> bool {
        self.not_before_ms <= ms && ms <= self.not_after_ms
    }

    /// Like [`Identity::valid_at`], with the reason when it is not.
    pub fn check_valid_at(&self, ms: u64) -> Result<(), CertError> {
        if ms < self.not_before_ms {
            return Err(CertError::NotYetValid {
                not_before_ms: self.not_before_ms,
                now_ms: ms,
            });
        }
        if ms > self.not_after_ms {
            return Err(CertError::Expired {
                not_after_ms: self.not_after_ms,
                now_ms: ms,
            });
        }
        Ok(())
    }
}

/// A device certificate the CA just issued, with what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityCert {
    der: Vec<u8>,
    identity: Identity,
}

impl IdentityCert {
    pub(crate) fn new(der: Vec<u8>, identity: Identity) -> IdentityCert {
        IdentityCert { der, identity }
    }

    /// The DER certificate.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The certificate as a `CERTIFICATE` PEM block.
    pub fn to_pem(&self) -> String {
        // Encoding a DER blob under a constant label does not fail; an
        // empty result would be refused by any reader.
        pem_encode(crate::ca_cert::CERT_LABEL, &self.der).unwrap_or_default()
    }

    pub fn into_der(self) -> Vec<u8> {
        self.der
    }
}

/// Verifies a presented device certificate against the deployment CA and
/// returns the identity it states.
///
/// Checks: one DER X.509 v3 certificate and nothing after it; ed25519
/// signature algorithm and subject key; issuer is the CA and the CA's
/// ed25519 signature over the TBS bytes verifies; not a CA certificate and
/// not the CA's key; no unknown critical extension; key usage, if present,
/// allows signatures; exactly one common name; exactly one
/// `sentinel:role:` URI naming a known role.
///
/// Does NOT check validity against a clock (see [`Identity::valid_at`]) nor
/// revocation (see [`crate::RevocationList`]): callers judge those at the
/// time that matters to them. Pure: no IO, no clock.
pub fn verify_identity(der: &[u8], ca: &CaCert) -> Result<Identity, CertError> {
    let parsed = x509::parse(der)?;
    let cert = &parsed.cert;
    // Compare the issuer bytes before the signature: a clear "wrong CA"
    // beats a bare "bad signature" for certificates from another deployment.
    if cert.issuer().as_raw() != ca.subject_der() {
        return Err(CertError::WrongIssuer);
    }
    x509::check_signed_by(cert, ca.key())?;
    // The CA's own certificate is signed by the CA too; it must never pass
    // as a device, and the CA key must never be an author.
    if parsed.is_ca || parsed.key == *ca.key() {
        return Err(CertError::IsCa);
    }
    if let Some(ku) = cert
        .key_usage()
        .map_err(|e| CertError::Malformed(e.to_string()))?
    {
        if !ku.value.digital_signature() {
            return Err(CertError::NoDigitalSignature);
        }
    }
    let role = role_of(cert)?;
    Ok(Identity {
        author: AuthorId(parsed.key.to_bytes()),
        role,
        name: parsed.name,
        not_before_ms: parsed.not_before_ms,
        not_after_ms: parsed.not_after_ms,
    })
}

fn role_of(cert: &x509_parser::certificate::X509Certificate<'_>) -> Result<DeviceRole, CertError> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| CertError::Malformed(e.to_string()))?
        .ok_or(CertError::MissingRole)?;
    let mut roles = san.value.general_names.iter().filter_map(|n| match n {
        GeneralName::URI(uri) => uri.strip_prefix(ROLE_URI_PREFIX),
        _ => None,
    });
    match (roles.next(), roles.next()) {
        (None, _) => Err(CertError::MissingRole),
        (Some(_), Some(_)) => Err(CertError::MultipleRoles),
        (Some(role), None) => role
            .parse::<DeviceRole>()
            .map_err(|e| CertError::UnknownRole(e.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_bounds_are_inclusive() {
        let id = Identity {
            author: AuthorId([1; 32]),
            role: DeviceRole::Node,
            name: "n".to_string(),
            not_before_ms: 1_000,
            not_after_ms: 2_000,
        };
        assert!(!id.valid_at(999));
        assert!(id.valid_at(1_000));
        assert!(id.valid_at(2_000));
        assert!(!id.valid_at(2_001));
        assert_eq!(
            id.check_valid_at(2_001),
            Err(CertError::Expired {
                not_after_ms: 2_000,
                now_ms: 2_001
            })
        );
        assert_eq!(
            id.check_valid_at(0),
            Err(CertError::NotYetValid {
                not_before_ms: 1_000,
                now_ms: 0
            })
        );
    }
}
