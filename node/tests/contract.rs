//! The sync store contract, run against the node's SpatiaLite store (the
//! same suite the in-memory store and, later, the hub's store pass).

use std::cell::RefCell;

use sentinel_node::store::Store;
use tempfile::TempDir;

#[test]
fn the_spatialite_store_keeps_the_sync_store_contract() {
    let dirs: RefCell<Vec<TempDir>> = RefCell::new(Vec::new());
    sentinel_sync::contract::run_contract_suite(|| {
        let dir = TempDir::new().unwrap();
        let store = Store::create(&dir.path().join("node.sqlite")).unwrap();
        dirs.borrow_mut().push(dir);
        store
    });
}
