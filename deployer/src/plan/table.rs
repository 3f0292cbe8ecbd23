//! A disk's GPT for sfdisk: the script that writes it, and the table `sfdisk -J` reports
//! compared with the plan.
//!
//! [`sfdisk_script`] turns a [`DiskPlan`] into the text fed to `sfdisk` on standard input:
//! every partition with its exact start and size in sectors, its type, its unique GUID,
//! its name and attributes, so sfdisk decides nothing. [`check_table`] compares what
//! `sfdisk -J` reads back with the plan, so a table that sfdisk adjusted (aligned,
//! shrank, renumbered) or that another writer changed is caught before any filesystem is
//! made on it. [`check_kept`] compares a table that the deploy keeps (`partitions_policy`
//! verify) with the plan: while planning, and again once the disk is attached.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::sfdisk::{
    parse_table, partition_number, quote_name, Entry, Table, LEGACY_BIOS_BOOTABLE,
};
use crate::size::MIB;

use super::model::{DiskPlan, PartitionPlan};

/// `mib` MiB in sectors of `disk`. Logical sector sizes (512 to 4096 bytes) divide 1 MiB.
fn sectors(disk: &DiskPlan, mib: u64) -> u64 {
    mib * (MIB / u64::from(disk.sector_size))
}

/// A partition's length in sectors.
fn length(disk: &DiskPlan, partition: &PartitionPlan) -> u64 {
    partition
        .size_sectors
        .unwrap_or_else(|| sectors(disk, partition.size_mib))
}

/// The sfdisk input script that writes `disk`'s partition table: a GPT (`label: gpt`) in
/// sectors, whose first usable sector is the plan's (`first-lba`), and
/// one line per partition in number order with `start=`, `size=`, `type=` (the type
/// GUID), `uuid=` (the planned unique GUID), `name=` when the plan names the partition,
/// and `attrs=LegacyBIOSBootable` when the plan sets that bit.
///
/// Names are quoted the way `sfdisk --dump` writes them and sfdisk reads them back: in
/// double quotes, with `"`, `\`, `` ` ``, `$` and every byte outside printable ASCII
/// written as `\xNN` (sfdisk decodes `\xNN` in names; a bare `"` would end the name).
pub fn sfdisk_script(disk: &DiskPlan) -> String {
    let mut script = format!(
        "label: gpt\nunit: sectors\nfirst-lba: {}\n\n",
        disk.first_usable_sector
    );
    for partition in &disk.partitions {
        let _ = write!(
            script,
            "start={}, size={}, type={}, uuid={}",
            sectors(disk, partition.start_mib),
            length(disk, partition),
            partition.type_guid,
            partition.partition_uuid
        );
        if let Some(name) = &partition.name {
            script.push_str(", name=");
            script.push_str(&quote_name(name));
        }
        if partition.legacy_bios_bootable {
            script.push_str(", attrs=");
            script.push_str(LEGACY_BIOS_BOOTABLE);
        }
        script.push('\n');
    }
    script
}

/// A value for a mismatch message: quoted, or `none`.
fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "none".to_string(), |v| format!("{v:?}"))
}

/// The attribute names of an `attrs` string (`"RequiredPartition LegacyBIOSBootable"`).
fn attribute_set(attrs: Option<&str>) -> BTreeSet<&str> {
    attrs
        .unwrap_or("")
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|a| !a.is_empty())
        .collect()
}

/// Which fields a table check compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// A table just written from the plan: every field.
    Written,
    /// A table kept from an earlier deploy: where each partition lies and what it is.
    Kept,
}

/// Checks the partition table `sfdisk -J` reported for `disk` (its standard output,
/// `sfdisk_json`) against the plan: a GPT with the planned first usable sector and
/// sector size, and every partition by number with the planned start, size, type GUID,
/// unique GUID, name and legacy-BIOS-bootable attribute; no partition missing, none
/// extra. GUIDs compare without regard to case (sfdisk prints them in upper case).
///
/// Returns every mismatch, one line each, naming the disk (`disk vda: ...`) or the
/// partition as the plan names devices (`partition vda#3: ...`).
pub fn check_table(disk: &DiskPlan, sfdisk_json: &str) -> Result<(), Vec<String>> {
    let table = parse_table(sfdisk_json).map_err(|e| vec![format!("disk {}: {e}", disk.name)])?;
    compare_table(disk, &table, Scope::Written).map(|_| ())
}

