//! The command that makes a planned filesystem or swap area, with the UUID and label the
//! plan gave it, so that fstab, `root=UUID=` and boot-info.json, all written from the
//! plan, name it correctly without probing the device afterwards.
//!
//! [`mkfs_command`] is pure: it returns the argv; running it is the caller's job. Every
//! command overwrites whatever the device held and never asks (stdin is not a terminal
//! when the deployer runs):
//!
//! | type | argv |
//! |---|---|
//! | ext2, ext3, ext4 | `mkfs.ext2`/`mkfs.ext3`/`mkfs.ext4 -F -q -U UUID [-L LABEL] DEVICE` |
//! | xfs | `mkfs.xfs -f -q -m uuid=UUID [-L LABEL] DEVICE` |
//! | vfat | `mkfs.vfat -i VOLID [-n LABEL] DEVICE` |
//! | swap | `mkswap -U UUID [-L LABEL] DEVICE` |
//!
//! For vfat, VOLID is the planned `XXXX-XXXX` volume id without the dash: 8 hex digits,
//! which `blkid` shows again as `XXXX-XXXX`.
//!
//! **FAT size.** No `-F` is passed: the FAT size is what mkfs.fat chooses for the device's
//! size, as in Bareon (`bareon/utils/fs.py` `make_fs` runs `mkfs.vfat` with only the
//! configured options and label). mkfs.fat 4.2 (Debian 12) chooses FAT32 from 512 MiB up
//! and FAT16 (FAT12 for the smallest) below, measured at 511 and 512 MiB: the "FAT32 from
//! 512 MiB" rule, without the command needing the size. The implicit 64 MiB ESP is therefore FAT16:
//! firmware reads FAT12/16/32 alike (OVMF boots this project's demo disk, whose 32 MiB
//! ESP is made by `mkfs.vfat` without `-F` and so is FAT16), and `-F 32` could not serve every disk anyway, since FAT32 needs
//! at least 65525 clusters: 32 MiB with 512-byte sectors, 256 MiB with 4096-byte ones.

use std::ffi::OsString;
use std::path::Path;

use crate::config::FileSystem;
use crate::plan::FilesystemPlan;

/// The program that makes a filesystem of type `fs_type`.
pub fn mkfs_program(fs_type: FileSystem) -> &'static str {
    match fs_type {
        FileSystem::Ext2 => "mkfs.ext2",
        FileSystem::Ext3 => "mkfs.ext3",
        FileSystem::Ext4 => "mkfs.ext4",
        FileSystem::Xfs => "mkfs.xfs",
        FileSystem::Vfat => "mkfs.vfat",
        FileSystem::Swap => "mkswap",
    }
}

