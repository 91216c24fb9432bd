//! The node's API on a throwaway data directory with seeded data, for tools
//! that test it from outside (`scripts/fuzz-api node`).
//!
//! Makes a node in a temporary directory, enrolled under a throwaway CA;
//! a hub of that CA grants the roles (`role_grant` entries the node
//! applies as sync would), so an `admin` and a `citizen` (public) are what
//! they are on a real node, each with a bearer token. Seeds the six events
//! both fixtures seed (`sentinel_http::testing::fixture::SEEDS`), in every
//! status — the document's examples (`sentinel_node::http::openapi`): the
//! first, reported, with the example media and a note; then in progress,
//! resolved, closed, assigned, in progress — serves the API
//! (`router_with`, default options: no rate limit) on 127.0.0.1 at a free
//! port, and prints, one per line, as the hub's fixture does
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
//! Then serves until its standard input closes (or Ctrl-C); the data
//! directory goes with it.

use std::sync::{Arc, Mutex};

use sentinel_certs::testing::{now_ms, DAY};
use sentinel_certs::{Ca, Enrollment};
use sentinel_http::people::{hash_password, new_token, TOKEN_LIFETIME_MS};
use sentinel_http::testing::fixture::{self, Seed, PASSWORD, SEEDS};
use sentinel_node::http::openapi::{
    EXAMPLE_ASSIGNED, EXAMPLE_CLOSED, EXAMPLE_EVENT, EXAMPLE_IN_PROGRESS, EXAMPLE_MEDIA_BYTES,
    EXAMPLE_RESOLVED,
};
use sentinel_node::http::{router_with, ApiOptions, ApiState};
use sentinel_node::node::{enroll, Node};
use sentinel_schema::{
    verify_all, Body, DeviceRole, Entry, EventEdit, EventId, Hlc, PersonRole, RoleGrant,
    SignedEntry, SigningKey,
};
use sentinel_sync::testing::key;
use sentinel_sync::SyncStore;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Who reported and works the seeded events.
const OFFICER: &str = "officer-1";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let dir = tempfile::TempDir::new()?;
    let now = now_ms();
    let ca = Ca::create("fixture CA", now - DAY, now + 365 * DAY, key(901))?;
    Node::init(dir.path(), SigningKey::from_bytes(&[7; 32]))?;
    let enrollment = ca.enroll(
        DeviceRole::Node,
        "node-fixture",
        key(902),
        now - DAY,
        now + 365 * DAY,
        now,
    )?;
    enroll(dir.path(), &enrollment)?;
    let mut node = Node::open(dir.path())?;
    let hub = ca.enroll(
        DeviceRole::Hub,
        "hub-fixture",
        key(903),
        now - DAY,
        now + 365 * DAY,
        now,
    )?;
    node.store_mut()
        .add_certificates(vec![(hub.identity.author, hub.cert_der.clone())])?;

    let admin = account(&node, "admin", now)?;
    let public = account(&node, "citizen", now)?;
    account(&node, OFFICER, now)?;
    grant_roles(
        &mut node,
        &hub,
        &[
            ("admin", PersonRole::Admin),
            ("citizen", PersonRole::Public),
            (OFFICER, PersonRole::Officer),
        ],
        now,
    )?;
    let events = seed_events(&mut node, now)?;

    let node = Arc::new(Mutex::new(node));
    let app = router_with(ApiState::new(node)?, &ApiOptions::default());
    fixture::serve(app, &admin, &public, &events).await?;
    drop(dir);
    Ok(())
}

/// An account and a bearer token for it.
fn account(node: &Node, name: &str, now: u64) -> Result<String, Error> {
    node.store()
        .create_account(name, &hash_password(PASSWORD)?, now)?;
    let (token, digest) = new_token();
    node.store()
        .insert_token(&digest, name, now, now + TOKEN_LIFETIME_MS)?;
    Ok(token)
}

/// The hub grants each person a role, and the node applies the grants as
/// it applies what sync brings.
fn grant_roles(
    node: &mut Node,
    hub: &Enrollment,
    grants: &[(&str, PersonRole)],
    now: u64,
) -> Result<(), Error> {
    let mut log: Vec<SignedEntry> = Vec::new();
    for (i, (person, role)) in grants.iter().enumerate() {
        let prev = log.last();
        let entry = Entry {
            author: hub.identity.author,
            seq: prev.map_or(1, |p| p.seq() + 1),
            prev: prev.map(SignedEntry::id),
            hlc: Hlc::new(now - DAY + i as u64, 0),
            actor: Some("fixture".into()),
            body: Body::RoleGrant(RoleGrant {
                person: (*person).into(),
                role: *role,
            }),
        }
        .sign(&hub.key)?;
        log.push(entry);
    }
    let (good, bad) = verify_all(log);
    if !bad.is_empty() {
        return Err("the role grants do not verify".into());
    }
    node.apply_remote(good, now)?;
    Ok(())
}

/// Six events in every status, reported and worked by `officer-1` (all
/// but the first assigned to them); the first has the example media.
fn seed_events(node: &mut Node, now: u64) -> Result<Vec<EventId>, Error> {
    let mut ids = Vec::new();
    for (n, seed) in SEEDS.iter().enumerate() {
        let id = Seed::id(n);
        let new = seed.new_event(Seed::reported_ms(n, now))?;
        node.report(&new, id, Some(OFFICER), now)?;
        if n == 0 {
            node.attach(id, EXAMPLE_MEDIA_BYTES, "photo.jpg", Some(OFFICER), now)?;
            node.edit(
                id,
                &EventEdit::Note {
                    text: "water rising".into(),
                    actor: Some(OFFICER.into()),
                    at_ms: now,
                },
                Some(OFFICER),
                now,
            )?;
        }
        if n > 0 {
            node.edit(id, &EventEdit::Assign(OFFICER.into()), Some("admin"), now)?;
        }
        for status in seed.steps {
            node.edit(id, &EventEdit::Status(*status), Some(OFFICER), now)?;
        }
        ids.push(id);
    }
    let examples = [
        EXAMPLE_EVENT,
        EXAMPLE_IN_PROGRESS,
        EXAMPLE_RESOLVED,
        EXAMPLE_CLOSED,
        EXAMPLE_ASSIGNED,
    ];
    for (id, example) in ids.iter().zip(examples) {
        debug_assert_eq!(id.to_hex(), example);
    }
    Ok(ids)
}
