//! The tests on bad links: a lossy, slow, reordering link delivers
//! everything and resends nothing the receiver had committed; a link cut
//! for minutes heals and the outbox drains; a hub killed mid-sync comes
//! back on the same address and the interrupted syncs say they failed.
//!
//! "Resent" is measured on both sides of every completed session: the
//! sender's `sent` (entries the receiver acknowledged) against what the
//! hub lacked when the session began (read from the hub's database), and
//! the receiver's `received` against `applied` (an entry received that
//! the store already held is not applied). A session cut short reports
//! nothing on either side: what it carried is the unacknowledged batch,
//! and the next session shows whether any of it came twice.

use std::time::{Duration, Instant};

use sentinel_schema::AuthorId;
use serde_json::Value;

use super::relay::Impairment;
use super::{bench, Bench, VIA_A, VIA_B};
use crate::fleet::{count_knob, hub_chain, reports_file, FieldNode};

/// 30 % loss, half a second of delay with 100 ms of jitter, a quarter of
/// the datagrams overtaking the rest.
const BAD: Impairment = Impairment {
    loss: 0.3,
    delay: Duration::from_millis(500),
    jitter: Duration::from_millis(100),
    reorder: 0.25,
};
/// One `sync` run may take this long on a bad link before it counts as
/// hung (and the test fails).
const RUN: Duration = Duration::from_secs(240);

/// The totals over the sessions of one direction.
#[derive(Debug, Default)]
struct Tally {
    runs: u64,
    failed: u64,
    /// Entries the receivers acknowledged, over completed sessions.
    sent: u64,
    /// What the hub lacked of the sender's chain when those began.
    lacked: u64,
    received: u64,
    applied: u64,
    /// Runs whose exit code and summary disagree (exit 0 without having
    /// caught up): checked at the end, after the figures are printed.
    dishonest: Vec<String>,
}

impl Tally {
    fn resent(&self) -> i64 {
        self.sent as i64 - self.lacked as i64
    }

    fn duplicates(&self) -> u64 {
        self.received - self.applied
    }
}

