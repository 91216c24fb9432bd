//! The regional hub (filled by the issue "Regional hub on PostgreSQL/PostGIS").
//!
//! Will own: the `sentinel-hub` binary — the PostgreSQL/PostGIS store of the
//! same entry log, many concurrent sync sessions, signed checkpoints, the
//! admin HTTP API, live feed and exports.
//!
//! Never does: SpatiaLite; depend on the node crate.

#![forbid(unsafe_code)]
