//! Rules about the crate's sources that no compiler checks.
//!
//! - The sync state machine does no IO and reads no clock (invariant 8):
//!   outside the files named in [`IO_FILES`], each with why, no source
//!   names an IO crate, the network, the file system or the system clock.
//!   Comments may. A file on the list that is gone, or that no longer
//!   needs to be there, fails the test too, so the list stays true.
//! - Dependencies between files point one way: no file reaches itself
//!   through its `use crate::…`, `use super::…` and `use self::…` lines.

use std::collections::{BTreeMap, BTreeSet};
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

/// The files that may do IO or read the clock (paths under `src/`), and
/// why. Everything else is the sans-IO core.
const IO_FILES: &[(&str, &str)] = &[
    (
        "admission.rs",
        "the gate of a sync port: QUIC Retry, handshake deadlines",
    ),
    (
        "clock.rs",
        "the one wall-clock reading the QUIC drivers share",
    ),
    ("quic.rs", "the session driver: QUIC streams on tokio"),
    (
        "quic_read.rs",
        "reads frames off a QUIC stream, prepares them on blocking threads",
    ),
    (
        "quic_pace.rs",
        "a link's bandwidth cap: waits on tokio's timer",
    ),
    (
        "quic_media/connect.rs",
        "opens and recognises media connections",
    ),
    ("quic_media/serve.rs", "answers a peer's blob streams"),
    ("quic_media/fetch.rs", "fetches blobs over blob streams"),
    (
        "quic_media/exchange.rs",
        "runs both halves on one connection",
    ),
    (
        "quic_media/tests.rs",
        "the media transport over loopback QUIC",
    ),
    ("blobs/mod.rs", "the content-addressed blob folder on disk"),
    (
        "testing/flood.rs",
        "test support: handshakes that never finish, over UDP sockets",
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

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

/// Every source file, as its path under `src/` with `/` separators.
fn all_sources() -> Vec<(String, String)> {
    let src = src();
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 5, "found the sources");
    let mut out: Vec<(String, String)> = files
        .into_iter()
        .map(|file| {
            let rel = file.strip_prefix(&src).unwrap();
            let name: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            (name.join("/"), std::fs::read_to_string(&file).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// The line without its comment (good enough: no string in this crate's
/// code holds `//`, except URLs, which hold no forbidden word).
fn code(line: &str) -> &str {
    line.split("//").next().unwrap_or("")
}

fn forbidden_in(text: &str) -> Vec<(usize, &'static str)> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for word in FORBIDDEN {
            if code(line).contains(word) {
                found.push((i + 1, *word));
            }
        }
    }
    found
}

#[test]
fn the_state_machine_does_no_io_and_reads_no_clock() {
    let files = all_sources();
    let mut found = Vec::new();
    for (name, text) in &files {
        if IO_FILES.iter().any(|(f, _)| f == name) {
            continue;
        }
        for (line, word) in forbidden_in(text) {
            found.push(format!("src/{name}:{line}: {word}"));
        }
    }
    assert!(
        found.is_empty(),
        "IO or clock in the sans-IO core:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_files_allowed_io_are_named_and_need_it() {
    let files: BTreeMap<String, String> = all_sources().into_iter().collect();
    for (name, why) in IO_FILES {
        assert!(!why.is_empty());
        let text = files
            .get(*name)
            .unwrap_or_else(|| panic!("src/{name} is allowed IO but does not exist"));
        assert!(
            !forbidden_in(text).is_empty(),
            "src/{name} does no IO any more: take it off the list"
        );
    }
}

/// The module path of a file: `a/b.rs` and `a/b/mod.rs` are `[a, b]`.
fn module_of(name: &str) -> Vec<String> {
    let mut parts: Vec<String> = name.split('/').map(str::to_owned).collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_owned());
    }
    parts
}

/// Every path a `use` statement names, brace groups expanded.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    match tree.find('{') {
        None => out.push(format!("{prefix}{tree}")),
        Some(open) => {
            let head = &tree[..open];
            let inner = &tree[open + 1..tree.rfind('}').unwrap()];
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&format!("{prefix}{head}"), &inner[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            if !inner[start..].trim().is_empty() {
                expand(&format!("{prefix}{head}"), &inner[start..], out);
            }
        }
    }
}

/// The `use` statements of a file, each with whether it sits in an
/// inline module (indented: `mod tests { use super::*; }`).
fn uses(text: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let mut current: Option<(bool, String)> = None;
    for line in text.lines() {
        let code = code(line);
        if let Some((_, stmt)) = &mut current {
            stmt.push_str(code);
        } else {
            let trimmed = code.trim_start();
            let rest = ["use ", "pub use ", "pub(crate) use ", "pub(super) use "]
                .iter()
                .find_map(|p| trimmed.strip_prefix(p));
            if let Some(rest) = rest {
                current = Some((code.starts_with(char::is_whitespace), rest.to_owned()));
            }
        }
        if current.as_ref().is_some_and(|(_, s)| s.contains(';')) {
            let (inline, stmt) = current.take().unwrap();
            out.push((inline, stmt.split(';').next().unwrap().to_owned()));
        }
    }
    out
}

#[test]
fn no_file_depends_on_itself_through_its_imports() {
    let files = all_sources();
    let modules: BTreeMap<Vec<String>, String> = files
        .iter()
        .map(|(name, _)| (module_of(name), name.clone()))
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, text) in &files {
        let here = module_of(name);
        for (inline, stmt) in uses(text) {
            let mut paths = Vec::new();
            expand("", &stmt, &mut paths);
            for path in paths {
                let segments: Vec<&str> = path.split("::").map(str::trim).collect();
                let mut target: Vec<String> = match segments[0] {
                    "crate" => Vec::new(),
                    // In an inline module, `super` is the file's module.
                    "super" if inline => here.clone(),
                    "super" => here[..here.len().saturating_sub(1)].to_vec(),
                    "self" if !inline => here.clone(),
                    _ => continue,
                };
                for s in &segments[1..] {
                    let mut next = target.clone();
                    next.push((*s).to_owned());
                    if !modules.contains_key(&next) {
                        break;
                    }
                    target = next;
                }
                if let Some(file) = modules.get(&target) {
                    if file != name {
                        edges.entry(name.clone()).or_default().insert(file.clone());
                    }
                }
            }
        }
    }
    // Depth-first search for a path back to the start.
    let mut cycles = BTreeSet::new();
    for start in edges.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == start {
                    // Each cycle once, from its first file in name order.
                    let first = path.iter().enumerate().min_by_key(|(_, f)| *f).unwrap().0;
                    let mut cycle: Vec<String> = path[first..]
                        .iter()
                        .chain(&path[..first])
                        .cloned()
                        .collect();
                    cycle.push(cycle[0].clone());
                    cycles.insert(cycle.join(" → "));
                } else if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "files that import themselves through others:\n{}",
        cycles.into_iter().collect::<Vec<_>>().join("\n")
    );
}
