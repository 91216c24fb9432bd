//! A crate's module tree and the file-level import graph over it, for the
//! tidy rules ("no import cycles", and which files only tests compile).
//!
//! The tree comes from `mod x;` declarations followed from the crate's
//! roots (`lib.rs`, `main.rs`, …), the way rustc finds files: `a.rs` or
//! `a/mod.rs`, nested by path; inline `mod x { … }` blocks belong to the
//! file they are written in. An edge `A → B` means code in file `A` names
//! a path that resolves into file `B`: a `use` (or `pub use`) item, or a
//! `crate::…`, `super::…`, `self::…` or `child_module::…` path anywhere in
//! code. A path resolves to the file of the longest module prefix it
//! names, so `use crate::Error` where the crate root re-exports `Error`
//! points at the crate root, not at the file that defines `Error`: an
//! import through a re-export is an import of the re-exporting file, and
//! the re-export (`pub use store::Error`) is itself an edge from the root
//! to `store`. That is exactly the loop to avoid: a child that imports
//! from its parent's re-exports while the parent imports from it.
//!
//! What does not make an edge: `mod x;` (containment, not use), comments,
//! string literals, paths into other crates, and anything only tests
//! compile (`#[cfg(test)]` items and modules: tests may reach anywhere).
//! The graph never looks inside macros' expansions; a path written in a
//! macro call's tokens is seen like any other.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};

use super::lex::{self, Kind, Token};

/// Where a file sits in its crate.
#[derive(Debug, Clone)]
pub struct FileInfo {
    /// The crate root (`src/lib.rs`, `src/main.rs`, …) that reaches it.
    pub root: PathBuf,
    /// Its module path below that root (empty for the root itself).
    pub module: Vec<String>,
    /// Only tests compile it (`#[cfg(test)] mod x;` on it or an ancestor).
    pub test: bool,
}

/// The module trees under one crate's roots.
#[derive(Debug, Default)]
pub struct Tree {
    pub files: BTreeMap<PathBuf, FileInfo>,
    /// Per root: module path → the file that holds it (inline modules map
    /// to the file they are written in).
    modules: HashMap<PathBuf, HashMap<Vec<String>, PathBuf>>,
}

/// One import between files.
#[derive(Debug, Clone)]
pub struct Edge {
    pub from: PathBuf,
    pub to: PathBuf,
    /// Where in `from` (the first such import, if several).
    pub line: usize,
    /// The path as written, e.g. `crate::store::Error`.
    pub path: String,
}

fn read(file: &Path) -> Option<Vec<Token>> {
    std::fs::read_to_string(file).ok().map(|s| lex::lex(&s))
}

/// The module trees under `roots` (a crate's `lib.rs`, `main.rs`, …).
pub fn tree(roots: &[PathBuf]) -> Tree {
    let mut tree = Tree::default();
    for root in roots {
        let mut modules = HashMap::new();
        walk(&mut tree, &mut modules, root, root, Vec::new(), false);
        tree.modules.insert(root.clone(), modules);
    }
    tree
}

/// The directory where `mod x;` in `file` looks for `x.rs`: beside a
/// crate root or `mod.rs`, in a folder named after any other file.
fn child_dir(file: &Path, is_root: bool) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if is_root || stem == "mod" {
        dir
    } else {
        dir.join(stem)
    }
}

