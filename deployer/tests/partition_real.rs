//! The apply step's pure pieces against the real tools: a plan's sfdisk script written by
//! the real `sfdisk` onto a sparse disk-image file and read back with `sfdisk -J` for
//! `check_table`, and every planned filesystem made by its real mkfs command on an image
//! file, then probed with `blkid -p`.
//!
//! sfdisk, the mkfs tools and blkid work on regular files, so no loop device or mount is
//! involved, but for the volume group sizes compared with what pvcreate, vgcreate and
//! lvcreate (activation off, so without device-mapper) make on loop devices. Every test
//! works in its own temporary directory, removed when the test ends, also when it panics. A missing tool fails the test and names `scripts/setup`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use deployer::apply::mkfs::mkfs_command;
use deployer::config::FileSystem;
use deployer::disks::disk_input;
use deployer::plan::{check_table, sfdisk_script};
use deployer::plan::{Device, DiskPlan, DiskRequest, FilesystemPlan, IdSource, Plan, Purpose};
use e2e::tools::find_tool;
use tempfile::TempDir;
use uuid::Uuid;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The path of `name`; panics with "`name` not found: run scripts/setup (see README)".
fn tool(name: &str) -> PathBuf {
    find_tool(name).unwrap_or_else(|| panic!("{name} not found: run scripts/setup (see README)"))
}

/// Runs `argv` (program name first, looked up with [`tool`]) with `stdin` as its input;
/// returns its standard output, or panics with its status and standard error.
fn run(argv: &[OsString], stdin: &str) -> String {
    let program = argv[0].to_str().expect("UTF-8 program name");
    let mut child = Command::new(tool(program))
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {program}: {e}"));
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes())
        .unwrap_or_else(|e| panic!("writing to {program}: {e}"));
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for {program}: {e}"));
    assert!(
        out.status.success(),
        "{argv:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn args(words: &[&str], file: &Path) -> Vec<OsString> {
    let mut argv: Vec<OsString> = words.iter().map(OsString::from).collect();
    argv.push(file.into());
    argv
}

fn sparse_file(path: &Path, size: u64) {
    fs::File::create(path)
        .and_then(|f| f.set_len(size))
        .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
}

/// UUIDs with letters and digits in every position, so a byte-order or case slip shows;
/// the same ones on every run.
#[derive(Default)]
struct MixedIds(u128);

impl IdSource for MixedIds {
    fn filesystem_uuid(&mut self) -> Uuid {
        self.0 += 1;
        Uuid::from_u128(0x3f2a_91c4_7d0e_4b6f_a5c8_e1d2_0b9f_7a00 + self.0)
    }

    fn partition_uuid(&mut self) -> Uuid {
        self.0 += 1;
        Uuid::from_u128(0xc0de_5eed_ab12_4cd3_9e8f_7a6b_5c4d_3e00 + self.0)
    }

    fn array_uuid(&mut self) -> Uuid {
        self.0 += 1;
        Uuid::from_u128(0x9a1d_a77a_4e51_4c0d_8b2e_6f3a_1d5c_7e00 + self.0)
    }
}

/// Plans `config` onto one disk `vda`, the sparse file `image` of `size` bytes.
fn plan_on_file(config: &str, image: &Path, size: u64) -> Plan {
    sparse_file(image, size);
    let config = deployer::validate(config).unwrap_or_else(|e| panic!("invalid config: {e:?}"));
    let request = DiskRequest {
        name: "vda".to_owned(),
        path: image.to_owned(),
        configured_size: None,
        read_existing: false,
    };
    let disk = disk_input(&request).expect("reading the image file");
    deployer::plan(&config, &[disk], &mut MixedIds::default())
        .unwrap_or_else(|e| panic!("planning failed: {e:?}"))
}

/// Writes `disk`'s table with the real sfdisk from its script and reads it back.
fn partition(disk: &DiskPlan) -> String {
    run(
        &args(&["sfdisk", "--quiet"], &disk.path),
        &sfdisk_script(disk),
    );
    run(&args(&["sfdisk", "-J"], &disk.path), "")
}

