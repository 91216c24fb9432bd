//! The field node: one self-contained program an officer runs on a laptop
//! or rugged device, fully usable with no network.
//!
//! Owns: one SpatiaLite file holding the entry log, heads, Automerge
//! documents and materialised views ([`store`]); an in-memory R-tree for
//! map queries ([`spatial`]); content-addressed media blobs ([`media`]);
//! the officer's HTTP API ([`http`]); and the CLI. Every local action
//! becomes a signed entry, committed with its views in one transaction
//! before it is acknowledged ([`node`]).
//!
//! Never does: PostgreSQL; depend on the hub crate.

pub mod http;
pub mod media;
pub mod net;
pub mod net_media;
pub mod node;
pub mod sensors;
pub mod spatial;
pub mod spatialite;
pub mod sqlfn;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transfer;