fn walk(
    tree: &mut Tree,
    modules: &mut HashMap<Vec<String>, PathBuf>,
    root: &Path,
    file: &Path,
    module: Vec<String>,
    test: bool,
) {
    if tree.files.contains_key(file) {
        return;
    }
    let Some(tokens) = read(file) else { return };
    tree.files.insert(
        file.to_path_buf(),
        FileInfo {
            root: root.to_path_buf(),
            module: module.clone(),
            test,
        },
    );
    modules.insert(module.clone(), file.to_path_buf());
    let (code, test_mods) = lex::code(&tokens);
    let base = child_dir(file, file == root);
    let mut scopes = Scopes::default();
    for i in 0..code.len() {
        scopes.step(&code, i);
        let (t, t_test) = &code[i];
        if !t.ident("mod") {
            continue;
        }
        let (Some((name, _)), Some((next, _))) = (code.get(i + 1), code.get(i + 2)) else {
            continue;
        };
        if name.kind != Kind::Ident {
            continue;
        }
        let mut path = module.clone();
        path.extend(scopes.names());
        path.push(name.text.clone());
        if next.punct("{") {
            // The body is entered when the `{` is stepped over.
            scopes.pending = Some(name.text.clone());
            modules.insert(path, file.to_path_buf());
        } else if next.punct(";") {
            let dir = scopes.names().iter().fold(base.clone(), |d, n| d.join(n));
            let child_test = test || *t_test || test_mods.contains(&name.text);
            let flat = dir.join(format!("{}.rs", name.text));
            let nested = dir.join(&name.text).join("mod.rs");
            let child = if flat.exists() { flat } else { nested };
            walk(tree, modules, root, &child, path, child_test);
        }
    }
}

/// The inline modules (`mod x { … }`) the lexer is inside, by brace depth.
#[derive(Default)]
struct Scopes {
    depth: usize,
    open: Vec<(String, usize)>,
    pending: Option<String>,
}

impl Scopes {
    /// Account for token `i` (call for every token, in order).
    fn step(&mut self, code: &[(Token, bool)], i: usize) {
        let t = &code[i].0;
        if t.punct("{") {
            self.depth += 1;
            if let Some(name) = self.pending.take() {
                self.open.push((name, self.depth));
            }
        } else if t.punct("}") {
            if self.open.last().is_some_and(|(_, d)| *d == self.depth) {
                self.open.pop();
            }
            self.depth = self.depth.saturating_sub(1);
        }
    }

    fn names(&self) -> Vec<String> {
        self.open.iter().map(|(n, _)| n.clone()).collect()
    }
}

/// Every path in `segs` a `use` tree starting at `i` names (`a::{b, c::d}`
/// gives `a::b` and `a::c::d`; `a::{self}` gives `a`; `a::*` gives `a`).
/// Leaves `i` after the tree.
fn use_tree(code: &[(Token, bool)], i: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let mut segs = prefix.to_vec();
    while let Some((t, _)) = code.get(*i) {
        if t.punct("{") {
            *i += 1;
            while code.get(*i).is_some_and(|(t, _)| !t.punct("}")) {
                let before = *i;
                use_tree(code, i, &segs, out);
                if code.get(*i).is_some_and(|(t, _)| t.punct(",")) {
                    *i += 1;
                }
                if *i == before {
                    *i += 1; // Not a path: step over it rather than loop.
                }
            }
            *i += 1;
            return;
        } else if t.punct("*") {
            *i += 1;
            out.push(segs);
            return;
        } else if t.punct("::") {
            if segs.is_empty() {
                segs.push("::".into()); // `::name` is always another crate.
            }
            *i += 1;
        } else if t.kind == Kind::Ident {
            let group_self = t.text == "self" && segs.len() == prefix.len() && !prefix.is_empty();
            if !group_self {
                segs.push(t.text.clone());
            }
            *i += 1;
            if code.get(*i).is_some_and(|(t, _)| t.punct("::")) {
                *i += 1;
                continue;
            }
            if code.get(*i).is_some_and(|(t, _)| t.ident("as")) {
                *i += 2;
            }
            out.push(segs);
            return;
        } else {
            return;
        }
    }
}

