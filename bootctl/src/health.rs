//! Running the health checks of `bootctl health`: the executables of a directory, in the
//! order of their names, each with a time limit.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;

/// How often a running check is looked at.
const POLL: Duration = Duration::from_millis(50);

/// What the checks showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checks {
    /// How many passed.
    pub passed: usize,
    /// The first that failed, as one line; the checks after it are not run.
    pub failed: Option<String>,
}

/// The checks `dir` holds: its executable regular files (symlinks followed), in byte order
/// of their names, skipping what run-parts skips (hidden names, editor backups, package
/// manager leftovers). A missing directory holds none.
pub fn list(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("listing {}", dir.display())),
    };
    let mut checks = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !runnable_name(&name) {
            continue;
        }
        let executable = fs::metadata(&path)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0);
        if executable {
            checks.push(path);
        }
    }
    checks.sort();
    Ok(checks)
}

/// Names run-parts would not run: hidden files, `name~` backups, dpkg's and rpm's leftovers.
fn runnable_name(name: &str) -> bool {
    !name.starts_with('.')
        && !name.ends_with('~')
        && ![
            ".dpkg-old",
            ".dpkg-new",
            ".dpkg-dist",
            ".dpkg-tmp",
            ".rpmsave",
            ".rpmnew",
        ]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

/// Runs the checks of `dir` one after the other (their output goes where bootctl's goes),
/// stopping at the first that exits non-zero, is killed, or runs longer than `timeout`.
pub fn run_checks(dir: &Path, timeout: Duration) -> anyhow::Result<Checks> {
    let mut passed = 0;
    for check in list(dir)? {
        if let Some(failure) = run_one(&check, timeout)? {
            return Ok(Checks {
                passed,
                failed: Some(format!("health check {}: {failure}", check.display())),
            });
        }
        passed += 1;
    }
    Ok(Checks {
        passed,
        failed: None,
    })
}

/// None when `check` exits 0 in time; else why it failed.
fn run_one(check: &Path, timeout: Duration) -> anyhow::Result<Option<String>> {
    let mut child = match Command::new(check).spawn() {
        Ok(child) => child,
        Err(err) => return Ok(Some(format!("cannot run it: {err}"))),
    };
    let started = Instant::now();
    loop {
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("waiting for {}", check.display()))?
        {
            return Ok(match (status.code(), status.signal()) {
                (Some(0), _) => None,
                (Some(code), _) => Some(format!("exit {code}")),
                (None, signal) => Some(format!("killed by signal {}", signal.unwrap_or(0))),
            });
        }
        if started.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Some(format!(
                "still running after {} s: killed",
                timeout.as_secs()
            )));
        }
        crate::signals::check()?;
        std::thread::sleep(POLL);
    }
}