#[test]
fn sfdisk_writes_the_spec_example_as_planned() {
    let dir = TempDir::new().unwrap();
    let plan = plan_on_file(
        include_str!("../examples/multi-image.json"),
        &dir.path().join("vda.img"),
        20 * GIB,
    );
    let disk = &plan.disks[0];
    assert_eq!(disk.partitions.len(), 6);

    let table = partition(disk);
    assert_eq!(check_table(disk, &table), Ok(()), "{table}");

    // The check reads the real output: a name changed behind the plan's back shows.
    run(
        &args(&["sfdisk", "--part-label"], &disk.path)
            .into_iter()
            .chain(["3".into(), "other".into()])
            .collect::<Vec<_>>(),
        "",
    );
    let table = run(&args(&["sfdisk", "-J"], &disk.path), "");
    assert_eq!(
        check_table(disk, &table),
        Err(vec![
            "partition vda#3: name is \"other\", the plan says \"multiboot\"".to_string()
        ])
    );
}

/// A `boot` volume (legacy BIOS bootable) and a partition name that needs sfdisk's quoting.
const NAMED: &str = r#"{
    "images": [{"name": "centos", "image_pull_url": "http://h/c.tar", "target": "/"}],
    "partitions": [{"type": "disk", "id": {"type": "name", "value": "vda"}, "volumes": [
        {"type": "boot", "size": "1"},
        {"type": "partition", "mount": "/", "file_system": "ext4", "size": "100", "images": ["centos"],
         "name": "root \"A\" $x\\y `é`, b;c"}]}]}"#;

#[test]
fn sfdisk_writes_quoted_names_and_attributes_as_planned() {
    let dir = TempDir::new().unwrap();
    let plan = plan_on_file(NAMED, &dir.path().join("vda.img"), GIB);
    let disk = &plan.disks[0];
    assert!(disk.partitions[3].legacy_bios_bootable);
    assert_eq!(
        disk.partitions[4].name.as_deref(),
        Some("root \"A\" $x\\y `é`, b;c")
    );

    let table = partition(disk);
    assert_eq!(check_table(disk, &table), Ok(()), "{table}");
}

/// One volume of every filesystem type (ext3 without a label), sized for the real tools:
/// xfs needs at least 300 MiB; the 600 MiB vfat volume is FAT32, the 64 MiB ESP FAT16.
const EVERY_TYPE: &str = include_str!("../examples/every-filesystem.json");

/// `blkid -p -o export FILE` as a map (`TYPE`, `UUID`, `LABEL`, `VERSION`, ...).
fn probe(file: &Path) -> BTreeMap<String, String> {
    run(&args(&["blkid", "-p", "-o", "export"], file), "")
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// Makes `fs` with its real mkfs command on a new sparse file of `size` bytes in `dir`;
/// returns what blkid finds there.
fn make(fs: &FilesystemPlan, dir: &Path, file_name: &str, size: u64) -> BTreeMap<String, String> {
    let file = dir.join(file_name);
    sparse_file(&file, size);
    run(&mkfs_command(fs, &file), "");
    probe(&file)
}

/// The planned size of the partition `fs` is made on.
fn partition_bytes(plan: &Plan, fs: &FilesystemPlan) -> u64 {
    let Device::Partition { number, .. } = &fs.device else {
        panic!("{} is not a partition", fs.device);
    };
    let partition = plan.disks[0]
        .partitions
        .iter()
        .find(|p| p.number == *number)
        .expect("the filesystem's partition");
    partition.size_mib * MIB
}

#[test]
fn mkfs_makes_every_planned_filesystem_with_its_uuid_and_label() {
    let dir = TempDir::new().unwrap();
    let plan = plan_on_file(EVERY_TYPE, &dir.path().join("vda.img"), 2 * GIB);
    let types: Vec<FileSystem> = plan.filesystems.iter().map(|fs| fs.fs_type).collect();
    for fs_type in FileSystem::ALL {
        assert!(types.contains(&fs_type), "no {fs_type:?} in {types:?}");
    }

    for (i, fs) in plan.filesystems.iter().enumerate() {
        let size = partition_bytes(&plan, fs);
        let found = make(fs, dir.path(), &format!("fs{i}.img"), size);
        let what = format!(
            "{} ({}): blkid found {found:?}",
            fs.device,
            fs.fs_type.as_str()
        );
        assert_eq!(
            found.get("TYPE").map(String::as_str),
            Some(fs.fs_type.as_str()),
            "{what}"
        );
        assert_eq!(found.get("UUID"), Some(&fs.uuid), "{what}");
        assert_eq!(found.get("LABEL"), fs.label.as_ref(), "{what}");
    }
}

#[test]
fn vfat_is_fat16_below_512_mib_and_fat32_from_512_mib() {
    let dir = TempDir::new().unwrap();
    let plan = plan_on_file(EVERY_TYPE, &dir.path().join("vda.img"), 2 * GIB);
    let esp = plan
        .filesystems
        .iter()
        .find(|fs| fs.purpose == Purpose::Esp)
        .expect("the ESP");

    let fat_version = |file_name: &str, size: u64| {
        let found = make(esp, dir.path(), file_name, size);
        assert_eq!(found.get("UUID"), Some(&esp.uuid), "{found:?}");
        found.get("VERSION").cloned().unwrap_or_default()
    };
    assert_eq!(fat_version("esp.img", partition_bytes(&plan, esp)), "FAT16");
    assert_eq!(fat_version("511.img", 511 * MIB), "FAT16");
    assert_eq!(fat_version("512.img", 512 * MIB), "FAT32");
}

#[test]
fn sfdisk_writes_bareons_layout_as_planned() {
    let dir = TempDir::new().unwrap();
    let image = dir.path().join("vda.img");
    sparse_file(&image, 300 * MIB);
    let config = r#"{
        "images": [
            {"name": "alpha", "image_pull_url": "/a", "target": "/"},
            {"name": "beta", "image_pull_url": "/b", "target": "/"}],
        "partitions": [{"type": "disk", "id": {"type": "name", "value": "vda"}, "volumes": [
            {"type": "partition", "file_system": "ext4", "mount": "/", "size": "50%",
             "images": ["alpha"]},
            {"type": "partition", "file_system": "ext4", "mount": "/", "size": "50%",
             "images": ["beta"]}]}],
        "partitions_policy": "clean"}"#;
    let config = deployer::validate(config).unwrap();
    let request = DiskRequest {
        name: "vda".to_owned(),
        path: image.clone(),
        configured_size: None,
        read_existing: false,
    };
    let disk = disk_input(&request).expect("reading the image file");
    let plan = deployer::plan::plan_layout(
        &config,
        &[disk],
        Some(deployer::plan::Layout::Bareon),
        &mut MixedIds::default(),
    )
    .unwrap_or_else(|e| panic!("planning failed: {e:?}"));
    let json = partition(&plan.disks[0]);
    check_table(&plan.disks[0], &json).unwrap_or_else(|e| panic!("{e:?}\n{json}"));
    // Bareon's allocator on this disk (block_device.py run as it is) ends the second half
    // one sector before the last usable one: 436224 + 178142 = 614366.
    assert!(json.contains("\"firstlba\": 34,"), "{json}");
    assert!(
        json.contains("\"start\": 436224,\n            \"size\": 178142,"),
        "{json}"
    );
}