/// Where `segs`, written in module `scope`, leads: the file of its longest
/// module prefix, or `None` for paths into other crates and local items.
fn resolve(
    modules: &HashMap<Vec<String>, PathBuf>,
    scope: &[String],
    segs: &[String],
) -> Option<PathBuf> {
    let first = segs.first()?;
    let mut abs: Vec<String>;
    let mut rest = segs;
    match first.as_str() {
        "crate" => {
            abs = Vec::new();
            rest = &segs[1..];
        }
        "self" => {
            abs = scope.to_vec();
            rest = &segs[1..];
        }
        "super" => {
            abs = scope.to_vec();
            while rest.first().is_some_and(|s| s == "super") {
                abs.pop()?;
                rest = &rest[1..];
            }
        }
        _ => {
            // A child module of the scope, named without `self::`.
            let mut child = scope.to_vec();
            child.push(first.clone());
            if !modules.contains_key(&child) {
                return None;
            }
            abs = scope.to_vec();
        }
    }
    abs.extend(rest.iter().cloned());
    (0..=abs.len())
        .rev()
        .find_map(|n| modules.get(&abs[..n]).cloned())
}

/// The imports between the tree's files (tests' code left out).
pub fn edges(tree: &Tree) -> Vec<Edge> {
    let mut out: Vec<Edge> = Vec::new();
    let mut seen = BTreeSet::new();
    for (file, info) in &tree.files {
        if info.test {
            continue;
        }
        let Some(modules) = tree.modules.get(&info.root) else {
            continue;
        };
        let Some(tokens) = read(file) else { continue };
        let (code, _) = lex::code(&tokens);
        let mut scopes = Scopes::default();
        let mut found: Vec<(usize, Vec<String>, Vec<String>)> = Vec::new();
        let mut i = 0;
        while i < code.len() {
            scopes.step(&code, i);
            let (t, test) = &code[i];
            let mut scope = info.module.clone();
            scope.extend(scopes.names());
            if t.ident("mod") && code.get(i + 2).is_some_and(|(n, _)| n.punct("{")) {
                scopes.pending = code.get(i + 1).map(|(n, _)| n.text.clone());
            }
            if *test || t.kind != Kind::Ident {
                i += 1;
                continue;
            }
            if t.text == "use" {
                let mut paths = Vec::new();
                let mut j = i + 1;
                use_tree(&code, &mut j, &[], &mut paths);
                for p in paths {
                    found.push((t.line, scope.clone(), p));
                }
                // Account for the braces of `use a::{b, c}` before moving on.
                for k in i + 1..j.min(code.len()) {
                    scopes.step(&code, k);
                }
                i = j.max(i + 1);
                continue;
            }
            let starts_path = code.get(i + 1).is_some_and(|(n, _)| n.punct("::"))
                && !(i > 0 && (code[i - 1].0.punct("::") || code[i - 1].0.punct(".")))
                && !(i > 0 && code[i - 1].0.ident("in")); // `pub(in crate::a)`
            if starts_path && t.text != "Self" {
                let mut segs = vec![t.text.clone()];
                let mut j = i + 1;
                while code.get(j).is_some_and(|(n, _)| n.punct("::"))
                    && code.get(j + 1).is_some_and(|(n, _)| n.kind == Kind::Ident)
                {
                    segs.push(code[j + 1].0.text.clone());
                    j += 2;
                }
                found.push((t.line, scope, segs));
            }
            i += 1;
        }
        for (line, scope, segs) in found {
            let Some(to) = resolve(modules, &scope, &segs) else {
                continue;
            };
            if &to == file || !seen.insert((file.clone(), to.clone())) {
                continue;
            }
            out.push(Edge {
                from: file.clone(),
                to,
                line,
                path: segs.join("::"),
            });
        }
    }
    out
}

