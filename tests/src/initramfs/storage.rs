//! The storage variant of the fixture initramfs, for images whose root or fstab
//! filesystems are on LVM logical volumes or md RAID1 arrays
//! ([`crate::fixture::FixtureImage::with_storage`]). The plain one stays as small as it is:
//! the images that need none of this do not pay for it.
//!
//! It holds what the plain one does, the device-mapper and md RAID1 modules
//! ([`MODULE_GROUP`]), the host's `lvm` and `mdadm` at `usr/sbin/` (the names a deployer's
//! check of an image's initrd looks for) with the shared libraries `ldd` lists for them and
//! the ELF interpreter, and their configs. It is a plain newc cpio archive too.
//!
//! Its `/init` loads the modules, then, until the root shows up, hands every new block
//! device to `mdadm --incremental` (which adds a RAID member to its array and starts the
//! array once it is complete, as udev's rules do) and, when an LVM physical volume shows
//! up, activates every volume group (`lvm vgchange -ay --sysinit`; with no udev to
//! activate the others later, it activates them all, whatever `rd.lvm.lv=` says). An
//! array still incomplete after [`DEGRADED_AFTER_PASSES`], or once the root is found (the
//! image's fstab may need it), is started without its missing disk. The root is either
//! - `root=UUID=`: the ext4 or xfs filesystem with that UUID on a block device nothing
//!   holds (a partition, an md array, a device-mapper device; a RAID1 member whose
//!   superblock is at its end, metadata 0.90 or 1.0, shows the array's filesystem too, but
//!   its array holds it), or
//! - `root=/dev/...`: that block device once it exists (`/dev/mapper/VG-LV`,
//!   `/dev/VG/LV`).
//!
//! The `/dev/disk/by-uuid/` links are made for the devices nothing holds, so the
//! filesystems on arrays and logical volumes get theirs.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{base_archive, init_script, read, write_archive, MODULE_GROUPS, ROOT_WAIT_TENTHS};
use crate::cmd;
use crate::fixture::MARKER;

/// The modules of the storage variant's `storage` group: device-mapper (its linear and
/// striped targets, all LVM's plain logical volumes need, are in `dm_mod`) and md RAID1.
pub const MODULE_GROUP: (&str, &[&str]) = ("storage", &["dm_mod", "md_mod", "raid1"]);

/// The programs it holds, at the same paths inside.
pub const PROGRAMS: &[&str] = &["/usr/sbin/lvm", "/usr/sbin/mdadm"];

/// How long `/init` waits for an incomplete array's missing disk while it looks for the
/// root, in passes of its search, a tenth of a second apart (a pass takes a few tenths
/// more under emulation). Virtio disks all show up as their driver loads: the wait is
/// only a margin.
pub const DEGRADED_AFTER_PASSES: u32 = 10;

/// The configs, as paths inside and contents.
const CONFIGS: &[(&str, &str)] = &[
    (
        "etc/lvm/lvm.conf",
        "# No udev and no dmeventd here: lvm makes its own device nodes\n\
         # (DM_DISABLE_UDEV=1) and monitors nothing.\n\
         activation {\n    udev_sync = 0\n    udev_rules = 0\n    monitoring = 0\n}\n",
    ),
    (
        "etc/mdadm/mdadm.conf",
        "# Every array found is assembled, whichever host made it.\n\
         DEVICE partitions\nHOMEHOST <ignore>\nAUTO +all\n",
    ),
];

/// The directories lvm and mdadm keep their locks and maps in.
const RUN_DIRS: &[&str] = &["run/lvm", "run/lock/lvm", "run/mdadm"];

/// Writes the storage initramfs for kernel `version` to `path`.
pub fn write(version: &str, busybox: &Path, path: &Path) {
    write_with(version, busybox, None, path);
}

/// Writes the storage initramfs with `script` at `/setup`: its `/init` loads the modules,
/// runs the script (a busybox `sh` script, output between the fixture's `run-begin` and
/// `run-end rc=N` console markers, as [`crate::qemu::BootOutcome`] reads them) and powers
/// off. The test kit's way to make volume groups and arrays on a guest's disks: the host
/// kernel has neither device-mapper nor md.
pub fn write_setup(version: &str, busybox: &Path, script: &str, path: &Path) {
    write_with(version, busybox, Some(script), path);
}

fn write_with(version: &str, busybox: &Path, setup: Option<&str>, path: &Path) {
    let mut module_groups = MODULE_GROUPS.to_vec();
    module_groups.push(MODULE_GROUP);
    let (mut archive, groups) = base_archive(version, busybox, &module_groups);
    let mut libraries: Vec<PathBuf> = Vec::new();
    for program in PROGRAMS {
        let program = Path::new(program);
        crate::tools::require_file(program);
        for library in shared_libraries(program) {
            if !libraries.contains(&library) {
                libraries.push(library);
            }
        }
        archive.file_at(program, &read(program), 0o755);
    }
    for library in &libraries {
        archive.file_at(library, &read(library), 0o755);
    }
    for (inside, contents) in CONFIGS {
        archive.file_at(Path::new(inside), contents.as_bytes(), 0o644);
    }
    for dir in RUN_DIRS {
        archive.parents(&format!("{dir}/"));
    }
    if let Some(script) = setup {
        archive.file("setup", format!("#!/bin/sh\n{script}").as_bytes(), 0o755);
    }
    archive.file("init", init_script(&groups, true).as_bytes(), 0o755);
    write_archive(archive, path);
}

