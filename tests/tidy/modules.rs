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

/// Every import loop between modules that do not contain one another.
///
/// Layering is checked level by level: the modules that share a parent
/// (each taken with every file under it) must import one another without
/// a cycle. A module and its ancestors may use each other freely: a
/// `mod.rs` that lists its children's routes while they use its types is
/// one module's inside, not a loop between modules. So a file edge
/// `api/sensors.rs → sensors.rs` is, at the crate root's level, the edge
/// `api → sensors`, and `store/query.rs → store/mod.rs` is no edge at all.
///
/// One report per loop: the modules in a shortest cycle, each step with
/// the file and line that imports, then every other import inside it.
pub fn cycles(tree: &Tree, show: impl Fn(&Path) -> String) -> Vec<String> {
    let edges = edges(tree);
    // (root, parent module) → from child → to child → the file edges.
    type Level<'a> = BTreeMap<String, BTreeMap<String, Vec<&'a Edge>>>;
    let mut levels: BTreeMap<(PathBuf, Vec<String>), Level<'_>> = BTreeMap::new();
    for e in &edges {
        let (Some(a), Some(b)) = (tree.files.get(&e.from), tree.files.get(&e.to)) else {
            continue;
        };
        if a.root != b.root {
            continue;
        }
        let common = a
            .module
            .iter()
            .zip(&b.module)
            .take_while(|(x, y)| x == y)
            .count();
        if common == a.module.len() || common == b.module.len() {
            // One contains the other.
            continue;
        }
        levels
            .entry((a.root.clone(), a.module[..common].to_vec()))
            .or_default()
            .entry(a.module[common].clone())
            .or_default()
            .entry(b.module[common].clone())
            .or_default()
            .push(e);
    }
    let mut out = Vec::new();
    for ((root, parent), level) in &levels {
        let names: BTreeSet<&String> = level
            .iter()
            .flat_map(|(a, to)| std::iter::once(a).chain(to.keys()))
            .collect();
        let reach = |from: &String| -> BTreeSet<String> {
            let mut seen = BTreeSet::new();
            let mut queue = VecDeque::from([from.clone()]);
            while let Some(n) = queue.pop_front() {
                for m in level.get(&n).into_iter().flat_map(BTreeMap::keys) {
                    if seen.insert(m.clone()) {
                        queue.push_back(m.clone());
                    }
                }
            }
            seen
        };
        let reaches: BTreeMap<&String, BTreeSet<String>> =
            names.iter().map(|n| (*n, reach(n))).collect();
        let mut grouped: BTreeSet<&String> = BTreeSet::new();
        for &start in &names {
            if grouped.contains(start) || !reaches[start].contains(start) {
                continue;
            }
            let group: BTreeSet<&String> = names
                .iter()
                .copied()
                .filter(|n| reaches[start].contains(*n) && reaches[n].contains(start))
                .collect();
            grouped.extend(group.iter().copied());
            // Breadth-first from `start` back to `start`, inside the group.
            let mut came: BTreeMap<String, String> = BTreeMap::new();
            let mut queue = VecDeque::from([start.clone()]);
            let mut last = None;
            'search: while let Some(n) = queue.pop_front() {
                for m in level.get(&n).into_iter().flat_map(BTreeMap::keys) {
                    if !group.contains(m) {
                        continue;
                    }
                    if m == start {
                        last = Some(n.clone());
                        break 'search;
                    }
                    if !came.contains_key(m) {
                        came.insert(m.clone(), n.clone());
                        queue.push_back(m.clone());
                    }
                }
            }
            let Some(mut n) = last else { continue };
            let mut cycle = vec![start.clone(), n.clone()];
            while &n != start {
                n = came[&n].clone();
                cycle.push(n.clone());
            }
            cycle.reverse();
            let module = |name: &str| {
                let mut path = parent.clone();
                path.push(name.to_owned());
                path.join("::")
            };
            let mut text = format!(
                "{}: {}",
                show(root),
                cycle
                    .iter()
                    .map(|n| module(n))
                    .collect::<Vec<_>>()
                    .join(" → ")
            );
            let mut shown = BTreeSet::new();
            for step in cycle.windows(2) {
                let e = level[&step[0]][&step[1]][0];
                shown.insert((step[0].clone(), step[1].clone()));
                text.push_str(&format!(
                    "\n    {}:{} uses {}",
                    show(&e.from),
                    e.line,
                    e.path
                ));
            }
            let others: Vec<String> = group
                .iter()
                .flat_map(|a| {
                    level
                        .get(*a)
                        .into_iter()
                        .flat_map(|to| to.iter())
                        .filter(|(b, _)| group.contains(b))
                        .flat_map(move |(b, es)| es.iter().map(move |e| (*a, b, e)))
                })
                .filter(|(a, b, e)| {
                    !(shown.contains(&((*a).clone(), (*b).clone()))
                        && std::ptr::eq(**e, level[*a][*b][0]))
                })
                .map(|(_, _, e)| {
                    format!(
                        "\n      {}:{} uses {} ({})",
                        show(&e.from),
                        e.line,
                        e.path,
                        show(&e.to)
                    )
                })
                .collect();
            if !others.is_empty() {
                text.push_str("\n    other imports inside this loop:");
                for o in others {
                    text.push_str(&o);
                }
            }
            out.push(text);
        }
    }
    out
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
    fn a_module_and_its_ancestors_may_use_each_other() {
        let (_dir, found) = krate(&[
            (
                "lib.rs",
                "pub mod store;\npub use store::Pg;\npub struct Error;\n",
            ),
            (
                "store/mod.rs",
                "mod query;\npub struct Pg;\nfn f() -> crate::Error { query::g() }\n",
            ),
            ("store/query.rs", "use crate::Pg;\nuse super::Pg as P;\n"),
        ]);
        // lib.rs ↔ store/mod.rs ↔ store/query.rs: one module's inside.
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn siblings_importing_each_other_through_re_exports_are_a_loop() {
        let (_dir, found) = krate(&[
            ("lib.rs", "pub mod a;\npub mod b;\n"),
            ("a/mod.rs", "mod inner;\npub use inner::X;\n"),
            ("a/inner.rs", "pub struct X;\nuse crate::b::Y;\n"),
            ("b.rs", "pub struct Y;\nfn f() -> crate::a::X { todo!() }\n"),
        ]);
        assert_eq!(
            found,
            ["src/lib.rs: a → b → a\n    \
              src/a/inner.rs:2 uses crate::b::Y\n    \
              src/b.rs:2 uses crate::a::X"]
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
        // The shortest loop is api → server → api (api/feed.rs names the
        // server); the longer one through sensors is listed inside it.
        assert_eq!(
            found,
            ["src/lib.rs: api → server → api\n    \
              src/api/feed.rs:1 uses super::super::server::Net\n    \
              src/server.rs:2 uses crate::api::h\n    \
              other imports inside this loop:\n      \
              src/api/mod.rs:2 uses crate::sensors (src/sensors.rs)\n      \
              src/sensors.rs:2 uses crate::server (src/server.rs)"]
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
