//! Fixture OS images: a tiny busybox Linux that reports which image booted.
//!
//! The tree boots with the host's Debian kernel and the test kit's small initramfs
//! ([`crate::initramfs`]): it mounts the root named by `root=UUID=` and executes
//! `/sbin/init`, a busybox shell script that prints
//! `MULTIBOOT-FIXTURE booted=<name>` on the console, mounts the filesystems of its
//! `/etc/fstab` (as a real init does), runs `/etc/fixture/run` if the test provided one,
//! and powers the machine off. An image made [`FixtureImage::with_storage`] carries the
//! storage initramfs ([`crate::initramfs::storage`]) instead, for a root or mounts on LVM or
//! md RAID1.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::{cmd, tools};

/// Console marker printed by the fixture's init; see [`crate::qemu::BootOutcome`].
pub const MARKER: &str = "MULTIBOOT-FIXTURE";

/// Where the fixture's init looks for the test's script.
pub const RUN_SCRIPT: &str = "etc/fixture/run";

/// Where a fixture image carries the static bootctl when asked to.
pub const BOOTCTL_PATH: &str = "usr/sbin/bootctl";

/// The host kernel that fixture images boot.
#[derive(Debug)]
pub struct HostKernel {
    /// The release, as in `/boot/vmlinuz-<version>`.
    pub version: String,
    pub vmlinuz: PathBuf,
}

impl HostKernel {
    /// `/boot/vmlinuz-<version>` as seen from inside an image.
    pub fn image_vmlinuz(&self) -> String {
        format!("/boot/vmlinuz-{}", self.version)
    }

    /// `/boot/initrd.img-<version>` as seen from inside an image.
    pub fn image_initrd(&self) -> String {
        format!("/boot/initrd.img-{}", self.version)
    }
}

/// The newest kernel in the host's /boot whose modules are installed
/// (`/lib/modules/<version>/modules.dep`).
pub fn host_kernel() -> &'static HostKernel {
    static KERNEL: OnceLock<HostKernel> = OnceLock::new();
    KERNEL.get_or_init(|| {
        let boot = Path::new("/boot");
        let entries = fs::read_dir(boot).unwrap_or_else(|e| panic!("reading /boot: {e}"));
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let version = name.strip_prefix("vmlinuz-")?.to_owned();
                let modules = Path::new("/lib/modules").join(&version).join("modules.dep");
                modules.is_file().then(|| HostKernel {
                    vmlinuz: e.path(),
                    version,
                })
            })
            .max_by(|a, b| version_key(&a.version).cmp(&version_key(&b.version)))
            .unwrap_or_else(|| {
                panic!(
                    "/boot/vmlinuz-* with its /lib/modules not found: run scripts/setup (see README)"
                )
            })
    })
}

/// The fixture images' initramfs for [`host_kernel`] ([`crate::initramfs`]), written once
/// per test process.
pub fn initramfs() -> &'static Path {
    static INITRAMFS: OnceLock<PathBuf> = OnceLock::new();
    INITRAMFS.get_or_init(|| {
        let kernel = host_kernel();
        let path = crate::tmp::process_dir().join(format!("initrd.img-{}", kernel.version));
        crate::initramfs::write(&kernel.version, &busybox_path(), &path);
        path
    })
}

/// The storage initramfs for [`host_kernel`] ([`crate::initramfs::storage`]), written once
/// per test process, by the first test that asks.
pub fn storage_initramfs() -> &'static Path {
    static INITRAMFS: OnceLock<PathBuf> = OnceLock::new();
    INITRAMFS.get_or_init(|| {
        let kernel = host_kernel();
        let path = crate::tmp::process_dir().join(format!("initrd.img-storage-{}", kernel.version));
        crate::initramfs::storage::write(&kernel.version, &busybox_path(), &path);
        path
    })
}

/// Writes the storage initramfs with the setup `script` to `path`
/// ([`crate::initramfs::storage::write_setup`]).
pub fn write_setup_initramfs(script: &str, path: &Path) {
    crate::initramfs::storage::write_setup(&host_kernel().version, &busybox_path(), script, path);
}

/// Splits a version into numeric and textual runs so that "6.10" sorts after "6.9".
fn version_key(version: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut rest = version;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (number, tail) = rest.split_at(digits);
        let text_len = tail.len() - tail.trim_start_matches(|c: char| !c.is_ascii_digit()).len();
        let (text, tail) = tail.split_at(text_len);
        key.push((number.parse().unwrap_or(0), text.to_owned()));
        rest = tail;
    }
    key
}

/// A file added to a fixture tree.
#[derive(Clone, Debug)]
pub struct FixtureFile {
    /// Path relative to the image's root.
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub mode: u32,
}

