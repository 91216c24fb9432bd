//! The merged timeline: order and pagination.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_is_in_hlc_order_and_pages_neither_repeat_nor_skip() {
    let (_db, store) = fresh_store().await;
    let (ka, kb, kc) = (key(301), key(302), key(303));
    let (a, b) = (author_of(&ka), author_of(&kb));
    let mut logs = (Vec::new(), Vec::new());
    for (i, e) in [ev(1), ev(2)].into_iter().enumerate() {
        let (_, c) = EventDoc::create(&a, &new_event("Flood", 13.4, 52.5, 3, NOW), NOW).unwrap();
        push(&mut logs.0, &ka, Hlc::new(NOW + i as u64, 0), change(e, c));
    }
    let (_, c) = EventDoc::create(&b, &new_event("Fire", 13.5, 52.6, 4, NOW), NOW).unwrap();
    push(&mut logs.1, &kb, Hlc::new(NOW, 0), change(ev(3), c));
    for i in 0..8u64 {
        // Same HLCs for both authors: ties broken by author.
        push(
            &mut logs.0,
            &ka,
            Hlc::new(NOW + 10 + i, 1),
            media(ev(1), i as u8),
        );
        push(
            &mut logs.1,
            &kb,
            Hlc::new(NOW + 10 + i, 1),
            media(ev(3), i as u8),
        );
    }
    push(&mut logs.1, &kb, Hlc::new(NOW + 5, 2), media(ev(3), 100));
    push(&mut logs.0, &ka, Hlc::new(NOW + 30, 0), media(ev(2), 101));
    // Sign B's cert with a real X.509 CA: its CN is the author name.
    let ca = Ca::create("Test CA", 0, 4_000_000_000_000, key(399)).unwrap();
    let cert = ca
        .issue(
            DeviceRole::Node,
            "officer-b",
            &kb.verifying_key(),
            1_000,
            3_000_000_000_000,
            NOW,
        )
        .unwrap();
    store
        .add_certificates(&[(b, cert.der().to_vec())], NOW)
        .await
        .unwrap();
    store.apply(verified(&logs.0), NOW).await.unwrap();
    store.apply(verified(&logs.1), NOW + 7).await.unwrap();
    store.project_pending().await.unwrap();
    let before: BTreeSet<String> = logs
        .0
        .iter()
        .chain(&logs.1)
        .map(|e| e.id().to_hex())
        .collect();
    assert_eq!(before.len(), 21);

    // A third author's entries arrive after the first page, later in HLC.
    let late: Vec<SignedEntry> = {
        let mut log = Vec::new();
        for i in 0..5u64 {
            push(
                &mut log,
                &kc,
                Hlc::new(NOW + 1_000 + i, 0),
                media(ev(1), 200 + i as u8),
            );
        }
        log
    };
    let late_ids: Vec<String> = late.iter().map(|e| e.id().to_hex()).collect();
    let items = walk(&store, "/api/v1/timeline", 3, || async {
        store.apply(verified(&late), NOW + 100).await.unwrap();
    })
    .await;
    let got = ids(&items);
    let unique: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(unique.len(), got.len(), "no item twice");
    assert_eq!(got.len(), 26, "every entry, the late ones too");
    assert!(before.is_subset(&unique), "nothing skipped");
    assert_eq!(
        &got[21..],
        &late_ids[..],
        "late entries sort last (newest HLC)"
    );
    let keys: Vec<_> = items.iter().map(order_key).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "HLC, then author, then seq");

    // Item fields.
    let first_b = items.iter().find(|i| i["author"] == b.to_hex()).unwrap();
    assert_eq!(first_b["author_name"], "officer-b");
    assert_eq!(first_b["kind"], "event_change");
    assert_eq!(first_b["verification"], "verified");
    assert_eq!(first_b["received_ms"], NOW + 7);
    assert_eq!(first_b["seq"], 1);
    assert_eq!(first_b["event"], ev(3).to_hex());
    let first_a = items.iter().find(|i| i["author"] == a.to_hex()).unwrap();
    assert!(first_a["author_name"].is_null(), "no certificate held");

    // Filters.
    let by_author = walk(
        &store,
        &format!("/api/v1/timeline?author={}", b.to_hex()),
        4,
        || async {},
    )
    .await;
    assert_eq!(by_author.len(), 10);
    assert!(by_author.iter().all(|i| i["author"] == b.to_hex()));
    let by_event = ok(
        &store,
        &format!("/api/v1/timeline?event={}", ev(2).to_hex()),
    )
    .await;
    assert_eq!(by_event["items"].as_array().unwrap().len(), 2);
    let changes = ok(&store, "/api/v1/timeline?kind=event_change").await;
    assert_eq!(changes["items"].as_array().unwrap().len(), 3);
    assert!(changes["next"].is_null());
    let window = ok(
        &store,
        &format!("/api/v1/timeline?from={}&to={}", NOW + 10, NOW + 12),
    )
    .await;
    let window = window["items"].as_array().unwrap();
    assert_eq!(window.len(), 4, "two ms, two authors, to exclusive");
    let combined = ok(
        &store,
        &format!(
            "/api/v1/timeline?author={}&kind=media_attached&from={}",
            a.to_hex(),
            NOW + 17
        ),
    )
    .await;
    assert_eq!(combined["items"].as_array().unwrap().len(), 2);

    // Newest first: the same entries, the order reversed, pages neither
    // repeating nor skipping; filters apply as they do oldest first.
    let newest = walk(&store, "/api/v1/timeline?order=desc", 4, || async {}).await;
    let mut reversed = ids(&items);
    reversed.reverse();
    assert_eq!(ids(&newest), reversed, "order=desc walks backwards");
    let asc = walk(&store, "/api/v1/timeline?order=asc", 7, || async {}).await;
    assert_eq!(ids(&asc), ids(&items), "order=asc is the default order");
    let b_newest = walk(
        &store,
        &format!("/api/v1/timeline?order=desc&author={}", b.to_hex()),
        3,
        || async {},
    )
    .await;
    let mut b_oldest = ids(&by_author);
    b_oldest.reverse();
    assert_eq!(ids(&b_newest), b_oldest);
}
