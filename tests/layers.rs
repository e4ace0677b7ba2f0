//! The core reads in one direction (#10): every module imports only modules of a lower layer,
//! and inside a module its submodules import each other without a loop.
//!
//! The test reads the `crate::…` and `super::…` paths of every file under `src/` (comments
//! and string literals removed), so an import added in the wrong direction fails here with
//! the file that made it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may import modules of lower layers only (and itself).
/// `main → {commands, tui} → {budget, report, import, state_file} → {store, pricing, cost} →
/// {domain types, time, numbers}`, each band cut finer where its members use each other.
const LAYERS: &[&[&str]] = &[
    // Domain types, time, numbers: leaves.
    &["error", "text"],
    &["numfmt", "timefmt", "regular", "paths"],
    &["range", "domain", "config"],
    // Store, pricing, cost.
    &["pricing"],
    &["store"],
    &["cost"],
    // Budget, report, import, state file.
    &["state_file", "report"],
    &["blocks", "budget", "import", "demo"],
    &["discover"],
    // The front ends: the command line, the commands, the monitor.
    &["cli"],
    &["commands"],
    &["tui"],
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` has no layer: add it to LAYERS"))
}

/// The source without comments, string and char literals (their bytes become spaces, so
/// nothing in them reads as a path).
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, s: &[u8]| {
        out.extend(s.iter().map(|&c| if c == b'\n' { b'\n' } else { b' ' }))
    };
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest.starts_with(b"/*") {
            // Block comments nest in Rust.
            let (mut depth, mut j) = (0usize, 0);
            while j < rest.len() {
                if rest[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &rest[..j]);
            i += j;
        } else if let Some(len) = raw_string_len(rest, i > 0 && is_ident(b[i - 1])) {
            blank(&mut out, &rest[..len]);
            i += len;
        } else if rest[0] == b'"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest[0] == b'\'' && (i == 0 || !is_ident(b[i - 1])) {
            // A char literal ('x', '\n', '"'), or a lifetime ('a), which is kept.
            let len = if rest.get(1) == Some(&b'\\') {
                rest.iter().skip(2).position(|&c| c == b'\'').map(|p| p + 3)
            } else {
                let ch = std::str::from_utf8(&rest[1..rest.len().min(6)])
                    .ok()
                    .or_else(|| {
                        (2..=5)
                            .rev()
                            .find_map(|n| std::str::from_utf8(&rest[1..rest.len().min(n)]).ok())
                    })
                    .and_then(|s| s.chars().next());
                ch.map(char::len_utf8)
                    .filter(|&n| rest.get(1 + n) == Some(&b'\''))
                    .map(|n| n + 2)
            };
            match len {
                Some(n) => {
                    blank(&mut out, &rest[..n]);
                    i += n;
                }
                None => {
                    out.push(b'\'');
                    i += 1;
                }
            }
        } else {
            out.push(rest[0]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The length of a raw string literal (`r"…"`, `r#"…"#`, `br"…"`) starting here.
fn raw_string_len(rest: &[u8], after_ident: bool) -> Option<usize> {
    if after_ident {
        return None;
    }
    let start = if rest.starts_with(b"br") {
        2
    } else if rest.starts_with(b"r") {
        1
    } else {
        return None;
    };
    let hashes = rest[start..].iter().take_while(|&&c| c == b'#').count();
    if rest.get(start + hashes) != Some(&b'"') {
        return None;
    }
    let mut close = vec![b'"'];
    close.extend(std::iter::repeat_n(b'#', hashes));
    let body = start + hashes + 1;
    let end = rest[body..]
        .windows(close.len())
        .position(|w| w == close.as_slice())?;
    Some(body + end + close.len())
}

/// The paths that follow `prefix` (`crate::` or `super::`), as lists of segments; a use-tree
/// group (`crate::{a, b::c}`) gives one path per branch.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    paths_after_at(code, prefix)
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

/// [`paths_after`], each with the byte offset where it starts.
fn paths_after_at(code: &str, prefix: &str) -> Vec<(usize, Vec<String>)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(p) = code[from..].find(prefix) {
        let at = from + p;
        from = at + prefix.len();
        if at > 0 && is_ident(code.as_bytes()[at - 1]) {
            continue;
        }
        // `super::super::x` is read from its first `super`.
        if prefix == "super::" && code[..at].ends_with("super::") {
            continue;
        }
        let mut ups = Vec::new();
        if prefix == "super::" {
            ups.push("super".to_string());
        }
        let mut rest = &code[from..];
        while let Some(r) = rest.strip_prefix("super::") {
            ups.push("super".to_string());
            rest = r;
        }
        for mut path in tree(rest.trim_start()) {
            let mut full = ups.clone();
            full.append(&mut path);
            found.push((at, full));
        }
    }
    found
}

