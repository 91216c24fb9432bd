//! The hub crate's one integration test binary: every module shares one
//! throwaway PostgreSQL server (`sentinel_hub::testing`), each test gets a
//! fresh database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actions;
mod admission;
mod api;
mod audit;
mod backup;
mod bundle;
mod checkpoints;
mod contract;
mod devices;
mod e2e;
mod feed;
mod fleet;
mod https;
mod ingest;
mod log;
mod media;
mod nodes;
mod postgis;
mod project;
mod receipts;
mod redaction;
mod sensors;
mod webhooks;

use sentinel_hub::testing::TestDatabase;
use sentinel_hub::PgStore;
use sentinel_schema::{verify_all, SignedEntry, VerifiedEntry};

pub const NOW: u64 = 1_790_000_000_000;

/// A fresh database and a store opened on it (migrations applied).
pub async fn fresh_store() -> (TestDatabase, PgStore) {
    let db = TestDatabase::create().await.expect("a test database");
    let store = db.open_store().await.expect("the store opens");
    (db, store)
}

pub fn verified(entries: &[SignedEntry]) -> Vec<VerifiedEntry> {
    let (good, bad) = verify_all(entries.to_vec());
    assert!(bad.is_empty(), "test entries verify");
    good
}
