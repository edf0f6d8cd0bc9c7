//! The layering, checked on every test run: the top-level module graph,
//! built from the `crate::…` paths of `src/` (tests left out), follows the
//! layers below — a module uses modules of its own layer or lower ones —
//! and has no cycle; no source file is over 600 lines before its tests; no
//! function is over 80 lines without a `// Long:` comment saying why.
//! A failure names the offending edge, file or function.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first. The README's architecture section draws the same picture.
const LAYERS: &[&[&str]] = &[
    // plain data and leaf helpers
    &["clock", "net", "user", "config", "templating", "metrics"],
    // the domain: pure rules, no I/O
    &[
        "plan",
        "planner",
        "interpreter",
        "proposal",
        "triggers",
        "preferences",
        "notification",
        "conversation",
        "execution",
    ],
    // the words: prompts, chat copy, the wire contract, events
    &["wording", "prompts", "protocol", "events"],
    // adapters to the outside: storage, sockets, channels, models
    &["store", "claims", "hub", "channels", "llm", "actions"],
    // the plan service
    &["service"],
    // what the model calls
    &["tools"],
    // drivers of the service
    &["offline", "notifier", "engine"],
    &["scheduler", "turn"],
    // composition root and transport
    &["app"],
    &["http"],
];

const MAX_FILE_LINES: usize = 600;
const MAX_FN_LINES: usize = 80;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A source file with the lines that are not test code.
struct Source {
    /// Relative to `src/`.
    path: String,
    /// (line number, text) of every line outside `#[cfg(test)]` items.
    code: Vec<(usize, String)>,
    /// Lines before the first `#[cfg(test)]` (what the file is, tests aside).
    lines_before_tests: usize,
    /// Child modules declared under `#[cfg(test)]` (`mod name;`).
    test_children: Vec<String>,
}

/// Skips the item starting at `lines[i]` (after a `#[cfg(test)]`);
/// returns the index after it. Braces in strings and comments are rare
/// enough in item headers that counting them is sound here.
fn skip_item(lines: &[&str], mut i: usize) -> usize {
    while i < lines.len() && lines[i].trim_start().starts_with("#[") {
        i += 1;
    }
    let mut depth = 0i32;
    let mut opened = false;
    while i < lines.len() {
        let line = lines[i];
        if !opened && line.trim_end().ends_with(';') && !line.contains('{') {
            return i + 1;
        }
        for c in line.chars() {
            match c {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
        i += 1;
        if opened && depth <= 0 {
            return i;
        }
    }
    i
}

fn read(path: &Path) -> Source {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let lines_before_tests = lines
        .iter()
        .position(|l| l.contains("#[cfg(test)]"))
        .unwrap_or(lines.len());
    let mut code = Vec::new();
    let mut test_children = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim();
        if trimmed == "#[cfg(test)]" {
            if let Some(next) = lines.get(i + 1) {
                let next = next.trim();
                if let Some(name) = next
                    .strip_prefix("mod ")
                    .or_else(|| next.strip_prefix("pub mod "))
                    .or_else(|| next.strip_prefix("pub(crate) mod "))
                    .and_then(|rest| rest.strip_suffix(';'))
                {
                    test_children.push(name.to_owned());
                }
            }
            i = skip_item(&lines, i + 1);
            continue;
        }
        if !trimmed.starts_with("//") {
            code.push((i + 1, lines[i].to_owned()));
        }
        i += 1;
    }
    Source {
        path: path.strip_prefix(src()).unwrap().display().to_string(),
        code,
        lines_before_tests,
        test_children,
    }
}

/// Every non-test source file of the crate.
fn sources() -> Vec<Source> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let all: Vec<Source> = files.iter().map(|p| read(p)).collect();
    // Files of modules declared under #[cfg(test)] are test code.
    let mut test_dirs: Vec<String> = Vec::new();
    for s in &all {
        let dir = Path::new(&s.path).parent().unwrap().to_path_buf();
        let stem = Path::new(&s.path).file_stem().unwrap().to_string_lossy().to_string();
        let base = if stem == "mod" || s.path == "lib.rs" {
            dir
        } else {
            dir.join(&stem)
        };
        for child in &s.test_children {
            test_dirs.push(base.join(child).display().to_string());
        }
    }
    all.into_iter()
        .filter(|s| {
            !test_dirs
                .iter()
                .any(|t| s.path == format!("{t}.rs") || s.path.starts_with(&format!("{t}/")))
        })
        .collect()
}

fn top_module(path: &str) -> Option<String> {
    let first = path.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_owned())
}

