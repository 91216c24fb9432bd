//! Background sync on a bad link, with no one acting: node A runs
//! `serve --peer HUB` (background sync on by default) inside its
//! namespace; the hub is killed mid-push and started again, A's link is
//! cut for minutes and healed, and A's outbox must drain by itself each
//! time — nobody types `sync`.

use std::time::{Duration, Instant};

use sentinel::deploy::process;

use super::relay::Impairment;
use super::{bench, VIA_A, VIA_B};
use crate::fleet::{count_knob, hub_chain, reports_file};

/// How long A may take, after the hub is back or the link heals, to push
/// everything by itself (its backoff is capped at `--retry-max 5`).
const RECOVER: Duration = Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_sync_resumes_after_a_hub_kill_and_a_cut_with_no_one_acting() {
    let test = "netem::background::background_sync_resumes_after_a_hub_kill_and_a_cut";
    let Some(b) = bench(test).await else { return };
    let began = Instant::now();
    let cut_for = Duration::from_secs(count_knob("SENTINEL_NETEM_CUT_S", 120));
    let n = count_knob("SENTINEL_NETEM_EVENTS", 120) as usize;
    let store = b.fleet.store().await.unwrap();
    let mut hub = b.fleet.start_hub(Some(&b.net.hub.0), "hub.log").unwrap();
    let file = reports_file(b.fleet.dir.path(), "background", n);
    assert_eq!(b.a.import(&file).unwrap(), n as u64);
    let author = b.a.author().unwrap();
    let local = b.a.stats().unwrap()["local_entries"].as_u64().unwrap();
    *b.net.a.lock().unwrap() = Impairment {
        loss: 0.3,
        delay: Duration::from_millis(500),
        jitter: Duration::from_millis(100),
        reorder: 0.25,
    };

    // The hub is killed while A's first batch is in flight: the relay's
    // trip wire stops the link after 20 KB of A's datagrams (under half
    // the push), so the hub cannot have committed it all however late
    // this thread runs.
    b.net.a_counts.stall_after_up(20_000);
    // A serves, with the hub as its peer: nothing else is ever run on A.
    let node = b.a.node.bin().to_string_lossy().into_owned();
    let ns = b.net.node_a.0.clone();
    let serving = process::spawn(
        std::path::Path::new("ip"),
        &[
            "netns",
            "exec",
            &ns,
            &node,
            "--json",
            "serve",
            "--listen",
            "10.19.1.2:7447",
            "--peer",
            VIA_A,
            "--retry-max",
            "5",
        ],
        b.a.node.env(),
        b.fleet.dir.path().join("a-serve.log"),
        &["listening"],
    );
    let (serve, _) = serving.expect("A's serve --peer");
    let head = || async { store.head(&author).await.unwrap().map_or(0, |h| h.seq) };

    // The push starts by itself.
    let deadline = Instant::now() + RECOVER;
    while !b.net.a_counts.stalled() {
        assert!(
            Instant::now() < deadline,
            "A's background sync pushed nothing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(hub);
    let at_kill = head().await;
    assert!(
        at_kill < local,
        "the hub held all of A's entries before the kill"
    );
    b.net.a_counts.unstall();
    hub = b.fleet.start_hub(Some(&b.net.hub.0), "hub-2.log").unwrap();
    let restarted = Instant::now();
    while head().await < local {
        assert!(
            restarted.elapsed() < RECOVER,
            "A did not push everything by itself after the hub came back ({} of {local})",
            head().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resumed_in = restarted.elapsed();

    // Cut A's link; the officer goes on reporting while it is down.
    b.net.set_a_link(false).unwrap();
    let cut_at = Instant::now();
    let more = reports_file(b.fleet.dir.path(), "offline", n);
    assert_eq!(b.a.import(&more).unwrap(), n as u64);
    let local = local + n as u64;
    tokio::time::sleep(cut_for.saturating_sub(cut_at.elapsed())).await;
    let at_heal = head().await;
    assert!(
        at_heal < local,
        "entries written during the cut reached the hub"
    );
    b.net.set_a_link(true).unwrap();
    let healed = Instant::now();
    while head().await < local {
        assert!(
            healed.elapsed() < RECOVER,
            "A's outbox did not drain by itself after the heal ({} of {local})",
            head().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained_in = healed.elapsed();
    drop(serve);
    assert_eq!(hub_chain(&store, &author).await.unwrap(), local);
    // A one-shot sync afterwards finds nothing left to send (the hub's
    // heads cover what a receipt killed with `serve` may have missed).
    let check =
        b.a.run(&["--json", "sync", VIA_A], Duration::from_secs(240))
            .unwrap();
    let s = check.summary().unwrap_or_default();
    assert!(check.status.success(), "{} {}", check.stdout, check.stderr);
    assert_eq!(s["sent"], 0, "A sent again what the hub held: {s}");
    let a = b.a.stats().unwrap();
    assert_eq!(a["awaiting_receipt"], 0, "{a}");

    // And B, pulling once, gets all of A's reports.
    let run =
        b.b.run(&["--json", "sync", VIA_B], Duration::from_secs(240))
            .unwrap();
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(b.b.event_ids().unwrap(), b.a.event_ids().unwrap());
    b.b.audit().unwrap();
    drop(hub);
    eprintln!(
        "netem background: {n} reports over 30% loss, 500 ms delay, 25% reordered; hub \
         SIGKILLed mid-push with {at_kill} of {n} held, A pushed the rest by itself {:.1} s \
         after the restart; link cut {:.0} s while {n} more were written ({at_heal} of \
         {local} held at the heal); A's outbox drained by itself {:.1} s after the heal; \
         {:.1} s in all",
        resumed_in.as_secs_f64(),
        cut_for.as_secs_f64(),
        drained_in.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
}
