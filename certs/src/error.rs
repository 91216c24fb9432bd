//! The crate's error types, one per kind of operation:
//!
//! - [`CertError`]: a presented certificate (or the handshake around it) is
//!   refused. Pure verdicts, no IO; tests assert on exact variants.
//! - [`RevocationError`]: a revocation list cannot be signed or is refused.
//! - [`CertsError`]: an operation on keys, files and the CA failed (create,
//!   save, load, issue, export, open, build a TLS configuration).

use std::io;
use std::path::PathBuf;

use sentinel_schema::AuthorId;

/// Why a presented certificate, or a peer in a handshake, is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The bytes are not a DER-encoded X.509 certificate.
    #[error("not a DER X.509 certificate: {0}")]
    Malformed(String),
    /// Bytes follow the certificate; a certificate is exactly one DER value.
    #[error("bytes follow the certificate")]
    TrailingBytes,
    /// Only X.509 version 3 certificates carry the extensions we rely on.
    #[error("certificate is not X.509 version 3")]
    NotVersion3,
    /// A signature algorithm or key that must be ed25519 is something else.
    #[error("the certificate's {field} is not ed25519")]
    NotEd25519 {
        /// Which field: `signature algorithm` or `public key`.
        field: &'static str,
    },
    /// The subject key is not a valid ed25519 public key.
    #[error("the certificate's public key is not a valid ed25519 key")]
    BadPublicKey,
    /// The certificate names an issuer other than the deployment CA.
    #[error("the certificate was not issued by this deployment's CA")]
    WrongIssuer,
    /// The CA's signature over the certificate does not verify.
    #[error("the CA signature on the certificate does not verify")]
    BadSignature,
    /// A CA certificate was presented where a device identity belongs.
    #[error("a CA certificate cannot be a device identity")]
    IsCa,
    /// A certificate loaded as the deployment CA is not a CA certificate
    /// (basic constraints `CA:TRUE` and key usage `keyCertSign`).
    #[error("not a CA certificate: {0}")]
    NotCa(&'static str),
    /// A certificate loaded as the deployment CA is not signed by its own
    /// key.
    #[error("the CA certificate is not self-signed")]
    NotSelfSigned,
    /// The subject has no common name, or more than one.
    #[error("the certificate subject must hold exactly one common name")]
    MissingName,
    /// The common name is not an acceptable device name.
    #[error("bad certificate name: {0}")]
    BadName(&'static str),
    /// No `sentinel:role:` URI in the subject alternative names.
    #[error("the certificate names no sentinel role")]
    MissingRole,
    /// More than one `sentinel:role:` URI; a device has exactly one role.
    #[error("the certificate names more than one sentinel role")]
    MultipleRoles,
    /// A `sentinel:role:` URI names a role we do not know.
    #[error("unknown role {0:?} in certificate (expected hub, node or sensor)")]
    UnknownRole(String),
    /// The validity period is inverted or before 1970.
    #[error("the certificate's validity period is invalid")]
    BadValidity,
    /// A critical extension we do not understand; RFC 5280 says refuse.
    #[error("unhandled critical extension {0}")]
    UnknownCriticalExtension(String),
    /// The key usage extension does not allow signatures, so the key could
    /// not sign a TLS handshake.
    #[error("the certificate's key usage does not allow digital signatures")]
    NoDigitalSignature,
    /// The peer presented no certificate.
    #[error("no certificate was presented")]
    NoCertificate,
    /// The certificate expired before the time it was judged at.
    #[error("certificate expired at {not_after_ms} ms, judged at {now_ms} ms")]
    Expired { not_after_ms: u64, now_ms: u64 },
    /// The certificate is not valid yet at the time it was judged at.
    #[error("certificate is valid from {not_before_ms} ms, judged at {now_ms} ms")]
    NotYetValid { not_before_ms: u64, now_ms: u64 },
    /// The peer's key is in the revocation list.
    #[error("key {author} is revoked (entries up to seq {last_valid_seq} stay valid)")]
    Revoked {
        author: AuthorId,
        last_valid_seq: u64,
    },
    /// Under [`crate::FreshnessPolicy::MaxAge`], our own revocation list is
    /// older than allowed, so we refuse every peer until a fresh list is
    /// loaded.
    #[error(
        "our revocation list was issued at {issued_ms} ms, more than {max_age_ms} ms before {now_ms} ms: load a fresh list"
    )]
    StaleRevocationList {
        issued_ms: u64,
        now_ms: u64,
        max_age_ms: u64,
    },
}

