//! X.509 plumbing shared by the CA and identity modules: Unix milliseconds
//! to and from certificate times, rcgen signing with an ed25519-dalek key,
//! and the checks every certificate we accept must pass.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::{OsRng, RngCore};
use rcgen::{PublicKeyData, SerialNumber, SignatureAlgorithm, PKCS_ED25519};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::{
    OID_SIG_ED25519, OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_EXTENDED_KEY_USAGE,
    OID_X509_EXT_KEY_USAGE, OID_X509_EXT_SUBJECT_ALT_NAME,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::{AlgorithmIdentifier, X509Version};

use crate::error::{CertError, CertsError};

/// Longest CA or device name, in UTF-8 bytes (X.520's upper bound for a
/// common name is 64 characters; bytes keep the rule simple).
pub const MAX_NAME_BYTES: usize = 64;

/// Checks a CA or device name: 1 to [`MAX_NAME_BYTES`] bytes, no control
/// characters (names end up in logs and terminals).
pub(crate) fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return Err("the name is longer than 64 bytes");
    }
    if name.chars().any(char::is_control) {
        return Err("the name contains control characters");
    }
    Ok(())
}

/// A validity period as stored in a certificate: whole seconds, so the
/// certificate never claims more than was asked for (the start rounds up,
/// the end rounds down).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Validity {
    pub(crate) from_ms: u64,
    pub(crate) until_ms: u64,
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
}

impl Validity {
    pub(crate) fn new(from_ms: u64, until_ms: u64) -> Result<Validity, CertsError> {
        let invalid = CertsError::InvalidValidity { from_ms, until_ms };
        let from_s = from_ms.div_ceil(1000);
        let until_s = until_ms / 1000;
        if from_s >= until_s {
            return Err(invalid);
        }
        let to_time = |s: u64| {
            i64::try_from(s)
                .ok()
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        };
        // `time` without large dates stops at year 9999, as X.509 does.
        let (Some(not_before), Some(not_after)) = (to_time(from_s), to_time(until_s)) else {
            return Err(invalid);
        };
        Ok(Validity {
            from_ms: from_s * 1000,
            until_ms: until_s * 1000,
            not_before,
            not_after,
        })
    }
}

/// A random, positive, 16-byte serial number. Serials only need to be
/// unique per CA; rcgen's default (a hash of the key) would repeat when a
/// key is re-certified.
pub(crate) fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    // Clear the sign bit and set a low bit so the DER INTEGER is positive
    // and exactly 16 bytes long.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

/// rcgen signs through this wrapper with the ed25519-dalek key itself, so
/// one key type serves certificates, entries and revocation lists.
pub(crate) struct DalekSigner<'a>(pub(crate) &'a SigningKey);

impl PublicKeyData for DalekSigner<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0.as_ref().as_bytes()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ED25519
    }
}

impl rcgen::SigningKey for DalekSigner<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(self.0.sign(msg).to_bytes().to_vec())
    }
}

/// The subject key of a certificate being issued: only the public half is
/// needed, so a device's private key never has to reach the CA.
pub(crate) struct DalekPublic<'a>(pub(crate) &'a VerifyingKey);

impl PublicKeyData for DalekPublic<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ED25519
    }
}

/// Fields every certificate we accept (CA or device) must have.
pub(crate) struct Parsed<'a> {
    pub(crate) cert: X509Certificate<'a>,
    pub(crate) key: VerifyingKey,
    pub(crate) name: String,
    pub(crate) not_before_ms: u64,
    pub(crate) not_after_ms: u64,
    pub(crate) is_ca: bool,
}

fn is_ed25519(alg: &AlgorithmIdentifier<'_>) -> bool {
    // RFC 8410: the parameters field MUST be absent.
    alg.algorithm == OID_SIG_ED25519 && alg.parameters.is_none()
}

/// `AlgorithmIdentifier { id-Ed25519 }` without parameters (RFC 8410).
const ED25519_ALGORITHM_DER: [u8; 7] = [0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];

