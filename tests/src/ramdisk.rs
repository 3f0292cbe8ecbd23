//! The deploy ramdisk (`packaging/ramdisk`) as the tests boot it: built once per test,
//! booted by QEMU with its kernel command line, reaching this machine's loopback.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::build::without_cargo_env;
use crate::cmd;
use crate::qemu::BootOutcome;

/// One boot of the ramdisk: it unpacks about 90 MB and runs every step of the deploy
/// under TCG (15 s on an idle machine).
pub const DEPLOY_TIMEOUT: Duration = Duration::from_secs(900);

/// How the guest reaches this machine's 127.0.0.1 on QEMU's user-mode network.
pub const HOST_FROM_GUEST: &str = "10.0.2.2";

/// `url` (a server's `http://127.0.0.1:PORT/NAME`) as the guest reaches it.
pub fn guest_url(url: &str) -> String {
    url.replacen("127.0.0.1", HOST_FROM_GUEST, 1)
}

/// Runs `packaging/ramdisk DIR` (failing first on a missing tool it needs) and returns
/// DIR/vmlinuz and DIR/initrd.img.
pub fn build_ramdisk(dir: &Path) -> (PathBuf, PathBuf) {
    build(&[], dir)
}

/// Runs `packaging/ramdisk --ipa DIR`, the ironic-python-agent flavour, and returns
/// DIR/vmlinuz and DIR/initrd.img.
pub fn build_ipa_ramdisk(dir: &Path) -> (PathBuf, PathBuf) {
    crate::tools::require_file(Path::new("/usr/bin/python3.11"));
    build(&["--ipa"], dir)
}

fn build(flags: &[&str], dir: &Path) -> (PathBuf, PathBuf) {
    crate::tools::require_tools(&["busybox", "cpio", "zstd"]);
    let started = Instant::now();
    let mut build = Command::new(crate::workspace_root().join("packaging/ramdisk"));
    without_cargo_env(&mut build);
    cmd::run(build.args(flags).arg(dir));
    let initrd = dir.join("initrd.img");
    let size = std::fs::metadata(&initrd)
        .unwrap_or_else(|e| panic!("{}: {e}", initrd.display()))
        .len();
    eprintln!(
        "ramdisk: packaging/ramdisk{} took {:.1?}, initrd.img {} MiB",
        flags
            .iter()
            .map(|flag| format!(" {flag}"))
            .collect::<String>(),
        started.elapsed(),
        size >> 20
    );
    (dir.join("vmlinuz"), initrd)
}

/// Blank (sparse) disk files of `bytes` each, `DIR/vda.img`, `DIR/vdb.img`, ..., one per
/// name of `names` ("vda", "vdb"), which the ramdisk's command line maps to `/dev/NAME`.
pub fn blank_disks(dir: &Path, names: &[&str], bytes: u64) -> Vec<PathBuf> {
    names
        .iter()
        .map(|name| {
            let disk = dir.join(format!("{name}.img"));
            std::fs::File::create(&disk)
                .and_then(|file| file.set_len(bytes))
                .unwrap_or_else(|e| panic!("creating {}: {e}", disk.display()));
            disk
        })
        .collect()
}

/// The ramdisk's kernel command line for a deploy of the config at `config_url` (a
/// server's URL on this machine) onto the virtio disks `names` ("vda", ...), powering
/// off when done.
pub fn deploy_append(config_url: &str, names: &[&str]) -> String {
    let disks: Vec<String> = names
        .iter()
        .map(|name| format!("deployer.disk={name}=/dev/{name}"))
        .collect();
    format!(
        "console=ttyS0 panic=-1 deployer.config={} {} deployer.done=poweroff",
        guest_url(config_url),
        disks.join(" ")
    )
}

/// Panics, quoting the console's last lines, unless the ramdisk deployed `images`
/// images and said so.
#[track_caller]
pub fn assert_deployed(outcome: &BootOutcome, images: usize) {
    let serial = &outcome.serial;
    assert!(
        !outcome.timed_out
            && serial.contains(&format!("deployer: deployed {images} image(s)"))
            && serial.contains("ramdisk: deploy done"),
        "the deploy: console {}\n--- last lines ---\n{}",
        outcome.log.display(),
        last_lines(serial)
    );
}

/// Packs the tree `dir` as the tar.zst `tarball` (numeric owners), as an image the
/// ramdisk downloads.
pub fn pack_tar_zst(dir: &Path, tarball: &Path) {
    cmd::run(
        Command::new("tar")
            .args(["--zstd", "--numeric-owner", "-C"])
            .arg(dir)
            .arg("-cf")
            .arg(tarball)
            .arg("."),
    );
}

/// The last 40 lines of a console log.
pub fn last_lines(serial: &str) -> String {
    let lines: Vec<&str> = serial.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
