//! LVM and RAID deployed by the deploy ramdisk, whose Debian kernel has the device-mapper
//! and md this machine's kernel lacks, and booted. Two blank virtio disks; alpha's `/` is
//! a partition of the first, beta's `/` a logical volume of a volume group over both, and
//! a RAID1 array over both is `/srv` in both images. The config and the images come over
//! HTTP from this machine's loopback.
//!
//! - A deploy whose second image fails its sha256, after the volume group and the array
//!   exist, ends with the ramdisk's `FAILED` line, no device-mapper device or array left
//!   in the guest, and no LVM label or md superblock left on the disks.
//! - The deploy of the same disks then succeeds; they boot alpha, which writes a file on
//!   the RAID1 `/srv` and switches to beta; beta boots from its logical volume, reads
//!   that file and switches back.
//! - A deploy under `verify` keeps the array and the volume group (assembled and
//!   activated, not made again; beta, whose `/` keeps its data, is not deployed again) and
//!   deploys alpha anew; alpha then boots with the second disk gone, its RAID1 `/srv`
//!   degraded and still holding its file.
//!
//! It runs in the suite, the one proof of LVM and RAID deployed: it builds the ramdisk
//! (about 10 s after the packages test's release build) and boots six times (about two minutes).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::chain::{boot_disks_expecting, mounted, shown, Expect, SHOW};
use e2e::disk::sha256;
use e2e::fixture::{write_image_trees, FixtureImage};
use e2e::http::HttpServer;
use e2e::qemu::{self, DirectKernel, Firmware};
use e2e::ramdisk::{
    assert_deployed, blank_disks, build_ramdisk, deploy_append, guest_url, last_lines,
    pack_tar_zst, DEPLOY_TIMEOUT,
};
use e2e::tmp::TempDir;
use e2e::tools::require_tools;
use serde_json::{json, Value};

/// One fixture boot of the deployed disks.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

/// Each of the two blank disks.
const DISK_BYTES: u64 = 640 << 20;

/// The config: alpha on a partition of vda, beta on a logical volume of `os` (over a
/// physical volume on each disk, larger than either), `/srv` of both on a RAID1 array of
/// a partition of each disk.
fn config(alpha_url: &str, alpha_sha: &str, beta_url: &str, beta_sha: &str) -> Value {
    let srv = json!({"type": "raid", "mount": "/srv", "size": "48", "name": "md0",
                     "file_system": "ext4", "images": ["alpha", "beta"]});
    let pv = json!({"type": "pv", "vg": "os", "size": "200"});
    json!({
        "images": [
            {"name": "alpha", "image_pull_url": alpha_url, "sha256": alpha_sha,
             "target": "/", "boot": true},
            {"name": "beta", "image_pull_url": beta_url, "sha256": beta_sha, "target": "/"}
        ],
        "partitions": [
            {"type": "disk", "id": {"type": "name", "value": "vda"}, "volumes": [
                {"type": "partition", "mount": "/", "size": "200", "file_system": "ext4",
                 "images": ["alpha"]},
                pv, srv]},
            {"type": "disk", "id": {"type": "name", "value": "vdb"}, "volumes": [pv, srv]},
            {"type": "vg", "id": "os", "volumes": [
                {"type": "lv", "name": "beta-root", "mount": "/", "size": "300",
                 "file_system": "ext4", "images": ["beta"]}]}
        ],
        "partitions_policy": "clean",
        "deploy_data": {"kernel_params": "console=ttyS0 quiet panic=-1"}
    })
}

/// alpha's run script: the mounts and the arrays; on its first boot it leaves a file on
/// `/srv` and switches to beta.
const ALPHA_RUN: &str = "if [ ! -e /srv/from-alpha ]; then\n\
     \x20 echo written by alpha >/srv/from-alpha\n\
     \x20 show switch bootctl switch beta\n\
     fi\n";

/// beta's: the mounts, the arrays, the name of the one device-mapper device (its `/`),
/// alpha's file; then back to alpha.
const BETA_RUN: &str = "show root-dm cat /sys/block/dm-0/dm/name\n\
     show from-alpha cat /srv/from-alpha\n\
     show switch bootctl switch alpha\n";

fn run_script(rest: &str) -> String {
    format!("set -e\n{SHOW}show mounts cat /proc/mounts\nshow mdstat cat /proc/mdstat\n{rest}")
}

