//! The node's integration tests, as one test binary (one link for CI):
//! real SpatiaLite stores, real QUIC with real certificates, the real
//! router and, where a test says so, the built `sentinel-node` binary.
//!
//! - [`cli`], [`cli_user`]: the command line as an officer uses it;
//!   [`cli_bundle`]: verifying a hub's audit bundle with only the CA;
//!   [`cli_files`]: its exports and imports (KML, CSV with mapped names).
//! - [`contract`]: the sync store contract on the SpatiaLite store.
//! - [`crash`]: SIGKILL during a bulk import loses nothing acknowledged.
//! - [`http`]: the HTTP API (the shared contract and the node's own
//!   routes), through the router and over real sockets.
//! - [`media_sync`]: media blobs between peers.
//! - [`node`]: the node's operations, views and search.
//! - [`receipts`]: hub receipts and the outbox.
//! - [`redaction`]: a hub's signed redactions masking the views and
//!   erasing blobs for good.
//! - [`sync`]: sync between nodes over QUIC.
//!
//! Shared test support is `sentinel_node::testing` (enrolled peers,
//! `serve` on loopback, bounded syncs) and `sentinel_certs::testing` (a
//! deployment CA, identities, the clock).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backlog;
mod cli;
mod cli_bundle;
mod cli_files;
mod cli_user;
mod contract;
mod crash;
mod http;
mod media_sync;
mod node;
mod receipts;
mod redaction;
mod sync;
