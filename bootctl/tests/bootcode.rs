//! `bootcode::check_bios` on a real node disk: it says the boot code loads the multiboot
//! GRUB after the node is built, and that it was replaced after what an image's grub-pc
//! package runs on upgrade (`grub-install --target=i386-pc` to the node's disk, its own
//! /boot as the boot directory); one BIOS boot in QEMU then shows the image's own GRUB
//! reading the image's grub.cfg, not the multiboot menu. `bootcode::uefi::check` on the
//! ESP: the deployer's BOOTX64.EFI loads the multiboot GRUB, another GRUB put at the
//! removable path (what `grub-install --removable` or `--force-extra-removable` does) does
//! not.

use std::path::Path;
use std::process::Command;

use bootctl::bootcode::{check_bios, uefi, Part, Verdict};
use e2e::cmd;
use e2e::disk::{LoopDisk, Mount, MountedPartition};
use e2e::fixture::{self, FixtureImage};
use e2e::grubcfg::MenuStyle;
use e2e::node::{NodeDisk, MULTIBOOT_PARTITION};
use e2e::qemu::{self, Firmware, BOOT_TIMEOUT};
use e2e::tmp::TempDir;
use e2e::tools::require_tools;

/// What the image's own grub.cfg prints on the serial console before it resets the machine
/// (QEMU runs with -no-reboot, so the boot ends there).
const IMAGE_MENU_MARKER: &str = "IMAGE-OWN-GRUB read the image's /boot/grub/grub.cfg";

/// The verdict on `disk`'s boot code, for the tree at partition `tree_partition` (mounted
/// read-only for the occasion).
fn verdict(disk: &Path, tree_partition: u32, scratch: &TempDir) -> Verdict {
    let attached = LoopDisk::attach_read_only(disk);
    let tree = Mount::new(
        &attached.partition(tree_partition),
        &scratch.join("tree"),
        "ro",
    );
    check_bios(tree.path(), attached.device())
}