/// One fixture OS image: what its tree holds and how it presents itself.
#[derive(Clone, Debug)]
pub struct FixtureImage {
    /// Short name, `[a-z0-9-]+`: printed by init on boot, and the menu id is
    /// `fixture-<name>`.
    pub name: String,
    /// os-release `PRETTY_NAME`, also the grub menu title.
    pub title: String,
    /// os-release `ID`.
    pub os_id: String,
    /// os-release `NAME`.
    pub os_name: String,
    /// os-release `VERSION_ID`.
    pub version_id: String,
    /// boot-info.json `image_name`.
    pub image_name: String,
    /// boot-info.json `image_uuid`.
    pub image_uuid: String,
    /// Whether the static bootctl is installed at `/usr/sbin/bootctl`.
    pub bootctl: bool,
    /// Whether `/boot` holds the storage initramfs rather than the plain one.
    pub storage: bool,
    pub files: Vec<FixtureFile>,
    /// Empty directories added to the tree, relative to its root.
    pub dirs: Vec<PathBuf>,
}

impl FixtureImage {
    /// An image named `name`, titled `Fixture <NAME>`, image name `image-<name>-1.0`.
    pub fn new(name: &str) -> Self {
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "fixture image names are [a-z0-9-]+, got {name:?}"
        );
        FixtureImage {
            name: name.to_owned(),
            title: format!("Fixture {}", name.to_uppercase()),
            os_id: "fixture".to_owned(),
            os_name: "Fixture Linux".to_owned(),
            version_id: "1.0".to_owned(),
            image_name: format!("image-{name}-1.0"),
            image_uuid: uuid::Uuid::new_v4().to_string(),
            bootctl: false,
            storage: false,
            files: Vec::new(),
            dirs: Vec::new(),
        }
    }

    /// Replaces the title (os-release `PRETTY_NAME` and menu title).
    pub fn title(mut self, title: &str) -> Self {
        self.title = title.to_owned();
        self
    }

    /// Installs the static bootctl at `/usr/sbin/bootctl`.
    pub fn with_bootctl(mut self) -> Self {
        self.bootctl = true;
        self
    }

    /// Puts the storage initramfs ([`crate::initramfs::storage`]) at
    /// `/boot/initrd.img-<version>`: the image's root or the filesystems of its fstab may
    /// be on LVM logical volumes or md RAID1 arrays. It is more than twice the plain one's
    /// size, so only the images that need it get it.
    pub fn with_storage(mut self) -> Self {
        self.storage = true;
        self
    }

    /// The initramfs at the image's `/boot/initrd.img-<version>`.
    pub fn initramfs(&self) -> &'static Path {
        if self.storage {
            storage_initramfs()
        } else {
            initramfs()
        }
    }

    /// Adds a file at `path` (relative to the image root).
    pub fn file(mut self, path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        self.files.push(FixtureFile {
            path: PathBuf::from(path.trim_start_matches('/')),
            contents: contents.into(),
            mode,
        });
        self
    }

    /// Adds an empty directory at `path` (relative to the image root).
    pub fn dir(mut self, path: &str) -> Self {
        self.dirs.push(PathBuf::from(path.trim_start_matches('/')));
        self
    }

    /// Sets the script init runs after the boot marker (`/etc/fixture/run`, a busybox
    /// `sh` script; its output goes to the console).
    pub fn run_script(self, script: &str) -> Self {
        self.file(RUN_SCRIPT, format!("#!/bin/sh\n{script}"), 0o755)
    }

    /// The grub menu entry id of this image: `fixture-<name>`.
    pub fn menu_id(&self) -> String {
        format!("fixture-{}", self.name)
    }

    /// Bytes the tree takes before filesystem overhead (for sizing its partition).
    pub fn payload_bytes(&self) -> u64 {
        let kernel = host_kernel();
        let mut paths = vec![
            kernel.vmlinuz.clone(),
            self.initramfs().to_owned(),
            busybox_path(),
        ];
        if self.bootctl {
            paths.push(crate::bootctl::static_bootctl().to_owned());
        }
        let files: u64 = self.files.iter().map(|f| f.contents.len() as u64).sum();
        paths
            .iter()
            .map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum::<u64>()
            + files
    }

    fn os_release(&self) -> String {
        format!(
            "NAME=\"{}\"\nID={}\nVERSION_ID=\"{}\"\nPRETTY_NAME=\"{}\"\n",
            self.os_name, self.os_id, self.version_id, self.title
        )
    }

    fn init_script(&self) -> String {
        format!(
            r#"#!/bin/sh
# Fixture init: report which image booted, run the test's script, power off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mounted() {{ grep -q " $1 " /proc/mounts 2>/dev/null; }}
mounted /proc || mount -t proc proc /proc
mounted /sys || mount -t sysfs sysfs /sys
mounted /dev || mount -t devtmpfs devtmpfs /dev
mounted /run || mount -t tmpfs -o mode=0755 tmpfs /run
mounted /tmp || mount -t tmpfs tmpfs /tmp
mount -o remount,rw /
# As a real init does: mount what the image's fstab lists (busybox finds UUID= itself).
if [ -f /etc/fstab ]; then mount -a; fi
echo "{MARKER} booted={name}"
if [ -x /{RUN_SCRIPT} ]; then
    echo "{MARKER} run-begin"
    /{RUN_SCRIPT} </dev/null 2>&1
    rc=$?
    echo "{MARKER} run-end rc=$rc"
fi
sync
poweroff -f
"#,
            name = self.name
        )
    }
}

