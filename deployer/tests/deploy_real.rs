//! `deployer deploy` for real, as root: two fixture image trees (directories) and a
//! partition shared by both deployed onto a fresh sparse disk-image file, the result
//! checked with the real tools (sfdisk, blkid, grub-script-check, mdir), then booted in
//! QEMU: the `boot: true` image comes up on BIOS and on UEFI, and after `bootctl switch`
//! on the disk the other one.
//! Configs this host cannot deploy are refused before any write.
//!
//! A missing tool fails the test and names `scripts/setup`.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use e2e::bootctl::{bootctl, static_bootctl};
use e2e::cmd::describe_output;
use e2e::deploy::one_image_config;
use e2e::disk::{blkid, fingerprint, fstab_uuid, gpt_disk_file, LoopDisk, Mount};
use e2e::fixture::{populate_image, write_image_trees, FixtureImage};
use e2e::qemu::{boot, expect_boot, Firmware};
use e2e::tmp::TempDir;
use e2e::tools::{require_deploy_tools, require_tools};
use serde_json::Value;

const TOOLS: &[&str] = &["mdir", "rsync", "grub-script-check"];

const KERNEL_PARAMS: &str = "console=ttyS0 quiet panic=-1";
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

/// `deployer deploy CONFIG --disk NAME=PATH... --bootctl BOOTCTL [--boot-info INFO]
/// EXTRA...`.
fn deploy(
    config: &Path,
    disks: &[(&str, &Path)],
    bootctl: &Path,
    boot_info: Option<&Path>,
    extra: &[&str],
) -> Output {
    let mut deploy = Command::new(env!("CARGO_BIN_EXE_deployer"));
    deploy.arg("deploy").arg(config);
    for (name, path) in disks {
        deploy
            .arg("--disk")
            .arg(format!("{name}={}", path.display()));
    }
    deploy.arg("--bootctl").arg(bootctl);
    if let Some(path) = boot_info {
        deploy.arg("--boot-info").arg(path);
    }
    deploy
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("running deployer")
}

/// [`deploy`] of `config` onto disk `vda` at `disk` with the static bootctl and `--yes`,
/// boot-info.json going to `boot_info` (the deployer's default place when `None`); panics,
/// naming `what`, unless it succeeds.
fn deploy_vda(config: &Path, disk: &Path, boot_info: Option<&Path>, what: &str) -> Output {
    let out = deploy(
        config,
        &[("vda", disk)],
        static_bootctl(),
        boot_info,
        &["--yes"],
    );
    assert!(
        out.status.success(),
        "{what} failed: {}",
        describe_output(&out)
    );
    out
}

