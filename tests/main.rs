//! The root package's one integration test binary: the end-to-end runs of
//! the examples, the one HTTP contract of node and hub, the fleet on bad
//! networks (`netem`) and killed mid-ingest (`kill`), and the
//! architecture rules, linked once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_contract;
mod demo;
mod fleet;
mod kill;
mod netem;
mod powerloss;
mod sensor_example;
mod tidy;
mod ui;
