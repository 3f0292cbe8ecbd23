//! Failed, a tool failing, a download misbehaving and killed, at every step; each time
//! the same deploy runs again. One suite at a time (.config/nextest.toml).

use super::*;

// ---------------------------------------------------------------------------------------

#[test]
fn failed_at_every_step_a_deploy_leaves_nothing_behind_and_runs_again() {
    let _heavy = heavy();
    let node = Node::new("faults-fail");
    node.deploy_and_check("the first deploy");
    for &(point, nth) in STEPS {
        let faults = spec(FaultAction::Fail, point, nth);
        let before = sha256(&node.disk);
        let stderr = node.fail(&faults, std::slice::from_ref(&faults));
        let expected = format!("fault injected at {point}:{nth} ({FAULT_ENV})");
        assert!(stderr.contains(&expected), "{faults}: {stderr}");
        if BEFORE_FIRST_WRITE.contains(&point) {
            assert_eq!(sha256(&node.disk), before, "{faults}: the disk was written");
        } else {
            assert!(
                stderr.contains("deployer: wiped the partition table of disk vda"),
                "{faults}: {stderr}"
            );
            assert_eq!(
                blkid(&node.disk).get("PTTYPE"),
                None,
                "{faults}: a partition table survived"
            );
        }
        node.deploy_and_check(&format!("the deploy after {faults}"));
    }
    let outcome = boot(
        &node.disk,
        Firmware::Bios,
        BOOT_TIMEOUT,
        "deploy-faults-fail-bios",
    );
    expect_boot(
        &outcome,
        "alpha",
        "boot after the failed deploys and their re-runs",
    );
}

/// The external tool of each step, the call that fails (a tool may run more than once in a
/// deploy), and the step the failure line must name.
const TOOL_STEPS: &[(&str, u32, &str)] = &[
    ("wipefs", 1, "wipe old signatures of disk vda"),
    ("sfdisk", 1, "write the partition table of disk vda"),
    ("sfdisk", 2, "read back the partition table of disk vda"),
    ("mkfs.vfat", 1, "make the vfat filesystem of vda#2"),
    // The filesystems are made side by side: which one a call makes varies.
    ("mkfs.ext4", 1, "make the ext4 filesystem of vda#"),
    ("mkfs.ext4", 5, "make the ext4 filesystem of vda#"),
    ("tar", 1, "extract the tar archive of image beta"),
    ("tune2fs", 1, "tune2fs on the filesystem of image gamma"),
    (
        "grub-install",
        1,
        "install GRUB's BIOS files on the multiboot partition",
    ),
    ("grub-bios-setup", 1, "install GRUB for BIOS on disk vda"),
    (
        "grub-mkimage",
        1,
        "install GRUB for UEFI: build BOOTX64.EFI",
    ),
    (
        "mcopy",
        1,
        "install GRUB for UEFI: copy BOOTX64.EFI to the ESP",
    ),
];

/// Each external tool of a deploy fails for real, once: the failure line names the step
/// and quotes the tool's error, and nothing is left, as for the fault points.
#[test]
fn a_tool_failing_at_every_step_is_named_and_a_rerun_succeeds() {
    let _heavy = heavy();
    let node = Node::new("faults-tools");
    node.deploy_and_check("the first deploy");
    for &(tool, nth, step) in TOOL_STEPS {
        let what = format!("{tool} fails at its call {nth}");
        node.fail_tool(tool, nth);
        let stderr = node.fail(&what, &[]);
        node.clear_stubs();
        let line = failure_line(&stderr);
        assert!(
            line.contains(step)
                && line.contains(&format!(": `{tool} "))
                && line.ends_with(&format!("failed (exit 8): {tool}: injected failure")),
            "{what}: {line}"
        );
        assert!(
            stderr.contains("deployer: wiped the partition table of disk vda"),
            "{what}: {stderr}"
        );
        node.deploy_and_check(&format!("the deploy after {what}"));
    }
}

/// The one `deployer: deploy failed: ...` line of a failed deploy.
fn failure_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.starts_with("deployer: deploy failed: "))
        .expect("the failure line")
}

#[test]
fn a_download_cut_mid_stream_or_corrupted_fails_cleanly_and_runs_again() {
    let _heavy = heavy();
    let node = Node::new("faults-download");
    node.deploy_and_check("the first deploy");
    let url = node.server.url("beta.tar.gz");
    for (mischief, expected) in [
        (Mischief::Cut, format!("image beta: downloading {url}")),
        (
            Mischief::Corrupt,
            format!("image beta: checksum mismatch for {url}"),
        ),
    ] {
        node.server.misbehave(mischief);
        let stderr = node.fail(&format!("{mischief:?}"), &[]);
        let line = failure_line(&stderr);
        assert!(line.contains(&expected), "{mischief:?}: {line}");
        assert_eq!(
            blkid(&node.disk).get("PTTYPE"),
            None,
            "{mischief:?}: a table survived"
        );
        node.deploy_and_check(&format!("the deploy after {mischief:?}"));
    }
}

#[test]
fn killed_at_every_step_a_deploy_leaves_no_mount_nor_loop_and_runs_again() {
    let _heavy = heavy();
    let node = Node::new("faults-kill");
    node.deploy_and_check("the first deploy");
    for &(point, nth) in STEPS {
        let faults = spec(FaultAction::Kill, point, nth);
        let out = cmd::output(&mut node.command(fault_deployer(), Some(&faults)));
        assert_eq!(
            out.status.signal(),
            Some(9),
            "{faults}: not killed: {}",
            describe_output(&out)
        );
        expect_released(&node.disk, &faults);
        let tmpdir = node.tmpdir.display().to_string();
        assert_eq!(
            mounts_anywhere(&tmpdir),
            Vec::<String>::new(),
            "{faults}: mounts"
        );
        assert!(
            !node.boot_info().exists(),
            "{faults}: boot-info.json written"
        );
        // What SIGKILL cannot clean up: the work directory, with empty mount directories
        // or a partial download. The next deploy removes it.
        let left = names(&node.tmpdir);
        assert!(
            left.len() == 1 && left[0].starts_with("deployer-"),
            "{faults}: TMPDIR holds {left:?}"
        );
        check_never_half_bootable(&node, &faults);
        let stderr = node.deploy_and_check(&format!("the deploy after {faults}"));
        let removed = format!(
            "deployer: removed {}, left by a deployer that was killed",
            node.tmpdir.join(&left[0]).display()
        );
        assert!(stderr.contains(&removed), "{faults}: {stderr}");
    }
    let outcome = boot(
        &node.disk,
        Firmware::Uefi,
        BOOT_TIMEOUT,
        "deploy-faults-kill-uefi",
    );
    expect_boot(
        &outcome,
        "alpha",
        "boot after the killed deploys and their re-runs",
    );
}

/// A disk that a firmware could start from must be complete: a UEFI boot file on the ESP
/// comes with grub.cfg, grubenv and boot-info.json on the multiboot partition.
fn check_never_half_bootable(node: &Node, what: &str) {
    if !blkid(&node.disk).contains_key("PTTYPE") {
        return;
    }
    let disk = LoopDisk::attach_read_only(&node.disk);
    if !esp_has_boot_file(&disk.partition(2)) {
        return;
    }
    let multiboot = Mount::new(&disk.partition(3), &node.scratch.join("check-killed"), "ro");
    for file in ["boot/grub/grub.cfg", "boot/grub/grubenv", "boot-info.json"] {
        assert!(
            multiboot.path().join(file).is_file(),
            "{what}: the ESP boots, but the multiboot partition has no {file}"
        );
    }
}