/// Runs `sync PEER` on `node` until one run catches up (each run bounded
/// by [`RUN`], all by `limit`), checking each run's honesty (exit 0 if and
/// only if caught up) and adding its figures to `t`. `author` is the
/// node's key when what it sends is measured against the hub's copy.
async fn sync_until_caught_up(
    b: &Bench,
    node: &FieldNode,
    peer: &str,
    author: Option<&AuthorId>,
    limit: Duration,
    t: &mut Tally,
) -> Value {
    let store = b.fleet.store().await.unwrap();
    let deadline = Instant::now() + limit;
    loop {
        let lacked = match author {
            Some(a) => {
                let local = node.stats().unwrap()["local_entries"].as_u64().unwrap();
                local - hub_chain(&store, a).await.unwrap()
            }
            None => 0,
        };
        let run = node.run(&["--json", "sync", peer], RUN).unwrap();
        t.runs += 1;
        let summary = run.summary();
        let caught_up = summary.as_ref().is_some_and(|s| s["caught_up"] == true);
        if run.status.success() != caught_up {
            t.dishonest.push(format!(
                "sync {peer} exited {} but its summary says caught_up = {caught_up}: {} {}",
                run.status,
                run.stdout.trim(),
                run.stderr.trim()
            ));
        }
        if let (true, Some(s)) = (caught_up, summary) {
            t.sent += s["sent"].as_u64().unwrap();
            t.lacked += lacked;
            t.received += s["received"].as_u64().unwrap();
            t.applied += s["applied"].as_u64().unwrap();
            assert_eq!(s["quarantined"], 0, "{s}");
            return s;
        }
        t.failed += 1;
        eprintln!(
            "  sync {peer}: failed after {:.1} s ({}): {} {}",
            run.took.as_secs_f64(),
            run.status,
            run.summary()
                .map(|s| s["error"].to_string())
                .unwrap_or_default(),
            run.stderr.trim()
        );
        assert!(
            Instant::now() < deadline,
            "no sync with {peer} caught up within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Node A's events are exactly B's, both stores verify, A's outbox is
/// empty and the hub holds A's chain whole.
async fn converged(b: &Bench, author: &AuthorId, n_events: usize) {
    let a_ids = b.a.event_ids().unwrap();
    assert_eq!(a_ids.len(), n_events);
    assert_eq!(
        b.b.event_ids().unwrap(),
        a_ids,
        "B lacks some of A's events"
    );
    b.a.audit().unwrap();
    b.b.audit().unwrap();
    let a = b.a.stats().unwrap();
    assert_eq!(a["awaiting_receipt"], 0, "{a}");
    let store = b.fleet.store().await.unwrap();
    assert_eq!(
        hub_chain(&store, author).await.unwrap(),
        a["local_entries"].as_u64().unwrap()
    );
}

/// What the hub's session reports (one JSON line per session on its
/// standard error, in `hub*.log`) say of the sessions with `peer_name`
/// that ended normally: sessions, entries received, and entries received
/// that the hub already held (received − applied − quarantined).
fn hub_received(b: &Bench, peer_name: &str) -> (u64, u64, u64) {
    let (mut sessions, mut received, mut held) = (0, 0, 0);
    for e in std::fs::read_dir(b.fleet.dir.path()).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("hub") && name.ends_with(".log")) {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if v["peer_name"] != peer_name || !v["received"].is_u64() {
                continue;
            }
            let n = |k: &str| v[k].as_u64().unwrap_or(0);
            sessions += 1;
            received += n("received");
            held += n("received") - n("applied") - n("quarantined");
        }
    }
    (sessions, received, held)
}

/// Prints the hub's session reports and refusals (its log lines naming
/// a peer), for reading a failure.
fn print_hub_sessions(b: &Bench) {
    let mut names: Vec<_> = std::fs::read_dir(b.fleet.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("hub") && n.ends_with(".log"))
        })
        .collect();
    names.sort();
    for path in names {
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            if line.contains("peer") {
                eprintln!("  {}: {line}", path.file_name().unwrap().to_string_lossy());
            }
        }
    }
}

