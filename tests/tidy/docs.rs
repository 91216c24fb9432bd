//! The rules that keep `docs/ARCHITECTURE.md` and the code agreeing: the
//! invariants comments cite exist, and the code map names every source
//! file and only paths that exist. They read the document's markdown by
//! headings and lines; they never render it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{lex, metadata, packages, rel, report, root, rust_files, source_files};

/// The numbers in a markdown file's numbered list under `heading`.
fn numbered_items(md: &str, heading: &str) -> Option<BTreeSet<u32>> {
    let lines = section(md, heading)?;
    Some(
        lines
            .iter()
            .filter_map(|(_, l)| {
                // Top-level items only: at most three spaces of indent.
                let t = l.trim_start();
                if l.len() - t.len() > 3 {
                    return None;
                }
                let (n, _) = t.split_once(". ")?;
                n.parse().ok()
            })
            .collect(),
    )
}

/// The lines (numbered from 1) of the section under the heading titled
/// `title` (any level, case ignored), up to the next heading of the same
/// or a higher level; headings inside fenced code do not count.
fn section<'a>(md: &'a str, title: &str) -> Option<Vec<(usize, &'a str)>> {
    let mut fenced = false;
    let mut level = None;
    let mut out = Vec::new();
    for (i, line) in md.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        let heading = (!fenced && line.starts_with('#')).then(|| {
            let n = line.chars().take_while(|&c| c == '#').count();
            (n, line[n..].trim())
        });
        match (level, heading) {
            (None, Some((n, text))) if text.eq_ignore_ascii_case(title) => level = Some(n),
            (Some(l), Some((n, _))) if n <= l => break,
            (Some(_), _) => out.push((i + 1, line)),
            _ => {}
        }
    }
    level.map(|_| out)
}

fn architecture() -> String {
    std::fs::read_to_string(root().join("docs/ARCHITECTURE.md"))
        .expect("docs/ARCHITECTURE.md exists")
}

/// The invariant numbers a comment cites: "invariant 3", "invariants 3
/// and 6", "invariants 3, 4 or 7", "invariants 3–5", as `(line offset in
/// the text, number)`.
fn cited(text: &str) -> Vec<(usize, u32)> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = lower[from..].find("invariant") {
        let start = from + found;
        from = start + "invariant".len();
        if lower[..start]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric())
        {
            continue; // Part of a longer word.
        }
        let line = lower[..start].matches('\n').count();
        let rest = lower[from..].strip_prefix('s').unwrap_or(&lower[from..]);
        // Numbers joined by `,`, `and`, `or`, `&`, or a range dash.
        let mut numbers: Vec<u32> = Vec::new();
        let mut range = false;
        let words = rest
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .flat_map(|w| {
                // "3-5" and "3–5" are three words: 3, a dash, 5.
                let mut parts = Vec::new();
                for (i, p) in w.split(['-', '–']).enumerate() {
                    if i > 0 {
                        parts.push("-".to_string());
                    }
                    if !p.is_empty() {
                        parts.push(p.to_string());
                    }
                }
                parts
            });
        for w in words {
            let digits: String = w
                .trim_start_matches('#')
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if !digits.is_empty() {
                // Too large for a u32 is no invariant either.
                let n: u32 = digits.parse().unwrap_or(u32::MAX);
                match (range, numbers.last()) {
                    (true, Some(&a)) if a < n => numbers.extend(a + 1..=n),
                    _ => numbers.push(n),
                }
                range = false;
                if digits.len() < w.trim_start_matches('#').len() {
                    break; // "3)" or "3." ends the list.
                }
            } else if numbers.is_empty() || !matches!(w.as_str(), "and" | "or" | "&" | "-" | "to") {
                break;
            } else {
                range = matches!(w.as_str(), "-" | "to");
            }
        }
        out.extend(numbers.into_iter().map(|n| (line, n)));
    }
    out
}

