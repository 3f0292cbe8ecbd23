//! Builds of the workspace's binaries that the tests need besides the ones `cargo test`
//! makes: each in a target directory of its own under `<workspace>/target`, so that it
//! does not wait for the build lock of the `cargo test` that runs us, and without that
//! cargo's settings.

use std::path::PathBuf;
use std::process::Command;

use crate::cmd;

/// Runs `cargo build ARGS` in the workspace with `CARGO_TARGET_DIR` set to
/// `<workspace>/target/<target_dir>` and the variables `envs`, and returns
/// `<that directory>/<binary>`, panicking unless the build made it.
pub fn cargo_build(
    target_dir: &str,
    args: &[&str],
    envs: &[(&str, &str)],
    binary: &str,
) -> PathBuf {
    let workspace = crate::workspace_root();
    let target_dir = workspace.join("target").join(target_dir);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    cmd::run(
        Command::new(cargo)
            .current_dir(workspace)
            .arg("build")
            .args(args)
            .env("CARGO_TARGET_DIR", &target_dir)
            .envs(envs.iter().copied())
            // The outer cargo's settings must not leak into this build.
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("CARGO_MAKEFLAGS")
            .env_remove("MAKEFLAGS")
            .env_remove("MFLAGS"),
    );
    let binary = target_dir.join(binary);
    assert!(
        binary.is_file(),
        "cargo build did not produce {}",
        binary.display()
    );
    binary
}

/// The binary of `package` built with its `fault-injection` feature, in
/// `<workspace>/target/fault`: a debug build, or a release build (like the shipped one)
/// when `release` is set.
pub fn with_fault_injection(package: &str, release: bool) -> PathBuf {
    let mut args = vec!["-p", package, "--features", "fault-injection"];
    if release {
        args.push("--release");
    }
    let profile = if release { "release" } else { "debug" };
    cargo_build("fault", &args, &[], &format!("{profile}/{package}"))
}
