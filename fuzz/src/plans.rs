use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use deployer::config::{FileSystem, PartitionsPolicy, ProvisionConfig};
use deployer::ondisk::lvm::{LvMeta, PvMeta, VgMetadata};
use deployer::ondisk::md::{MdSuperblock, MemberRole};
use deployer::plan::{
    self, Device, DiskInput, DiskPlan, ExistingDisk, FilesystemPlan, Member, Plan, Purpose,
    SequentialIds, BACKUP_GPT_MIB, FIRST_USABLE_MIB,
};
use deployer::render;
use deployer::sfdisk::{Entry, Table};
use serde_json::Value;
use shared::layout::MULTIBOOT_LABEL;

use crate::check_one_line;
use crate::provision::some_volume_keeps_data;

/// Plans `config` on disks of `size_bytes` each, twice: the same result both times; its
/// errors are one line each; a plan keeps its partitions inside their disk, in order and
/// without overlaps, boots a planned image, and renders.
pub(crate) fn check_plan(config: &ProvisionConfig, size_bytes: u64) {
    let disks: Vec<DiskInput> = config
        .disks()
        .enumerate()
        .map(|(i, disk)| DiskInput {
            name: disk.id.value.clone(),
            path: PathBuf::from(format!("/dev/fuzz{i}")),
            size_bytes,
            sector_size: 512,
            existing: None,
        })
        .collect();
    let first = plan::plan(config, &disks, &mut SequentialIds::default());
    let second = plan::plan(config, &disks, &mut SequentialIds::default());
    assert_eq!(first, second, "two plans of one config differ");
    let plan = match first {
        Ok(plan) => plan,
        Err(errors) => {
            assert!(!errors.is_empty(), "planning failed without an error");
            for error in &errors {
                check_one_line("plan", &error.to_string());
            }
            return;
        }
    };
    check_layout(&plan, size_bytes);
    check_filesystems(config, &plan);
    check_kept_uuids(config, &disks, &plan);
    let json = render::plan_json(&plan);
    assert_eq!(
        json["version"],
        render::JSON_VERSION,
        "plan JSON without its version"
    );
    let text = serde_json::to_string(&json).expect("the plan JSON serialises");
    let again: Value = serde_json::from_str(&text).expect("the plan JSON parses");
    assert_eq!(again, json, "the plan JSON does not read back");
    for width in [None, Some(80)] {
        assert!(
            !render::plan_text(&plan, width).is_empty(),
            "an empty plan text"
        );
    }
}

fn check_layout(plan: &Plan, size_bytes: u64) {
    let last_usable = size_bytes / (1 << 20) - BACKUP_GPT_MIB;
    for disk in &plan.disks {
        let mut next_free = FIRST_USABLE_MIB;
        for (i, partition) in disk.partitions.iter().enumerate() {
            let what = format!("disk {:?} partition {}", disk.name, partition.number);
            assert_eq!(
                partition.number as usize,
                i + 1,
                "{what}: numbered out of order"
            );
            assert!(partition.size_mib > 0, "{what}: empty");
            assert!(
                partition.start_mib >= next_free,
                "{what}: starts at {} MiB, before {next_free} MiB",
                partition.start_mib
            );
            next_free = partition.start_mib + partition.size_mib;
            assert!(
                next_free <= last_usable,
                "{what}: ends at {next_free} MiB, past {last_usable} MiB"
            );
        }
    }
    let mut arrays = HashSet::new();
    for array in &plan.raid_arrays {
        assert!(arrays.insert(&array.name), "md array {} twice", array.name);
    }
    let mut uuids = HashSet::new();
    let mut devices = HashSet::new();
    for fs in &plan.filesystems {
        assert!(uuids.insert(&fs.uuid), "filesystem UUID {} twice", fs.uuid);
        assert!(
            devices.insert(format!("{:?}", fs.device)),
            "two filesystems on {}",
            fs.device
        );
    }
    let boot = &plan.boot;
    assert!(
        boot.entries.contains(&boot.default_image),
        "default image {:?} has no boot entry",
        boot.default_image
    );
    for name in &boot.entries {
        let image = plan.images.iter().find(|image| &image.name == name);
        assert!(
            image.is_some_and(|image| plan.layout(image).root_uuid.is_some()),
            "boot entry {name:?} for an image without /"
        );
    }
    for image in &plan.images {
        let mut mount_points = HashSet::new();
        for mount in &plan.layout(image).mounts {
            assert!(
                mount_points.insert(&mount.mount_point),
                "image {:?} mounts {} twice",
                image.name,
                mount.mount_point
            );
        }
    }
}

/// The smallest filesystem mkfs makes of each type, in MiB: mkfs.xfs (xfsprogs 5.19 and
/// later) refuses anything under 300 MB; the others make filesystems of a few KiB.
fn mkfs_minimum_mib(fs_type: FileSystem) -> u64 {
    match fs_type {
        FileSystem::Xfs => 300,
        _ => 1,
    }
}