/// A deploy refused before any write: status 3 and `expected` in its stderr.
fn assert_refused(out: &Output, expected: &str) {
    assert_eq!(out.status.code(), Some(3), "{}", describe_output(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(expected), "{stderr}");
}

/// `sfdisk -J DISK`: the partition table, and the sizes of its partitions in MiB.
fn partition_table(disk: &Path) -> (Value, Vec<u64>) {
    let table: Value = serde_json::from_slice(
        &Command::new("sfdisk")
            .arg("-J")
            .arg(disk)
            .output()
            .expect("sfdisk -J")
            .stdout,
    )
    .unwrap_or_else(|e| {
        panic!(
            "sfdisk -J {}: no partition table as JSON: {e}",
            disk.display()
        )
    });
    let sizes = table["partitiontable"]["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| p["size"].as_u64().expect("size") / 2048)
        .collect();
    (table, sizes)
}

/// The boot-info.json at `path`.
fn read_boot_info(path: &Path) -> Value {
    serde_json::from_str(&read(path)).expect("boot-info.json")
}

/// The multiboot partition's filesystem UUID a boot-info.json names.
fn multiboot_uuid(info: &Value) -> String {
    info["multiboot_partition"]
        .as_str()
        .expect("uuid")
        .to_owned()
}

/// The two-image config: alpha and beta with their own `/` of 160 MiB, a shared
/// `/usr/share/common` of 32 MiB, beta boots by default.
fn config(alpha: &str, beta: &str, alpha_uuid: &str, beta_uuid: &str) -> String {
    serde_json::json!({
        "images": [
            {"name": "alpha", "image_name": "image-alpha-1.0", "image_uuid": alpha_uuid,
             "image_pull_url": alpha, "target": "/"},
            {"name": "beta", "boot": true, "image_name": "image-beta-1.0",
             "image_uuid": beta_uuid, "image_pull_url": beta, "target": "/"}
        ],
        "partitions": [{
            "type": "disk", "id": {"type": "name", "value": "vda"}, "size": "600 MiB",
            "volumes": [
                {"type": "partition", "mount": "/", "size": "160", "images": ["alpha"],
                 "file_system": "ext4"},
                {"type": "partition", "mount": "/", "size": "160", "images": ["beta"],
                 "file_system": "ext4"},
                {"type": "partition", "mount": "/usr/share/common", "size": "32",
                 "images": ["alpha", "beta"], "file_system": "ext4"}
            ]
        }],
        "partitions_policy": "clean",
        "deploy_data": {"kernel_params": KERNEL_PARAMS}
    })
    .to_string()
}

/// Plain alpha and beta trees in `scratch` and the two-image [`config`] that deploys them,
/// written to `scratch/provision.json`; returns that path.
fn write_plain_two_image_config(scratch: &TempDir) -> PathBuf {
    let alpha = FixtureImage::new("alpha");
    let beta = FixtureImage::new("beta");
    write_image_trees(scratch.path(), &[&alpha, &beta]);
    let config_path = scratch.join("provision.json");
    std::fs::write(
        &config_path,
        config(
            &scratch.join("alpha").display().to_string(),
            &scratch.join("beta").display().to_string(),
            &alpha.image_uuid,
            &beta.image_uuid,
        ),
    )
    .expect("writing provision.json");
    config_path
}

/// alpha has its kernel on a /boot partition of its own, named the Red Hat way
/// (`vmlinuz-V`, `initramfs-V.img`); GRUB must load it from there, by that filesystem's
/// UUID, and the image must mount /boot through its fstab. alpha boots by default, then
/// beta after a switch on the disk.
#[test]
fn a_separate_boot_partition_and_red_hat_kernel_names_boot() {
    require_deploy_tools(TOOLS);
    let scratch = TempDir::new("deploy-boot-part");
    let alpha = FixtureImage::new("alpha");
    let beta = FixtureImage::new("beta");
    write_image_trees(scratch.path(), &[&alpha, &beta]);
    let boot_dir = scratch.join("alpha/boot");
    let initrd = std::fs::read_dir(&boot_dir)
        .expect("alpha's /boot")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("initrd.img-"))
        .expect("an initrd in alpha's /boot");
    let version = initrd.trim_start_matches("initrd.img-").to_owned();
    std::fs::rename(
        boot_dir.join(&initrd),
        boot_dir.join(format!("initramfs-{version}.img")),
    )
    .expect("renaming the initrd");
    let config_path = scratch.join("provision.json");
    std::fs::write(
        &config_path,
        serde_json::json!({
            "images": [
                {"name": "alpha", "boot": true, "image_pull_url": scratch.join("alpha"),
                 "target": "/"},
                {"name": "beta", "image_pull_url": scratch.join("beta"), "target": "/"}
            ],
            "partitions": [{
                "type": "disk", "id": {"type": "name", "value": "vda"}, "size": "600 MiB",
                "volumes": [
                    {"type": "partition", "mount": "/", "size": "100", "images": ["alpha"]},
                    {"type": "partition", "mount": "/boot", "size": "100", "images": ["alpha"],
                     "file_system": "ext2"},
                    {"type": "partition", "mount": "/", "size": "160", "images": ["beta"]}
                ]
            }],
            "partitions_policy": "clean",
            "deploy_data": {"kernel_params": KERNEL_PARAMS}
        })
        .to_string(),
    )
    .expect("writing provision.json");
    let disk = scratch.join("node.img");
    deploy_vda(
        &config_path,
        &disk,
        Some(&scratch.join("boot-info.json")),
        "deploy",
    );
    {
        let loop_disk = LoopDisk::attach(&disk);
        let boot_part = blkid(&loop_disk.partition(5));
        let root = Mount::new(&loop_disk.partition(4), &scratch.join("alpha-root"), "ro");
        let fstab = read(&root.path().join("etc/fstab"));
        assert_eq!(
            Some(&fstab_uuid(&fstab, "/boot")),
            boot_part.get("UUID"),
            "{fstab}"
        );
        let boot = Mount::new(&loop_disk.partition(5), &scratch.join("alpha-boot"), "ro");
        assert!(boot
            .path()
            .join(format!("initramfs-{version}.img"))
            .is_file());
        let multiboot = Mount::new(&loop_disk.partition(3), &scratch.join("mb"), "ro");
        let cfg = read(&multiboot.path().join("boot/grub/grub.cfg"));
        e2e::grubcfg::script_check(&cfg);
        let uuid = boot_part.get("UUID").expect("the /boot UUID");
        assert!(
            cfg.contains(&format!("--fs-uuid --set=root '{uuid}'"))
                && cfg.contains(&format!("initrd '/initramfs-{version}.img'")),
            "alpha's entry loads its kernel from its /boot partition:\n{cfg}"
        );
    }

    let first = boot(&disk, Firmware::Bios, BOOT_TIMEOUT, "deploy-boot-part-1");
    expect_boot(
        &first,
        "alpha",
        "alpha, its kernel on its own /boot partition",
    );
    let disk_arg = disk.display().to_string();
    bootctl(&["--disk", &disk_arg, "switch", "beta"]).expect_code(0);
    let second = boot(&disk, Firmware::Bios, BOOT_TIMEOUT, "deploy-boot-part-2");
    expect_boot(&second, "beta", "beta after bootctl switch beta");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn two_images_and_a_shared_partition_deploy_and_boot() {
    require_deploy_tools(TOOLS);
    let scratch = TempDir::new("deploy-real");
    let alpha =
        FixtureImage::new("alpha").file("usr/share/common/alpha.txt", "from alpha\n", 0o644);
    let beta = FixtureImage::new("beta").file("usr/share/common/beta.txt", "from beta\n", 0o644);
    write_image_trees(scratch.path(), &[&alpha, &beta]);
    let alpha_url = format!("file://{}", scratch.join("alpha").display());
    let beta_dir = scratch.join("beta").display().to_string();
    let config_path = scratch.join("provision.json");
    std::fs::write(
        &config_path,
        config(&alpha_url, &beta_dir, &alpha.image_uuid, &beta.image_uuid),
    )
    .expect("writing provision.json");
    let disk = scratch.join("node.img");
    let boot_info_path = scratch.join("boot-info.json");

    let started = Instant::now();
    deploy_vda(&config_path, &disk, Some(&boot_info_path), "deploy");
    eprintln!("deploy took {:.1?}", started.elapsed());
    assert_eq!(
        std::fs::metadata(&disk).expect("the disk image").len(),
        600 << 20
    );

    // The partition table.
    let (table, sizes) = partition_table(&disk);
    assert_eq!(sizes, [1, 64, 100, 160, 160, 32], "{table}");
    assert_eq!(table["partitiontable"]["label"], "gpt");

    // boot-info.json, at --boot-info.
    let info = read_boot_info(&boot_info_path);
    let elements = info["elements"].as_array().expect("elements");
    assert_eq!(elements.len(), 2, "{info}");
    for (i, (element, image)) in elements.iter().zip([&alpha, &beta]).enumerate() {
        assert_eq!(element["grub_id"], i, "{info}");
        assert_eq!(element["name"], image.name.as_str());
        assert_eq!(element["image_name"], image.image_name.as_str());
        assert_eq!(element["image_uuid"], image.image_uuid.as_str());
        assert_eq!(element["os_id"], "fixture");
        assert_eq!(element["boot_name"], image.title.as_str());
    }
    assert_eq!(info["current_element"], 1, "beta is the default: {info}");
    let multiboot_uuid = multiboot_uuid(&info);

    // Filesystems, and what each image holds.
    let loop_disk = LoopDisk::attach(&disk);
    let fs: Vec<BTreeMap<String, String>> =
        (1..=6).map(|n| blkid(&loop_disk.partition(n))).collect();
    assert_eq!(fs[1].get("TYPE").map(String::as_str), Some("vfat"));
    assert_eq!(fs[2].get("TYPE").map(String::as_str), Some("ext4"));
    assert_eq!(fs[2].get("LABEL").map(String::as_str), Some("multiboot"));
    assert_eq!(fs[2].get("UUID"), Some(&multiboot_uuid));
    let mut common_uuid = None;
    for (element, number) in elements.iter().zip([4u32, 5]) {
        let name = element["name"].as_str().expect("name");
        let root_uuid = element["root_uuid"].as_str().expect("root_uuid");
        let found = &fs[number as usize - 1];
        assert_eq!(
            found.get("TYPE").map(String::as_str),
            Some("ext4"),
            "{name}"
        );
        assert_eq!(
            found.get("UUID").map(String::as_str),
            Some(root_uuid),
            "{name}"
        );
        let mount = Mount::new(
            &loop_disk.partition(number),
            &scratch.join(format!("check-{name}")),
            "ro",
        );
        let root = mount.path();
        let fstab = read(&root.join("etc/fstab"));
        assert_eq!(fstab_uuid(&fstab, "/"), root_uuid, "{name} fstab:\n{fstab}");
        let common = fstab_uuid(&fstab, "/usr/share/common");
        assert_eq!(common_uuid.get_or_insert(common.clone()), &common);
        assert!(
            !fstab.contains(&multiboot_uuid),
            "{name}: multiboot in fstab"
        );
        let bootctl = std::fs::metadata(root.join("usr/sbin/bootctl")).expect("bootctl");
        assert_eq!(bootctl.permissions().mode() & 0o777, 0o755);
        assert_eq!(
            bootctl.len(),
            std::fs::metadata(static_bootctl()).unwrap().len()
        );
        assert_eq!(
            serde_json::from_str::<Value>(&read(&root.join("etc/multiboot/boot-info.json")))
                .expect("the image's boot-info.json"),
            info,
            "{name}"
        );
    }
    assert_eq!(fs[5].get("UUID"), common_uuid.as_ref());
    {
        let common = Mount::new(&loop_disk.partition(6), &scratch.join("check-common"), "ro");
        assert_eq!(read(&common.path().join("alpha.txt")), "from alpha\n");
        assert_eq!(read(&common.path().join("beta.txt")), "from beta\n");
    }
    {
        let multiboot = Mount::new(&loop_disk.partition(3), &scratch.join("check-mb"), "ro");
        let grub = multiboot.path().join("boot/grub");
        let cfg = read(&grub.join("grub.cfg"));
        e2e::grubcfg::script_check(&cfg);
        assert!(cfg.contains("'multiboot-alpha'") && cfg.contains("'multiboot-beta'"));
        assert!(cfg.contains(KERNEL_PARAMS.split(' ').next().unwrap()));
        let env = std::fs::read(grub.join("grubenv")).expect("grubenv");
        assert_eq!(env.len(), 1024);
        assert!(String::from_utf8_lossy(&env).contains("saved_entry=multiboot-beta\n"));
        assert!(grub.join("i386-pc/core.img").is_file());
        assert!(grub.join("x86_64-efi/normal.mod").is_file());
        assert_eq!(
            serde_json::from_str::<Value>(&read(&multiboot.path().join("boot-info.json")))
                .expect("boot-info.json"),
            info
        );
    }
    let esp = loop_disk.partition(2).display().to_string();
    let efi_dir = Command::new("mdir")
        .args(["-i", &esp, "-b", "::/EFI/BOOT"])
        .output()
        .expect("running mdir");
    assert_eq!(
        String::from_utf8_lossy(&efi_dir.stdout).trim(),
        "::/EFI/BOOT/BOOTX64.EFI",
        "the ESP: {}",
        describe_output(&efi_dir)
    );
    drop(loop_disk);

    // The proof: beta comes up on BIOS and on UEFI; after a switch on the disk, alpha.
    let first = boot(&disk, Firmware::Bios, BOOT_TIMEOUT, "deploy-real-bios-1");
    expect_boot(&first, "beta", "first boot of the deployed disk (BIOS)");
    let uefi = boot(&disk, Firmware::Uefi, BOOT_TIMEOUT, "deploy-real-uefi-1");
    expect_boot(&uefi, "beta", "first boot of the deployed disk (UEFI)");
    let disk_arg = disk.display().to_string();
    bootctl(&["--disk", &disk_arg, "switch", "alpha"]).expect_code(0);
    let second = boot(&disk, Firmware::Bios, BOOT_TIMEOUT, "deploy-real-bios-2");
    expect_boot(&second, "alpha", "boot after bootctl switch alpha");
}

/// How a deploy of LVM or RAID is refused on this host.
const NO_LVM_RAID: &str = "LVM/RAID: not supported on this host (no device-mapper/md)";

/// The example `examples/NAME.json` with `"partitions_policy": "clean"`, written to
/// `scratch`: the examples keep Bareon's default, verify, which would refuse the blank
/// test disks for their tables before the host is asked whether it can deploy LVM or RAID.
fn clean_example(scratch: &TempDir, name: &str) -> PathBuf {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("examples/{name}.json"));
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&example).expect("reading the example"))
            .expect("the example is JSON");
    config["partitions_policy"] = Value::from("clean");
    let path = scratch.join(format!("{name}.json"));
    std::fs::write(&path, config.to_string()).expect("writing the config");
    path
}

