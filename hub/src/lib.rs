//! The regional hub.
//!
//! Owns: the PostgreSQL/PostGIS store of the entry log ([`store::PgStore`],
//! async and pooled, with bulk ingest through binary `COPY`), its blocking
//! face for the sync protocol ([`store::PgSyncStore`], a
//! [`sentinel_sync::SyncStore`]), the versioned migrations that shape the
//! database, the projector that derives the PostGIS views from the log
//! ([`store::project`]), the QUIC sync server for many nodes at once with
//! live relay between them and the two-way exchange of media blobs with
//! them, kept in a folder on disk ([`server`], [`store::media`]), signed
//! checkpoints of its heads ([`checkpoint`]), its configuration
//! ([`config`]), the hub's own chain of entries it signs ([`own`]),
//! accounts, tokens and roles ([`people`]), the admin API ([`api`],
//! bearer tokens, the authorisation matrix of `sentinel_schema::access`),
//! and (feature `testing`) a harness that starts a throwaway PostgreSQL
//! server for tests, the live feed ([`api::Feed`]), `/metrics`, rate
//! limits and CORS (through `sentinel_http::ops`), the API over HTTPS
//! ([`https`]). Still to come: OpenAPI, exports beyond GeoJSON.
//!
//! Never does: SpatiaLite; depend on the node crate.

#![forbid(unsafe_code)]

pub mod api;
pub mod checkpoint;
pub mod config;
pub mod https;
pub mod own;
pub mod people;
pub mod revocations;
pub mod sensors;
pub mod server;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use store::{PgStore, PgSyncStore, StoreError};

/// The wall clock in Unix milliseconds (0 before 1970).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
