use std::path::PathBuf;

use super::*;
use crate::config::{FileSystem, Mount, PartitionsPolicy};
use crate::size::MIB;
use crate::validate::validate;
use uuid::Uuid;

const GIB: u64 = 1 << 30;

pub(super) fn config(text: &str) -> ProvisionConfig {
    validate(text).unwrap_or_else(|errors| panic!("invalid test config: {errors:?}"))
}

/// Two images (centos boots) and disk `vda` with `volumes`, plus `more` entries of
/// `partitions[]`.
fn two_images(volumes: &str, more: &str) -> ProvisionConfig {
    config(&format!(
        r#"{{"images": [
              {{"name": "centos", "image_pull_url": "http://h/c.tar", "target": "/", "boot": true}},
              {{"name": "ubuntu", "image_pull_url": "/srv/ubuntu", "target": "/"}}],
            "partitions": [
              {{"type": "disk", "id": {{"type": "name", "value": "vda"}}, "volumes": [{volumes}]}}
              {more}],
            "deploy_data": {{"kernel_params": "console=ttyS0"}}}}"#
    ))
}

const ROOTS: &str = r#"
    {"type": "partition", "mount": "/", "file_system": "ext4", "size": "4000", "images": ["centos"]},
    {"type": "partition", "mount": "/", "file_system": "ext4", "size": "5000", "images": ["ubuntu"]}"#;

pub(super) fn disk(name: &str, size_bytes: u64) -> DiskInput {
    DiskInput {
        name: name.to_string(),
        path: PathBuf::from(format!("/dev/{name}")),
        size_bytes,
        sector_size: 512,
        existing: None,
    }
}

pub(super) fn plan_ok(config: &ProvisionConfig, disks: &[DiskInput]) -> Plan {
    plan(config, disks, &mut SequentialIds::default())
        .unwrap_or_else(|errors| panic!("planning failed: {errors:?}"))
}

fn plan_errors(config: &ProvisionConfig, disks: &[DiskInput]) -> Vec<String> {
    match plan(config, disks, &mut SequentialIds::default()) {
        Ok(plan) => panic!("planned: {plan:?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn fs_uuid(n: u32) -> String {
    format!("00000000-0000-4000-a000-{n:012x}")
}

fn part_uuid(n: u32) -> String {
    format!("00000000-0000-4000-b000-{n:012x}")
}

/// `(start MiB, size MiB, kind)` of every partition of a disk.
fn layout(disk: &DiskPlan) -> Vec<(u64, u64, PartitionKind)> {
    disk.partitions
        .iter()
        .map(|p| (p.start_mib, p.size_mib, p.kind))
        .collect()
}

fn spec_example() -> Plan {
    let config = config(include_str!("../../examples/multi-image.json"));
    plan_ok(&config, &[disk("vda", 20 * GIB)])
}

fn image<'a>(plan: &'a Plan, name: &str) -> &'a ImagePlan {
    plan.images.iter().find(|i| i.name == name).unwrap()
}

fn image_layout(plan: &Plan, name: &str) -> ImageLayout {
    plan.layout(image(plan, name))
}

