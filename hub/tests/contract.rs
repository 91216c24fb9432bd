//! The `SyncStore` contract suite against the blocking adapter, each check
//! on a fresh database of a real PostgreSQL with PostGIS.

use std::cell::RefCell;

use sentinel_hub::testing::TestDatabase;
use sentinel_hub::PgSyncStore;
use sentinel_sync::contract::run_contract_suite;

#[test]
fn pg_sync_store_passes_the_contract_suite() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Kept until the suite ends: on an external server, dropping one
    // drops its database.
    let databases = RefCell::new(Vec::new());
    run_contract_suite(|| {
        let db = runtime.block_on(TestDatabase::create()).unwrap();
        let store = runtime.block_on(db.open_store()).unwrap();
        databases.borrow_mut().push(db);
        PgSyncStore::new(store, runtime.handle().clone())
    });
}

/// The adapter also works when the protocol calls it from inside a task
/// of a multi-thread runtime, as the QUIC driver does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_sync_store_works_inside_a_runtime() {
    use sentinel_sync::testing::{chain, key, reading};
    use sentinel_sync::SyncStore;

    let (_db, store) = crate::fresh_store().await;
    let mut sync = PgSyncStore::new(store, tokio::runtime::Handle::current());
    let log = chain(&key(40), 3, reading);
    let report = sync.apply(crate::verified(&log), crate::NOW).unwrap();
    assert_eq!(report.applied, 3);
    assert_eq!(sync.heads().unwrap().n_entries(), 3);
}
