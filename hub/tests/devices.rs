//! Revoking a device from the hub (`POST /api/v1/devices/{key}/revoke`),
//! enforced for real: a real PostgreSQL, real QUIC on loopback, real
//! certificates and real SpatiaLite nodes. The revoked node's live
//! connection is closed and its next sync refused while another node still
//! syncs; its entries after the last valid seq are refused when another
//! node relays them; all of it still holds after the hub restarts.

use std::sync::Arc;

use axum::body::Body as HttpBody;
use axum::http::{header, Request, StatusCode};
use sentinel_hub::api::{router, ApiState};
use sentinel_hub::own::OwnChain;
use sentinel_hub::PgStore;
use sentinel_node::net;
use sentinel_schema::{author_of, AuthorId, DeviceRole, EventId, PersonRole};
use sentinel_sync::quic::{self, Side, Until};
use sentinel_sync::{Session, SessionConfig, SyncStore};
use serde_json::{json, Value};
use tokio::time::timeout;
use tower::ServiceExt;

use crate::e2e::{deployment, ev, eventually, issue, key, now_ms, sync, Hub, Peer, HANG};
use crate::{fresh_store, verified};

fn as_role(store: &PgStore, own: &Arc<OwnChain>, name: &str, role: PersonRole) -> ApiState {
    ApiState::new(store.clone(), Some(own.clone())).map_api(|api| api.trusting(name, role))
}