#[test]
fn spec_example_partitions_start_with_the_implicit_ones() {
    let plan = spec_example();
    assert_eq!(plan.disks.len(), 1);
    let vda = &plan.disks[0];
    assert_eq!(vda.name, "vda");
    assert_eq!(vda.config_path.to_string(), "partitions[0]");
    use PartitionKind::*;
    assert_eq!(
        layout(vda),
        [
            (1, 1, BiosBoot),
            (2, 64, EfiSystem),
            (66, 100, LinuxFilesystem),
            (166, 4000, LinuxFilesystem),
            (4166, 5000, LinuxFilesystem),
            (9166, 10_000, LinuxFilesystem),
        ]
    );
    let p = &vda.partitions;
    assert_eq!(p[0].type_guid, "21686148-6449-6E6F-744E-656564454649");
    assert_eq!(p[1].type_guid, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    assert_eq!(p[2].type_guid, "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
    assert_eq!(
        p.iter().map(|p| p.purpose.clone()).collect::<Vec<_>>()[..3],
        [Purpose::BiosGrub, Purpose::Esp, Purpose::Multiboot]
    );
    assert_eq!(
        p[3].purpose,
        Purpose::Volume(
            JsonPath::root()
                .key("partitions")
                .index(0)
                .key("volumes")
                .index(0)
        )
    );
    for (i, partition) in p.iter().enumerate() {
        assert_eq!(partition.number as usize, i + 1);
        assert_eq!(partition.partition_uuid, part_uuid(i as u32 + 1));
    }
    assert!(p.iter().all(|p| !p.legacy_bios_bootable));
    assert!(!plan.needs_device_mapper && !plan.needs_md);

    let fs: Vec<(Device, FileSystem, Option<&str>, &str)> = plan
        .filesystems
        .iter()
        .map(|f| {
            (
                f.device.clone(),
                f.fs_type,
                f.label.as_deref(),
                f.uuid.as_str(),
            )
        })
        .collect();
    let on = |number| Device::Partition {
        disk: "vda".into(),
        number,
    };
    assert_eq!(
        fs,
        [
            (on(2), FileSystem::Vfat, Some("ESP"), "0000-0001"),
            (
                on(3),
                FileSystem::Ext4,
                Some("multiboot"),
                fs_uuid(2).as_str()
            ),
            (on(4), FileSystem::Ext4, None, fs_uuid(3).as_str()),
            (on(5), FileSystem::Ext4, None, fs_uuid(4).as_str()),
            (on(6), FileSystem::Ext4, None, fs_uuid(5).as_str()),
        ]
    );
    assert_eq!(plan.filesystems[4].images, ["centos", "ubuntu"]);
    assert_eq!(plan.filesystems[1].mount, Mount::None);
    assert!(plan.filesystems[1].images.is_empty());
}

#[test]
fn spec_example_fstabs() {
    let plan = spec_example();
    assert_eq!(
        image_layout(&plan, "centos").fstab,
        "# /etc/fstab of image centos, written by deployer\n\
         UUID=00000000-0000-4000-a000-000000000004 / ext4 defaults 0 1\n\
         UUID=00000000-0000-4000-a000-000000000005 /usr/share/common ext4 defaults 0 2\n"
    );
    assert_eq!(
        image_layout(&plan, "ubuntu").fstab,
        "# /etc/fstab of image ubuntu, written by deployer\n\
         UUID=00000000-0000-4000-a000-000000000003 / ext4 defaults 0 1\n\
         UUID=00000000-0000-4000-a000-000000000005 /usr/share/common ext4 defaults 0 2\n"
    );
}

#[test]
fn spec_example_mounts_and_boot_layout() {
    let plan = spec_example();
    assert_eq!(
        plan.images.iter().map(|i| &i.name).collect::<Vec<_>>(),
        ["centos", "ubuntu"]
    );
    let ubuntu = image(&plan, "ubuntu");
    let ubuntu_layout = plan.layout(ubuntu);
    let mounts: Vec<(&str, String)> = ubuntu_layout
        .mounts
        .iter()
        .map(|m| (m.mount_point.as_str(), m.device.to_string()))
        .collect();
    assert_eq!(
        mounts,
        [("/", "vda#4".into()), ("/usr/share/common", "vda#6".into())]
    );
    assert_eq!(ubuntu_layout.root_uuid, Some(fs_uuid(3)));
    assert_eq!(ubuntu_layout.boot_uuid, Some(fs_uuid(3)));
    assert!(!ubuntu_layout.separate_boot);
    assert_eq!(ubuntu.grub_menu_id, "multiboot-ubuntu");
    assert_eq!(ubuntu.config_path.to_string(), "images[1]");
    assert_eq!(
        ubuntu.kernel_params.as_deref(),
        Some("console=ttyS0,115200n8")
    );
    assert_eq!(image_layout(&plan, "centos").root_uuid, Some(fs_uuid(4)));
    assert_eq!(plan.multiboot_uuid(), Some(fs_uuid(2).as_str()));
    assert_eq!(plan.esp_uuid(), Some("0000-0001"));
    assert_eq!(
        plan.boot,
        BootPlan {
            bios_disk: "vda".into(),
            bios_disk_path: PathBuf::from("/dev/vda"),
            bios_disks: vec!["vda".into()],
            default_image: "centos".into(),
            entries: vec!["centos".into(), "ubuntu".into()],
        }
    );
}

#[test]
fn random_ids_are_version_4_and_vfat_ids_are_8_hex_digits() {
    let config = config(include_str!("../../examples/multi-image.json"));
    let plan = plan(&config, &[disk("vda", 20 * GIB)], &mut RandomIds).unwrap();
    let esp = plan.esp_uuid().unwrap();
    assert_eq!(esp.len(), 9);
    assert_eq!(&esp[4..5], "-");
    assert!(esp
        .chars()
        .all(|c| c == '-' || c.is_ascii_digit() || c.is_ascii_uppercase()));
    let roots: Vec<Option<String>> = plan
        .images
        .iter()
        .map(|image| plan.layout(image).root_uuid)
        .collect();
    let root = Uuid::parse_str(roots[0].as_ref().unwrap()).unwrap();
    assert_eq!(root.get_version_num(), 4);
    assert_ne!(roots[0], roots[1]);
}

#[test]
fn the_default_image_is_the_first_without_boot_true() {
    let config = config(
        r#"{"images": [
              {"name": "a", "image_pull_url": "/srv/a", "target": "/"},
              {"name": "b", "image_pull_url": "/srv/b", "target": "/"}],
            "partitions": [{"type": "disk", "id": {"type": "name", "value": "vda"},
              "volumes": [
                {"type": "partition", "mount": "/", "file_system": "ext4", "size": "100", "images": ["a"]},
                {"type": "partition", "mount": "/", "file_system": "ext4", "size": "100", "images": ["b"]}]}]}"#,
    );
    let plan = plan_ok(&config, &[disk("vda", GIB)]);
    assert_eq!(plan.boot.default_image, "a");
    assert_eq!(plan.images[0].kernel_params, None);
}

