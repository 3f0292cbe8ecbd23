//! Runs the built `deployer validate` on the malformed configs in `tests/bad/` (each
//! `NAME.json` next to `NAME.expected`, the exact error lines) and on the examples.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn deployer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .output()
        .expect("run deployer")
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

fn bad_cases() -> Vec<(PathBuf, String)> {
    let cases: Vec<(PathBuf, String)> = json_files(&crate_dir().join("tests/bad"))
        .into_iter()
        .map(|json| {
            let expected = fs::read_to_string(json.with_extension("expected"))
                .unwrap_or_else(|e| panic!("{}: no .expected file: {e}", json.display()));
            (json, expected)
        })
        .collect();
    assert!(cases.len() >= 30, "only {} bad configs", cases.len());
    cases
}

#[test]
fn bad_configs_print_exactly_the_expected_errors() {
    let mut failures = Vec::new();
    for (json, expected) in bad_cases() {
        let out = deployer(&["validate", json.to_str().unwrap()]);
        let stderr = text(&out.stderr);
        if out.status.code() != Some(3) || !out.stdout.is_empty() || stderr != expected {
            failures.push(format!(
                "{}: status {:?}, stdout {:?}\n--- expected\n{expected}--- got\n{stderr}",
                json.display(),
                out.status.code(),
                text(&out.stdout)
            ));
        }
        assert!(!stderr.contains("panicked"), "{}: {stderr}", json.display());
        assert!(!expected.is_empty(), "{}: empty .expected", json.display());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn bad_configs_report_the_same_errors_as_json() {
    for (json, expected) in bad_cases() {
        let out = deployer(&["validate", "--json", json.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(3), "{}", json.display());
        assert!(out.stderr.is_empty(), "{}", json.display());
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
        assert_eq!(report["version"], 1);
        assert_eq!(report["valid"], false);
        let lines: Vec<String> = report["errors"]
            .as_array()
            .expect("errors array")
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e["path"].as_str().unwrap(),
                    e["message"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            lines,
            expected.lines().collect::<Vec<_>>(),
            "{}",
            json.display()
        );
    }
}

#[test]
fn examples_are_valid() {
    let examples = json_files(&crate_dir().join("examples"));
    let summaries = [
        ("demo.json", "2 images, 1 disk, 3 volumes"),
        ("every-filesystem.json", "1 image, 1 disk, 6 volumes"),
        ("lvm.json", "2 images, 1 disk, 7 volumes"),
        ("multi-image.json", "2 images, 1 disk, 3 volumes"),
        ("raid.json", "1 image, 2 disks, 8 volumes"),
    ];
    assert_eq!(examples.len(), summaries.len());
    for (path, (name, summary)) in examples.iter().zip(summaries) {
        assert!(path.ends_with(name), "{}", path.display());
        let arg = path.to_str().unwrap();
        let out = deployer(&["validate", arg]);
        assert_eq!(out.status.code(), Some(0), "{arg}: {}", text(&out.stderr));
        assert!(out.stderr.is_empty());
        assert_eq!(text(&out.stdout), format!("{arg}: valid: {summary}\n"));

        let out = deployer(&["validate", "--json", arg]);
        assert_eq!(out.status.code(), Some(0));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            report,
            serde_json::json!({"version": 1, "valid": true, "errors": []})
        );
    }
}

#[test]
fn reads_standard_input_for_dash() {
    let config = fs::read(crate_dir().join("examples/multi-image.json")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(["validate", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&config).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "-: valid: 2 images, 1 disk, 3 volumes\n");
}

#[test]
fn an_unreadable_file_is_status_1() {
    let missing = crate_dir().join("tests/bad/no-such-file.json");
    let out = deployer(&["validate", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("deployer: cannot read "), "{stderr}");
    assert!(stderr.contains("No such file or directory"), "{stderr}");
    let out = deployer(&["validate", "--json", crate_dir().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}

#[test]
fn usage_errors_are_status_2_and_help_documents_the_statuses() {
    for args in [
        &[][..],
        &["validate"],
        &["validate", "a", "b"],
        &["frobnicate"],
    ] {
        assert_eq!(deployer(args).status.code(), Some(2), "{args:?}");
    }
    for args in [
        &["--help"][..],
        &["validate", "--help"],
        &["plan", "--help"],
    ] {
        let out = deployer(args);
        assert_eq!(out.status.code(), Some(0));
        let help = text(&out.stdout);
        assert!(
            help.contains("Exit status: 0 valid, 1 the config file or a disk cannot be read"),
            "{help}"
        );
        assert!(
            help.contains(
                "written), 2 usage error, 3 invalid config, or it does not fit the disks."
            ),
            "{help}"
        );
    }
}
