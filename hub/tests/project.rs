//! The projector: views derived from the log match what `EventDoc::view`
//! gives, survive a rebuild unchanged, answer bounding boxes and full-text
//! queries, and never skip an entry committed out of `pos` order.

use std::collections::BTreeMap;
use std::time::Instant;

use sentinel_hub::PgStore;
use sentinel_schema::{
    author_of, AuthorId, Body, Entry, EventChange, EventDoc, EventEdit, EventId, EventView, Hlc,
    MediaAttached, MediaType, NewEvent, Point, SignedEntry, SigningKey,
};
use sentinel_sync::testing::key;

use crate::{fresh_store, verified, NOW};

/// Signs `body` as the entry after `prev` of `key`, at `hlc`.
fn sign(key: &SigningKey, prev: Option<&SignedEntry>, hlc: Hlc, body: Body) -> SignedEntry {
    Entry {
        author: author_of(key),
        seq: prev.map_or(1, |p| p.seq() + 1),
        prev: prev.map(SignedEntry::id),
        hlc,
        actor: None,
        body,
    }
    .sign(key)
    .unwrap()
}

/// Appends entries with these bodies to `log`, one ms of HLC apart from
/// `wall_ms`.
fn extend(log: &mut Vec<SignedEntry>, key: &SigningKey, wall_ms: u64, bodies: Vec<Body>) {
    for (i, body) in bodies.into_iter().enumerate() {
        let e = sign(key, log.last(), Hlc::new(wall_ms + i as u64, 0), body);
        log.push(e);
    }
}

fn change(event: EventId, change: Vec<u8>) -> Body {
    Body::EventChange(EventChange { event, change })
}

