//! `deployer::ondisk` against what the real tools write and report, on a host without
//! device-mapper or md.
//!
//! LVM: physical volumes made by pvcreate on loop devices over sparse files, a volume group
//! over two of them and logical volumes made with activation off, then changed a few times;
//! after each change every PV is read with the parsers and compared with `lvm pvs`, `vgs`
//! and `lvs` (JSON reports) and `pvck --dump`. A small metadata area is written until its
//! text wraps around the area's end. md: mdadm cannot write a superblock without the md
//! driver, so one is laid out per the kernel's md_p.h and compared with what
//! `mdadm --examine` and `blkid -p` read. In both, a filesystem made where the parsers say
//! the data starts is found there by `blkid -p --offset`, as the deployer probes.
//!
//! Volume groups, PVs and loop devices are released by guards, also when a test panics.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::Path;
use std::process::Command;

use deployer::ondisk::lvm::{self, VgMetadata};
use deployer::ondisk::md::{self, MemberRole};
use deployer::ondisk::{read_lvm_pv, read_md_member, LvmPv};
use e2e::cmd;
use e2e::disk::{blkid, LoopDisk};
use e2e::tmp::TempDir;
use e2e::tools::require_tools;
use serde_json::Value;

const MIB: u64 = 1 << 20;

/// `lvm ARGS`: its standard output; panics with its standard error when it fails.
fn lvm(args: &[&str]) -> String {
    cmd::run(
        Command::new("lvm")
            .args(args)
            .env("LVM_SUPPRESS_FD_WARNINGS", "1"),
    )
}

/// `lvm ARGS` changing a volume group's logical volumes, with activation off.
fn lvm_inactive(args: &[&str]) -> String {
    let mut all = vec![args[0], "-q", "--driverloaded", "n"];
    all.extend(&args[1..]);
    lvm(&all)
}

/// The rows of `lvm REPORT --reportformat json --units b --nosuffix -o FIELDS ARGS`.
fn report(report: &str, fields: &str, args: &[&str]) -> Vec<BTreeMap<String, String>> {
    let mut all = vec![
        report,
        "--reportformat",
        "json",
        "--units",
        "b",
        "--nosuffix",
    ];
    all.extend(["-o", fields]);
    all.extend(args);
    let json: Value = serde_json::from_str(&lvm(&all)).expect("an lvm JSON report");
    let key = &report[..report.len() - 1];
    json["report"][0][key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} rows: {json}"))
        .iter()
        .map(|row| serde_json::from_value(row.clone()).expect("string fields"))
        .collect()
}

fn number(row: &BTreeMap<String, String>, field: &str) -> u64 {
    row[field]
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{field} of {row:?}"))
}

/// A volume group on loop devices; on drop removed with its PVs, then the loops detached.
struct VolumeGroup {
    name: String,
    disks: Vec<LoopDisk>,
}

impl Drop for VolumeGroup {
    fn drop(&mut self) {
        let quiet = |args: &[&str]| {
            cmd::output(
                Command::new("lvm")
                    .args(args)
                    .env("LVM_SUPPRESS_FD_WARNINGS", "1"),
            )
        };
        quiet(&["vgremove", "-f", "--driverloaded", "n", &self.name]);
        for disk in &self.disks {
            quiet(&["pvremove", "-ff", "-y", disk.device().to_str().unwrap()]);
        }
    }
}

impl VolumeGroup {
    fn device(&self, i: usize) -> &str {
        self.disks[i].device().to_str().unwrap()
    }
}

/// The label, metadata text ranges and text (with its NUL) of `device`'s first area.
fn first_area_text(device: &str) -> (Vec<(u64, u64)>, Vec<u8>) {
    let bytes = fs::read(device).unwrap_or_else(|e| panic!("reading {device}: {e}"));
    let label = lvm::parse_label(&bytes[..2048]).unwrap().expect("a label");
    let (offset, size) = label.metadata_areas[0];
    let header = &bytes[offset as usize..][..512];
    let ranges = lvm::metadata_text_ranges(header, offset, size).unwrap();
    let text = ranges
        .iter()
        .flat_map(|&(at, len)| &bytes[at as usize..][..len as usize])
        .copied()
        .collect();
    (ranges, text)
}