/// Every import loop among the tree's files, one per strongly connected
/// group of files: the shortest cycle through the group's first file,
/// each step with the line that imports, then every file in the group.
pub fn cycles(tree: &Tree, show: impl Fn(&Path) -> String) -> Vec<String> {
    let edges = edges(tree);
    let mut next: BTreeMap<&Path, Vec<&Edge>> = BTreeMap::new();
    for e in &edges {
        next.entry(e.from.as_path()).or_default().push(e);
    }
    let nodes: Vec<&Path> = tree.files.keys().map(PathBuf::as_path).collect();
    let mut out = Vec::new();
    for group in strongly_connected(&nodes, &next) {
        if group.len() < 2 {
            continue;
        }
        let start = group[0];
        let members: BTreeSet<&Path> = group.iter().copied().collect();
        // Breadth-first from `start` back to `start`, inside the group.
        let mut came: BTreeMap<&Path, &Edge> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        let mut last = None;
        'search: while let Some(n) = queue.pop_front() {
            for e in next.get(n).into_iter().flatten() {
                let to = e.to.as_path();
                if !members.contains(to) {
                    continue;
                }
                if to == start {
                    last = Some(*e);
                    break 'search;
                }
                if !came.contains_key(to) {
                    came.insert(to, e);
                    queue.push_back(to);
                }
            }
        }
        let Some(mut e) = last else { continue };
        let mut steps = vec![e];
        while e.from.as_path() != start {
            e = came[e.from.as_path()];
            steps.push(e);
        }
        steps.reverse();
        let mut text = show(start);
        for s in &steps {
            text.push_str(&format!(" → {}", show(&s.to)));
        }
        for s in &steps {
            text.push_str(&format!(
                "\n    {}:{} uses {}",
                show(&s.from),
                s.line,
                s.path
            ));
        }
        if group.len() > steps.len() {
            // More files are caught in the loop than this cycle shows: list
            // every import among them, since breaking the loop means
            // cutting enough of these.
            let all: Vec<String> = group.iter().map(|f| show(f)).collect();
            text.push_str(&format!("\n    files in this loop: {}", all.join(", ")));
            text.push_str("\n    other imports inside it:");
            for e in &edges {
                let inside = members.contains(e.from.as_path()) && members.contains(e.to.as_path());
                if inside && !steps.iter().any(|s| std::ptr::eq(*s, e)) {
                    text.push_str(&format!(
                        "\n      {}:{} uses {} ({})",
                        show(&e.from),
                        e.line,
                        e.path,
                        show(&e.to)
                    ));
                }
            }
        }
        out.push(text);
    }
    out
}

/// Tarjan's strongly connected components, each sorted, in a stable order.
fn strongly_connected<'a>(
    nodes: &[&'a Path],
    next: &BTreeMap<&'a Path, Vec<&'a Edge>>,
) -> Vec<Vec<&'a Path>> {
    struct State<'a> {
        index: BTreeMap<&'a Path, usize>,
        low: BTreeMap<&'a Path, usize>,
        stack: Vec<&'a Path>,
        on_stack: BTreeSet<&'a Path>,
        out: Vec<Vec<&'a Path>>,
    }
    fn visit<'a>(n: &'a Path, next: &BTreeMap<&'a Path, Vec<&'a Edge>>, s: &mut State<'a>) {
        let i = s.index.len();
        s.index.insert(n, i);
        s.low.insert(n, i);
        s.stack.push(n);
        s.on_stack.insert(n);
        for e in next.get(n).into_iter().flatten() {
            let m = e.to.as_path();
            if !s.index.contains_key(m) {
                visit(m, next, s);
                let low = s.low[n].min(s.low[m]);
                s.low.insert(n, low);
            } else if s.on_stack.contains(m) {
                let low = s.low[n].min(s.index[m]);
                s.low.insert(n, low);
            }
        }
        if s.low[n] == s.index[n] {
            let mut group = Vec::new();
            while let Some(m) = s.stack.pop() {
                s.on_stack.remove(m);
                group.push(m);
                if m == n {
                    break;
                }
            }
            group.sort();
            s.out.push(group);
        }
    }
    let mut s = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for &n in nodes {
        if !s.index.contains_key(n) {
            visit(n, next, &mut s);
        }
    }
    s.out.sort();
    s.out
}