#[test]
fn mounts_go_by_depth_and_a_separate_boot_is_noted() {
    let config = two_images(
        r#"{"type": "partition", "mount": "/usr/share/common", "file_system": "ext4", "size": "100", "images": ["centos"]},
           {"type": "partition", "mount": "/usr", "file_system": "ext4", "size": "100", "images": ["centos"]},
           {"type": "partition", "mount": "/boot", "size": "100", "images": ["centos"], "file_system": "ext2"},
           {"type": "partition", "mount": "/", "size": "300", "images": ["centos"], "file_system": "xfs"},
           {"type": "partition", "mount": "/", "file_system": "ext4", "size": "100", "images": ["ubuntu"]}"#,
        "",
    );
    let plan = plan_ok(&config, &[disk("vda", GIB)]);
    let centos = image_layout(&plan, "centos");
    let order: Vec<&str> = centos
        .mounts
        .iter()
        .map(|m| m.mount_point.as_str())
        .collect();
    assert_eq!(order, ["/", "/boot", "/usr", "/usr/share/common"]);
    assert!(centos.separate_boot);
    // ESP, multiboot, then the volumes in config order: /boot is the 5th filesystem.
    assert_eq!(centos.boot_uuid, Some(fs_uuid(5)));
    assert_eq!(centos.root_uuid, Some(fs_uuid(6)));
    assert_eq!(
        centos.fstab,
        "# /etc/fstab of image centos, written by deployer\n\
         UUID=00000000-0000-4000-a000-000000000006 / xfs defaults 0 1\n\
         UUID=00000000-0000-4000-a000-000000000005 /boot ext2 defaults 0 2\n\
         UUID=00000000-0000-4000-a000-000000000004 /usr ext4 defaults 0 2\n\
         UUID=00000000-0000-4000-a000-000000000003 /usr/share/common ext4 defaults 0 2\n"
    );
    assert!(!image_layout(&plan, "ubuntu").separate_boot);
}

#[test]
fn swap_fstab_options_and_fstab_enabled_false() {
    let config = two_images(
        r#"{"type": "partition", "mount": "/", "file_system": "ext4", "size": "100", "images": ["centos"],
            "fstab_options": "defaults,noatime", "disk_label": "root"},
           {"type": "partition", "mount": "/", "file_system": "ext4", "size": "100", "images": ["ubuntu"]},
           {"type": "partition", "mount": "/srv", "file_system": "ext4", "size": "100", "images": ["centos", "ubuntu"],
            "fstab_enabled": false},
           {"type": "partition", "mount": "none", "size": "10", "file_system": "ext4"},
           {"type": "partition", "mount": "none", "size": "10"},
           {"type": "partition", "mount": "swap", "size": "512", "images": ["centos", "ubuntu"]}"#,
        "",
    );
    let plan = plan_ok(&config, &[disk("vda", GIB)]);
    let centos = image_layout(&plan, "centos");
    assert_eq!(
        centos.fstab,
        "# /etc/fstab of image centos, written by deployer\n\
         UUID=00000000-0000-4000-a000-000000000003 / ext4 defaults,noatime 0 1\n\
         UUID=00000000-0000-4000-a000-000000000007 none swap sw 0 0\n"
    );
    assert_eq!(
        image_layout(&plan, "ubuntu").fstab,
        "# /etc/fstab of image ubuntu, written by deployer\n\
         UUID=00000000-0000-4000-a000-000000000004 / ext4 defaults 0 1\n\
         UUID=00000000-0000-4000-a000-000000000007 none swap sw 0 0\n"
    );
    // Left out of fstab, still mounted while the image is deployed.
    let mounts: Vec<&str> = centos
        .mounts
        .iter()
        .map(|m| m.mount_point.as_str())
        .collect();
    assert_eq!(mounts, ["/", "/srv"]);
    let kinds: Vec<PartitionKind> = plan.disks[0].partitions[3..]
        .iter()
        .map(|p| p.kind)
        .collect();
    use PartitionKind::*;
    assert_eq!(
        kinds,
        [
            LinuxFilesystem,
            LinuxFilesystem,
            LinuxFilesystem,
            LinuxFilesystem,
            LinuxFilesystem,
            LinuxSwap
        ]
    );
    // "mount": "none" with a file system gets it, unmounted; without one, none.
    let devices: Vec<String> = plan
        .filesystems
        .iter()
        .map(|f| f.device.to_string())
        .collect();
    assert_eq!(
        devices,
        ["vda#2", "vda#3", "vda#4", "vda#5", "vda#6", "vda#7", "vda#9"]
    );
    assert_eq!(plan.filesystems[2].label.as_deref(), Some("root"));
}

