//! Under a policy that keeps the partition tables, the md arrays and volume groups the
//! disks already hold, as their metadata says ([`Member`], read before planning): an
//! array or volume group with a filesystem that keeps its data is kept (assembled or
//! activated, not made again) when it is exactly as planned, else refused; one without is
//! made anew. Either way the arrays keep their UUIDs and the filesystems made anew the
//! UUIDs of the filesystems of their type they replace, as on partitions
//! ([`super::existing`]), so that what a kept image names stays true.

use std::collections::{BTreeMap, BTreeSet};

use crate::ondisk::lvm::VgMetadata;
use crate::plan::input::{DiskInput, ExistingDisk, Member, Probe};

use super::existing::judge_filesystem;
use super::model::{Device, Plan, Purpose, RaidArrayPlan, VolumeGroupPlan};
use super::{names_disk, PlanError};
use crate::size::MIB;

/// The metadata read on partition `device` of `disks`, if it was read.
fn member_on<'a>(disks: &'a [DiskInput], device: &Device) -> Option<&'a Result<Member, String>> {
    let Device::Partition { disk, number } = device else {
        return None;
    };
    let input = disks.iter().find(|input| names_disk(&input.name, disk))?;
    match &input.existing {
        Some(ExistingDisk::Table { members, .. }) => members.get(number),
        _ => None,
    }
}

/// Whether any disk was read: without, nothing is known and everything is planned anew.
fn read_any(disks: &[DiskInput]) -> bool {
    disks
        .iter()
        .any(|input| matches!(input.existing, Some(ExistingDisk::Table { .. })))
}

/// The array on `array`'s members: its UUID and what is found where its data starts, or
/// why the members do not hold it.
fn found_array(disks: &[DiskInput], array: &RaidArrayPlan) -> Result<(String, Probe), String> {
    let mut found: Option<(String, Probe)> = None;
    for device in &array.members {
        let (superblock, filesystem) = match member_on(disks, device) {
            Some(Ok(Member::Md {
                superblock,
                filesystem,
            })) => (superblock, filesystem),
            Some(Err(why)) => return Err(why.clone()),
            _ => return Err(format!("{device} is not an md member")),
        };
        if superblock.level != 1 || superblock.raid_disks as usize != array.members.len() {
            return Err(format!(
                "{device} is a member of a level {} array of {} devices, the plan has RAID1 \
                 of {}",
                superblock.level,
                superblock.raid_disks,
                array.members.len()
            ));
        }
        match &found {
            Some((uuid, _)) if *uuid != superblock.uuid => {
                return Err(format!(
                    "its members belong to different arrays ({uuid}, {})",
                    superblock.uuid
                ))
            }
            Some(_) => {}
            None => found = Some((superblock.uuid.clone(), filesystem.clone())),
        }
    }
    found.ok_or_else(|| "it has no members".to_owned())
}

/// The volume group on `vg`'s physical volumes as its newest metadata says, with what is
/// found at the start of each of its logical volumes, or why the volumes do not hold it
/// as planned.
fn found_group(
    disks: &[DiskInput],
    vg: &VolumeGroupPlan,
) -> Result<(VgMetadata, BTreeMap<String, Probe>), String> {
    let mut newest: Option<&VgMetadata> = None;
    let mut ids = BTreeSet::new();
    let mut probes = BTreeMap::new();
    for pv in &vg.physical_volumes {
        let (pv_id, metadata, filesystems) = match member_on(disks, &pv.device) {
            Some(Ok(Member::Pv {
                pv_id,
                vg: Some(metadata),
                filesystems,
            })) => (pv_id, metadata, filesystems),
            Some(Ok(Member::Pv { vg: None, .. })) => {
                return Err(format!("{} is in no volume group", pv.device))
            }
            Some(Err(why)) => return Err(why.clone()),
            _ => return Err(format!("{} is not a physical volume", pv.device)),
        };
        ids.insert(pv_id.clone());
        probes.extend(filesystems.clone());
        if newest.is_none_or(|n| metadata.seqno > n.seqno) {
            newest = Some(metadata);
        }
    }
    let metadata = newest.ok_or("it has no physical volumes")?.clone();
    if metadata.name != vg.name {
        return Err(format!(
            "its physical volumes are in volume group {}",
            metadata.name
        ));
    }
    let listed: BTreeSet<String> = metadata.pvs.iter().map(|pv| pv.id.clone()).collect();
    if listed != ids {
        return Err(format!(
            "volume group {} has {} physical volumes, the plan {}",
            metadata.name,
            listed.len(),
            ids.len()
        ));
    }
    for lv in &vg.logical_volumes {
        let Some(found) = metadata.lvs.iter().find(|l| l.visible && l.name == lv.name) else {
            return Err(format!("it has no logical volume {}", lv.name));
        };
        let size = found.extents * metadata.extent_bytes;
        if size != lv.size_mib * MIB || found.first_extent.is_none() {
            return Err(format!(
                "logical volume {} is {} MiB ({}), the plan has a linear one of {} MiB",
                lv.name,
                size / MIB,
                found.segment_type,
                lv.size_mib
            ));
        }
    }
    if let Some(extra) = metadata
        .lvs
        .iter()
        .find(|l| l.visible && !vg.logical_volumes.iter().any(|lv| lv.name == l.name))
    {
        return Err(format!(
            "it has logical volume {}, which the config does not",
            extra.name
        ));
    }
    Ok((metadata, probes))
}

