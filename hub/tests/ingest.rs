//! Bulk ingest through binary COPY: a batch of 10,000 verified entries
//! lands in one transaction, or not at all.

use std::time::Instant;

use sentinel_hub::StoreError;
use sentinel_schema::SignedEntry;
use sentinel_sync::testing::{chain, key, reading};
use tokio_postgres::error::SqlState;

use crate::{fresh_store, verified, NOW};

const N: u64 = 10_000;

async fn count(store: &sentinel_hub::PgStore, table: &str) -> i64 {
    store
        .client()
        .await
        .unwrap()
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

fn sql_state(e: &StoreError) -> Option<&SqlState> {
    match e {
        StoreError::Db(db) => db.code(),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_entries_land_in_one_batch() {
    let (_db, store) = fresh_store().await;
    let log = chain(&key(30), N, reading);
    let batch = verified(&log);
    let started = Instant::now();
    let report = store.apply(batch, NOW).await.unwrap();
    eprintln!("applied {N} entries in {:?}", started.elapsed());
    assert_eq!(report.applied, N as usize);
    assert_eq!(report.max_hlc, Some(log[N as usize - 1].entry().hlc));
    assert_eq!(count(&store, "entries").await, N as i64);
    let author = log[0].author();
    let head = store.head(&author).await.unwrap().unwrap();
    assert_eq!((head.seq, head.id), (N, log[N as usize - 1].id()));
    assert_eq!(
        store
            .entries_after(&author, N - 3, 10, usize::MAX)
            .await
            .unwrap(),
        log[N as usize - 3..].to_vec(),
        "the bytes come back exactly"
    );
}

/// The log refuses a row halfway through the `INSERT … SELECT` (an entry
/// id already held, planted under another author): the whole batch, heads
/// included, is rolled back, and the next batch goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_failing_halfway_leaves_nothing() {
    let (_db, store) = fresh_store().await;
    let log = chain(&key(31), N, reading);
    let planted = &log[5_000];
    store
        .client()
        .await
        .unwrap()
        .execute(
            "INSERT INTO entries (author, seq, id, hlc_ms, hlc_counter, kind, bytes, received_ms)
             VALUES ($1, 1, $2, 0, 0, 3, $3, 0)",
            &[
                &[9u8; 32].as_slice(),
                &planted.id().0.as_slice(),
                &planted.as_bytes(),
            ],
        )
        .await
        .unwrap();

    let err = store.apply(verified(&log), NOW).await.unwrap_err();
    assert_eq!(sql_state(&err), Some(&SqlState::UNIQUE_VIOLATION), "{err}");
    assert_eq!(count(&store, "entries").await, 1, "only the planted row");
    assert_eq!(count(&store, "heads").await, 0, "heads did not move");
    assert_eq!(count(&store, "quarantine").await, 0);
    assert_eq!(store.head(&log[0].author()).await.unwrap(), None);

    store
        .client()
        .await
        .unwrap()
        .execute("DELETE FROM entries", &[])
        .await
        .unwrap();
    let report = store.apply(verified(&log), NOW).await.unwrap();
    assert_eq!(
        report.applied, N as usize,
        "the same batch then lands whole"
    );
    assert_eq!(count(&store, "entries").await, N as i64);
}

/// The staging table itself refuses a batch naming one entry twice,
/// during the COPY: nothing of the batch remains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_id_in_staging_fails_the_copy() {
    let (_db, store) = fresh_store().await;
    let log = chain(&key(32), N, reading);
    let mut batch: Vec<SignedEntry> = log.clone();
    batch.insert(5_001, log[5_000].clone());
    let err = store
        .danger_append_unchecked(&batch, NOW)
        .await
        .unwrap_err();
    assert_eq!(sql_state(&err), Some(&SqlState::UNIQUE_VIOLATION), "{err}");
    assert_eq!(count(&store, "entries").await, 0);
    assert_eq!(count(&store, "heads").await, 0);

    // The pool's connections (and their staging tables) still work.
    for _ in 0..3 {
        let _ = store
            .danger_append_unchecked(&batch, NOW)
            .await
            .unwrap_err();
    }
    let report = store.apply(verified(&log), NOW).await.unwrap();
    assert_eq!(report.applied, N as usize);
}