#[test]
fn sizes_round_exact_amounts_up_and_percentages_down() {
    let config = two_images(
        r#"{"type": "partition", "mount": "/", "file_system": "ext4", "size": "1.5 MiB", "images": ["centos"]},
           {"type": "partition", "mount": "/", "file_system": "ext4", "size": "1 B", "images": ["ubuntu"]},
           {"type": "partition", "mount": "/a", "file_system": "ext4", "size": "10%"},
           {"type": "partition", "mount": "/b", "file_system": "ext4", "size": "0.01%"}"#,
        "",
    );
    // 1000 MiB and 512 KiB, 833 MiB usable after the GPTs and the implicit partitions:
    // 10% is 83.3 MiB, 12.5% 104.1 MiB, 0.01% 0.08 MiB.
    let disk_bytes = 1000 * MIB + 512 * 1024;
    let errors = plan_errors(&config, &[disk("vda", disk_bytes)]);
    assert_eq!(
        errors,
        ["partitions[0].volumes[3].size: 0.01% of disk \"vda\" is less than 1 MiB"]
    );

    let config = two_images(
        r#"{"type": "partition", "mount": "/", "file_system": "ext4", "size": "1.5 MiB", "images": ["centos"]},
           {"type": "partition", "mount": "/", "file_system": "ext4", "size": "1 B", "images": ["ubuntu"]},
           {"type": "partition", "mount": "/a", "file_system": "ext4", "size": "10%"},
           {"type": "partition", "mount": "/b", "file_system": "ext4", "size": "12.5%"}"#,
        "",
    );
    let plan = plan_ok(&config, &[disk("vda", disk_bytes)]);
    let sizes: Vec<u64> = plan.disks[0].partitions[3..]
        .iter()
        .map(|p| p.size_mib)
        .collect();
    assert_eq!(sizes, [2, 1, 83, 104]);
    let starts: Vec<u64> = plan.disks[0].partitions[3..]
        .iter()
        .map(|p| p.start_mib)
        .collect();
    assert_eq!(starts, [166, 168, 169, 252]);
}

#[test]
fn remaining_takes_what_the_others_leave() {
    let config = two_images(
        &format!(
            r#"{ROOTS}, {{"type": "partition", "mount": "/srv", "file_system": "ext4", "size": "remaining"}},
                    {{"type": "partition", "mount": "/var", "file_system": "ext4", "size": "25%"}}"#
        ),
        "",
    );
    let plan = plan_ok(&config, &[disk("vda", 20 * GIB)]);
    let last = |n: usize| &plan.disks[0].partitions[n];
    // 20313 MiB usable (20480 MiB - 2 MiB of GPTs - 165 MiB implicit) - 4000 - 5000 -
    // 5078 (25% of 20313 MiB).
    assert_eq!(last(5).size_mib, 6235);
    assert_eq!(last(6).size_mib, 5078);
    let end = last(6).start_mib + last(6).size_mib;
    assert_eq!(end, 20_480 - BACKUP_GPT_MIB);
}

#[test]
fn a_second_disk_holds_only_its_volumes() {
    let config = two_images(
        ROOTS,
        r#", {"type": "disk", "id": {"type": "path", "value": "disk/by-id/data"},
              "volumes": [
                {"type": "partition", "mount": "/data", "file_system": "ext4", "size": "50%", "images": ["centos", "ubuntu"]},
                {"type": "partition", "mount": "/scratch", "file_system": "ext4", "size": "remaining"}]}"#,
    );
    let plan = plan_ok(
        &config,
        &[disk("disk/by-id/data", 10 * GIB), disk("vda", 20 * GIB)],
    );
    assert_eq!(plan.disks[0].name, "vda");
    let data = &plan.disks[1];
    assert_eq!(data.name, "disk/by-id/data");
    assert_eq!(data.path, PathBuf::from("/dev/disk/by-id/data"));
    assert_eq!(data.config_path.to_string(), "partitions[1]");
    use PartitionKind::*;
    assert_eq!(
        layout(data),
        [(1, 5119, LinuxFilesystem), (5120, 5119, LinuxFilesystem)]
    );
    assert_eq!(plan.boot.bios_disk, "vda");
    assert_eq!(
        image_layout(&plan, "ubuntu").mounts[1].device,
        Device::Partition {
            disk: "disk/by-id/data".into(),
            number: 1
        }
    );
}

