//! Events: filters, pagination, detail and export.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_filter_by_box_distance_text_status_severity_and_page() {
    let (_db, store) = fresh_store().await;
    seed_events(&store).await;
    let h = |n: u8| ev(n).to_hex();

    // Newest report first, ties by id descending.
    let all = ok(&store, "/api/v1/events").await;
    assert_eq!(event_ids(&all), vec![h(6), h(5), h(4), h(3), h(2), h(1)]);
    let first = &all["items"][5];
    assert_eq!(first["title"], "Flooded underpass");
    assert_eq!(first["location"]["lon"], 13.405);
    assert_eq!(first["status"], "reported");
    // A list item is a summary (the shared `EventItem`): counts and a
    // conflict flag, no description or notes.
    assert_eq!(first["has_conflicts"], false);
    assert_eq!(first["n_notes"], 0);
    assert_eq!(first["n_media"], 0);
    assert!(first["assignee"].is_null());
    assert!(first.get("description").is_none());

    // Keyset pagination, with a new event arriving mid-walk (newer: it
    // sorts before the cursor, so this walk does not see it; nothing of
    // the rest repeats or is skipped).
    let items = walk(&store, "/api/v1/events", 4, || async {
        let k = key(312);
        let (_, c) = EventDoc::create(
            &author_of(&k),
            &new_event("Late report", 10.0, 50.0, 2, NOW + 100),
            NOW + 100,
        )
        .unwrap();
        let e = sign(&k, None, Hlc::new(NOW + 100, 0), change(ev(9), c));
        store.apply(verified(&[e]), NOW).await.unwrap();
        store.project_pending().await.unwrap();
    })
    .await;
    assert_eq!(ids(&items), event_ids(&all));
    let with_late = walk(&store, "/api/v1/events", 2, || async {}).await;
    assert_eq!(with_late.len(), 7);
    assert_eq!(with_late[0]["id"], h(9));

    // Bounding box around Berlin.
    let berlin = ok(&store, "/api/v1/events?bbox=13.3,52.4,13.5,52.6").await;
    assert_eq!(event_ids(&berlin), vec![h(2), h(1)]);
    // Across the antimeridian.
    let pacific = ok(&store, "/api/v1/events?bbox=179,-18,-179,-16").await;
    assert_eq!(event_ids(&pacific), vec![h(6), h(5)]);
    // Near the Brandenburg Gate: within 2 km, then within 30 km.
    let near = ok(&store, "/api/v1/events?near=13.3777,52.5163&radius=2000").await;
    assert_eq!(event_ids(&near), vec![h(1)]);
    let wider = ok(&store, "/api/v1/events?near=13.3777,52.5163&radius=30000").await;
    assert_eq!(event_ids(&wider), vec![h(3), h(2), h(1)]);
    // Full text, stemmed, web-search syntax.
    let floods = ok(&store, "/api/v1/events?q=flood").await;
    assert_eq!(event_ids(&floods), vec![h(3), h(1)]);
    let not_potsdam = ok(&store, "/api/v1/events?q=flood%20-potsdam").await;
    assert_eq!(event_ids(&not_potsdam), vec![h(1)]);
    let fire_q = ok(&store, "/api/v1/events?q=%22bridge%20fire%22").await;
    assert_eq!(event_ids(&fire_q), vec![h(6)]);
    // Status, severity, category, reported window.
    let in_progress = ok(&store, "/api/v1/events?status=in_progress").await;
    assert_eq!(event_ids(&in_progress), vec![h(2)]);
    let severe = ok(&store, "/api/v1/events?min_severity=4&max_severity=4").await;
    assert_eq!(event_ids(&severe), vec![h(6), h(5)]);
    let fires = ok(&store, "/api/v1/events?category=fire").await;
    assert_eq!(event_ids(&fires), vec![h(6), h(5), h(2)]);
    // An officer's own work: assigned to exactly this name.
    let work = ok(
        &store,
        "/api/v1/events?assignee=officer-1&status=in_progress",
    )
    .await;
    assert_eq!(event_ids(&work), vec![h(2)]);
    let all_work = ok(&store, "/api/v1/events?assignee=officer-1").await;
    assert!(event_ids(&all_work).contains(&h(2)));
    let items = all_work["items"].as_array().unwrap();
    assert!(
        items.iter().all(|e| e["assignee"] == "officer-1"),
        "{all_work}"
    );
    let none = ok(&store, "/api/v1/events?assignee=officer-2").await;
    assert!(event_ids(&none).is_empty(), "{none}");
    let window = ok(
        &store,
        &format!("/api/v1/events?from={}&to={}", NOW + 10, NOW + 30),
    )
    .await;
    assert_eq!(event_ids(&window), vec![h(3), h(2)]);
    // Combined.
    let combined = ok(
        &store,
        "/api/v1/events?bbox=13,52,14,53&q=flood&max_severity=2",
    )
    .await;
    assert_eq!(event_ids(&combined), vec![h(3)]);
    let filtered_pages = walk(&store, "/api/v1/events?category=fire", 1, || async {}).await;
    assert_eq!(ids(&filtered_pages), vec![h(6), h(5), h(2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_detail_has_history_and_conflicts_of_concurrent_edits() {
    let (_db, store) = fresh_store().await;
    let (ka, kb) = (key(321), key(322));
    let (a, b) = (author_of(&ka), author_of(&kb));
    let event = ev(0x42);
    let (mut doc_a, c0) = EventDoc::create(
        &a,
        &new_event("Flooded underpass", 13.405, 52.52, 3, NOW),
        NOW,
    )
    .unwrap();
    let mut doc_b = EventDoc::from_changes(&[&c0]).unwrap();
    let c1 = doc_a
        .edit(&a, &EventEdit::Title("Flooded station".into()), NOW + 1_000)
        .unwrap();
    let c2 = doc_b
        .edit(&b, &EventEdit::Title("Flooded tunnel".into()), NOW + 1_000)
        .unwrap();
    let mut log_a = Vec::new();
    push(&mut log_a, &ka, Hlc::new(NOW, 0), change(event, c0));
    push(&mut log_a, &ka, Hlc::new(NOW + 1_000, 0), change(event, c1));
    let mut log_b = Vec::new();
    push(&mut log_b, &kb, Hlc::new(NOW + 1_000, 0), change(event, c2));
    push(&mut log_b, &kb, Hlc::new(NOW + 1_001, 0), media(event, 7));
    store.apply(verified(&log_b), NOW).await.unwrap();
    store.apply(verified(&log_a), NOW).await.unwrap();
    store.project_pending().await.unwrap();

    let detail = ok(&store, &format!("/api/v1/events/{}", event.to_hex())).await;
    assert_eq!(detail["id"], event.to_hex());
    assert_eq!(detail["n_media"], 1);
    assert_eq!(detail["media"][0]["name"], "photo-7.jpg");
    assert_eq!(detail["description"], "reported from the field");
    // Reported by whoever the first change was made for: these entries
    // name nobody; its author is the history's first.
    assert!(detail["reported_by"].is_null(), "{detail}");
    assert_eq!(detail["history"][0]["author"], a.to_hex());
    let conflicts = detail["conflicts"].as_object().unwrap();
    let titles = conflicts["title"].as_array().unwrap();
    let mut titles: Vec<&str> = titles.iter().map(|t| t.as_str().unwrap()).collect();
    titles.sort();
    assert!(
        titles.contains(&"Flooded station") && titles.contains(&"Flooded tunnel"),
        "{conflicts:?}"
    );
    let history = detail["history"].as_array().unwrap();
    let expected: Vec<String> = [&log_a[0], &log_a[1], &log_b[0], &log_b[1]]
        .iter()
        .map(|e| e.id().to_hex())
        .collect();
    let mut tied = expected.clone();
    // Entries 1 and 2 share an HLC: ordered by author.
    if b.to_hex() < a.to_hex() {
        tied.swap(1, 2);
    }
    let entries: Vec<String> = history
        .iter()
        .map(|h| h["entry"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(entries, tied);
    assert_eq!(history[0]["kind"], "event_change");
    assert_eq!(history[3]["kind"], "media_attached");
    assert_eq!(history[0]["hlc"]["wall_ms"], NOW);
    assert_eq!(history[0]["hlc"]["counter"], 0);
    assert_eq!(history[0]["seq"], 1);
    // Not the hub's own entries.
    assert!(history.iter().all(|h| h["local"] == false), "{history:?}");

    // Upper-case hex is the same id; an unknown one is 404.
    let upper = ok(
        &store,
        &format!("/api/v1/events/{}", event.to_hex().to_uppercase()),
    )
    .await;
    assert_eq!(upper["id"], event.to_hex());
    let (status, content_type, body) =
        get(&store, &format!("/api/v1/events/{}", ev(0x43).to_hex())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(content_type, PROBLEM_JSON);
    assert_eq!(body["status"], 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_is_a_feature_collection_of_every_event() {
    let (_db, store) = fresh_store().await;
    // Empty first.
    let (status, content_type, empty) = get(&store, "/api/v1/export.geojson").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/geo+json");
    assert_eq!(empty["type"], "FeatureCollection");
    assert_eq!(empty["features"].as_array().unwrap().len(), 0);

    let seeded = seed_events(&store).await;
    let (_, _, fc) = get(&store, "/api/v1/export.geojson").await;
    assert_eq!(fc["type"], "FeatureCollection");
    let features = fc["features"].as_array().unwrap();
    assert_eq!(features.len(), seeded.len());
    let got: BTreeSet<String> = features
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    let want: BTreeSet<String> = seeded.iter().map(EventId::to_hex).collect();
    assert_eq!(got, want);
    for f in features {
        assert_eq!(f["type"], "Feature");
        assert_eq!(f["geometry"]["type"], "Point");
        let xy = f["geometry"]["coordinates"].as_array().unwrap();
        assert_eq!(xy.len(), 2);
        let (lon, lat) = (xy[0].as_f64().unwrap(), xy[1].as_f64().unwrap());
        assert!((-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat));
        assert!(f["properties"]["title"].is_string());
        assert!(f["properties"]["severity"].is_number());
    }
    let gate = features.iter().find(|f| f["id"] == ev(1).to_hex()).unwrap();
    assert_eq!(gate["geometry"]["coordinates"][0], 13.405);
    assert_eq!(gate["geometry"]["coordinates"][1], 52.52);
}

/// The shared CSV and KML exports over the hub's store: every event, in
/// the columns (and ExtendedData) the node's answer has too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_and_kml_exports_hold_every_event() {
    use sentinel_http::api::export::FULL_COLUMNS;

    let (_db, store) = fresh_store().await;
    let header = format!("{}\r\n", FULL_COLUMNS.join(","));
    let (status, content_type, empty) = get(&store, "/api/v1/export.csv").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/csv; charset=utf-8");
    assert_eq!(empty, Value::String(header.clone()));

    let seeded = seed_events(&store).await;
    let (_, _, csv) = get(&store, "/api/v1/export.csv").await;
    let csv = csv.as_str().unwrap();
    assert!(csv.starts_with(&header), "{csv}");
    let rows: Vec<&str> = csv[header.len()..].split_terminator("\r\n").collect();
    assert_eq!(rows.len(), seeded.len(), "{csv}");
    let got: BTreeSet<String> = rows.iter().map(|r| r[..32].to_owned()).collect();
    let want: BTreeSet<String> = seeded.iter().map(EventId::to_hex).collect();
    assert_eq!(got, want);
    let gate = rows
        .iter()
        .find(|r| r.starts_with(&ev(1).to_hex()))
        .unwrap();
    assert!(gate.contains(",Flooded underpass,"), "{gate}");
    assert!(gate.contains(",13.405,52.52,"), "{gate}");

    let (status, content_type, kml) = get(&store, "/api/v1/export.kml").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/vnd.google-earth.kml+xml");
    let kml = kml.as_str().unwrap();
    assert!(
        kml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
        "{kml}"
    );
    assert!(kml.ends_with("</Document>\n</kml>\n"), "{kml}");
    assert_eq!(kml.matches("<Placemark>").count(), seeded.len(), "{kml}");
    assert!(kml.contains("<name>Pacific storm</name>"), "{kml}");
    assert!(
        kml.contains("<coordinates>-179.5,-16.5</coordinates>"),
        "{kml}"
    );
    assert!(
        kml.contains(&format!(
            "<Data name=\"id\"><value>{}</value></Data>",
            ev(1).to_hex()
        )),
        "{kml}"
    );
}
