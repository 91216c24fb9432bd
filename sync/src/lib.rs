//! Sentinel's sync protocol (filled by the issue "Certificates and
//! peer-to-peer sync").
//!
//! Will own: a sans-IO session state machine (messages in, actions out; no
//! sockets, no clock reads, no SQL), heads reconciliation, batching and
//! acknowledgements, the `SyncStore` trait with an in-memory
//! implementation and its contract test suite, and a thin QUIC (quinn)
//! driver.
//!
//! Never does: SQL, or knowing whether it runs in a node or a hub.

#![forbid(unsafe_code)]