/// Why a revocation list cannot be signed, or is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// The document is larger than any list may be; checked before decoding.
    #[error("revocation list is {len} bytes, more than the limit of {max}")]
    TooLarge { len: usize, max: usize },
    /// The bytes do not follow the list format.
    #[error("malformed revocation list: {0}")]
    Malformed(&'static str),
    /// The bytes decode, but are not the one canonical encoding of the list,
    /// so two nodes could disagree about what was signed.
    #[error("revocation list is not canonically encoded")]
    NotCanonical,
    /// The CA's signature over the list does not verify (tampered, or signed
    /// by another CA).
    #[error("the CA signature on the revocation list does not verify")]
    BadSignature,
    /// More entries than a list may hold.
    #[error("revocation list has {n} entries, more than the limit of {max}")]
    TooManyEntries { n: usize, max: usize },
    /// A reason longer than allowed.
    #[error("revocation reason is {len} bytes, more than the limit of {max}")]
    ReasonTooLong { len: usize, max: usize },
    /// The same key appears twice; a list names each key at most once.
    #[error("key {0} appears twice in the revocation list")]
    DuplicateKey(AuthorId),
    /// Keys in a signed list must be in strictly ascending order.
    #[error("revocation list entries are not sorted by key")]
    Unsorted,
}

/// Why an operation on keys, files, the CA or a TLS configuration failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertsError {
    /// A file this operation needs does not exist.
    #[error("{} does not exist", path.display())]
    NotFound { path: PathBuf },
    /// The file exists already; keys, certificates and bundles are never
    /// overwritten.
    #[error("{} exists already; refusing to overwrite it", path.display())]
    AlreadyExists { path: PathBuf },
    /// Reading or writing a file failed for another reason.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is larger than any file of its kind.
    #[error("{} is larger than {limit} bytes; not a Sentinel file", path.display())]
    FileTooLarge { path: PathBuf, limit: u64 },
    /// The file does not have the layout it should (PEM blocks, labels).
    #[error("{}: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    /// The password does not decrypt the key.
    #[error("wrong password")]
    WrongPassword,
    /// An empty password was given; keys are never stored unprotected.
    #[error("the password is empty")]
    EmptyPassword,
    /// The key file holds an unencrypted private key; we only accept
    /// password-protected keys.
    #[error("{} holds an unencrypted private key; keys must be encrypted", path.display())]
    KeyNotEncrypted { path: PathBuf },
    /// The file (or bundle section) decrypts, but does not hold an ed25519
    /// private key.
    #[error("{} does not hold an ed25519 private key: {reason}", path.display())]
    NotAKey { path: PathBuf, reason: &'static str },
    /// The key is encrypted with a scheme, or a work factor, we do not
    /// accept (PBES1, or parameters that would exhaust memory).
    #[error("{}: unsupported key encryption: {reason}", path.display())]
    UnsupportedKeyEncryption { path: PathBuf, reason: &'static str },
    /// A private key does not belong to the certificate it came with.
    #[error("the private key does not match the certificate")]
    KeyMismatch,
    /// The CA certificate has expired: it can no longer issue.
    #[error("the CA expired at {not_after_ms} ms (now {now_ms} ms)")]
    CaExpired { not_after_ms: u64, now_ms: u64 },
    /// The CA certificate is not valid yet (check this machine's clock).
    #[error("the CA is valid from {not_before_ms} ms (now {now_ms} ms)")]
    CaNotYetValid { not_before_ms: u64, now_ms: u64 },
    /// The requested validity is empty, inverted or outside what X.509 can
    /// express.
    #[error("invalid validity period {from_ms}..{until_ms} ms")]
    InvalidValidity { from_ms: u64, until_ms: u64 },
    /// The requested validity reaches outside the CA's own.
    #[error(
        "validity {from_ms}..{until_ms} ms lies outside the CA's validity {ca_not_before_ms}..{ca_not_after_ms} ms"
    )]
    ValidityOutsideCa {
        from_ms: u64,
        until_ms: u64,
        ca_not_before_ms: u64,
        ca_not_after_ms: u64,
    },
    /// The CA or device name is not acceptable.
    #[error("invalid name: {0}")]
    InvalidName(&'static str),
    /// A device would get the CA's own key; the CA key signs nothing else.
    #[error("the CA key cannot be a device identity")]
    CaKeyReused,
    /// A certificate failed verification.
    #[error(transparent)]
    Certificate(#[from] CertError),
    /// A revocation list failed verification or cannot be signed.
    #[error(transparent)]
    Revocation(#[from] RevocationError),
    /// Building a certificate failed inside rcgen.
    #[error("could not build the certificate: {0}")]
    Generate(String),
    /// Encoding a key or certificate (PKCS#8, PEM) or encrypting a key
    /// failed.
    #[error("could not encode: {0}")]
    Encoding(String),
    /// rustls refused the configuration.
    #[error("could not build the TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}
