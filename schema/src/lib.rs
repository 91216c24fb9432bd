//! Sentinel's vocabulary, shared by every other crate.
//!
//! Owns: the signed, hash-chained [`Entry`] and its deterministic CBOR
//! encoding (byte-exact, specified in `docs/protocol.md`), entry [`Body`]
//! kinds, ids, hybrid logical clocks, ed25519 signing and (batch)
//! verification, chain rules and heads, and the rules that turn sensor
//! readings into incidents ([`rules`]), and what may be asked of the
//! views ([`query`]: event search and sensor readings, one vocabulary for
//! the node's and the hub's stores and APIs).
//!
//! Never does: IO of any kind, reading the clock, randomness. Time and
//! randomness come in as arguments; a tidy test in the workspace fails if
//! this crate starts to depend on an IO crate or touch the file system,
//! network or system clock.

#![forbid(unsafe_code)]

pub mod access;
pub mod analysis;
pub mod body;
pub mod cbor;
pub mod chain;
pub mod entry;
pub mod error;
pub mod event;
pub mod geo;
pub mod heads;
pub mod hlc;
pub mod ids;
pub mod limits;
pub mod query;
pub mod redact;
pub mod role;
pub mod rules;
pub mod verify;

pub use body::{
    Body, BodyKind, EventChange, HubCheckpoint, MediaAttached, MediaType, PersonRole, ReadingValue,
    RedactedField, RedactedValue, Redaction, Revocation, RoleGrant, SensorReading,
};
pub use chain::{check_link, verify_chain, Link};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use entry::{Entry, SignError, SignedEntry, FORMAT_VERSION};
pub use error::{ChainError, ChainFault, ClockError, DecodeError, VerifyError};
pub use event::{
    check_change, EventDoc, EventEdit, EventError, EventView, MediaRef, NewEvent, Note,
    ParseStatusError, Status,
};
pub use geo::{BBox, BBoxError, Bounds, Point, PointError};
pub use heads::{Head, Heads};
pub use hlc::{Clock, Hlc};
pub use ids::{AuthorId, EntryId, EventId, ParseIdError};
pub use role::{DeviceRole, ParseRoleError};
pub use verify::{verify_all, verify_signatures, Rejected, VerifiedEntry};

/// The author id of a signing key.
pub fn author_of(key: &SigningKey) -> AuthorId {
    AuthorId(key.verifying_key().to_bytes())
}
