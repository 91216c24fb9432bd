//! Part 3: three field nodes that never meet converge through a regional
//! hub on PostgreSQL/PostGIS. Skipped, with the reason, when no PostgreSQL
//! can be started here.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{ensure, Context, Result};
use rand_core::OsRng;
use sentinel_certs::{Ca, FreshnessPolicy};
use sentinel_hub::server::{self, HubNet};
use sentinel_hub::testing::TestDatabase;
use sentinel_hub::PgSyncStore;
use sentinel_node::net::{self, Net};
use sentinel_node::node::{enroll, Node};
use sentinel_schema::*;
use sentinel_sync::SyncStore;

pub fn run() -> Result<()> {
    println!("\n== Part 3: three nodes that never meet, one regional hub\n");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let db = match TestDatabase::create().await {
            Ok(db) => db,
            Err(e) => {
                println!("(skipped: no PostgreSQL with PostGIS could be started here: {e})");
                return Ok(());
            }
        };
        let store = db.open_store().await?;
        println!("A throwaway PostgreSQL with PostGIS holds the hub's log and views.");

        const DAY: u64 = 24 * 3600 * 1000;
        let now = sentinel_node::clock::now_ms();
        let ca = Ca::create(
            "Demo region",
            now - DAY,
            now + 365 * DAY,
            SigningKey::generate(&mut OsRng),
        )?;
        let hub_identity = ca.enroll(
            DeviceRole::Hub,
            "hub-north",
            SigningKey::generate(&mut OsRng),
            now - DAY,
            now + 30 * DAY,
            now,
        )?;
        let hub_net =
            Arc::new(HubNet::for_store(hub_identity, &store, FreshnessPolicy::Lenient).await?);
        let endpoint = server::listen(&hub_net, "127.0.0.1:0".parse()?)?;
        let hub_addr: SocketAddr = endpoint.local_addr()?;
        tokio::spawn(server::serve(store.clone(), hub_net, endpoint, 100, |_| {}));
        println!("Hub listening on {hub_addr} (QUIC, mutual TLS).");

        let tmp = tempfile::TempDir::new()?;
        let places = [
            ("ada", 13.40, 52.52, "Flooded cellar"),
            ("bo", 13.45, 52.50, "Power line down"),
            ("cy", 13.35, 52.55, "Road blocked by debris"),
        ];
        let mut nodes = Vec::new();
        for (name, lon, lat, title) in places {
            let dir = tmp.path().join(name);
            drop(Node::init(&dir, SigningKey::generate(&mut OsRng))?);
            let e = ca.enroll(
                DeviceRole::Node,
                name,
                SigningKey::generate(&mut OsRng),
                now - DAY,
                now + 30 * DAY,
                now,
            )?;
            enroll(&dir, &e)?;
            let mut node = Node::open(&dir)?;
            let mut id = [0u8; 16];
            rand_core::RngCore::fill_bytes(&mut OsRng, &mut id);
            let event = NewEvent {
                title: title.into(),
                description: String::new(),
                category: "hazard".into(),
                severity: 3,
                location: Point::new(lon, lat)?,
                reported_ms: now,
            };
            node.report(&event, EventId(id), Some(name), now)?;
            let net = Net::load(&dir, &node)?;
            nodes.push((name, Arc::new(Mutex::new(node)), net));
        }
        println!("Ada, Bo and Cy each reported an event offline.");
        for i in [0usize, 1, 2, 0, 1] {
            let (name, node, net) = &nodes[i];
            let s = net::sync_once(node.clone(), net, hub_addr, |_| {}).await?;
            println!(
                "  {name} syncs with the hub: sent {}, received {}",
                s.sent, s.received
            );
        }
        let hub_sync = PgSyncStore::new(store.clone(), tokio::runtime::Handle::current());
        let hub_digest =
            tokio::task::block_in_place(|| hub_sync.heads().map(|h| hex::encode(h.digest())))?;
        for (name, node, _) in &nodes {
            let stats = node.lock().map_err(|_| anyhow::anyhow!("lock"))?.stats()?;
            ensure!(
                stats.heads_digest == hub_digest,
                "{name} differs from the hub"
            );
            ensure!(stats.events == 3, "{name} holds {} events", stats.events);
        }
        println!(
            "All three nodes and the hub hold the same heads: {}",
            &hub_digest[..16]
        );
        store.project_pending().await?;
        let in_box = store.ids_in_bbox(13.38, 52.49, 13.47, 52.53).await?;
        ensure!(
            in_box.len() == 2,
            "expected 2 events in the box, found {}",
            in_box.len()
        );
        println!(
            "The hub's PostGIS view answers a box query over the city centre: {} events.",
            in_box.len()
        );
        drop(db);
        Ok::<(), anyhow::Error>(())
    })
    .context("the hub part")
}
