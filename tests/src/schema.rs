//! The JSON Schemas of the programs' `--json` output, `docs/schema/*.v1.json`: one file per
//! output shape, referenced from the man pages' JSON OUTPUT sections. [`check`] validates a
//! real output against its schema (draft 2020-12, with the `jsonschema` crate).

use std::path::PathBuf;

use serde_json::Value;

/// `<workspace>/docs/schema`.
pub fn dir() -> PathBuf {
    crate::workspace_root().join("docs").join("schema")
}

/// Every schema file's name, sorted.
pub fn names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap_or_else(|err| panic!("reading {}: {err}", dir().display()))
        .map(|entry| {
            entry
                .expect("reading docs/schema")
                .file_name()
                .into_string()
                .expect("UTF-8 file names")
        })
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// The schema `docs/schema/<name>`, parsed.
pub fn schema(name: &str) -> Value {
    let path = dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Panics, naming every violation with its place in `instance`, unless `instance` (the
/// output of `command`) is valid against `docs/schema/<name>`. The schema itself must be
/// a valid draft 2020-12 schema.
pub fn check(name: &str, command: &str, instance: &Value) {
    let validator = jsonschema::validator_for(&schema(name))
        .unwrap_or_else(|err| panic!("docs/schema/{name} is not a valid schema: {err}"));
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|err| format!("  at {:?}: {err}", err.instance_path().as_str()))
        .collect();
    assert!(
        errors.is_empty(),
        "the output of `{command}` does not follow docs/schema/{name}:\n{}\n--- output ---\n{instance:#}",
        errors.join("\n")
    );
}
