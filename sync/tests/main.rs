//! The sync crate's one integration test binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bundle_vectors;
mod checkpoints;
mod contract;
mod encodings;
mod faults;
mod harness;
mod peers;
mod pipeline;
mod receipts;
mod refusals;
mod sensor_vectors;
mod session;
mod sim;
mod thin;
mod tidy;
mod vectors;
