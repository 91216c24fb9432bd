//! The ui crate's one store: the operator's MBTiles file ([`mbtiles`]),
//! read-only. The only place in this crate with SQL (invariant 10).
//!
//! Never does: write to a file, or answer HTTP (`crate::tiles` does).

pub mod mbtiles;