/// The size of the block device `device` of `plan`, in MiB.
fn device_size_mib(plan: &Plan, device: &Device) -> u64 {
    let size = match device {
        Device::Partition { disk, number } => plan
            .disks
            .iter()
            .filter(|d| d.name == *disk)
            .flat_map(|d| &d.partitions)
            .find(|p| p.number == *number)
            .map(|p| p.size_mib),
        Device::LogicalVolume { vg, lv } => plan
            .volume_groups
            .iter()
            .filter(|g| g.name == *vg)
            .flat_map(|g| &g.logical_volumes)
            .find(|l| l.name == *lv)
            .map(|l| l.size_mib),
        Device::RaidArray { name } => plan
            .raid_arrays
            .iter()
            .find(|a| a.name == *name)
            .map(|a| a.size_mib),
    };
    size.unwrap_or_else(|| panic!("filesystem on {device}, which the plan does not have"))
}

/// Every filesystem fits its mkfs's minimum; data is kept only from a configured volume
/// that keeps it, never under the `clean` policy; only the multiboot partition has its
/// label; every fstab line has its six fields.
fn check_filesystems(config: &ProvisionConfig, plan: &Plan) {
    assert_eq!(
        plan.partitions_policy, config.partitions_policy,
        "the plan's partitions policy"
    );
    let keeps_any = some_volume_keeps_data(config);
    for fs in &plan.filesystems {
        let size_mib = device_size_mib(plan, &fs.device);
        let minimum = mkfs_minimum_mib(fs.fs_type);
        assert!(
            size_mib >= minimum,
            "{} on {} of {size_mib} MiB, under mkfs's {minimum} MiB",
            fs.fs_type.as_str(),
            fs.device
        );
        if fs.keep_data {
            assert!(
                config.partitions_policy != PartitionsPolicy::Clean,
                "{} keeps its data under the clean policy",
                fs.device
            );
            assert!(
                keeps_any && matches!(fs.purpose, Purpose::Volume(_)),
                "{} keeps its data, which no volume asks for",
                fs.device
            );
        }
        assert_eq!(
            fs.label.as_deref() == Some(MULTIBOOT_LABEL),
            fs.purpose == Purpose::Multiboot,
            "{} is labelled {:?}",
            fs.device,
            fs.label
        );
    }
    for image in &plan.images {
        for line in plan
            .layout(image)
            .fstab
            .lines()
            .filter(|line| !line.starts_with('#'))
        {
            assert_eq!(
                line.split_whitespace().count(),
                6,
                "image {:?}: fstab line {line:?} has not six fields",
                image.name
            );
        }
    }
}

/// What planning onto disks that hold a table and filesystems does (`DiskInput::existing`),
/// under a policy that keeps them: disks holding exactly the plan's own GUIDs and UUIDs
/// give the same plan; given new UUIDs for the kept filesystems on partitions, the plan
/// takes them, and each image's mounts, root, boot and fstab name the new UUID and never
/// the planned one.
fn check_kept_uuids(config: &ProvisionConfig, disks: &[DiskInput], plan: &Plan) {
    if !plan.keeps_partition_tables() {
        return;
    }
    let holding = |uuid_of: &dyn Fn(&FilesystemPlan) -> String| -> Vec<DiskInput> {
        disks
            .iter()
            .zip(&plan.disks)
            .map(|(input, disk)| DiskInput {
                existing: Some(existing_as_planned(plan, disk, uuid_of)),
                ..input.clone()
            })
            .collect()
    };
    let same = plan::plan(
        config,
        &holding(&|fs| fs.uuid.clone()),
        &mut SequentialIds::default(),
    );
    assert_eq!(
        same.as_ref(),
        Ok(plan),
        "disks holding the plan's own GUIDs and UUIDs change it"
    );
    let kept: Vec<(Device, String, String)> = plan
        .filesystems
        .iter()
        .filter(|fs| fs.keep_data && matches!(fs.device, Device::Partition { .. }))
        .enumerate()
        .map(|(i, fs)| {
            let found = format!("f0f0f0f0-0000-4000-8000-{:012x}", i + 1);
            (fs.device.clone(), fs.uuid.clone(), found)
        })
        .collect();
    if kept.is_empty() {
        return;
    }
    let new_uuid = |fs: &FilesystemPlan| {
        kept.iter()
            .find(|(device, _, _)| *device == fs.device)
            .map_or_else(|| fs.uuid.clone(), |(_, _, found)| found.clone())
    };
    let after = plan::plan(config, &holding(&new_uuid), &mut SequentialIds::default())
        .unwrap_or_else(|errors| panic!("disks holding the kept filesystems: {errors:?}"));
    for (device, planned, found) in &kept {
        let fs = after.filesystems.iter().find(|fs| fs.device == *device);
        assert_eq!(
            fs.map(|fs| &fs.uuid),
            Some(found),
            "kept filesystem {device}"
        );
        for image in &after.images {
            let layout = after.layout(image);
            for mount in layout.mounts.iter().filter(|m| m.device == *device) {
                assert_eq!(&mount.uuid, found, "image {:?} mounts {device}", image.name);
            }
            for uuid in [&layout.root_uuid, &layout.boot_uuid].into_iter().flatten() {
                assert_ne!(uuid, planned, "image {:?} boots {device}", image.name);
            }
            assert!(
                !layout.fstab.contains(&format!("UUID={planned} ")),
                "image {:?}: fstab names {device} by its planned UUID",
                image.name
            );
        }
    }
}

