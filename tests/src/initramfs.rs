//! The initramfs that fixture images boot with: busybox-static, the host kernel's modules
//! for a virtio disk and the filesystems the tests put roots and mounts on, and an `/init`
//! that finds the root by the UUID in `root=UUID=` on the kernel command line, mounts it
//! and hands over to the image's `/sbin/init` with `switch_root`.
//!
//! It stands in for the host's Debian initrd (34 MB, which GRUB reads and the kernel
//! unpacks on every boot before udev and the scripts run: that took 15 to 20 s of a
//! fixture boot under QEMU's software emulation). The boot still goes GRUB, the kernel,
//! the initramfs, the image's root found by its UUID, the image's init; only the
//! initramfs is ours. Like udev in Debian's, `/init` leaves a `/dev/disk/by-uuid/` link
//! for every ext4 and xfs filesystem it sees, and it moves `/dev`, `/proc` and `/sys`
//! into the new root. Images whose root or mounts are on LVM or md RAID1 boot with the
//! [`storage`] variant instead.
//!
//! When it cannot go on (no filesystem with the root's UUID, a root that does not mount,
//! no init on it) it prints a line starting with [`FAILURE`] and powers the machine off
//! at once, so a broken boot fails the test in seconds, its console log saying why.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd;
use crate::tools;

pub mod storage;

/// The console marker of `/init`'s failure lines.
pub const FAILURE: &str = "MULTIBOOT-INITRAMFS failed:";

/// The kernel modules `/init` can load, in groups, each group with what
/// `modprobe --show-depends` adds (ext4 and xfs need crc32c). `disk` (the virtio disk:
/// PCI transport and block driver) and `ext4` (the roots, and the multiboot partition
/// bootctl mounts) are always loaded; `xfs` when the root is xfs or the image's
/// `/etc/fstab` names it, `vfat` (with the code page and character set it mounts with by
/// default) when the fstab names it.
pub const MODULE_GROUPS: &[(&str, &[&str])] = &[
    ("disk", &["virtio_pci", "virtio_blk"]),
    ("ext4", &["ext4"]),
    ("xfs", &["xfs"]),
    ("vfat", &["vfat", "nls_cp437", "nls_ascii"]),
];

/// How long `/init` waits for the root's filesystem to show up, in tenths of a second.
const ROOT_WAIT_TENTHS: u32 = 100;

/// The module files of `modules` for kernel `version`, dependencies first, each once, as
/// absolute paths, from `modprobe -S VERSION --show-depends` (which also follows the
/// soft dependencies). Modules built into the kernel are left out.
pub fn module_paths(version: &str, modules: &[&str]) -> Vec<PathBuf> {
    tools::require_tools(&["modprobe"]);
    let mut paths: Vec<PathBuf> = Vec::new();
    for module in modules {
        let out = cmd::run(
            Command::new("modprobe")
                .args(["-S", version, "--show-depends"])
                .arg(module),
        );
        for line in out.lines() {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("insmod"), Some(path)) => {
                    let path = PathBuf::from(path);
                    assert!(
                        path.extension().is_some_and(|e| e == "ko"),
                        "{}: a compressed module; the fixture initramfs takes plain .ko files",
                        path.display()
                    );
                    if !paths.contains(&path) {
                        paths.push(path);
                    }
                }
                (Some("builtin"), _) => {}
                _ => panic!("modprobe --show-depends {module}: unexpected line {line:?}"),
            }
        }
    }
    paths
}

