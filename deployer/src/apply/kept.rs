//! What a deploy keeps when its policy keeps the partition tables (`partitions_policy`
//! `verify`, or `nailgun_legacy` with a filesystem that keeps its data; see
//! [`Plan::keeps_partition_tables`]): every disk's table must be as planned already, and
//! every filesystem whose volume keeps its data (`keep_data`, true unless the config says
//! otherwise) must be there, of the planned type, with the configured label if any.
//!
//! This is Bareon's `verify`: compare the schema with the disks, fail without touching
//! them when they differ, then make anew only the filesystems whose `keep_data` is false.
//! Bareon's `nailgun_legacy` skips partitioning without any check when a filesystem keeps
//! its data; here it is checked the same way, since a filesystem kept on a table that is
//! not as planned would be mounted from the wrong place.
//!
//! Both are read before the first write, from the disks' paths (an image file needs no
//! loop device for `sfdisk -J` and `blkid -p --offset`), and the plan then takes the
//! partition GUIDs and filesystem UUIDs found ([`Plan::with_existing`]), so that fstab,
//! grub.cfg and boot-info.json name the kept filesystems as they are. [`judge_filesystem`]
//! and [`parse_blkid_export`] are pure; [`read_existing`] reads the disks.

use std::collections::BTreeMap;
use std::ffi::OsString;

use crate::apply::partition::check_kept_table;
use crate::exec::{run, StepError};
use crate::plan::{Device, DiskPlan, FilesystemPlan, Plan};
use crate::size::MIB;

/// The status `blkid -p` exits with when it finds nothing.
const BLKID_NOTHING_FOUND: i32 = 2;

/// The plan with what the disks hold where the deploy keeps it, or every reason the
/// disks cannot be kept, one line each: per disk, its first mismatch with the plan.
pub fn read_existing(plan: &Plan) -> Result<Plan, Vec<String>> {
    let policy = plan.partitions_policy.as_str();
    let mut problems = Vec::new();
    let mut partitions = Vec::new();
    let mut filesystems = Vec::new();
    for disk in &plan.disks {
        let at = format!("disk {} ({})", disk.name, disk.path.display());
        let table = match read_table(disk) {
            Ok(table) => table,
            Err(why) => {
                problems.push(format!(
                    "{at}: partitions_policy {policy} keeps the partition table, but {why}; \
                     \"partitions_policy\": \"clean\" partitions the disk anew"
                ));
                continue;
            }
        };
        partitions.extend(
            table
                .into_iter()
                .map(|(number, uuid)| (disk.name.clone(), number, uuid)),
        );
        for fs in plan.filesystems.iter().filter(|fs| fs.keep_data) {
            let Device::Partition { disk: name, number } = &fs.device else {
                continue;
            };
            if *name != disk.name {
                continue;
            }
            let found = read_filesystem(disk, *number)
                .and_then(|found| judge_filesystem(fs, &found).map_err(|why| format!("it {why}")));
            match found {
                Ok(uuid) => filesystems.push((fs.device.clone(), uuid)),
                Err(why) => problems.push(format!(
                    "{at}: partition {} ({}) keeps its data (keep_data), but {why}",
                    fs.device,
                    fs.usage()
                )),
            }
        }
    }
    if problems.is_empty() {
        Ok(plan.clone().with_existing(&partitions, &filesystems))
    } else {
        Err(problems)
    }
}

/// The unique GUIDs of `disk`'s partitions, once its table is found as planned; else
/// why not, as a phrase.
fn read_table(disk: &DiskPlan) -> Result<Vec<(u32, String)>, String> {
    if !disk.path.exists() {
        return Err("it does not exist".to_owned());
    }
    let argv: Vec<OsString> = vec!["sfdisk".into(), "-J".into(), disk.path.clone().into()];
    let json = run(
        &format!("read the partition table of disk {}", disk.name),
        &argv,
    )
    .map_err(|err| match err {
        StepError::Failed { .. } => "it has no partition table sfdisk can read".to_owned(),
        other => other.to_string(),
    })?;
    check_kept_table(disk, &json).map_err(|mismatches| {
        let more = match mismatches.len() {
            1 => String::new(),
            n => format!(" (and {} more differences)", n - 1),
        };
        format!("it is not as planned: {}{more}", mismatches[0])
    })
}

/// What `blkid -p` finds on partition `number` of `disk` (empty when nothing), read
/// through the whole disk at the partition's offset.
fn read_filesystem(disk: &DiskPlan, number: u32) -> Result<BTreeMap<String, String>, String> {
    let partition = disk
        .partitions
        .iter()
        .find(|p| p.number == number)
        .ok_or_else(|| format!("partition {number} is not in the plan"))?;
    let argv: Vec<OsString> = vec![
        "blkid".into(),
        "-p".into(),
        "-o".into(),
        "export".into(),
        "--offset".into(),
        (partition.start_mib * MIB).to_string().into(),
        "--size".into(),
        (partition.size_mib * MIB).to_string().into(),
        disk.path.clone().into(),
    ];
    match run(
        &format!("read the filesystem of partition {}#{number}", disk.name),
        &argv,
    ) {
        Ok(text) => Ok(parse_blkid_export(&text)),
        Err(StepError::Failed { status, .. }) if status.code() == Some(BLKID_NOTHING_FOUND) => {
            Ok(BTreeMap::new())
        }
        Err(err) => Err(err.to_string()),
    }
}

