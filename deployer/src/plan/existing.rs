//! A policy that keeps the partition tables (`verify`, or `nailgun_legacy` with a
//! filesystem that keeps its data; see [`Plan::keeps_partition_tables`]) plans what the
//! disks already hold: every disk's table must be as planned, its partitions keep their
//! unique GUIDs, and every filesystem whose volume keeps its data must be there, of the
//! planned type, with the configured label if any, and keeps its UUID. A filesystem made
//! anew takes the UUID of the filesystem of its type it replaces.
//!
//! This is Bareon's `verify`: compare the schema with the disks and refuse them when they
//! differ. Bareon's `nailgun_legacy` skips partitioning without a check when a
//! filesystem keeps its data; here it is checked the same way, since a filesystem kept on
//! a table that is not as planned would be mounted from the wrong place.

use std::collections::BTreeMap;

use super::kept_stack::keep_existing_stack;
use super::table::check_kept;
use crate::text::quote;

use super::input::{DiskInput, ExistingDisk};
use super::model::{Device, FilesystemPlan, Plan, Purpose};
use super::{names_disk, PlanError};

/// Takes into `plan` the partition GUIDs and the kept filesystems' UUIDs that `disks`
/// hold, or returns why the disks cannot be kept: per disk its first mismatch with the
/// plan, per kept filesystem what is wrong with it. Disks whose state was not read are
/// planned as they are.
pub(super) fn keep_existing(plan: &mut Plan, disks: &[DiskInput]) -> Vec<PlanError> {
    let mut errors = Vec::new();
    if !plan.keeps_partition_tables() {
        return errors;
    }
    let policy = plan.partitions_policy.as_str();
    for disk in &mut plan.disks {
        let Some(existing) = disks
            .iter()
            .find(|input| names_disk(&input.name, &disk.name))
            .and_then(|input| input.existing.as_ref())
        else {
            continue;
        };
        let found = match existing {
            ExistingDisk::Missing => Err("it does not exist".to_owned()),
            ExistingDisk::NoTable(why) => Err(why.clone()),
            ExistingDisk::Table {
                table, filesystems, ..
            } => check_kept(disk, table)
                .map(|guids| (guids, filesystems))
                .map_err(|mismatches| {
                    let more = match mismatches.len() {
                        1 => String::new(),
                        n => format!(" (and {} more differences)", n - 1),
                    };
                    format!("it is not as planned: {}{more}", mismatches[0])
                }),
        };
        let (guids, found_filesystems) = match found {
            Ok(found) => found,
            Err(why) => {
                errors.push(PlanError::at(
                    &disk.config_path,
                    format!(
                        "disk {} ({}): partitions_policy {policy} keeps the partition table, \
                         but {why}; \"partitions_policy\": \"clean\" partitions the disk anew",
                        quote(&disk.name),
                        disk.path.display()
                    ),
                ));
                continue;
            }
        };
        for partition in &mut disk.partitions {
            if let Some((_, guid)) = guids.iter().find(|(number, _)| *number == partition.number) {
                partition.partition_uuid = guid.to_lowercase();
            }
        }
        for fs in plan.filesystems.iter_mut().filter(|fs| !fs.keep_data) {
            if let Some(uuid) = replaced_uuid(fs, &disk.name, found_filesystems) {
                fs.uuid = uuid;
            }
        }
        for fs in plan.filesystems.iter_mut().filter(|fs| fs.keep_data) {
            let Device::Partition { disk: name, number } = &fs.device else {
                continue;
            };
            if *name != disk.name {
                continue;
            }
            let nothing = Ok(BTreeMap::new());
            let kept = found_filesystems
                .get(number)
                .unwrap_or(&nothing)
                .clone()
                .and_then(|found| judge_filesystem(fs, &found).map_err(|why| format!("it {why}")));
            match kept {
                Ok(uuid) => fs.uuid = uuid,
                Err(why) => {
                    let at = match &fs.purpose {
                        Purpose::Volume(path) => path.clone(),
                        _ => disk.config_path.clone(),
                    };
                    errors.push(PlanError::at(
                        &at,
                        format!(
                            "partition {} ({}) keeps its data (keep_data), but {why}",
                            fs.device,
                            fs.usage()
                        ),
                    ));
                }
            }
        }
    }
    errors.extend(keep_existing_stack(plan, disks));
    errors
}

