//! A real Debian 12 for the slow, opt-in tests: a tree debootstrapped once from the Debian
//! archive this machine's apt uses, copies of it with more packages installed by apt in a
//! chroot, all cached under [`CACHE`], and the systemd unit that makes a copy a fixture
//! image: its boot prints the markers [`crate::qemu`] reads, runs `/etc/fixture/run` and
//! powers off.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cmd;
use crate::fixture::{write, MARKER};
use crate::tools::require_tools;

pub const CACHE: &str = "/var/tmp/multiboot-real";
pub const MIRROR: &str = "http://deb.debian.org/debian";
/// A real Debian boots in one to three minutes under TCG; a kernel install, with its
/// initramfs, adds about ten.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(1800);
pub const KERNEL_PARAMS: &str = "console=ttyS0 panic=10";

/// The debootstrapped Debian 12 tree (systemd, the stock kernel, initramfs-tools), made
/// once.
pub fn debian_tree() -> PathBuf {
    let tree = Path::new(CACHE).join("debian12");
    if !tree.join("etc/os-release").is_file() {
        require_tools(&["debootstrap"]);
        std::fs::create_dir_all(CACHE).expect("creating the cache");
        cmd::run(Command::new("debootstrap").args([
            "--variant=minbase",
            "--include=systemd-sysv,linux-image-amd64,initramfs-tools,udev,kmod,e2fsprogs",
            "bookworm",
            &tree.display().to_string(),
            MIRROR,
        ]));
    }
    tree
}

/// The Debian 12 tree with more packages, cached as `CACHE/name`: `build` gets a copy
/// ready for apt (see [`apt_root`]) with its package lists fetched. The copy is made as
/// `name.partial` and renamed once whole, so a build cut short is made again.
pub fn derived_tree(name: &str, build: impl FnOnce(&Path)) -> PathBuf {
    let tree = Path::new(CACHE).join(name);
    if tree.join("etc/os-release").is_file() {
        return tree;
    }
    let base = debian_tree();
    let partial = Path::new(CACHE).join(format!("{name}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .unwrap_or_else(|e| panic!("removing {}: {e}", partial.display()));
    }
    apt_root(&base, &partial);
    in_chroot(&partial, &["apt-get", "update", "-q"]);
    build(&partial);
    // The package lists and downloaded packages are apt's scratch, not the image's.
    for dir in ["var/lib/apt/lists", "var/cache/apt/archives"] {
        let _ = std::fs::remove_dir_all(partial.join(dir));
        std::fs::create_dir_all(partial.join(dir).join("partial")).expect("apt's directories");
    }
    std::fs::rename(&partial, &tree)
        .unwrap_or_else(|e| panic!("renaming {} to {}: {e}", partial.display(), tree.display()));
    tree
}

/// Copies `tree` to `root` for apt in a chroot: the host's resolv.conf, no cached packages.
pub fn apt_root(tree: &Path, root: &Path) {
    cmd::run(Command::new("cp").arg("-a").arg(tree).arg(root));
    std::fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf")).expect("resolv.conf");
    let archives = root.join("var/cache/apt/archives");
    let _ = std::fs::remove_dir_all(&archives);
    std::fs::create_dir_all(archives.join("partial")).expect("apt's archives");
}

/// `apt-get install` of `packages` (without recommends) in the chroot `root`.
pub fn apt_install(root: &Path, packages: &[&str]) {
    let mut args = vec![
        "env",
        "DEBIAN_FRONTEND=noninteractive",
        "apt-get",
        "install",
        "-q",
        "-y",
        "--no-install-recommends",
    ];
    args.extend(packages);
    in_chroot(root, &args);
}

/// Runs `args` chrooted into `root`, with /proc, /sys and /dev mounted there in a mount
/// namespace of its own, so they go with it even when the command fails (dracut and some
/// package scripts need them). Returns its standard output.
pub fn in_chroot(root: &Path, args: &[&str]) -> String {
    require_tools(&["unshare", "chroot"]);
    let script = "mount -t proc proc \"$1/proc\" && mount -t sysfs sysfs \"$1/sys\" && \
                  mount --bind /dev \"$1/dev\" && exec chroot \"$@\"";
    cmd::run(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--fork", "sh", "-c"])
            .arg(script)
            .arg("sh")
            .arg(root)
            .args(args),
    )
}

/// The version of the kernel in a Debian tree's /boot (`vmlinuz-VERSION`).
pub fn tree_kernel(tree: &Path) -> String {
    std::fs::read_dir(tree.join("boot"))
        .expect("the tree's /boot")
        .flatten()
        .find_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_prefix("vmlinuz-")
                .map(str::to_owned)
        })
        .expect("a kernel in the tree")
}

/// A systemd service that does what the fixture init does: say which image came up, run
/// `/etc/fixture/run` once the system is up (after the health unit), power off.
const RUN_UNIT: &str = "[Unit]
Description=multiboot test run
After=multi-user.target multiboot-health.service

[Service]
Type=oneshot
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
ExecStart=/etc/fixture/boot

[Install]
WantedBy=multi-user.target
";

fn boot_script(image: &str) -> String {
    format!(
        "#!/bin/sh\necho \"{MARKER} booted={image}\"\necho \"{MARKER} run-begin\"\n\
         /etc/fixture/run 2>&1\necho \"{MARKER} run-end rc=$?\"\nsystemctl poweroff --no-block\n"
    )
}

/// Copies the Debian `tree` to `root` (without apt's cached packages) and makes it the
/// fixture image `image`, whose boot runs the shell script `run`.
pub fn fixture_copy(tree: &Path, root: &Path, image: &str, run: &str) {
    cmd::run(Command::new("cp").arg("-a").arg(tree).arg(root));
    let _ = std::fs::remove_dir_all(root.join("var/cache/apt/archives"));
    let put = |path: &str, text: &str, mode: u32| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("a directory")).expect("creating it");
        write(&path, text.as_bytes(), mode);
    };
    put("etc/systemd/system/fixture-run.service", RUN_UNIT, 0o644);
    let wants = root.join("etc/systemd/system/multi-user.target.wants");
    std::fs::create_dir_all(&wants).expect("creating multi-user.target.wants");
    std::os::unix::fs::symlink(
        "/etc/systemd/system/fixture-run.service",
        wants.join("fixture-run.service"),
    )
    .expect("enabling fixture-run.service");
    put("etc/fixture/boot", &boot_script(image), 0o755);
    // A getty on the serial console hangs up the terminal the run writes to (vhangup), and
    // the rest of its output would be lost.
    std::os::unix::fs::symlink(
        "/dev/null",
        root.join("etc/systemd/system/serial-getty@ttyS0.service"),
    )
    .expect("masking the serial getty");
    put("etc/fixture/run", run, 0o755);
}
