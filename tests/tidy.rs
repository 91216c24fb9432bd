//! Architecture rules that hold by absence (see `docs/ARCHITECTURE.md`):
//! checked here so that breaking one fails the build, not a review.
//!
//! Each rule reads the workspace's files as text and fails naming every
//! file and line that breaks it. The rules read code through a small lexer
//! (`tidy/lex.rs`), so comments and string literals are told apart from
//! code; they never compile or run what they read. Here: the dependency
//! order, the IO-free core, CI, SQL placement, import cycles and file
//! sizes; the rules about `docs/ARCHITECTURE.md` are in `tidy/docs.rs`.

mod docs;
mod lex;
mod modules;
mod sql;

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

/// Invariant 9: which workspace crates each crate may depend on (normal
/// dependencies; tests may use anything). A crate missing here fails, so a
/// new crate gets a place in the order before it gets dependencies.
const MAY_DEPEND_ON: &[(&str, &[&str])] = &[
    ("sentinel-schema", &[]),
    ("sentinel-certs", &["sentinel-schema"]),
    ("sentinel-sync", &["sentinel-schema", "sentinel-certs"]),
    // What both HTTP APIs share: below the two servers, above the
    // protocol (the sensor push route answers sync's refusals).
    ("sentinel-http", &["sentinel-schema", "sentinel-sync"]),
    // The web pages: files and their answers, nothing of the API.
    ("sentinel-ui", &[]),
    (
        "sentinel-node",
        &[
            "sentinel-schema",
            "sentinel-certs",
            "sentinel-sync",
            "sentinel-http",
            "sentinel-ui",
        ],
    ),
    (
        "sentinel-hub",
        &[
            "sentinel-schema",
            "sentinel-certs",
            "sentinel-sync",
            "sentinel-http",
            "sentinel-ui",
        ],
    ),
    // The power-loss tests' disk: a file system, nothing of Sentinel's.
    ("sentinel-lossyfs", &[]),
];

#[test]
fn dependencies_point_one_way() {
    let meta = metadata();
    let members: Vec<String> = packages(&meta).into_iter().map(|(name, _)| name).collect();
    for name in &members {
        if name == ROOT_PACKAGE {
            continue; // End-to-end tests and examples: above everything.
        }
        let Some((_, allowed)) = MAY_DEPEND_ON.iter().find(|(p, _)| p == name) else {
            panic!("{name} is not in MAY_DEPEND_ON: give it its place in the dependency order");
        };
        for d in deps(&meta, name) {
            assert!(
                !members.contains(&d) || allowed.contains(&d.as_str()),
                "{name} must not depend on {d} (invariant 9: it may depend on {allowed:?})"
            );
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

/// The root package: it hosts the end-to-end tests and examples.
const ROOT_PACKAGE: &str = "sentinel";

/// The workspace's packages as `(name, folder relative to the root)`; the
/// root package's folder is `""`.
fn packages(meta: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap());
            let dir = manifest.parent().unwrap().to_path_buf();
            (p["name"].as_str().unwrap().to_string(), rel(&dir))
        })
        .collect();
    out.sort();
    out
}

/// A package's crate roots: its library's and binaries' source files.
fn crate_roots(meta: &Value, package: &str) -> Vec<PathBuf> {
    let pkg = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == package)
        .unwrap();
    pkg["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["kind"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| matches!(k.as_str(), Some("lib" | "rlib" | "bin" | "proc-macro")))
        })
        .map(|t| PathBuf::from(t["src_path"].as_str().unwrap()))
        .collect()
}

/// `path` relative to the workspace root, with `/` between components.
fn rel(path: &Path) -> String {
    let root = root().canonicalize().unwrap();
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let r = path.strip_prefix(&root).unwrap_or(&path);
    r.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Every package's `src/` files, as `(package folder, file)`.
fn source_files(meta: &Value) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for (_, dir) in packages(meta) {
        let src = root().join(&dir).join("src");
        if src.is_dir() {
            let mut files = rust_files(&src);
            files.sort();
            out.extend(files.into_iter().map(|f| (dir.clone(), f)));
        }
    }
    out
}

/// Fails with every violation, one a line, under `rule`.
fn report(rule: &str, violations: &[String]) {
    assert!(
        violations.is_empty(),
        "{rule}\n{} violation(s):\n  {}",
        violations.len(),
        violations.join("\n  ")
    );
}

/// Files outside `*/src/store/` that may hold SQL text, with the
/// statements they may hold and why. Each is not a statement against a
/// store.
const SQL_ELSEWHERE: &[(&str, &[&str], &str)] = &[(
    "hub/src/testing.rs",
    &["CREATE DATABASE", "DROP DATABASE", "CREATE EXTENSION"],
    "the throwaway PostgreSQL server creates one database per test (with \
     PostGIS in it) and drops it, on its admin connection: provisioning a \
     server the way an operator would, not a statement against a store",
)];

