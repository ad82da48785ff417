//! The house rules that a reader of the code relies on, checked on the
//! source itself: each table is named only by its owner (the "Table owners"
//! table of docs/architecture.md, which this test reads, so that the
//! document and the code cannot disagree).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Table name → the paths (files, or folders ending in `/`) that own it, read
/// from the owners table of docs/architecture.md.
fn owners() -> BTreeMap<String, Vec<String>> {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("docs/architecture.md"))
        .expect("docs/architecture.md");
    let section = doc
        .split("## Table owners")
        .nth(1)
        .expect("a \"## Table owners\" section in docs/architecture.md");
    let mut owners = BTreeMap::new();
    for line in section.lines().take_while(|l| !l.starts_with("## ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with('`') {
            continue;
        }
        let table = cells[1].trim_matches('`').to_string();
        let paths: Vec<String> = cells[2]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        assert!(!paths.is_empty(), "no owner for table {table}");
        owners.insert(table, paths);
    }
    owners
}

/// The tables of src/db/schema.rs.
fn tables() -> Vec<String> {
    let schema = std::fs::read_to_string(Path::new(ROOT).join("src/db/schema.rs"))
        .expect("src/db/schema.rs");
    schema
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let (name, rest) = l.split_once(" (")?;
            (rest.ends_with(") {")
                && !name.is_empty()
                && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .then(|| name.to_string())
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The tables a file names: in `schema::…` paths (single or grouped, with
/// `as` renames) and in SQL text (`FROM t`, `INTO t`, `UPDATE t`, `JOIN t`).
/// Comments are left out.
fn named_in(text: &str, tables: &[String]) -> Vec<String> {
    let code: String = text
        .lines()
        .map(|l| match l.trim_start().starts_with("//") {
            true => "",
            false => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("schema::") {
        rest = &rest[i + "schema::".len()..];
        let group = match rest.strip_prefix('{') {
            Some(g) => &g[..g.find('}').unwrap_or(g.len())],
            None => {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                &rest[..end]
            }
        };
        for word in group.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if tables.iter().any(|t| t == word) {
                found.push(word.to_string());
            }
        }
    }
    let words: Vec<&str> = code
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    for pair in words.windows(2) {
        let keyword = pair[0].to_ascii_uppercase();
        if ["FROM", "INTO", "UPDATE", "JOIN", "TABLE"].contains(&keyword.as_str())
            && pair[0].chars().all(|c| c.is_ascii_uppercase())
            && tables.iter().any(|t| t == pair[1])
        {
            found.push(pair[1].to_string());
        }
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn every_table_has_one_owner_and_only_it_names_the_table() {
    let owners = owners();
    let tables = tables();
    assert!(tables.len() >= 19, "schema.rs read: {tables:?}");
    for t in &tables {
        assert!(
            owners.contains_key(t),
            "table {t} has no owner in docs/architecture.md"
        );
    }
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("src"), &mut files);
    let mut trespass = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(ROOT)
            .expect("under the crate")
            .to_string_lossy()
            .replace('\\', "/");
        // The database layer (connections, schema, migrations, backups)
        // serves every owner.
        if rel.starts_with("src/db/") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        for table in named_in(&text, &tables) {
            let allowed = &owners[&table];
            if !allowed.iter().any(|o| match o.ends_with('/') {
                true => rel.starts_with(o.as_str()),
                false => rel == *o,
            }) {
                trespass.push(format!("{rel} names {table} (owner: {allowed:?})"));
            }
        }
    }
    assert!(
        trespass.is_empty(),
        "tables named outside their owner:\n{}",
        trespass.join("\n")
    );
}

#[test]
fn the_ownership_check_sees_every_way_of_naming_a_table() {
    let tables: Vec<String> = ["api_keys", "users", "workspaces"]
        .map(String::from)
        .to_vec();
    assert_eq!(
        named_in("use crate::db::schema::api_keys;", &tables),
        ["api_keys"]
    );
    assert_eq!(
        named_in(
            "use crate::db::schema::{\n  users as u,\n  workspaces };",
            &tables
        ),
        ["users", "workspaces"]
    );
    assert_eq!(
        named_in(r#"sql_query("UPDATE api_keys SET x = 1")"#, &tables),
        ["api_keys"]
    );
    assert_eq!(
        named_in("// schema::users in a comment\nlet users = 1;", &tables),
        Vec::<String>::new()
    );
}

/// The top-level module a file under src/ belongs to (`oauth` for
/// src/oauth/token/mod.rs, `config` for src/config.rs).
fn top_module(rel: &str) -> String {
    let rest = rel.trim_start_matches("src/");
    rest.split('/')
        .next()
        .unwrap_or(rest)
        .trim_end_matches(".rs")
        .to_string()
}

/// The top-level modules a file's code (before its `#[cfg(test)]` part)
/// refers to through `crate::…`, including grouped `use crate::{…}`.
fn imports_of(text: &str) -> Vec<String> {
    let code: String = text
        .split("#[cfg(test)]")
        .next()
        .unwrap_or("")
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        match rest.strip_prefix('{') {
            // The first segment of each path of the group, at depth one.
            Some(g) => {
                let (mut depth, mut start) = (0usize, 0usize);
                for (j, c) in g.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            found.push(first_segment(&g[start..j]));
                            break;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            found.push(first_segment(&g[start..j]));
                            start = j + 1;
                        }
                        _ => {}
                    }
                }
            }
            None => found.push(first_segment(rest)),
        }
    }
    found.retain(|n| !n.is_empty());
    found.sort();
    found.dedup();
    found
}

/// The leading identifier of a path (`db` of ` db::{self, DbConn}`).
fn first_segment(path: &str) -> String {
    path.trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

type Edges = BTreeMap<String, std::collections::BTreeSet<String>>;

/// The modules that reach themselves through the edges.
fn in_cycles(edges: &Edges) -> Vec<String> {
    let mut cycles = Vec::new();
    for start in edges.keys() {
        let mut seen = std::collections::BTreeSet::new();
        let mut stack: Vec<String> = edges[start].iter().cloned().collect();
        while let Some(m) = stack.pop() {
            if &m == start {
                cycles.push(start.clone());
                break;
            }
            if seen.insert(m.clone()) {
                stack.extend(edges.get(&m).into_iter().flatten().cloned());
            }
        }
    }
    cycles
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("src"), &mut files);
    let mut edges = Edges::new();
    for file in &files {
        let rel = file
            .strip_prefix(ROOT)
            .expect("under the crate")
            .to_string_lossy()
            .replace('\\', "/");
        let from = top_module(&rel);
        let text = std::fs::read_to_string(file).expect("read");
        let entry = edges.entry(from.clone()).or_default();
        for to in imports_of(&text) {
            if to != from {
                entry.insert(to);
            }
        }
    }
    let cycles = in_cycles(&edges);
    assert!(
        cycles.is_empty(),
        "modules in an import cycle: {cycles:?}\nedges: {edges:#?}"
    );
}

#[test]
fn the_import_check_reads_grouped_and_single_paths() {
    let text = "use crate::{accounts::audit, db::{self, DbConn}};\nuse crate::error::Result;\n\
                fn f() { crate::metrics::METRICS.x(); }\n#[cfg(test)]\nuse crate::node::x;";
    assert_eq!(imports_of(text), ["accounts", "db", "error", "metrics"]);
    assert_eq!(top_module("src/oauth/token/mod.rs"), "oauth");
    assert_eq!(top_module("src/config.rs"), "config");
    let edge = |a: &str, b: &[&str]| (a.to_string(), b.iter().map(|s| s.to_string()).collect());
    let acyclic: Edges = [edge("http", &["oauth", "db"]), edge("oauth", &["db"])].into();
    assert!(in_cycles(&acyclic).is_empty());
    let cyclic: Edges = [
        edge("http", &["oauth"]),
        edge("oauth", &["db"]),
        edge("db", &["http"]),
    ]
    .into();
    assert_eq!(in_cycles(&cyclic), ["db", "http", "oauth"]);
}