/// The argv (program first) that makes `fs` on `device` with the planned UUID and label.
/// `device` is a block device or, for tests and offline images, a regular file.
pub fn mkfs_command(fs: &FilesystemPlan, device: &Path) -> Vec<OsString> {
    let (options, label_flag): (Vec<String>, &str) = match fs.fs_type {
        FileSystem::Ext2 | FileSystem::Ext3 | FileSystem::Ext4 => (
            vec!["-F".into(), "-q".into(), "-U".into(), fs.uuid.clone()],
            "-L",
        ),
        FileSystem::Xfs => (
            vec![
                "-f".into(),
                "-q".into(),
                "-m".into(),
                format!("uuid={}", fs.uuid),
            ],
            "-L",
        ),
        FileSystem::Vfat => (vec!["-i".into(), fs.uuid.replace('-', "")], "-n"),
        FileSystem::Swap => (vec!["-U".into(), fs.uuid.clone()], "-L"),
    };
    let mut argv: Vec<OsString> = vec![mkfs_program(fs.fs_type).into()];
    argv.extend(options.into_iter().map(OsString::from));
    if let Some(label) = &fs.label {
        argv.push(label_flag.into());
        argv.push(label.into());
    }
    argv.push(device.into());
    argv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mount;
    use crate::plan::{plan, DiskInput, Plan, Purpose, SequentialIds};
    use crate::validate::validate;

    /// One volume of every filesystem type; ext3 without a label.
    const EVERY_TYPE: &str = include_str!("../../examples/every-filesystem.json");

    fn every_type() -> Plan {
        let config = validate(EVERY_TYPE).unwrap_or_else(|e| panic!("invalid config: {e:?}"));
        let disk = DiskInput {
            name: "vda".to_string(),
            path: "/dev/vda".into(),
            size_bytes: 2 << 30,
            sector_size: 512,
            existing: None,
        };
        plan(&config, &[disk], &mut SequentialIds::default())
            .unwrap_or_else(|e| panic!("planning failed: {e:?}"))
    }

    fn filesystem(plan: &Plan, mount: &str) -> FilesystemPlan {
        let wanted = match mount {
            "swap" => Mount::Swap,
            path => Mount::Path(path.to_string()),
        };
        plan.filesystems
            .iter()
            .find(|fs| fs.mount == wanted)
            .unwrap_or_else(|| panic!("no filesystem mounted at {mount}"))
            .clone()
    }

    fn argv(fs: &FilesystemPlan, device: &str) -> Vec<String> {
        mkfs_command(fs, Path::new(device))
            .into_iter()
            .map(|arg| arg.into_string().expect("UTF-8 argument"))
            .collect()
    }

    #[test]
    fn ext4_gets_the_planned_uuid_and_label() {
        let fs = filesystem(&every_type(), "/");
        assert_eq!(
            argv(&fs, "/dev/vda4"),
            [
                "mkfs.ext4",
                "-F",
                "-q",
                "-U",
                "00000000-0000-4000-a000-000000000003",
                "-L",
                "root",
                "/dev/vda4"
            ]
        );
    }

    #[test]
    fn ext2_and_ext3_use_their_own_programs() {
        let plan = every_type();
        assert_eq!(
            argv(&filesystem(&plan, "/boot"), "/dev/vda5"),
            [
                "mkfs.ext2",
                "-F",
                "-q",
                "-U",
                "00000000-0000-4000-a000-000000000004",
                "-L",
                "boot",
                "/dev/vda5"
            ]
        );
        assert_eq!(
            argv(&filesystem(&plan, "/var"), "/dev/vda6"),
            [
                "mkfs.ext3",
                "-F",
                "-q",
                "-U",
                "00000000-0000-4000-a000-000000000005",
                "/dev/vda6"
            ]
        );
    }

    #[test]
    fn xfs_gets_its_uuid_through_the_metadata_option() {
        let fs = filesystem(&every_type(), "/srv");
        assert_eq!(
            argv(&fs, "/dev/vda7"),
            [
                "mkfs.xfs",
                "-f",
                "-q",
                "-m",
                "uuid=00000000-0000-4000-a000-000000000006",
                "-L",
                "srv",
                "/dev/vda7"
            ]
        );
    }

    #[test]
    fn vfat_gets_the_volume_id_without_the_dash_and_no_fat_size() {
        let plan = every_type();
        let esp = plan
            .filesystems
            .iter()
            .find(|fs| fs.purpose == Purpose::Esp)
            .expect("the ESP");
        assert_eq!(esp.uuid, "0000-0001");
        assert_eq!(
            argv(esp, "/dev/vda2"),
            ["mkfs.vfat", "-i", "00000001", "-n", "ESP", "/dev/vda2"]
        );
        let mut data = filesystem(&plan, "/data");
        assert_eq!(
            argv(&data, "/dev/vda8"),
            ["mkfs.vfat", "-i", "00000007", "-n", "FATDATA", "/dev/vda8"]
        );
        data.uuid = "1A2B-C3D4".to_string();
        assert_eq!(argv(&data, "/dev/vda8")[2], "1A2BC3D4");
    }

    #[test]
    fn swap_gets_the_planned_uuid_and_label() {
        let fs = filesystem(&every_type(), "swap");
        assert_eq!(
            argv(&fs, "/dev/vda9"),
            [
                "mkswap",
                "-U",
                "00000000-0000-4000-a000-000000000008",
                "-L",
                "swap0",
                "/dev/vda9"
            ]
        );
    }

    #[test]
    fn labels_are_left_out_when_the_plan_has_none() {
        let plan = every_type();
        for mut fs in plan.filesystems {
            fs.label = None;
            let argv = argv(&fs, "/dev/vdb1");
            assert_eq!(argv.last().map(String::as_str), Some("/dev/vdb1"));
            for flag in ["-L", "-n"] {
                assert!(!argv.iter().any(|a| a == flag), "{argv:?}");
            }
        }
    }

    #[test]
    fn every_type_has_a_program_and_a_device_path_is_passed_as_is() {
        let programs: Vec<&str> = FileSystem::ALL.into_iter().map(mkfs_program).collect();
        assert_eq!(
            programs,
            [
                "mkfs.ext2",
                "mkfs.ext3",
                "mkfs.ext4",
                "mkfs.xfs",
                "mkfs.vfat",
                "mkswap"
            ]
        );
        let mut fs = filesystem(&every_type(), "/");
        fs.label = Some("a label".to_string());
        let device = Path::new("/tmp/dir with space/vda.img");
        let argv = mkfs_command(&fs, device);
        assert_eq!(argv[6], "a label");
        assert_eq!(argv[7], device.as_os_str());
    }
}
