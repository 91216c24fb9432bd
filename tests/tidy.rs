//! Architecture rules that hold by absence (see ARCHITECTURE.md): checked
//! here so that breaking one fails the build, not a review.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn metadata() -> Value {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata JSON")
}

/// Normal (non-dev) dependencies of a workspace package.
fn deps(meta: &Value, package: &str) -> Vec<String> {
    let pkg = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == package)
        .unwrap_or_else(|| panic!("package {package} not in workspace"));
    pkg["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"].is_null())
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn dependencies_point_one_way() {
    let meta = metadata();
    let forbidden: &[(&str, &[&str])] = &[
        (
            "sentinel-schema",
            &[
                "sentinel-certs",
                "sentinel-sync",
                "sentinel-http",
                "sentinel-node",
                "sentinel-hub",
            ],
        ),
        (
            "sentinel-certs",
            &[
                "sentinel-sync",
                "sentinel-http",
                "sentinel-node",
                "sentinel-hub",
            ],
        ),
        (
            "sentinel-sync",
            &["sentinel-http", "sentinel-node", "sentinel-hub"],
        ),
        // What both HTTP APIs share; below the two servers, beside sync.
        (
            "sentinel-http",
            &["sentinel-sync", "sentinel-node", "sentinel-hub"],
        ),
        ("sentinel-node", &["sentinel-hub"]),
        ("sentinel-hub", &["sentinel-node"]),
    ];
    for (pkg, never) in forbidden {
        let d = deps(&meta, pkg);
        for n in *never {
            assert!(!d.contains(&n.to_string()), "{pkg} must not depend on {n}");
        }
    }
}

#[test]
fn schema_does_no_io() {
    let meta = metadata();
    let io_crates = [
        "tokio",
        "rusqlite",
        "quinn",
        "rustls",
        "axum",
        "reqwest",
        "tokio-postgres",
        "directories",
        "getrandom",
        "rand",
        "tracing",
    ];
    for d in deps(&meta, "sentinel-schema") {
        assert!(
            !io_crates.contains(&d.as_str()),
            "sentinel-schema must not depend on {d}"
        );
    }
    let io_apis = [
        "std::fs",
        "std::net",
        "std::process",
        "std::env",
        "std::io::stdin",
        "SystemTime",
        "Instant::now",
        "thread_rng",
        "OsRng",
    ];
    for file in rust_files(&root().join("schema/src")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for api in io_apis {
            assert!(
                !text.contains(api),
                "{} uses {api}: schema does no IO and reads no clock",
                file.display()
            );
        }
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    assert!(!out.is_empty() || !dir.ends_with("src"));
    out
}

#[test]
fn ci_runs_exactly_the_readme_test_command() {
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        ci.contains("exec scripts/test"),
        ".ci/run must run scripts/test"
    );
    assert!(
        readme.contains("\nscripts/test\n"),
        "README must show scripts/test"
    );
    assert!(
        readme.contains("\nscripts/demo\n"),
        "README must show scripts/demo"
    );
}
