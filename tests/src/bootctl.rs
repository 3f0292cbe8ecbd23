//! The shipped bootctl: built statically once per test run, run as a real program.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::cmd;

/// The Rust target of the static build.
pub const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";

/// How long one bootctl run may take before the test fails.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Builds `bootctl` statically (`+crt-static`, release) once per test run
/// ([`crate::build`]), in its own target directory `<workspace>/target/static` so that it
/// does not wait for the build lock of the `cargo test` that runs us, and returns the
/// binary's path.
pub fn static_bootctl() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        crate::build::cargo_build(
            "static",
            &["--release", "-p", "bootctl", "--target", STATIC_TARGET],
            &[("RUSTFLAGS", "-C target-feature=+crt-static")],
            &format!("{STATIC_TARGET}/release/bootctl"),
        )
    })
}

/// One finished bootctl run.
#[derive(Debug)]
pub struct BootctlRun {
    /// The command line, for messages.
    pub command: String,
    pub stdout: String,
    pub stderr: String,
    /// The exit code.
    pub code: i32,
}

impl BootctlRun {
    /// Panics unless bootctl exited with `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "`{}` exited {} (expected {code})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.code, self.stdout, self.stderr
        );
        self
    }

    /// Panics unless bootctl succeeded; returns stdout parsed as JSON.
    pub fn json(&self) -> Value {
        self.expect_code(0);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}` printed invalid JSON ({e}):\n{}",
                self.command, self.stdout
            )
        })
    }
}

/// Runs the static bootctl with `args`, with a time limit; a killed run panics.
pub fn bootctl(args: &[&str]) -> BootctlRun {
    let binary = static_bootctl();
    let mut command = Command::new(binary);
    command.args(args);
    let description = cmd::describe(&command);
    let out = cmd::output_with_timeout(&mut command, RUN_TIMEOUT);
    let status = out.status.unwrap_or_else(|| {
        panic!(
            "`{description}` still ran after {RUN_TIMEOUT:?} and was killed\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.stdout, out.stderr
        )
    });
    let code = status.code().unwrap_or_else(|| {
        panic!(
            "`{description}` died from {status}\n--- stderr ---\n{}",
            out.stderr
        )
    });
    BootctlRun {
        command: description,
        stdout: out.stdout,
        stderr: out.stderr,
        code,
    }
}

/// The `key` ("id", "index", ...) of every entry marked `mark` ("default", "next",
/// "running") in `bootctl list --json` output; "(none)" for an entry without that key.
pub fn marked(list: &Value, mark: &str, key: &str) -> Vec<String> {
    list["entries"]
        .as_array()
        .expect("list --json has entries")
        .iter()
        .filter(|entry| entry[mark] == true)
        .map(|entry| entry[key].as_str().unwrap_or("(none)").to_owned())
        .collect()
}