#[test]
fn volumes_that_do_not_fit_name_the_first_one_over_and_the_shortfall() {
    let config = two_images(
        &format!(
            r#"{ROOTS}, {{"type": "partition", "mount": "/srv", "file_system": "ext4", "size": "12000"}},
                    {{"type": "partition", "mount": "/var", "file_system": "ext4", "size": "100"}}"#
        ),
        "",
    );
    // Free: 20480 - 167 = 20313 MiB; needed: 21100 MiB.
    assert_eq!(
        plan_errors(&config, &[disk("vda", 20 * GIB)]),
        [
            "partitions[0].volumes[2]: does not fit on disk \"vda\" by 787 MiB: \
          its volumes need 21100 MiB, 20313 MiB are free"
        ]
    );
}

#[test]
fn remaining_needs_at_least_one_mib() {
    let config = two_images(
        r#"{"type": "partition", "mount": "/", "file_system": "ext4", "size": "remaining", "images": ["centos"]},
           {"type": "partition", "mount": "/", "file_system": "ext4", "size": "100%", "images": ["ubuntu"]}"#,
        "",
    );
    assert_eq!(
        plan_errors(&config, &[disk("vda", GIB)]),
        [
            "partitions[0].volumes[1]: does not fit on disk \"vda\" by 1 MiB: \
          its volumes (with at least 1 MiB for \"remaining\") need 858 MiB, 857 MiB are free"
        ]
    );
}

#[test]
fn every_disk_must_be_given_once_and_only_disks_of_the_config() {
    let config = two_images(
        ROOTS,
        r#", {"type": "disk", "id": {"type": "name", "value": "/dev/sdb"}, "volumes": []}"#,
    );
    assert_eq!(
        plan_errors(&config, &[disk("vda", 20 * GIB)]),
        ["partitions[1]: disk \"/dev/sdb\" is not given; pass --disk /dev/sdb=PATH"]
    );
    assert_eq!(
        plan_errors(
            &config,
            &[
                disk("vda", 20 * GIB),
                disk("sdb", GIB),
                disk("sdc", GIB),
                disk("/dev/vda", GIB)
            ]
        ),
        [
            "--disk sdc: no disk of the config has id \"sdc\"; its disks: \"vda\", \"/dev/sdb\"",
            "--disk /dev/vda: given more than once",
        ]
    );
    // "/dev/" is ignored on either side.
    let plan = plan_ok(&config, &[disk("/dev/vda", 20 * GIB), disk("sdb", GIB)]);
    assert_eq!(plan.disks[1].name, "/dev/sdb");
    assert!(plan.disks[1].partitions.is_empty());
}

#[test]
fn a_first_disk_smaller_than_the_implicit_partitions() {
    let roots = two_images(ROOTS, "");
    assert_eq!(
        plan_errors(&roots, &[disk("vda", 166 * MIB)]),
        [
            "partitions[0]: disk \"vda\" (/dev/vda) is 166 MiB, too small for the GPTs and \
          the bios_grub, ESP and multiboot partitions (167 MiB)"
        ]
    );
    let only_implicit = config(
        r#"{"images": [{"name": "a", "image_pull_url": "/srv/a", "target": "/"}],
            "partitions": [
              {"type": "disk", "id": {"type": "name", "value": "vda"}, "volumes": []},
              {"type": "disk", "id": {"type": "name", "value": "vdb"},
               "volumes": [{"type": "partition", "mount": "/", "file_system": "ext4", "size": "1"}]}]}"#,
    );
    assert_eq!(
        plan_errors(&only_implicit, &[disk("vda", 167 * MIB), disk("vdb", MIB)]),
        ["partitions[1]: disk \"vdb\" (/dev/vdb) is 1 MiB, too small for the GPTs (2 MiB)"]
    );
    let plan = plan_ok(
        &only_implicit,
        &[disk("vda", 167 * MIB), disk("vdb", 3 * MIB)],
    );
    assert_eq!(plan.disks[0].partitions.len(), 3);
    assert_eq!(
        layout(&plan.disks[1]),
        [(1, 1, PartitionKind::LinuxFilesystem)]
    );
}

#[test]
fn no_bootable_image_is_an_error() {
    let config = config(
        r#"{"images": [{"name": "utils", "image_pull_url": "/srv/u", "target": "/opt"}],
            "partitions": [{"type": "disk", "id": {"type": "name", "value": "vda"},
              "volumes": [{"type": "partition", "mount": "/opt", "file_system": "ext4", "size": "10"}]}]}"#,
    );
    assert_eq!(
        plan_errors(&config, &[disk("vda", GIB)]),
        ["images: no image has a volume mounted at \"/\", so none can boot"]
    );
}

