//! Runs the built `deployer` on the malformed configs in `tests/bad/` and on the examples.
//!
//! Each case is `NAME.json` next to `NAME.expected`, the exact error lines. A config that
//! is only wrong for its disks (it does not fit them) also has `NAME.disks`, one
//! `DISK SIZE UNIT` line per disk (`vda 10 GiB`): it is checked with `deployer plan` on
//! sparse disk-image files of those sizes (named `$DISKS/NAME.img` in `.expected`), every
//! other case with `deployer validate`.
//! Every case is then given to `deployer deploy --yes`, which must refuse it with the same
//! lines before it writes anything. All run with `--strict` (unknown keys are errors); the
//! `.expected` lines that start with `warning: ` are the config's warnings.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn deployer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .stdin(Stdio::null())
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

/// One malformed config of `tests/bad/`.
struct BadCase {
    json: PathBuf,
    /// The error lines, each ending in a newline.
    expected: String,
    /// The disks it is planned on (name, bytes); empty for a config `validate` refuses.
    disks: Vec<(String, u64)>,
}

impl BadCase {
    fn name(&self) -> String {
        self.json.display().to_string()
    }

    /// Sparse disk-image files of the case's sizes in `dir`, as `--disk` arguments.
    fn disk_args(&self, dir: &Path) -> Vec<String> {
        self.disks
            .iter()
            .map(|(name, size)| {
                let path = dir.join(format!("{name}.img"));
                fs::File::create(&path).unwrap().set_len(*size).unwrap();
                format!("{name}={}", path.display())
            })
            .collect()
    }

    /// `deployer plan` on the case's disks, or `deployer validate`; `--json` if asked.
    /// The disks' directory reads `$DISKS` in the output.
    fn run(&self, json: bool) -> Output {
        let dir = tempfile::tempdir().unwrap();
        let config = self.json.to_str().unwrap().to_owned();
        let mut args: Vec<String> = if self.disks.is_empty() {
            vec!["validate".into(), "--strict".into(), config]
        } else {
            let mut args = vec!["plan".into(), "--strict".into(), config];
            for disk in self.disk_args(dir.path()) {
                args.extend(["--disk".into(), disk]);
            }
            args
        };
        if json {
            args.push("--json".into());
        }
        let out = deployer(&args.iter().map(String::as_str).collect::<Vec<_>>());
        Output {
            stdout: with_disks_dir(&out.stdout, dir.path()),
            stderr: with_disks_dir(&out.stderr, dir.path()),
            ..out
        }
    }
}

/// `output` with the path `dir` written `$DISKS`.
fn with_disks_dir(output: &[u8], dir: &Path) -> Vec<u8> {
    text(output)
        .replace(dir.to_str().unwrap(), "$DISKS")
        .into_bytes()
}

fn bad_cases() -> Vec<BadCase> {
    let cases: Vec<BadCase> = json_files(&crate_dir().join("tests/bad"))
        .into_iter()
        .map(|json| {
            let expected = fs::read_to_string(json.with_extension("expected"))
                .unwrap_or_else(|e| panic!("{}: no .expected file: {e}", json.display()));
            let disks_path = json.with_extension("disks");
            let disks = fs::read_to_string(&disks_path)
                .map(|text| e2e::disk::parse_disk_sizes(&text, &disks_path))
                .unwrap_or_default();
            BadCase {
                json,
                expected,
                disks,
            }
        })
        .collect();
    assert!(cases.len() >= 59, "only {} bad configs", cases.len());
    cases
}

