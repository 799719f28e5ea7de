//! The README's claims about the code's layout, checked against the code (issue 15):
//!
//! - no import cycle among the top-level modules of `src/` (a module reaches `crate::x` of another
//!   only downwards: `domain` < … < `app`);
//! - the paths the README's `Pure (no I/O, clock or async):` line names use no disk, clock,
//!   network, runtime, process or database.
//!
//! Comments and `#[cfg(test)]` modules at the end of a file are not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The code of a file without comment lines and without its trailing test module.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Every `.rs` file under `path` (or `path` itself).
fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out = Vec::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("a folder entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The top-level modules of the library and, for each, the others it names as `crate::x` (with a
/// file that does, for the message).
fn imports() -> BTreeMap<String, BTreeMap<String, String>> {
    let src = Path::new(ROOT).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let modules: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect();
    assert!(modules.len() > 5, "src/lib.rs declares the top-level modules: {modules:?}");
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for m in &modules {
        let file = src.join(format!("{m}.rs"));
        let path = if file.is_file() { file } else { src.join(m) };
        let mut out = BTreeMap::new();
        for f in rust_files(&path) {
            let code = code_of(&f);
            for (i, _) in code.match_indices("crate::") {
                let name: String = code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name != *m && modules.contains(&name) {
                    out.entry(name)
                        .or_insert_with(|| f.strip_prefix(ROOT).unwrap_or(&f).display().to_string());
                }
            }
        }
        edges.insert(m.clone(), out);
    }
    edges
}

#[test]
fn no_top_level_module_of_src_imports_one_that_imports_it_back() {
    let edges = imports();
    // A cycle exists iff a module reaches itself.
    let mut cycles = Vec::new();
    for start in edges.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        while let Some((m, path)) = stack.pop() {
            for (next, file) in &edges[&m] {
                let mut p = path.clone();
                p.push(format!("{next} (in {file})"));
                if next == start {
                    cycles.push(p.join(" → "));
                } else if seen.insert(next.clone()) {
                    stack.push((next.clone(), p));
                }
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "import cycles among the top-level modules:\n{}",
        cycles.join("\n")
    );
    // The layers the README draws depend downwards only.
    assert!(edges["domain"].is_empty(), "domain/ imports {:?}", edges["domain"]);
    for upper in ["web", "cli", "app"] {
        for lower in ["domain", "store", "engine", "notify", "workers"] {
            assert!(!edges[lower].contains_key(upper), "{lower} imports {upper}: {:?}", edges[lower]);
        }
    }
}

/// The paths of the README's line `Pure (no I/O, clock or async): `a`, `b`, …`.
fn pure_paths() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README.md");
    let line = readme
        .lines()
        .find(|l| l.starts_with("Pure (no I/O, clock or async):"))
        .expect("the README names the pure paths on a line starting `Pure (no I/O, clock or async):`");
    line.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

#[test]
fn the_paths_the_readme_calls_pure_use_no_disk_clock_network_runtime_or_database() {
    let paths = pure_paths();
    assert!(paths.len() >= 5, "{paths:?}");
    let forbidden = [
        "std::fs",
        "std::env",
        "std::net",
        "std::process",
        "std::thread",
        "File::",
        "tokio",
        "async ",
        "SystemTime",
        "Instant::now",
        "Utc::now",
        "Local::now",
        "redb",
        "reqwest",
        "lettre",
        "axum",
    ];
    let mut found = Vec::new();
    for p in &paths {
        let path = Path::new(ROOT).join(p);
        assert!(path.exists(), "the README calls {p} pure, but there is no such path");
        for f in rust_files(&path) {
            let code = code_of(&f);
            for line in code.lines() {
                for word in forbidden.iter().filter(|w| line.contains(**w)) {
                    found.push(format!(
                        "{}: `{word}` in: {}",
                        f.strip_prefix(ROOT).unwrap_or(&f).display(),
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(found.is_empty(), "the README calls these pure, but:\n{}", found.join("\n"));
}