#[test]
fn partition_types_names_and_guids() {
    let config = two_images(
        r#"{"type": "boot", "size": "1"},
           {"type": "partition", "mount": "/", "file_system": "ext4", "size": "100", "images": ["centos"],
            "name": "centos-root", "partition_guid": "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"},
           {"type": "partition", "mount": "/", "file_system": "ext4", "size": "100", "images": ["ubuntu"]},
           {"type": "partition", "mount": "/boot/efi", "size": "100", "file_system": "vfat"},
           {"type": "partition", "mount": "/shared", "size": "100", "file_system": "vfat",
            "disk_label": "SHARED"}"#,
        "",
    );
    let plan = plan_ok(&config, &[disk("vda", GIB)]);
    let p = &plan.disks[0].partitions;
    assert_eq!(p[3].kind, PartitionKind::BiosBoot);
    assert!(p[3].legacy_bios_bootable);
    assert_eq!(p[4].name.as_deref(), Some("centos-root"));
    assert_eq!(p[4].partition_uuid, "4f68bce3-e8cd-4db1-96e7-fbcaf984b709");
    assert_eq!(p[5].partition_uuid, part_uuid(6));
    assert_eq!(p[6].kind, PartitionKind::EfiSystem);
    assert_eq!(p[7].kind, PartitionKind::MicrosoftBasicData);
    assert_eq!(p[7].type_guid, "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7");
    let shared = plan.filesystems.last().unwrap();
    assert_eq!(shared.uuid, "0000-0006");
    assert_eq!(shared.label.as_deref(), Some("SHARED"));
    let fstab = &image_layout(&plan, "centos").fstab;
    assert!(
        fstab.contains("\nUUID=0000-0006 /shared vfat defaults 0 2\n"),
        "{fstab}"
    );
    assert!(
        fstab.ends_with("\nUUID=0000-0005 /boot/efi vfat defaults 0 2\n"),
        "{fstab}"
    );
}

#[test]
fn the_lvm_example_is_planned_and_needs_device_mapper() {
    let config = config(include_str!("../../examples/lvm.json"));
    let plan = plan_ok(
        &config,
        &[disk(
            "disk/by-path/pci-0000:00:07.0-virtio-pci-virtio3",
            40 * GIB,
        )],
    );
    assert!(plan.needs_device_mapper);
    assert!(!plan.needs_md);
    let p = &plan.disks[0].partitions;
    assert_eq!(p.len(), 6);
    assert_eq!(p[5].kind, PartitionKind::LinuxLvm);
    // 40960 - 167 - 500 - 500.
    assert_eq!(p[5].size_mib, 39_793);
    let vg = &plan.volume_groups[0];
    assert_eq!(vg.name, "os");
    // lvm_meta_size 64 MiB: the first extent at 65 MiB, (39793 - 65) / 4 extents.
    assert_eq!(vg.physical_volumes[0].metadata_mib, Some(64));
    assert_eq!(vg.physical_volumes[0].pe_start_mib, 65);
    assert_eq!(vg.physical_volumes[0].extents, 9932);
    assert_eq!(vg.size_mib, 39_728);
    let lvs: Vec<(&str, u64)> = vg
        .logical_volumes
        .iter()
        .map(|lv| (lv.name.as_str(), lv.size_mib))
        .collect();
    // 30% of 39728 MiB is 11918.4, 11916 in whole extents; the rest goes to home.
    assert_eq!(
        lvs,
        [
            ("centos_root", 11_916),
            ("ubuntu_root", 11_916),
            ("swap", 2048),
            ("home", 39_728 - 2 * 11_916 - 2048)
        ]
    );
    let centos = image_layout(&plan, "centos");
    let mounts: Vec<(&str, String)> = centos
        .mounts
        .iter()
        .map(|m| (m.mount_point.as_str(), m.device.to_string()))
        .collect();
    let first_disk = "disk/by-path/pci-0000:00:07.0-virtio-pci-virtio3";
    assert_eq!(
        mounts,
        [
            ("/", "os/centos_root".to_string()),
            ("/boot", format!("{first_disk}#4")),
            ("/home", "os/home".to_string()),
        ]
    );
    assert!(centos.separate_boot);
    assert!(centos.fstab.contains(" none swap sw 0 0\n"));
    assert!(centos.fstab.contains(" /home ext4 defaults,noatime 0 2\n"));
}

