//! Sentinel's sync protocol.
//!
//! Owns: a sans-IO session state machine ([`Session`]: frames in, frames
//! and events out; no sockets, no clock reads, no SQL), the wire messages
//! ([`message`], byte-exact in `docs/protocol.md` part 2), heads
//! reconciliation, batching and acknowledgements, the [`SyncStore`] trait
//! with an in-memory implementation ([`MemoryStore`]) and its contract
//! test suite, the [`TrustAnchor`] seam for certificates and revocation
//! lists (with [`ca_trust::CaTrust`] over the deployment CA), the
//! quarantine's reasons ([`RejectReason`]), and (feature `quic`, on by
//! default) a thin QUIC driver in [`quic`], the gate in front of a sync
//! port in [`admission`] (Retry, caps, slots for verified peers only),
//! media streams in
//! [`quic_media`] and the content-addressed blob folder node and hub share
//! in [`blobs`], and a bandwidth cap per link shared by a session and its
//! media ([`quic_pace::Pace`], over the clockless bucket of [`pace`]).
//! Sensor push ([`push`]) checks and applies the entries a
//! sensor sends over HTTP, for node and hub routes. [`compress`] seals
//! and opens compressed frames, as both peers' Hellos agree. [`progress`] turns
//! a session's counts into a rate and a time left, for people. [`bundle`]
//! (feature `quic`) writes and verifies signed audit bundles, the export a
//! hub hands an auditor who holds only the CA's certificate.
//!
//! Never does: SQL, IO or clock reads outside the files the tidy test
//! (`tests/tidy.rs`) names one by one (the QUIC drivers, the media
//! transport, the blob folder and the one clock), or knowing whether it
//! runs in a node or a hub. The tidy test fails if that changes, and if
//! the files' imports ever form a loop.

#![forbid(unsafe_code)]

#[cfg(feature = "quic")]
pub mod admission;
#[cfg(feature = "quic")]
pub mod blobs;
#[cfg(feature = "quic")]
pub mod bundle;
#[cfg(feature = "quic")]
pub mod ca_trust;
mod cbor;
pub mod checkpoint;
#[cfg(feature = "quic")]
mod clock;
pub mod compress;
mod context;
#[cfg(any(test, feature = "testing"))]
pub mod contract;
mod exchange;
mod handshake;
pub mod memory;
pub mod message;
mod message_error;
pub mod pace;
pub mod progress;
pub mod push;
#[cfg(feature = "quic")]
pub mod quic;
#[cfg(feature = "quic")]
pub mod quic_media;
#[cfg(feature = "quic")]
pub mod quic_pace;
#[cfg(feature = "quic")]
mod quic_read;
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
pub use message::{
    CloseCode, Frame, FrameEncodings, Hello, Message, MessageError, PROTOCOL_VERSION,
};
pub use progress::{Estimate, Eta};
#[cfg(feature = "quic")]
pub use quic_pace::Pace;
pub use reject::{Quarantined, RejectReason, Rejection, UnknownReasonCode};
pub use session::{Session, SessionConfig, SessionError, SessionEvent, SessionStats};
pub use store::{ApplyReport, SyncStore};
pub use trust::{AuthorInfo, Revocations, TrustAnchor};
pub use verify::Refusal;