/// (from, to) → where the edge is, for every `crate::to` used by `from`.
fn edges(sources: &[Source]) -> BTreeMap<(String, String), Vec<String>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for s in sources {
        let Some(from) = top_module(&s.path) else { continue };
        for (n, line) in &s.code {
            let mut rest = line.as_str();
            while let Some(at) = rest.find("crate::") {
                rest = &rest[at + "crate::".len()..];
                let to: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !to.is_empty() && to != from {
                    out.entry((from.clone(), to))
                        .or_default()
                        .push(format!("src/{}:{n}", s.path));
                }
            }
        }
    }
    out
}

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// A cycle in the graph, as its modules in order, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn modules_use_only_their_own_or_lower_layers_and_form_no_cycle() {
    let sources = sources();
    let edges = edges(&sources);
    let mut problems = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ((from, to), places) in &edges {
        graph.entry(from.clone()).or_default().insert(to.clone());
        match (layer(from), layer(to)) {
            (Some(a), Some(b)) if a < b => problems.push(format!(
                "{from} (layer {a}) uses {to} (layer {b}), a higher layer: {}",
                places.join(", ")
            )),
            (Some(_), Some(_)) => {}
            (None, _) => problems.push(format!("module {from} is in no layer: add it to LAYERS")),
            (_, None) => problems.push(format!("module {to} is in no layer: add it to LAYERS")),
        }
    }
    if let Some(cycle) = cycle(&graph) {
        let steps: Vec<String> = cycle
            .windows(2)
            .map(|w| format!("{} -> {} ({})", w[0], w[1], edges[&(w[0].clone(), w[1].clone())][0]))
            .collect();
        problems.push(format!("cycle: {}", steps.join("; ")));
    }
    assert!(problems.is_empty(), "layering broken:\n{}", problems.join("\n"));
    // The check sees the crate: every layer's modules exist.
    let seen: BTreeSet<String> = sources.iter().filter_map(|s| top_module(&s.path)).collect();
    for module in LAYERS.iter().flat_map(|l| l.iter()) {
        assert!(
            seen.contains(*module),
            "LAYERS names {module}, which is not a module of src/"
        );
    }
}

#[test]
fn no_source_file_is_over_600_lines_before_its_tests() {
    let long: Vec<String> = sources()
        .iter()
        .filter(|s| s.lines_before_tests > MAX_FILE_LINES)
        .map(|s| format!("src/{}: {} lines", s.path, s.lines_before_tests))
        .collect();
    assert!(long.is_empty(), "split these files:\n{}", long.join("\n"));
}

#[test]
fn no_function_is_over_80_lines_without_a_reason_next_to_it() {
    let mut long = Vec::new();
    for s in sources() {
        let code = &s.code;
        let mut i = 0;
        while i < code.len() {
            let (start, line) = &code[i];
            let trimmed = line.trim_start();
            let header = [
                "fn ",
                "pub fn ",
                "pub(crate) fn ",
                "async fn ",
                "pub async fn ",
                "pub(crate) async fn ",
            ]
            .iter()
            .any(|p| trimmed.starts_with(p));
            // A declaration (a trait method without a body) ends in `;`
            // before any `{`.
            let declaration = code[i..]
                .iter()
                .map(|(_, l)| l.trim_end())
                .find(|l| l.ends_with('{') || l.ends_with(';'))
                .is_some_and(|l| l.ends_with(';'));
            if !header || declaration {
                i += 1;
                continue;
            }
            let indent = line.len() - trimmed.len();
            let close = " ".repeat(indent) + "}";
            let end = code[i..]
                .iter()
                .skip(1)
                .position(|(_, l)| l.starts_with(&close) && l.trim_end().len() == indent + 1)
                .map_or(code.len() - 1, |k| i + 1 + k);
            let length = code[end].0 - start + 1;
            if length > MAX_FN_LINES {
                let text = std::fs::read_to_string(src().join(&s.path)).unwrap();
                let before: Vec<&str> = text.lines().take(start - 1).collect();
                let reason = before
                    .iter()
                    .rev()
                    .take_while(|l| {
                        let t = l.trim_start();
                        t.starts_with("//") || t.starts_with("#[")
                    })
                    .any(|l| l.contains("Long:"));
                if !reason {
                    let name = trimmed.split('(').next().unwrap_or(trimmed);
                    long.push(format!("src/{}:{start} {name}: {length} lines", s.path));
                }
            }
            i = end + 1;
        }
    }
    assert!(
        long.is_empty(),
        "shorten these, or say why next to them (`// Long: …`):\n{}",
        long.join("\n")
    );
}
