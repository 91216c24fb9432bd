//! Sentinel's PKI.
//!
//! Owns: the offline deployment CA (ed25519); issuing hub, node and sensor
//! identities whose certificate key *is* the entry-signing key, with the
//! role in the certificate; CA-signed revocation lists that name the last
//! valid seq of each revoked author; encrypted key files and enrollment
//! bundles; TLS server certificates for the hub's HTTPS API (ECDSA P-256,
//! signed by the CA); and the rustls client/server configurations (TLS 1.3
//! only, ALPN `sentinel/1`, mutual authentication against the deployment
//! CA, revocation checked at every handshake).
//!
//! Never does: storage of entries, sync logic. Reads no clock: times come
//! in as Unix milliseconds, except the handshake time rustls supplies
//! (replaceable with `*_with_time`) and the `sentinel-certs` binary, which
//! reads the clock at its edge (and the `testing` feature, whose test CA is
//! valid around now). See `docs/security.md`.

#![forbid(unsafe_code)]

mod bundle;
mod ca;
mod ca_cert;
mod cbor;
mod enrollment;
mod error;
mod files;
mod handle;
mod https;
mod identity;
mod keyfile;
mod revocation;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;
mod x509;

pub use bundle::{Bundle, BundleSummary, BUNDLE_HEADER};
pub use ca::{Ca, CA_CERT_FILE, CA_KEY_FILE, REVOCATIONS_FILE};
pub use ca_cert::{read_cert_file, CaCert};
pub use enrollment::Enrollment;
pub use error::{CertError, CertsError, RevocationError};
pub use handle::{EntryRevocationAdded, Offered, RevocationHandle};
pub use https::{HttpsCert, HttpsIssueError, HttpsNames, MAX_HTTPS_NAMES};
pub use identity::{verify_identity, Identity, IdentityCert, ROLE_URI_PREFIX};
pub use keyfile::{read_key_file, write_key_file, Password};
pub use revocation::{
    read_signed_list, write_signed_list, RevocationList, Revoked, MAX_LIST_BYTES, MAX_REASON_BYTES,
    MAX_REVOKED,
};
pub use tls::{
    client_config, client_config_with_time, peer_identity, server_config, server_config_with_time,
    FreshnessPolicy, ALPN,
};
pub use x509::MAX_NAME_BYTES;

/// Re-exported so callers name the same types this crate's API uses.
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use sentinel_schema::{AuthorId, DeviceRole};
