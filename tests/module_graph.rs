//! The modules of `src` import each other without a cycle: the configuration side never reaches
//! the request layers, the request context or the audit layer, and the leaves (error types,
//! route, inspectors) use none of them. Each file is a node; an edge is a `crate::...` or
//! `super::...` path it uses, or a child it re-exports (`pub use child::...`). Test modules and
//! comments are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `src/a/b.rs` -> `a::b`; `None` for the crate roots and test files.
fn module_name(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let name = parts.join("::");
    let is_test = parts.iter().any(|p| p == "tests") || name.ends_with("tests");
    (!is_test && name != "lib" && name != "main").then_some(name)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its test module and without comments.
fn code(text: &str) -> String {
    let text = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default();
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths used after each occurrence of `prefix` (`crate::`, `super::`, `pub use `):
/// `a::b::C`, and for a group `a::{b, c::D}` each member (`a::b`, `a::c::D`).
fn paths_after(code: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        rest = &rest[at + prefix.len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let base = rest[..end].trim_end_matches(':').to_owned();
        let after = &rest[end..];
        if rest[..end].ends_with("::") && after.starts_with('{') {
            let close = after.find('}').unwrap_or(after.len());
            for member in after[1..close].split(',') {
                let member = member.split(" as ").next().unwrap_or("").trim();
                let member = member.split("::{").next().unwrap_or("");
                if !member.is_empty() && member != "self" {
                    out.push(format!("{base}::{member}"));
                }
            }
        } else if !base.is_empty() {
            out.push(base);
        }
    }
    out
}

/// The longest module prefix of `path` that is a file of the crate.
fn resolve(modules: &BTreeSet<String>, path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|candidate| modules.contains(candidate))
}

fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let named: Vec<(String, PathBuf)> = files
        .into_iter()
        .filter_map(|f| module_name(src, &f).map(|m| (m, f)))
        .collect();
    let modules: BTreeSet<String> = named.iter().map(|(m, _)| m.clone()).collect();
    let mut edges = BTreeMap::new();
    for (module, file) in &named {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        let code = code(&text);
        let parent = module.rsplit_once("::").map(|(p, _)| p.to_owned());
        let mut deps = BTreeSet::new();
        let mut add = |path: String| {
            if let Some(target) = resolve(&modules, &path) {
                if &target != module {
                    deps.insert(target);
                }
            }
        };
        for path in paths_after(&code, "crate::") {
            add(path);
        }
        for path in paths_after(&code, "super::") {
            let path = path.trim_start_matches("super::").to_owned();
            match &parent {
                Some(parent) => {
                    let full = format!("{parent}::{path}");
                    if resolve(&modules, &full).is_some_and(|t| t != *parent) {
                        add(full);
                    } else {
                        add(parent.clone());
                    }
                }
                None => add(path),
            }
        }
        for path in paths_after(&code, "pub use ") {
            if !path.starts_with("crate::") && !path.starts_with("super::") {
                add(format!("{module}::{path}"));
            }
        }
        edges.insert(module.clone(), deps);
    }
    edges
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.out
}

#[test]
fn src_modules_import_each_other_without_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = graph(&src);
    assert!(edges.len() > 40, "found only {} modules", edges.len());
    // The reader sees real edges (a broken reader would find no cycle anywhere).
    assert!(edges["policy::layer"].contains("context"), "{edges:?}");
    assert!(edges["config"].contains("policy"), "{edges:?}");
    let found = cycles(&edges);
    assert!(
        found.is_empty(),
        "import cycles among src modules: {found:?}"
    );
}

#[test]
fn the_cycle_finder_finds_a_planted_cycle() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.insert("a".into(), ["b".to_owned()].into());
    edges.insert("b".into(), ["c".to_owned()].into());
    edges.insert("c".into(), ["a".to_owned()].into());
    edges.insert("d".into(), ["a".to_owned()].into());
    assert_eq!(cycles(&edges), vec![vec!["a", "b", "c"]]);
    assert_eq!(
        paths_after("use crate::x::{y, z::W as V};", "crate::"),
        vec!["x::y", "x::z::W"]
    );
}
