//! The node's store on a disk that loses power: `sentinel-node import`
//! writes batches and prints `{"acknowledged": n}` after each commit; the
//! power is cut a moment after a drawn acknowledgement, the node is
//! SIGKILLed, and once the disk is back every acknowledged event must be
//! in the store and `audit verify` must pass.
//!
//! Every cycle imports the same file: the importer skips what the store
//! already holds and counts its acknowledgements from zero, in file
//! order, so "acknowledged n" names the first n events the store lacked
//! when the cycle began. A store that holds the whole file is replaced by
//! a new one, so long runs keep importing.

use std::collections::BTreeSet;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use sentinel::deploy::Binaries;

use super::{
    can_run, check_audit, cycles, event_ids, events_file, fuse_missing, kill, node_json, seed,
    spawn_import, Disk, Rng,
};

/// Events in the file, and per import transaction.
const N_EVENTS: usize = 400;
const BATCH: usize = 20;
/// An import that acknowledges nothing for this long is hung.
const HANG: Duration = Duration::from_secs(60);

#[test]
fn acknowledged_node_entries_survive_a_power_cut() {
    let test = "acknowledged_node_entries_survive_a_power_cut";
    // The knobs first: a bad one is an error even where the test skips.
    let (seed, cycles) = (seed(), cycles(4));
    if !can_run(test, fuse_missing()) {
        return;
    }
    eprintln!(
        "{test}: seed {seed:#x}, {cycles} power cuts \
         (SENTINEL_POWERLOSS_SEED / SENTINEL_POWERLOSS_CYCLES)"
    );
    let began = Instant::now();
    let bin = Binaries::beside_current_exe().unwrap().node;
    let tmp = tempfile::tempdir().unwrap();
    let disk = Disk::new(tmp.path());
    let mut rng = Rng(seed);
    let file = tmp.path().join("events.geojson");
    let ids = events_file(&file, N_EVENTS, &mut rng);

    let mut mount = disk.mount();
    let mut n_store = 0;
    let mut store = disk.at.join("store-0");
    node_json(&bin, &store, &[], &["init"]);
    let mut have: BTreeSet<String> = BTreeSet::new();
    let (mut total_acked, mut dropped_bytes) = (0, 0);
    for cycle in 1..=cycles {
        if have.len() == N_EVENTS {
            n_store += 1;
            store = disk.at.join(format!("store-{n_store}"));
            node_json(&bin, &store, &[], &["init"]);
            have.clear();
        }
        let context = format!("seed {seed:#x} cycle {cycle} (store {n_store})");
        let pending: Vec<&String> = ids.iter().filter(|id| !have.contains(*id)).collect();
        let max_batches = pending.len().div_ceil(BATCH) as u64;
        let cut_after = rng.between(1, max_batches.clamp(1, 6)) as usize;
        let then = Duration::from_micros(rng.between(0, 30_000));

        let mut import = spawn_import(&bin, &store, &file, BATCH);
        let mut n_lines = 0;
        loop {
            match import.acks.recv_timeout(HANG) {
                Ok(_) => {
                    n_lines += 1;
                    if n_lines == cut_after {
                        std::thread::sleep(then);
                        break;
                    }
                }
                // The import finished first.
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("{context}: import hung"),
            }
        }
        let cut = mount.cut();
        kill(&mut import.child);
        let acked = import.reader.join().unwrap();
        mount.unmount().unwrap();
        dropped_bytes += cut.bytes;
        total_acked += acked;

        // The machine comes back.
        mount = disk.mount();
        let now: BTreeSet<String> = event_ids(&bin, &store).into_iter().collect();
        for id in &now {
            assert!(
                ids.contains(id),
                "{context}: the store holds {id}, not in the file"
            );
        }
        let lost: Vec<&&String> = pending[..acked]
            .iter()
            .filter(|id| !now.contains(**id))
            .collect();
        assert!(
            lost.is_empty(),
            "{context}: {} of {acked} acknowledged events are gone after the power cut \
             (first: {})",
            lost.len(),
            lost[0]
        );
        let kept_before: Vec<&String> = have.iter().filter(|id| !now.contains(*id)).collect();
        assert!(
            kept_before.is_empty(),
            "{context}: events from earlier cycles are gone: {kept_before:?}"
        );
        check_audit(&bin, &store, now.len(), &context);
        eprintln!(
            "cycle {cycle:>3}: cut {:>5.1} ms after ack {cut_after}: acked {acked:>3}, \
             events {:>3} -> {:>3}, dropped {} unsynced bytes in {} files",
            then.as_secs_f64() * 1e3,
            have.len(),
            now.len(),
            cut.bytes,
            cut.files
        );
        have = now;
    }
    mount.unmount().unwrap();
    assert!(
        total_acked > 0,
        "no cycle acknowledged anything: nothing was tested"
    );
    eprintln!(
        "{test}: {cycles} power cuts, {total_acked} acknowledged events all kept, \
         {dropped_bytes} unsynced bytes dropped, {:.1} s",
        began.elapsed().as_secs_f64()
    );
}
