//! The deploy ramdisk (`packaging/ramdisk`) as the tests boot it: built once per test,
//! booted by QEMU with its kernel command line, reaching this machine's loopback.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::build::without_cargo_env;
use crate::cmd;

/// One boot of the ramdisk: it unpacks about 90 MB and runs every step of the deploy
/// under TCG (15 s on an idle machine).
pub const DEPLOY_TIMEOUT: Duration = Duration::from_secs(900);

/// How the guest reaches this machine's 127.0.0.1 on QEMU's user-mode network.
pub const HOST_FROM_GUEST: &str = "10.0.2.2";

/// `url` (a server's `http://127.0.0.1:PORT/NAME`) as the guest reaches it.
pub fn guest_url(url: &str) -> String {
    url.replacen("127.0.0.1", HOST_FROM_GUEST, 1)
}

/// Runs `packaging/ramdisk DIR` and returns DIR/vmlinuz and DIR/initrd.img.
pub fn build_ramdisk(dir: &Path) -> (PathBuf, PathBuf) {
    let started = Instant::now();
    let mut build = Command::new(crate::workspace_root().join("packaging/ramdisk"));
    without_cargo_env(&mut build);
    cmd::run(build.arg(dir));
    let initrd = dir.join("initrd.img");
    let size = std::fs::metadata(&initrd)
        .unwrap_or_else(|e| panic!("{}: {e}", initrd.display()))
        .len();
    eprintln!(
        "ramdisk: packaging/ramdisk took {:.1?}, initrd.img {} MiB",
        started.elapsed(),
        size >> 20
    );
    (dir.join("vmlinuz"), initrd)
}

/// The last 40 lines of a console log.
pub fn last_lines(serial: &str) -> String {
    let lines: Vec<&str> = serial.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