/// `pvck --dump metadata`: (where the text starts, its crc, seqno), and the text.
fn pvck_metadata(device: &str) -> ((u64, String, u64), String) {
    let out = lvm(&["pvck", "--dump", "metadata", device]);
    let (head, rest) = out.split_once("\n  ---\n").expect("pvck's --- line");
    let text = rest.strip_suffix("\n  ---\n").expect("pvck's closing ---");
    let words: Vec<&str> = head.split_whitespace().collect();
    // metadata text at N crc 0xC # vgname V seqno S
    assert_eq!(words[..3], ["metadata", "text", "at"], "{head}");
    let seqno = words[words.len() - 1].parse().unwrap();
    (
        (words[3].parse().unwrap(), words[5].to_owned(), seqno),
        text.to_owned(),
    )
}

/// Reads every PV of `vg` with the parsers, checks all against LVM's reports, and
/// returns the metadata they hold.
fn read_and_compare(vg: &VolumeGroup) -> VgMetadata {
    let devices: Vec<&str> = (0..vg.disks.len()).map(|i| vg.device(i)).collect();
    let pv_rows = report(
        "pvs",
        "pv_name,pv_uuid,pe_start,pv_pe_count,dev_size,pv_mda_size",
        &devices,
    );
    let mut metadata: Option<VgMetadata> = None;
    let mut key_of_device = BTreeMap::new();
    for device in &devices {
        let row = pv_rows.iter().find(|r| &r["pv_name"] == device).unwrap();
        let mut file = File::open(device).unwrap();
        let LvmPv {
            label,
            metadata: vg_meta,
        } = read_lvm_pv(&mut file).unwrap().expect("a PV");
        assert_eq!(label.pv_id, row["pv_uuid"], "{device}");
        assert_eq!(label.pe_start_bytes, number(row, "pe_start"), "{device}");
        assert_eq!(label.device_size_bytes, number(row, "dev_size"), "{device}");
        assert_eq!(label.metadata_areas.len(), 1, "{device}");
        assert_eq!(
            label.metadata_areas[0].1,
            number(row, "pv_mda_size"),
            "{device}"
        );
        let headers = lvm(&["pvck", "--dump", "headers", device]);
        let mda_at = format!("mda_header_1 at {} ", label.metadata_areas[0].0);
        assert!(headers.contains(&mda_at), "{mda_at}in\n{headers}");
        let vg_meta = vg_meta.expect("metadata");
        let (ranges, text) = first_area_text(device);
        let ((text_at, crc, seqno), pvck_text) = pvck_metadata(device);
        assert_eq!((ranges[0].0, seqno), (text_at, vg_meta.seqno), "{device}");
        assert_eq!(crc, format!("{:#x}", lvm_crc(&text)), "{device}");
        assert_eq!(
            text.split_last(),
            Some((&0, pvck_text.as_bytes())),
            "{device}"
        );
        let pv = vg_meta.pvs.iter().find(|pv| pv.id == label.pv_id).unwrap();
        assert_eq!(pv.pe_start_bytes, label.pe_start_bytes);
        assert_eq!(pv.pe_count, number(row, "pv_pe_count"));
        key_of_device.insert(device.to_string(), pv.key.clone());
        if let Some(other) = &metadata {
            assert_eq!(other, &vg_meta, "every PV holds the same metadata");
        }
        metadata = Some(vg_meta);
    }
    let meta = metadata.unwrap();
    let vg_row = &report(
        "vgs",
        "vg_name,vg_uuid,vg_seqno,vg_extent_size",
        &[&vg.name],
    )[0];
    assert_eq!(meta.name, vg_row["vg_name"]);
    assert_eq!(meta.id, vg_row["vg_uuid"]);
    assert_eq!(
        meta.seqno,
        number(vg_row, "vg_seqno"),
        "the newest metadata"
    );
    assert_eq!(meta.extent_bytes, number(vg_row, "vg_extent_size"));
    let lv_rows = report(
        "lvs",
        "lv_name,lv_size,seg_start_pe,seg_pe_ranges,segtype,stripes",
        &["-a", &vg.name],
    );
    let mut names: Vec<&str> = lv_rows.iter().map(|r| r["lv_name"].as_str()).collect();
    names.dedup();
    let parsed: Vec<&str> = meta.lvs.iter().map(|lv| lv.name.as_str()).collect();
    assert_eq!(sorted(names), sorted(parsed));
    for lv in &meta.lvs {
        let rows: Vec<_> = lv_rows.iter().filter(|r| r["lv_name"] == lv.name).collect();
        assert_eq!(
            lv.extents * meta.extent_bytes,
            number(rows[0], "lv_size"),
            "{}",
            lv.name
        );
        let first = rows
            .iter()
            .find(|r| number(r, "seg_start_pe") == 0)
            .unwrap();
        // lvs calls a striped segment of one stripe linear; the metadata, striped.
        let segtype = match first["segtype"].as_str() {
            "linear" => "striped",
            other => other,
        };
        assert_eq!(lv.segment_type, segtype, "{}", lv.name);
        assert_eq!(lv.stripe_count, number(first, "stripes"), "{}", lv.name);
        // "/dev/loop0:25-41" or, striped, "/dev/loop0:25-25 /dev/loop1:0-0".
        let range = first["seg_pe_ranges"].split_whitespace().next().unwrap();
        let (device, extents) = range.rsplit_once(':').unwrap();
        let start: u64 = extents.split_once('-').unwrap().0.parse().unwrap();
        let expected = (key_of_device[device].clone(), start);
        assert_eq!(lv.first_extent, Some(expected), "{}: {range}", lv.name);
    }
    meta
}