/// What `blkid -p` finds at byte `offset` of `disk`: `TYPE=...`, or empty.
fn signature_at(disk: &Path, offset: u64) -> String {
    let out = Command::new("blkid")
        .args(["-p", "-o", "value", "-s", "TYPE", "-O"])
        .arg(offset.to_string())
        .arg(disk)
        .output()
        .expect("running blkid");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn lvm_and_raid_deployed_from_the_ramdisk_boot_switch_and_survive_a_lost_disk() {
    require_tools(&["qemu-system-x86_64", "tar", "blkid"]);
    let started = Instant::now();
    let scratch = TempDir::new("ramdisk-stack");
    let (vmlinuz, initrd) = build_ramdisk(&scratch.join("dist"));

    let alpha = FixtureImage::new("alpha")
        .with_bootctl()
        .with_storage()
        .run_script(&run_script(ALPHA_RUN));
    let beta = FixtureImage::new("beta")
        .with_bootctl()
        .with_storage()
        .run_script(&run_script(BETA_RUN));
    write_image_trees(scratch.path(), &[&alpha, &beta]);
    let mut files = BTreeMap::new();
    let mut sums = BTreeMap::new();
    for name in ["alpha", "beta"] {
        let tarball = scratch.join(format!("{name}.tar.zst"));
        pack_tar_zst(&scratch.join(name), &tarball);
        sums.insert(name, sha256(&tarball));
        files.insert(
            format!("{name}.tar.zst"),
            std::fs::read(&tarball).expect("a tarball"),
        );
    }
    // The images from one server, the configs naming them from another.
    let images = HttpServer::serve(files);
    let url = |name: &str| guest_url(&images.url(&format!("{name}.tar.zst")));
    let good = config(&url("alpha"), &sums["alpha"], &url("beta"), &sums["beta"]);
    let mut bad = good.clone();
    bad["images"][1]["sha256"] = sums["alpha"].clone().into();
    // The same disks again under Bareon's default policy: alpha's / made anew, beta's
    // logical volume and /srv keep their data (keep_data defaults to true).
    let mut verify = good.clone();
    verify["partitions_policy"] = "verify".into();
    verify["partitions"][0]["volumes"][0]["keep_data"] = false.into();
    let server = HttpServer::serve(BTreeMap::from([
        ("good.json".to_owned(), good.to_string().into_bytes()),
        ("bad.json".to_owned(), bad.to_string().into_bytes()),
        ("verify.json".to_owned(), verify.to_string().into_bytes()),
    ]));
    let disks = blank_disks(scratch.path(), &["vda", "vdb"], DISK_BYTES);
    let disk_refs: Vec<&Path> = disks.iter().map(|d| d.as_path()).collect();
    let ramdisk = |config: &str| DirectKernel {
        kernel: vmlinuz.clone(),
        initrd: initrd.clone(),
        append: deploy_append(&server.url(config), &["vda", "vdb"]),
    };

    // beta's download fails its sha256 after the volume group and the array exist.
    let failed = qemu::boot_networked(
        &disk_refs,
        &ramdisk("bad.json"),
        DEPLOY_TIMEOUT,
        "ramdisk-stack-fault",
    );
    let serial = &failed.serial;
    assert!(
        !failed.timed_out
            && serial.contains("deployer: creating volume group os")
            && serial.contains("deployer: creating md array md0")
            && serial.contains("ramdisk: FAILED: deployer deploy exited with 1")
            && serial.contains("deployer: deactivated volume group os")
            && serial.contains("deployer: stopped md array md0")
            && serial.contains("ramdisk: left active: 0 device-mapper device(s), 0 md array(s)"),
        "the failed deploy: console {}\n--- last lines ---\n{}",
        failed.log.display(),
        last_lines(serial)
    );
    // Where the plan puts the physical volumes and the array members: vda#2 and #3
    // after alpha's root, vdb#1 and #2.
    let plan = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .arg("plan")
        .arg("--json")
        .arg(write_config(&scratch, &good))
        .arg(format!("--disk=vda={}", disks[0].display()))
        .arg(format!("--disk=vdb={}", disks[1].display()))
        .output()
        .expect("running deployer plan");
    let plan: Value = serde_json::from_slice(&plan.stdout).expect("plan --json");
    for (disk, planned) in disks.iter().zip(plan["disks"].as_array().expect("disks")) {
        for partition in planned["partitions"].as_array().expect("partitions") {
            let kind = partition["kind"].as_str().unwrap_or_default();
            if kind == "linux_lvm" || kind == "linux_raid" {
                let offset = partition["start_mib"].as_u64().expect("start_mib") << 20;
                // An md 1.2 superblock is 4 KiB into its member.
                for at in [offset, offset + 4096] {
                    assert_eq!(
                        signature_at(disk, at),
                        "",
                        "{}: a signature left at byte {at} ({kind})",
                        disk.display()
                    );
                }
            }
        }
    }
    eprintln!(
        "ramdisk-stack: the failed deploy took {:.1?}",
        failed.elapsed
    );

    let deployed = qemu::boot_networked(
        &disk_refs,
        &ramdisk("good.json"),
        DEPLOY_TIMEOUT,
        "ramdisk-stack-deploy",
    );
    assert_deployed(&deployed, 2);
    eprintln!("ramdisk-stack: the deploy took {:.1?}", deployed.elapsed);

    let boot = |disks: &[&Path], expect: &Expect, name: &str| {
        boot_disks_expecting(disks, Firmware::Bios, BOOT_TIMEOUT, name, expect).run_output
    };
    let first = boot(&disk_refs, &Expect::first("alpha"), "ramdisk-stack-alpha");
    let mounts = shown(&first, "mounts").stdout;
    let srv = mounted(&mounts, "/srv").unwrap_or_else(|| panic!("alpha: no /srv:\n{mounts}"));
    assert!(
        srv.0.starts_with("/dev/md") && srv.1 == "ext4",
        "alpha's /srv: {srv:?}"
    );
    assert!(
        shown(&first, "mdstat").stdout.contains("[UU]"),
        "alpha: the array is not whole:\n{first}"
    );
    assert_eq!(shown(&first, "switch").rc, Some(0), "{first}");

    let second = boot(
        &disk_refs,
        &Expect::after("beta", "alpha ran `bootctl switch beta`"),
        "ramdisk-stack-beta",
    );
    let mounts = shown(&second, "mounts").stdout;
    assert!(
        mounted(&mounts, "/").is_some_and(|m| m.0 == "/dev/dm-0"),
        "beta's root is not on device-mapper:\n{mounts}"
    );
    assert_eq!(
        shown(&second, "root-dm").stdout,
        "os-beta--root\n",
        "beta's root is not its logical volume"
    );
    let srv = mounted(&mounts, "/srv").unwrap_or_else(|| panic!("beta: no /srv:\n{mounts}"));
    assert!(srv.0.starts_with("/dev/md"), "beta's /srv: {srv:?}");
    assert_eq!(
        shown(&second, "from-alpha").stdout,
        "written by alpha\n",
        "beta does not see alpha's file on the shared RAID1 /srv"
    );

    let redeployed = qemu::boot_networked(
        &disk_refs,
        &ramdisk("verify.json"),
        DEPLOY_TIMEOUT,
        "ramdisk-stack-verify",
    );
    let serial = &redeployed.serial;
    assert!(
        !redeployed.timed_out
            && serial.contains("deployer: assembling md array md0 (it keeps data)")
            && serial.contains("deployer: activating volume group os (it keeps data)")
            && serial.contains("deployer: image beta: its / keeps its data: not deployed again")
            && serial.contains("deployer: deploying image alpha from")
            && serial.contains("ramdisk: deploy done"),
        "the verify deploy: console {}\n--- last lines ---\n{}",
        redeployed.log.display(),
        last_lines(serial)
    );
    eprintln!(
        "ramdisk-stack: the verify deploy took {:.1?}",
        redeployed.elapsed
    );

    // alpha, deployed again, finds its file on the kept /srv (and so does not switch).
    let degraded = boot(
        &[disk_refs[0]],
        &Expect::after("alpha", "the verify deploy; the second disk gone"),
        "ramdisk-stack-degraded",
    );
    assert_eq!(
        shown(&degraded, "switch").rc,
        None,
        "alpha did not find /srv/from-alpha on the kept array"
    );
    let mounts = shown(&degraded, "mounts").stdout;
    assert!(
        mounted(&mounts, "/srv").is_some_and(|m| m.0.starts_with("/dev/md")),
        "degraded alpha: no /srv on the array:\n{mounts}"
    );
    let mdstat = shown(&degraded, "mdstat").stdout;
    assert!(
        mdstat.contains("[U_]") || mdstat.contains("[_U]"),
        "the array is not degraded:\n{mdstat}"
    );
    eprintln!(
        "ramdisk-stack: the whole test took {:.1?}",
        started.elapsed()
    );
}

fn write_config(scratch: &TempDir, config: &Value) -> std::path::PathBuf {
    let path = scratch.join("good.json");
    std::fs::write(&path, config.to_string()).expect("writing the config");
    path
}
