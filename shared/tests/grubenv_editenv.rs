//! `shared::grubenv` against the real `grub-editenv`: blocks either side writes read the
//! same in the other, and our writes are byte-identical to grub-editenv's.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use shared::grubenv::{GrubEnv, GrubEnvError, BLOCK_SIZE};

/// The `grub-editenv` on `PATH`; fails the test if there is none.
fn editenv() -> PathBuf {
    env::var_os("PATH")
        .iter()
        .flat_map(env::split_paths)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("grub-editenv"))
        .find(|path| path.is_file())
        .expect("grub-editenv not found: run scripts/setup (see README)")
}

/// Runs `grub-editenv FILE ARGS...`; returns whether it succeeded and its stdout.
fn try_run(file: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(editenv())
        .arg(file)
        .args(args)
        .output()
        .expect("running grub-editenv");
    (
        out.status.success(),
        String::from_utf8(out.stdout).expect("grub-editenv printed UTF-8"),
    )
}

fn run(file: &Path, args: &[&str]) -> String {
    let (ok, stdout) = try_run(file, args);
    assert!(ok, "grub-editenv {} {args:?} failed", file.display());
    stdout
}

/// What `grub-editenv list` prints for `env`.
fn listing(env: &GrubEnv) -> String {
    env.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

/// One step applied both with grub-editenv and with [`GrubEnv`].
enum Op<'a> {
    Set(&'a [(&'a str, &'a str)]),
    Unset(&'a [&'a str]),
}

const LONG: &str = "a value long enough that replacing it moves every later line backwards";

const STEPS: &[Op] = &[
    Op::Set(&[("a", "b"), ("c", "d")]),
    Op::Set(&[("saved_entry", "Ubuntu 22.04 LTS (on /dev/vda4)")]),
    Op::Set(&[
        ("eq", "x=y=z"),
        ("back", "C:\\path\\\\to"),
        ("nl", "line1\nline2\n"),
    ]),
    Op::Set(&[("a", LONG)]),
    Op::Set(&[("u", "ünïcødé ✓"), ("empty", "")]),
    Op::Unset(&["c", "not-there"]),
    Op::Set(&[("a", "short"), ("c", "back again")]),
    Op::Unset(&["a", "nl"]),
    Op::Set(&[("next_entry", "2"), ("trailing", "ends with a backslash\\")]),
];

fn apply_with_editenv(file: &Path, op: &Op) {
    match op {
        Op::Set(pairs) => {
            let args: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let args: Vec<&str> = ["set"]
                .into_iter()
                .chain(args.iter().map(String::as_str))
                .collect();
            run(file, &args);
        }
        Op::Unset(keys) => {
            let args: Vec<&str> = ["unset"].into_iter().chain(keys.iter().copied()).collect();
            run(file, &args);
        }
    }
}

fn apply_with_us(env: &mut GrubEnv, op: &Op) {
    match op {
        Op::Set(pairs) => {
            for (k, v) in *pairs {
                env.set(k, v).unwrap();
            }
        }
        Op::Unset(keys) => {
            for k in *keys {
                env.unset(k);
            }
        }
    }
}

#[test]
fn editenv_is_installed() {
    assert!(editenv().is_file());
}

#[test]
fn blocks_editenv_writes_parse_like_its_listing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grubenv");
    run(&file, &["create"]);
    for op in STEPS {
        apply_with_editenv(&file, op);
        let env = GrubEnv::parse(&fs::read(&file).unwrap()).unwrap();
        assert_eq!(listing(&env), run(&file, &["list"]));
    }
    let env = GrubEnv::parse(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(env.get("eq"), Some("x=y=z"));
    assert_eq!(env.get("back"), Some("C:\\path\\\\to"));
    assert_eq!(
        env.get("saved_entry"),
        Some("Ubuntu 22.04 LTS (on /dev/vda4)")
    );
    assert_eq!(env.get("trailing"), Some("ends with a backslash\\"));
    assert_eq!(env.get("empty"), Some(""));
    assert_eq!(env.get("nl"), None);
}

#[test]
fn blocks_we_write_list_identically_and_match_editenv_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let theirs = dir.path().join("theirs");
    let ours = dir.path().join("ours");
    run(&theirs, &["create"]);
    let mut env = GrubEnv::new();
    assert_eq!(env.to_bytes().unwrap(), fs::read(&theirs).unwrap());
    for op in STEPS {
        apply_with_editenv(&theirs, op);
        apply_with_us(&mut env, op);
        let bytes = env.to_bytes().unwrap();
        assert_eq!(bytes.len(), BLOCK_SIZE);
        assert_eq!(bytes, fs::read(&theirs).unwrap());
        fs::write(&ours, &bytes).unwrap();
        assert_eq!(run(&ours, &["list"]), listing(&env));
    }
}

#[test]
fn editenv_continues_blocks_we_wrote_and_we_continue_its_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grubenv");
    let (first, rest) = STEPS.split_at(4);
    let mut env = GrubEnv::new();
    for op in first {
        apply_with_us(&mut env, op);
    }
    fs::write(&file, env.to_bytes().unwrap()).unwrap();
    for (i, op) in rest.iter().enumerate() {
        if i % 2 == 0 {
            apply_with_editenv(&file, op);
        } else {
            let mut parsed = GrubEnv::parse(&fs::read(&file).unwrap()).unwrap();
            apply_with_us(&mut parsed, op);
            fs::write(&file, parsed.to_bytes().unwrap()).unwrap();
        }
        apply_with_us(&mut env, op);
        assert_eq!(fs::read(&file).unwrap(), env.to_bytes().unwrap());
    }
}

#[test]
fn size_limit_agrees_with_editenv() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grubenv");
    // Header and warning take 94 bytes; "a=" + value + "\n" may take the other 930.
    for (len, fits) in [(927, true), (928, false)] {
        let value = "x".repeat(len);
        run(&file, &["create"]);
        let (ok, _) = try_run(&file, &["set", &format!("a={value}")]);
        assert_eq!(ok, fits, "grub-editenv with a {len}-byte value");

        let mut env = GrubEnv::new();
        env.set("a", &value).unwrap();
        match env.to_bytes() {
            Ok(bytes) => {
                assert!(fits, "{len}-byte value");
                assert_eq!(bytes, fs::read(&file).unwrap());
            }
            Err(GrubEnvError::TooLarge { needed }) => {
                assert!(!fits, "{len}-byte value");
                assert_eq!(needed, BLOCK_SIZE + 1);
            }
            Err(other) => panic!("{other}"),
        }
    }
}
