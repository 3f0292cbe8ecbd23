//! `partitions_policy` and `keep_data` for real, as root, on disk-image files.
//!
//! `verify` (Bareon's default, taken when the key is absent) and `nailgun_legacy` with a
//! volume that keeps its data keep the disks' partition tables: a disk whose table is not
//! as planned, or whose kept filesystem is not what the plan keeps, is refused before
//! anything is written (the whole file hashes the same after). A disk deployed before
//! with the same layout is deployed again keeping the filesystems whose `keep_data` is
//! true (their files and UUIDs) and making the others anew (with the UUIDs they had), as a
//! disk-image file and as a block device.
//!
//! Bareon's `test_verify_policy_preserve_fstab`, booted: two images, one from an rsync
//! daemon (`HOST::MODULE/PATH/`, as bareon-ironic writes it), deployed clean; a line
//! added to the kept image's fstab; a verify deploy leaves that image's root partition
//! byte for byte as it was and deploys the other again; the kept image boots, still has
//! the line, and `bootctl switch`es to the other, which boots next.
//!
//! Two disks deployed in Bareon's layout (`--layout bareon`) hold exactly the tables Bareon
//! makes and boot from the second disk's GRUB; `verify` recognises and keeps them without
//! the option.
//!
//! A missing tool fails the test and names `scripts/setup`.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use e2e::chain::{boot_chain, shown, Expect, SHOW};
use e2e::cmd::describe_output;
use e2e::deploy::deploy_command;
use e2e::disk::{fs_uuid, gpt_disk_file, sha256, LoopDisk, Mount};
use e2e::fixture::{populate_image, write_image_trees, FixtureImage};
use e2e::qemu::{expect_boot, Firmware};
use e2e::rsyncd::RsyncDaemon;
use e2e::tmp::TempDir;
use e2e::tools::{require_deploy_tools, require_tools};
use serde_json::{json, Value};

const TOOLS: &[&str] = &["mkswap", "sha256sum", "rsync", "qemu-system-x86_64"];

const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

/// `deployer deploy CONFIG --disk vda=DISK --bootctl STATIC --boot-info INFO --yes`.
fn deploy(config: &Path, disk: &Path, boot_info: &Path) -> Output {
    deploy_command(
        Path::new(env!("CARGO_BIN_EXE_deployer")),
        config,
        disk,
        boot_info,
    )
    .output()
    .expect("running deployer")
}