/// The shared libraries and the ELF interpreter of `program`, as `ldd` lists them.
fn shared_libraries(program: &Path) -> Vec<PathBuf> {
    crate::tools::require_tools(&["ldd"]);
    let out = cmd::run(Command::new("ldd").arg(program));
    parse_ldd(&out).unwrap_or_else(|e| panic!("ldd {}: {e}", program.display()))
}

/// The absolute paths in `ldd`'s output (the kernel's vDSO has none).
fn parse_ldd(out: &str) -> Result<Vec<PathBuf>, String> {
    let mut paths = Vec::new();
    for line in out.lines() {
        if line.contains("not found") {
            return Err(format!("a library is missing: {}", line.trim()));
        }
        paths.extend(
            line.split_whitespace()
                .filter(|word| word.starts_with('/'))
                .map(PathBuf::from),
        );
    }
    Ok(paths)
}

/// The storage `/init`'s parts for [`init_script`]: what it does, its exports, its
/// `root=` arm, and its search for the root (from the modules to the by-uuid links).
pub(super) fn script_parts() -> (&'static str, String, &'static str, String) {
    let exports = "export PATH=/usr/sbin:/bin\n\
        # No udev: lvm makes the /dev/mapper and /dev/VG nodes itself.\n\
        export DM_DISABLE_UDEV=1 LVM_SUPPRESS_FD_WARNINGS=1\n\
        rootdev=\n"
        .to_owned();
    let root_arm = "        root=/dev/*) rootdev=${word#root=} ;;\n";
    let find_root = format!(
        r#"load disk
load ext4
load storage
# Only the test kit's setup initramfs holds /setup: it runs instead of a boot.
if [ -x /setup ]; then
    echo "{MARKER} run-begin"
    /setup </dev/null 2>&1
    echo "{MARKER} run-end rc=$?"
    sync
    poweroff -f
fi
if [ -n "$rootdev" ]; then
    what="block device $rootdev"
elif [ -n "$uuid" ]; then
    uuid=$(echo "$uuid" | tr A-F a-f)
    what="filesystem with UUID $uuid"
else
    fail "no root=UUID= or root=/dev/... on the kernel command line"
fi
# assemble: hands the block devices not seen yet to mdadm, which adds a RAID member to its
# array and starts the array once it is complete, and activates the volume groups if one
# of them is an LVM physical volume (its label in one of its first four sectors; lvm takes
# a second or more under emulation).
seen=" "
assemble() {{
    pv=
    while read -r major minor blocks name; do
        [ -b "/dev/$name" ] || continue
        case "$seen" in *" $name "*) continue ;; esac
        seen="$seen$name "
        mdadm --incremental --quiet "/dev/$name" >/dev/null 2>&1
        dd if="/dev/$name" bs=512 count=4 2>/dev/null | grep -q LABELONE && pv=1
    done < /proc/partitions
    [ -z "$pv" ] || lvm vgchange -ay --sysinit >/dev/null
}}
# unheld NAME: whether no array or device-mapper table holds block device NAME.
unheld() {{
    [ -z "$(ls "/sys/class/block/$1/holders" 2>/dev/null)" ]
}}
# find_root: sets root to the root's device, or false. A device without the root's UUID
# is not probed again.
probed=" "
find_root() {{
    if [ -n "$rootdev" ]; then
        [ -b "$rootdev" ] && root=$rootdev
        return
    fi
    while read -r major minor blocks name; do
        [ -b "/dev/$name" ] || continue
        case "$probed" in *" $name "*) continue ;; esac
        unheld "$name" || continue
        if probe "/dev/$name" && [ "$id" = "$uuid" ]; then
            root=/dev/$name
            return 0
        fi
        probed="$probed$name "
    done < /proc/partitions
    return 1
}}
# start_degraded: starts the incomplete arrays without their missing disks. An inactive
# array is not in /proc/partitions: once started, it is a new device there.
start_degraded() {{
    grep -q inactive /proc/mdstat || return 0
    echo "MULTIBOOT-INITRAMFS: starting incomplete RAID arrays degraded"
    mdadm --incremental --run --scan
    assemble
}}
tries=0
until assemble; find_root; do
    tries=$((tries + 1))
    [ "$tries" -ne {DEGRADED_AFTER_PASSES} ] || start_degraded
    [ "$tries" -lt {ROOT_WAIT_TENTHS} ] || fail "no $what (the root)"
    sleep 0.1
done
# Every disk has shown up by now (a virtio disk does as its driver loads): an array still
# incomplete lacks one, and the image's fstab may need the array.
start_degraded
# The links udev makes: /dev/disk/by-uuid/UUID for the ext4 and xfs filesystems.
mkdir -p /dev/disk/by-uuid
while read -r major minor blocks name; do
    [ -b "/dev/$name" ] && unheld "$name" && probe "/dev/$name" &&
        ln -sfn "../../$name" "/dev/disk/by-uuid/$id"
done < /proc/partitions
"#
    );
    (
        "load the modules, assemble RAID arrays, activate LVM, find the root",
        exports,
        root_arm,
        find_root,
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::parse_ldd;

    #[test]
    fn ldd_output_gives_the_libraries_and_the_interpreter() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
            \tlibudev.so.1 => /lib/x86_64-linux-gnu/libudev.so.1 (0x00007f8b)\n\
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f8c)\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007f8d)\n";
        assert_eq!(
            parse_ldd(out).unwrap(),
            [
                "/lib/x86_64-linux-gnu/libudev.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
        let missing = "\tlibfoo.so.1 => not found\n";
        assert_eq!(
            parse_ldd(missing).unwrap_err(),
            "a library is missing: libfoo.so.1 => not found"
        );
    }
}