/// What `disk` holds once deployed as `plan` says: its table as sfdisk reports it, each
/// partition's filesystem as blkid does, with the UUID `uuid_of` gives, and the metadata
/// of its md members and physical volumes.
fn existing_as_planned(
    plan: &Plan,
    disk: &DiskPlan,
    uuid_of: &dyn Fn(&FilesystemPlan) -> String,
) -> ExistingDisk {
    let sectors = |mib: u64| mib * 2048;
    let partitions = disk
        .partitions
        .iter()
        .map(|p| Entry {
            node: format!("{}p{}", disk.path.display(), p.number),
            start: sectors(p.start_mib),
            size: sectors(p.size_mib),
            type_guid: p.type_guid.to_owned(),
            uuid: Some(p.partition_uuid.to_uppercase()),
            name: p.name.clone(),
            attrs: None,
        })
        .collect();
    let probe = |device: &Device| {
        let mut found = BTreeMap::new();
        if let Some(fs) = plan.filesystems.iter().find(|fs| fs.device == *device) {
            found.insert("TYPE".to_owned(), fs.fs_type.as_str().to_owned());
            found.insert("UUID".to_owned(), uuid_of(fs));
            if let Some(label) = &fs.label {
                found.insert("LABEL".to_owned(), label.clone());
            }
        }
        found
    };
    let filesystems = disk
        .partitions
        .iter()
        .map(|p| {
            let device = Device::Partition {
                disk: disk.name.clone(),
                number: p.number,
            };
            (p.number, Ok(probe(&device)))
        })
        .collect();
    let on_disk = |device: &Device| match device {
        Device::Partition { disk: name, number } if *name == disk.name => Some(*number),
        _ => None,
    };
    let mut members = BTreeMap::new();
    for array in &plan.raid_arrays {
        let device = Device::RaidArray {
            name: array.name.clone(),
        };
        for number in array.members.iter().filter_map(on_disk) {
            let superblock = MdSuperblock {
                uuid: array.uuid.clone(),
                device_uuid: String::new(),
                name: array.name.clone(),
                level: 1,
                raid_disks: array.members.len() as u32,
                role: MemberRole::Active(0),
                events: 1,
                data_offset_bytes: 1 << 20,
                data_size_bytes: array.size_mib << 20,
                used_size_bytes: array.size_mib << 20,
            };
            let filesystem = Ok(probe(&device));
            members.insert(
                number,
                Ok(Member::Md {
                    superblock,
                    filesystem,
                }),
            );
        }
    }
    for vg in &plan.volume_groups {
        let pv_id = |i: usize| format!("{}-pv{i}", vg.name);
        let metadata = VgMetadata {
            name: vg.name.clone(),
            id: format!("{}-id", vg.name),
            seqno: 1,
            extent_bytes: 4 << 20,
            pvs: vg
                .physical_volumes
                .iter()
                .enumerate()
                .map(|(i, pv)| PvMeta {
                    key: format!("pv{i}"),
                    id: pv_id(i),
                    pe_start_bytes: pv.pe_start_mib << 20,
                    pe_count: pv.extents,
                })
                .collect(),
            lvs: vg
                .logical_volumes
                .iter()
                .map(|lv| LvMeta {
                    name: lv.name.clone(),
                    extents: lv.size_mib / 4,
                    first_extent: Some(("pv0".to_owned(), 0)),
                    segment_type: "striped".to_owned(),
                    stripe_count: 1,
                    visible: true,
                })
                .collect(),
        };
        for (i, pv) in vg.physical_volumes.iter().enumerate() {
            let Some(number) = on_disk(&pv.device) else {
                continue;
            };
            // Every logical volume starts on the first physical volume.
            let filesystems = if i == 0 {
                vg.logical_volumes
                    .iter()
                    .map(|lv| {
                        let device = Device::LogicalVolume {
                            vg: vg.name.clone(),
                            lv: lv.name.clone(),
                        };
                        (lv.name.clone(), Ok(probe(&device)))
                    })
                    .collect()
            } else {
                BTreeMap::new()
            };
            let member = Member::Pv {
                pv_id: pv_id(i),
                vg: Some(metadata.clone()),
                filesystems,
            };
            members.insert(number, Ok(member));
        }
    }
    ExistingDisk::Table {
        table: Table {
            label: "gpt".to_owned(),
            firstlba: Some(sectors(FIRST_USABLE_MIB)),
            sectorsize: Some(512),
            partitions,
        },
        filesystems,
        members,
    }
}
