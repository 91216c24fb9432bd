//! The regional hub.
//!
//! Owns: the PostgreSQL/PostGIS store of the entry log ([`store::PgStore`],
//! async and pooled, with bulk ingest through binary `COPY`), its blocking
//! face for the sync protocol ([`store::PgSyncStore`], a
//! [`sentinel_sync::SyncStore`]), the versioned migrations that shape the
//! database, and (feature `testing`) a harness that starts a throwaway
//! PostgreSQL server for tests. Still to come: many concurrent sync
//! sessions, the projector filling the views, signed checkpoints, the admin
//! HTTP API, live feed and exports.
//!
//! Never does: SpatiaLite; depend on the node crate.

#![forbid(unsafe_code)]

pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use store::{PgStore, PgSyncStore, StoreError};
