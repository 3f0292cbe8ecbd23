//! The shipped static bootctl changes what really boots: switches made with
//! `bootctl --disk node.img` on the host, and with bootctl inside a running image,
//! checked by booting the disk in QEMU (BIOS).

use serde_json::Value;

use e2e::bootctl::{bootctl, marked};
use e2e::fixture::FixtureImage;
use e2e::grubcfg::MenuStyle;
use e2e::node::NodeDisk;
use e2e::qemu::{self, expect_boot, BootOutcome, Firmware, BOOT_TIMEOUT};
use e2e::tmp::TempDir;

fn boot(disk: &NodeDisk, artifact: &str) -> BootOutcome {
    qemu::boot(&disk.path, Firmware::Bios, BOOT_TIMEOUT, artifact)
}

fn list(disk: &NodeDisk) -> Value {
    bootctl(&["--disk", disk.path_str(), "list", "--json"]).json()
}

#[test]
fn fixed_switch_then_once_then_back() {
    let dir = TempDir::new("boot-fixed");
    let disk = NodeDisk::builder(vec![FixtureImage::new("a"), FixtureImage::new("b")])
        .menu(MenuStyle::Fixed {
            next_entry_block: true,
        })
        .build(&dir.join("node.img"));

    bootctl(&["--disk", disk.path_str(), "switch", "fixture-b"]).expect_code(0);
    let first = boot(&disk, "bootctl_boot-fixed-1");
    expect_boot(&first, "b", "boot 1 of 3 (after `switch fixture-b`)");

    bootctl(&["--disk", disk.path_str(), "switch", "--once", "fixture-a"]).expect_code(0);
    assert_eq!(marked(&list(&disk), "next", "id"), ["fixture-a"]);
    let second = boot(&disk, "bootctl_boot-fixed-2");
    expect_boot(
        &second,
        "a",
        "boot 2 of 3 (after `switch --once fixture-a`)",
    );

    let after_once = list(&disk);
    assert!(
        marked(&after_once, "next", "id").is_empty(),
        "GRUB clears next_entry as it boots:\n{after_once:#}"
    );
    assert_eq!(marked(&after_once, "default", "id"), ["fixture-b"]);
    let third = boot(&disk, "bootctl_boot-fixed-3");
    expect_boot(&third, "b", "boot 3 of 3 (the one-shot choice was used up)");
}

/// The JSON object in a run script's console output.
fn json_in(outcome: &BootOutcome) -> Value {
    let text = &outcome.run_output;
    let (start, end) = (text.find('{'), text.rfind('}'));
    match (start, end) {
        (Some(s), Some(e)) if s < e => serde_json::from_str(&text[s..=e]).unwrap_or_else(|err| {
            panic!(
                "bad JSON from the guest ({err}); log {}:\n{text}",
                outcome.log.display()
            )
        }),
        _ => panic!(
            "no JSON from the guest; log {}:\n{text}",
            outcome.log.display()
        ),
    }
}

#[test]
fn grubenv_switch_then_once_from_inside_the_running_image() {
    let dir = TempDir::new("boot-grubenv");
    // bootctl as the images run it; killed if it hangs, so the boot still ends.
    let status = "timeout -s KILL 60 bootctl status --json\n";
    let once_then_status = format!(
        "timeout -s KILL 60 bootctl switch --once fixture-a >/dev/null || exit 10\n{status}"
    );
    let disk = NodeDisk::builder(vec![
        FixtureImage::new("a").with_bootctl().run_script(status),
        FixtureImage::new("b")
            .with_bootctl()
            .run_script(&once_then_status),
    ])
    .menu(MenuStyle::Grubenv)
    .build(&dir.join("node.img"));

    bootctl(&["--disk", disk.path_str(), "switch", "fixture-b"]).expect_code(0);
    let first = boot(&disk, "bootctl_boot-grubenv-1");
    expect_boot(&first, "b", "boot 1 of 2 (after `switch fixture-b`)");
    assert_eq!(
        first.run_rc,
        Some(0),
        "bootctl inside b; log {}:\n{}",
        first.log.display(),
        first.run_output
    );
    let inside_b = json_in(&first);
    assert_eq!(inside_b["running"]["id"], "fixture-b", "{inside_b:#}");
    assert_eq!(inside_b["default"]["id"], "fixture-b", "{inside_b:#}");
    assert_eq!(inside_b["next"]["id"], "fixture-a", "{inside_b:#}");
    assert_eq!(
        inside_b["multiboot"]["uuid"],
        disk.facts.multiboot_uuid.as_str(),
        "{inside_b:#}"
    );

    let second = boot(&disk, "bootctl_boot-grubenv-2");
    expect_boot(
        &second,
        "a",
        "boot 2 of 2 (after `switch --once fixture-a` inside b)",
    );
    assert_eq!(
        second.run_rc,
        Some(0),
        "bootctl inside a:\n{}",
        second.run_output
    );
    let inside_a = json_in(&second);
    assert_eq!(inside_a["running"]["id"], "fixture-a", "{inside_a:#}");
    assert_eq!(inside_a["default"]["id"], "fixture-b", "{inside_a:#}");
    assert!(
        inside_a["next"].is_null(),
        "GRUB cleared next_entry:\n{inside_a:#}"
    );
}

#[test]
fn a_default_inside_a_submenu_boots_that_entry() {
    let dir = TempDir::new("boot-submenu");
    let disk = NodeDisk::builder(vec![
        FixtureImage::new("a").run_script("cat /proc/cmdline\n"),
        FixtureImage::new("b"),
    ])
    .menu(MenuStyle::Fixed {
        next_entry_block: false,
    })
    .build(&dir.join("node.img"));
    bootctl(&["--disk", disk.path_str(), "switch", "1>0"]).expect_code(0);
    let outcome = boot(&disk, "bootctl_boot-submenu");
    expect_boot(&outcome, "a", "the only boot (after `switch 1>0`)");
    assert!(
        outcome
            .run_output
            .split_whitespace()
            .any(|arg| arg == "single"),
        "the recovery entry (1>0) booted, not entry 0; log {}:\n{}",
        outcome.log.display(),
        outcome.run_output
    );
}