#[cfg(test)]
mod detector {
    use super::*;

    /// A crate in a temp dir from `(path under src/, text)` pairs.
    fn krate(files: &[(&str, &str)]) -> (tempfile::TempDir, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join("src").join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let base = dir.path().to_path_buf();
        let t = tree(&[base.join("src/lib.rs")]);
        let found = cycles(&t, |p| p.strip_prefix(&base).unwrap().display().to_string());
        (dir, found)
    }

    #[test]
    fn a_child_importing_its_parents_re_export_closes_a_loop() {
        let (_dir, found) = krate(&[
            (
                "lib.rs",
                "pub mod api;\npub mod store;\npub use store::Pg;\n",
            ),
            (
                "api/mod.rs",
                "mod auth;\n// use crate::store; is only prose\n",
            ),
            (
                "api/auth.rs",
                "fn f() -> &'static str { \"crate::store::Pg\" }\n",
            ),
            ("store/mod.rs", "mod query;\npub struct Pg;\n"),
            ("store/query.rs", "use crate::Pg;\n"),
        ]);
        // lib.rs re-exports from store/mod.rs (an edge), store/query.rs
        // imports through that re-export (an edge to lib.rs); store/mod.rs
        // does not import query.rs (`mod query;` is containment), so the
        // only loop would need query.rs → lib.rs → store/mod.rs → query.rs,
        // which does not close: no cycle.
        assert!(found.is_empty(), "{found:?}");

        let (_dir, found) = krate(&[
            (
                "lib.rs",
                "pub mod store;\npub use store::Pg;\npub struct Error;\n",
            ),
            (
                "store/mod.rs",
                "pub struct Pg;\nfn f() -> crate::Error { crate::Error }\n",
            ),
        ]);
        assert_eq!(
            found,
            ["src/lib.rs → src/store/mod.rs → src/lib.rs\n    \
              src/lib.rs:2 uses store::Pg\n    \
              src/store/mod.rs:2 uses crate::Error"]
        );
    }

    #[test]
    fn a_three_file_loop_through_super_and_groups_is_found() {
        let (_dir, found) = krate(&[
            (
                "lib.rs",
                "pub mod api;\npub mod sensors;\npub mod server;\n",
            ),
            (
                "api/mod.rs",
                "mod feed;\nuse crate::{sensors::{self, Ingest}, other};\n",
            ),
            ("api/feed.rs", "use super::super::server::Net;\n"),
            (
                "sensors.rs",
                "pub struct Ingest;\nuse crate::server as s;\n",
            ),
            (
                "server.rs",
                "pub struct Net;\npub(in crate::api) fn g() { crate::api::h() }\n",
            ),
        ]);
        assert_eq!(
            found,
            [
                "src/api/mod.rs → src/sensors.rs → src/server.rs → src/api/mod.rs\n    \
              src/api/mod.rs:2 uses crate::sensors\n    \
              src/sensors.rs:2 uses crate::server\n    \
              src/server.rs:2 uses crate::api::h"
            ]
        );
    }

    #[test]
    fn an_acyclic_tree_passes_and_tests_may_reach_anywhere() {
        let (_dir, found) = krate(&[
            (
                "lib.rs",
                "pub mod a;\npub mod b;\nmod c;\n#[cfg(test)]\nmod tests;\n",
            ),
            (
                "a.rs",
                "use crate::b::B;\nuse self::inner::X;\nmod inner { pub struct X; }\n",
            ),
            (
                "b.rs",
                "pub struct B;\nuse std::fmt;\n#[cfg(test)]\nmod t { use crate::a; }\n",
            ),
            ("c.rs", "use crate::a::inner;\n"),
            ("tests.rs", "use crate::a; use super::c;\n"),
        ]);
        assert!(found.is_empty(), "{found:?}");
    }
}
