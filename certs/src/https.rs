//! TLS server certificates for the hub's HTTPS API, issued by the
//! deployment CA.
//!
//! Unlike device certificates, these carry no Sentinel identity: the key is
//! a fresh ECDSA P-256 key (the one key type every TLS client supports),
//! the names are DNS names and IP addresses in the subject alternative
//! name, and the extended key usage is `serverAuth` only. The certificate
//! is signed by the CA's ed25519 key, so clients that trust the CA
//! certificate as a root (curl and OpenSSL, rustls) accept it; common
//! browsers do not verify ed25519 certificate signatures (see
//! `docs/security.md`, "HTTPS on the hub").

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use ed25519_dalek::Signature;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SignatureAlgorithm,
    PKCS_ECDSA_P256_SHA256, PKCS_ED25519,
};
use rustls_pki_types::DnsName;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use zeroize::Zeroizing;

use crate::ca::Ca;
use crate::ca_cert::CERT_LABEL;
use crate::error::{CertError, CertsError};
use crate::files::{io_error, pem_encode, write_new};
use crate::x509::{check_name, check_signed_by, random_serial, Validity};

/// Most names (DNS and IP together) one HTTPS certificate may carry: a
/// hub has a handful of names, and a long list is more likely a mistake.
pub const MAX_HTTPS_NAMES: usize = 32;

/// Why a TLS server certificate cannot be issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpsIssueError {
    /// Neither a DNS name nor an IP address was given: clients check the
    /// name they dialled against these, so a certificate without any is
    /// accepted by nobody.
    #[error("the certificate names no DNS name and no IP address; give at least one")]
    NoNames,
    /// More names than [`MAX_HTTPS_NAMES`].
    #[error("{n} names, more than the limit of {max}")]
    TooManyNames { n: usize, max: usize },
    /// A DNS name is not a valid (non-wildcard) host name.
    #[error("{0:?} is not a valid DNS name")]
    BadDnsName(String),
    /// The CA, the common name or the validity is refused, exactly as for
    /// device certificates ([`CertsError::CaExpired`],
    /// [`CertsError::ValidityOutsideCa`], [`CertsError::InvalidName`], ...).
    #[error(transparent)]
    Certs(#[from] CertsError),
}

/// What an HTTPS certificate names: the host names and addresses clients
/// will dial the hub by. Exists only with at least one valid name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsNames {
    dns: Vec<String>,
    ips: Vec<IpAddr>,
}

impl HttpsNames {
    /// Checks the names: at least one in all, at most [`MAX_HTTPS_NAMES`],
    /// DNS names valid host names (stored in lower case, duplicates
    /// dropped).
    pub fn new(dns: &[String], ips: &[IpAddr]) -> Result<HttpsNames, HttpsIssueError> {
        let n = dns.len() + ips.len();
        if n == 0 {
            return Err(HttpsIssueError::NoNames);
        }
        if n > MAX_HTTPS_NAMES {
            return Err(HttpsIssueError::TooManyNames {
                n,
                max: MAX_HTTPS_NAMES,
            });
        }
        let mut checked: Vec<String> = Vec::with_capacity(dns.len());
        for name in dns {
            let lower = name.to_ascii_lowercase();
            if DnsName::try_from(lower.as_str()).is_err() {
                return Err(HttpsIssueError::BadDnsName(name.clone()));
            }
            if !checked.contains(&lower) {
                checked.push(lower);
            }
        }
        let mut addrs: Vec<IpAddr> = Vec::with_capacity(ips.len());
        for ip in ips {
            if !addrs.contains(ip) {
                addrs.push(*ip);
            }
        }
        Ok(HttpsNames {
            dns: checked,
            ips: addrs,
        })
    }

    pub fn dns(&self) -> &[String] {
        &self.dns
    }

    pub fn ips(&self) -> &[IpAddr] {
        &self.ips
    }
}

/// An issued HTTPS certificate and its private key.
pub struct HttpsCert {
    cert_der: Vec<u8>,
    ca_der: Vec<u8>,
    key_pkcs8: Zeroizing<Vec<u8>>,
    not_before_ms: u64,
    not_after_ms: u64,
}

impl fmt::Debug for HttpsCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("HttpsCert")
            .field("not_before_ms", &self.not_before_ms)
            .field("not_after_ms", &self.not_after_ms)
            .finish_non_exhaustive()
    }
}

impl HttpsCert {
    /// The server certificate (DER).
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The private key, PKCS#8 DER (ECDSA P-256).
    pub fn key_pkcs8_der(&self) -> &[u8] {
        &self.key_pkcs8
    }

    pub fn not_before_ms(&self) -> u64 {
        self.not_before_ms
    }

    pub fn not_after_ms(&self) -> u64 {
        self.not_after_ms
    }

    /// The chain a server presents: the server certificate, then the CA
    /// certificate, as `CERTIFICATE` PEM blocks.
    pub fn chain_pem(&self) -> Result<String, CertsError> {
        Ok(pem_encode(CERT_LABEL, &self.cert_der)? + &pem_encode(CERT_LABEL, &self.ca_der)?)
    }

