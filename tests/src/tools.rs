//! Preconditions: a missing tool fails the test loudly, it never passes silently.

use std::env;
use std::path::{Path, PathBuf};

/// Directories searched besides `$PATH` (root's tools live in sbin).
const EXTRA_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/sbin",
    "/sbin",
    "/usr/lib/grub/i386-pc",
];

/// Finds `tool` on `$PATH`, in the sbin directories or, as Debian keeps grub-bios-setup,
/// beside GRUB's BIOS platform files.
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Panics with "`<tool>` not found: run scripts/setup (see README)" for the first
/// missing tool, and if the tests do not run as root.
pub fn require_tools(tools: &[&str]) {
    require_root();
    if let Some(missing) = tools.iter().find(|tool| find_tool(tool).is_none()) {
        panic!("{missing} not found: run scripts/setup (see README)");
    }
}

/// The programs every `deployer deploy` of a directory image runs, and `busybox` for the
/// fixture images.
pub const DEPLOY_TOOLS: &[&str] = &[
    "wipefs",
    "sfdisk",
    "partx",
    "blkid",
    "mkfs.ext4",
    "mkfs.vfat",
    "mmd",
    "mcopy",
    "grub-mkimage",
    "grub-install",
    "busybox",
    "mount",
    "umount",
];

/// [`require_tools`] for a test that deploys: [`DEPLOY_TOOLS`] and `extra`.
pub fn require_deploy_tools(extra: &[&str]) {
    require_tools(DEPLOY_TOOLS);
    require_tools(extra);
}

/// Panics the same way when a file that a package provides is missing.
pub fn require_file(path: &Path) {
    if !path.exists() {
        panic!(
            "{} not found: run scripts/setup (see README)",
            path.display()
        );
    }
}

/// Panics unless the process runs as root: loop devices, mounts and grub-install need it.
pub fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .expect("Uid line in /proc/self/status");
    if euid != "0" {
        panic!("the end-to-end tests must run as root (euid is {euid})");
    }
}
