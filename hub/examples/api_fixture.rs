//! The hub's API on a throwaway PostgreSQL with seeded data, for tools that
//! test it from outside (`scripts/fuzz-api`).
//!
//! Starts a PostgreSQL/PostGIS server (`sentinel_hub::testing`), seeds the
//! six events both fixtures seed (`sentinel_http::testing::fixture::SEEDS`)
//! in every status (the first is the document's example event),
//! makes an `admin`, a `citizen` (public) and an `officer-1` (the
//! document's example account) with a bearer token each, serves the API
//! (`router_with`, default options: no rate limit; sensor pushes checked
//! against the fixture's CA) on 127.0.0.1 at a free port, and prints, one
//! per line, as the node's fixture does
//! (`sentinel_http::testing::fixture::serve`):
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
use sentinel_http::testing::fixture::{self, Seed, PASSWORD, SEEDS};
use sentinel_hub::api::openapi::{EXAMPLE_ACCOUNT, EXAMPLE_EVENT};
use sentinel_hub::api::{router_with, Api, ApiOptions, ApiState, Feed, HubBackend};
use sentinel_hub::own::OwnChain;
use sentinel_hub::people::{grant_role, hash_password};
use sentinel_hub::server::HubNet;
use sentinel_hub::testing::TestDatabase;
use sentinel_hub::{now_ms, PgStore};
use sentinel_schema::{
    author_of, verify_all, Body, DeviceRole, Entry, EventChange, EventDoc, EventEdit, EventId, Hlc,
    PersonRole, SignedEntry,
};
use sentinel_sync::testing::key;

type Error = Box<dyn std::error::Error + Send + Sync>;

const DAY: u64 = 24 * 3600 * 1000;

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
    fixture::serve(app, &admin, &public, &events).await?;
    drop(db);
    Ok(())
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
    let mut log: Vec<SignedEntry> = Vec::new();
    let mut ids = Vec::new();
    for (n, seed) in SEEDS.iter().enumerate() {
        let id = Seed::id(n);
        debug_assert!(n > 0 || id.to_hex() == EXAMPLE_EVENT);
        let reported = Seed::reported_ms(n, now);
        let new = seed.new_event(reported)?;
        let (mut doc, change) = EventDoc::create(&author, &new, reported)?;
        let mut edits = vec![change];
        if !seed.steps.is_empty() {
            edits.push(doc.edit(
                &author,
                &EventEdit::Assign("officer-1".into()),
                reported + 1,
            )?);
        }
        for (i, status) in seed.steps.iter().enumerate() {
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