#[test]
fn an_lvm_config_is_refused_and_the_disk_left_unchanged() {
    require_tools(&["sfdisk"]);
    let scratch = TempDir::new("deploy-lvm");
    let disk = scratch.join("node.img");
    gpt_disk_file(&disk, 8 << 30);
    let before = fingerprint(&disk);
    let out = deploy(
        &clean_example(&scratch, "lvm"),
        &[("disk/by-path/pci-0000:00:07.0-virtio-pci-virtio3", &disk)],
        static_bootctl(),
        None,
        &["--yes"],
    );
    assert_refused(&out, NO_LVM_RAID);
    assert_eq!(fingerprint(&disk), before, "the disk was written");
}

#[test]
fn a_raid_config_is_refused_and_both_disks_left_unchanged() {
    require_tools(&["sfdisk"]);
    let scratch = TempDir::new("deploy-raid");
    let (sda, scsi) = (scratch.join("sda.img"), scratch.join("scsi.img"));
    gpt_disk_file(&sda, 16 << 30);
    gpt_disk_file(&scsi, 24 << 30);
    let before = [fingerprint(&sda), fingerprint(&scsi)];
    let out = deploy(
        &clean_example(&scratch, "raid"),
        &[("sda", &sda), ("6:1:0:0", &scsi)],
        static_bootctl(),
        None,
        &["--yes"],
    );
    assert_refused(&out, NO_LVM_RAID);
    assert_eq!(
        [fingerprint(&sda), fingerprint(&scsi)],
        before,
        "a disk was written"
    );
}

