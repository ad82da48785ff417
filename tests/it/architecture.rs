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
