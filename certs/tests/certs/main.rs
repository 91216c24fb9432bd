//! The integration tests of `sentinel-certs`, as one test binary: the CA,
//! identities, revocation lists, bundles, real rustls handshakes in memory,
//! and the command line.

// Test helpers panic on failure by design, as tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bundle;
mod ca;
mod cli;
mod common;
mod handshake;
mod https;
mod identity;
mod quic;
mod revocation;