fn sorted(mut v: Vec<&str>) -> Vec<&str> {
    v.sort_unstable();
    v
}

/// LVM's CRC-32, written out again so the test does not only trust the parser's.
fn lvm_crc(data: &[u8]) -> u32 {
    let mut crc = 0xf597_a6cf_u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// mkfs.ext4 with UUID `uuid` in `size` bytes at `offset` of `target`; then what
/// `blkid -p --offset` finds there.
fn ext4_at(target: &str, offset: u64, size: u64, uuid: &str) -> BTreeMap<String, String> {
    cmd::run(Command::new("mkfs.ext4").args([
        "-q",
        "-F",
        "-U",
        uuid,
        "-E",
        &format!("offset={offset}"),
        target,
        &format!("{}k", size / 1024),
    ]));
    let out = cmd::run(Command::new("blkid").args([
        "-p",
        "-o",
        "export",
        "--offset",
        &offset.to_string(),
        "--size",
        &size.to_string(),
        target,
    ]));
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn lvm_volume_group_read_from_its_pvs_as_lvm_reports_it() {
    require_tools(&["lvm", "losetup", "blkid", "mkfs.ext4"]);
    let dir = TempDir::new("ondisk-lvm");
    let name = format!("ondisk{}", std::process::id());
    let mut vg = VolumeGroup {
        name: name.clone(),
        disks: Vec::new(),
    };
    // One PV with the default metadata area (1 MiB data alignment), one with 64 MiB.
    for (i, (size, mda)) in [(200 * MIB, None), (300 * MIB, Some("64m"))]
        .iter()
        .enumerate()
    {
        vg.disks
            .push(LoopDisk::create(&dir.join(format!("pv{i}.img")), *size));
        let mut args = vec!["pvcreate", "-q"];
        if let Some(mda) = mda {
            args.extend(["--metadatasize", mda]);
        }
        args.push(vg.device(i));
        lvm(&args);
    }
    lvm(&[
        "vgcreate",
        "-q",
        "-s",
        "4m",
        &name,
        vg.device(0),
        vg.device(1),
    ]);
    let first = read_and_compare(&vg);
    assert!(first.lvs.is_empty());
    assert_eq!(first.pvs[1].pe_start_bytes, 65 * MIB);

    let create = |args: &[&str]| {
        let mut all = vec!["lvcreate", "--zero", "n"];
        all.extend(args);
        all.push(&name);
        lvm_inactive(&all);
    };
    create(&["-L", "100m", "-n", "small"]);
    create(&["-i", "2", "-I", "64k", "-l", "2", "-n", "striped"]);
    // 75 extents: more than either PV has left.
    create(&["-L", "300m", "-n", "big"]);
    let meta = read_and_compare(&vg);
    let big = meta.lvs.iter().find(|lv| lv.name == "big").unwrap();
    assert_eq!(big.extents, 75);
    let spans: Vec<_> = report("lvs", "seg_pe_ranges", &[&format!("{name}/big")]);
    assert!(spans.len() > 1, "big spans both PVs: {spans:?}");

    // Changes: each one a new seqno, read again from both PVs.
    let mut seqno = meta.seqno;
    let changes: [&[&str]; 5] = [
        &["lvrename", &name, "big", "large"],
        &["lvextend", "-l", "+1", &format!("{name}/small")],
        &["lvcreate", "--zero", "n", "-l", "1", "-n", "scratch", &name],
        &["lvremove", "-y", &format!("{name}/scratch")],
        &["lvrename", &name, "large", "big"],
    ];
    for change in changes {
        lvm_inactive(change);
        let meta = read_and_compare(&vg);
        assert!(
            meta.seqno > seqno,
            "{change:?}: seqno {} after {seqno}",
            meta.seqno
        );
        seqno = meta.seqno;
    }
    let meta = read_and_compare(&vg);
    let small = meta.lvs.iter().find(|lv| lv.name == "small").unwrap();
    assert_eq!(small.extents, 26);

    // A filesystem at the first extent of `small` is where blkid finds it.
    let (pv, offset) = meta.lv_start(small).unwrap();
    let disk = (0..2)
        .map(|i| vg.device(i))
        .find(|d| report("pvs", "pv_uuid", &[d])[0]["pv_uuid"] == pv.id)
        .unwrap();
    let uuid = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9";
    let found = ext4_at(disk, offset, 26 * 4 * MIB, uuid);
    assert_eq!(
        (found["TYPE"].as_str(), found["UUID"].as_str()),
        ("ext4", uuid)
    );
    // The volume group is unharmed by it.
    assert_eq!(read_and_compare(&vg), meta);
}

#[test]
fn lvm_metadata_wrapping_around_its_area_is_read_whole() {
    require_tools(&["lvm", "losetup"]);
    let dir = TempDir::new("ondisk-wrap");
    let name = format!("ondiskw{}", std::process::id());
    let vg = VolumeGroup {
        name: name.clone(),
        disks: vec![LoopDisk::create(&dir.join("pv.img"), 64 * MIB)],
    };
    // The smallest area pvcreate makes here: 60 KiB, wrapped after some 20 writes.
    let device = vg.device(0).to_owned();
    lvm(&[
        "pvcreate",
        "-q",
        "--metadatasize",
        "32k",
        "--dataalignment",
        "64k",
        &device,
    ]);
    lvm(&["vgcreate", "-q", "-s", "1m", &name, &device]);
    let mut wrapped = 0;
    for i in 0..60 {
        let lv = format!("lv{i}");
        lvm_inactive(&["lvcreate", "--zero", "n", "-l", "1", "-n", &lv, &name]);
        let (ranges, _) = first_area_text(&device);
        let meta = read_and_compare(&vg);
        assert!(
            meta.lvs.iter().any(|l| l.name == lv),
            "{lv} in seqno {}",
            meta.seqno
        );
        if ranges.len() == 2 {
            wrapped += 1;
            if wrapped == 2 {
                return;
            }
        }
    }
    panic!("the metadata did not wrap twice in 60 writes");
}

/// A version 1.2 superblock per md_p.h: RAID1 member 0 of 2, data at `data_offset`
/// sectors, `used` sectors of it used, with its checksum (the kernel's calc_sb_1_csum).
fn md_superblock(data_offset: u64, avail: u64, used: u64) -> Vec<u8> {
    let mut sb = vec![0u8; 4096];
    let mut put = |at: usize, bytes: &[u8]| sb[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, &0xa92b_4efc_u32.to_le_bytes());
    put(4, &1u32.to_le_bytes());
    put(
        16,
        &[
            0x9a, 0x3c, 0x44, 0x01, 0xb2, 0x7e, 0x4d, 0x5f, 0x80, 0x11, 0xc3, 0xd4, 0xe5, 0xf6,
            0x07, 0x18,
        ],
    );
    put(32, b"deploy-host:md0");
    put(64, &1_750_000_000u64.to_le_bytes());
    put(72, &1u32.to_le_bytes());
    put(80, &used.to_le_bytes());
    put(92, &2u32.to_le_bytes());
    put(128, &data_offset.to_le_bytes());
    put(136, &avail.to_le_bytes());
    put(144, &8u64.to_le_bytes());
    put(160, &0u32.to_le_bytes());
    put(168, &[0x11; 16]);
    put(192, &1_750_000_100u64.to_le_bytes());
    put(200, &42u64.to_le_bytes());
    put(208, &u64::MAX.to_le_bytes());
    put(220, &3u32.to_le_bytes());
    put(256, &[0, 0, 1, 0, 0xff, 0xff]);
    let mut sum: u64 = sb[..262]
        .chunks(4)
        .map(|c| match c {
            [a, b, c, d] => u64::from(u32::from_le_bytes([*a, *b, *c, *d])),
            [a, b] => u64::from(u16::from_le_bytes([*a, *b])),
            _ => unreachable!(),
        })
        .sum();
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sb[216..220].copy_from_slice(&(sum as u32).to_le_bytes());
    sb
}

fn examine(path: &Path, field: &str) -> String {
    let out = cmd::run(Command::new("mdadm").arg("--examine").arg(path));
    out.lines()
        .find_map(|l| l.trim().strip_prefix(field)?.trim().strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in\n{out}"))
        .trim()
        .to_owned()
}

#[test]
fn md_superblock_read_as_mdadm_and_blkid_read_it() {
    require_tools(&["mdadm", "blkid", "mkfs.ext4"]);
    let dir = TempDir::new("ondisk-md");
    let member = dir.join("member.img");
    let size = 128 * MIB / 512;
    let (data_offset, used) = (2048, 96 * MIB / 512);
    let mut bytes = vec![0u8; 8192];
    bytes[4096..].copy_from_slice(&md_superblock(data_offset, size - data_offset, used));
    fs::write(&member, &bytes).unwrap();
    File::options()
        .write(true)
        .open(&member)
        .unwrap()
        .set_len(size * 512)
        .unwrap();

    let sb = read_md_member(&mut File::open(&member).unwrap())
        .unwrap()
        .expect("a member");
    assert_eq!(
        (sb.level, sb.raid_disks, sb.role, sb.events),
        (1, 2, MemberRole::Active(0), 42)
    );
    let probe = blkid(&member);
    assert_eq!(probe["TYPE"], "linux_raid_member");
    assert_eq!(probe["VERSION"], "1.2");
    assert_eq!(probe["UUID"], sb.uuid);
    assert_eq!(probe["UUID_SUB"], sb.device_uuid);
    assert_eq!(probe["LABEL"], sb.name);
    assert_eq!(sb.uuid, "9a3c4401-b27e-4d5f-8011-c3d4e5f60718");

    assert!(examine(&member, "Checksum").ends_with("- correct"));
    // mdadm's form of the same 32 digits: 4 groups of 8 joined by `:`.
    let digits = sb.uuid.replace('-', "");
    let groups: Vec<&str> = (0..4).map(|i| &digits[i * 8..][..8]).collect();
    assert_eq!(examine(&member, "Array UUID"), groups.join(":"));
    assert_eq!(examine(&member, "Name"), "deploy-host:md0");
    assert_eq!(examine(&member, "Raid Level"), "raid1");
    assert_eq!(examine(&member, "Raid Devices"), "2");
    assert_eq!(examine(&member, "Device Role"), "Active device 0");
    let sectors = |bytes: u64| format!("{} sectors", bytes / 512);
    assert_eq!(
        examine(&member, "Data Offset"),
        sectors(sb.data_offset_bytes)
    );
    assert!(examine(&member, "Avail Dev Size").starts_with(&sectors(sb.data_size_bytes)));
    assert!(examine(&member, "Used Dev Size").starts_with(&sectors(sb.used_size_bytes)));

    // The array's filesystem, where the superblock says its data starts.
    let uuid = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9";
    let member_path = member.to_str().unwrap();
    let found = ext4_at(member_path, sb.data_offset_bytes, sb.used_size_bytes, uuid);
    assert_eq!(
        (found["TYPE"].as_str(), found["UUID"].as_str()),
        ("ext4", uuid)
    );
    let again = read_md_member(&mut File::open(&member).unwrap()).unwrap();
    assert_eq!(again, Some(sb));
    assert_eq!(md::SUPERBLOCK_1_2_OFFSET, 4096);
}