/// Every "invariant N" a code comment cites is in the numbered list of
/// `docs/ARCHITECTURE.md`'s "Invariants" section. Comments in every
/// package's `src/`, `tests/`, `benches/` and `examples/` count; string
/// literals and code do not.
#[test]
fn invariants_cited_exist() {
    let doc = architecture();
    let known = numbered_items(&doc, "Invariants")
        .expect("docs/ARCHITECTURE.md has an \"Invariants\" section");
    assert!(
        !known.is_empty(),
        "the Invariants section of docs/ARCHITECTURE.md lists no numbered invariants"
    );
    let meta = metadata();
    let mut violations = Vec::new();
    for (_, dir) in packages(&meta) {
        for part in ["src", "tests", "benches", "examples"] {
            let folder = root().join(&dir).join(part);
            if !folder.is_dir() {
                continue;
            }
            for file in rust_files(&folder) {
                let tokens = lex::lex(&std::fs::read_to_string(&file).unwrap());
                for (first, lines) in lex::comment_blocks(&tokens) {
                    for (offset, n) in cited(&lines.join("\n")) {
                        if !known.contains(&n) {
                            violations.push(format!(
                                "{}:{}: cites invariant {n}, which docs/ARCHITECTURE.md does not have",
                                rel(&file),
                                first + offset
                            ));
                        }
                    }
                }
            }
        }
    }
    report(
        &format!("Comments cite invariants by the numbers of docs/ARCHITECTURE.md ({known:?})"),
        &violations,
    );
}

#[test]
fn citations_of_invariants_are_read_as_written() {
    assert_eq!(cited("see invariant 3."), [(0, 3)]);
    assert_eq!(cited("(invariants 3 and 6)"), [(0, 3), (0, 6)]);
    assert_eq!(
        cited("Invariants 3, 4 or\n7 hold"),
        [(0, 3), (0, 4), (0, 7)]
    );
    assert_eq!(cited("invariants 3–5"), [(0, 3), (0, 4), (0, 5)]);
    assert_eq!(cited("x\ninvariant #12: views"), [(1, 12)]);
    assert_eq!(cited("the invariant holds; invariants and 3 apples"), []);
    assert_eq!(cited("noninvariant 3"), []);
}

/// The path-like words of a code map line, each with the column (in
/// characters) it starts at: words of `[A-Za-z0-9_./-]` that hold a `/` or
/// end in `.rs`, and either end in `/` (a folder) or in a file extension
/// the repository uses. So `hub/src/store/`, `store/query.rs` and
/// `../hub/migrations/` are paths; `node/hub`, `/events/{id}`, `HTTP/2`
/// and `*/src/store/` are not (the last because a glob names no one path).
fn path_words(line: &str) -> Vec<(usize, String)> {
    const EXTENSIONS: &[&str] = &[
        ".rs", ".sql", ".toml", ".md", ".json", ".sh", ".yml", ".yaml",
    ];
    let path_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-');
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !path_char(chars[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && path_char(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let mut w = word.trim_end_matches('.');
        let is_path = !w.starts_with('/')
            && (w.contains('/') || w.ends_with(".rs"))
            && (w.ends_with('/') || EXTENSIONS.iter().any(|e| w.ends_with(e)));
        if is_path {
            while let Some(rest) = w.strip_prefix("./").or_else(|| w.strip_prefix("../")) {
                w = rest;
            }
            out.push((start, w.to_string()));
        }
    }
    out
}

/// Where the text of a line starts: after indentation, list markers,
/// backticks and tree-drawing characters (`├──`, `│`, `└──`).
fn text_column(line: &str) -> usize {
    line.chars()
        .take_while(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_')))
        .count()
}

/// The package folders a code map heading is about: it names `hub`,
/// `hub/` or `sentinel-hub` for the hub; `sentinel` (and no crate) for the
/// root package.
fn heading_packages(heading: &str, packages: &[(String, String)]) -> Vec<String> {
    let words: Vec<&str> = heading
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '/' | '-')))
        .map(|w| w.trim_end_matches('/'))
        .collect();
    let named: Vec<String> = packages
        .iter()
        .filter(|(name, dir)| {
            words
                .iter()
                .any(|w| w == name || (!dir.is_empty() && w == dir))
        })
        .map(|(_, dir)| dir.clone())
        .collect();
    // "sentinel" in a crate's heading is the project's name, not the root
    // package's: the root counts only when no crate is named.
    if named.iter().any(|d| !d.is_empty()) {
        named.into_iter().filter(|d| !d.is_empty()).collect()
    } else {
        named
    }
}

/// The file or folder a code map path names: from a package the heading
/// names (its folder, then its `src/`), then from the repository root, then
/// from `docs/` (where a markdown link would start).
fn locate(word: &str, packages: &[String]) -> Option<PathBuf> {
    let root = root();
    let mut candidates: Vec<PathBuf> = Vec::new();
    for dir in packages {
        candidates.push(root.join(dir).join(word));
        candidates.push(root.join(dir).join("src").join(word));
    }
    candidates.push(root.join(word));
    candidates.push(root.join("docs").join(word));
    candidates.into_iter().find(|c| c.exists())
}

