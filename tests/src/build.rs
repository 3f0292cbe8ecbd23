//! Builds of the workspace's binaries that the tests need besides the ones `cargo test`
//! makes: each in a target directory of its own under `<workspace>/target`, so that it
//! does not wait for the build lock of the `cargo test` that runs us, and without that
//! cargo's settings.
//!
//! Once per test run ([`once_per_run`]): cargo-nextest runs every test in a process of its
//! own, where a cache in the process (a `OnceLock`) would build once per test.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::fcntl::{Flock, FlockArg};

use crate::cmd;

/// Runs `cargo build ARGS` in the workspace with `CARGO_TARGET_DIR` set to
/// `<workspace>/target/<target_dir>` and the variables `envs`, and returns
/// `<that directory>/<binary>`, panicking unless the build made it. Once per test run
/// ([`once_per_run`]).
pub fn cargo_build(
    target_dir: &str,
    args: &[&str],
    envs: &[(&str, &str)],
    binary: &str,
) -> PathBuf {
    let workspace = crate::workspace_root();
    let target_dir = workspace.join("target").join(target_dir);
    let binary = target_dir.join(binary);
    let build = format!("cargo build {args:?} {envs:?}");
    once_per_run(&target_dir, &build, || {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        without_cargo_env(&mut command);
        cmd::run(
            command
                .current_dir(workspace)
                .arg("build")
                .args(args)
                .env("CARGO_TARGET_DIR", &target_dir)
                .envs(envs.iter().copied()),
        );
    });
    assert!(
        binary.is_file(),
        "cargo build did not produce {}",
        binary.display()
    );
    binary
}

/// Removes from `command`'s environment what the cargo that runs the tests set for them
/// (every `CARGO_*` variable but `CARGO_HOME`, and the make jobserver's), so that a cargo
/// the tests start builds as one started by hand. Its settings must not leak into the
/// builds, and neither may the test crate's `CARGO_MANIFEST_DIR`: ring's build script
/// reruns when that changes, and ring, rustls and the deployer were rebuilt whenever a
/// test binary of another package asked for the same build.
pub fn without_cargo_env(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if (name_text.starts_with("CARGO_") && name_text != "CARGO_HOME")
            || ["CARGO", "MAKEFLAGS", "MFLAGS"].contains(&name_text.as_ref())
        {
            command.env_remove(&name);
        }
    }
    command
}

/// Runs `work` (named `what`, which writes into `dir`) once per cargo-nextest run, however
/// many test processes ask: under a lock in `dir`, and only when `dir` has no stamp naming
/// this run (`NEXTEST_RUN_ID`) and `what`; the stamp is written when `work` returns, so a
/// process that waited for the lock finds the work done. Outside nextest (`cargo test`,
/// one process per test binary) `work` runs every time it is asked for.
pub fn once_per_run(dir: &Path, what: &str, work: impl FnOnce()) {
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let _lock = lock(&dir.join(".e2e-once.lock"));
    let run = std::env::var("NEXTEST_RUN_ID").ok();
    let stamp = dir.join(format!(".e2e-done-{:016x}", fnv1a(what.as_bytes())));
    let expected = run.as_ref().map(|run| format!("{run}\n{what}\n"));
    if expected.is_some() && fs::read_to_string(&stamp).ok() == expected {
        return;
    }
    let _ = fs::remove_file(&stamp);
    work();
    if let Some(text) = expected {
        fs::write(&stamp, text).unwrap_or_else(|e| panic!("writing {}: {e}", stamp.display()));
    }
}

/// An exclusive flock on `path` (created if missing), held until dropped.
fn lock(path: &Path) -> Flock<File> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    Flock::lock(file, FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("locking {}: {e}", path.display()))
}

/// The 64-bit FNV-1a hash of `bytes`: a stable name for a stamp.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The binary of `package` (`deployer` or `bootctl`) built with its `fault-injection`
/// feature, in `<workspace>/target/fault`. Both programs come from one debug build, so
/// that the dependencies are compiled once for the two (the fault points stop or kill the
/// program at named steps, whatever the optimisation).
pub fn with_fault_injection(package: &str) -> PathBuf {
    cargo_build(
        "fault",
        &[
            "-p",
            "deployer",
            "-p",
            "bootctl",
            "--features",
            "deployer/fault-injection,bootctl/fault-injection",
        ],
        &[],
        &format!("debug/{package}"),
    )
}