/// Takes the disks' arrays and volume groups into `plan` (see the module); the errors
/// name each kept filesystem whose array or volume group is not as planned. An array or
/// volume group with a filesystem that keeps its data is marked kept even when the disks
/// were not read (then deploying finds out).
pub(super) fn keep_existing_stack(plan: &mut Plan, disks: &[DiskInput]) -> Vec<PlanError> {
    let errors = if read_any(disks) {
        judge(plan, disks)
    } else {
        Vec::new()
    };
    let kept: Vec<Device> = plan
        .filesystems
        .iter()
        .filter(|fs| fs.keep_data)
        .map(|fs| fs.device.clone())
        .collect();
    for array in &mut plan.raid_arrays {
        array.keep = kept.contains(&Device::RaidArray {
            name: array.name.clone(),
        });
    }
    for vg in &mut plan.volume_groups {
        vg.keep = vg.logical_volumes.iter().any(|lv| {
            kept.contains(&Device::LogicalVolume {
                vg: vg.name.clone(),
                lv: lv.name.clone(),
            })
        });
    }
    errors
}

/// The arrays' UUIDs and the filesystems' UUIDs from what the disks hold; the errors of
/// the kept filesystems.
fn judge(plan: &mut Plan, disks: &[DiskInput]) -> Vec<PlanError> {
    let mut errors = Vec::new();
    let mut filesystems: Vec<(Device, Probe)> = Vec::new();
    let mut refused: Vec<(Device, String)> = Vec::new();
    for array in &mut plan.raid_arrays {
        let device = Device::RaidArray {
            name: array.name.clone(),
        };
        match found_array(disks, array) {
            Ok((uuid, probe)) => {
                array.uuid = uuid;
                filesystems.push((device, probe));
            }
            Err(why) => refused.push((device, why)),
        }
    }
    for vg in &plan.volume_groups {
        match found_group(disks, vg) {
            Ok((_, probes)) => filesystems.extend(probes.into_iter().map(|(lv, probe)| {
                let device = Device::LogicalVolume {
                    vg: vg.name.clone(),
                    lv,
                };
                (device, probe)
            })),
            Err(why) => refused.extend(vg.logical_volumes.iter().map(|lv| {
                let device = Device::LogicalVolume {
                    vg: vg.name.clone(),
                    lv: lv.name.clone(),
                };
                (device, why.clone())
            })),
        }
    }
    let on_stack = |device: &Device| !matches!(device, Device::Partition { .. });
    for fs in plan
        .filesystems
        .iter_mut()
        .filter(|fs| on_stack(&fs.device))
    {
        let found = filesystems.iter().find(|(device, _)| *device == fs.device);
        let judged = match (fs.keep_data, found) {
            (false, Some((_, Ok(found)))) => {
                // Made anew: the UUID of what it replaces, if of its type.
                if found.get("TYPE").map(String::as_str) == Some(fs.fs_type.as_str()) {
                    if let Some(uuid) = found.get("UUID") {
                        fs.uuid = uuid.clone();
                    }
                }
                continue;
            }
            (false, _) => continue,
            (true, Some((_, found))) => found
                .clone()
                .and_then(|found| judge_filesystem(fs, &found).map_err(|why| format!("it {why}"))),
            (true, None) => Err(refused
                .iter()
                .find(|(device, _)| *device == fs.device)
                .map_or_else(|| "it was not found".to_owned(), |(_, why)| why.clone())),
        };
        match judged {
            Ok(uuid) => fs.uuid = uuid,
            Err(why) => {
                if let Purpose::Volume(path) = &fs.purpose {
                    errors.push(PlanError::at(
                        path,
                        format!(
                            "{} ({}) keeps its data (keep_data), but {why}",
                            fs.device,
                            fs.usage()
                        ),
                    ));
                }
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ondisk::lvm::{LvMeta, PvMeta};
    use crate::ondisk::md::{MdSuperblock, MemberRole};
    use crate::plan::tests::{config, disk, plan_ok};
    use crate::sfdisk::Table;

    const ARRAY: &str = "5d6c2a51-0e3b-4a5f-9b43-6c1f0a8e7d21";

    /// alpha: `/` on vda#1 (made anew); beta: `/` on `os/root` (kept), over a physical
    /// volume on each disk; `/srv` of both on a RAID1 of a partition of each (kept).
    fn planned() -> Plan {
        let text = r#"{"images": [{"name": "alpha", "image_pull_url": "/a", "target": "/"},
                                  {"name": "beta", "image_pull_url": "/b", "target": "/"}],
            "partitions": [
              {"type": "disk", "id": {"type": "name", "value": "vda"}, "volumes": [
                {"type": "partition", "mount": "/", "file_system": "ext4", "size": "100",
                 "images": ["alpha"], "keep_data": false},
                {"type": "pv", "vg": "os", "size": "200"},
                {"type": "raid", "mount": "/srv", "file_system": "ext4", "size": "50",
                 "images": ["alpha", "beta"]}]},
              {"type": "disk", "id": {"type": "name", "value": "vdb"}, "volumes": [
                {"type": "pv", "vg": "os", "size": "200"},
                {"type": "raid", "mount": "/srv", "file_system": "ext4", "size": "50",
                 "images": ["alpha", "beta"]}]},
              {"type": "vg", "id": "os", "volumes": [
                {"type": "lv", "name": "root", "mount": "/", "file_system": "ext4", "size": "300",
                 "images": ["beta"]}]}],
            "partitions_policy": "verify"}"#;
        plan_ok(&config(text), &[disk("vda", 1 << 30), disk("vdb", 1 << 30)])
    }

    fn ext4(uuid: &str) -> Probe {
        Ok(BTreeMap::from([
            ("TYPE".to_owned(), "ext4".to_owned()),
            ("UUID".to_owned(), uuid.to_owned()),
        ]))
    }

    fn md(filesystem: Probe) -> Result<Member, String> {
        Ok(Member::Md {
            superblock: MdSuperblock {
                uuid: ARRAY.to_owned(),
                device_uuid: String::new(),
                name: "ramdisk:md0".to_owned(),
                level: 1,
                raid_disks: 2,
                role: MemberRole::Active(0),
                events: 20,
                data_offset_bytes: 1 << 20,
                data_size_bytes: 48 << 20,
                used_size_bytes: 48 << 20,
            },
            filesystem,
        })
    }

    /// Volume group `os` over pv0 (id `A`) and pv1 (`B`), `root` of `root_mib`, starting
    /// on pv0.
    fn pv(id: &str, root_mib: u64, root: Option<Probe>) -> Result<Member, String> {
        let pv = |key: &str, id: &str| PvMeta {
            key: key.to_owned(),
            id: id.to_owned(),
            pe_start_bytes: 1 << 20,
            pe_count: 49,
        };
        Ok(Member::Pv {
            pv_id: id.to_owned(),
            vg: Some(VgMetadata {
                name: "os".to_owned(),
                id: "vg".to_owned(),
                seqno: 3,
                extent_bytes: 4 << 20,
                pvs: vec![pv("pv0", "A"), pv("pv1", "B")],
                lvs: vec![LvMeta {
                    name: "root".to_owned(),
                    extents: root_mib / 4,
                    first_extent: Some(("pv0".to_owned(), 0)),
                    segment_type: "striped".to_owned(),
                    stripe_count: 1,
                    visible: true,
                }],
            }),
            filesystems: root
                .map(|probe| BTreeMap::from([("root".to_owned(), probe)]))
                .unwrap_or_default(),
        })
    }

    /// The disks holding, on vda#2 and vdb#1 the physical volumes, on vda#3 and vdb#2
    /// the array's members.
    fn disks(vda: [Result<Member, String>; 2], vdb: [Result<Member, String>; 2]) -> Vec<DiskInput> {
        let read = |name: &str, members: BTreeMap<u32, Result<Member, String>>| DiskInput {
            existing: Some(ExistingDisk::Table {
                table: Table {
                    label: "gpt".to_owned(),
                    firstlba: None,
                    sectorsize: None,
                    partitions: Vec::new(),
                },
                filesystems: BTreeMap::new(),
                members,
            }),
            ..disk(name, 1 << 30)
        };
        let [pv_a, md_a] = vda;
        let [pv_b, md_b] = vdb;
        let (pv_a_number, md_a_number) = numbers(&planned(), "vda");
        let (pv_b_number, md_b_number) = numbers(&planned(), "vdb");
        vec![
            read(
                "vda",
                BTreeMap::from([(pv_a_number, pv_a), (md_a_number, md_a)]),
            ),
            read(
                "vdb",
                BTreeMap::from([(pv_b_number, pv_b), (md_b_number, md_b)]),
            ),
        ]
    }

    /// The numbers of disk `name`'s physical volume and array member in the plan.
    fn numbers(plan: &Plan, name: &str) -> (u32, u32) {
        let number_of = |devices: Vec<&Device>| {
            devices
                .into_iter()
                .find_map(|device| match device {
                    Device::Partition { disk, number } if disk == name => Some(*number),
                    _ => None,
                })
                .expect("a partition on the disk")
        };
        let pvs = plan.volume_groups[0]
            .physical_volumes
            .iter()
            .map(|pv| &pv.device)
            .collect();
        (
            number_of(pvs),
            number_of(plan.raid_arrays[0].members.iter().collect()),
        )
    }

    fn uuid_at(plan: &Plan, mount: &str, image: &str) -> String {
        plan.filesystems
            .iter()
            .find(|fs| {
                fs.usage().starts_with(&format!("{mount} of"))
                    && fs.images.contains(&image.to_owned())
            })
            .map(|fs| fs.uuid.clone())
            .expect("a filesystem")
    }

    #[test]
    fn a_volume_group_and_an_array_as_planned_are_kept_with_their_uuids() {
        let mut plan = planned();
        let disks = disks(
            [pv("A", 300, Some(ext4("beta-root"))), md(ext4("srv"))],
            [pv("B", 300, None), md(ext4("srv"))],
        );
        assert_eq!(keep_existing_stack(&mut plan, &disks), []);
        assert!(plan.volume_groups[0].keep && plan.raid_arrays[0].keep);
        assert_eq!(plan.raid_arrays[0].uuid, ARRAY);
        assert_eq!(uuid_at(&plan, "/", "beta"), "beta-root");
        assert_eq!(uuid_at(&plan, "/srv", "alpha"), "srv");
    }

    #[test]
    fn what_is_not_as_planned_is_refused_for_the_kept_filesystem_on_it() {
        let errors = |disks: Vec<DiskInput>| -> Vec<String> {
            keep_existing_stack(&mut planned(), &disks)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            errors(disks(
                [pv("A", 200, Some(ext4("r"))), md(ext4("srv"))],
                [
                    pv("B", 200, None),
                    Err("partition 2 of vdb.img: bad superblock".to_owned())
                ],
            )),
            [
                "partitions[0].volumes[2]: md0 (/srv of alpha, beta) keeps its data \
                 (keep_data), but partition 2 of vdb.img: bad superblock",
                "partitions[2].volumes[0]: os/root (/ of beta) keeps its data (keep_data), \
                 but logical volume root is 200 MiB (striped), the plan has a linear one of \
                 300 MiB"
            ]
        );
        let no_fs = Ok(BTreeMap::new());
        assert_eq!(
            errors(disks(
                [pv("A", 300, Some(no_fs)), md(ext4("srv"))],
                [pv("B", 300, None), md(ext4("srv"))],
            )),
            [
                "partitions[2].volumes[0]: os/root (/ of beta) keeps its data (keep_data), but \
              it holds no filesystem, the plan keeps ext4"
            ]
        );
    }

    #[test]
    fn made_anew_they_keep_the_uuids_of_what_they_replace() {
        let made_anew = || {
            let mut plan = planned();
            for fs in &mut plan.filesystems {
                fs.keep_data = false;
            }
            plan
        };
        let mut plan = made_anew();
        let disks = disks(
            [pv("A", 300, Some(ext4("old-root"))), md(ext4("old-srv"))],
            [pv("B", 300, None), md(ext4("old-srv"))],
        );
        assert_eq!(keep_existing_stack(&mut plan, &disks), []);
        assert!(!plan.volume_groups[0].keep && !plan.raid_arrays[0].keep);
        assert_eq!(plan.raid_arrays[0].uuid, ARRAY);
        assert_eq!(uuid_at(&plan, "/", "beta"), "old-root");
        assert_eq!(uuid_at(&plan, "/srv", "beta"), "old-srv");
    }
}