/// Checks a partition table that a deploy keeps (`partitions_policy` verify) against the
/// plan, as [`check_table`] does but only for what decides where the data lies and how
/// it is read: a GPT with the planned sector size, and every partition by number with the
/// planned start, size and type GUID, and the config's `partition_guid` where it gives
/// one; no partition missing, none extra. The first usable sector, names, attributes and
/// other unique GUIDs are the table's own. Returns the unique GUID of every partition
/// found (number, GUID), or every mismatch as [`check_table`] does.
pub fn check_kept(disk: &DiskPlan, table: &Table) -> Result<Vec<(u32, String)>, Vec<String>> {
    compare_table(disk, table, Scope::Kept)
}

/// [`check_kept`] of `sfdisk -J`'s output.
pub fn check_kept_table(
    disk: &DiskPlan,
    sfdisk_json: &str,
) -> Result<Vec<(u32, String)>, Vec<String>> {
    let table = parse_table(sfdisk_json).map_err(|e| vec![format!("disk {}: {e}", disk.name)])?;
    check_kept(disk, &table)
}

fn compare_table(
    disk: &DiskPlan,
    table: &Table,
    scope: Scope,
) -> Result<Vec<(u32, String)>, Vec<String>> {
    let name = &disk.name;
    let mut errors = Vec::new();
    if table.label != "gpt" {
        errors.push(format!(
            "disk {name}: the partition table is {:?}, the plan says \"gpt\"",
            table.label
        ));
    }
    let first_lba = disk.first_usable_sector;
    if scope == Scope::Written && table.firstlba != Some(first_lba) {
        errors.push(format!(
            "disk {name}: the first usable sector is {}, the plan says {first_lba}",
            shown_number(table.firstlba)
        ));
    }
    let sector_size = u64::from(disk.sector_size);
    if table.sectorsize != Some(sector_size) {
        errors.push(format!(
            "disk {name}: the sector size is {}, the plan says {sector_size}",
            shown_number(table.sectorsize)
        ));
    }
    let mut found = Vec::new();
    for entry in &table.partitions {
        match partition_number(&entry.node) {
            Some(number) => found.push((number, entry)),
            None => errors.push(format!(
                "disk {name}: partition {:?} has no number at the end of its name",
                entry.node
            )),
        }
    }
    for planned in &disk.partitions {
        let at = format!("partition {name}#{}", planned.number);
        match found.iter().find(|(number, _)| *number == planned.number) {
            Some((_, entry)) => errors.extend(
                compare(disk, planned, entry, scope)
                    .into_iter()
                    .map(|what| format!("{at}: {what}")),
            ),
            None => errors.push(format!("{at}: missing from the table")),
        }
    }
    for (number, _) in &found {
        if !disk.partitions.iter().any(|p| p.number == *number) {
            errors.push(format!(
                "partition {name}#{number}: in the table but not in the plan"
            ));
        }
    }
    if errors.is_empty() {
        Ok(found
            .iter()
            .filter_map(|(number, entry)| Some((*number, entry.uuid.clone()?)))
            .collect())
    } else {
        Err(errors)
    }
}

fn shown_number(value: Option<u64>) -> String {
    value.map_or_else(|| "not reported".to_string(), |v| v.to_string())
}