/// The host's busybox-static binary (a dynamically linked busybox cannot run in a
/// fixture, which has no C library).
fn busybox_path() -> PathBuf {
    let path = tools::find_tool("busybox")
        .unwrap_or_else(|| panic!("busybox not found: run scripts/setup (see README)"));
    let head = fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    // A dynamic executable names its loader in .interp, near the start of the file.
    let head = &head[..head.len().min(4096)];
    if head.windows(8).any(|w| w == b"ld-linux") {
        panic!(
            "{} is dynamically linked: busybox-static not installed, run scripts/setup (see README)",
            path.display()
        );
    }
    path
}

/// Writes the tree of each image into a new directory `dir/NAME`, as image sources.
pub fn write_image_trees(dir: &Path, images: &[&FixtureImage]) {
    for image in images {
        let root = dir.join(&image.name);
        std::fs::create_dir(&root).unwrap_or_else(|e| panic!("creating {}: {e}", root.display()));
        populate_image(&root, image);
    }
}

/// Writes the bootable tree of `image` into `root` (an empty, mounted filesystem).
pub fn populate_image(root: &Path, image: &FixtureImage) {
    tools::require_tools(&["busybox"]);
    let kernel = host_kernel();
    for dir in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc/fixture",
        "boot",
        "lib64",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "mnt",
        "root",
        "var",
    ] {
        create_dir(&root.join(dir));
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))
        .unwrap_or_else(|e| panic!("chmod {}/tmp: {e}", root.display()));

    let busybox = busybox_path();
    copy(&busybox, &root.join("bin/busybox"), 0o755);
    let applets = cmd::run(Command::new(&busybox).arg("--list"));
    for applet in applets.lines().map(str::trim) {
        if applet.is_empty() || applet == "busybox" {
            continue;
        }
        let link = root.join("bin").join(applet);
        symlink("busybox", &link).unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
    }
    write(
        &root.join("sbin/init"),
        image.init_script().as_bytes(),
        0o755,
    );
    write(
        &root.join("etc/os-release"),
        image.os_release().as_bytes(),
        0o644,
    );
    write(
        &root.join("etc/hostname"),
        format!("fixture-{}\n", image.name).as_bytes(),
        0o644,
    );

    copy(
        &kernel.vmlinuz,
        &root.join(format!("boot/vmlinuz-{}", kernel.version)),
        0o644,
    );
    copy(
        image.initramfs(),
        &root.join(format!("boot/initrd.img-{}", kernel.version)),
        0o644,
    );
    // os-prober ignores a Linux tree without a dynamic loader.
    copy(
        Path::new("/lib64/ld-linux-x86-64.so.2"),
        &root.join("lib64/ld-linux-x86-64.so.2"),
        0o755,
    );
    if image.bootctl {
        copy(
            crate::bootctl::static_bootctl(),
            &root.join(BOOTCTL_PATH),
            0o755,
        );
    }
    for dir in &image.dirs {
        create_dir(&root.join(dir));
    }
    for file in &image.files {
        let path = root.join(&file.path);
        if let Some(parent) = path.parent() {
            create_dir(parent);
        }
        write(&path, &file.contents, file.mode);
    }
}

fn create_dir(path: &Path) {
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
}

/// Copies `from` (following symlinks) to `to` with `mode`.
fn copy(from: &Path, to: &Path, mode: u32) {
    fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
    fs::set_permissions(to, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", to.display()));
}

/// Writes `contents` to `path` with `mode`.
pub fn write(path: &Path, contents: &[u8], mode: u32) {
    fs::write(path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::version_key;

    #[test]
    fn kernel_versions_sort_numerically() {
        let mut versions = [
            "6.10.0-1-amd64",
            "6.1.0-56-amd64",
            "6.9.2-amd64",
            "6.1.0-9-amd64",
        ];
        versions.sort_by_key(|v| version_key(v));
        assert_eq!(
            versions,
            [
                "6.1.0-9-amd64",
                "6.1.0-56-amd64",
                "6.9.2-amd64",
                "6.10.0-1-amd64"
            ]
        );
    }
}
