//! The deployment CA itself ([`Ca`], certificate plus private key, kept
//! offline): creating it, issuing identities, signing revocation lists.
//! Its public certificate is [`CaCert`] (`ca_cert.rs`).

use std::fmt;
use std::fs::DirBuilder;
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyUsagePurpose, SanType,
};
use sentinel_schema::DeviceRole;

pub use crate::ca_cert::CaCert;
use crate::ca_cert::CERT_LABEL;
use crate::enrollment::Enrollment;
use crate::error::CertsError;
use crate::files::{io_error, pem_encode, write_new};
use crate::identity::{verify_identity, IdentityCert, ROLE_URI_PREFIX};
use crate::keyfile::{read_key_file, write_key_file, Password};
use crate::x509::{check_name, random_serial, DalekPublic, DalekSigner, Validity};

/// The CA certificate inside a CA directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA's encrypted private key inside a CA directory.
pub const CA_KEY_FILE: &str = "ca.key";
/// The current signed revocation list inside a CA directory.
pub const REVOCATIONS_FILE: &str = "revocations.cbor";

/// The deployment CA: its certificate and private key. Lives on an offline
/// machine; devices only ever see the [`CaCert`].
pub struct Ca {
    cert: CaCert,
    key: SigningKey,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("Ca")
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

/// The parameters the CA certificate is built from. Issuing rebuilds the
/// issuer from them, so the subject bytes devices see as their issuer are
/// the bytes in the CA certificate.
fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

impl Ca {
    /// Creates a CA with a self-signed certificate valid from
    /// `valid_from_ms` to `valid_until_ms` (Unix ms; stored in whole
    /// seconds, rounded inwards).
    pub fn create(
        name: &str,
        valid_from_ms: u64,
        valid_until_ms: u64,
        key: SigningKey,
    ) -> Result<Ca, CertsError> {
        check_name(name).map_err(CertsError::InvalidName)?;
        let validity = Validity::new(valid_from_ms, valid_until_ms)?;
        let mut params = ca_params(name);
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.serial_number = Some(random_serial());
        let cert = params
            .self_signed(&DalekSigner(&key))
            .map_err(|e| CertsError::Generate(e.to_string()))?;
        let cert = CaCert::from_der(cert.der())?;
        Ok(Ca { cert, key })
    }

    /// Joins a CA with its key, checking that they belong together.
    pub fn from_parts(cert: CaCert, key: SigningKey) -> Result<Ca, CertsError> {
        if key.verifying_key() != cert.key {
            return Err(CertsError::KeyMismatch);
        }
        Ok(Ca { cert, key })
    }

    pub fn cert(&self) -> &CaCert {
        &self.cert
    }

    /// Writes `DIR/ca.pem` and `DIR/ca.key` (encrypted with `password`,
    /// mode 0600), creating `DIR` (mode 0700) if needed. Never overwrites:
    /// fails if either file exists.
    pub fn save(&self, dir: &Path, password: &Password) -> Result<(), CertsError> {
        let mut builder = DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(|e| io_error(dir, e))?;
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        // Check both first so a refusal leaves nothing behind.
        for path in [&cert_path, &key_path] {
            if path.exists() {
                return Err(CertsError::AlreadyExists { path: path.clone() });
            }
        }
        write_key_file(&key_path, &self.key, password)?;
        let pem = pem_encode(CERT_LABEL, &self.cert.der)?;
        if let Err(e) = write_new(&cert_path, pem.as_bytes()) {
            // A key without its certificate is an unusable CA directory.
            let _ = std::fs::remove_file(&key_path);
            return Err(e);
        }
        Ok(())
    }

    /// Loads a CA saved by [`Ca::save`].
    pub fn load(dir: &Path, password: &Password) -> Result<Ca, CertsError> {
        let cert = CaCert::load(&dir.join(CA_CERT_FILE))?;
        let key = read_key_file(&dir.join(CA_KEY_FILE), password)?;
        Ca::from_parts(cert, key)
    }

    /// Issues a device certificate: subject key `public_key` (the device's
    /// entry-signing key), role in a `sentinel:role:<role>` SAN URI, `name`
    /// as the common name, valid `valid_from_ms..=valid_until_ms` (Unix ms,
    /// whole seconds, rounded inwards).
    ///
    /// Refused if the CA is not valid at `now_ms`, or if the requested
    /// validity reaches outside the CA's own: a certificate must never
    /// outlive the authority that vouches for it.
    pub fn issue(
        &self,
        role: DeviceRole,
        name: &str,
        public_key: &VerifyingKey,
        valid_from_ms: u64,
        valid_until_ms: u64,
        now_ms: u64,
    ) -> Result<IdentityCert, CertsError> {
        if now_ms > self.cert.not_after_ms {
            return Err(CertsError::CaExpired {
                not_after_ms: self.cert.not_after_ms,
                now_ms,
            });
        }
        if now_ms < self.cert.not_before_ms {
            return Err(CertsError::CaNotYetValid {
                not_before_ms: self.cert.not_before_ms,
                now_ms,
            });
        }
        check_name(name).map_err(CertsError::InvalidName)?;
        let validity = Validity::new(valid_from_ms, valid_until_ms)?;
        if validity.from_ms < self.cert.not_before_ms || validity.until_ms > self.cert.not_after_ms
        {
            return Err(CertsError::ValidityOutsideCa {
                from_ms: valid_from_ms,
                until_ms: valid_until_ms,
                ca_not_before_ms: self.cert.not_before_ms,
                ca_not_after_ms: self.cert.not_after_ms,
            });
        }
        if *public_key == self.cert.key {
            return Err(CertsError::CaKeyReused);
        }

        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.serial_number = Some(random_serial());
        let uri = format!("{ROLE_URI_PREFIX}{}", role.as_str());
        let uri = uri
            .try_into()
            .map_err(|e: rcgen::Error| CertsError::Generate(e.to_string()))?;
        params.subject_alt_names = vec![SanType::URI(uri)];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // Every device is a TLS client when it dials and a server when it
        // is dialled.
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;

        let issuer_params = ca_params(&self.cert.name);
        let issuer = Issuer::from_params(&issuer_params, DalekSigner(&self.key));
        let cert = params
            .signed_by(&DalekPublic(public_key), &issuer)
            .map_err(|e| CertsError::Generate(e.to_string()))?;
        let der = cert.der().to_vec();
        // Never hand out a certificate our own verifier would refuse.
        let identity = verify_identity(&der, &self.cert)?;
        Ok(IdentityCert::new(der, identity))
    }

    /// Issues a certificate for `key` and packages it with the key and the
    /// CA certificate, ready to export as a bundle.
    pub fn enroll(
        &self,
        role: DeviceRole,
        name: &str,
        key: SigningKey,
        valid_from_ms: u64,
        valid_until_ms: u64,
        now_ms: u64,
    ) -> Result<Enrollment, CertsError> {
        let cert = self.issue(
            role,
            name,
            &key.verifying_key(),
            valid_from_ms,
            valid_until_ms,
            now_ms,
        )?;
        Enrollment::new(self.cert.clone(), cert.into_der(), key)
    }

    /// Signs `message` with the CA key. Crate-private: the CA key signs
    /// certificates and revocation lists, and nothing a caller chooses.
    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        self.key.sign(message)
    }
}
