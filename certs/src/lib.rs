//! Sentinel's PKI (filled by the issue "Certificates and peer-to-peer sync").
//!
//! Will own: the offline deployment CA (ed25519), issuing hub, node and
//! sensor identities whose certificate key *is* the entry-signing key,
//! revocation lists (key + last valid seq), enrollment bundles, and the
//! rustls client/server configurations (TLS 1.3 only, ALPN `sentinel/1`,
//! mutual authentication against the deployment CA).
//!
//! Never does: storage of entries, sync logic.

#![forbid(unsafe_code)]