/// `docs/ARCHITECTURE.md`'s "Code map" stays true: it mentions every
/// `.rs` file under every package's `src/`, and every path it names exists.
///
/// A file is mentioned by its path from the repository root
/// (`hub/src/store/query.rs`) anywhere in the code map, or, under a heading
/// that names its package (`### hub/ — the regional hub`, `### sentinel-hub`),
/// by its path from the package (`src/store/query.rs`) or from its `src/`
/// (`store/query.rs`), or as a tree: a line whose text begins with a
/// folder (`hub/src/`, `store/`) opens it for the lines indented deeper
/// below it, in a fenced block (`├── store/`) or a nested list alike.
/// A folder names no file in it.
#[test]
fn the_code_map_names_every_source_file_and_only_real_paths() {
    let doc = architecture();
    let meta = metadata();
    let packages = packages(&meta);
    let map = section(&doc, "Code map");
    let mut violations = Vec::new();
    if map.is_none() {
        violations.push("docs/ARCHITECTURE.md has no \"Code map\" section".to_string());
    }
    let mut named = BTreeSet::new();
    let mut context: Vec<String> = Vec::new();
    // Folders a tree or nested list opened, by the column their line's
    // text starts at: `hub/src/` then, deeper, `store/` then `query.rs`.
    let mut folders: Vec<(usize, String)> = Vec::new();
    let mut fenced = false;
    for (n, line) in map.unwrap_or_default() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            folders.clear();
            continue;
        }
        if !fenced && line.starts_with('#') {
            context = heading_packages(line, &packages);
            folders.clear();
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let column = text_column(line);
        while folders.last().is_some_and(|(c, _)| *c >= column) {
            folders.pop();
        }
        let prefix: String = folders.iter().map(|(_, f)| f.as_str()).collect();
        for (at, word) in path_words(line) {
            let found = [format!("{prefix}{word}"), word.clone()]
                .iter()
                .find_map(|w| locate(w, &context));
            match found {
                Some(found) => {
                    named.insert(rel(&found));
                }
                None => violations.push(format!(
                    "docs/ARCHITECTURE.md:{n}: the code map names `{word}`, which does not exist"
                )),
            }
            if at == column && word.ends_with('/') {
                folders.push((column, word));
            }
        }
    }
    for (_, file) in source_files(&meta) {
        let path = rel(&file);
        if !named.contains(&path) {
            violations.push(format!(
                "{path}: not in the code map of docs/ARCHITECTURE.md"
            ));
        }
    }
    report(
        "The code map in docs/ARCHITECTURE.md names every source file, and only real paths",
        &violations,
    );
}

#[test]
fn the_code_map_reader_finds_paths_and_packages() {
    let words =
        |line: &str| -> Vec<String> { path_words(line).into_iter().map(|(_, w)| w).collect() };
    assert_eq!(
        words("- `store/query.rs`: the search; see hub/src/store/. and ../hub/migrations/"),
        ["store/query.rs", "hub/src/store/", "hub/migrations/"]
    );
    assert!(words("node/hub, HTTP/2, `/events/{id}`, `*/src/store/`, and/or").is_empty());
    assert_eq!(
        path_words("│   ├── store/   SQL"),
        [(8, "store/".to_string())]
    );
    assert_eq!(text_column("│   ├── store/   SQL"), 8);
    assert_eq!(text_column("  - `query.rs`"), 5);
    let packages = [
        ("sentinel".to_string(), String::new()),
        ("sentinel-hub".to_string(), "hub".to_string()),
        ("sentinel-node".to_string(), "node".to_string()),
    ];
    assert_eq!(
        heading_packages("### `hub/` — the regional hub, for nodes", &packages),
        ["hub"]
    );
    assert_eq!(heading_packages("### sentinel-node", &packages), ["node"]);
    assert_eq!(
        heading_packages("### `node/`: the sentinel field node", &packages),
        ["node"]
    );
    assert_eq!(
        heading_packages("### The root package (`sentinel`)", &packages),
        [""]
    );
    assert!(heading_packages("### Sentinel's crates", &packages).is_empty());
}
