//! Signed checkpoints end to end: the hub signs its heads, a node learns
//! them through sync, and later flags the hub when it presents less than
//! it attested (a restore from an old backup) or another entry where it
//! attested one (a rewritten database). Real PostgreSQL, real QUIC, real
//! SpatiaLite nodes.

use sentinel_hub::checkpoint::Checkpointer;
use sentinel_schema::{verify_all, Body, Entry, Hlc, MediaAttached, MediaType};
use sentinel_sync::{Attestation, SyncStore};

use crate::e2e::{deployment, key, now_ms, sync, Hub, Peer};

/// Runs SQL on the hub's database, as an operator (or an attacker) with
/// database access would.
async fn tamper(hub: &Hub, sql: &str, author: &[u8]) {
    let client = hub.store.client().await.unwrap();
    client.batch_execute("BEGIN").await.unwrap();
    for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
        client.execute(statement, &[&author]).await.unwrap();
    }
    client.batch_execute("COMMIT").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_flags_a_hub_that_truncates_or_rewrites_what_it_checkpointed() {
    let ca = deployment("Sentinel checkpoint test CA", 3);
    let hub = Hub::start(&ca, 100).await;
    let n1 = Peer::new(&ca, "node-1", 31);
    let n2 = Peer::new(&ca, "node-2", 32);
    let author = key(31).verifying_key();
    let author = sentinel_schema::AuthorId(author.to_bytes());
    n1.report(1, 5);
    sync(&n1, &hub).await;

    // The hub signs its heads once; with nothing new, not again.
    let hub_author = hub.own.author();
    let mut checkpointer = Checkpointer::new(hub.own.clone());
    let written = checkpointer.write_if_changed(now_ms()).await.unwrap();
    assert_eq!(written.len(), 1);
    let Body::HubCheckpoint(cp) = &written[0].entry().body else {
        panic!("not a checkpoint: {:?}", written[0].entry().body)
    };
    assert_eq!(cp.heads.len(), 1, "{cp:?}");
    assert!(checkpointer
        .write_if_changed(now_ms())
        .await
        .unwrap()
        .is_empty());

    // Node 2 learns node 1's entries and the checkpoint through the hub.
    let s = sync(&n2, &hub).await;
    assert_eq!(s.applied, 6, "{s:?}");
    assert!(s.breaches.is_empty(), "{s:?}");
    n2.node.lock().unwrap().catch_up_views().unwrap();
    let attested: Vec<Attestation> = n2.node.lock().unwrap().store().attestations().unwrap();
    let fifth = attested
        .iter()
        .find(|a| a.author == author)
        .expect("node 1's chain is attested");
    assert_eq!((fifth.hub, fifth.head.seq), (hub_author, 5));

    // Truncation: the hub's database is restored from a backup taken when
    // it held three of node 1's entries (and no checkpoint).
    tamper(
        &hub,
        "DELETE FROM entries WHERE author = $1 AND seq > 3;
         UPDATE heads SET seq = 3, id = (SELECT id FROM entries WHERE author = $1 AND seq = 3)
             WHERE author = $1",
        author.as_bytes(),
    )
    .await;
    let s = sync(&n2, &hub).await;
    assert_eq!(s.breaches.len(), 1, "{s:?}");
    assert!(s.breaches[0].contains("truncated"), "{s:?}");
    // Node 2 gave the hub back what it had lost.
    assert_eq!(s.sent, 2, "{s:?}");
    assert_eq!(hub.digest(), n2.digest());
    let kept = n2.node.lock().unwrap().store().breaches().unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        (
            kept[0].kind.as_str(),
            kept[0].attested_seq,
            kept[0].presented_seq
        ),
        ("truncated", 5, Some(3))
    );
    assert_eq!(kept[0].peer, "hub-1");

    // Fork: node 1's fifth entry is replaced in the hub's database by
    // another one, signed with node 1's key (a stolen key and a colluding
    // hub operator).
    let fourth = {
        let sync_store =
            sentinel_hub::PgSyncStore::new(hub.store.clone(), tokio::runtime::Handle::current());
        tokio::task::block_in_place(|| sync_store.entries_after(&author, 3, 1, usize::MAX))
            .unwrap()
            .remove(0)
    };
    let forged = Entry {
        author,
        seq: 5,
        prev: Some(fourth.id()),
        hlc: Hlc::new(fourth.entry().hlc.wall_ms + 1, 0),
        actor: None,
        body: Body::MediaAttached(MediaAttached {
            event: sentinel_schema::EventId([1; 16]),
            hash: [9; 32],
            mime: MediaType::Jpeg,
            size: 10,
            name: "forged.jpg".into(),
        }),
    }
    .sign(&key(31))
    .unwrap();
    tamper(
        &hub,
        "DELETE FROM entries WHERE author = $1 AND seq = 5;
         UPDATE heads SET seq = 4, id = (SELECT id FROM entries WHERE author = $1 AND seq = 4)
             WHERE author = $1",
        author.as_bytes(),
    )
    .await;
    let (good, _) = verify_all(vec![forged.clone()]);
    let report = hub.store.apply(good, now_ms()).await.unwrap();
    assert_eq!(report.applied, 1);
    let s = sync(&n2, &hub).await;
    assert!(
        s.breaches.iter().any(|b| b.contains("fork")),
        "the rewritten entry is flagged: {s:?}"
    );
    let kept = n2.node.lock().unwrap().store().breaches().unwrap();
    let fork = kept
        .iter()
        .find(|b| b.kind == "forked")
        .expect("the fork is kept");
    assert_eq!(fork.presented_id, Some(forged.id().to_hex()));
    assert_eq!(fork.attested_seq, 5);
    // Node 2 keeps the attested entry.
    let held = n2
        .node
        .lock()
        .unwrap()
        .store()
        .head(&author)
        .unwrap()
        .unwrap();
    assert_eq!(held.id.to_hex(), fifth.head.id.to_hex());
    assert_eq!(held.seq, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_serving_hub_signs_checkpoints_as_chains_move() {
    let ca = deployment("Sentinel checkpoint test CA", 4);
    let hub = Hub::start_with(&ca, 100, |net, own| {
        net.with_checkpoints(own, std::time::Duration::from_millis(100))
    })
    .await;
    let n1 = Peer::new(&ca, "node-1", 41);
    n1.report(1, 3);
    sync(&n1, &hub).await;
    let hub_author = hub.own.author();
    let hub_seq = || {
        let sync_store =
            sentinel_hub::PgSyncStore::new(hub.store.clone(), tokio::runtime::Handle::current());
        tokio::task::block_in_place(|| sync_store.head(&hub_author))
            .unwrap()
            .map_or(0, |h| h.seq)
    };
    crate::e2e::eventually("the hub's first checkpoint", || hub_seq() == 1).await;
    let first_seen = now_ms();
    // The node receives it, and knows its chain is attested.
    let s = sync(&n1, &hub).await;
    assert_eq!(s.applied, 1, "{s:?}");
    n1.node.lock().unwrap().catch_up_views().unwrap();
    let attested = n1.node.lock().unwrap().store().attestations().unwrap();
    assert_eq!(attested.len(), 1, "{attested:?}");
    assert_eq!(attested[0].head.seq, 3);
    // Idle: no further checkpoint. Rather than sleeping and looking, the
    // next checkpoint is the marker: the checkpointer's ticks run one after
    // another in one task, so when the checkpoint for the new entries below
    // appears, every tick before it has run, and those since the first
    // checkpoint saw nothing new. If any of them had signed, the marker
    // would not be the hub's second entry. At least two periods since the
    // first checkpoint are let pass first (usually they have, during the
    // sync above), so some of those ticks were due.
    crate::e2e::eventually("two checkpoint periods to pass", || {
        now_ms() >= first_seen + 2 * 100
    })
    .await;
    // New entries move the heads: a second checkpoint follows.
    n1.report(10, 2);
    sync(&n1, &hub).await;
    crate::e2e::eventually("the hub's second checkpoint", || hub_seq() >= 2).await;
    let second = hub
        .store
        .entries_after(&hub_author, 1, 1, usize::MAX)
        .await
        .unwrap();
    let Body::HubCheckpoint(cp) = &second[0].entry().body else {
        panic!("not a checkpoint: {:?}", second[0].entry().body)
    };
    let n1_author = sentinel_schema::AuthorId(key(41).verifying_key().to_bytes());
    let n1_head = cp.heads.iter().find(|(a, _)| *a == n1_author);
    assert_eq!(
        n1_head.map(|(_, h)| h.seq),
        Some(5),
        "the hub's second entry is not the checkpoint of the new entries: \
         an idle tick signed one: {cp:?}"
    );
}
