//! bootctl on a node Bareon deployed (tests/src/bareon.rs makes the disk as Bareon does:
//! no boot-info.json, no labels, grub.cfg in `boot/grub2` with a literal `set default=0`):
//! found with no flags from inside a running image and switched, the next boot proving
//! it; and on the host with `--disk`, the switch edits grub.cfg exactly as bareon-ironic's
//! `sed` does, and `--once` and `--try` are refused.

use std::time::Instant;

use e2e::bareon::{self, BareonDisk};
use e2e::bootctl::bootctl;
use e2e::chain::{shown, SHOW};
use e2e::fixture::FixtureImage;
use e2e::grubcfg::KERNEL_ARGS;
use e2e::qemu::{self, expect_boot, Firmware, BOOT_TIMEOUT};
use e2e::tmp::TempDir;

fn two_images(dir: &TempDir, with_bootctl: bool) -> BareonDisk {
    let images = ["a", "b"].map(|name| {
        let image = FixtureImage::new(name);
        if with_bootctl {
            image.with_bootctl()
        } else {
            image
        }
    });
    bareon::build(images.into(), KERNEL_ARGS, &dir.join("node.img"))
}

/// What bareon-ironic's `switch_boot` makes of grub.cfg:
/// `sed -i 's/\(set default=\)[0-9]*/\1N/'`.
fn sed_set_default(grub_cfg: &str, n: usize) -> String {
    let at = grub_cfg
        .rfind("set default=")
        .expect("Bareon's grub.cfg sets a default")
        + 12;
    let digits = grub_cfg[at..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    format!("{}{n}{}", &grub_cfg[..at], &grub_cfg[at + digits..])
}

#[test]
fn host_disk_found_by_its_grub2_cfg_switched_as_bareon_ironic_does() {
    let dir = TempDir::new("bareon-host");
    let disk = two_images(&dir, false);
    let b = disk.image("b");
    assert!(
        disk.grub_cfg.ends_with("set default=0"),
        "{}",
        disk.grub_cfg
    );

    let list = bootctl(&["--disk", disk.path_str(), "list", "--json"]).json();
    let titles: Vec<&str> = list["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["title"].as_str().expect("title"))
        .collect();
    assert_eq!(titles, [disk.image("a").title.as_str(), b.title.as_str()]);
    let status = bootctl(&["--disk", disk.path_str(), "status", "--json"]).json();
    assert_eq!(
        status["multiboot"]["uuid"],
        disk.multiboot_uuid.as_str(),
        "{status:#}"
    );
    assert_eq!(status["multiboot"]["boot_dir"], "boot/grub2", "{status:#}");
    assert_eq!(status["persistent_method"], "grub.cfg", "{status:#}");
    assert!(status["one_shot_method"].is_null(), "{status:#}");
    assert_eq!(status["default"]["title"], disk.image("a").title.as_str());
    assert_eq!(
        status["boot_code"]["bios"]["verdict"], "loads",
        "the core image in boot/grub2 is the one the disk loads: {status:#}"
    );

    for option in ["--once", "--try"] {
        let refused = bootctl(&["--disk", disk.path_str(), "switch", option, &b.title]);
        refused.expect_code(6);
        assert_eq!(
            refused.stderr.trim().lines().count(),
            1,
            "{}",
            refused.stderr
        );
        assert_eq!(
            disk.read_grub_cfg(),
            disk.grub_cfg,
            "{option} changed grub.cfg"
        );
    }
    bootctl(&["--disk", disk.path_str(), "switch", &b.title]).expect_code(0);
    assert_eq!(
        disk.read_grub_cfg(),
        sed_set_default(&disk.grub_cfg, b.index)
    );
}

#[test]
fn switched_from_inside_with_no_flags_the_other_image_boots_next() {
    let started = Instant::now();
    let dir = TempDir::new("bareon-boot");
    let disk = two_images(&dir, true);
    let b = disk.image("b");
    let quoted_b = format!("'{}'", b.title.replace('\'', r"'\''"));
    disk.set_run_script(
        "a",
        &format!(
            "{SHOW}show list timeout -s KILL 60 bootctl list\n\
             show text timeout -s KILL 60 bootctl status\n\
             show status timeout -s KILL 60 bootctl status --json\n\
             show once timeout -s KILL 60 bootctl switch --once {quoted_b}\n\
             show switch timeout -s KILL 60 bootctl switch {quoted_b}\n"
        ),
    );
    disk.set_run_script(
        "b",
        &format!("{SHOW}show status timeout -s KILL 60 bootctl status --json\n"),
    );

    let first = qemu::boot(&disk.path, Firmware::Bios, BOOT_TIMEOUT, "bootctl_bareon-1");
    expect_boot(&first, "a", "boot 1 of 2 (Bareon's set default=0)");
    let list = shown(&first.run_output, "list");
    assert_eq!(
        list.rc,
        Some(0),
        "bootctl list inside a:\n{}",
        first.run_output
    );
    assert!(list.stdout.contains(&b.title), "{}", list.stdout);
    let text = shown(&first.run_output, "text");
    assert_eq!(
        text.rc,
        Some(0),
        "bootctl status inside a:\n{}",
        first.run_output
    );
    let status = shown(&first.run_output, "status").json();
    assert_eq!(
        status["running"]["title"],
        disk.image("a").title.as_str(),
        "{status:#}"
    );
    assert_eq!(
        status["default"]["title"],
        disk.image("a").title.as_str(),
        "{status:#}"
    );
    assert_eq!(
        status["multiboot"]["uuid"],
        disk.multiboot_uuid.as_str(),
        "{status:#}"
    );
    assert_eq!(status["multiboot"]["boot_dir"], "boot/grub2", "{status:#}");
    assert_eq!(
        status["boot_code"]["bios"]["verdict"], "loads",
        "{status:#}"
    );
    assert_eq!(
        shown(&first.run_output, "once").rc,
        Some(6),
        "--once refused:\n{}",
        first.run_output
    );
    assert_eq!(
        shown(&first.run_output, "switch").rc,
        Some(0),
        "bootctl switch inside a:\n{}",
        first.run_output
    );
    assert_eq!(
        disk.read_grub_cfg(),
        sed_set_default(&disk.grub_cfg, b.index)
    );

    let second = qemu::boot(&disk.path, Firmware::Bios, BOOT_TIMEOUT, "bootctl_bareon-2");
    expect_boot(
        &second,
        "b",
        "boot 2 of 2 (after `bootctl switch` inside a)",
    );
    let status = shown(&second.run_output, "status").json();
    assert_eq!(status["running"]["title"], b.title.as_str(), "{status:#}");
    assert_eq!(status["default"]["title"], b.title.as_str(), "{status:#}");
    eprintln!(
        "bootctl_bareon: two boots, {:?} and {:?}; {:?} in all",
        first.elapsed,
        second.elapsed,
        started.elapsed()
    );
}
