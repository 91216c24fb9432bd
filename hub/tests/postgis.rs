//! The database is really PostgreSQL with PostGIS, and the migrations made
//! the views the projector will fill.

use crate::fresh_store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgis_answers_spatial_queries() {
    let (_db, store) = fresh_store().await;
    let client = store.client().await.unwrap();
    let version: String = client
        .query_one("SELECT PostGIS_Version()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(version.starts_with('3'), "PostGIS 3: {version}");

    let envelope = "ST_MakeEnvelope(13.3, 52.4, 13.5, 52.6, 4326)::geography";
    let inside: bool = client
        .query_one(
            &format!("SELECT ST_Intersects(ST_GeogFromText('SRID=4326;POINT(13.405 52.52)'), {envelope})"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let outside: bool = client
        .query_one(
            &format!(
                "SELECT ST_Intersects(ST_GeogFromText('SRID=4326;POINT(2.35 48.85)'), {envelope})"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(inside, "Berlin is in the Berlin box");
    assert!(!outside, "Paris is not");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_view_has_geography_and_search() {
    let (db, store) = fresh_store().await;
    let client = store.client().await.unwrap();
    for (i, (title, lon, lat)) in [
        ("Flooded underpass", 13.405, 52.52),
        ("Fallen tree", 13.41, 52.53),
        ("Flooded cellar", 2.35, 48.85),
    ]
    .into_iter()
    .enumerate()
    {
        client
            .execute(
                "INSERT INTO events (event, event_hex, title, description, category, severity,
                     status, geog, reported_ms, created_by, updated_hlc_ms, updated_hlc_counter,
                     n_notes, n_media)
                 VALUES ($1, '', $2, 'water', 'flood', 3, 'reported',
                     ST_SetSRID(ST_MakePoint($3, $4), 4326)::geography, 0, '', 0, 0, 0, 0)",
                &[&vec![i as u8; 16], &title, &lon, &lat],
            )
            .await
            .unwrap();
    }
    let near_berlin: Vec<String> = client
        .query(
            "SELECT title FROM events
             WHERE ST_DWithin(geog, ST_SetSRID(ST_MakePoint(13.40, 52.52), 4326)::geography, 2000)
               AND search @@ to_tsquery('english', 'flood')",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(near_berlin, vec!["Flooded underpass".to_string()]);

    let indexes: Vec<String> = client
        .query(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'events' ORDER BY indexname",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        indexes.iter().any(|d| d.contains("USING gist (geog)")),
        "{indexes:?}"
    );
    assert!(
        indexes.iter().any(|d| d.contains("USING gin (search)")),
        "{indexes:?}"
    );

    // Opening the store again finds the migrations applied.
    let again = db.open_store().await.unwrap();
    let n: i64 = again
        .client()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM refinery_schema_history", &[])
        .await
        .unwrap()
        .get(0);
    // One row per migration file: all applied, none twice.
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter(|f| {
            f.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|e| e == "sql")
        })
        .count();
    assert_eq!(n as usize, files);
    assert!(files >= 5);
}