/// [`deploy`], which must succeed (`what` names it in the failure); its stderr.
fn deploy_ok(config: &Path, disk: &Path, boot_info: &Path, what: &str) -> String {
    let out = deploy(config, disk, boot_info);
    assert!(out.status.success(), "{what}: {}", describe_output(&out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one-image config: alpha's `/`, a `/data` and swap that keep their data unless the
/// config says otherwise, and a `/scratch` that never does. `policy` is the
/// `partitions_policy` (`None`: the key is absent); `data_fs` is `/data`'s filesystem.
fn config(alpha: &Path, policy: Option<&str>, data_fs: &str) -> Value {
    let mut config = json!({
        "images": [{"name": "alpha", "image_pull_url": alpha, "target": "/"}],
        "partitions": [{
            "type": "disk", "id": {"type": "name", "value": "vda"}, "size": "400 MiB",
            "volumes": [
                {"type": "partition", "mount": "/", "size": "160", "file_system": "ext4"},
                {"type": "partition", "mount": "/data", "size": "16", "file_system": data_fs},
                {"type": "partition", "mount": "/scratch", "size": "16", "file_system": "ext4",
                 "keep_data": false},
                {"type": "partition", "mount": "swap", "size": "16"}
            ]
        }],
        "deploy_data": {"kernel_params": "console=ttyS0 quiet panic=-1"}
    });
    if let Some(policy) = policy {
        config["partitions_policy"] = json!(policy);
    }
    config
}

/// `deployer plan CONFIG --disk vda=DISK --json`, which must succeed.
fn plan_json(config: &Path, disk: &Path) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .arg("plan")
        .arg(config)
        .arg("--disk")
        .arg(format!("vda={}", disk.display()))
        .arg("--json")
        .output()
        .expect("running deployer plan");
    assert!(out.status.success(), "plan: {}", describe_output(&out));
    serde_json::from_slice(&out.stdout).expect("plan --json prints JSON")
}

/// Deploys `config_text` onto `disk`, expecting a refusal (status 3) of one stderr line
/// containing `expected`, with the disk's bytes unchanged.
fn expect_refused(scratch: &TempDir, config_text: &str, disk: &Path, expected: &str) {
    let config = scratch.join("refused.json");
    std::fs::write(&config, config_text).expect("writing the config");
    let before = sha256(disk);
    let out = deploy(&config, disk, &scratch.join("refused-boot-info.json"));
    assert_eq!(out.status.code(), Some(3), "{}", describe_output(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(expected), "{expected}: {stderr}");
    assert_eq!(sha256(disk), before, "the disk was written: {stderr}");
}

#[test]
fn a_disk_not_as_planned_is_refused_byte_for_byte() {
    require_tools(&["sfdisk", "blkid", "sha256sum"]);
    let scratch = TempDir::new("policy-refused");
    let alpha = scratch.join("alpha");
    std::fs::create_dir(&alpha).expect("creating an image tree");
    let disk = scratch.join("node.img");

    let missing = config(&alpha, None, "ext4").to_string();
    expect_missing(&scratch, &missing, &disk);

    std::fs::File::create(&disk)
        .and_then(|f| f.set_len(400 << 20))
        .expect("creating a blank disk image");
    expect_refused(
        &scratch,
        &missing,
        &disk,
        &format!(
            "partitions[0]: disk \"vda\" ({}): partitions_policy verify keeps the partition \
             table, but it has no partition table sfdisk can read; \"partitions_policy\": \
             \"clean\" partitions the disk anew",
            disk.display()
        ),
    );

    gpt_disk_file(&disk, 400 << 20);
    let not_as_planned = "but it is not as planned: partition vda#1: size is 204800 sectors, \
                          the plan says 2048 (and ";
    expect_refused(
        &scratch,
        &config(&alpha, Some("verify"), "ext4").to_string(),
        &disk,
        not_as_planned,
    );
    let mut keeping_nothing = config(&alpha, Some("verify"), "ext4");
    for volume in keeping_nothing["partitions"][0]["volumes"]
        .as_array_mut()
        .expect("volumes")
    {
        volume["keep_data"] = json!(false);
    }
    expect_refused(
        &scratch,
        &keeping_nothing.to_string(),
        &disk,
        not_as_planned,
    );
    expect_refused(
        &scratch,
        &config(&alpha, Some("nailgun_legacy"), "ext4").to_string(),
        &disk,
        "partitions_policy nailgun_legacy keeps the partition table, but it is not as planned",
    );
}

/// A verify deploy onto a disk-image file that does not exist is refused and creates
/// nothing.
fn expect_missing(scratch: &TempDir, config_text: &str, disk: &Path) {
    let config = scratch.join("missing.json");
    std::fs::write(&config, config_text).expect("writing the config");
    let out = deploy(&config, disk, &scratch.join("missing-boot-info.json"));
    assert_eq!(out.status.code(), Some(3), "{}", describe_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("keeps the partition table, but it does not exist;"),
        "{}",
        describe_output(&out)
    );
    assert!(!disk.exists(), "the disk image was created");
}

#[test]
fn verify_writes_nothing_into_what_keeps_its_data_and_makes_the_rest_anew() {
    require_deploy_tools(TOOLS);
    let scratch = TempDir::new("policy-verify");
    let image = FixtureImage::new("alpha");
    let alpha = scratch.join("alpha");
    std::fs::create_dir(&alpha).expect("creating an image tree");
    populate_image(&alpha, &image);
    let disk = scratch.join("node.img");

    let clean = scratch.join("clean.json");
    std::fs::write(&clean, config(&alpha, Some("clean"), "ext4").to_string())
        .expect("writing the config");
    deploy_ok(
        &clean,
        &disk,
        &scratch.join("boot-info-clean.json"),
        "clean deploy",
    );

    // What the operator keeps: a file on every data volume; and the UUIDs.
    let before: Vec<String> = {
        let loop_disk = LoopDisk::attach(&disk);
        for number in [4, 5, 6] {
            let mount = Mount::new(
                &loop_disk.partition(number),
                &scratch.join(format!("write-{number}")),
                "rw",
            );
            std::fs::write(
                mount.path().join("kept.txt"),
                format!("partition {number}\n"),
            )
            .expect("writing a file to keep");
        }
        (4..=7).map(|n| fs_uuid(&loop_disk.partition(n))).collect()
    };

    // Bareon's default policy: no partitions_policy at all. The plan shows the UUIDs the
    // deploy keeps, read from the disk.
    let verify = scratch.join("verify.json");
    std::fs::write(&verify, config(&alpha, None, "ext4").to_string()).expect("writing the config");
    let planned = plan_json(&verify, &disk);
    assert_eq!(planned["images"][0]["root_uuid"], before[0].as_str());
    assert_eq!(
        planned["images"][0]["deployed"], false,
        "its / keeps its data"
    );
    let fstab = planned["images"][0]["fstab"].as_str().expect("an fstab");
    for (uuid, mount_point) in [
        (&before[0], "/"),
        (&before[1], "/data"),
        (&before[3], "none"),
    ] {
        assert!(
            fstab.contains(&format!("UUID={uuid} {mount_point} ")),
            "{uuid} {mount_point}: {fstab}"
        );
    }
    assert!(
        fstab.contains(&format!("UUID={} /scratch ", before[2])),
        "/scratch is made anew with the UUID of the ext4 it replaces: {fstab}"
    );
    let boot_info_path = scratch.join("boot-info-verify.json");
    let stderr = deploy_ok(&verify, &disk, &boot_info_path, "verify deploy");
    assert!(
        stderr.contains("keeping the partition table of disk vda"),
        "{stderr}"
    );
    assert!(!stderr.contains("already brought"), "{stderr}");
    assert!(
        stderr.contains(
            "deployer: image alpha: its / keeps its data and it is not deployed again: \
             /scratch (vda#6) is made anew and left empty"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("image alpha: its / keeps its data: not deployed again"),
        "{stderr}"
    );

    let info: Value = serde_json::from_str(
        &std::fs::read_to_string(&boot_info_path).expect("reading boot-info.json"),
    )
    .expect("boot-info.json");
    {
        let loop_disk = LoopDisk::attach(&disk);
        let after: Vec<String> = (4..=7).map(|n| fs_uuid(&loop_disk.partition(n))).collect();
        assert_eq!(after[0], before[0], "/ keeps its UUID");
        assert_eq!(after[1], before[1], "/data keeps its UUID");
        assert_eq!(
            after[2], before[2],
            "/scratch is made anew with the UUID of the ext4 it replaces"
        );
        assert_eq!(after[3], before[3], "swap keeps its UUID");
        assert_eq!(info["elements"][0]["root_uuid"], before[0].as_str());

        let root = Mount::new(&loop_disk.partition(4), &scratch.join("check-root"), "ro");
        assert_eq!(
            std::fs::read_to_string(root.path().join("kept.txt")).expect("the kept file on /"),
            "partition 4\n"
        );
        assert!(root.path().join("usr/sbin/bootctl").is_file());
        let fstab = std::fs::read_to_string(root.path().join("etc/fstab")).expect("fstab");
        for (uuid, mount_point) in after.iter().zip(["/", "/data", "/scratch", "none"]) {
            assert!(
                fstab.contains(&format!("UUID={uuid} {mount_point} ")),
                "{uuid} {mount_point}: {fstab}"
            );
        }
        let data = Mount::new(&loop_disk.partition(5), &scratch.join("check-data"), "ro");
        assert_eq!(
            std::fs::read_to_string(data.path().join("kept.txt")).expect("the kept file"),
            "partition 5\n"
        );
        let made = Mount::new(
            &loop_disk.partition(6),
            &scratch.join("check-scratch"),
            "ro",
        );
        assert!(
            !made.path().join("kept.txt").exists(),
            "/scratch (keep_data false) was made anew"
        );
    }

    // The same disk as a block device (a loop device, as a node's disk would be): the
    // kept table is read through partx; / keeps its UUID and file again.
    {
        let loop_disk = LoopDisk::attach(&disk);
        let out = deploy(
            &verify,
            loop_disk.device(),
            &scratch.join("boot-info-blockdev.json"),
        );
        assert!(
            out.status.success(),
            "verify onto {}: {}",
            loop_disk.device().display(),
            describe_output(&out)
        );
        loop_disk.reread_partitions();
        assert_eq!(fs_uuid(&loop_disk.partition(4)), before[0]);
        let root = Mount::new(&loop_disk.partition(4), &scratch.join("check-again"), "ro");
        assert!(root.path().join("kept.txt").is_file());
    }

    // / made anew while /data keeps its data: alpha is deployed again, onto its new / only;
    // /data is not written, its mount point is there for the image's fstab.
    let mut renewed = config(&alpha, Some("verify"), "ext4");
    renewed["partitions"][0]["volumes"][0]["keep_data"] = json!(false);
    let renewed_path = scratch.join("renewed.json");
    std::fs::write(&renewed_path, renewed.to_string()).expect("writing the config");
    let data_before = sha256(&LoopDisk::attach(&disk).partition(5));
    let stderr = deploy_ok(
        &renewed_path,
        &disk,
        &scratch.join("boot-info-renewed.json"),
        "verify, / anew",
    );
    assert!(!stderr.contains("not deployed again"), "{stderr}");
    {
        let loop_disk = LoopDisk::attach(&disk);
        assert_eq!(
            sha256(&loop_disk.partition(5)),
            data_before,
            "/data (kept) was written"
        );
        let root = Mount::new(
            &loop_disk.partition(4),
            &scratch.join("check-renewed"),
            "ro",
        );
        assert!(
            !root.path().join("kept.txt").exists(),
            "/ was not made anew"
        );
        assert!(
            root.path().join("data").is_dir(),
            "no mount point for /data"
        );
        assert!(root.path().join("usr/sbin/bootctl").is_file());
        let fstab = std::fs::read_to_string(root.path().join("etc/fstab")).expect("fstab");
        assert!(
            fstab.contains(&format!("UUID={} /data ", before[1])),
            "{fstab}"
        );
    }

    // A kept filesystem that is not what the plan keeps: refused, nothing written.
    expect_refused(
        &scratch,
        &config(&alpha, Some("verify"), "ext2").to_string(),
        &disk,
        "partition vda#5 (/data of alpha) keeps its data (keep_data), but it holds ext4, \
         the plan keeps ext2",
    );
}

/// The line Bareon's test adds to the fstab of the image whose root it keeps.
const USER_FSTAB_LINE: &str = "ftest-tmp /var/run tmpfs nodev,nosuid,noexec 0 0\n";

#[test]
fn verify_keeps_a_users_fstab_line_byte_for_byte_and_still_switches() {
    require_deploy_tools(TOOLS);
    let started = Instant::now();
    let scratch = TempDir::new("policy-fstab");
    // beta boots first (kept), shows its fstab and switches to alpha (deployed again
    // from the rsync daemon).
    let alpha = FixtureImage::new("alpha")
        .run_script(&format!("set -e\n{SHOW}show fstab cat /etc/fstab\n"));
    let beta = FixtureImage::new("beta").run_script(&format!(
        "set -e\n{SHOW}show fstab cat /etc/fstab\nshow switch bootctl switch {}\n",
        alpha.image_name
    ));
    let trees = scratch.join("trees");
    std::fs::create_dir(&trees).expect("creating the trees' directory");
    write_image_trees(&trees, &[&alpha, &beta]);
    let daemon = RsyncDaemon::start(&scratch, &trees, 3);
    let config = |policy: &str| {
        json!({
            "images": [
                {"name": "alpha", "image_name": alpha.image_name,
                 "image_pull_url": daemon.daemon_path("alpha/"), "target": "/"},
                {"name": "beta", "image_name": beta.image_name, "boot": true,
                 "image_pull_url": trees.join("beta"), "target": "/"}
            ],
            "partitions": [{
                "type": "disk", "id": {"type": "name", "value": "vda"}, "size": "500 MiB",
                "volumes": [
                    {"type": "partition", "mount": "/", "size": "160", "images": ["alpha"],
                     "file_system": "ext4", "keep_data": false},
                    {"type": "partition", "mount": "/", "size": "160", "images": ["beta"],
                     "file_system": "ext4"}
                ]
            }],
            "partitions_policy": policy,
            "deploy_data": {"kernel_params": "console=ttyS0 quiet panic=-1"}
        })
        .to_string()
    };
    let disk = scratch.join("node.img");
    let clean = scratch.join("clean.json");
    std::fs::write(&clean, config("clean")).expect("writing the config");
    deploy_ok(
        &clean,
        &disk,
        &scratch.join("boot-info-clean.json"),
        "clean deploy",
    );

    // The user's line in beta's fstab, and a file on alpha's / that is made anew.
    let beta_root_before = {
        let loop_disk = LoopDisk::attach(&disk);
        let root = Mount::new(&loop_disk.partition(5), &scratch.join("edit-beta"), "rw");
        let fstab = root.path().join("etc/fstab");
        let mut text = std::fs::read_to_string(&fstab).expect("beta's fstab");
        text.push('\n');
        text.push_str(USER_FSTAB_LINE);
        std::fs::write(&fstab, text).expect("adding the user's line");
        drop(root);
        let stale = Mount::new(&loop_disk.partition(4), &scratch.join("edit-alpha"), "rw");
        std::fs::write(stale.path().join("stale.txt"), "gone after verify\n")
            .expect("writing onto alpha's /");
        drop(stale);
        sha256(&loop_disk.partition(5))
    };

    let verify = scratch.join("verify.json");
    std::fs::write(&verify, config("verify")).expect("writing the config");
    let boot_info = scratch.join("boot-info.json");
    let stderr = deploy_ok(&verify, &disk, &boot_info, "verify deploy");
    assert!(
        stderr.contains("image beta: its / keeps its data: not deployed again"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(scratch.join("boot_entries.json")).expect("boot_entries.json"),
        std::fs::read(&boot_info).expect("boot-info.json"),
    );
    {
        let loop_disk = LoopDisk::attach(&disk);
        assert_eq!(
            sha256(&loop_disk.partition(5)),
            beta_root_before,
            "beta's root partition changed under verify"
        );
        let alpha_root = Mount::new(&loop_disk.partition(4), &scratch.join("check-alpha"), "ro");
        assert!(
            !alpha_root.path().join("stale.txt").exists(),
            "alpha's / was not made anew"
        );
        assert!(alpha_root.path().join("usr/sbin/bootctl").is_file());
    }
    eprintln!("policy-fstab: two deploys took {:.1?}", started.elapsed());

    let boots = boot_chain(
        &disk,
        Firmware::Bios,
        BOOT_TIMEOUT,
        "policy-fstab",
        &[
            Expect::first("beta"),
            Expect::after("alpha", "beta (kept by verify) ran `bootctl switch alpha`"),
        ],
    );
    let fstab = shown(&boots[0].run_output, "fstab").stdout;
    assert!(
        fstab.lines().last() == Some(USER_FSTAB_LINE.trim_end()),
        "beta's fstab lost the user's line: {fstab}"
    );
    let alpha_fstab = shown(&boots[1].run_output, "fstab").stdout;
    assert!(
        !alpha_fstab.contains("ftest-tmp"),
        "alpha's fstab: {alpha_fstab}"
    );
    eprintln!("policy-fstab: took {:.1?}", started.elapsed());
}

/// Alpha's `/` on disk vda, beta's (booting by default) on all of disk vdb.
fn two_disks_config(alpha: &Path, beta: &Path, policy: &str) -> Value {
    json!({
        "images": [
            {"name": "alpha", "image_pull_url": alpha, "target": "/"},
            {"name": "beta", "image_pull_url": beta, "target": "/", "boot": true}],
        "partitions": [
            {"type": "disk", "id": {"type": "name", "value": "vda"}, "size": "300 MiB",
             "volumes": [{"type": "partition", "mount": "/", "size": "160",
                          "file_system": "ext4", "images": ["alpha"]}]},
            {"type": "disk", "id": {"type": "name", "value": "vdb"}, "size": "200 MiB",
             "volumes": [{"type": "partition", "mount": "/", "size": "100%",
                          "file_system": "ext4", "images": ["beta"]}]}],
        "partitions_policy": policy,
        "deploy_data": {"kernel_params": "console=ttyS0 quiet panic=-1"}
    })
}

/// `deployer deploy CONFIG --disk vda=VDA --disk vdb=VDB ...` with `extra` arguments.
fn deploy_two(config: &Path, vda: &Path, vdb: &Path, boot_info: &Path, extra: &[&str]) -> Output {
    let mut deploy = deploy_command(
        Path::new(env!("CARGO_BIN_EXE_deployer")),
        config,
        vda,
        boot_info,
    );
    deploy
        .arg("--disk")
        .arg(format!("vdb={}", vdb.display()))
        .args(extra);
    deploy.output().expect("running deployer")
}

/// `(start, size, type, name)` of every partition, and the first usable sector, as
/// `sfdisk -J` reads them.
fn table(disk: &Path) -> (Vec<(u64, u64, String, String)>, u64) {
    let out = std::process::Command::new("sfdisk")
        .arg("-J")
        .arg(disk)
        .output()
        .expect("running sfdisk");
    let json: Value = serde_json::from_slice(&out.stdout).expect("sfdisk -J prints JSON");
    let table = &json["partitiontable"];
    let partitions = table["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            (
                p["start"].as_u64().unwrap(),
                p["size"].as_u64().unwrap(),
                p["type"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    (partitions, table["firstlba"].as_u64().unwrap())
}

#[test]
fn bareons_layout_boots_from_the_second_disk_and_verify_recognises_it() {
    require_deploy_tools(&["sfdisk"]);
    let scratch = TempDir::new("bareon-layout");
    let mut trees = Vec::new();
    for name in ["alpha", "beta"] {
        let tree = scratch.join(name);
        std::fs::create_dir(&tree).expect("creating an image tree");
        populate_image(&tree, &FixtureImage::new(name));
        trees.push(tree);
    }
    let (vda, vdb) = (scratch.join("vda.img"), scratch.join("vdb.img"));
    let clean = scratch.join("clean.json");
    std::fs::write(
        &clean,
        two_disks_config(&trees[0], &trees[1], "clean").to_string(),
    )
    .expect("writing the config");
    let started = std::time::Instant::now();
    let out = deploy_two(
        &clean,
        &vda,
        &vdb,
        &scratch.join("bi-clean.json"),
        &["--layout", "bareon"],
    );
    assert!(
        out.status.success(),
        "bareon deploy: {}",
        describe_output(&out)
    );
    eprintln!(
        "--layout bareon deploy of two disks: {:.1?}",
        started.elapsed()
    );

    // Exactly the tables Bareon makes of these disks for this config: its allocator
    // (bareon/utils/block_device.py, run as it is) gives these sectors, its sgdisk calls
    // (SGDisk.new) these types and names, and sgdisk the first usable sector 34.
    let bios_boot = "21686148-6449-6E6F-744E-656564454649".to_owned();
    let linux = "0FC63DAF-8483-4772-8E79-3D69D8477DE4".to_owned();
    let primary = "primary".to_owned();
    let vda_table = table(&vda);
    assert_eq!(
        vda_table,
        (
            vec![
                (2048, 49152, bios_boot.clone(), primary.clone()),
                (51200, 204_800, linux.clone(), primary.clone()),
                (256_000, 327_680, linux.clone(), primary.clone()),
            ],
            34
        )
    );
    let vdb_table = table(&vdb);
    assert_eq!(
        vdb_table,
        (
            vec![
                (2048, 49152, bios_boot, primary.clone()),
                (51200, 358_366, linux, primary),
            ],
            34
        )
    );

    // Booted with vdb first and vda's boot code cleared (the MBR's first 440 bytes,
    // which the next deploy writes again), so that only vdb's GRUB can start; it finds
    // the multiboot partition on vda.
    {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&vda)
            .expect("opening vda.img");
        file.write_all(&[0; 440]).expect("clearing vda's boot code");
    }
    let outcome = e2e::qemu::boot_disks(
        &[&vdb, &vda],
        Firmware::Bios,
        BOOT_TIMEOUT,
        "bareon-layout-vdb",
    );
    expect_boot(&outcome, "beta", "boot from the second disk's GRUB");
    eprintln!("boot from vdb: {:.1?}", outcome.elapsed);

    // Bareon's default policy, without --layout: the disks are recognised as Bareon's
    // and kept as they are.
    let verify = scratch.join("verify.json");
    std::fs::write(
        &verify,
        two_disks_config(&trees[0], &trees[1], "verify").to_string(),
    )
    .expect("writing the config");
    let started = std::time::Instant::now();
    let out = deploy_two(&verify, &vda, &vdb, &scratch.join("bi-verify.json"), &[]);
    assert!(
        out.status.success(),
        "verify deploy: {}",
        describe_output(&out)
    );
    eprintln!("verify deploy: {:.1?}", started.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for disk in ["vda", "vdb"] {
        assert!(
            stderr.contains(&format!("keeping the partition table of disk {disk}")),
            "{stderr}"
        );
    }
    assert_eq!(table(&vda), vda_table);
    assert_eq!(table(&vdb), vdb_table);
}