/// The paths of one use tree: `a::b`, `{a, b::{c, d}}`, `a::{b, c}`.
fn tree(s: &str) -> Vec<Vec<String>> {
    let s = s.trim_start();
    if let Some(inner) = s.strip_prefix('{') {
        let body = &inner[..matching_brace(inner)];
        return split_top(body).into_iter().flat_map(tree).collect();
    }
    let ident: String = s.chars().take_while(|&c| is_ident(c as u8)).collect();
    if ident.is_empty() {
        return vec![Vec::new()];
    }
    let rest = s[ident.len()..].trim_start();
    match rest.strip_prefix("::") {
        Some(more) => tree(more)
            .into_iter()
            .map(|mut p| {
                p.insert(0, ident.clone());
                p
            })
            .collect(),
        None => vec![vec![ident]],
    }
}

/// The byte ranges of inline modules (`mod tests { … }`).
fn inline_modules(code: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(p) = code[from..].find("mod ") {
        let at = from + p;
        from = at + 4;
        if at > 0 && is_ident(code.as_bytes()[at - 1]) {
            continue;
        }
        let rest = &code[from..];
        let name_len = rest.bytes().take_while(|&c| is_ident(c)).count();
        let after = rest[name_len..].trim_start();
        if name_len > 0
            && let Some(body) = after.strip_prefix('{')
        {
            let start = code.len() - body.len();
            out.push(start..start + matching_brace(body));
        }
    }
    out
}

fn matching_brace(s: &str) -> usize {
    let mut depth = 1;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    s.len()
}

fn split_top(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rs_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `src/store/query.rs` → `store::query`, `src/store/mod.rs` →
/// `store`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    parts
}

/// Where the imports of `src/` go.
struct Graph {
    /// Every module file, by module path.
    modules: BTreeSet<Vec<String>>,
    /// Module → the modules it names, each with the files that do.
    edges: BTreeMap<Vec<String>, BTreeMap<Vec<String>, BTreeSet<String>>>,
}

fn read_graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    let modules: BTreeSet<Vec<String>> = files
        .iter()
        .map(|f| module_of(&src, f))
        .filter(|m| !m.is_empty() && m[0] != "lib" && m[0] != "main")
        .collect();
    let mut edges: BTreeMap<_, BTreeMap<_, BTreeSet<String>>> = BTreeMap::new();
    for file in &files {
        let me = module_of(&src, file);
        if me.is_empty() || me[0] == "lib" || me[0] == "main" {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(file).expect("read source"));
        let shown = file
            .strip_prefix(&src)
            .expect("under src")
            .display()
            .to_string();
        let mut targets: Vec<Vec<String>> = paths_after(&code, "crate::");
        let inline = inline_modules(&code);
        for (at, p) in paths_after_at(&code, "super::") {
            // In a file module `super` is its parent; inside an inline module (`mod tests`)
            // the first `super` is the file's module itself. `a/mod.rs` is module `a`.
            let ups = p.iter().take_while(|s| *s == "super").count();
            let inside = inline.iter().filter(|r| r.contains(&at)).count();
            let mut base = me.clone();
            for _ in 0..ups.saturating_sub(inside).min(base.len()) {
                base.pop();
            }
            base.extend(p[ups..].iter().cloned());
            targets.push(base);
        }
        for t in targets {
            // The longest module path the import names.
            let target = (1..=t.len())
                .rev()
                .map(|n| t[..n].to_vec())
                .find(|m| modules.contains(m));
            if let Some(target) = target
                && target != me
            {
                edges
                    .entry(me.clone())
                    .or_default()
                    .entry(target)
                    .or_default()
                    .insert(shown.clone());
            }
        }
    }
    Graph { modules, edges }
}

/// Top-level module → top-level module, with the files that make each edge.
fn top_edges(g: &Graph) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (from, tos) in &g.edges {
        for (to, files) in tos {
            if from[0] != to[0] {
                out.entry((from[0].clone(), to[0].clone()))
                    .or_default()
                    .extend(files.iter().cloned());
            }
        }
    }
    out
}

/// An import between two submodules of one module (or their descendants, neither inside
/// the other), as the edge between those two submodules.
fn siblings(from: &[String], to: &[String]) -> Option<(Vec<String>, Vec<String>)> {
    let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
    (common > 0 && common < from.len() && common < to.len())
        .then(|| (from[..=common].to_vec(), to[..=common].to_vec()))
}

/// The edges that lie on a loop: `a → b` where `b` leads back to `a`.
fn edges_in_loops<N: Ord + Clone>(edges: &BTreeMap<N, BTreeSet<N>>) -> Vec<(N, N)> {
    let reaches = |from: &N, to: &N| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            if &n == to {
                return true;
            }
            if seen.insert(n.clone()) {
                todo.extend(edges.get(&n).into_iter().flatten().cloned());
            }
        }
        false
    };
    edges
        .iter()
        .flat_map(|(a, bs)| bs.iter().map(move |b| (a.clone(), b.clone())))
        .filter(|(a, b)| reaches(b, a))
        .collect()
}