/// Writes `scratch/FILE`, a config deploying the image `solo` from `url` onto disk `vda`
/// of `disk_size` holding `volumes`; returns its path.
fn write_solo_config(
    scratch: &TempDir,
    file: &str,
    url: &str,
    disk_size: &str,
    volumes: Value,
) -> PathBuf {
    let config = one_image_config(
        serde_json::json!({"name": "solo", "image_pull_url": url, "target": "/"}),
        disk_size,
        volumes,
    );
    let path = scratch.join(file);
    std::fs::write(&path, config.to_string()).expect("writing the config");
    path
}

/// [`write_solo_config`] for an image that is the empty directory `scratch/tree`, for
/// deploys refused before they read it.
fn write_empty_solo_config(
    scratch: &TempDir,
    file: &str,
    disk_size: &str,
    volumes: Value,
) -> PathBuf {
    let tree = scratch.join("tree");
    std::fs::create_dir(&tree).expect("creating an image tree");
    write_solo_config(
        scratch,
        file,
        &tree.display().to_string(),
        disk_size,
        volumes,
    )
}

/// Runs deploy of a one-image config whose image comes from `url` onto `disk`.
fn deploy_one(scratch: &TempDir, url: &str, disk: &Path, extra: &[&str]) -> Output {
    let path = write_solo_config(
        scratch,
        "solo.json",
        url,
        "400 MiB",
        serde_json::json!([{"type": "partition", "mount": "/", "size": "100",
                            "file_system": "ext4"}]),
    );
    let bootctl = scratch.join("bootctl");
    std::fs::write(&bootctl, b"#!/bin/sh\n").expect("writing a stand-in bootctl");
    deploy(&path, &[("vda", disk)], &bootctl, None, extra)
}

#[test]
fn sources_that_cannot_be_deployed_are_refused_before_any_write() {
    require_tools(&["rsync"]);
    let scratch = TempDir::new("deploy-source");
    let unknown = scratch.join("image.tar");
    std::fs::write(&unknown, b"not a directory").expect("writing a file");
    let disk = scratch.join("node.img");
    for (url, expected) in [
        (
            "http://127.0.0.1:9/image.tar.gz".to_owned(),
            "image solo: http://127.0.0.1:9/image.tar.gz: a download needs its \"sha256\"",
        ),
        (
            "rsync://127.0.0.1:9/images/solo/".to_owned(),
            "image solo: source does not answer: list the rsync source",
        ),
        (
            unknown.display().to_string(),
            "not a tar archive, raw filesystem image or qcow2 image (content unknown)",
        ),
        (
            scratch.join("no-such-dir").display().to_string(),
            "does not exist",
        ),
    ] {
        let out = deploy_one(&scratch, &url, &disk, &["--yes"]);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{url}: {}",
            describe_output(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{url}: {stderr}");
        assert!(!disk.exists(), "{url}: the disk image was created");
    }
}

/// [`deploy_one`] of `source`, an image tree without a kernel, which must fail after
/// partitioning (status 1) naming the missing kernel; returns its stderr.
fn deploy_without_kernel(scratch: &TempDir, source: &Path, disk: &Path, extra: &[&str]) -> String {
    let out = deploy_one(scratch, &source.display().to_string(), disk, extra);
    assert_eq!(out.status.code(), Some(1), "{}", describe_output(&out));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains("deploy failed: image solo: no kernel (vmlinuz-*) in /boot"),
        "{stderr}"
    );
    stderr
}