#[test]
fn a_volume_group_too_small_for_its_volumes() {
    let config = two_images(
        r#"{"type": "partition", "mount": "/", "file_system": "ext4", "size": "100", "images": ["ubuntu"]},
           {"type": "pv", "vg": "os", "size": "164", "lvm_meta_size": "64"}"#,
        r#", {"type": "vg", "id": "os", "volumes": [
               {"type": "lv", "name": "root", "mount": "/", "file_system": "ext4", "size": "101", "images": ["centos"]}]}"#,
    );
    assert_eq!(
        plan_errors(&config, &[disk("vda", GIB)]),
        [
            "partitions[1].volumes[0]: does not fit on volume group \"os\" by 8 MiB: \
          its volumes need 104 MiB, 96 MiB are free"
        ]
    );
}

#[test]
fn the_raid_example_is_planned_and_needs_md() {
    let config = config(include_str!("../../examples/raid.json"));
    let plan = plan_ok(&config, &[disk("sda", 40 * GIB), disk("6:1:0:0", 30 * GIB)]);
    assert!(plan.needs_md);
    assert!(!plan.needs_device_mapper);
    let arrays: Vec<(&str, u64, usize)> = plan
        .raid_arrays
        .iter()
        .map(|a| (a.name.as_str(), a.size_mib, a.members.len()))
        .collect();
    assert_eq!(arrays, [("md0", 10_240, 2), ("md1", 1024, 2)]);
    let debian = plan.layout(&plan.images[0]);
    assert_eq!(
        debian
            .mounts
            .iter()
            .map(|m| m.device.to_string())
            .collect::<Vec<_>>(),
        ["md0", "sda#7"]
    );
    assert!(debian.fstab.contains(" none swap sw 0 0\n"));
    let sdb = &plan.disks[1];
    use PartitionKind::*;
    assert_eq!(
        layout(sdb),
        [
            (1, 10_240, LinuxRaid),
            (10_241, 1024, LinuxRaid),
            (11_265, 15_359, LinuxFilesystem)
        ]
    );
}

#[test]
fn the_json_form_has_every_part() {
    let plan = spec_example();
    let value = crate::render::plan_json(&plan);
    assert_eq!(value["version"], 1);
    assert_eq!(value["disks"][0]["partitions"][2]["purpose"], "multiboot");
    assert_eq!(
        value["disks"][0]["partitions"][3]["purpose"]["volume"],
        "partitions[0].volumes[0]"
    );
    assert_eq!(
        value["disks"][0]["partitions"][2]["kind"],
        "linux_filesystem"
    );
    assert_eq!(
        value["filesystems"][2]["device"],
        serde_json::json!({"kind": "partition", "disk": "vda", "number": 4})
    );
    assert_eq!(value["boot"]["default_image"], "centos");
    assert_eq!(value["needs_device_mapper"], false);
    let error = PlanError {
        subject: Subject::Disk("sdc".into()),
        message: "m".into(),
    };
    assert_eq!(
        serde_json::to_value(&error).unwrap(),
        serde_json::json!({"disk": "sdc", "message": "m"})
    );
}

