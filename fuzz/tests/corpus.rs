//! Replays every kept corpus file (`corpus/TARGET/`) and every crash input found by fuzzing
//! (`artifacts-kept/TARGET/`) through the fuzz targets' property checks, on stable Rust:
//!
//!     cargo test --manifest-path fuzz/Cargo.toml --no-default-features

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use multiboot_fuzz::{Check, TARGETS};

/// The files of `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("reading a corpus directory").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `check` on every file of `dir`; returns how many ran and the failures, each as
/// `path: panic message`.
fn replay(dir: &Path, check: Check) -> (usize, Vec<String>) {
    let files = files(dir);
    let mut failures = Vec::new();
    for path in &files {
        let data = fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| check(&data))) {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", path.display()));
        }
    }
    (files.len(), failures)
}

fn replay_target(name: &str) {
    let (_, check) = TARGETS
        .iter()
        .find(|(target, _)| *target == name)
        .expect("a known target");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (corpus, mut failures) = replay(&root.join("corpus").join(name), *check);
    let (crashes, more) = replay(&root.join("artifacts-kept").join(name), *check);
    failures.extend(more);
    assert!(corpus > 0, "corpus/{name}/ is empty or missing");
    assert!(
        failures.is_empty(),
        "{} of {} inputs fail:\n{}",
        failures.len(),
        corpus + crashes,
        failures.join("\n")
    );
}

#[test]
fn grubcfg_corpus_and_crashes() {
    replay_target("grubcfg");
}

#[test]
fn grubenv_corpus_and_crashes() {
    replay_target("grubenv");
}

#[test]
fn bootinfo_corpus_and_crashes() {
    replay_target("bootinfo");
}

#[test]
fn provision_corpus_and_crashes() {
    replay_target("provision");
}

#[test]
fn every_target_has_a_replay_test_and_a_fuzz_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let names: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ["grubcfg", "grubenv", "bootinfo", "provision"]);
    for name in names {
        let target = root.join("fuzz_targets").join(format!("{name}.rs"));
        assert!(target.is_file(), "{} is missing", target.display());
    }
}
