//! `deployer deploy` for real, as root: two fixture image trees (directories) and a
//! partition shared by both deployed onto a fresh sparse disk-image file, the result
//! checked with the real tools (sfdisk, blkid, grub-script-check, mdir), then booted in
//! QEMU: the `boot: true` image comes up on BIOS and on UEFI, and after `bootctl switch`
//! on the disk the other one.
//! Configs this host cannot deploy are refused before any write (`refused`).
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

mod boots;
mod refused;

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
    // No test presses a key at GRUB's menu: every boot of the disk starts at once.
    deploy
        .arg("--bootctl")
        .arg(bootctl)
        .args(["--grub-timeout", "0"]);
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

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
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
