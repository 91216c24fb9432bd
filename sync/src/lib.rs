//! Sentinel's sync protocol.
//!
//! Owns: a sans-IO session state machine ([`Session`]: frames in, frames
//! and events out; no sockets, no clock reads, no SQL), the wire messages
//! ([`message`], byte-exact in `docs/protocol.md` part 2), heads
//! reconciliation, batching and acknowledgements, the [`SyncStore`] trait
//! with an in-memory implementation ([`MemoryStore`]) and its contract
//! test suite, the [`TrustAnchor`] seam for certificates and revocation
//! lists (with [`ca_trust::CaTrust`] over the deployment CA), and (feature
//! `quic`, on by default) a thin QUIC driver in [`quic`], media streams in
//! [`quic_media`] and the content-addressed blob folder node and hub share
//! in [`blobs`] (`quic_media::blobs`). Sensor push ([`push`]) checks and
//! applies the entries a sensor sends over HTTP, for node and hub routes.
//!
//! Never does: SQL, IO outside the `quic` and `quic_media` modules,
//! reading the clock, or knowing whether it runs in a node or a hub. A tidy test
//! (`tests/tidy.rs`) fails if that changes.

#![forbid(unsafe_code)]

#[cfg(feature = "quic")]
pub mod ca_trust;
mod cbor;
pub mod checkpoint;
mod context;
#[cfg(any(test, feature = "testing"))]
pub mod contract;
mod exchange;
mod handshake;
pub mod memory;
pub mod message;
mod message_error;
#[cfg(feature = "quic")]
pub mod quic;
#[cfg(feature = "quic")]
pub mod quic_media;
#[cfg(feature = "quic")]
pub use quic_media::blobs;
pub mod push;
mod receive;
pub mod reject;
pub mod session;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod trust;
mod verify;

pub use checkpoint::{Attestation, Attested, Breach};
pub use memory::{MemoryStore, MemoryStoreError};
pub use message::{CloseCode, Frame, Hello, Message, MessageError, PROTOCOL_VERSION};
pub use reject::{Quarantined, RejectReason, Rejection, UnknownReasonCode};
pub use session::{Session, SessionConfig, SessionError, SessionEvent, SessionStats};
pub use store::{ApplyReport, SyncStore};
pub use trust::{AuthorInfo, Revocations, TrustAnchor};
pub use verify::Refusal;