/// How one partition of the table differs from its plan, one phrase per field that
/// `scope` compares.
fn compare(disk: &DiskPlan, planned: &PartitionPlan, entry: &Entry, scope: Scope) -> Vec<String> {
    let mut what = Vec::new();
    let start = sectors(disk, planned.start_mib);
    if entry.start != start {
        what.push(format!(
            "start is sector {}, the plan says {start}",
            entry.start
        ));
    }
    let size = length(disk, planned);
    if entry.size != size {
        what.push(format!(
            "size is {} sectors, the plan says {size}",
            entry.size
        ));
    }
    if !entry.type_guid.eq_ignore_ascii_case(planned.type_guid) {
        what.push(format!(
            "type is {}, the plan says {}",
            entry.type_guid, planned.type_guid
        ));
    }
    let uuid_checked = scope == Scope::Written || planned.partition_uuid_from_config;
    if uuid_checked
        && !entry
            .uuid
            .as_deref()
            .is_some_and(|uuid| uuid.eq_ignore_ascii_case(&planned.partition_uuid))
    {
        what.push(format!(
            "uuid is {}, the plan says {}",
            entry.uuid.as_deref().unwrap_or("none"),
            planned.partition_uuid
        ));
    }
    if scope == Scope::Kept {
        return what;
    }
    // sfdisk leaves an empty name out of its output.
    let planned_name = planned.name.as_deref().filter(|n| !n.is_empty());
    if entry.name.as_deref() != planned_name {
        what.push(format!(
            "name is {}, the plan says {}",
            shown(entry.name.as_deref()),
            shown(planned_name)
        ));
    }
    let planned_attrs = planned.legacy_bios_bootable.then_some(LEGACY_BIOS_BOOTABLE);
    if attribute_set(entry.attrs.as_deref()) != attribute_set(planned_attrs) {
        what.push(format!(
            "attributes are {}, the plan says {}",
            shown(entry.attrs.as_deref()),
            shown(planned_attrs)
        ));
    }
    what
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{plan, DiskInput, Plan, SequentialIds};
    use crate::validate::validate;

    const GIB: u64 = 1 << 30;

    fn plan_of(config: &str, size_bytes: u64) -> Plan {
        let config = validate(config).unwrap_or_else(|e| panic!("invalid config: {e:?}"));
        let disk = DiskInput {
            name: "vda".to_string(),
            path: "/dev/vda".into(),
            size_bytes,
            sector_size: 512,
            existing: None,
        };
        plan(&config, &[disk], &mut SequentialIds::default())
            .unwrap_or_else(|e| panic!("planning failed: {e:?}"))
    }

    fn spec_example() -> DiskPlan {
        let plan = plan_of(include_str!("../../examples/multi-image.json"), 20 * GIB);
        plan.disks.into_iter().next().expect("one disk")
    }

    /// A disk with a `boot` volume and a partition whose name needs quoting.
    const NAMED: &str = r#"{
        "images": [{"name": "centos", "image_pull_url": "http://h/c.tar", "target": "/"}],
        "partitions": [{"type": "disk", "id": {"type": "name", "value": "vda"}, "volumes": [
            {"type": "boot", "size": "1"},
            {"type": "partition", "mount": "/", "file_system": "ext4", "size": "100", "images": ["centos"],
             "name": "root \"A\" $x\\y `é`"}]}]}"#;

    fn named() -> DiskPlan {
        let plan = plan_of(NAMED, GIB);
        plan.disks.into_iter().next().expect("one disk")
    }

    #[test]
    fn spec_example_script_places_every_partition_exactly() {
        assert_eq!(
            sfdisk_script(&spec_example()),
            "label: gpt\n\
             unit: sectors\n\
             first-lba: 2048\n\
             \n\
             start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, \
             uuid=00000000-0000-4000-b000-000000000001, name=\"bios_grub\"\n\
             start=4096, size=131072, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, \
             uuid=00000000-0000-4000-b000-000000000002, name=\"ESP\"\n\
             start=135168, size=204800, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, \
             uuid=00000000-0000-4000-b000-000000000003, name=\"multiboot\"\n\
             start=339968, size=8192000, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, \
             uuid=00000000-0000-4000-b000-000000000004\n\
             start=8531968, size=10240000, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, \
             uuid=00000000-0000-4000-b000-000000000005\n\
             start=18771968, size=20480000, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, \
             uuid=00000000-0000-4000-b000-000000000006\n"
        );
    }

    #[test]
    fn script_quotes_names_as_sfdisk_dump_does_and_sets_legacy_bios_bootable() {
        let script = sfdisk_script(&named());
        let lines: Vec<&str> = script.lines().collect();
        assert_eq!(
            lines[7],
            "start=339968, size=2048, type=21686148-6449-6E6F-744E-656564454649, \
             uuid=00000000-0000-4000-b000-000000000004, attrs=LegacyBIOSBootable"
        );
        assert_eq!(
            lines[8],
            "start=342016, size=204800, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, \
             uuid=00000000-0000-4000-b000-000000000005, \
             name=\"root \\x22A\\x22 \\x24x\\x5cy \\x60\\xc3\\xa9\\x60\""
        );
        assert_eq!(lines.len(), 9);
    }

    #[test]
    fn script_counts_in_the_disks_sector_size() {
        let config = validate(include_str!("../../examples/multi-image.json")).unwrap();
        let disk = DiskInput {
            name: "vda".to_string(),
            path: "/dev/vda".into(),
            size_bytes: 20 * GIB,
            sector_size: 4096,
            existing: None,
        };
        let plan = plan(&config, &[disk], &mut SequentialIds::default()).unwrap();
        let script = sfdisk_script(&plan.disks[0]);
        assert!(script.contains("first-lba: 256\n"), "{script}");
        assert!(
            script.contains("\nstart=512, size=16384, type=C12A7328"),
            "{script}"
        );
    }

    /// What `sfdisk -J` prints for the spec example written with its script.
    const SPEC_JSON: &str = r#"{
   "partitiontable": {
      "label": "gpt",
      "id": "30629CAD-D5C7-EF49-ADBE-DB826EB5FA56",
      "device": "/tmp/t/vda.img",
      "unit": "sectors",
      "firstlba": 2048,
      "lastlba": 41943006,
      "sectorsize": 512,
      "partitions": [
         {
            "node": "/tmp/t/vda.img1",
            "start": 2048,
            "size": 2048,
            "type": "21686148-6449-6E6F-744E-656564454649",
            "uuid": "00000000-0000-4000-B000-000000000001",
            "name": "bios_grub"
         },{
            "node": "/tmp/t/vda.img2",
            "start": 4096,
            "size": 131072,
            "type": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
            "uuid": "00000000-0000-4000-B000-000000000002",
            "name": "ESP"
         },{
            "node": "/tmp/t/vda.img3",
            "start": 135168,
            "size": 204800,
            "type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
            "uuid": "00000000-0000-4000-B000-000000000003",
            "name": "multiboot"
         },{
            "node": "/tmp/t/vda.img4",
            "start": 339968,
            "size": 8192000,
            "type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
            "uuid": "00000000-0000-4000-B000-000000000004"
         },{
            "node": "/tmp/t/vda.img5",
            "start": 8531968,
            "size": 10240000,
            "type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
            "uuid": "00000000-0000-4000-B000-000000000005"
         },{
            "node": "/tmp/t/vda.img6",
            "start": 18771968,
            "size": 20480000,
            "type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
            "uuid": "00000000-0000-4000-B000-000000000006"
         }
      ]
   }
}"#;

    /// SPEC_JSON with `from` replaced by `to` (which must occur exactly once).
    fn spec_json_with(from: &str, to: &str) -> String {
        assert_eq!(SPEC_JSON.matches(from).count(), 1, "{from}");
        SPEC_JSON.replace(from, to)
    }

    fn errors(disk: &DiskPlan, json: &str) -> Vec<String> {
        check_table(disk, json).expect_err("a mismatch")
    }

    #[test]
    fn table_as_planned_passes() {
        assert_eq!(check_table(&spec_example(), SPEC_JSON), Ok(()));
    }

    #[test]
    fn table_of_a_disk_whose_path_ends_in_a_digit_passes() {
        // sfdisk names the partitions of /dev/nvme0n1 nvme0n1p1, ...
        let json = SPEC_JSON.replace("/tmp/t/vda.img", "/dev/nvme0n1p");
        assert_eq!(check_table(&spec_example(), &json), Ok(()));
    }

    #[test]
    fn moved_partition_is_named() {
        let json = spec_json_with("\"start\": 135168", "\"start\": 137216");
        assert_eq!(
            errors(&spec_example(), &json),
            ["partition vda#3: start is sector 137216, the plan says 135168"]
        );
    }

    #[test]
    fn resized_partition_is_named() {
        let json = spec_json_with("\"size\": 20480000", "\"size\": 20477952");
        assert_eq!(
            errors(&spec_example(), &json),
            ["partition vda#6: size is 20477952 sectors, the plan says 20480000"]
        );
    }

    #[test]
    fn wrong_type_is_named() {
        let json = spec_json_with(
            "\"type\": \"C12A7328-F81F-11D2-BA4B-00A0C93EC93B\"",
            "\"type\": \"EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\"",
        );
        assert_eq!(
            errors(&spec_example(), &json),
            [
                "partition vda#2: type is EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, \
              the plan says C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
            ]
        );
    }

    #[test]
    fn wrong_or_missing_uuid_is_named() {
        let json = spec_json_with(
            "\"uuid\": \"00000000-0000-4000-B000-000000000004\"",
            "\"uuid\": \"11111111-0000-4000-B000-000000000004\"",
        );
        assert_eq!(
            errors(&spec_example(), &json),
            [
                "partition vda#4: uuid is 11111111-0000-4000-B000-000000000004, \
              the plan says 00000000-0000-4000-b000-000000000004"
            ]
        );
        let json = spec_json_with(
            ",\n            \"uuid\": \"00000000-0000-4000-B000-000000000005\"",
            "",
        );
        assert_eq!(
            errors(&spec_example(), &json),
            ["partition vda#5: uuid is none, the plan says 00000000-0000-4000-b000-000000000005"]
        );
    }

    #[test]
    fn wrong_missing_or_extra_name_is_named() {
        let json = spec_json_with("\"name\": \"ESP\"", "\"name\": \"esp\"");
        assert_eq!(
            errors(&spec_example(), &json),
            ["partition vda#2: name is \"esp\", the plan says \"ESP\""]
        );
        let json = spec_json_with(",\n            \"name\": \"multiboot\"", "");
        assert_eq!(
            errors(&spec_example(), &json),
            ["partition vda#3: name is none, the plan says \"multiboot\""]
        );
        let json = spec_json_with(
            "\"uuid\": \"00000000-0000-4000-B000-000000000006\"",
            "\"uuid\": \"00000000-0000-4000-B000-000000000006\", \"name\": \"common\"",
        );
        assert_eq!(
            errors(&spec_example(), &json),
            ["partition vda#6: name is \"common\", the plan says none"]
        );
    }

    #[test]
    fn attributes_are_checked_both_ways() {
        let disk = named();
        let boot = r#""uuid": "00000000-0000-4000-B000-000000000004""#;
        let table = |attrs: &str| {
            format!(
                r#"{{"partitiontable": {{"label": "gpt", "firstlba": 2048, "sectorsize": 512,
                "partitions": [
                  {{"node": "d1", "start": 2048, "size": 2048,
                    "type": "21686148-6449-6E6F-744E-656564454649",
                    "uuid": "00000000-0000-4000-B000-000000000001", "name": "bios_grub"}},
                  {{"node": "d2", "start": 4096, "size": 131072,
                    "type": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
                    "uuid": "00000000-0000-4000-B000-000000000002", "name": "ESP"}},
                  {{"node": "d3", "start": 135168, "size": 204800,
                    "type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
                    "uuid": "00000000-0000-4000-B000-000000000003", "name": "multiboot"}},
                  {{"node": "d4", "start": 339968, "size": 2048,
                    "type": "21686148-6449-6E6F-744E-656564454649", {boot}{attrs}}},
                  {{"node": "d5", "start": 342016, "size": 204800,
                    "type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
                    "uuid": "00000000-0000-4000-B000-000000000005",
                    "name": "root \"A\" $x\\y `é`"}}]}}}}"#
            )
        };
        assert_eq!(
            check_table(&disk, &table(r#", "attrs": "LegacyBIOSBootable""#)),
            Ok(())
        );
        assert_eq!(
            errors(&disk, &table("")),
            ["partition vda#4: attributes are none, the plan says \"LegacyBIOSBootable\""]
        );
        assert_eq!(
            errors(
                &disk,
                &table(r#", "attrs": "RequiredPartition LegacyBIOSBootable""#)
            ),
            [
                "partition vda#4: attributes are \"RequiredPartition LegacyBIOSBootable\", \
              the plan says \"LegacyBIOSBootable\""
            ]
        );
        let json = spec_json_with(
            "\"name\": \"bios_grub\"",
            "\"name\": \"bios_grub\", \"attrs\": \"LegacyBIOSBootable\"",
        );
        assert_eq!(
            errors(&spec_example(), &json),
            ["partition vda#1: attributes are \"LegacyBIOSBootable\", the plan says none"]
        );
    }

    #[test]
    fn missing_and_extra_partitions_are_named() {
        let json = spec_json_with("/tmp/t/vda.img5", "/tmp/t/vda.img7");
        assert_eq!(
            errors(&spec_example(), &json),
            [
                "partition vda#5: missing from the table",
                "partition vda#7: in the table but not in the plan",
            ]
        );
    }

    #[test]
    fn every_mismatch_of_a_partition_is_reported() {
        let json = spec_json_with(
            r#""start": 4096,
            "size": 131072,"#,
            r#""start": 6144,
            "size": 129024,"#,
        );
        assert_eq!(
            errors(&spec_example(), &json),
            [
                "partition vda#2: start is sector 6144, the plan says 4096",
                "partition vda#2: size is 129024 sectors, the plan says 131072",
            ]
        );
    }

    #[test]
    fn table_kind_first_sector_and_sector_size_are_checked() {
        let json = spec_json_with("\"label\": \"gpt\"", "\"label\": \"dos\"")
            .replace("\"firstlba\": 2048", "\"firstlba\": 34")
            .replace("\"sectorsize\": 512", "\"sectorsize\": 4096");
        assert_eq!(
            errors(&spec_example(), &json),
            [
                "disk vda: the partition table is \"dos\", the plan says \"gpt\"",
                "disk vda: the first usable sector is 34, the plan says 2048",
                "disk vda: the sector size is 4096, the plan says 512",
            ]
        );
        let json = spec_json_with("      \"sectorsize\": 512,\n", "");
        assert_eq!(
            errors(&spec_example(), &json),
            ["disk vda: the sector size is not reported, the plan says 512"]
        );
    }

    #[test]
    fn partition_without_a_number_is_reported() {
        let json = spec_json_with("/tmp/t/vda.img6", "/tmp/t/vda.img");
        assert_eq!(
            errors(&spec_example(), &json),
            [
                "disk vda: partition \"/tmp/t/vda.img\" has no number at the end of its name",
                "partition vda#6: missing from the table",
            ]
        );
    }

    #[test]
    fn output_that_is_not_a_table_is_one_error() {
        let found = errors(&spec_example(), "sfdisk: cannot open vda.img");
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("disk vda: sfdisk -J output is not a partition table: "),
            "{found:?}"
        );
        // An empty disk: sfdisk -J prints nothing and fails.
        assert_eq!(errors(&spec_example(), "").len(), 1);
    }

    #[test]
    fn a_kept_table_is_compared_where_data_lies_and_gives_its_guids() {
        let disk = spec_example();
        // Another deploy's GUIDs and names, another first usable sector: all the table's own.
        let json = SPEC_JSON
            .replace(
                "00000000-0000-4000-B000-00000000000",
                "AAAAAAAA-0000-4000-B000-00000000000",
            )
            .replace("\"name\": \"ESP\"", "\"name\": \"EFI system\"")
            .replace("\"firstlba\": 2048", "\"firstlba\": 34");
        let guids = check_kept_table(&disk, &json).expect("kept as planned");
        assert_eq!(guids.len(), 6);
        assert_eq!(
            guids[3],
            (4, "AAAAAAAA-0000-4000-B000-000000000004".to_owned())
        );
        let moved = spec_json_with("\"start\": 135168", "\"start\": 137216");
        assert_eq!(
            check_kept_table(&disk, &moved),
            Err(vec![
                "partition vda#3: start is sector 137216, the plan says 135168".to_owned()
            ])
        );
        let retyped = spec_json_with(
            "\"type\": \"C12A7328-F81F-11D2-BA4B-00A0C93EC93B\"",
            "\"type\": \"0FC63DAF-8483-4772-8E79-3D69D8477DE4\"",
        );
        assert_eq!(check_kept_table(&disk, &retyped).unwrap_err().len(), 1);
        let missing = spec_json_with("/tmp/t/vda.img6", "/tmp/t/vda.img7");
        assert_eq!(
            check_kept_table(&disk, &missing).unwrap_err(),
            [
                "partition vda#6: missing from the table",
                "partition vda#7: in the table but not in the plan"
            ]
        );
    }

    #[test]
    fn a_kept_table_must_have_the_guids_the_config_gives() {
        let mut disk = spec_example();
        disk.partitions[4].partition_uuid_from_config = true;
        let json = spec_json_with(
            "\"uuid\": \"00000000-0000-4000-B000-000000000005\"",
            "\"uuid\": \"11111111-0000-4000-B000-000000000005\"",
        );
        assert_eq!(
            check_kept_table(&disk, &json),
            Err(vec![
                "partition vda#5: uuid is 11111111-0000-4000-B000-000000000005, \
                 the plan says 00000000-0000-4000-b000-000000000005"
                    .to_owned()
            ])
        );
    }
}
