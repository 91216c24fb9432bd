//! The schema crate's one integration test binary: the entry format and
//! the published test vectors, linked once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod format;
mod vectors;
