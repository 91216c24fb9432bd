//! The root package of the Sentinel workspace.
//!
//! It owns no logic: it hosts the end-to-end tests in `tests/` and the
//! runnable walk-throughs in `examples/`, which use the workspace crates
//! exactly as a deployment would.
//!
//! [`deploy`] starts a small real deployment — a hub on a throwaway
//! PostgreSQL and field nodes, each the real binary — for the demo and
//! the browser tests.

pub mod deploy;