/// The `/init` script; `groups` holds each group's name and module files (paths inside
/// the initramfs) in load order. With `storage`, the root is found as
/// [`storage`] describes; otherwise by `root=UUID=` with `findfs`.
fn init_script(groups: &[(&str, Vec<String>)], storage: bool) -> String {
    let arms: String = groups
        .iter()
        .map(|(name, files)| format!("        {name}) set -- {} ;;\n", files.join(" ")))
        .collect();
    let (what, exports, root_arms, find_root) = if storage {
        storage::script_parts()
    } else {
        (
            "load the modules, find the root by UUID",
            "export PATH=/bin\n".to_owned(),
            "",
            find_root_by_uuid(),
        )
    };
    format!(
        r#"#!/bin/sh
# Fixture initramfs: {what}, switch to the image's init.
{exports}fail() {{
    echo "{FAILURE} $*"
    echo "--- /proc/partitions"; cat /proc/partitions
    poweroff -f
}}
# load GROUP: the modules of GROUP not loaded yet. One that the machine has no use for
# fails (crc32c-intel without SSE 4.2); a missing driver shows as the root not found.
loaded=" "
load() {{
    case "$1" in
{arms}        *) fail "no module group $1" ;;
    esac
    for module in "$@"; do
        case "$loaded" in *" $module "*) continue ;; esac
        loaded="$loaded$module "
        insmod "$module" 2>/dev/null || echo "MULTIBOOT-INITRAMFS: insmod $module failed"
    done
}}
# probe DEVICE: fstype (ext4 or xfs) and id (its UUID as blkid prints it), or false.
probe() {{
    head=$(dd if="$1" bs=1144 count=1 2>/dev/null | xxd -p | tr -d '\n')
    if [ "${{head:2160:4}}" = 53ef ]; then
        fstype=ext4 id=${{head:2256:32}}
    elif [ "${{head:0:8}}" = 58465342 ]; then
        fstype=xfs id=${{head:64:32}}
    else
        return 1
    fi
    id=${{id:0:8}}-${{id:8:4}}-${{id:12:4}}-${{id:16:4}}-${{id:20:12}}
}}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The command line is split into words, and nothing in it is expanded.
set -f
uuid=
mode=ro
init=/sbin/init
for word in $(cat /proc/cmdline); do
    case "$word" in
        root=UUID=*) uuid=${{word#root=UUID=}} ;;
{root_arms}        ro) mode=ro ;;
        rw) mode=rw ;;
        init=*) init=${{word#init=}} ;;
    esac
done
set +f
{find_root}type=
if probe "$root"; then
    type="-t $fstype"
    load "$fstype"
fi
mount $type -o "$mode" "$root" /root || fail "mount $type -o $mode $root /root"
[ -x "/root$init" ] || [ -L "/root$init" ] || fail "$init not found on $root"
# What the image's init will mount.
if [ -f /root/etc/fstab ]; then
    while read -r spec file fstype rest; do
        case "$spec $fstype" in
            \#*) ;;
            *" xfs" | *" vfat") load "$fstype" ;;
        esac
    done < /root/etc/fstab
fi
for dir in dev proc sys; do
    if [ -d "/root/$dir" ]; then
        mount --move "/$dir" "/root/$dir"
    else
        umount -l "/$dir"
    fi
done
exec switch_root /root "$init"
"#
    )
}

/// The plain `/init`'s search for the root: the filesystem with the UUID of `root=UUID=`,
/// as `findfs` finds it, and the `/dev/disk/by-uuid/` links.
fn find_root_by_uuid() -> String {
    format!(
        r#"[ -n "$uuid" ] || fail "no root=UUID= on the kernel command line"
load disk
load ext4
tries=0
until root=$(findfs "UUID=$uuid" 2>/dev/null); do
    tries=$((tries + 1))
    [ "$tries" -lt {ROOT_WAIT_TENTHS} ] || fail "no filesystem with UUID $uuid (the root)"
    sleep 0.1
done
# The links udev makes: /dev/disk/by-uuid/UUID for the ext4 and xfs filesystems.
mkdir -p /dev/disk/by-uuid
while read -r major minor blocks name; do
    [ -b "/dev/$name" ] && probe "/dev/$name" && ln -sfn "../../$name" "/dev/disk/by-uuid/$id"
done < /proc/partitions
"#
    )
}

/// Writes the initramfs for kernel `version` to `path`: an uncompressed newc cpio
/// archive (the kernel unpacks it without a decompressor, and the busybox and modules
/// inside it take about 9 MB).
pub fn write(version: &str, busybox: &Path, path: &Path) {
    let (mut archive, groups) = base_archive(version, busybox, MODULE_GROUPS);
    archive.file("init", init_script(&groups, false).as_bytes(), 0o755);
    write_archive(archive, path);
}