fn counts(c: &super::relay::Counts) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    format!(
        "{} datagrams carried, {} dropped; {} bytes up, {} down",
        c.carried.load(Relaxed),
        c.dropped.load(Relaxed),
        c.bytes_up.load(Relaxed),
        c.bytes_down.load(Relaxed)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossy_slow_reordering_link_delivers_everything_once() {
    let test = "netem::a_lossy_slow_reordering_link_delivers_everything_once";
    let Some(b) = bench(test).await else { return };
    let began = Instant::now();
    let n = count_knob("SENTINEL_NETEM_EVENTS", 120) as usize;
    let _hub = b.fleet.start_hub(Some(&b.net.hub.0), "hub.log").unwrap();
    let file = reports_file(b.fleet.dir.path(), "lossy", n);
    assert_eq!(b.a.import(&file).unwrap(), n as u64);
    let author = b.a.author().unwrap();
    *b.net.a.lock().unwrap() = BAD;
    *b.net.b.lock().unwrap() = BAD;

    let mut up = Tally::default();
    sync_until_caught_up(
        &b,
        &b.a,
        VIA_A,
        Some(&author),
        Duration::from_secs(900),
        &mut up,
    )
    .await;
    let up_took = began.elapsed();
    let mut down = Tally::default();
    sync_until_caught_up(&b, &b.b, VIA_B, None, Duration::from_secs(900), &mut down).await;
    // A once more, for anything B's session brought the hub (nothing).
    sync_until_caught_up(&b, &b.a, VIA_A, Some(&author), RUN, &mut up).await;
    converged(&b, &author, n).await;

    let hub = hub_received(&b, "node-ada");
    print_hub_sessions(&b);
    eprintln!(
        "netem lossy: {n} reports A -> hub -> B over 30% loss, 500 ms delay (+0-100 ms), \
         25% reordered: A -> hub {} runs ({} failed) in {:.1} s, sent {} of {} lacked \
         (resent {}), the hub's {} completed sessions with A received {} entries, {} it \
         already held; hub -> B {} runs ({} failed), received {}, applied {} (duplicates {}); \
         link A: {}; link B: {}; {:.1} s in all",
        up.runs,
        up.failed,
        up_took.as_secs_f64(),
        up.sent,
        up.lacked,
        up.resent(),
        hub.0,
        hub.1,
        hub.2,
        down.runs,
        down.failed,
        down.received,
        down.applied,
        down.duplicates(),
        counts(&b.net.a_counts),
        counts(&b.net.b_counts),
        began.elapsed().as_secs_f64()
    );
    assert_eq!(up.resent(), 0, "A sent the hub entries it already held");
    assert_eq!(hub.2, 0, "the hub received entries it already held");
    assert_eq!(down.duplicates(), 0, "B received entries it already held");
    let dishonest: Vec<_> = up.dishonest.iter().chain(&down.dishonest).collect();
    assert!(dishonest.is_empty(), "dishonest exit codes: {dishonest:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_cut_for_minutes_heals_and_a_killed_hub_comes_back() {
    let test = "netem::a_link_cut_for_minutes_heals_and_a_killed_hub_comes_back";
    let Some(b) = bench(test).await else { return };
    let began = Instant::now();
    let cut_for = Duration::from_secs(count_knob("SENTINEL_NETEM_CUT_S", 120));
    let n = count_knob("SENTINEL_NETEM_EVENTS", 120) as usize;
    let store = b.fleet.store().await.unwrap();
    let mut hub = b.fleet.start_hub(Some(&b.net.hub.0), "hub.log").unwrap();
    let file = reports_file(b.fleet.dir.path(), "cut", n);
    assert_eq!(b.a.import(&file).unwrap(), n as u64);
    let author = b.a.author().unwrap();
    let local = b.a.stats().unwrap()["local_entries"].as_u64().unwrap();
    *b.net.a.lock().unwrap() = BAD;

    // A starts pushing over the bad link; the link is cut once 20 KB of
    // A's datagrams have crossed the relay: under half of the push (its
    // 120 reports alone are ~45 KB on the wire), so the hub cannot hold
    // them all. The relay's trip wire makes the cut land at that byte
    // count however late this thread runs; the veth goes down after.
    // A run that ends before that (the bad link) is started again, as a
    // script would.
    let mut dishonest = Vec::new();
    b.net.a_counts.stall_after_up(20_000);
    let mut sync = b.a.start(&["--json", "sync", VIA_A]).unwrap();
    let mut early_ends = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while !b.net.a_counts.stalled() {
        if !sync.is_running() {
            let ended = sync.finish(RUN).unwrap();
            let caught_up = ended.summary().is_some_and(|s| s["caught_up"] == true);
            if ended.status.success() != caught_up {
                dishonest.push(format!(
                    "A's sync exited {} with {}",
                    ended.status,
                    ended.stdout.trim()
                ));
            }
            early_ends.push(format!("{}: {}", ended.status, ended.stdout.trim()));
            sync = b.a.start(&["--json", "sync", VIA_A]).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "A's syncs delivered nothing: {early_ends:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.net.set_a_link(false).unwrap();
    b.net.a_counts.unstall();
    let cut_at = Instant::now();
    let held_at_cut = store.head(&author).await.unwrap().map_or(0, |h| h.seq);
    assert!(
        held_at_cut < local,
        "the hub held all {local} of A's entries before the cut: the cut proves nothing"
    );
    // The interrupted sync must say it failed (checked at the end,
    // after the figures are printed).
    let cut_run = sync.finish(RUN).unwrap();
    let detected = cut_at.elapsed();
    if cut_run.status.success() {
        dishonest.push(format!(
            "a sync cut off part-way ({held_at_cut} of {local} at the hub) exited {}: {}",
            cut_run.status,
            cut_run.stdout.trim()
        ));
    }

    // While A is cut off: a sync with no link fails, and says so…
    let blind = b.a.run(&["--json", "sync", VIA_A], RUN).unwrap();
    if blind.status.success() {
        dishonest.push(format!(
            "a sync over a cut link exited {}: {}",
            blind.status,
            blind.stdout.trim()
        ));
    }
    // …and B, on a slow link of its own, pulls from the hub while the
    // hub is killed and started again on the same address.
    *b.net.b.lock().unwrap() = Impairment {
        delay: Duration::from_millis(500),
        ..Impairment::default()
    };
    let b_sync = b.b.start(&["--json", "sync", VIA_B]).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    drop(hub); // SIGKILL
    let killed_at = Instant::now();
    hub = b.fleet.start_hub(Some(&b.net.hub.0), "hub-2.log").unwrap();
    let restarted_in = killed_at.elapsed();
    let b_run = b_sync.finish(RUN).unwrap();
    let b_caught_up = b_run.summary().is_some_and(|s| s["caught_up"] == true);
    if b_run.status.success() != b_caught_up {
        dishonest.push(format!(
            "B's sync, whose hub was killed, exited {} with {} {}",
            b_run.status,
            b_run.stdout.trim(),
            b_run.stderr.trim()
        ));
    }
    let mut down = Tally::default();
    let b_back = Instant::now();
    sync_until_caught_up(&b, &b.b, VIA_B, None, Duration::from_secs(300), &mut down).await;
    let b_recovered = b_back.elapsed();
    let held = hub_chain(&store, &author).await.unwrap();
    assert_eq!(
        b.b.event_ids().unwrap().len() as u64,
        held,
        "B does not hold what the hub holds of A"
    );

    // The rest of the cut, then heal, and A's outbox drains.
    tokio::time::sleep(cut_for.saturating_sub(cut_at.elapsed())).await;
    b.net.set_a_link(true).unwrap();
    let healed_at = Instant::now();
    let mut up = Tally::default();
    sync_until_caught_up(
        &b,
        &b.a,
        VIA_A,
        Some(&author),
        Duration::from_secs(600),
        &mut up,
    )
    .await;
    let recovered = healed_at.elapsed();
    sync_until_caught_up(&b, &b.b, VIA_B, None, Duration::from_secs(300), &mut down).await;
    converged(&b, &author, n).await;
    drop(hub);
    let hub_seen = hub_received(&b, "node-ada");
    print_hub_sessions(&b);

    eprintln!(
        "netem cut: {n} reports; {} of A's syncs ended before delivering anything; link A cut for {:.0} s with {held_at_cut} of {local} at the \
         hub; the cut sync failed after {:.1} s ({}); a sync during the cut failed in {:.1} s; \
         hub SIGKILLed during B's sync and back in {:.1} s (B's run: {}), B caught up {:.1} s \
         later; after the heal A caught up in {:.1} s ({} runs, {} failed), sent {} of {} \
         lacked (resent {}), the hub's {} completed sessions with A received {} entries, {} \
         it already held; B received {}, applied {} (duplicates {}); {:.1} s in all",
        early_ends.len(),
        cut_for.as_secs_f64(),
        detected.as_secs_f64(),
        cut_run.status,
        blind.took.as_secs_f64(),
        restarted_in.as_secs_f64(),
        b_run.status,
        b_recovered.as_secs_f64(),
        recovered.as_secs_f64(),
        up.runs,
        up.failed,
        up.sent,
        up.lacked,
        up.resent(),
        hub_seen.0,
        hub_seen.1,
        hub_seen.2,
        down.received,
        down.applied,
        down.duplicates(),
        began.elapsed().as_secs_f64()
    );
    assert_eq!(up.resent(), 0, "A sent the hub entries it already held");
    assert_eq!(hub_seen.2, 0, "the hub received entries it already held");
    assert_eq!(down.duplicates(), 0, "B received entries it already held");
    dishonest.extend(up.dishonest);
    dishonest.extend(down.dishonest);
    assert!(dishonest.is_empty(), "dishonest exit codes: {dishonest:#?}");
}
