//! The field node: one self-contained program an officer runs on a laptop
//! or rugged device, fully usable with no network.
//!
//! Owns: one SpatiaLite file holding the entry log, heads, Automerge
//! documents and materialised views ([`store`], where all of its SQL
//! lives); an in-memory R-tree for map queries ([`spatial`]);
//! content-addressed media blobs ([`media`]); the officer's HTTP API
//! ([`http`], on the contract both servers share, `sentinel_http::api`);
//! sync with peers ([`net`], [`net_media`]); sensor pushes and rules
//! ([`sensors`], [`rules`]); and the CLI. Every local action becomes a
//! signed entry, committed with its views in one transaction before it is
//! acknowledged ([`node`]).
//!
//! Never does: PostgreSQL; depend on the hub crate.

pub mod background;
pub mod clock;
pub mod dial;
pub mod error;
pub mod files;
pub mod http;
pub mod media;
pub mod net;
pub mod net_media;
mod net_session;
pub mod node;
pub mod revocations;
pub mod roles;
pub mod rules;
pub mod sensors;
pub mod snapshot;
pub mod spatial;
pub mod spatialite;
pub mod sqlfn;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transfer;
mod views;
