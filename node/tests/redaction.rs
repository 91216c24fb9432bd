//! Signed redactions on the node (`docs/protocol.md` 1.6): a hub's
//! `redaction` entry masks every view the node derives (the event, its
//! row and full-text index, the export, the API), erases the blob from
//! the blob folder for good (410, never fetched or accepted again), keeps
//! the log verifiable, and gives the same views whatever order it and
//! the entries it names arrive in. A node may not write one.

use axum::http::StatusCode;
use sentinel_certs::testing::{deployment, issue, now_ms};
use sentinel_node::net_media::Unerased;
use sentinel_node::node::Node;
use sentinel_node::testing::{ev, new_event, sync, timed, Peer, Server};
use sentinel_schema::query::{EventFilter, EventSearch};
use sentinel_schema::redact::{value_hash, REDACTED};
use sentinel_schema::{
    verify_all, Body, BodyKind, DeviceRole, EventEdit, EventId, PersonRole, RedactedField,
    RedactedValue, Redaction, SignedEntry, SigningKey,
};
use sentinel_sync::quic_media::BlobStore;
use sentinel_sync::testing::{key, sign_after, PNG};
use sentinel_sync::SyncStore;
use tempfile::TempDir;

use crate::http::{Api, JPEG};

const NOTE: &str = "called Jane Roe on 0170 5550123";

/// A redaction of `event`'s description and the note [`NOTE`], and of
/// the blob `blob`.
fn redaction(event: EventId, description: &str, blob: [u8; 32]) -> Body {
    Body::Redaction(Redaction {
        event,
        values: vec![
            RedactedValue {
                field: RedactedField::Description,
                hash: value_hash(RedactedField::Description, description),
            },
            RedactedValue {
                field: RedactedField::Note,
                hash: value_hash(RedactedField::Note, NOTE),
            },
        ],
        blobs: vec![blob],
        reason: "erasure request 2026-17".into(),
    })
}

fn note(text: &str) -> EventEdit {
    EventEdit::Note {
        text: text.into(),
        actor: None,
        at_ms: now_ms(),
    }
}

/// The events `text` finds by full-text search.
fn found(node: &Node, text: &str) -> Vec<EventId> {
    let page = node
        .store()
        .search(&EventSearch {
            filter: EventFilter {
                text: Some(text.into()),
                ..EventFilter::default()
            },
            limit: 10,
            after: None,
        })
        .unwrap();
    page.items.iter().map(|s| s.id).collect()
}