async fn revoke(state: &ApiState, key: &str, body: &str) -> (StatusCode, Value) {
    let req = Request::post(format!("/api/v1/devices/{key}/revoke"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(HttpBody::from(body.to_owned()))
        .unwrap();
    let response = router(state.clone()).oneshot(req).await.unwrap();
    let status = response.status();
    if status.is_client_error() {
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            sentinel_hub::api::PROBLEM_JSON
        );
    }
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// How many `revocation` entries the hub's log holds.
async fn n_revocations(store: &PgStore) -> i64 {
    store
        .client()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM entries WHERE kind = 5", &[])
        .await
        .unwrap()
        .get(0)
}

/// The quarantine codes of `author`'s entries on the hub, by seq.
async fn quarantined(store: &PgStore, author: &AuthorId) -> Vec<(i64, String)> {
    store
        .client()
        .await
        .unwrap()
        .query(
            "SELECT seq, reason_code FROM quarantine WHERE author = $1 ORDER BY seq",
            &[&author.as_bytes().as_slice()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// A one-shot sync that may fail, bounded in time; the error in words.
async fn try_sync(client: &Peer, hub: &Hub) -> Result<net::Summary, String> {
    let n = client.net();
    timeout(
        HANG,
        net::sync_once(client.node.clone(), &n, hub.addr(), |_| {}),
    )
    .await
    .expect("sync hung")
    .map_err(|e| e.to_string())
}

/// Copies `from`'s own entries after `after` into `to`'s log, as a
/// node-to-node sync would have.
fn relay(from: &Peer, to: &Peer, author: &AuthorId, after: u64) {
    let entries = from
        .node
        .lock()
        .unwrap()
        .entries_after(author, after, 100, usize::MAX)
        .unwrap();
    assert!(!entries.is_empty());
    let mut to = to.node.lock().unwrap();
    let report = SyncStore::apply(&mut *to, verified(&entries), now_ms()).unwrap();
    assert_eq!(report.applied, entries.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_revokes_a_node_and_the_hub_enforces_it_at_once_and_after_a_restart() {
    let ca = deployment("Sentinel revocation test CA", 6);
    // Wired as `sentinel-hub serve` wires it: the own chain's revocations
    // go to the sync server's handle.
    let mut hub = Hub::start_with(&ca, 100, |net, own| net.with_own_chain(own)).await;
    let lost = Peer::new(&ca, "node-lost", 61);
    let other = Peer::new(&ca, "node-other", 62);
    let lost_key = author_of(&key(61));
    lost.report(1, 3);
    other.report(100, 1);
    assert_eq!(sync(&lost, &hub).await.sent, 3);
    let s = sync(&other, &hub).await;
    assert_eq!((s.sent, s.received), (1, 3), "{s:?}");

    // The lost node stays connected, live.
    let net1 = lost.net();
    let endpoint =
        quic::client_endpoint("127.0.0.1:0".parse().unwrap(), net1.client.clone()).unwrap();
    let conn = timeout(HANG, quic::connect(&endpoint, hub.addr()))
        .await
        .expect("connect hung")
        .unwrap();
    let live = {
        let conn = conn.clone();
        let node = lost.node.clone();
        let session = Session::new(SessionConfig::new(DeviceRole::Node, net1.trust.clone()));
        tokio::spawn(async move {
            quic::drive(
                &conn,
                Side::Initiator,
                session,
                node,
                Until::Closed,
                None,
                |_| {},
            )
            .await
        })
    };

    // 3 a.m.: the admin revokes the lost laptop. By default what the hub
    // holds (seq 3) stays valid.
    let admin = as_role(&hub.store, &hub.own, "chief", PersonRole::Admin);
    let hex_key = lost_key.to_hex();
    let (status, body) = revoke(&admin, &hex_key, r#"{"reason": "laptop lost"}"#).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["key"], hex_key);
    assert_eq!(body["last_valid_seq"], 3);
    assert_eq!(body["seq"], 1, "the hub's first own entry");
    let entry_id = body["entry"].as_str().unwrap().to_owned();
    let held = hub.store.head(&hub.own.author()).await.unwrap().unwrap();
    assert_eq!(held.id.to_hex(), entry_id);

    // Its live connection is closed by the hub (the node's driver sees a
    // peer that ended the connection; the hub's report says why).
    timeout(HANG, live)
        .await
        .expect("the live session was not closed")
        .unwrap()
        .ok();
    eventually("the hub to report the revoked live session", || {
        hub.sessions()
            .iter()
            .any(|r| r.peer_name == "node-lost" && r.closed.starts_with("revoked: "))
    })
    .await;

    // Its next sync is refused at the handshake; the other node syncs and
    // learns the revocation entry.
    lost.report(4, 2);
    let refused = try_sync(&lost, &hub).await.unwrap_err();
    assert!(refused.to_lowercase().contains("revoked"), "{refused}");
    let s = sync(&other, &hub).await;
    assert!(s.caught_up, "{s:?}");
    assert_eq!(s.received, 1, "the revocation entry: {s:?}");
    eventually("the hub to log the refused handshake", || {
        hub.sessions().iter().any(|r| {
            r.closed.starts_with("handshake refused") && r.closed.to_lowercase().contains("revoked")
        })
    })
    .await;

    // Entries of the lost node after seq 3, relayed by the other node, are
    // refused as revoked.
    relay(&lost, &other, &lost_key, 3);
    let s = sync(&other, &hub).await;
    assert!(s.caught_up, "{s:?}");
    let seq = |h: Option<sentinel_schema::Head>| h.map(|h| h.seq);
    assert_eq!(seq(hub.store.head(&lost_key).await.unwrap()), Some(3));
    let codes = quarantined(&hub.store, &lost_key).await;
    assert_eq!(
        codes.first(),
        Some(&(4, "revoked".to_string())),
        "{codes:?}"
    );

    // A revocation never loosens: a later last valid seq is a conflict and
    // writes nothing; an earlier one tightens.
    let (status, p) = revoke(&admin, &hex_key, r#"{"reason": "x", "last_valid_seq": 5}"#).await;
    assert_eq!(
        (status, p["field"].as_str()),
        (StatusCode::CONFLICT, Some("last_valid_seq")),
        "{p}"
    );
    let (status, p) = revoke(&admin, &hex_key, r#"{"reason": "again"}"#).await;
    assert_eq!(status, StatusCode::CONFLICT, "{p}");
    assert_eq!(n_revocations(&hub.store).await, 1);
    let (status, body) = revoke(
        &admin,
        &hex_key,
        r#"{"reason": "stolen", "last_valid_seq": 1}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["last_valid_seq"], 1);

    // After a restart the hub still refuses the lost node, and still
    // refuses its entries from the relay.
    hub.restart(&ca).await;
    let refused = try_sync(&lost, &hub).await.unwrap_err();
    assert!(refused.to_lowercase().contains("revoked"), "{refused}");
    let s = sync(&other, &hub).await;
    assert!(s.caught_up, "{s:?}");
    assert_eq!(seq(hub.store.head(&lost_key).await.unwrap()), Some(3));
    assert_eq!(
        hub.own
            .revocations()
            .and_then(|h| h.revocation_of(&lost_key))
            .map(|r| (r.last_valid_seq, r.reason)),
        Some((1, "stolen".to_string()))
    );
    // And the other node still syncs with the restarted hub.
    // (It offers the lost node's refused entries again, too.)
    other.report(101, 1);
    assert!(sync(&other, &hub).await.caught_up);
    let other_key = author_of(&key(62));
    assert_eq!(seq(hub.store.head(&other_key).await.unwrap()), Some(2));
    assert_eq!(seq(hub.store.head(&lost_key).await.unwrap()), Some(3));
}

#[tokio::test]
async fn bad_revocations_are_refused_naming_the_field_and_write_nothing() {
    let (_db, store) = fresh_store().await;
    let ca = deployment("Sentinel revocation input CA", 7);
    let enrollment = issue(&ca, DeviceRole::Hub, "hub-1", 70);
    let own = Arc::new(
        OwnChain::new(store.clone(), enrollment, now_ms())
            .await
            .unwrap(),
    );
    let admin = as_role(&store, &own, "chief", PersonRole::Admin);
    let device = "cd".repeat(32);
    let cases: Vec<(String, String, StatusCode, &str)> = vec![
        (
            "abc".into(),
            r#"{"reason": ""}"#.into(),
            StatusCode::BAD_REQUEST,
            "key",
        ),
        (
            "zz".repeat(32),
            r#"{"reason": ""}"#.into(),
            StatusCode::BAD_REQUEST,
            "key",
        ),
        (
            device.clone(),
            json!({"reason": "é".repeat(129)}).to_string(),
            StatusCode::BAD_REQUEST,
            "reason",
        ),
        (
            device.clone(),
            "{}".into(),
            StatusCode::BAD_REQUEST,
            "reason",
        ),
        (
            device.clone(),
            r#"{"reason": 3}"#.into(),
            StatusCode::BAD_REQUEST,
            "reason",
        ),
        (
            device.clone(),
            r#"{"reason": "", "why": 1}"#.into(),
            StatusCode::BAD_REQUEST,
            "why",
        ),
        (
            device.clone(),
            r#"{"reason": "", "last_valid_seq": -1}"#.into(),
            StatusCode::BAD_REQUEST,
            "last_valid_seq",
        ),
        (
            device.clone(),
            r#"{"reason": "", "last_valid_seq": "3"}"#.into(),
            StatusCode::BAD_REQUEST,
            "last_valid_seq",
        ),
        (
            device.clone(),
            "[1]".into(),
            StatusCode::BAD_REQUEST,
            "body",
        ),
        (
            own.author().to_hex(),
            r#"{"reason": "oops"}"#.into(),
            StatusCode::CONFLICT,
            "key",
        ),
    ];
    for (key, body, status, field) in &cases {
        let (got, p) = revoke(&admin, key, body).await;
        assert_eq!(
            (got, p["field"].as_str()),
            (*status, Some(*field)),
            "{key} {body}: {p}"
        );
    }
    for role in [PersonRole::Officer, PersonRole::Public, PersonRole::None] {
        let (got, _) = revoke(
            &as_role(&store, &own, "x", role),
            &device,
            r#"{"reason": ""}"#,
        )
        .await;
        assert_eq!(got, StatusCode::FORBIDDEN, "{role:?}");
    }
    assert_eq!(n_revocations(&store).await, 0, "nothing was written");
    assert_eq!(store.head(&own.author()).await.unwrap(), None);

    // A key the hub never saw (a device stolen before it synced) may be
    // revoked: none of its entries stay valid by default. The reason may
    // be exactly 256 bytes.
    let reason = "r".repeat(256);
    let (status, body) = revoke(&admin, &device, &json!({ "reason": reason }).to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["last_valid_seq"], 0);
    assert_eq!(n_revocations(&store).await, 1);
    let entry = store
        .entries_after(&own.author(), 0, 1, usize::MAX)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(entry.entry().actor.as_deref(), Some("chief"));
    match &entry.entry().body {
        sentinel_schema::Body::Revocation(r) => {
            assert_eq!((r.key.to_hex(), r.last_valid_seq), (device, 0));
            assert_eq!(r.reason, reason);
        }
        other => panic!("not a revocation: {other:?}"),
    }
}

/// `GET /api/v1/timeline?author=…` as the admin: `(seq, verification)`.
async fn timeline_of(state: &ApiState, author: &AuthorId) -> Vec<(u64, String)> {
    let req = Request::get(format!("/api/v1/timeline?author={}", author.to_hex()))
        .body(HttpBody::empty())
        .unwrap();
    let response = router(state.clone()).oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let page: Value = serde_json::from_slice(&bytes).unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["seq"].as_u64().unwrap(),
                i["verification"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// What a hub concludes: everyone's role, the `events` view, and each
/// event in full.
async fn verdict(hub: &Hub, events: &[EventId]) -> String {
    hub.store.project_pending().await.unwrap();
    let roles = hub.store.roles().await.unwrap();
    let rows: Vec<String> = hub
        .store
        .client()
        .await
        .unwrap()
        .query(
            "SELECT (to_jsonb(e) - 'fid')::text FROM events e ORDER BY event",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut records = Vec::new();
    for e in events {
        let r = hub.store.event_record(e, None).await.unwrap();
        records.push(format!(
            "{:?}",
            r.map(|r| (r.view, r.reported_by, r.history))
        ));
    }
    format!("{roles:?}\n{rows:#?}\n{records:#?}")
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_first_or_entries_first_give_the_same_roles_and_views_on_the_hub() {
    use sentinel_schema::{
        Body, Entry, EventChange, EventDoc, EventEdit, Hlc, NewEvent, Point, RoleGrant, SignedEntry,
    };
    let ca = deployment("Sentinel hub arrival order test CA", 7);
    let x = issue(&ca, DeviceRole::Hub, "hub-x", 71);
    let xa = x.identity.author;
    // A node reported an event, and met the compromised hub, which wrote a
    // grant (seq 1, stays valid), then a grant to mallory, an event of its
    // own, an edit of the node's event and alice's role withdrawn. Two
    // relays (one per hub, so neither hub learns from the other) carry
    // these same entries.
    let n = issue(&ca, DeviceRole::Node, "node-n", 73);
    let (e0, e1) = (ev(1), ev(2));
    let t = now_ms();
    let new_event = |title: &str| NewEvent {
        title: title.into(),
        description: String::new(),
        category: "flood".into(),
        severity: 2,
        location: Point::new(13.5, 52.6).unwrap(),
        reported_ms: t,
    };
    let (_, c0) = EventDoc::create(&n.identity.author, &new_event("Flooded underpass"), t).unwrap();
    let reported = Entry {
        author: n.identity.author,
        seq: 1,
        prev: None,
        hlc: Hlc::new(t, 0),
        actor: Some("ada".into()),
        body: Body::EventChange(EventChange {
            event: e0,
            change: c0.clone(),
        }),
    }
    .sign(&n.key)
    .unwrap();
    let t = now_ms();
    let (_, c1) = EventDoc::create(&xa, &new_event("Fake alarm"), t).unwrap();
    let c2 = EventDoc::from_changes(&[&c0])
        .unwrap()
        .edit(&xa, &EventEdit::Title("Nothing to see".into()), t)
        .unwrap();
    let grant = |person: &str, role| {
        Body::RoleGrant(RoleGrant {
            person: person.into(),
            role,
        })
    };
    let change = |event, change| Body::EventChange(EventChange { event, change });
    let mut written: Vec<SignedEntry> = Vec::new();
    for (i, body) in [
        grant("alice", PersonRole::Officer),
        grant("mallory", PersonRole::Admin),
        change(e1, c1),
        change(e0, c2),
        grant("alice", PersonRole::None),
    ]
    .into_iter()
    .enumerate()
    {
        let e = Entry {
            author: xa,
            seq: i as u64 + 1,
            prev: written.last().map(SignedEntry::id),
            hlc: Hlc::new(t + 1 + i as u64, 0),
            actor: Some("intruder".into()),
            body,
        }
        .sign(&x.key)
        .unwrap();
        written.push(e);
    }
    written.push(reported);
    let relays = [
        Peer::new(&ca, "node-relay-a", 72),
        Peer::new(&ca, "node-relay-b", 74),
    ];
    for relay in &relays {
        let mut node = relay.node.lock().unwrap();
        node.add_certificates(vec![
            (xa, x.cert_der.clone()),
            (n.identity.author, n.cert_der.clone()),
        ])
        .unwrap();
        let report = SyncStore::apply(&mut *node, verified(&written), now_ms()).unwrap();
        assert_eq!(report.applied, 6);
    }
    let revoke_x = |hub: &Hub| {
        let admin = as_role(&hub.store, &hub.own, "chief", PersonRole::Admin);
        async move {
            let (status, body) = revoke(
                &admin,
                &xa.to_hex(),
                r#"{"reason": "hub compromised", "last_valid_seq": 1}"#,
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    };

    // Hub A learns the revocation first, then the entries (its sessions
    // refuse those past seq 1); hub B the other way round.
    let a = Hub::start_with(&ca, 100, |net, own| net.with_own_chain(own)).await;
    let b = Hub::start_with(&ca, 100, |net, own| net.with_own_chain(own)).await;
    revoke_x(&a).await;
    assert!(sync(&relays[0], &a).await.caught_up);
    assert!(sync(&relays[1], &b).await.caught_up);
    let before = verdict(&b, &[e0, e1]).await;
    assert!(before.contains("\"mallory\": Admin"), "{before}");
    assert!(before.contains("Fake alarm"), "{before}");
    revoke_x(&b).await;

    let (va, vb) = (verdict(&a, &[e0, e1]).await, verdict(&b, &[e0, e1]).await);
    assert_eq!(va, vb);
    assert_eq!(
        b.store
            .roles()
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![("alice".to_string(), PersonRole::Officer)]
    );
    assert!(vb.contains("Flooded underpass"), "{vb}");
    assert!(
        !vb.contains("Nothing to see") && !vb.contains("Fake alarm"),
        "{vb}"
    );

    // Hub B keeps the entries as evidence; its timeline says which count.
    let admin = as_role(&b.store, &b.own, "chief", PersonRole::Admin);
    let verified_ = |s: &str| s.to_string();
    assert_eq!(
        timeline_of(&admin, &xa).await,
        vec![
            (1, verified_("verified")),
            (2, verified_("revoked")),
            (3, verified_("revoked")),
            (4, verified_("revoked")),
            (5, verified_("revoked")),
        ]
    );
    assert_eq!(b.store.head(&xa).await.unwrap().map(|h| h.seq), Some(5));
    assert_eq!(b.store.revoked_authors().await.unwrap().get(&xa), Some(&1));
    // Hub A refused them as they came.
    assert_eq!(a.store.head(&xa).await.unwrap().map(|h| h.seq), Some(1));
    assert_eq!(
        timeline_of(&as_role(&a.store, &a.own, "chief", PersonRole::Admin), &xa)
            .await
            .len(),
        1
    );
}
