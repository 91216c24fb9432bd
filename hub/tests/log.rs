//! Heads, `entries_after` and the chain semantics the node store shares:
//! gap release, forks as evidence, quarantine rows.

use sentinel_schema::Head;
use sentinel_sync::testing::{chain, key, media, reading, sign_after};
use sentinel_sync::RejectReason;

use crate::{fresh_store, verified, NOW};

fn head_of(e: &sentinel_schema::SignedEntry) -> Head {
    Head {
        seq: e.seq(),
        id: e.id(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_and_entries_after_follow_the_log() {
    let (_db, store) = fresh_store().await;
    let a = chain(&key(20), 30, |i| media(i, 40));
    let b = chain(&key(21), 5, reading);
    let mut both = a.clone();
    both.extend(b.clone());
    let report = store.apply(verified(&both), NOW).await.unwrap();
    assert_eq!(report.applied, 35);

    let heads = store.heads().await.unwrap();
    assert_eq!(heads.n_authors(), 2);
    assert_eq!(heads.n_entries(), 35);
    assert_eq!(heads.get(&a[0].author()), Some(head_of(&a[29])));
    assert_eq!(
        store.head(&b[0].author()).await.unwrap(),
        Some(head_of(&b[4]))
    );

    let author = a[0].author();
    assert_eq!(
        store
            .entries_after(&author, 10, 5, usize::MAX)
            .await
            .unwrap(),
        a[10..15].to_vec()
    );
    let three: usize = a[..3].iter().map(|e| e.as_bytes().len()).sum();
    assert_eq!(
        store
            .entries_after(&author, 0, 100, three + 1)
            .await
            .unwrap(),
        a[..3].to_vec(),
        "max_bytes counts signed bytes"
    );
    assert_eq!(
        store.entries_after(&author, 29, 1, 0).await.unwrap(),
        a[29..].to_vec(),
        "the first entry comes whatever its size"
    );
    assert!(store
        .entries_after(&author, u64::MAX, 1, usize::MAX)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_is_released_when_it_closes() {
    let (_db, store) = fresh_store().await;
    let log = chain(&key(22), 6, reading);
    let author = log[0].author();
    store.apply(verified(&log[..2]), NOW).await.unwrap();
    // Seq 4..6 arrive before seq 3: quarantined for the gap.
    let report = store.apply(verified(&log[3..]), NOW).await.unwrap();
    assert_eq!(report.applied, 0);
    assert_eq!(report.quarantined.len(), 3);
    assert!(report
        .quarantined
        .iter()
        .all(|q| q.reason == RejectReason::Gap));
    assert_eq!(store.head(&author).await.unwrap(), Some(head_of(&log[1])));

    let report = store.apply(verified(&log[2..3]), NOW).await.unwrap();
    assert_eq!(report.applied, 4, "seq 3 and the three it released");
    assert!(report.quarantined.is_empty());
    assert_eq!(store.head(&author).await.unwrap(), Some(head_of(&log[5])));
    assert_eq!(
        store
            .entries_after(&author, 0, 10, usize::MAX)
            .await
            .unwrap(),
        log
    );
    let client = store.client().await.unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM quarantine", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "released entries leave the quarantine");
    let positions: Vec<i64> = client
        .query("SELECT seq FROM entries ORDER BY pos", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        positions,
        vec![1, 2, 3, 4, 5, 6],
        "log order follows the chain"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_within_one_batch_is_released_by_the_same_batch() {
    let (_db, store) = fresh_store().await;
    let log = chain(&key(23), 5, reading);
    store.apply(verified(&log[..1]), NOW).await.unwrap();
    store.apply(verified(&log[2..3]), NOW).await.unwrap(); // seq 3: gap
                                                           // Seq 2 and seq 5 together: 2 closes the first gap, releasing 3; 5 is
                                                           // still one past the head and waits.
    let report = store
        .apply(verified(&[log[4].clone(), log[1].clone()]), NOW)
        .await
        .unwrap();
    assert_eq!(report.applied, 2);
    assert_eq!(report.quarantined.len(), 1);
    assert_eq!(report.quarantined[0].id, log[4].id());
    let report = store.apply(verified(&log[3..4]), NOW).await.unwrap();
    assert_eq!(report.applied, 2, "seq 4 releases seq 5");
    assert_eq!(
        store.head(&log[0].author()).await.unwrap(),
        Some(head_of(&log[4]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_is_kept_as_evidence() {
    let (_db, store) = fresh_store().await;
    let k = key(24);
    let log = chain(&k, 2, reading);
    store.apply(verified(&log), NOW).await.unwrap();
    let rival = sign_after(&k, Some(&log[0]), NOW + 1, reading(77));
    let report = store
        .apply(verified(std::slice::from_ref(&rival)), NOW)
        .await
        .unwrap();
    assert_eq!(report.forks, vec![(rival.author(), 2, rival.id())]);
    let client = store.client().await.unwrap();
    let row = client
        .query_one(
            "SELECT held_id, bytes FROM forks WHERE id = $1",
            &[&rival.id().0.as_slice()],
        )
        .await
        .unwrap();
    let held: Vec<u8> = row.get(0);
    let bytes: Vec<u8> = row.get(1);
    assert_eq!(held, log[1].id().0.to_vec());
    assert_eq!(bytes, rival.as_bytes(), "the fork's exact bytes are kept");
}

/// A hostile peer floods the hub with entries that cannot link and with
/// forks: past the evidence quota, the hub keeps a summary per author and
/// reason instead of the bytes, still reporting every refusal and fork,
/// and releasing a gap-quarantined entry gives its bytes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_past_the_quota_is_kept_as_a_summary() {
    const QUOTA: u64 = 2_000;
    let (_db, store) = fresh_store().await;
    store.set_evidence_quota(QUOTA);
    let k = key(25);
    let log = chain(&k, 40, |i| media(i, 40));
    let author = log[0].author();
    let held_bytes = || async {
        store
            .client()
            .await
            .unwrap()
            .query_one(
                "SELECT ((SELECT coalesce(sum(length(bytes)), 0) FROM quarantine)
                     + (SELECT coalesce(sum(length(bytes)), 0) FROM forks))::int8",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0) as u64
    };

    // 39 entries that cannot link: the chain's start is missing.
    let report = store.apply(verified(&log[1..]), NOW).await.unwrap();
    assert_eq!(report.quarantined.len(), 39, "every refusal is reported");
    let (bytes, _) = store.evidence_usage().await.unwrap();
    assert!(bytes <= QUOTA, "{bytes}");
    assert_eq!(held_bytes().await, bytes);
    let summary = store.evidence_summary().await.unwrap();
    assert_eq!(summary.len(), 1, "{summary:?}");
    let kept = 39 - summary[0].count;
    assert!(kept > 0 && kept < 39, "{kept}");
    assert_eq!(
        (
            summary[0].author,
            summary[0].reason_code.as_str(),
            summary[0].seq,
            summary[0].id
        ),
        (
            author,
            RejectReason::NotStartingAtOne.code(),
            40,
            log[39].id()
        )
    );

    // Forks of the chain: flagged to the session, summarized, not kept.
    store.apply(verified(&log[..2]), NOW).await.unwrap();
    let rivals: Vec<_> = (0..5)
        .map(|n| sign_after(&k, Some(&log[0]), NOW + 10 + n, reading(100 + n)))
        .collect();
    let report = store.apply(verified(&rivals), NOW).await.unwrap();
    assert_eq!(report.forks.len(), 5, "every fork is reported");
    assert_eq!(held_bytes().await, store.evidence_usage().await.unwrap().0);
    assert!(store.evidence_usage().await.unwrap().0 <= QUOTA);
    let forks: Vec<_> = store
        .evidence_summary()
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.reason_code == "fork")
        .collect();
    assert_eq!(forks.len(), 1);
    let fork_rows: i64 = store
        .client()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM forks", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        fork_rows as u64 + forks[0].count,
        5,
        "each fork kept or counted"
    );

    // A gap-quarantined entry released into the log gives its bytes back
    // (with room under a raised quota: one summarized cannot be released,
    // its peer sends it again).
    store.set_evidence_quota(QUOTA * 10);
    let other = chain(&key(26), 3, reading);
    store.apply(verified(&other[..1]), NOW).await.unwrap();
    let before = store.evidence_usage().await.unwrap().0;
    let r = store.apply(verified(&other[2..]), NOW).await.unwrap();
    assert_eq!(r.quarantined.len(), 1);
    let r = store.apply(verified(&other[1..2]), NOW).await.unwrap();
    assert_eq!(r.applied, 2);
    assert_eq!(store.evidence_usage().await.unwrap().0, before);
    assert_eq!(held_bytes().await, before);
}
