//! The root package's one integration test binary: the end-to-end runs of
//! the examples and the architecture rules, linked once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod demo;
mod sensor_example;
mod tidy;