#[test]
fn tables_never_break_a_uuid_or_a_path() {
    let plan = spec_example();
    let uuids: Vec<&str> = plan.filesystems.iter().map(|fs| fs.uuid.as_str()).collect();
    for width in [None, Some(120), Some(80), Some(40)] {
        let text = crate::render::plan_text(&plan, width);
        for uuid in &uuids {
            assert!(
                text.contains(&format!(" {uuid} ")),
                "{width:?}: {uuid}\n{text}"
            );
        }
        for mount in [" / ", " /usr/share/common "] {
            assert!(text.contains(mount), "{width:?}: {mount}\n{text}");
        }
    }
    let wide = crate::render::plan_text(&plan, None);
    let partition_rows = wide
        .lines()
        .filter(|line| line.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .count();
    assert_eq!(partition_rows, 6, "one line per partition:\n{wide}");
    for line in crate::render::plan_text(&plan, Some(120)).lines() {
        assert!(line.chars().count() <= 120, "{} wide: {line}", line.len());
    }
    let text = crate::render::plan_text(&plan, Some(80));
    assert!(text.contains("Disk vda (/dev/vda, 20480 MiB"));
    assert!(text.contains(
        "multiboot partition: UUID=00000000-0000-4000-a000-000000000002 on vda (/dev/vda)"
    ));
    assert!(text.contains("GRUB for BIOS on: vda\n"));
    assert!(text.contains("  UUID=00000000-0000-4000-a000-000000000004 / ext4 defaults 0 1\n"));
}

#[test]
fn verify_keeps_the_tables_and_the_volumes_that_keep_data() {
    // two_images gives no partitions_policy: Bareon's default, verify; keep_data defaults
    // to true.
    let plan = plan_ok(
        &two_images(
            &format!(
                r#"{ROOTS},
                {{"type": "partition", "mount": "/srv", "file_system": "ext4", "size": "100", "keep_data": false}},
                {{"type": "partition", "mount": "swap", "size": "64"}}"#
            ),
            "",
        ),
        &[disk("vda", 20 * GIB)],
    );
    assert_eq!(plan.partitions_policy, PartitionsPolicy::Verify);
    assert!(plan.keeps_partition_tables());
    let kept: Vec<(String, bool)> = plan
        .filesystems
        .iter()
        .map(|fs| (fs.usage(), fs.keep_data))
        .collect();
    assert_eq!(
        kept,
        [
            ("not mounted".to_owned(), false),
            ("not mounted".to_owned(), false),
            ("/ of centos".to_owned(), true),
            ("/ of ubuntu".to_owned(), true),
            ("/srv of centos".to_owned(), false),
            ("swap of centos".to_owned(), true),
        ],
        "the ESP and the multiboot partition are always made anew"
    );
    let text = crate::render::plan_text(&plan, None);
    assert!(
        text.starts_with(
            "Partitions policy verify: the partition tables must be as planned already\n\
             and are kept. Filesystems that keep their data and their UUIDs:\n  \
             vda#4: / of centos\n  vda#5: / of ubuntu\n  vda#7: swap of centos\n\
             Every other filesystem is made anew.\n\n"
        ),
        "{text}"
    );
    assert!(text.contains(" / (centos), kept\n"), "{text}");
    assert_eq!(
        crate::render::plan_json(&plan)["partitions_policy"],
        "verify"
    );
}

#[test]
fn clean_keeps_nothing_whatever_keep_data_says() {
    let plan = spec_example();
    assert_eq!(plan.partitions_policy, PartitionsPolicy::Clean);
    assert!(!plan.keeps_partition_tables());
    assert!(plan.filesystems.iter().all(|fs| !fs.keep_data));
    assert!(crate::render::plan_text(&plan, None).starts_with(
        "Partitions policy clean: the disks are partitioned and formatted anew;\n\
         no data is kept.\n\n"
    ));
}

#[test]
fn verify_without_kept_data_still_keeps_the_tables() {
    let plan = plan_ok(
        &config(
            r#"{"images": [{"name": "a", "image_pull_url": "/a", "target": "/"}],
                "partitions": [{"type": "disk", "id": {"type": "name", "value": "vda"},
                  "volumes": [{"type": "partition", "mount": "/", "file_system": "ext4", "size": "100",
                               "keep_data": false}]}],
                "partitions_policy": "verify"}"#,
        ),
        &[disk("vda", GIB)],
    );
    assert!(plan.keeps_partition_tables());
    assert!(plan.filesystems.iter().all(|fs| !fs.keep_data));
    assert!(crate::render::plan_text(&plan, None)
        .contains("and are kept. No filesystem keeps its data: every one is made anew.\n"));
}

#[test]
fn volumes_bareon_skips_make_nothing_and_the_others_keep_their_paths() {
    let config = two_images(
        r#"{"type": "lvm_meta_pool", "size": "64"},
           {"type": "partition", "mount": "/srv", "file_system": "ext4", "size": "0"},
           {"type": "partition", "mount": "/", "file_system": "ext4", "size": "100", "images": ["centos"]},
           {"type": "partition", "mount": "/", "size": "300", "images": ["ubuntu"]}"#,
        "",
    );
    let plan = plan_ok(&config, &[disk("vda", GIB)]);
    assert!(!plan.needs_device_mapper);
    let volume = |j| {
        Purpose::Volume(
            JsonPath::root()
                .key("partitions")
                .index(0)
                .key("volumes")
                .index(j),
        )
    };
    let purposes: Vec<Purpose> = plan.disks[0]
        .partitions
        .iter()
        .map(|p| p.purpose.clone())
        .collect();
    assert_eq!(purposes[3..], [volume(2), volume(3)]);
    let types: Vec<FileSystem> = plan.filesystems.iter().map(|f| f.fs_type).collect();
    assert_eq!(
        types[2..],
        [FileSystem::Ext4, FileSystem::Xfs],
        "a mounted volume without file_system is xfs"
    );
}

#[test]
fn xfs_by_default_names_the_default_when_too_small() {
    let config = two_images(
        r#"{"type": "partition", "mount": "/", "size": "100", "images": ["centos"]},
           {"type": "partition", "mount": "/", "size": "200", "file_system": "xfs", "images": ["ubuntu"]}"#,
        "",
    );
    assert_eq!(
        plan_errors(&config, &[disk("vda", GIB)]),
        [
            "partitions[0].volumes[0].size: 100 MiB is too small for xfs, the file system of a \
             mounted volume without \"file_system\" (as in Bareon): mkfs.xfs needs at least 300 \
             MiB; give \"file_system\" (such as \"ext4\") or more space",
            "partitions[0].volumes[1].size: 200 MiB is too small for xfs: mkfs.xfs needs at least \
             300 MiB",
        ]
    );
}