#[test]
fn without_a_terminal_deploy_needs_yes() {
    let scratch = TempDir::new("deploy-noyes");
    let source = scratch.join("solo");
    std::fs::create_dir(&source).expect("creating a source directory");
    let disk = scratch.join("node.img");
    let out = deploy_one(&scratch, &source.display().to_string(), &disk, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("use --yes to deploy without a terminal"),
        "{}",
        describe_output(&out)
    );
    assert!(!disk.exists());
}

/// A user other than root: deploy exits 4 with one line saying so and creates nothing;
/// validate and plan of the same config work without privileges.
#[test]
fn deploy_as_non_root_exits_4_while_validate_and_plan_work() {
    require_tools(&["setpriv"]);
    let scratch = TempDir::new("deploy-non-root");
    let config = write_empty_solo_config(
        &scratch,
        "solo.json",
        "400 MiB",
        serde_json::json!([{"type": "partition", "mount": "/", "size": "100"}]),
    );
    let disk = scratch.join("node.img");
    let disk_arg = format!("vda={}", disk.display());
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_deployer"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running setpriv")
    };
    let config_arg = config.to_str().expect("a UTF-8 path");
    let out = as_nobody(&[
        "deploy",
        config_arg,
        "--disk",
        &disk_arg,
        "--bootctl",
        config_arg,
        "--yes",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", describe_output(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        "deployer: deploy must be run as root (it partitions disks and mounts filesystems); \
         validate and plan need no privileges\n"
    );
    assert!(!disk.exists(), "the disk image was created");
    let validate = as_nobody(&["validate", config_arg]);
    assert_eq!(
        validate.status.code(),
        Some(0),
        "{}",
        describe_output(&validate)
    );
    let plan = as_nobody(&["plan", config_arg, "--disk", &disk_arg]);
    assert_eq!(plan.status.code(), Some(0), "{}", describe_output(&plan));
}

#[test]
fn a_failure_after_partitioning_wipes_the_table_and_leaves_nothing_behind() {
    require_tools(&[
        "wipefs",
        "sfdisk",
        "mkfs.ext4",
        "mkfs.vfat",
        "rsync",
        "blkid",
    ]);
    let scratch = TempDir::new("deploy-fail");
    let source = scratch.join("solo");
    std::fs::create_dir_all(source.join("boot")).expect("creating an image without a kernel");
    std::fs::write(source.join("hello"), b"hello\n").expect("writing a file");
    let disk = scratch.join("node.img");
    let stderr = deploy_without_kernel(&scratch, &source, &disk, &["--yes"]);
    assert!(
        stderr.contains("wiped the partition table of disk vda"),
        "{stderr}"
    );
    let probe = blkid(&disk);
    assert!(
        !probe.contains_key("PTTYPE"),
        "a partition table survived: {probe:?}"
    );
    // The deployer mounts in a private namespace that ends with it; its loop device
    // must be gone too.
    assert_not_attached(&disk);
}