/// The UUID a filesystem made anew on disk `disk` takes over from the filesystem of the same
/// type it replaces (`found`: what `blkid -p` read on each partition), so that what names
/// it and is kept stays true: the fstab and `root=UUID=` of an image whose `/` is kept, and
/// the multiboot partition's UUID in the boot-info.json copy of such an image.
fn replaced_uuid(
    fs: &FilesystemPlan,
    disk: &str,
    found: &BTreeMap<u32, Result<BTreeMap<String, String>, String>>,
) -> Option<String> {
    let Device::Partition { disk: name, number } = &fs.device else {
        return None;
    };
    let found = found.get(number)?.as_ref().ok().filter(|_| name == disk)?;
    (found.get("TYPE").map(String::as_str) == Some(fs.fs_type.as_str()))
        .then(|| found.get("UUID").cloned())
        .flatten()
}

/// The UUID of the filesystem `found` (`blkid -p`'s `KEY=value` pairs) that `fs` keeps: it
/// must be of the planned type and carry the configured label, if any. The error is a
/// phrase: "holds xfs, the plan keeps ext4".
pub fn judge_filesystem(
    fs: &FilesystemPlan,
    found: &BTreeMap<String, String>,
) -> Result<String, String> {
    let wanted = fs.fs_type.as_str();
    let Some(found_type) = found.get("TYPE") else {
        return Err(format!("holds no filesystem, the plan keeps {wanted}"));
    };
    if found_type != wanted {
        return Err(format!("holds {found_type}, the plan keeps {wanted}"));
    }
    if let Some(label) = &fs.label {
        let found_label = found.get("LABEL");
        if found_label != Some(label) {
            return Err(format!(
                "its label is {}, the config says {label:?}",
                found_label.map_or_else(|| "none".to_owned(), |l| format!("{l:?}"))
            ));
        }
    }
    found
        .get("UUID")
        .cloned()
        .ok_or_else(|| format!("its {wanted} has no UUID to name it by"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mount;
    use crate::plan::{plan, SequentialIds};
    use crate::sfdisk::{Entry, Table};
    use crate::validate::validate;

    /// alpha's `/` (keeps its data by default) and a `/srv` whose data is not kept.
    const VERIFY: &str = r#"{
        "images": [{"name": "alpha", "image_pull_url": "/a", "target": "/"}],
        "partitions": [{"type": "disk", "id": {"type": "name", "value": "vda"}, "volumes": [
            {"type": "partition", "mount": "/", "file_system": "ext4", "size": "100", "disk_label": "root"},
            {"type": "partition", "mount": "/srv", "file_system": "ext4", "size": "50", "keep_data": false},
            {"type": "partition", "mount": "swap", "size": "16"}]}],
        "partitions_policy": "verify"}"#;

    fn disk(existing: Option<ExistingDisk>) -> DiskInput {
        DiskInput {
            name: "vda".to_owned(),
            path: "/dev/vda".into(),
            size_bytes: 1 << 30,
            sector_size: 512,
            existing,
        }
    }

    fn plan_of(config: &str, existing: Option<ExistingDisk>) -> Result<Plan, Vec<PlanError>> {
        let config = validate(config).unwrap_or_else(|e| panic!("invalid config: {e:?}"));
        plan(&config, &[disk(existing)], &mut SequentialIds::default())
    }

    /// The table sfdisk reports of the disk as planned, its GUIDs in upper case and the
    /// partition numbered `renumbered` (if any) moved one MiB on.
    fn table_of(plan: &Plan, moved: Option<u32>) -> Table {
        let disk = &plan.disks[0];
        Table {
            label: "gpt".to_owned(),
            firstlba: Some(2048),
            sectorsize: Some(512),
            partitions: disk
                .partitions
                .iter()
                .map(|p| Entry {
                    node: format!("/dev/vda{}", p.number),
                    start: (p.start_mib + u64::from(moved == Some(p.number))) * 2048,
                    size: p.size_mib * 2048,
                    type_guid: p.type_guid.to_owned(),
                    uuid: Some(p.partition_uuid.replace("-4000-", "-4444-").to_uppercase()),
                    name: p.name.clone(),
                    attrs: None,
                })
                .collect(),
        }
    }

    fn found(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn root(plan: &Plan) -> &FilesystemPlan {
        plan.filesystems
            .iter()
            .find(|fs| fs.mount == Mount::Path("/".to_owned()))
            .expect("a / filesystem")
    }

    #[test]
    fn a_kept_filesystem_of_the_planned_type_and_label_gives_its_uuid() {
        let plan = plan_of(VERIFY, None).unwrap();
        let uuid = judge_filesystem(
            root(&plan),
            &found(&[("TYPE", "ext4"), ("LABEL", "root"), ("UUID", "u-1")]),
        );
        assert_eq!(uuid, Ok("u-1".to_owned()));
    }

    #[test]
    fn another_type_no_filesystem_or_another_label_is_named() {
        let plan = plan_of(VERIFY, None).unwrap();
        let fs = root(&plan);
        assert_eq!(
            judge_filesystem(fs, &found(&[("TYPE", "xfs"), ("UUID", "u")])),
            Err("holds xfs, the plan keeps ext4".to_owned())
        );
        assert_eq!(
            judge_filesystem(fs, &BTreeMap::new()),
            Err("holds no filesystem, the plan keeps ext4".to_owned())
        );
        assert_eq!(
            judge_filesystem(fs, &found(&[("TYPE", "ext4"), ("UUID", "u")])),
            Err("its label is none, the config says \"root\"".to_owned())
        );
        assert_eq!(
            judge_filesystem(fs, &found(&[("TYPE", "ext4"), ("LABEL", "data")])),
            Err("its label is \"data\", the config says \"root\"".to_owned())
        );
        assert_eq!(
            judge_filesystem(fs, &found(&[("TYPE", "ext4"), ("LABEL", "root")])),
            Err("its ext4 has no UUID to name it by".to_owned())
        );
    }

    #[test]
    fn only_volumes_that_keep_data_under_a_keeping_policy_are_kept() {
        let plan = plan_of(VERIFY, None).unwrap();
        assert!(plan.keeps_partition_tables());
        let kept: Vec<String> = plan
            .filesystems
            .iter()
            .filter(|fs| fs.keep_data)
            .map(FilesystemPlan::usage)
            .collect();
        assert_eq!(kept, ["/ of alpha", "swap of alpha"]);
        let clean = plan_of(&VERIFY.replace("\"verify\"", "\"clean\""), None).unwrap();
        assert!(!clean.keeps_partition_tables());
        assert!(clean.filesystems.iter().all(|fs| !fs.keep_data));
        let legacy = VERIFY.replace("\"verify\"", "\"nailgun_legacy\"");
        assert!(plan_of(&legacy, None).unwrap().keeps_partition_tables());
        let legacy_without = legacy
            .replace(
                "\"size\": \"100\",",
                "\"size\": \"100\", \"keep_data\": false,",
            )
            .replace("\"size\": \"16\"", "\"size\": \"16\", \"keep_data\": false");
        let plan = plan_of(&legacy_without, Some(ExistingDisk::Missing)).unwrap();
        assert!(
            !plan.keeps_partition_tables(),
            "planned as clean: the missing disk does not matter"
        );
    }

    #[test]
    fn the_plan_takes_the_guids_and_uuids_the_disk_holds() {
        let planned = plan_of(VERIFY, None).unwrap();
        // Whatever the default filesystem is.
        let srv_type = planned
            .filesystems
            .iter()
            .find(|fs| fs.mount == Mount::Path("/srv".to_owned()))
            .map(|fs| fs.fs_type.as_str())
            .unwrap();
        let held = "11111111-2222-4333-8444-555555555555";
        let filesystems = BTreeMap::from([
            (
                4,
                Ok(found(&[
                    ("TYPE", "ext4"),
                    ("LABEL", "root"),
                    ("UUID", held),
                ])),
            ),
            (
                5,
                Ok(found(&[("TYPE", srv_type), ("UUID", "srv-is-made-anew")])),
            ),
            (6, Ok(found(&[("TYPE", "swap"), ("UUID", "swap-uuid")]))),
        ]);
        let existing = ExistingDisk::Table {
            table: table_of(&planned, None),
            members: BTreeMap::new(),
            filesystems,
        };
        let kept = plan_of(VERIFY, Some(existing)).unwrap();
        let layout = kept.layout(&kept.images[0]);
        assert_eq!(layout.root_uuid.as_deref(), Some(held));
        assert_eq!(layout.boot_uuid, layout.root_uuid);
        assert!(layout
            .fstab
            .contains(&format!("UUID={held} / ext4 defaults 0 1\n")));
        assert!(layout.fstab.contains("UUID=swap-uuid none swap sw 0 0\n"));
        assert!(!layout.fstab.contains(&root(&planned).uuid));
        assert_eq!(layout.mounts[0].uuid, held);
        assert_eq!(
            kept.disks[0].partitions[3].partition_uuid,
            "00000000-0000-4444-b000-000000000004"
        );
        let srv = |p: &Plan| {
            p.filesystems
                .iter()
                .find(|fs| fs.mount == Mount::Path("/srv".to_owned()))
                .map(|fs| fs.uuid.clone())
        };
        assert_eq!(
            srv(&kept).as_deref(),
            Some("srv-is-made-anew"),
            "a filesystem made anew takes the UUID of the one of its type it replaces"
        );
        let other = if srv_type == "xfs" { "ext4" } else { "xfs" };
        let existing = ExistingDisk::Table {
            table: table_of(&planned, None),
            members: BTreeMap::new(),
            filesystems: BTreeMap::from([
                (
                    4,
                    Ok(found(&[
                        ("TYPE", "ext4"),
                        ("LABEL", "root"),
                        ("UUID", held),
                    ])),
                ),
                (5, Ok(found(&[("TYPE", other), ("UUID", "another-type")]))),
                (6, Ok(found(&[("TYPE", "swap"), ("UUID", "swap-uuid")]))),
            ]),
        };
        let retyped = plan_of(VERIFY, Some(existing)).unwrap();
        assert_eq!(
            srv(&retyped),
            srv(&planned),
            "a filesystem of another type replaced keeps the planned UUID"
        );
    }

    #[test]
    fn a_disk_that_cannot_be_kept_is_a_planning_error() {
        let planned = plan_of(VERIFY, None).unwrap();
        let errors = |existing| {
            plan_of(VERIFY, Some(existing))
                .unwrap_err()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        let keeps = "partitions[0]: disk \"vda\" (/dev/vda): partitions_policy verify keeps \
                     the partition table, but";
        let anew = "; \"partitions_policy\": \"clean\" partitions the disk anew";
        assert_eq!(
            errors(ExistingDisk::Missing),
            [format!("{keeps} it does not exist{anew}")]
        );
        assert_eq!(
            errors(ExistingDisk::NoTable("it has no table".to_owned())),
            [format!("{keeps} it has no table{anew}")]
        );
        let moved = ExistingDisk::Table {
            table: table_of(&planned, Some(5)),
            members: BTreeMap::new(),
            filesystems: BTreeMap::new(),
        };
        assert_eq!(
            errors(moved),
            [format!(
                "{keeps} it is not as planned: partition vda#5: start is sector 546816, the \
                 plan says 544768{anew}"
            )]
        );
        let wrong = ExistingDisk::Table {
            table: table_of(&planned, None),
            members: BTreeMap::new(),
            filesystems: BTreeMap::from([
                (4, Ok(found(&[("TYPE", "xfs"), ("UUID", "u")]))),
                (6, Err("blkid: cannot read".to_owned())),
            ]),
        };
        assert_eq!(
            errors(wrong),
            [
                "partitions[0].volumes[0]: partition vda#4 (/ of alpha) keeps its data \
                 (keep_data), but it holds xfs, the plan keeps ext4",
                "partitions[0].volumes[2]: partition vda#6 (swap of alpha) keeps its data \
                 (keep_data), but blkid: cannot read"
            ]
        );
    }
}