#[test]
fn every_module_has_a_layer() {
    let g = read_graph();
    let tops: BTreeSet<&str> = g.modules.iter().map(|m| m[0].as_str()).collect();
    let missing: Vec<_> = tops
        .iter()
        .filter(|m| !LAYERS.iter().any(|l| l.contains(m)))
        .collect();
    assert!(missing.is_empty(), "modules without a layer: {missing:?}");
}

#[test]
fn every_module_imports_only_lower_layers() {
    let g = read_graph();
    let mut wrong = Vec::new();
    for ((from, to), files) in top_edges(&g) {
        if layer_of(&to) < layer_of(&from) {
            continue;
        }
        wrong.push(format!(
            "{from} (layer {}) imports {to} (layer {}) in {}",
            layer_of(&from),
            layer_of(&to),
            files.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn top_level_modules_form_no_loop() {
    let g = read_graph();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to) in top_edges(&g).into_keys() {
        edges.entry(from).or_default().insert(to);
    }
    let looped: Vec<String> = edges_in_loops(&edges)
        .into_iter()
        .map(|(a, b)| format!("{a} → {b}"))
        .collect();
    assert!(
        looped.is_empty(),
        "modules that import each other (directly or through others):\n{}",
        looped.join("\n")
    );
}

/// Inside a module, its submodules (siblings) import each other in one direction. A
/// submodule may use its parent (`super::X`), and the parent its submodules.
#[test]
fn submodules_form_no_loop() {
    let g = read_graph();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (from, tos) in &g.edges {
        for to in tos.keys() {
            if let Some((a, b)) = siblings(from, to) {
                edges.entry(a).or_default().insert(b);
            }
        }
    }
    let looped: Vec<String> = edges_in_loops(&edges)
        .into_iter()
        .map(|(a, b)| format!("{} → {}", a.join("::"), b.join("::")))
        .collect();
    assert!(
        looped.is_empty(),
        "submodules that import each other (directly or through others):\n{}",
        looped.join("\n")
    );
}

#[test]
fn the_reader_sees_paths_but_not_comments_or_strings() {
    let code = code_only(
        "use crate::a::{b, c::{d, e}};\n// crate::x\n/* crate::y /* crate::z */ */\n\
         let s = \"crate::w\"; let r = r#\"crate::v\"#; let c = '\"'; fn f<'a>() { crate::u::f() }",
    );
    let paths = paths_after(&code, "crate::");
    let shown: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(shown, ["a::b", "a::c::d", "a::c::e", "u::f"]);
    let up = paths_after("use super::super::q::r;", "super::");
    assert_eq!(up, [vec!["super", "super", "q", "r"]]);
}

/// The front ends.
const FRONT_ENDS: [&str; 3] = ["cli", "commands", "tui"];

/// #10's rule in its own words, whatever the order of LAYERS: no module below the front ends
/// imports `cli`, `commands` or `tui` (so the core can be used and tested without clap or the
/// commands), and the front ends are the top layers.
#[test]
fn the_core_never_imports_the_front_ends() {
    let top: Vec<&str> = LAYERS[LAYERS.len() - FRONT_ENDS.len()..]
        .iter()
        .flat_map(|l| l.iter().copied())
        .collect();
    assert_eq!(top, FRONT_ENDS, "the front ends are the top layers");
    let wrong: Vec<String> = top_edges(&read_graph())
        .into_iter()
        .filter(|((from, to), _)| {
            !FRONT_ENDS.contains(&from.as_str()) && FRONT_ENDS.contains(&to.as_str())
        })
        .map(|((from, to), files)| {
            format!(
                "{from} imports {to} in {}",
                files.into_iter().collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "the core imports a front end:\n{}",
        wrong.join("\n")
    );
}

/// The monitor's time comes from the App's clock (fixed in tests): drawing and the model's
/// helpers never read the wall clock themselves.
#[test]
fn the_monitors_drawing_reads_no_wall_clock() {
    let tui = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/tui");
    let mut files = Vec::new();
    rs_files(&tui.join("ui"), &mut files);
    for f in [
        "model.rs",
        "keys.rs",
        "breakpoints.rs",
        "export.rs",
        "quota.rs",
    ] {
        files.push(tui.join(f));
    }
    let clocks = ["Utc::now", "Local::now", "SystemTime::now", "Instant::now"];
    let mut wrong = Vec::new();
    for file in &files {
        let code = code_only(&std::fs::read_to_string(file).expect("read source"));
        for c in clocks.iter().filter(|c| code.contains(*c)) {
            wrong.push(format!("{} reads {c}", file.display()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