/// The `KEY=value` lines of `blkid -o export`.
pub fn parse_blkid_export(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// The UUID of the filesystem `found` (as [`parse_blkid_export`] gives it) that `fs`
/// keeps: it must be of the planned type and carry the configured label, if any. The
/// error is a phrase: "holds xfs, the plan keeps ext4".
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
    use crate::plan::{plan, DiskInput, SequentialIds};
    use crate::validate::validate;

    /// alpha's `/` (keeps its data by default) and a `/srv` whose data is not kept.
    const VERIFY: &str = r#"{
        "images": [{"name": "alpha", "image_pull_url": "/a", "target": "/"}],
        "partitions": [{"type": "disk", "id": {"type": "name", "value": "vda"}, "volumes": [
            {"type": "partition", "mount": "/", "size": "100", "disk_label": "root"},
            {"type": "partition", "mount": "/srv", "size": "50", "keep_data": false},
            {"type": "partition", "mount": "swap", "size": "16"}]}],
        "partitions_policy": "verify"}"#;

    fn plan_of(config: &str) -> Plan {
        let config = validate(config).unwrap_or_else(|e| panic!("invalid config: {e:?}"));
        let disk = DiskInput {
            name: "vda".to_owned(),
            path: "/dev/vda".into(),
            size_bytes: 1 << 30,
            sector_size: 512,
        };
        plan(&config, &[disk], &mut SequentialIds::default())
            .unwrap_or_else(|e| panic!("planning failed: {e:?}"))
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
    fn blkid_export_is_read_as_keys_and_values() {
        let text = "DEVNAME=/tmp/d.img\nUUID=0a1b-2c3d\nLABEL=a=b\nTYPE=vfat\n";
        assert_eq!(
            parse_blkid_export(text),
            found(&[
                ("DEVNAME", "/tmp/d.img"),
                ("UUID", "0a1b-2c3d"),
                ("LABEL", "a=b"),
                ("TYPE", "vfat")
            ])
        );
    }

    #[test]
    fn a_kept_filesystem_of_the_planned_type_and_label_gives_its_uuid() {
        let plan = plan_of(VERIFY);
        let uuid = judge_filesystem(
            root(&plan),
            &found(&[("TYPE", "ext4"), ("LABEL", "root"), ("UUID", "u-1")]),
        );
        assert_eq!(uuid, Ok("u-1".to_owned()));
    }

    #[test]
    fn another_type_no_filesystem_or_another_label_is_named() {
        let plan = plan_of(VERIFY);
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
        let plan = plan_of(VERIFY);
        assert!(plan.keeps_partition_tables());
        let kept: Vec<String> = plan
            .filesystems
            .iter()
            .filter(|fs| fs.keep_data)
            .map(FilesystemPlan::usage)
            .collect();
        assert_eq!(kept, ["/ of alpha", "swap of alpha"]);
        let clean = plan_of(&VERIFY.replace("\"verify\"", "\"clean\""));
        assert!(!clean.keeps_partition_tables());
        assert!(clean.filesystems.iter().all(|fs| !fs.keep_data));
        let legacy = plan_of(&VERIFY.replace("\"verify\"", "\"nailgun_legacy\""));
        assert!(legacy.keeps_partition_tables());
        let legacy_without = plan_of(
            &VERIFY
                .replace("\"verify\"", "\"nailgun_legacy\"")
                .replace(
                    "\"size\": \"100\",",
                    "\"size\": \"100\", \"keep_data\": false,",
                )
                .replace("\"size\": \"16\"", "\"size\": \"16\", \"keep_data\": false"),
        );
        assert!(!legacy_without.keeps_partition_tables());
    }

    #[test]
    fn the_plan_takes_the_uuids_found_into_fstab_and_boot() {
        let plan = plan_of(VERIFY);
        let root_device = root(&plan).device.clone();
        let old = root(&plan).uuid.clone();
        let kept = plan.clone().with_existing(
            &[(
                "vda".to_owned(),
                4,
                "AAAAAAAA-0000-4000-B000-000000000004".to_owned(),
            )],
            &[(
                root_device,
                "11111111-2222-4333-8444-555555555555".to_owned(),
            )],
        );
        let image = &kept.images[0];
        assert_eq!(
            image.root_uuid.as_deref(),
            Some("11111111-2222-4333-8444-555555555555")
        );
        assert_eq!(image.boot_uuid, image.root_uuid);
        assert!(image
            .fstab
            .contains("UUID=11111111-2222-4333-8444-555555555555 / ext4 defaults 0 1\n"));
        assert!(!image.fstab.contains(&old), "{}", image.fstab);
        assert_eq!(image.mounts[0].uuid, "11111111-2222-4333-8444-555555555555");
        assert_eq!(
            kept.disks[0].partitions[3].partition_uuid,
            "aaaaaaaa-0000-4000-b000-000000000004"
        );
        let srv = |p: &Plan| {
            p.filesystems
                .iter()
                .find(|fs| fs.mount == Mount::Path("/srv".to_owned()))
                .map(|fs| fs.uuid.clone())
        };
        assert_eq!(
            srv(&kept),
            srv(&plan),
            "a filesystem made anew keeps its plan"
        );
    }
}
