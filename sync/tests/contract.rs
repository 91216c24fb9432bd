//! The `SyncStore` contract suite against the in-memory store.

use sentinel_sync::contract::run_contract_suite;
use sentinel_sync::MemoryStore;

#[test]
fn memory_store_keeps_the_contract() {
    run_contract_suite(MemoryStore::new);
    run_contract_suite(MemoryStore::with_event_view);
}
