//! Bareon's own configs (`tests/bareon/`, sources in its README.md): what the built
//! `deployer validate` and, when the config is valid, `deployer plan` say of each, against
//! `NAME.expected`. `NAME.disks` gives the sizes of the blank sparse disk-image files it is
//! planned on, one `DISK SIZE MiB|GiB` line each. UUIDs in the plan are random, so they are
//! written `UUID` (and vfat volume ids `XXXX-XXXX`); the disk-image directory is `$DISKS`.
//!
//! `DEPLOYER_UPDATE_BAREON=1` rewrites every `.expected` from what the deployer says now.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bareon")
}

/// `(name, bytes)` of each line of a `.disks` file.
fn disks(path: &Path) -> Vec<(String, u64)> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    e2e::disk::parse_disk_sizes(&text, path)
}

/// Random ids written as placeholders: UUIDs, then vfat volume ids.
fn mask_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts_word = i == 0 || !(chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '-');
        if let Some(len) = id_at(&chars[i..]).filter(|_| starts_word) {
            out.push_str(if len == 36 { "UUID" } else { "XXXX-XXXX" });
            i += len;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// The length of a UUID (36) or vfat id (9) starting `chars`, if one does and the word
/// ends there.
fn id_at(chars: &[char]) -> Option<usize> {
    let fits = |groups: &[usize]| {
        let mut at = 0;
        for (n, len) in groups.iter().enumerate() {
            if n > 0 {
                if chars.get(at) != Some(&'-') {
                    return None;
                }
                at += 1;
            }
            for _ in 0..*len {
                if !chars.get(at).is_some_and(char::is_ascii_hexdigit) {
                    return None;
                }
                at += 1;
            }
        }
        let ends = chars
            .get(at)
            .is_none_or(|c| !c.is_ascii_alphanumeric() && *c != '-');
        ends.then_some(at)
    };
    fits(&[8, 4, 4, 4, 12]).or_else(|| fits(&[4, 4]))
}

fn run(dir: &Path, args: &[String], disks_dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .current_dir(dir)
        .env("COLUMNS", "100")
        .output()
        .expect("run deployer");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let report = format!(
        "$ deployer {}\nexit {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        out.status
            .code()
            .map_or("signal".to_owned(), |c| c.to_string()),
        text(&out.stdout),
        text(&out.stderr)
    );
    mask_ids(&report.replace(disks_dir.to_str().unwrap(), "$DISKS"))
}

/// What validate and plan say of `NAME.json`.
fn outcome(json: &Path) -> String {
    let dir = corpus_dir();
    let file = json.file_name().unwrap().to_str().unwrap().to_owned();
    let scratch = tempfile::tempdir().unwrap();
    let validate = run(&dir, &["validate".into(), file.clone()], scratch.path());
    if !validate.contains("\nexit 0\n") {
        return validate;
    }
    let mut args = vec!["plan".to_owned(), file];
    for (name, size) in disks(&json.with_extension("disks")) {
        let path = scratch
            .path()
            .join(format!("{}.img", name.replace('/', "_")));
        fs::File::create(&path).unwrap().set_len(size).unwrap();
        args.extend(["--disk".to_owned(), format!("{name}={}", path.display())]);
    }
    validate + &run(&dir, &args, scratch.path())
}

#[test]
fn bareons_configs_give_the_expected_validate_and_plan() {
    let update = std::env::var_os("DEPLOYER_UPDATE_BAREON").is_some();
    let mut configs: Vec<PathBuf> = fs::read_dir(corpus_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    configs.sort();
    assert!(configs.len() >= 30, "only {} configs", configs.len());
    let readme = fs::read_to_string(corpus_dir().join("README.md")).unwrap();
    let mut failures = Vec::new();
    for json in &configs {
        let name = json.file_name().unwrap().to_str().unwrap();
        assert!(
            readme.contains(&format!("`{name}`")),
            "{name}: not in README.md"
        );
        let got = outcome(json);
        assert!(!got.contains("panicked"), "{name}:\n{got}");
        let expected_path = json.with_extension("expected");
        if update {
            fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected {
            failures.push(format!("{name}\n--- expected\n{expected}--- got\n{got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(DEPLOYER_UPDATE_BAREON=1 rewrites the expected files)",
        failures.join("\n")
    );
}

#[test]
fn ids_are_masked() {
    assert_eq!(
        mask_ids("a 0fc63daf-8483-4772-8e79-3d69d8477de4 ABCD-1234 x-0fc63daf-8483"),
        "a UUID XXXX-XXXX x-0fc63daf-8483"
    );
}
