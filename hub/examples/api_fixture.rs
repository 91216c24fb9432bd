//! The hub's API on a throwaway PostgreSQL with seeded data, for tools that
//! test it from outside (`scripts/fuzz-api`).
//!
//! Starts a PostgreSQL/PostGIS server (`sentinel_hub::testing`), seeds six
//! events in every status (the first is the document's example event),
//! makes an `admin`, a `citizen` (public) and an `officer-1` (the
//! document's example account) with a bearer token each, serves the API
//! (`router_with`, default options: no rate limit; sensor pushes checked
//! against the fixture's CA) on 127.0.0.1 at a free port, and prints, one
//! per line:
//!
//! ```text
//! URL http://127.0.0.1:PORT
//! ADMIN_TOKEN …
//! PUBLIC_TOKEN …
//! EVENT 32-hex-digit id of a seeded event (one line each)
//! READY
//! ```
//!
//! Then serves until its standard input closes (or Ctrl-C); the database
//! server goes with it.

use std::sync::Arc;

use sentinel_certs::{Ca, FreshnessPolicy};
use sentinel_hub::api::openapi::{EXAMPLE_ACCOUNT, EXAMPLE_EVENT};
use sentinel_hub::api::{router_with, Api, ApiOptions, ApiState, Feed, HubBackend};
use sentinel_hub::own::OwnChain;
use sentinel_hub::people::{grant_role, hash_password};
use sentinel_hub::server::HubNet;
use sentinel_hub::testing::TestDatabase;
use sentinel_hub::{now_ms, PgStore};
use sentinel_schema::{
    author_of, verify_all, Body, DeviceRole, Entry, EventChange, EventDoc, EventEdit, EventId, Hlc,
    NewEvent, PersonRole, Point, SignedEntry, Status,
};
use sentinel_sync::testing::key;

type Error = Box<dyn std::error::Error + Send + Sync>;

const DAY: u64 = 24 * 3600 * 1000;
const PASSWORD: &str = "fixture password, long enough";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let db = TestDatabase::create().await?;
    let store = db.open_store().await?;
    let now = now_ms();
    let ca = Ca::create("fixture CA", now - DAY, now + 365 * DAY, key(901))?;
    let hub = ca.enroll(
        DeviceRole::Hub,
        "hub-fixture",
        key(902),
        now - DAY,
        now + 365 * DAY,
        now,
    )?;
    let own = Arc::new(OwnChain::new(store.clone(), hub.clone(), now).await?);
    // Sensor pushes are checked as the sync server's sessions check entries.
    let net = HubNet::for_store(hub, &store, FreshnessPolicy::Lenient).await?;
    let sensors = net.sensor_ingest(store.clone());
    let events = seed_events(&store, now).await?;
    let admin = account(&store, &own, "admin", PersonRole::Admin, now).await?;
    let public = account(&store, &own, "citizen", PersonRole::Public, now).await?;
    account(&store, &own, EXAMPLE_ACCOUNT, PersonRole::Officer, now).await?;

    let backend =
        HubBackend::new(store.clone(), Some(own.author())).with_sensors(Arc::new(sensors));
    let state = ApiState::with_api(
        Api::new(Arc::new(backend), Feed::new()),
        store.clone(),
        Some(own),
    );
    let app = router_with(state, &ApiOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("URL http://{addr}");
    println!("ADMIN_TOKEN {admin}");
    println!("PUBLIC_TOKEN {public}");
    for e in &events {
        println!("EVENT {}", hex::encode(e.0));
    }
    println!("READY");
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    );
    tokio::select! {
        r = served => r?,
        _ = stdin_closed() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    drop(db);
    Ok(())
}

/// Resolves when standard input reaches its end.
async fn stdin_closed() {
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    })
    .await;
}

/// An account with `role` and a bearer token for it.
async fn account(
    store: &PgStore,
    own: &OwnChain,
    name: &str,
    role: PersonRole,
    now: u64,
) -> Result<String, Error> {
    store
        .create_account(name, &hash_password(PASSWORD)?, now)
        .await?;
    grant_role(own, name, role, "fixture", now).await?;
    let (token, digest) = sentinel_http::people::new_token();
    store
        .insert_token(
            &digest,
            name,
            now,
            now + sentinel_http::people::TOKEN_LIFETIME_MS,
        )
        .await?;
    Ok(token)
}

/// Six events from one field node, in every status, projected.
async fn seed_events(store: &PgStore, now: u64) -> Result<Vec<EventId>, Error> {
    let k = key(911);
    let author = author_of(&k);
    let specs: [(&str, f64, f64, u8, &[Status]); 6] = [
        ("Flooded underpass", 13.405, 52.52, 3, &[]),
        ("Burning warehouse", 13.41, 52.53, 5, &[Status::InProgress]),
        (
            "Fallen tree",
            2.35,
            48.85,
            1,
            &[Status::InProgress, Status::Resolved],
        ),
        (
            "Closed road",
            2.36,
            48.86,
            2,
            &[Status::InProgress, Status::Resolved, Status::Closed],
        ),
        ("Pacific storm", 179.5, -17.0, 4, &[]),
        ("Bridge fire", -179.5, -16.5, 4, &[Status::InProgress]),
    ];
    let mut log: Vec<SignedEntry> = Vec::new();
    let mut ids = Vec::new();
    for (n, (title, lon, lat, severity, steps)) in specs.into_iter().enumerate() {
        let id = EventId([n as u8 + 1; 16]);
        debug_assert!(n > 0 || hex::encode(id.0) == EXAMPLE_EVENT);
        let reported = now - DAY + n as u64 * 60_000;
        let new = NewEvent {
            title: title.into(),
            description: "seeded by the API fixture".into(),
            category: if severity >= 4 { "fire" } else { "flood" }.into(),
            severity,
            location: Point::new(lon, lat)?,
            reported_ms: reported,
        };
        let (mut doc, change) = EventDoc::create(&author, &new, reported)?;
        let mut edits = vec![change];
        if !steps.is_empty() {
            edits.push(doc.edit(
                &author,
                &EventEdit::Assign("officer-1".into()),
                reported + 1,
            )?);
        }
        for (i, status) in steps.iter().enumerate() {
            edits.push(doc.edit(
                &author,
                &EventEdit::Status(*status),
                reported + 2 + i as u64,
            )?);
        }
        for (i, change) in edits.into_iter().enumerate() {
            let prev = log.last();
            let entry = Entry {
                author,
                seq: prev.map_or(1, |p| p.seq() + 1),
                prev: prev.map(SignedEntry::id),
                hlc: Hlc::new(reported + i as u64, 0),
                actor: Some("officer-1".into()),
                body: Body::EventChange(EventChange { event: id, change }),
            }
            .sign(&k)?;
            log.push(entry);
        }
        ids.push(id);
    }
    let (good, bad) = verify_all(log);
    if !bad.is_empty() {
        return Err("seeded entries do not verify".into());
    }
    store.apply(good, now).await?;
    store.project_pending().await?;
    Ok(ids)
}