/// The archive's directories, devices, busybox and the modules of `module_groups`; with
/// each group's module files inside it, in load order, for [`init_script`].
fn base_archive<'a>(
    version: &str,
    busybox: &Path,
    module_groups: &[(&'a str, &[&str])],
) -> (Cpio, Vec<(&'a str, Vec<String>)>) {
    let mut archive = Cpio::default();
    for dir in ["bin", "dev", "proc", "sys", "root", "lib", "lib/modules"] {
        archive.dir(dir);
    }
    archive.char_device("dev/console", 0o600, 5, 1);
    archive.char_device("dev/null", 0o666, 1, 3);
    archive.file("bin/busybox", &read(busybox), 0o755);
    let applets = cmd::run(Command::new(busybox).arg("--list"));
    for applet in applets.lines().map(str::trim) {
        if !applet.is_empty() && applet != "busybox" {
            archive.symlink(&format!("bin/{applet}"), "busybox");
        }
    }
    let mut added: Vec<(PathBuf, String)> = Vec::new();
    let mut groups = Vec::new();
    for (group, modules) in module_groups {
        let mut files = Vec::new();
        for module in module_paths(version, modules) {
            let inside = match added.iter().find(|(host, _)| *host == module) {
                Some((_, inside)) => inside.clone(),
                None => {
                    let name = module
                        .file_name()
                        .expect("a module path ends in a file name")
                        .to_string_lossy();
                    // Numbered, so that two modules of the same name cannot collide.
                    let inside = format!("/lib/modules/{:02}-{name}", added.len());
                    archive.file(&inside[1..], &read(&module), 0o644);
                    added.push((module, inside.clone()));
                    inside
                }
            };
            files.push(inside);
        }
        groups.push((*group, files));
    }
    (archive, groups)
}

fn write_archive(archive: Cpio, path: &Path) {
    let bytes = archive.finish();
    let mut file =
        fs::File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    file.write_all(&bytes)
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A cpio archive in the "newc" format the kernel unpacks (see the kernel's
/// Documentation/driver-api/early-userspace/buffer-format.rst).
#[derive(Default)]
struct Cpio {
    bytes: Vec<u8>,
    next_inode: u32,
    /// The directories in it, for [`Cpio::parents`].
    dirs: Vec<String>,
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

impl Cpio {
    fn dir(&mut self, name: &str) {
        self.entry(name, S_IFDIR | 0o755, 2, (0, 0), b"");
        self.dirs.push(name.to_owned());
    }

    /// The directories above `name` that are not in the archive yet: the kernel makes no
    /// parent directory when it unpacks a member.
    fn parents(&mut self, name: &str) {
        let mut end = 0;
        while let Some(slash) = name[end..].find('/') {
            end += slash;
            if !self.dirs.iter().any(|d| d == &name[..end]) {
                self.dir(&name[..end]);
            }
            end += 1;
        }
    }

    fn file(&mut self, name: &str, contents: &[u8], mode: u32) {
        self.entry(name, S_IFREG | mode, 1, (0, 0), contents);
    }

    /// `contents` at `path` (an absolute path outside, made relative), with the
    /// directories above it.
    fn file_at(&mut self, path: &Path, contents: &[u8], mode: u32) {
        let name = path.to_string_lossy();
        let name = name.trim_start_matches('/');
        self.parents(name);
        self.file(name, contents, mode);
    }

    fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes());
    }

    fn char_device(&mut self, name: &str, mode: u32, major: u32, minor: u32) {
        self.entry(name, S_IFCHR | mode, 1, (major, minor), b"");
    }

    fn entry(&mut self, name: &str, mode: u32, nlink: u32, rdev: (u32, u32), data: &[u8]) {
        self.next_inode += 1;
        let size = u32::try_from(data.len()).expect("a cpio member under 4 GiB");
        let name_size = u32::try_from(name.len() + 1).expect("a short name");
        let fields = [
            self.next_inode,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            size,
            0, // device major
            0, // device minor
            rdev.0,
            rdev.1,
            name_size,
            0, // check
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08X}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    /// Zeros up to the next multiple of 4 bytes.
    fn pad(&mut self) {
        let padded = self.bytes.len().next_multiple_of(4);
        self.bytes.resize(padded, 0);
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, 1, (0, 0), b"");
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::{init_script, Cpio, MODULE_GROUPS};
    use crate::{cmd, tools};

    #[test]
    fn the_init_script_is_valid_busybox_shell() {
        let busybox = tools::find_tool("busybox")
            .unwrap_or_else(|| panic!("busybox not found: run scripts/setup (see README)"));
        let groups: Vec<(&str, Vec<String>)> = MODULE_GROUPS
            .iter()
            .map(|(name, _)| (*name, vec![format!("/lib/modules/00-{name}.ko")]))
            .collect();
        let scratch = crate::tmp::TempDir::new("initramfs-init");
        for storage in [false, true] {
            let script = init_script(&groups, storage);
            let path = scratch.join("init");
            std::fs::write(&path, &script).expect("writing the init script");
            let out = cmd::output(Command::new(&busybox).args(["sh", "-n"]).arg(&path));
            assert!(
                out.status.success(),
                "busybox sh -n rejects /init (storage: {storage}): {}\n{script}",
                cmd::describe_output(&out)
            );
            for (name, _) in MODULE_GROUPS {
                assert!(script.contains(&format!(
                    "        {name}) set -- /lib/modules/00-{name}.ko ;;\n"
                )));
            }
            assert_eq!(script.contains("mdadm"), storage, "{script}");
            assert_eq!(script.contains("root=/dev/*)"), storage, "{script}");
        }
    }

    #[test]
    fn cpio_parents_are_added_once() {
        let mut archive = Cpio::default();
        archive.dir("lib");
        archive.file_at(Path::new("/lib/x86_64-linux-gnu/libc.so.6"), b"", 0o755);
        archive.file_at(Path::new("/lib/x86_64-linux-gnu/libm.so.6"), b"", 0o755);
        archive.parents("run/lock/lvm/");
        assert_eq!(
            archive.dirs,
            [
                "lib",
                "lib/x86_64-linux-gnu",
                "run",
                "run/lock",
                "run/lock/lvm"
            ]
        );
    }

    #[test]
    fn cpio_members_are_aligned_and_the_archive_ends_with_the_trailer() {
        let mut archive = Cpio::default();
        archive.file("init", b"#!/bin/sh\n", 0o755);
        let bytes = archive.finish();
        assert_eq!(&bytes[..6], b"070701");
        // Header 110 bytes, "init\0" padded to 4 (112 + 4 = 116), data 10 padded to 12.
        assert_eq!(&bytes[110..115], b"init\0");
        assert_eq!(&bytes[116..126], b"#!/bin/sh\n");
        assert_eq!(&bytes[128..134], b"070701");
        assert_eq!(bytes.len() % 4, 0);
        assert!(bytes.windows(11).any(|w| w == b"TRAILER!!!\0"));
    }
}
