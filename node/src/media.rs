//! Content-addressed media blobs (photos, videos) in a folder beside the
//! database (`media/`, with unfinished downloads under `media/partial/`).
//!
//! The store itself lives in `sentinel-sync` ([`sentinel_sync::blobs`]) so
//! the hub keeps its blobs exactly the same way; this module names it for
//! the node's code.

pub use sentinel_sync::blobs::{sniff, MediaError, MediaStore, StoredMedia};
