//! Runs the sensor example against the node it starts in-process: it
//! enrolls, pushes four batches of signed readings over HTTP, resends one
//! (all duplicates), and the rising river raises exactly one event (the
//! example checks itself and exits non-zero otherwise).

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_sensor_example_pushes_readings_and_raises_one_event() {
    // `cargo test` builds examples next to the test binaries' folder.
    let exe = std::env::current_exe().unwrap();
    let examples = exe.parent().unwrap().parent().unwrap().join("examples");
    let sensor: PathBuf = examples.join(format!("sensor{}", std::env::consts::EXE_SUFFIX));
    assert!(
        sensor.exists(),
        "sensor example not built at {}",
        sensor.display()
    );
    let out = Command::new(&sensor).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the sensor example failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "push 4: 12 readings",
        "200: 12 stored, 0 duplicates",
        "push 1 again -> 200: 0 stored, 12 duplicates",
        "event raised: river-high: level",
    ] {
        assert!(stdout.contains(line), "output lacks {line:?}:\n{stdout}");
    }
}
