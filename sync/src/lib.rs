//! Sentinel's sync protocol.
//!
//! Owns: a sans-IO session state machine (messages in, actions out; no
//! sockets, no clock reads, no SQL), heads reconciliation, batching and
//! acknowledgements, the [`SyncStore`] trait with an in-memory
//! implementation and its contract test suite, and a thin QUIC (quinn)
//! driver.
//!
//! Never does: SQL, or knowing whether it runs in a node or a hub.

#![forbid(unsafe_code)]

pub mod store;

pub use store::{ApplyReport, SyncStore};