/// A volume group made by the real LVM tools on loop devices (no device-mapper needed:
/// logical volumes are created with activation off); removed with its pvs and loop
/// devices on drop, also when the test panics.
struct RealVolumeGroup {
    name: String,
    loops: Vec<e2e::disk::LoopDisk>,
}

/// Runs an LVM command: its standard output, or its arguments and standard error.
fn lvm(args: &[&str]) -> Result<String, String> {
    let out = Command::new(tool(args[0]))
        .args(&args[1..])
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", args[0]));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl Drop for RealVolumeGroup {
    fn drop(&mut self) {
        let _ = lvm(&["vgremove", "-f", &self.name]);
        for disk in &self.loops {
            let _ = lvm(&["pvremove", "-ff", "-y", disk.device().to_str().unwrap()]);
        }
    }
}

/// One number per line of an LVM report.
fn numbers(report: &str) -> Vec<u64> {
    report
        .split_whitespace()
        .map(|n| n.parse::<f64>().unwrap_or_else(|_| panic!("{report}")) as u64)
        .collect()
}

/// A pv's size and `lvm_meta_size`.
type PvSpec = (&'static str, Option<&'static str>);
/// A volume group's pvs and its lvs' sizes.
type LvmCase = (&'static [PvSpec], &'static [&'static str]);

#[test]
fn volume_group_sizes_are_what_lvm_gives() {
    // (pvs: size, lvm_meta_size; lvs: size), as Bareon runs pvcreate and vgcreate.
    let cases: &[LvmCase] = &[
        (&[("100", None)], &["100%"]),
        (&[("333", Some("64"))], &["50%", "50%"]),
        (
            &[("164", Some("16")), ("1000", None)],
            &["30%", "5", "remaining"],
        ),
    ];
    let dir = TempDir::new().unwrap();
    for (n, (pvs, lvs)) in cases.iter().enumerate() {
        let vg_name = format!("mbt{}x{n}", std::process::id());
        let pv_entries: Vec<String> = pvs
            .iter()
            .map(|(size, meta)| {
                let meta = meta.map_or(String::new(), |m| format!(", \"lvm_meta_size\": \"{m}\""));
                format!(r#"{{"type": "pv", "vg": "{vg_name}", "size": "{size}"{meta}}}"#)
            })
            .collect();
        let lv_entries: Vec<String> = lvs
            .iter()
            .enumerate()
            .map(|(i, size)| {
                let mount = if i == 0 {
                    "/".to_owned()
                } else {
                    format!("/v{i}")
                };
                format!(
                    r#"{{"type": "lv", "name": "lv{i}", "file_system": "ext4",
                        "mount": "{mount}", "size": "{size}"}}"#
                )
            })
            .collect();
        let config = format!(
            r#"{{"images": [{{"name": "alpha", "image_pull_url": "/a", "target": "/"}}],
               "partitions": [
                 {{"type": "disk", "id": {{"type": "name", "value": "vda"}},
                   "volumes": [{{"type": "partition", "file_system": "ext4", "mount": "/boot",
                                 "size": "64"}},
                               {}]}},
                 {{"type": "vg", "id": "{vg_name}", "volumes": [{}]}}],
               "partitions_policy": "clean"}}"#,
            pv_entries.join(", "),
            lv_entries.join(", ")
        );
        let plan = plan_on_file(&config, &dir.path().join(format!("vda{n}.img")), 2 * GIB);
        let vg = &plan.volume_groups[0];
        let mut real = RealVolumeGroup {
            name: vg_name.clone(),
            loops: Vec::new(),
        };
        let mut devices = Vec::new();
        for (i, pv) in vg.physical_volumes.iter().enumerate() {
            let Device::Partition { number, .. } = pv.device else {
                panic!("a pv on {}", pv.device)
            };
            let partition = &plan.disks[0].partitions[number as usize - 1];
            let file = dir.path().join(format!("pv{n}-{i}.img"));
            let disk = e2e::disk::LoopDisk::create(&file, partition.size_mib * MIB);
            let device = disk.device().to_str().unwrap().to_owned();
            real.loops.push(disk);
            let mut pvcreate = vec!["pvcreate".to_owned(), "-q".to_owned()];
            if let Some(mib) = pv.metadata_mib {
                pvcreate.push(format!("--metadatasize={mib}m"));
            }
            pvcreate.push(device.clone());
            lvm(&pvcreate.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
            devices.push(device);
        }
        let mut vgcreate = vec!["vgcreate", "-q", &vg_name];
        vgcreate.extend(devices.iter().map(String::as_str));
        lvm(&vgcreate).unwrap();
        for (pv, device) in vg.physical_volumes.iter().zip(&devices) {
            let report = lvm(&[
                "pvs",
                "--noheadings",
                "--units",
                "m",
                "--nosuffix",
                "-o",
                "pe_start,pv_pe_count",
                device,
            ])
            .unwrap();
            assert_eq!(
                numbers(&report),
                [pv.pe_start_mib, pv.extents],
                "case {n}, {device}"
            );
        }
        let report = lvm(&["vgs", "--noheadings", "-o", "vg_extent_count", &vg_name]).unwrap();
        assert_eq!(
            numbers(&report),
            [vg.size_mib / 4],
            "case {n}: the vg's extents"
        );
        for lv in &vg.logical_volumes {
            lvm(&[
                "lvcreate",
                "-q",
                "--driverloaded",
                "n",
                "--activate",
                "n",
                "--zero",
                "n",
                "-L",
                &format!("{}m", lv.size_mib),
                "-n",
                &lv.name,
                &vg_name,
            ])
            .unwrap_or_else(|e| panic!("case {n}: {e}"));
        }
        let report = lvm(&[
            "lvs",
            "--noheadings",
            "--units",
            "m",
            "--nosuffix",
            "-o",
            "lv_size",
            &vg_name,
        ])
        .unwrap();
        let planned: Vec<u64> = vg.logical_volumes.iter().map(|lv| lv.size_mib).collect();
        let mut real_sizes = numbers(&report);
        real_sizes.sort_unstable();
        let mut sorted = planned.clone();
        sorted.sort_unstable();
        assert_eq!(
            real_sizes, sorted,
            "case {n}: lvcreate made every lv at its planned size"
        );
        let used: u64 = planned.iter().sum();
        let report = lvm(&["vgs", "--noheadings", "-o", "vg_free_count", &vg_name]).unwrap();
        assert_eq!(
            numbers(&report),
            [(vg.size_mib - used) / 4],
            "case {n}: free extents"
        );
        drop(real);
    }
}