fn der_header(tag: u8, len: usize, out: &mut Vec<u8>) {
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// The DER certificate `SEQUENCE { tbs, ed25519, BIT STRING signature }`.
fn canonical_certificate(tbs: &[u8], signature: &[u8; 64]) -> Vec<u8> {
    let mut body = Vec::with_capacity(tbs.len() + ED25519_ALGORITHM_DER.len() + 67);
    body.extend_from_slice(tbs);
    body.extend_from_slice(&ED25519_ALGORITHM_DER);
    der_header(0x03, 65, &mut body);
    body.push(0); // no unused bits
    body.extend_from_slice(signature);
    let mut out = Vec::with_capacity(body.len() + 4);
    der_header(0x30, body.len(), &mut out);
    out.extend_from_slice(&body);
    out
}

fn to_ms(secs: i64) -> Result<u64, CertError> {
    u64::try_from(secs)
        .ok()
        .and_then(|s| s.checked_mul(1000))
        .ok_or(CertError::BadValidity)
}

/// The one common name of the subject, checked like names we issue.
fn common_name(cert: &X509Certificate<'_>) -> Result<String, CertError> {
    let mut names = cert.subject().iter_common_name();
    let (Some(cn), None) = (names.next(), names.next()) else {
        return Err(CertError::MissingName);
    };
    let name = cn
        .as_str()
        .map_err(|_| CertError::BadName("the common name is not a string"))?;
    check_name(name).map_err(CertError::BadName)?;
    Ok(name.to_string())
}

/// Parses one DER certificate and applies the checks shared by CA and
/// device certificates. Does not check who signed it.
pub(crate) fn parse(der: &[u8]) -> Result<Parsed<'_>, CertError> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| CertError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CertError::TrailingBytes);
    }
    if cert.tbs_certificate.version != X509Version::V3 {
        return Err(CertError::NotVersion3);
    }
    // The outer and inner algorithm fields must agree (RFC 5280 4.1.1.2);
    // we only accept ed25519 in both.
    if !is_ed25519(&cert.signature_algorithm) || !is_ed25519(&cert.tbs_certificate.signature) {
        return Err(CertError::NotEd25519 {
            field: "signature algorithm",
        });
    }
    // x509-parser is lenient about the outer wrapper (tags, lengths), and
    // the wrapper is not covered by the signature. With the algorithm fixed
    // to ed25519 and a 64-byte signature, the one DER encoding is fully
    // determined by the TBS bytes and the signature: demand exactly that,
    // so each certificate has one accepted encoding.
    if cert.signature_value.unused_bits != 0 {
        return Err(CertError::BadSignature);
    }
    let signature: &[u8; 64] = cert
        .signature_value
        .data
        .as_ref()
        .try_into()
        .map_err(|_| CertError::BadSignature)?;
    if der != canonical_certificate(cert.tbs_certificate.as_ref(), signature) {
        return Err(CertError::Malformed(
            "not the DER encoding of an ed25519 certificate".to_string(),
        ));
    }
    let spki = cert.public_key();
    if !is_ed25519(&spki.algorithm) {
        return Err(CertError::NotEd25519 {
            field: "public key",
        });
    }
    let key_bytes: [u8; 32] = spki
        .subject_public_key
        .data
        .as_ref()
        .try_into()
        .map_err(|_| CertError::BadPublicKey)?;
    let key = VerifyingKey::from_bytes(&key_bytes).map_err(|_| CertError::BadPublicKey)?;
    // A small-order key would let anyone forge signatures that verify.
    if spki.subject_public_key.unused_bits != 0 || key.is_weak() {
        return Err(CertError::BadPublicKey);
    }

    for ext in cert.extensions() {
        if let ParsedExtension::ParseError { .. } = ext.parsed_extension() {
            return Err(CertError::Malformed(format!(
                "extension {} does not parse",
                ext.oid
            )));
        }
        let understood = [
            OID_X509_EXT_BASIC_CONSTRAINTS,
            OID_X509_EXT_KEY_USAGE,
            OID_X509_EXT_EXTENDED_KEY_USAGE,
            OID_X509_EXT_SUBJECT_ALT_NAME,
        ];
        if ext.critical && !understood.contains(&ext.oid) {
            return Err(CertError::UnknownCriticalExtension(ext.oid.to_id_string()));
        }
    }
    let is_ca = cert
        .basic_constraints()
        .map_err(|e| CertError::Malformed(e.to_string()))?
        .is_some_and(|bc| bc.value.ca);

    let name = common_name(&cert)?;

    let validity = cert.validity();
    let not_before_ms = to_ms(validity.not_before.timestamp())?;
    let not_after_ms = to_ms(validity.not_after.timestamp())?;
    if not_before_ms > not_after_ms {
        return Err(CertError::BadValidity);
    }
    Ok(Parsed {
        cert,
        key,
        name,
        not_before_ms,
        not_after_ms,
        is_ca,
    })
}

/// Verifies `issuer`'s ed25519 signature over the certificate's TBS bytes.
pub(crate) fn check_signed_by(
    cert: &X509Certificate<'_>,
    issuer: &VerifyingKey,
) -> Result<(), CertError> {
    let sig = ed25519_dalek::Signature::from_slice(&cert.signature_value.data)
        .map_err(|_| CertError::BadSignature)?;
    // `verify_strict` refuses malleable signatures and small-order points,
    // so exactly one signature verifies for a given certificate.
    issuer
        .verify_strict(cert.tbs_certificate.as_ref(), &sig)
        .map_err(|_| CertError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_rounds_inwards_to_seconds() {
        let v = Validity::new(1_500, 10_999).unwrap();
        assert_eq!((v.from_ms, v.until_ms), (2_000, 10_000));
        assert!(Validity::new(1_500, 1_999).is_err());
        assert!(Validity::new(5_000, 4_000).is_err());
        // Year 10000 and later cannot be written in a certificate.
        assert!(Validity::new(0, 253_402_300_800_000).is_err());
        assert!(Validity::new(0, 253_402_300_799_000).is_ok());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("node-7").is_ok());
        assert!(check_name("Ünïcode Station").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
        assert!(check_name("a\nb").is_err());
    }
}