    /// The private key as an unencrypted PKCS#8 `PRIVATE KEY` PEM block: a
    /// server starts unattended, so the file's permissions protect it.
    pub fn key_pem(&self) -> Result<Zeroizing<String>, CertsError> {
        pem_encode("PRIVATE KEY", &self.key_pkcs8).map(Zeroizing::new)
    }

    /// Writes the chain to `cert_path` and the key to `key_path`, both
    /// new files with mode 0600. Never overwrites: fails, writing nothing,
    /// if either exists.
    pub fn write(&self, cert_path: &Path, key_path: &Path) -> Result<(), CertsError> {
        for path in [cert_path, key_path] {
            check_new(path)?;
        }
        let chain = self.chain_pem()?;
        let key = self.key_pem()?;
        write_new(key_path, key.as_bytes())?;
        if let Err(e) = write_new(cert_path, chain.as_bytes()) {
            // A key without its certificate is of no use to anyone.
            let _ = std::fs::remove_file(key_path);
            return Err(e);
        }
        Ok(())
    }
}

/// rcgen signs the server certificate through this: the CA key signs
/// inside [`Ca`], and never leaves it.
struct CaSigner<'a>(&'a Ca);

impl PublicKeyData for CaSigner<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0.cert().key().as_bytes()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ED25519
    }
}

impl rcgen::SigningKey for CaSigner<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let signature: Signature = self.0.sign(msg);
        Ok(signature.to_bytes().to_vec())
    }
}

impl Ca {
    /// Issues a TLS server certificate for `names`: a fresh ECDSA P-256
    /// key, `name` as the common name (for people), the names as subject
    /// alternative names, `CA:FALSE`, key usage `digitalSignature`,
    /// extended key usage `serverAuth`, valid
    /// `valid_from_ms..=valid_until_ms` (Unix ms, whole seconds, rounded
    /// inwards).
    ///
    /// Refused, as device certificates are, if the CA is not valid at
    /// `now_ms` or the validity reaches outside the CA's own.
    pub fn issue_https(
        &self,
        name: &str,
        names: &HttpsNames,
        valid_from_ms: u64,
        valid_until_ms: u64,
        now_ms: u64,
    ) -> Result<HttpsCert, HttpsIssueError> {
        let ca = self.cert();
        if now_ms > ca.not_after_ms() {
            return Err(CertsError::CaExpired {
                not_after_ms: ca.not_after_ms(),
                now_ms,
            }
            .into());
        }
        if now_ms < ca.not_before_ms() {
            return Err(CertsError::CaNotYetValid {
                not_before_ms: ca.not_before_ms(),
                now_ms,
            }
            .into());
        }
        check_name(name).map_err(CertsError::InvalidName)?;
        let validity = Validity::new(valid_from_ms, valid_until_ms)?;
        if validity.from_ms < ca.not_before_ms() || validity.until_ms > ca.not_after_ms() {
            return Err(CertsError::ValidityOutsideCa {
                from_ms: valid_from_ms,
                until_ms: valid_until_ms,
                ca_not_before_ms: ca.not_before_ms(),
                ca_not_after_ms: ca.not_after_ms(),
            }
            .into());
        }

        let generate = |e: rcgen::Error| CertsError::Generate(e.to_string());
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.serial_number = Some(random_serial());
        let mut sans = Vec::with_capacity(names.dns.len() + names.ips.len());
        for dns in &names.dns {
            sans.push(SanType::DnsName(dns.clone().try_into().map_err(generate)?));
        }
        sans.extend(names.ips.iter().map(|ip| SanType::IpAddress(*ip)));
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;

        // The issuer as the CA certificate was built (`ca::ca_params`): its
        // name, so the server certificate's issuer is the CA's subject
        // byte for byte (checked below), and its key identifier method, so
        // the authority key identifier matches the CA's subject key
        // identifier (OpenSSL builds chains by it).
        let mut issuer_params = CertificateParams::default();
        let mut issuer_dn = DistinguishedName::new();
        issuer_dn.push(DnType::CommonName, ca.name());
        issuer_params.distinguished_name = issuer_dn;
        issuer_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        issuer_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = Issuer::new(issuer_params, CaSigner(self));
        let cert = params.signed_by(&key, &issuer).map_err(generate)?;
        let der = cert.der().to_vec();
        check_issued(&der, self)?;
        Ok(HttpsCert {
            cert_der: der,
            ca_der: ca.der().to_vec(),
            key_pkcs8: Zeroizing::new(key.serialize_der()),
            not_before_ms: validity.from_ms,
            not_after_ms: validity.until_ms,
        })
    }
}

/// Never hand out a certificate that does not chain to the CA: its issuer
/// must be the CA's subject, byte for byte, and the CA's signature must
/// verify.
fn check_issued(der: &[u8], ca: &Ca) -> Result<(), CertsError> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| CertError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CertError::TrailingBytes.into());
    }
    if cert.issuer().as_raw() != ca.cert().subject_der() {
        return Err(CertError::WrongIssuer.into());
    }
    check_signed_by(&cert, ca.cert().key())?;
    Ok(())
}

/// Refuses a path that exists (even as a dangling symbolic link).
fn check_new(path: &Path) -> Result<(), CertsError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Err(CertsError::AlreadyExists {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(path, e)),
    }
}