fn geojson(node: &Node) -> String {
    let mut out = Vec::new();
    sentinel_node::transfer::export(
        sentinel_node::transfer::Format::GeoJson,
        node.store(),
        &mut out,
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hub_redaction_masks_every_view_and_erases_the_blob_for_good() {
    let api = Api::start();
    api.account("boss", Some(PersonRole::Admin));
    let boss = api.login("boss").await;
    let event = api.event("boss");
    api.edit(event, "boss", note(NOTE));
    api.edit(event, "boss", note("pumps on the way"));
    let r = api.upload(&event.to_hex(), Some(&boss), JPEG).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let blob: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(JPEG).into();
    let uri = format!("/api/v1/media/{}", hex::encode(blob));
    assert_eq!(api.call("GET", &uri, Some(&boss), None).await.status, 200);
    {
        let node = api.node.lock().unwrap();
        assert!(node.media().contains(&blob));
        assert_eq!(found(&node, "Jane"), vec![event]);
        assert_eq!(found(&node, "knees"), vec![event]);
    }
    let entries = api.entries();

    api.apply_by(
        &mut api.hub.borrow_mut(),
        redaction(event, "water up to the knees", blob),
    );
    checked_views(&api.node.lock().unwrap(), event, blob);

    // The API: the record, the media route (410), a new upload (410,
    // nothing stored, no entry).
    let d = api
        .call(
            "GET",
            &format!("/api/v1/events/{}", event.to_hex()),
            Some(&boss),
            None,
        )
        .await;
    assert_eq!(d.body["description"], REDACTED, "{}", d.body);
    assert_eq!(d.body["media"], serde_json::json!([]), "{}", d.body);
    assert!(!d.body.to_string().contains("Jane"), "{}", d.body);
    let r = api.call("GET", &uri, Some(&boss), None).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.body);
    assert_eq!(r.body["type"], "urn:sentinel:problem:gone", "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("redaction"));
    let r = api.upload(&event.to_hex(), Some(&boss), JPEG).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.body);
    assert_eq!(r.body["field"], "file", "{}", r.body);
    assert_eq!(api.entries(), entries + 1, "only the redaction was added");

    // A rebuild of the views gives the same, and the blob stays gone.
    let mut node = api.node.lock().unwrap();
    let before = format!("{:?}", node.show(event).unwrap().view);
    node.store_mut().rebuild_views().unwrap();
    assert_eq!(node.erase_redacted_blobs().unwrap(), 1, "marked again");
    assert_eq!(format!("{:?}", node.show(event).unwrap().view), before);
    assert!(!node.media().contains(&blob));
    assert_eq!(found(&node, "Jane"), Vec::<EventId>::new());
    // An edit after the redaction with a new value shows.
    drop(node);
    api.edit(event, "boss", EventEdit::Description("dry again".into()));
    assert_eq!(
        api.node
            .lock()
            .unwrap()
            .show(event)
            .unwrap()
            .view
            .description,
        "dry again"
    );
}

/// The node's views of `event` once the hub's redaction of its
/// description, the note [`NOTE`] and `blob` is applied.
fn checked_views(node: &Node, event: EventId, blob: [u8; 32]) {
    // The event as `show` and the API's record present it.
    let record = node.show(event).unwrap();
    assert_eq!(record.view.title, "Flooded underpass");
    assert_eq!(record.view.description, REDACTED);
    let notes: Vec<_> = record.view.notes.iter().map(|n| n.text.as_str()).collect();
    assert_eq!(notes, [REDACTED, "pumps on the way"]);
    assert!(record.view.media.is_empty(), "{:?}", record.view.media);
    // The redaction is in the event's history.
    assert_eq!(
        record.history.last().map(|h| h.kind),
        Some(Some(BodyKind::Redaction))
    );
    // The row and its full-text index.
    assert_eq!(found(node, "Jane"), Vec::<EventId>::new());
    assert_eq!(found(node, "knees"), Vec::<EventId>::new());
    assert_eq!(found(node, "pumps"), vec![event]);
    let (description, n_notes, n_media): (String, i64, i64) = node
        .store()
        .conn()
        .query_row(
            "SELECT description, n_notes, n_media FROM events WHERE event = ?1",
            [event.0],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((description.as_str(), n_notes, n_media), (REDACTED, 2, 0));
    // The export.
    let out = geojson(node);
    assert!(!out.contains("knees") && !out.contains("Jane"), "{out}");
    assert!(out.contains(REDACTED), "{out}");
    // The blob is gone from the folder, and the log still verifies.
    assert!(!node.media().contains(&blob));
    let audit = node.store().audit().unwrap();
    assert!(audit.ok(), "{audit:?}");
}

/// A node's entries about one event: its creation, a note, a photo.
fn reported(dir: &TempDir) -> (Node, EventId, Vec<SignedEntry>, [u8; 32]) {
    let mut a = Node::init(dir.path(), SigningKey::from_bytes(&[41; 32])).unwrap();
    let event = ev(77);
    let t = now_ms();
    a.report(&new_event("Bridge", 10.0, 50.0), event, None, t)
        .unwrap();
    a.edit(event, &note(NOTE), None, t).unwrap();
    a.attach(event, PNG, "photo.png", None, t).unwrap();
    let author = a.author();
    let entries =
        sentinel_node::store::log::entries_after(a.store().conn(), &author, 0, 100).unwrap();
    let blob: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(PNG).into();
    (a, event, entries, blob)
}

/// What the node shows of `event`, to compare stores: the record's view,
/// the row, what search finds.
fn shown(node: &Node, event: EventId) -> String {
    let view = node.show(event).unwrap().view;
    let row: (String, String, i64, i64, String) = node
        .store()
        .conn()
        .query_row(
            "SELECT title, description, n_notes, n_media, conflicts FROM events WHERE event = ?1",
            [event.0],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    let media: Vec<_> = node.store().event_media(event).unwrap();
    format!(
        "{view:?} {row:?} {media:?} {:?} {:?}",
        found(node, "Jane"),
        found(node, "Bridge")
    )
}

#[test]
fn the_same_views_whichever_order_the_redaction_and_the_photo_arrive() {
    let _t = timed("redaction_orders");
    let dir = TempDir::new().unwrap();
    let (_a, event, entries, blob) = reported(&dir);
    let hub = key(4242);
    let red = vec![sign_after(
        &hub,
        None,
        now_ms(),
        redaction(event, "Bridge described", blob),
    )];
    let (create, rest) = entries.split_first().unwrap();
    let (note_e, media_e) = (&rest[0], &rest[1]);
    let orders: Vec<Vec<Vec<SignedEntry>>> = vec![
        // Everything, then the redaction.
        vec![entries.clone(), red.clone()],
        // The redaction before the event exists.
        vec![red.clone(), entries.clone()],
        // Between the note and the photo.
        vec![
            vec![create.clone(), note_e.clone()],
            red.clone(),
            vec![media_e.clone()],
        ],
        // All in one batch, the redaction first.
        vec![red.iter().chain(&entries).cloned().collect()],
        // The creation alone, the redaction, then the rest.
        vec![vec![create.clone()], red.clone(), rest.to_vec()],
    ];
    let mut seen: Option<String> = None;
    for (i, batches) in orders.into_iter().enumerate() {
        let d = TempDir::new().unwrap();
        let mut b = Node::init(d.path(), SigningKey::from_bytes(&[50 + i as u8; 32])).unwrap();
        for batch in batches {
            let (good, bad) = verify_all(batch);
            assert!(bad.is_empty());
            b.apply_remote(good, now_ms()).unwrap();
        }
        let now = shown(&b, event);
        assert!(now.contains(REDACTED) && !now.contains("Jane"), "{now}");
        assert!(b.store().event_media(event).unwrap().is_empty());
        assert!(b.store().blob_erased(&blob).unwrap());
        assert!(b.store().media_named().unwrap().is_empty(), "never wanted");
        match &seen {
            None => seen = Some(now),
            Some(first) => assert_eq!(&now, first, "order {i}"),
        }
        b.store_mut().rebuild_views().unwrap();
        assert_eq!(
            seen.as_deref(),
            Some(shown(&b, event).as_str()),
            "rebuilt {i}"
        );
        assert!(b.store().audit().unwrap().ok());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_erased_blob_is_not_fetched_again_from_a_peer_that_holds_it() {
    let _t = timed("redaction_media_exchange");
    let ca = deployment("redaction CA", 60);
    let a = Peer::new(&ca, "node-a", 61);
    let b = Peer::new(&ca, "node-b", 62);
    let event = ev(5);
    let blob: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(PNG).into();
    {
        let mut n = a.node.lock().unwrap();
        n.report(&new_event("Bridge", 10.0, 50.0), event, None, now_ms())
            .unwrap();
        n.attach(event, PNG, "photo.png", None, now_ms()).unwrap();
    }
    let server = Server::start(&a);
    let s = sync(&b, server.addr).await;
    assert_eq!(s.media.fetched, 1, "{s:?}");
    assert!(b.node.lock().unwrap().media().contains(&blob));

    // A hub's redaction reaches B (as a sync from a hub would bring it).
    let hub = issue(&ca, DeviceRole::Hub, "hub-1", 63);
    {
        let mut n = b.node.lock().unwrap();
        n.store_mut()
            .add_certificates(vec![(hub.identity.author, hub.cert_der.clone())])
            .unwrap();
        let red = vec![sign_after(
            &hub.key,
            None,
            now_ms(),
            redaction(event, "Bridge described", blob),
        )];
        let (good, bad) = verify_all(red);
        assert!(bad.is_empty());
        n.apply_remote(good, now_ms()).unwrap();
        assert!(!n.media().contains(&blob), "erased at once");
        assert!(sentinel_node::net_media::wanted(&n).unwrap().is_empty());
    }

    // A still holds the blob; B does not want it, and stays without it.
    assert!(a.node.lock().unwrap().media().contains(&blob));
    let s = sync(&b, server.addr).await;
    assert_eq!((s.media.wanted, s.media.fetched), (0, 0), "{s:?}");
    assert!(!b.node.lock().unwrap().media().contains(&blob));
    // The redaction travelled to A, which erases its copy too.
    sentinel_node::testing::eventually("A to erase the blob", || {
        let n = a.node.lock().unwrap();
        !n.media().contains(&blob)
    })
    .await;

    // What a media exchange writes through refuses the erased blob.
    let n = b.node.lock().unwrap();
    let seen = Unerased {
        media: n.media().clone(),
        erased: n.store().erased_blobs().unwrap(),
    };
    assert!(!seen.has(&blob));
    assert!(seen.append_partial(&blob, 0, PNG).is_err());
    assert!(seen.finish_partial(&blob, PNG.len() as u64).is_err());
    assert!(!n.media().contains(&blob));
    assert_eq!(n.media().partial_len(&blob), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redaction_a_node_signed_is_quarantined_for_its_role() {
    let _t = timed("redaction_by_node");
    let ca = deployment("redaction CA", 70);
    let a = Peer::new(&ca, "node-a", 71);
    let b = Peer::new(&ca, "node-b", 72);
    let x = issue(&ca, DeviceRole::Node, "node-x", 73);
    {
        // A holds X's redaction (put in its log by hand) and its
        // certificate, so a session sends both.
        let mut n = a.node.lock().unwrap();
        n.report(&new_event("Bridge", 10.0, 50.0), ev(6), None, now_ms())
            .unwrap();
        n.store_mut()
            .add_certificates(vec![(x.identity.author, x.cert_der.clone())])
            .unwrap();
        let red = vec![sign_after(
            &x.key,
            None,
            now_ms(),
            redaction(ev(6), "Bridge described", [9; 32]),
        )];
        let (good, _) = verify_all(red);
        n.store_mut().apply_remote(good, now_ms()).unwrap();
    }
    let server = Server::start(&a);
    let s = sync(&b, server.addr).await;
    assert_eq!(s.quarantined, 1, "{s:?}");
    let n = b.node.lock().unwrap();
    let code: String = n
        .store()
        .conn()
        .query_row("SELECT reason_code FROM quarantine", [], |r| r.get(0))
        .unwrap();
    assert_eq!(code, "role_not_allowed");
    assert!(n.store().redactions(ev(6)).unwrap().is_empty());
    assert_eq!(n.show(ev(6)).unwrap().view.description, "Bridge described");
}

#[test]
fn a_crash_between_the_views_and_the_blob_removal_is_healed_when_the_node_opens() {
    let dir = TempDir::new().unwrap();
    let (mut a, event, _, blob) = reported(&dir);
    assert!(a.media().contains(&blob));
    // The views commit the redaction, then the process dies before the
    // file is removed (the store alone: nothing removes it).
    let red = vec![sign_after(
        &key(4343),
        None,
        now_ms(),
        redaction(event, "Bridge described", blob),
    )];
    let (good, _) = verify_all(red);
    a.store_mut().apply_remote(good, now_ms()).unwrap();
    a.store_mut().project_pending().unwrap();
    assert!(a.store().event_media(event).unwrap().is_empty());
    assert!(a.media().contains(&blob), "not removed yet");
    assert_eq!(a.store().blobs_to_erase().unwrap(), vec![blob]);
    drop(a);
    let a = Node::open(dir.path()).unwrap();
    assert!(!a.media().contains(&blob));
    assert!(a.store().blobs_to_erase().unwrap().is_empty());
    assert!(a.store().blob_erased(&blob).unwrap());
}
