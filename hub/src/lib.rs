//! The regional hub.
//!
//! Owns: the PostgreSQL/PostGIS store of the entry log and its views
//! ([`store::PgStore`], async and pooled, with bulk ingest through binary
//! `COPY`; every SQL statement of the hub lives there), its blocking face
//! for the sync protocol ([`store::PgSyncStore`], a
//! [`sentinel_sync::SyncStore`]), the versioned migrations that shape the
//! database, and the hub's parts around it:
//!
//! - the network: what the sync server's connections share ([`net`]), the
//!   QUIC sync server for many nodes at once with live relay ([`server`]),
//!   the two-way exchange of media blobs with nodes, kept in a folder on
//!   disk ([`media`]);
//! - the projector task that keeps the views following the log and says
//!   which events changed ([`projector`]);
//! - what the hub signs: its own chain ([`own`]), checkpoints of its heads
//!   ([`checkpoint`]), role grants ([`people`]), revocations it enforces
//!   ([`revocations`]);
//! - sensors: pushes over HTTP and the rules that raise events
//!   ([`sensors`]), and a sensor's own sync session ([`sensor_peer`]);
//! - webhooks: signed deliveries of event changes to other systems, from
//!   an outbox the projector fills ([`webhooks`]);
//! - the HTTP API ([`api`]): the routes both servers share
//!   (`sentinel_http::api`) over the hub's store, and the hub's own
//!   (timeline, nodes, devices, accounts, admin actions), over HTTPS if
//!   configured ([`https`]), by the accept loop both servers share
//!   (`sentinel_http::serve`);
//! - the audit trail for others: every verdict on an entry as a JSON
//!   line to a file, standard output or syslog for a SIEM, and signed
//!   audit bundles for auditors ([`audit`]);
//! - backup and restore: the database dumped in one snapshot with the
//!   media blobs it names, and restored into an empty database
//!   ([`backup`]);
//! - its configuration ([`config`]) and (feature `testing`) a harness that
//!   starts a throwaway PostgreSQL server for tests (`testing`).
//!
//! Modules depend one way (`use crate::…` never loops): `store` on nothing
//! of the hub; `own`, `revocations`, `projector`, `media`, `audit` and `backup` on
//! the store (`audit` and `backup` on the configuration too); `people`, `checkpoint`
//! and `sensors` on the own chain; `net` and `sensor_peer` on those;
//! `server` on the network's parts; `webhooks` on the store; `api` on the
//! store, the own chain, sensors and webhooks, never on the network (the
//! live feed is handed the projector's channel). The one clock the API reads is the
//! backend's (`sentinel_http::clock::Clock`, replaceable in tests); the
//! rest reads [`now_ms`].
//!
//! Never does: SpatiaLite; depend on the node crate.

#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod backup;
pub mod checkpoint;
pub mod config;
pub mod https;
pub mod media;
pub mod net;
pub mod own;
pub mod people;
pub mod projector;
pub mod revocations;
pub mod sensor_peer;
pub mod sensors;
pub mod server;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod webhooks;

pub use store::{PgStore, PgSyncStore, StoreError};

/// The wall clock in Unix milliseconds (0 before 1970), for everything
/// but the API (whose clock tests may replace: `sentinel_http::clock`).
pub fn now_ms() -> u64 {
    sentinel_http::clock::system_ms()
}
