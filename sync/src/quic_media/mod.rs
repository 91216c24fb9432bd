//! Media blobs over QUIC: content-addressed, chunked, resumable from an
//! offset, and verified by the receiver before anything becomes visible
//! (`docs/protocol.md` 2.10).
//!
//! Blobs travel on their own connection, told apart from a session's
//! connection by ALPN ([`MEDIA_ALPN`] instead of `sentinel/1`), so they
//! never share a stream, a read-ahead channel or a close with a session:
//! the session driver in [`crate::quic`] owns its connection and closes it
//! when it is done.
//!
//! A media connection is two-way ([`exchange_blobs`]): either side opens
//! one bidirectional stream per blob it wants, starting with the stream
//! type byte [`BLOB_STREAM`] and a fixed-size request (hash, offset); the
//! other side answers with a fixed-size header and length-prefixed chunks,
//! then finishes the stream. A side that has fetched all it wanted says so
//! on one more bidirectional stream holding the type byte [`DONE_STREAM`],
//! which the peer answers by finishing its half; once both sides are done
//! (or the peer has been silent for [`PEER_IDLE`]) the connection is
//! closed.
//!
//! The type byte also keeps the door open for carrying blob streams on a
//! session connection later: a session stream starts with the 4-byte
//! length of its first frame, whose first byte is always `0x00` (frames are
//! far below 16 MiB), never [`BLOB_STREAM`] or [`DONE_STREAM`].
//!
//! The receiver trusts nothing the peer says: the size must be the one the
//! signed `media_attached` entry announced, no more than the missing bytes
//! may arrive, and [`BlobStore::finish_partial`] checks the SHA-256 (and
//! whatever else the store checks) before the blob is stored.
//!
//! [`crate::blobs`] is the store both the node and the hub use: a folder of
//! content-addressed files with resumable, verified downloads, behind the
//! [`BlobStore`] seam this transport reads and writes through.
//!
//! Resuming works across connections and sessions: what a broken stream
//! delivered stays in the store's partial download, and the next fetch of
//! that blob, on whatever connection, asks only for the rest. Entries come
//! before media: a caller starts the exchange once its session caught up,
//! and under one link's cap ([`crate::quic_pace::Pace`], in
//! [`MediaOptions`]) blob bytes hold back while the session has frames
//! waiting.
//!
//! Sensors exchange no media ([`may_exchange_media`]): a server closes a
//! media connection of a peer whose certificate says sensor
//! ([`refuse_media`]) before serving or fetching anything, and a node
//! opens none to such a peer.
//!
//! The files: `wire.rs`, the protocol's bytes and the receiver's checks,
//! without IO; `connect.rs`, media connections; `serve.rs` and `fetch.rs`,
//! the two halves; `exchange.rs`, both on one connection. Never does: pick
//! the blobs to fetch, or run a sync session.

mod connect;
mod exchange;
mod fetch;
mod serve;
#[cfg(test)]
mod tests;
mod wire;

pub use crate::blobs::BlobStore;
pub use connect::{
    connect_media, is_media_connection, may_exchange_media, refuse_media, with_media_alpn,
    CLOSE_NOT_ALLOWED,
};
pub use exchange::{
    exchange_blobs, exchange_blobs_opts, exchange_blobs_with, MediaOptions, MediaProgress,
    CLOSE_DONE, PEER_IDLE,
};
pub use fetch::{
    bytes_to_fetch, fetch_blobs, FetchError, FetchReport, Fetched, PeerEnd, MAX_CONCURRENT_FETCHES,
};
pub use serve::{serve_blobs, serve_blobs_paced};
pub use wire::{
    BlobRequest, Receiving, Response, WireError, BLOB_STREAM, CHUNK_BYTES, DONE_STREAM,
    HEADER_BYTES, MEDIA_ALPN, REQUEST_BYTES,
};
