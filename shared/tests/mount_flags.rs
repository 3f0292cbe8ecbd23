//! Every mount made through `shared::mount` (both programs mount only through it) carries
//! nosuid, nodev, noexec and noatime, read back from /proc/self/mountinfo while the mount
//! exists: for a fresh private directory and an existing one, read-only and read-write. A
//! detached mount, which mountinfo does not list, is checked through statvfs.
//! The deployer's and bootctl's own runs are checked the same way in
//! deployer/tests/security_real.rs.

use std::fs;
use std::path::Path;
use std::process::Command;

use e2e::cmd;
use e2e::disk::LoopDisk;
use e2e::tmp::TempDir;
use e2e::tools::require_tools;
use nix::sys::statvfs::{statvfs, FsFlags};
use shared::mount::{DetachedMount, Mount, MountOptions};

/// The flags every mount must have.
const REQUIRED: [&str; 4] = ["nosuid", "nodev", "noexec", "noatime"];

/// The per-mount options of the mount at `mount_point` (the last one, if it is stacked),
/// from the text of a mountinfo file.
fn mount_options(mountinfo: &str, mount_point: &Path) -> Option<Vec<String>> {
    let wanted = mount_point.to_str().expect("UTF-8 mount point");
    mountinfo
        .lines()
        .rev()
        .map(|line| line.split(' ').collect::<Vec<_>>())
        .find(|fields| fields.get(4) == Some(&wanted))
        .and_then(|fields| {
            fields
                .get(5)
                .map(|o| o.split(',').map(str::to_owned).collect())
        })
}

/// Panics unless the mount at `mount_point` has every flag of [`REQUIRED`] and is
/// read-only exactly when `read_only`.
fn check_flags(mount_point: &Path, read_only: bool) {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("reading mountinfo");
    let options = mount_options(&mountinfo, mount_point)
        .unwrap_or_else(|| panic!("{} is not mounted", mount_point.display()));
    let missing: Vec<&str> = REQUIRED
        .into_iter()
        .filter(|flag| !options.iter().any(|o| o == flag))
        .collect();
    assert!(
        missing.is_empty(),
        "{} lacks {missing:?}: {options:?}",
        mount_point.display()
    );
    let mode = if read_only { "ro" } else { "rw" };
    assert!(
        options.iter().any(|o| o == mode),
        "{} is not {mode}: {options:?}",
        mount_point.display()
    );
}

/// A 16 MiB ext4 filesystem on a loop device, in a scratch directory named after `label`.
fn ext4_disk(label: &str) -> (TempDir, LoopDisk) {
    require_tools(&["mkfs.ext4"]);
    let dir = TempDir::new(label);
    let disk = LoopDisk::create(&dir.join("fs.img"), 16 << 20);
    cmd::run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(disk.device()),
    );
    (dir, disk)
}

#[test]
fn mounts_are_nosuid_nodev_noexec_and_noatime() {
    let (dir, disk) = ext4_disk("mount-flags");
    for read_only in [true, false] {
        let options = MountOptions {
            read_only,
            fstype: Some("ext4".to_owned()),
        };
        let temp = Mount::new_temp(disk.device(), &dir.join("base"), &options)
            .unwrap_or_else(|e| panic!("mounting {}: {e}", disk.device().display()));
        check_flags(temp.path(), read_only);
        temp.unmount().expect("unmounting");

        let target = dir.join(if read_only { "ro" } else { "rw" });
        fs::create_dir_all(&target).unwrap();
        let probed = MountOptions {
            read_only,
            fstype: None,
        };
        let at = Mount::at(disk.device(), &target, &probed)
            .unwrap_or_else(|e| panic!("mounting at {}: {e}", target.display()));
        check_flags(&target, read_only);
        at.unmount().expect("unmounting");
    }
}

#[test]
fn a_detached_mount_has_the_same_flags_is_seen_by_no_one_and_goes_with_its_descriptor() {
    let (_dir, disk) = ext4_disk("detached-mount");
    let name = disk.device().file_name().expect("device name").to_owned();
    // ext4 lists every filesystem it has mounted (a live superblock) here.
    let live = Path::new("/sys/fs/ext4").join(&name);
    for read_only in [false, true] {
        let mount = DetachedMount::new(disk.device(), "ext4", read_only)
            .expect("mounting")
            .expect("this kernel has fsmount");
        let flags = statvfs(mount.path()).expect("statvfs").flags();
        let required =
            FsFlags::ST_NOSUID | FsFlags::ST_NODEV | FsFlags::ST_NOEXEC | FsFlags::ST_NOATIME;
        assert!(flags.contains(required), "{flags:?}");
        assert_eq!(flags.contains(FsFlags::ST_RDONLY), read_only, "{flags:?}");
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let device = disk.device().to_str().unwrap();
        assert!(
            !mountinfo.contains(&format!(" {device} ")),
            "the detached mount shows in mountinfo: {mountinfo}"
        );
        assert!(live.exists(), "{} is not mounted", device);
        if read_only {
            let content = fs::read_to_string(mount.path().join("written")).unwrap();
            assert_eq!(content, "through the descriptor");
            assert!(fs::write(mount.path().join("other"), "x").is_err());
        } else {
            fs::write(mount.path().join("written"), "through the descriptor").unwrap();
        }
        mount.unmount();
        assert!(!live.exists(), "{} still mounted after unmount", device);
    }
}
