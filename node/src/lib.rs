//! The field node (filled by the issue "Field node").
//!
//! Will own: the `sentinel-node` binary — one SpatiaLite file holding the
//! entry log, heads, Automerge documents and materialised views; an
//! in-memory R-tree for map queries; content-addressed media blobs; the
//! local HTTP API and the CLI. Every local action becomes a signed entry,
//! committed with its views in one transaction before it is acknowledged.
//!
//! Never does: PostgreSQL; depend on the hub crate.

#![forbid(unsafe_code)]
