//! The sync state machine does no IO and reads no clock: its sources
//! (outside a future `quic*` driver module) must not name an IO crate, the
//! network, the file system or the system clock. Comments may.

use std::path::{Path, PathBuf};

const FORBIDDEN: &[&str] = &[
    "tokio",
    "quinn",
    "rusqlite",
    "std::net",
    "std::fs",
    "SystemTime",
    "Instant::now",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_state_machine_does_no_io_and_reads_no_clock() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 5, "found the sources");
    let mut found = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let in_quic = file
            .strip_prefix(&src)
            .unwrap()
            .components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with("quic"));
        if name.starts_with("quic") || in_quic {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN {
                if code.contains(word) {
                    found.push(format!("{}:{}: {word}", file.display(), i + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "IO or clock in the sans-IO core:\n{}",
        found.join("\n")
    );
}