/// Invariant 10: SQL statement text (see `tidy/sql.rs` for what counts)
/// appears only in string literals in files under a crate's `src/store/`
/// and in `hub/migrations/` (not Rust, so never read here), or as listed in
/// `SQL_ELSEWHERE`; an `include_str!` of a `.sql` file counts as its text.
/// Comments do not count: prose may name SQL.
///
/// Tests are outside the rule: they may set up data the way no production
/// path does. So the rule reads only `src/`, never `tests/`, `benches/` or
/// `examples/`, and skips what only tests compile inside `src/`
/// (`#[cfg(test)]` items, and files declared `#[cfg(test)] mod x;`). Code
/// under the `testing` feature is not test-only: other crates' tests link
/// it as a library, so it keeps the rule (hence `SQL_ELSEWHERE`).
#[test]
fn sql_lives_in_the_stores() {
    let meta = metadata();
    let mut violations = Vec::new();
    for (name, dir) in packages(&meta) {
        let tree = modules::tree(&crate_roots(&meta, &name));
        let test_only: Vec<String> = tree
            .files
            .iter()
            .filter(|(_, info)| info.test)
            .map(|(file, _)| rel(file))
            .collect();
        let store = if dir.is_empty() {
            "src/store/".to_string()
        } else {
            format!("{dir}/src/store/")
        };
        let src = root().join(&dir).join("src");
        if !src.is_dir() {
            continue;
        }
        let mut files = rust_files(&src);
        files.sort();
        for file in files {
            let path = rel(&file);
            if path.starts_with(&store) || test_only.contains(&path) {
                continue;
            }
            let allowed: &[&str] = SQL_ELSEWHERE
                .iter()
                .find(|(p, _, _)| *p == path)
                .map_or(&[], |(_, allowed, _)| allowed);
            let text = std::fs::read_to_string(&file).unwrap();
            for (line, what) in sql::in_source(&text, allowed) {
                violations.push(format!("{path}:{line}: {what} outside {store}"));
            }
        }
    }
    for (path, _, _) in SQL_ELSEWHERE {
        assert!(
            root().join(path).exists(),
            "SQL_ELSEWHERE lists {path}, which does not exist"
        );
    }
    report(
        "SQL text belongs in a store (invariant 10): move the statement into the crate's \
         src/store/ and call it from here",
        &violations,
    );
}

/// No loop of imports between the files of a crate's `src/`: module A
/// uses B, B uses (through any number of files) A. See `tidy/modules.rs`
/// for what counts as an import: every `use`, `pub use` and path to
/// another module of the crate in code; an import through a re-export
/// counts as an import of the re-exporting file; `mod x;` is not an
/// import, and test-only code is left out.
#[test]
fn no_import_cycles_between_files() {
    let meta = metadata();
    let mut violations = Vec::new();
    for (name, _) in packages(&meta) {
        let tree = modules::tree(&crate_roots(&meta, &name));
        violations.extend(modules::cycles(&tree, rel));
    }
    report(
        "Files import each other in a loop; cut one edge (import from the file that \
         defines the item, not through a parent's re-export; move what both need into \
         a module of its own)",
        &violations,
    );
}

/// Source files longer than `MAX_LINES` that may stay so, with why. Start
/// and keep it empty: a long file is split along a seam instead.
const LONG_FILES: &[(&str, &str)] = &[];

const MAX_LINES: usize = 600;

/// No `.rs` file under a package's `src/` is over `MAX_LINES` lines
/// unless `LONG_FILES` says why; a listed file that has shrunk leaves the
/// list.
#[test]
fn source_files_stay_small() {
    let meta = metadata();
    let mut violations = Vec::new();
    for (_, file) in source_files(&meta) {
        let lines = std::fs::read_to_string(&file).unwrap().lines().count();
        let path = rel(&file);
        let listed = LONG_FILES.iter().any(|(p, _)| *p == path);
        if lines > MAX_LINES && !listed {
            violations.push(format!(
                "{path}:{}: {lines} lines, over {MAX_LINES}; split it along a seam",
                MAX_LINES + 1
            ));
        } else if lines <= MAX_LINES && listed {
            violations.push(format!("{path}: {lines} lines now; take it off LONG_FILES"));
        }
    }
    for (p, _) in LONG_FILES {
        if !root().join(p).exists() {
            violations.push(format!("{p}: in LONG_FILES but does not exist"));
        }
    }
    report(
        &format!("Source files stay under {MAX_LINES} lines"),
        &violations,
    );
}