/// `bootctl --disk DISK status`, as text and as JSON (checked against its schema).
fn status(disk: &Path) -> (String, serde_json::Value) {
    let run = |json: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bootctl"));
        command.arg("--disk").arg(disk).arg("status");
        if json {
            command.arg("--json");
        }
        let out = cmd::output(&mut command);
        assert!(
            out.status.success(),
            "bootctl status: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    };
    let json: serde_json::Value = serde_json::from_str(&run(true)).expect("JSON");
    e2e::schema::check(
        "bootctl-status.v1.json",
        "bootctl --disk status --json",
        &json,
    );
    (run(false), json)
}

#[test]
fn an_images_own_grub_install_replaces_the_multiboot_boot_code() {
    require_tools(&["grub-install", "dd"]);
    let dir = TempDir::new("bootcode");
    let node = NodeDisk::builder(vec![FixtureImage::new("alpha"), FixtureImage::new("beta")])
        .menu(MenuStyle::Grubenv)
        .build(&dir.join("node.img"));
    assert_eq!(
        verdict(&node.path, MULTIBOOT_PARTITION, &dir),
        Verdict::Loads
    );
    let (text, json) = status(&node.path);
    assert_eq!(json["boot_code"]["bios"]["verdict"], "loads", "{json:#}");
    assert!(!text.contains("WARNING"), "{text}");

    // Another boot loader's MBR (here: boot code zeroed, the partition table kept).
    let other_mbr = node.copy_to(&dir.join("other-mbr.img"));
    cmd::run(
        Command::new("dd")
            .arg(format!("of={}", other_mbr.path.display()))
            .args([
                "if=/dev/zero",
                "bs=440",
                "count=1",
                "conv=notrunc",
                "status=none",
            ]),
    );
    match verdict(&other_mbr.path, MULTIBOOT_PARTITION, &dir) {
        Verdict::Replaced {
            what: Part::BootSector,
            detail,
        } => assert!(detail.contains("at byte 0x0"), "{detail}"),
        other => panic!("a zeroed boot sector: {other:?}"),
    }

    // What grub-pc's postinst runs for each of its install devices, from the image: the
    // image's /boot is the boot directory, so the core image's prefix names it.
    let alpha = node.facts.image("alpha").partition;
    {
        let attached = LoopDisk::attach(&node.path);
        let root = Mount::new(&attached.partition(alpha), &dir.join("alpha"), "");
        let grub_cfg = format!(
            "serial --unit=0 --speed=115200\n\
             terminal_input serial console\n\
             terminal_output serial console\n\
             echo \"{IMAGE_MENU_MARKER}\"\n\
             reboot\n"
        );
        let grub_dir = root.path().join("boot/grub");
        std::fs::create_dir_all(&grub_dir).expect("creating the image's /boot/grub");
        fixture::write(&grub_dir.join("grub.cfg"), grub_cfg.as_bytes(), 0o644);
        cmd::run(
            Command::new("grub-install")
                .arg("--target=i386-pc")
                .arg(format!(
                    "--boot-directory={}",
                    root.path().join("boot").display()
                ))
                .arg(attached.device()),
        );
    }

    // The same GRUB version writes the same boot sector: the core image tells them apart.
    match verdict(&node.path, MULTIBOOT_PARTITION, &dir) {
        Verdict::Replaced {
            what: Part::CoreImage,
            detail,
        } => assert!(
            detail.contains("differs from this GRUB's core.img"),
            "{detail}"
        ),
        other => panic!("after the image's grub-install: {other:?}"),
    }
    // bootctl status says so loudly.
    let (text, json) = status(&node.path);
    assert_eq!(json["boot_code"]["bios"]["verdict"], "replaced", "{json:#}");
    assert_eq!(json["boot_code"]["bios"]["part"], "core_image", "{json:#}");
    assert!(
        text.contains("WARNING: the node's BIOS boot code no longer loads the multiboot GRUB"),
        "{text}"
    );
    // Compared with the image's tree instead, the boot code is the image's GRUB.
    assert_eq!(verdict(&node.path, alpha, &dir), Verdict::Loads);
    // The multiboot partition itself was not touched.
    let tree = MountedPartition::new(&node.path, MULTIBOOT_PARTITION, &dir.join("mb"), true);
    assert!(tree.path().join("boot/grub/grubenv").is_file());
    drop(tree);

    let outcome = qemu::boot(
        &node.path,
        Firmware::Bios,
        BOOT_TIMEOUT,
        "bootcode-image-grub",
    );
    assert!(
        outcome.serial.contains(IMAGE_MENU_MARKER),
        "the image's GRUB did not read its own grub.cfg; console log: {}\n{}",
        outcome.log.display(),
        outcome.serial
    );
    assert_eq!(
        outcome.booted,
        None,
        "a fixture image came up through the multiboot menu: {}",
        outcome.log.display()
    );
    assert!(!outcome.timed_out, "{}", outcome.log.display());
}

#[test]
fn another_loader_at_the_removable_path_is_found_on_the_esp() {
    require_tools(&["grub-mkimage", "mcopy"]);
    let dir = TempDir::new("bootcode-uefi");
    let node = NodeDisk::builder(vec![FixtureImage::new("alpha")])
        .menu(MenuStyle::Grubenv)
        .uefi()
        .build(&dir.join("node.img"));
    let uuid = &node.facts.multiboot_uuid;
    // The firmware's variables of this machine are not the node's: none are read.
    let no_efivars = dir.join("no-efivars");
    let check = || {
        let attached = LoopDisk::attach_read_only(&node.path);
        uefi::check(attached.device(), uuid, &no_efivars)
    };
    assert_eq!(check(), Verdict::Loads);

    // A GRUB whose early config finds the image's root instead, at the removable path.
    let early = dir.join("early.cfg");
    let image_root = &node.facts.image("alpha").root_uuid;
    fixture::write(
        &early,
        format!(
            "search --no-floppy --fs-uuid --set=root {image_root}\nset prefix=($root)/boot/grub\n"
        )
        .as_bytes(),
        0o644,
    );
    let efi = dir.join("grubx64.efi");
    cmd::run(
        Command::new("grub-mkimage")
            .args(["-O", "x86_64-efi", "-p", "/boot/grub", "-c"])
            .arg(&early)
            .arg("-o")
            .arg(&efi)
            .args(["part_gpt", "ext2", "search", "search_fs_uuid", "normal"]),
    );
    {
        let attached = LoopDisk::attach(&node.path);
        let esp = attached.partition(node.facts.esp_partition.expect("a UEFI node has an ESP"));
        cmd::run(
            Command::new("mcopy")
                .args(["-o", "-i"])
                .arg(&esp)
                .arg(&efi)
                .arg("::/EFI/BOOT/BOOTX64.EFI"),
        );
    }
    match check() {
        Verdict::Replaced {
            what: Part::RemovableLoader,
            detail,
        } => assert!(detail.contains(uuid.as_str()), "{detail}"),
        other => panic!("after another GRUB at the removable path: {other:?}"),
    }
}
