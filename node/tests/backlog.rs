//! A projection backlog is worked off in bounded steps: a session's or a
//! poller's task that holds the node must not hold it for the tens of
//! seconds a million unprojected entries take (a peer gives up on a
//! session that says nothing for 30 s).

use std::time::Duration;

use sentinel_node::node::Node;
use sentinel_node::store::log::entries_after;
use sentinel_node::store::project::CHUNK;
use sentinel_node::testing::ev;
use sentinel_schema::*;
use tempfile::TempDir;

const T0: u64 = 1_795_000_000_000;

fn projected(node: &Node) -> i64 {
    node.store().projected_upto().unwrap()
}

fn events(node: &Node) -> i64 {
    node.store()
        .conn()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_backlog_is_projected_a_bounded_step_at_a_time_and_then_completely() {
    let dir = TempDir::new().unwrap();
    let mut a = Node::init(dir.path(), SigningKey::from_bytes(&[3; 32])).unwrap();
    let n = 2 * CHUNK + 100;
    let items: Vec<(EventId, NewEvent)> = (0..n)
        .map(|i| {
            let new = NewEvent {
                title: format!("report {i}"),
                description: "water over the road".into(),
                category: "flood".into(),
                severity: 2,
                location: Point::new(10.0 + i as f64 * 1e-4, 50.0).unwrap(),
                reported_ms: T0,
            };
            (ev(i as u128 + 1), new)
        })
        .collect();
    a.report_many(&items, None, T0).unwrap();
    let entries = entries_after(a.store().conn(), &a.author(), 0, n + 1).unwrap();
    assert_eq!(entries.len(), n);

    // B commits them to its log without projecting: a backlog.
    let dir_b = TempDir::new().unwrap();
    let mut b = Node::init(dir_b.path(), SigningKey::from_bytes(&[4; 32])).unwrap();
    let (good, bad) = verify_all(entries);
    assert!(bad.is_empty());
    b.store_mut().apply_remote(good, T0).unwrap();
    let before = projected(&b);
    assert_eq!(events(&b), 0);

    // A zero budget still finishes one whole chunk, and says more waits.
    let (done, more) = b.catch_up_views_within(Duration::ZERO).unwrap();
    assert_eq!(done.entries, CHUNK);
    assert!(more, "{} entries left", n - CHUNK);
    assert_eq!(events(&b), CHUNK as i64);
    assert!(projected(&b) > before);

    // Steps until nothing is left: every event shows, exactly once.
    let mut steps = 1;
    loop {
        let (_, more) = b.catch_up_views_within(Duration::ZERO).unwrap();
        steps += 1;
        if !more {
            break;
        }
        assert!(steps < 10, "the backlog never ends");
    }
    assert_eq!(events(&b), n as i64);
    assert_eq!(steps, 4, "three chunks, then one call that finds none");
    let (done, more) = b.catch_up_views_within(Duration::from_secs(1)).unwrap();
    assert_eq!((done.entries, more), (0, false));
    assert_eq!(b.catch_up_views().unwrap().entries, 0);
}
