//! Signed audit bundles from a real hub (real PostgreSQL, a real node
//! syncing over QUIC, the hub's own checkpoints), verified with nothing but
//! the CA's certificate (`sentinel_sync::bundle::verify_bundle`); and each
//! kind of tampering named: a changed entry byte, a dropped entry, a
//! swapped certificate, a bad signature, another CA.

use sentinel_hub::audit::bundle::{write_bundle, BundleRequest};
use sentinel_hub::checkpoint::Checkpointer;
use sentinel_schema::{DeviceRole, SignedEntry};
use sentinel_sync::bundle::{verify_bundle, Bundle, BundleReport, Contents};

use crate::e2e::{deployment, issue, key, now_ms, sync, timed, Hub, Peer};

const HOUR: u64 = 3_600_000;

fn problems(r: &BundleReport) -> String {
    format!("{:#?}", r.problems)
}

/// Re-signs changed contents with the hub's key: what a hub (or a thief of
/// its key) could do, which the checks inside must still catch.
fn resign(contents: &Contents, hub_cert: &[u8]) -> Vec<u8> {
    Bundle::sign(contents, hub_cert.to_vec(), &key(90)).encode()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bundle_from_a_real_hub_verifies_with_only_the_ca_and_names_tampering() {
    let _t = timed("a_bundle_from_a_real_hub_verifies_with_only_the_ca");
    let ca = deployment("Sentinel bundle test CA", 1);
    let hub = Hub::start(&ca, 10).await;
    let node = Peer::new(&ca, "node-1", 11);
    node.report(1_000, 4);
    assert_eq!(sync(&node, &hub).await.sent, 4);
    // The hub attests the node's seq 4; a fifth entry comes after.
    let written = Checkpointer::new(hub.own.clone())
        .write_if_changed(now_ms())
        .await
        .unwrap();
    assert_eq!(written.len(), 1);
    node.report(2_000, 1);
    assert_eq!(sync(&node, &hub).await.sent, 1);
    hub.store.project_pending().await.unwrap();

    let hub_id = issue(&ca, DeviceRole::Hub, "hub-1", 90);
    let now = now_ms();
    let request = BundleRequest {
        from_ms: now - HOUR,
        to_ms: now + HOUR,
        area: None,
    };
    let (bytes, summary) = write_bundle(&hub.store, &hub_id, &request, now)
        .await
        .unwrap();
    assert!(summary.selected >= 5, "{summary}");
    assert_eq!(summary.checkpoints, 1, "{summary}");

    let report = verify_bundle(&bytes, ca.cert()).unwrap();
    assert!(report.ok(), "{}", problems(&report));
    assert!(report.signature_ok);
    assert_eq!(report.hub.as_deref(), Some("hub-1"));
    let author = node.enrollment.identity.author.to_hex();
    let run = report.runs.iter().find(|r| r.author == author).unwrap();
    assert_eq!((run.first_seq, run.last_seq, run.entries), (1, 5, 5));
    assert_eq!(
        (run.name.as_deref(), run.role),
        (Some("node-1"), Some("node"))
    );
    let attested = run
        .attested
        .as_ref()
        .expect("the checkpoint covers the run");
    assert_eq!(attested.seq, 4);
    assert_eq!(attested.checkpoint, written[0].id().to_hex());

    let bundle = Bundle::decode(&bytes).unwrap();
    let contents = bundle.read_contents().unwrap();
    let at = contents
        .runs
        .iter()
        .position(|r| r.author == node.enrollment.identity.author)
        .unwrap();
    let second = SignedEntry::from_bytes(contents.runs[at].entries[1].clone()).unwrap();

    // A bad signature over the bundle: only that.
    let mut bad = bundle.clone();
    bad.signature[7] ^= 1;
    let r = verify_bundle(&bad.encode(), ca.cert()).unwrap();
    assert!(!r.signature_ok);
    assert_eq!(r.problems.len(), 1, "{}", problems(&r));
    assert_eq!(r.problems[0].what, "bundle");
    assert!(
        r.problems[0].reason.contains("signature"),
        "{}",
        problems(&r)
    );

    // One byte of an entry's signature changed: the bundle's signature
    // fails, and the entry is named.
    let mut c = contents.clone();
    let entry = &mut c.runs[at].entries[1];
    let last = entry.len() - 1;
    entry[last] ^= 1;
    // The id is the hash of the bytes as they stand: named as found.
    let changed = SignedEntry::from_bytes(entry.clone()).unwrap();
    assert_ne!(changed.id(), second.id());
    let tampered = Bundle {
        contents: c.encode(),
        ..bundle.clone()
    };
    let r = verify_bundle(&tampered.encode(), ca.cert()).unwrap();
    assert!(!r.signature_ok, "{}", problems(&r));
    let named = r
        .problems
        .iter()
        .find(|p| p.what == "entry")
        .expect("the entry is named");
    assert_eq!(named.author.as_deref(), Some(author.as_str()));
    assert_eq!(named.seq, Some(2));
    assert_eq!(named.id, Some(changed.id().to_hex()));
    assert!(named.reason.contains("signature"), "{}", problems(&r));

    // An entry dropped from the run, the bundle signed again: the run and
    // the entry after the gap are named.
    let mut c = contents.clone();
    c.runs[at].entries.remove(2);
    let r = verify_bundle(&resign(&c, &hub_id.cert_der), ca.cert()).unwrap();
    assert!(r.signature_ok);
    assert!(
        r.problems
            .iter()
            .any(|p| p.what == "run" && p.reason.contains("missing")),
        "{}",
        problems(&r)
    );
    assert!(
        r.problems.iter().any(|p| p.what == "entry"
            && p.seq == Some(4)
            && p.reason.contains("does not follow seq 2")),
        "{}",
        problems(&r)
    );

    // The node's certificate swapped for another node's: none of its
    // entries has a certificate any more.
    let mut c = contents.clone();
    let other = issue(&ca, DeviceRole::Node, "node-2", 12);
    let slot = c
        .certificates
        .iter()
        .position(|d| *d == node.enrollment.cert_der)
        .expect("the node's certificate is in the bundle");
    c.certificates[slot] = other.cert_der.clone();
    let r = verify_bundle(&resign(&c, &hub_id.cert_der), ca.cert()).unwrap();
    let unknown: Vec<u64> = r
        .problems
        .iter()
        .filter(|p| p.author.as_deref() == Some(author.as_str()))
        .filter(|p| p.reason.contains("no valid certificate"))
        .filter_map(|p| p.seq)
        .collect();
    assert_eq!(unknown, vec![1, 2, 3, 4, 5], "{}", problems(&r));

    // Checked against another deployment's CA, nothing holds.
    let stranger = deployment("Another CA", 2);
    let r = verify_bundle(&bytes, stranger.cert()).unwrap();
    assert!(!r.ok());
    assert!(
        r.problems[0].reason.contains("does not chain to the CA"),
        "{}",
        problems(&r)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_area_selects_its_events_and_the_runs_reach_the_checkpoint() {
    let _t = timed("an_area_selects_its_events");
    let ca = deployment("Sentinel bundle area CA", 1);
    let hub = Hub::start(&ca, 10).await;
    let node = Peer::new(&ca, "node-1", 11);
    // Events 1000..1003 lie at longitudes 100..103, latitude 10.
    node.report(1_000, 4);
    assert_eq!(sync(&node, &hub).await.sent, 4);
    Checkpointer::new(hub.own.clone())
        .write_if_changed(now_ms())
        .await
        .unwrap();
    hub.store.project_pending().await.unwrap();
    let hub_id = issue(&ca, DeviceRole::Hub, "hub-1", 90);
    let now = now_ms();
    let request = BundleRequest::parse(
        "1970-01-01T00:00:00Z",
        "2100-01-01T00:00:00Z",
        Some("99.5,9,101.5,11".into()),
    )
    .unwrap();
    let (bytes, summary) = write_bundle(&hub.store, &hub_id, &request, now)
        .await
        .unwrap();
    assert_eq!(summary.selected, 2, "events 1000 and 1001: {summary}");
    let report = verify_bundle(&bytes, ca.cert()).unwrap();
    assert!(report.ok(), "{}", problems(&report));
    assert_eq!(report.area.as_deref(), Some("99.5,9,101.5,11"));
    assert_eq!(report.runs.len(), 1);
    let run = &report.runs[0];
    assert_eq!(
        (run.first_seq, run.last_seq),
        (1, 4),
        "the run reaches the attested head"
    );
    assert_eq!(run.attested.as_ref().map(|a| a.seq), Some(4));
}