fn new_event(title: &str, lon: f64, lat: f64) -> NewEvent {
    NewEvent {
        title: title.into(),
        description: "water up to the knees".into(),
        category: "flood".into(),
        severity: 3,
        location: Point::new(lon, lat).unwrap(),
        reported_ms: NOW,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every `events` row (all columns but the surrogate `fid`) and every
/// `event_media` row, as text, in a stable order.
async fn snapshot(store: &PgStore) -> (Vec<String>, Vec<String>) {
    let client = store.client().await.unwrap();
    let events = client
        .query(
            "SELECT (to_jsonb(e) - 'fid')::text FROM events e ORDER BY event",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let media = client
        .query(
            "SELECT to_jsonb(m)::text FROM event_media m ORDER BY event, hash",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    (events, media)
}

async fn search(store: &PgStore, words: &str) -> Vec<EventId> {
    store
        .client()
        .await
        .unwrap()
        .query(
            "SELECT event FROM events WHERE search @@ plainto_tsquery('english', $1)
             ORDER BY event",
            &[&words],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| EventId(<[u8; 16]>::try_from(r.get::<_, &[u8]>(0)).unwrap()))
        .collect()
}

/// The `events` row of `event` compared field by field with `view`.
async fn assert_row_matches(
    store: &PgStore,
    event: EventId,
    view: &EventView,
    created_by: &AuthorId,
    updated: Hlc,
    n_media: i32,
) {
    let client = store.client().await.unwrap();
    let r = client
        .query_one(
            "SELECT event_hex, title, description, category, severity, status, assignee,
                 notes, ST_X(geog::geometry), ST_Y(geog::geometry), reported_ms, created_by,
                 updated_hlc_ms, updated_hlc_counter, n_notes, n_media
             FROM events WHERE event = $1",
            &[&event.0.as_slice()],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, String>(0), event.to_hex());
    assert_eq!(r.get::<_, String>(1), view.title);
    assert_eq!(r.get::<_, String>(2), view.description);
    assert_eq!(r.get::<_, String>(3), view.category);
    assert_eq!(r.get::<_, i16>(4), i16::from(view.severity));
    assert_eq!(r.get::<_, String>(5), view.status.as_str());
    assert_eq!(r.get::<_, Option<String>>(6), view.assignee);
    let notes: Vec<&str> = view.notes.iter().map(|n| n.text.as_str()).collect();
    assert_eq!(r.get::<_, String>(7), notes.join("\n"));
    assert_eq!(r.get::<_, f64>(8), view.location.lon());
    assert_eq!(r.get::<_, f64>(9), view.location.lat());
    assert_eq!(r.get::<_, i64>(10), view.reported_ms as i64);
    assert_eq!(r.get::<_, String>(11), hex(&created_by.0));
    assert_eq!(r.get::<_, i64>(12), updated.wall_ms as i64);
    assert_eq!(r.get::<_, i64>(13), i64::from(updated.counter));
    assert_eq!(r.get::<_, i32>(14), view.notes.len() as i32);
    assert_eq!(r.get::<_, i32>(15), n_media);

    let conflicts: BTreeMap<String, Vec<String>> = client
        .query(
            "SELECT c.key, (SELECT array_agg(x ORDER BY i)
                 FROM jsonb_array_elements_text(c.value) WITH ORDINALITY AS a(x, i))
             FROM events, jsonb_each(conflicts) AS c WHERE event = $1",
            &[&event.0.as_slice()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(conflicts, view.conflicts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edits_of_two_authors_project_into_one_row() {
    let (_db, store) = fresh_store().await;
    let (ka, kb) = (key(201), key(202));
    let (a, b) = (author_of(&ka), author_of(&kb));
    let event = EventId([0x42; 16]);

    // A reports; B receives the report; then both edit at once.
    let (mut doc_a, c0) =
        EventDoc::create(&a, &new_event("Flooded underpass", 13.405, 52.52), NOW).unwrap();
    let mut doc_b = EventDoc::from_changes(&[&c0]).unwrap();
    let t = |s: &str| EventEdit::Title(s.into());
    let c1 = doc_a
        .edit(&a, &t("Flooded underpass at the station"), NOW + 1_000)
        .unwrap();
    let c2 = doc_a
        .edit(
            &a,
            &EventEdit::Note {
                text: "pumps requested".into(),
                actor: Some("officer-7".into()),
                at_ms: NOW + 1_500,
            },
            NOW + 1_500,
        )
        .unwrap();
    let c3 = doc_b.edit(&b, &t("Flooded tunnel"), NOW + 2_000).unwrap();
    let c4 = doc_b
        .edit(
            &b,
            &EventEdit::Location(Point::new(13.41, 52.53).unwrap()),
            NOW + 2_100,
        )
        .unwrap();
    let c5 = doc_b
        .edit(&b, &EventEdit::Severity(4), NOW + 2_200)
        .unwrap();
    let c6 = doc_a
        .edit(&a, &EventEdit::Severity(5), NOW + 2_300)
        .unwrap();

    let mut log_a = Vec::new();
    extend(
        &mut log_a,
        &ka,
        NOW,
        vec![change(event, c0.clone()), change(event, c1.clone())],
    );
    extend(
        &mut log_a,
        &ka,
        NOW + 1_500,
        vec![change(event, c2.clone())],
    );
    extend(
        &mut log_a,
        &ka,
        NOW + 2_300,
        vec![change(event, c6.clone())],
    );
    let mut log_b = Vec::new();
    extend(
        &mut log_b,
        &kb,
        NOW + 2_000,
        vec![
            change(event, c3.clone()),
            change(event, c4.clone()),
            change(event, c5.clone()),
            Body::MediaAttached(MediaAttached {
                event,
                hash: [5; 32],
                mime: MediaType::Jpeg,
                size: 1_234,
                name: "photo.jpg".into(),
            }),
        ],
    );

    // B's edits arrive first: their dependency (A's report) is missing, the
    // document is incomplete, there is no row yet.
    store.apply(verified(&log_b), NOW).await.unwrap();
    let first = store.project_pending().await.unwrap();
    assert_eq!(first.entries, 4);
    assert_eq!(first.incomplete, vec![event]);
    assert!(first.events.is_empty());
    assert!(store
        .ids_in_bbox(-180.0, -90.0, 180.0, 90.0)
        .await
        .unwrap()
        .is_empty());

    // A's arrive: the incomplete document is rebuilt from the log.
    store.apply(verified(&log_a), NOW).await.unwrap();
    let second = store.project_pending().await.unwrap();
    assert_eq!(second.entries, 4);
    assert_eq!(second.events, vec![event]);
    assert!(second.incomplete.is_empty() && second.unviewable.is_empty());
    assert_eq!(
        store.project_pending().await.unwrap().entries,
        0,
        "nothing left"
    );

    let all: Vec<&[u8]> = [&c0, &c1, &c2, &c3, &c4, &c5, &c6]
        .iter()
        .map(|c| c.as_slice())
        .collect();
    let view = EventDoc::from_changes(&all).unwrap().view().unwrap();
    assert!(view.conflicts.contains_key("title"), "{:?}", view.conflicts);
    assert!(
        view.conflicts.contains_key("severity"),
        "{:?}",
        view.conflicts
    );
    assert_row_matches(&store, event, &view, &a, Hlc::new(NOW + 2_300, 0), 1).await;

    // Full-text: a word of either concurrent title, stemmed.
    assert_eq!(search(&store, &view.title).await, vec![event]);
    assert_eq!(search(&store, "flood").await, vec![event]);
    assert_eq!(
        search(&store, "pumps").await,
        vec![event],
        "notes are indexed"
    );
    assert!(search(&store, "earthquake").await.is_empty());

    // Rebuilding from the log gives the same rows.
    let before = snapshot(&store).await;
    assert_eq!(before.0.len(), 1);
    assert_eq!(before.1.len(), 1);
    let rebuilt = store.rebuild_views().await.unwrap();
    assert_eq!(rebuilt.entries, 8);
    assert_eq!(snapshot(&store).await, before);
}

/// An entry whose transaction commits after a later-positioned one was
/// projected is still projected (a `pos` high-water mark would skip it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_committed_out_of_pos_order_is_not_skipped() {
    let (_db, store) = fresh_store().await;
    let (kf, kg) = (key(211), key(212));
    let (f, g) = (EventId([0x0f; 16]), EventId([0x10; 16]));
    let (_, cf) = EventDoc::create(&author_of(&kf), &new_event("Late", 13.4, 52.5), NOW).unwrap();
    let (_, cg) = EventDoc::create(&author_of(&kg), &new_event("Early", 13.5, 52.6), NOW).unwrap();
    let ef = sign(&kf, None, Hlc::new(NOW, 0), change(f, cf));
    let eg = sign(&kg, None, Hlc::new(NOW, 0), change(g, cg));

    // F takes a position first but commits last.
    let mut slow = store.client().await.unwrap();
    let tx = slow.transaction().await.unwrap();
    let pos_f: i64 = tx
        .query_one(
            "INSERT INTO entries (author, seq, id, hlc_ms, hlc_counter, kind, event, bytes,
                 received_ms)
             VALUES ($1, 1, $2, $3, 0, 1, $4, $5, $3) RETURNING pos",
            &[
                &ef.author().0.as_slice(),
                &ef.id().0.as_slice(),
                &(NOW as i64),
                &f.0.as_slice(),
                &ef.as_bytes(),
            ],
        )
        .await
        .unwrap()
        .get(0);
    store.apply(verified(&[eg]), NOW).await.unwrap();
    let pos_g: i64 = store
        .client()
        .await
        .unwrap()
        .query_one("SELECT max(pos) FROM entries", &[])
        .await
        .unwrap()
        .get(0);
    assert!(pos_f < pos_g);
    assert_eq!(store.project_pending().await.unwrap().events, vec![g]);

    tx.commit().await.unwrap();
    let late = store.project_pending().await.unwrap();
    assert_eq!((late.entries, late.events), (1, vec![f]));
    let mut all = vec![f, g];
    all.sort();
    assert_eq!(
        store.ids_in_bbox(13.0, 52.0, 14.0, 53.0).await.unwrap(),
        all
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounding_boxes_match_a_brute_force_filter() {
    const N: usize = 400;
    let (_db, store) = fresh_store().await;
    let k = key(221);
    let author = author_of(&k);
    // Points on a 0.01° grid, offset by half a step, so no point is within
    // 0.005° of a box edge (edges are multiples of 0.01°; the geodesic
    // edges of these boxes bow by far less than that).
    let mut points: Vec<(EventId, f64, f64)> = Vec::with_capacity(N);
    let mut bodies = Vec::with_capacity(N);
    for i in 0..N {
        let lon = 13.0 + ((i * 37) % 100) as f64 * 0.01 + 0.005;
        let lat = 52.3 + ((i * 53) % 60) as f64 * 0.01 + 0.005;
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&(i as u64).to_be_bytes());
        id[8] = 0xee;
        let event = EventId(id);
        let title = if i == 17 {
            "Collapsed scaffolding".to_string()
        } else {
            format!("Report {i}")
        };
        let (_, c) = EventDoc::create(&author, &new_event(&title, lon, lat), NOW).unwrap();
        bodies.push(change(event, c));
        points.push((event, lon, lat));
    }
    let mut log = Vec::new();
    extend(&mut log, &k, NOW, bodies);
    store.apply(verified(&log), NOW).await.unwrap();
    let started = Instant::now();
    let report = store.project_pending().await.unwrap();
    eprintln!("projected {N} new events in {:?}", started.elapsed());
    assert_eq!(report.events.len(), N);

    let boxes = [
        (12.0, 51.0, 15.0, 54.0),
        (13.2, 52.4, 13.5, 52.6),
        (13.45, 52.35, 13.46, 52.85),
        (13.33, 52.51, 13.77, 52.52),
        (13.0, 52.3, 13.01, 52.31),
        (12.0, 50.0, 12.5, 50.5),
        (13.9, 52.8, 14.5, 53.5),
    ];
    for (min_lon, min_lat, max_lon, max_lat) in boxes {
        let mut expected: Vec<EventId> = points
            .iter()
            .filter(|(_, lon, lat)| {
                (min_lon..=max_lon).contains(lon) && (min_lat..=max_lat).contains(lat)
            })
            .map(|(e, _, _)| *e)
            .collect();
        expected.sort();
        let got = store
            .ids_in_bbox(min_lon, min_lat, max_lon, max_lat)
            .await
            .unwrap();
        assert_eq!(got, expected, "box {min_lon},{min_lat},{max_lon},{max_lat}");
    }
    assert_eq!(
        store
            .ids_in_bbox(12.0, 51.0, 15.0, 54.0)
            .await
            .unwrap()
            .len(),
        N
    );

    // The bounding-box query can use the GiST index.
    let client = store.client().await.unwrap();
    client
        .execute("SET enable_seqscan = off", &[])
        .await
        .unwrap();
    let plan: Vec<String> = client
        .query(
            "EXPLAIN SELECT DISTINCT e.event
             FROM unnest('{13.2}'::float8[], '{13.5}'::float8[]) AS b(lo, hi)
             JOIN events e ON ST_Intersects(e.geog,
                 ST_MakeEnvelope(b.lo, 52.4, b.hi, 52.6, 4326)::geography)",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    client.execute("RESET enable_seqscan", &[]).await.unwrap();
    assert!(plan.iter().any(|l| l.contains("events_geog")), "{plan:#?}");

    assert_eq!(search(&store, "scaffold").await, vec![points[17].0]);
}

/// One event whose document Automerge cannot read, one it cannot save
/// (the test hooks of `sentinel_schema::event::testing`), among good
/// ones: the projector leaves those two out and carries on, in the same
/// run and in the next ones (before, the panic ended the projector task).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_automerge_cannot_read_or_save_does_not_stop_the_projector() {
    use sentinel_schema::event::testing::{PANIC_IN_SAVE, PANIC_IN_VIEW};
    let (_db, store) = fresh_store().await;
    let k = key(231);
    let a = author_of(&k);
    let mut log = Vec::new();
    let mut bodies = Vec::new();
    for (n, title) in [
        (1u8, "Flooded underpass"),
        (2, PANIC_IN_VIEW),
        (3, PANIC_IN_SAVE),
        (4, "Fallen tree"),
    ] {
        let (_, c) = EventDoc::create(&a, &new_event(title, 13.4, 52.5), NOW).unwrap();
        bodies.push(change(EventId([n; 16]), c));
    }
    extend(&mut log, &k, NOW, bodies);
    store.apply(verified(&log), NOW).await.unwrap();

    let report = store.project_pending().await.unwrap();
    assert_eq!(report.entries, 4);
    let mut shown = report.events.clone();
    shown.sort();
    assert_eq!(shown, vec![EventId([1; 16]), EventId([4; 16])]);
    let mut unviewable = report.unviewable.clone();
    unviewable.sort();
    assert_eq!(unviewable, vec![EventId([2; 16]), EventId([3; 16])]);
    assert_eq!(snapshot(&store).await.0.len(), 2);

    // The next edit of a good event projects, and a rebuild gives the
    // same views (the bad documents rebuilt from the log and left out
    // again).
    let Body::EventChange(first) = &log[0].entry().body else {
        unreachable!()
    };
    let mut doc = EventDoc::from_changes(&[&first.change]).unwrap();
    let edit = doc.edit(&a, &EventEdit::Severity(5), NOW + 10).unwrap();
    extend(&mut log, &k, NOW + 10, vec![change(EventId([1; 16]), edit)]);
    store.apply(verified(&log[4..]), NOW).await.unwrap();
    let report = store.project_pending().await.unwrap();
    assert_eq!(report.events, vec![EventId([1; 16])]);
    let before = snapshot(&store).await;
    assert!(before.0[0].contains("\"severity\": 5"), "{:?}", before.0);
    let rebuilt = store.rebuild_views().await.unwrap();
    assert_eq!(rebuilt.unviewable.len(), 2, "{rebuilt:?}");
    assert_eq!(snapshot(&store).await, before);
}

/// New events whose every entry is in one chunk are built from the chunk
/// (no read back of the log, derived columns from the chunk's entries):
/// the rows are the ones the same log gives when its entries come in many
/// chunks (stored documents, rebuilds of incomplete ones, log lookups) —
/// with concurrent edits in conflict, media, and a revoked author's
/// entries that count and ones that do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_projected_in_one_chunk_match_events_projected_piecemeal() {
    let (ka, kb, kc) = (key(241), key(242), key(243));
    let (a, b, c) = (author_of(&ka), author_of(&kb), author_of(&kc));
    let (e1, e2, e3, e4) = (
        EventId([0x51; 16]),
        EventId([0x52; 16]),
        EventId([0x53; 16]),
        EventId([0x54; 16]),
    );
    // E1: A reports, A and B edit the title at once, B attaches a photo.
    let (mut doc_a, c0) = EventDoc::create(&a, &new_event("Landslide", 9.1, 46.2), NOW).unwrap();
    let mut doc_b = EventDoc::from_changes(&[&c0]).unwrap();
    let t = |s: &str| EventEdit::Title(s.into());
    let c1 = doc_a
        .edit(&a, &t("Landslide on the pass road"), NOW + 10)
        .unwrap();
    let c2 = doc_b.edit(&b, &t("Rockfall"), NOW + 20).unwrap();
    let c3 = doc_b.edit(&b, &EventEdit::Severity(5), NOW + 30).unwrap();
    // E2: A reports, nothing else.
    let (_, d0) = EventDoc::create(&a, &new_event("Power line down", 9.3, 46.4), NOW).unwrap();
    // E3: C reports (seq 1, counts) and edits (seq 2, revoked: counts
    // nowhere); E4: C reports past its last valid seq (no row at all).
    let (mut doc_c, f0) = EventDoc::create(&c, &new_event("Gas smell", 9.5, 46.6), NOW).unwrap();
    let f1 = doc_c.edit(&c, &EventEdit::Severity(1), NOW + 40).unwrap();
    let (_, g0) = EventDoc::create(&c, &new_event("Hoax", 9.7, 46.8), NOW).unwrap();

    let mut log_a = Vec::new();
    extend(
        &mut log_a,
        &ka,
        NOW,
        vec![
            change(e1, c0.clone()),
            change(e2, d0),
            change(e1, c1.clone()),
        ],
    );
    let mut log_b = Vec::new();
    extend(
        &mut log_b,
        &kb,
        NOW + 20,
        vec![
            change(e1, c2.clone()),
            change(e1, c3.clone()),
            Body::MediaAttached(MediaAttached {
                event: e1,
                hash: [7; 32],
                mime: MediaType::Jpeg,
                size: 2_048,
                name: "slope.jpg".into(),
            }),
        ],
    );
    let mut log_c = Vec::new();
    extend(
        &mut log_c,
        &kc,
        NOW + 40,
        vec![change(e3, f0.clone()), change(e3, f1), change(e4, g0)],
    );
    let judge: sentinel_hub::store::revoked::Judge = {
        let revoked: BTreeMap<AuthorId, u64> = [(c, 1)].into_iter().collect();
        std::sync::Arc::new(move |_, _| revoked.clone())
    };

    // All at once: one chunk.
    let (_db1, whole) = fresh_store().await;
    whole.judge_revocations_with(judge.clone()).await.unwrap();
    let all: Vec<SignedEntry> = log_b.iter().chain(&log_c).chain(&log_a).cloned().collect();
    whole.apply(verified(&all), NOW).await.unwrap();
    let report = whole.project_pending().await.unwrap();
    assert_eq!((report.entries, report.chunks), (9, 1));
    assert_eq!(report.events, vec![e1, e2, e3]);

    // Piecemeal: B's entries first (E1 incomplete), one projection per
    // entry of A and C, so E1 and E3 are built over several chunks.
    let (_db2, piecemeal) = fresh_store().await;
    piecemeal.judge_revocations_with(judge).await.unwrap();
    piecemeal.apply(verified(&log_b), NOW).await.unwrap();
    assert_eq!(
        piecemeal.project_pending().await.unwrap().incomplete,
        vec![e1]
    );
    for log in [&log_a, &log_c] {
        for k in 0..log.len() {
            piecemeal.apply(verified(&log[k..=k]), NOW).await.unwrap();
            piecemeal.project_pending().await.unwrap();
        }
    }

    let rows = snapshot(&whole).await;
    assert_eq!(rows.0.len(), 3, "{:?}", rows.0);
    assert_eq!(rows, snapshot(&piecemeal).await);
    let view = EventDoc::from_changes(&[&c0, &c1, &c2, &c3])
        .unwrap()
        .view()
        .unwrap();
    assert!(view.conflicts.contains_key("title"), "{:?}", view.conflicts);
    assert_row_matches(&whole, e1, &view, &a, Hlc::new(NOW + 22, 0), 1).await;
    let view = EventDoc::from_changes(&[&f0]).unwrap().view().unwrap();
    assert_row_matches(&whole, e3, &view, &c, Hlc::new(NOW + 40, 0), 0).await;
    // And a rebuild of the piecemeal store (one chunk again) changes nothing.
    piecemeal.rebuild_views().await.unwrap();
    assert_eq!(snapshot(&piecemeal).await, rows);
}
