//! Runs the README's demo example end to end (it checks itself and exits
//! non-zero when a check does not come out as it should).

use std::path::PathBuf;
use std::process::Command;

#[test]
fn demo_runs_and_detects_every_rewrite() {
    // `cargo test` builds examples next to the test binaries' folder.
    let exe = std::env::current_exe().unwrap();
    let examples = exe.parent().unwrap().parent().unwrap().join("examples");
    let demo: PathBuf = examples.join(format!("demo{}", std::env::consts::EXE_SUFFIX));
    assert!(
        demo.exists(),
        "demo example not built at {}",
        demo.display()
    );
    let out = Command::new(&demo)
        .args(["--quick", "--exit"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "bad signature",
        "seq gap",
        "fork",
        "another author",
        "Events in the city-centre box",
        "conflict  title",
        "every chain verifies",
        "All checks came out",
    ] {
        assert!(
            stdout.contains(line),
            "demo output lacks {line:?}:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("All three nodes and the hub hold the same heads")
            || stdout.contains("(skipped: no PostgreSQL"),
        "demo output lacks the hub part:\n{stdout}"
    );
    assert!(
        stdout.contains("Hub (admin's pages):  http://127.0.0.1:")
            && stdout.contains("Node ada (officer's pages): http://127.0.0.1:")
            && stdout.contains("(--exit: stopping the deployment.)")
            || stdout.contains("== Part 4") && stdout.contains("(skipped: no PostgreSQL"),
        "demo output lacks the running deployment:\n{stdout}"
    );
}