#[test]
fn a_missing_program_is_refused_before_any_write() {
    let scratch = TempDir::new("deploy-path");
    let config = write_empty_solo_config(
        &scratch,
        "solo.json",
        "600 MiB",
        serde_json::json!([{"type": "partition", "mount": "/", "size": "300",
                            "file_system": "xfs"}]),
    );
    let disk = scratch.join("node.img");
    let out = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .arg("deploy")
        .arg(&config)
        .arg("--disk")
        .arg(format!("vda={}", disk.display()))
        .arg("--bootctl")
        .arg(static_bootctl())
        .arg("--yes")
        .env("PATH", scratch.join("empty-path"))
        .stdin(Stdio::null())
        .output()
        .expect("running deployer");
    assert_eq!(out.status.code(), Some(3), "{}", describe_output(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for program in ["grub-mkimage", "mkfs.xfs", "sfdisk"] {
        assert!(
            stderr.contains(&format!("deployer: {program}: program not found in PATH")),
            "{program}: {stderr}"
        );
    }
    assert!(!disk.exists(), "the disk image was created");
}

/// The disk is a block device (a loop device the test attached, as a real node's disk
/// would be), deployed twice in a row: the second deploy redoes everything over the first
/// one, and the disk boots.
#[test]
fn a_block_device_deploys_twice_and_boots() {
    require_deploy_tools(TOOLS);
    let scratch = TempDir::new("deploy-blockdev");
    let config_path = write_plain_two_image_config(&scratch);
    let image_file = scratch.join("node.img");
    let loop_disk = LoopDisk::create(&image_file, 600 << 20);
    let device = loop_disk.device().display().to_string();
    let mut multiboot_uuids = Vec::new();
    for attempt in ["first", "second"] {
        let boot_info = scratch.join(format!("boot-info-{attempt}.json"));
        deploy_vda(
            &config_path,
            Path::new(&device),
            Some(&boot_info),
            &format!("{attempt} deploy onto {device}"),
        );
        multiboot_uuids.push(multiboot_uuid(&read_boot_info(&boot_info)));
    }
    assert_ne!(
        multiboot_uuids[0], multiboot_uuids[1],
        "every deploy makes new filesystems"
    );
    loop_disk.reread_partitions();
    assert_eq!(
        blkid(&loop_disk.partition(3)).get("UUID"),
        Some(&multiboot_uuids[1]),
        "the multiboot partition is the second deploy's"
    );
    drop(loop_disk);
    let outcome = boot(
        &image_file,
        Firmware::Bios,
        BOOT_TIMEOUT,
        "deploy-blockdev-bios",
    );
    expect_boot(
        &outcome,
        "beta",
        "boot of a disk deployed twice as a block device",
    );
}

/// `mtools PROGRAM -i DEV ARGS...` (mdir, mtype) on a vfat partition; its stdout.
fn mtools(program: &str, dev: &Path, args: &[&str]) -> String {
    let out = Command::new(program)
        .arg("-i")
        .arg(dev)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(out.status.success(), "{program}: {}", describe_output(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The fstab line of `mount_point` (`none` for swap), split into its fields.
fn fstab_fields(fstab: &str, mount_point: &str) -> Vec<String> {
    fstab
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|fields| fields.get(1).map(String::as_str) == Some(mount_point))
        .unwrap_or_else(|| panic!("no {mount_point} line in fstab:\n{fstab}"))
}

/// Swap and vfat data volumes in a real deploy: the swap area gets its planned UUID and
/// an fstab line in both images; alpha's `/boot/efi` and a vfat partition shared by both
/// images get their planned volume ids and labels, fstab lines, and the images' files
/// under their mount points (through mtools on this host, whose kernel cannot mount
/// vfat), beta's copy of a file alpha brought too being reported.
#[test]
fn swap_and_vfat_volumes_get_their_ids_fstab_lines_and_files() {
    require_deploy_tools(&["mkswap", "mdir", "mtype"]);
    let scratch = TempDir::new("deploy-vfat");
    let alpha = FixtureImage::new("alpha")
        .file("boot/efi/EFI/alpha/grubx64.efi", "alpha loader\n", 0o644)
        .file("usr/share/fat/common.txt", "from alpha\n", 0o644);
    let beta = FixtureImage::new("beta")
        .file("usr/share/fat/common.txt", "from beta\n", 0o644)
        .file("usr/share/fat/beta/b.txt", "b\n", 0o644);
    write_image_trees(scratch.path(), &[&alpha, &beta]);
    let config_path = scratch.join("provision.json");
    let config = serde_json::json!({
        "images": [
            {"name": "alpha", "image_pull_url": scratch.join("alpha"), "target": "/"},
            {"name": "beta", "image_pull_url": scratch.join("beta"), "target": "/"}
        ],
        "partitions": [{
            "type": "disk", "id": {"type": "name", "value": "vda"}, "size": "700 MiB",
            "volumes": [
                {"type": "partition", "mount": "/", "size": "160", "images": ["alpha"]},
                {"type": "partition", "mount": "/", "size": "160", "images": ["beta"]},
                {"type": "partition", "mount": "/boot/efi", "size": "40", "images": ["alpha"],
                 "file_system": "vfat", "disk_label": "ALPHAEFI"},
                {"type": "partition", "mount": "/usr/share/fat", "size": "40",
                 "images": ["alpha", "beta"], "file_system": "vfat"},
                {"type": "partition", "mount": "swap", "size": "16",
                 "images": ["alpha", "beta"], "disk_label": "swap0"}
            ]
        }],
        "partitions_policy": "clean"
    });
    std::fs::write(&config_path, config.to_string()).expect("writing provision.json");
    let disk = scratch.join("node.img");
    let out = deploy_vda(
        &config_path,
        &disk,
        Some(&scratch.join("boot-info.json")),
        "deploy",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "image beta: /usr/share/fat/common.txt already brought by an earlier image, \
             overwritten"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.matches("already brought").count(), 1, "{stderr}");

    let loop_disk = LoopDisk::attach(&disk);
    let (efi, fat, swap) = (
        loop_disk.partition(6),
        loop_disk.partition(7),
        loop_disk.partition(8),
    );
    let fstabs: Vec<String> = [4, 5]
        .iter()
        .map(|&number| {
            let mount = Mount::new(
                &loop_disk.partition(number),
                &scratch.join(format!("check-{number}")),
                "ro",
            );
            for mount_point in ["boot/efi", "usr/share/fat"] {
                let dir = mount.path().join(mount_point);
                if dir.exists() {
                    assert_eq!(
                        std::fs::read_dir(&dir).expect("a mount point").count(),
                        0,
                        "{} is left empty for the vfat mount",
                        dir.display()
                    );
                }
            }
            read(&mount.path().join("etc/fstab"))
        })
        .collect();

    let efi_id = blkid(&efi);
    assert_eq!(efi_id.get("TYPE").map(String::as_str), Some("vfat"));
    assert_eq!(efi_id.get("LABEL").map(String::as_str), Some("ALPHAEFI"));
    let efi_line = fstab_fields(&fstabs[0], "/boot/efi");
    assert_eq!(efi_line[0], format!("UUID={}", efi_id["UUID"]));
    assert_eq!(efi_line[2], "vfat");
    assert!(!fstabs[1].contains("/boot/efi"), "beta has no /boot/efi");
    assert_eq!(
        mtools("mtype", &efi, &["::/EFI/alpha/grubx64.efi"]),
        "alpha loader\n"
    );

    let fat_id = blkid(&fat);
    assert_eq!(fat_id.get("TYPE").map(String::as_str), Some("vfat"));
    for fstab in &fstabs {
        assert_eq!(
            fstab_fields(fstab, "/usr/share/fat")[0],
            format!("UUID={}", fat_id["UUID"])
        );
    }
    let listing = mtools("mdir", &fat, &["-/", "-b", "::/"]);
    for path in ["::/common.txt", "::/beta/b.txt"] {
        assert!(listing.lines().any(|l| l == path), "{path}: {listing}");
    }
    assert_eq!(mtools("mtype", &fat, &["::/common.txt"]), "from beta\n");

    let swap_id = blkid(&swap);
    assert_eq!(swap_id.get("TYPE").map(String::as_str), Some("swap"));
    assert_eq!(swap_id.get("LABEL").map(String::as_str), Some("swap0"));
    for fstab in &fstabs {
        assert_eq!(
            fstab_fields(fstab, "none"),
            [
                format!("UUID={}", swap_id["UUID"]),
                "none".into(),
                "swap".into(),
                "sw".into(),
                "0".into(),
                "0".into()
            ]
        );
    }
}

#[test]
fn a_mount_below_an_unmountable_vfat_is_refused_before_any_write() {
    let filesystems = std::fs::read_to_string("/proc/filesystems").expect("/proc/filesystems");
    assert!(
        !filesystems
            .lines()
            .any(|l| l.split_whitespace().last() == Some("vfat")),
        "this test expects a kernel that cannot mount vfat, as environment.md describes"
    );
    let scratch = TempDir::new("deploy-vfat-nested");
    let config = write_empty_solo_config(
        &scratch,
        "nested.json",
        "400 MiB",
        serde_json::json!([
            {"type": "partition", "mount": "/", "size": "100"},
            {"type": "partition", "mount": "/boot/efi", "size": "40",
             "file_system": "vfat"},
            {"type": "partition", "mount": "/boot/efi/extra", "size": "40"}
        ]),
    );
    let disk = scratch.join("node.img");
    let out = deploy(
        &config,
        &[("vda", &disk)],
        static_bootctl(),
        None,
        &["--yes"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", describe_output(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "deployer: image solo: /boot/efi/extra is mounted below the vfat filesystem at \
         /boot/efi, which this host's kernel cannot mount (its files go there through mtools)\n"
    );
    assert!(!disk.exists(), "the disk image was created");
}

/// A dynamically linked bootctl never goes into the images: given with `--bootctl`, or
/// found next to the deployer, it is refused before any write with one line naming it
/// and packaging/build-static-bootctl; by default the deployer takes the static build
/// from its own cargo target directory instead.
#[test]
fn a_dynamically_linked_bootctl_is_refused_and_the_static_build_found() {
    require_tools(&["readelf"]);
    let dynamic = Path::new("/bin/true");
    let headers = Command::new("readelf")
        .arg("-l")
        .arg(dynamic)
        .output()
        .expect("running readelf");
    assert!(
        String::from_utf8_lossy(&headers.stdout).contains("INTERP"),
        "{} is expected to be dynamically linked",
        dynamic.display()
    );
    let scratch = TempDir::new("deploy-bootctl");
    let disk = scratch.join("node.img");
    let missing_source = scratch.join("no-such-image").display().to_string();
    let refusal = |path: &Path| {
        format!(
            "deployer: bootctl binary {} is dynamically linked; the images need the static \
             build: run packaging/build-static-bootctl and give --bootctl the path it prints\n",
            path.display()
        )
    };

    // Writes solo.json, an image whose source is missing: every deploy below stops
    // before any write, at the bootctl or at the source.
    let out = deploy_one(&scratch, &missing_source, &disk, &["--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe_output(&out));
    let config = scratch.join("solo.json");
    let given = deploy(&config, &[("vda", &disk)], dynamic, None, &["--yes"]);
    assert_refused(&given, &refusal(dynamic));

    // A deployer in a cargo target directory of its own, without --bootctl.
    let target = scratch.join("target");
    let exe = target.join("debug/deployer");
    std::fs::create_dir_all(exe.parent().expect("a directory")).expect("creating target/debug");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_deployer"), &exe).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_deployer"), &exe).expect("copying the deployer");
    }
    let beside = target.join("debug/bootctl");
    std::fs::copy(dynamic, &beside).expect("copying a dynamic executable");
    let by_default = || {
        Command::new(&exe)
            .arg("deploy")
            .arg(&config)
            .arg("--disk")
            .arg(format!("vda={}", disk.display()))
            .arg("--yes")
            .stdin(Stdio::null())
            .output()
            .expect("running the linked deployer")
    };
    assert_refused(&by_default(), &refusal(&beside));
    let static_build = target.join("static/x86_64-unknown-linux-gnu/release/bootctl");
    std::fs::create_dir_all(static_build.parent().expect("a directory"))
        .expect("creating the static build's directory");
    std::fs::copy(static_bootctl(), &static_build).expect("copying the static bootctl");
    let out = by_default();
    assert_eq!(out.status.code(), Some(3), "{}", describe_output(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("bootctl binary"),
        "the static build is taken: {stderr}"
    );
    assert!(
        stderr.contains("does not exist"),
        "the missing source: {stderr}"
    );
    assert!(!disk.exists(), "the disk image was created");
}

/// `--preserve-on-error`: a deploy that fails after partitioning leaves the new partition
/// table and filesystems for debugging, and still unmounts and detaches everything.
#[test]
fn preserve_on_error_keeps_the_table_of_a_failed_deploy() {
    require_tools(&["wipefs", "sfdisk", "mkfs.ext4", "mkfs.vfat", "blkid"]);
    let scratch = TempDir::new("deploy-preserve");
    let source = scratch.join("solo");
    std::fs::create_dir_all(source.join("boot")).expect("creating an image without a kernel");
    let disk = scratch.join("node.img");
    let stderr = deploy_without_kernel(&scratch, &source, &disk, &["--yes", "--preserve-on-error"]);
    assert!(
        stderr.contains("--preserve-on-error: the disks are left as they are"),
        "{stderr}"
    );
    assert!(!stderr.contains("wiped the partition table"), "{stderr}");
    let (table, sizes) = partition_table(&disk);
    assert_eq!(
        sizes,
        [1, 64, 100, 100],
        "the planned table survived: {table}"
    );
    let loop_disk = LoopDisk::attach(&disk);
    assert_eq!(
        blkid(&loop_disk.partition(4))
            .get("TYPE")
            .map(String::as_str),
        Some("ext4"),
        "the image's root filesystem is left too"
    );
    drop(loop_disk);
    assert_not_attached(&disk);
}

/// No loop device is backed by `disk` any more.
fn assert_not_attached(disk: &Path) {
    let backing = disk.display().to_string();
    for entry in std::fs::read_dir("/sys/block")
        .expect("/sys/block")
        .flatten()
    {
        let file = entry.path().join("loop/backing_file");
        if let Ok(name) = std::fs::read_to_string(&file) {
            assert_ne!(name.trim(), backing, "{} is still attached", file.display());
        }
    }
}

/// `text` as one POSIX shell word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Runs `deployer ARGS` on a terminal (a pty from util-linux `script`), answers the
/// confirmation prompt with `answer` once it is shown, and returns the exit status and
/// everything the terminal showed.
fn deploy_on_a_terminal(args: &[String], answer: &str) -> (Option<i32>, String) {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    const PROMPT: &str = "Destroy all data on vda (";
    const LIMIT: Duration = Duration::from_secs(300);
    let command = std::iter::once(env!("CARGO_BIN_EXE_deployer").to_owned())
        .chain(args.iter().cloned())
        .map(|arg| shell_quote(&arg))
        .collect::<Vec<_>>()
        .join(" ");
    let mut script = e2e::cmd::ChildGuard::spawn(
        Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let shown = Arc::new(Mutex::new(String::new()));
    let mut stdout = script.child_mut().stdout.take().expect("script's stdout");
    let reader = {
        let shown = Arc::clone(&shown);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                shown
                    .lock()
                    .expect("the terminal's text")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let deadline = Instant::now() + LIMIT;
    while !shown.lock().expect("the terminal's text").contains(PROMPT) {
        assert!(
            Instant::now() < deadline,
            "no prompt within {LIMIT:?}: {}",
            shown.lock().expect("the terminal's text")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut stdin = script.child_mut().stdin.take().expect("script's stdin");
    stdin.write_all(answer.as_bytes()).expect("answering");
    let status = script.wait_timeout(LIMIT);
    drop(stdin);
    reader.join().expect("the reader thread");
    let text = shown.lock().expect("the terminal's text").clone();
    assert!(status.is_some(), "no exit within {LIMIT:?}: {text}");
    (status.and_then(|s| s.code()), text)
}

/// On a terminal, without `--yes`, deploy shows the plan and asks: "n" writes nothing,
/// "y" deploys.
#[test]
fn on_a_terminal_deploy_asks_first() {
    require_tools(&[
        "script",
        "wipefs",
        "sfdisk",
        "mkfs.ext4",
        "mkfs.vfat",
        "blkid",
    ]);
    let scratch = TempDir::new("deploy-tty");
    let image = FixtureImage::new("solo");
    let tree = scratch.join("solo");
    std::fs::create_dir(&tree).expect("creating an image tree");
    populate_image(&tree, &image);
    let disk = scratch.join("node.img");
    // Writes solo.json; the stand-in bootctl is not used below.
    let out = deploy_one(&scratch, &tree.display().to_string(), &disk, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe_output(&out));
    let boot_info = scratch.join("boot-info.json");
    let args: Vec<String> = [
        "deploy".to_owned(),
        scratch.join("solo.json").display().to_string(),
        "--disk".to_owned(),
        format!("vda={}", disk.display()),
        "--bootctl".to_owned(),
        static_bootctl().display().to_string(),
        "--boot-info".to_owned(),
        boot_info.display().to_string(),
    ]
    .to_vec();

    let (status, shown) = deploy_on_a_terminal(&args, "n");
    assert_eq!(status, Some(2), "{shown}");
    assert!(
        shown.contains("Partitions policy clean"),
        "the plan: {shown}"
    );
    assert!(
        shown.contains("not confirmed; nothing was written"),
        "{shown}"
    );
    assert!(!disk.exists(), "the disk image was created: {shown}");

    let (status, shown) = deploy_on_a_terminal(&args, "y");
    assert_eq!(status, Some(0), "{shown}");
    assert!(shown.contains("deployed 1 image(s)"), "{shown}");
    assert_eq!(read_boot_info(&boot_info)["elements"][0]["name"], "solo");
    assert_not_attached(&disk);
}

/// The same deploy twice onto one disk-image file: the second redoes everything over the
/// first. The second writes boot-info.json to the default `--boot-info`,
/// `/tmp/boot-info.json` (no other test uses that path).
#[test]
fn an_image_file_deploys_twice_and_boot_info_goes_to_tmp_by_default() {
    require_deploy_tools(TOOLS);
    let scratch = TempDir::new("deploy-twice");
    let config_path = write_plain_two_image_config(&scratch);
    let disk = scratch.join("node.img");
    let first_info = scratch.join("boot-info-first.json");
    let default_info = Path::new("/tmp/boot-info.json");
    let mut multiboot_uuids = Vec::new();
    for boot_info in [Some(first_info.as_path()), None] {
        let out = deploy_vda(&config_path, &disk, boot_info, "deploy");
        let written = boot_info.unwrap_or(default_info);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("boot-info.json written to {}", written.display())),
            "{stderr}"
        );
        multiboot_uuids.push(multiboot_uuid(&read_boot_info(written)));
    }
    assert_ne!(multiboot_uuids[0], multiboot_uuids[1]);
    assert_eq!(std::fs::metadata(&disk).expect("the disk").len(), 600 << 20);
    let loop_disk = LoopDisk::attach(&disk);
    assert_eq!(
        blkid(&loop_disk.partition(3)).get("UUID"),
        Some(&multiboot_uuids[1]),
        "the multiboot partition is the second deploy's, as /tmp/boot-info.json says"
    );
}