#[test]
fn bad_configs_print_exactly_the_expected_errors() {
    let mut failures = Vec::new();
    for case in bad_cases() {
        let out = case.run(false);
        let stderr = text(&out.stderr);
        if out.status.code() != Some(3) || !out.stdout.is_empty() || stderr != case.expected {
            failures.push(format!(
                "{}: status {:?}, stdout {:?}\n--- expected\n{}--- got\n{stderr}",
                case.name(),
                out.status.code(),
                text(&out.stdout),
                case.expected
            ));
        }
        assert!(!stderr.contains("panicked"), "{}: {stderr}", case.name());
        assert!(
            !case.expected.is_empty(),
            "{}: empty .expected",
            case.name()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn bad_configs_report_the_same_errors_as_json() {
    for case in bad_cases() {
        let out = case.run(true);
        assert_eq!(out.status.code(), Some(3), "{}", case.name());
        assert!(out.stderr.is_empty(), "{}", case.name());
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
        assert_eq!(report["version"], 1);
        if case.disks.is_empty() {
            assert_eq!(report["valid"], false);
        }
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
        let warnings = report["warnings"].as_array().map_or(0, Vec::len);
        let expected: Vec<&str> = case
            .expected
            .lines()
            .filter(|line| !line.starts_with("warning: "))
            .collect();
        assert_eq!(lines, expected, "{}", case.name());
        assert_eq!(
            warnings,
            case.expected.lines().count() - expected.len(),
            "{}",
            case.name()
        );
    }
}

/// The first and last MiB of a disk-image file: where a partition table would be written.
fn ends(path: &Path) -> Vec<u8> {
    use std::io::{Seek, SeekFrom};
    let mut file = fs::File::open(path).unwrap();
    let mut bytes = vec![0; 2 << 20];
    file.read_exact(&mut bytes[..1 << 20]).unwrap();
    file.seek(SeekFrom::End(-(1 << 20))).unwrap();
    file.read_exact(&mut bytes[1 << 20..]).unwrap();
    bytes
}

#[test]
fn bad_configs_are_refused_by_deploy_before_it_writes() {
    let mut failures = Vec::new();
    for case in bad_cases() {
        let dir = tempfile::tempdir().unwrap();
        let mut disks = case.disk_args(dir.path());
        if disks.is_empty() {
            // A disk-image file that deploy would create: it must not appear.
            disks.push(format!("vda={}", dir.path().join("vda.img").display()));
        }
        let before: Vec<(PathBuf, fs::Metadata)> = disks
            .iter()
            .map(|disk| PathBuf::from(disk.split_once('=').unwrap().1))
            .filter_map(|path| fs::metadata(&path).ok().map(|meta| (path, meta)))
            .collect();
        let mut args = vec!["deploy", "--strict", case.json.to_str().unwrap(), "--yes"];
        for disk in &disks {
            args.extend(["--disk", disk]);
        }
        let out = deployer(&args);
        let stderr = text(&with_disks_dir(&out.stderr, dir.path()));
        if out.status.code() != Some(3) || stderr != case.expected {
            failures.push(format!(
                "{}: deploy exited {:?}\n--- expected\n{}--- got\n{stderr}",
                case.name(),
                out.status.code(),
                case.expected
            ));
        }
        let files: Vec<PathBuf> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        if files.len() != before.len() {
            failures.push(format!("{}: deploy left {files:?}", case.name()));
        }
        for (path, meta) in &before {
            let after = fs::metadata(path).unwrap();
            let untouched = after.len() == meta.len()
                && after.modified().unwrap() == meta.modified().unwrap()
                && ends(path).iter().all(|&b| b == 0);
            if !untouched {
                failures.push(format!("{}: deploy wrote {}", case.name(), path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn examples_are_valid() {
    let examples = json_files(&crate_dir().join("examples"));
    let summaries = [
        ("demo.json", "2 images, 1 disk, 3 volumes"),
        ("every-filesystem.json", "1 image, 1 disk, 6 volumes"),
        ("lvm.json", "2 images, 1 disk, 7 volumes"),
        ("multi-image.json", "2 images, 1 disk, 3 volumes"),
        ("raid.json", "1 image, 2 disks, 7 volumes"),
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
            serde_json::json!({"version": 1, "valid": true, "errors": [], "warnings": []})
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
