//! The test infrastructure on its own, without bootctl: fixture disks boot in QEMU,
//! the image at GRUB's default comes up, and the generated menus are valid grub script.

use std::fs;
use std::process::Command;

use e2e::cmd;
use e2e::disk::LoopDisk;
use e2e::fixture::FixtureImage;
use e2e::grubcfg::{self, MenuStyle};
use e2e::node::{
    NodeDisk, BIOS_GRUB_PARTITION, BIOS_GRUB_TYPE, BOOT_INFO_PATH, GRUBENV_PATH, GRUB_CFG_PATH,
    IMAGE_BOOT_INFO_PATH, LINUX_TYPE, MULTIBOOT_MIB, MULTIBOOT_PARTITION,
};
use e2e::qemu::{self, expect_boot, Firmware, BOOT_TIMEOUT};
use e2e::tmp::TempDir;
use e2e::tools::require_tools;

const STYLES: [MenuStyle; 3] = [
    MenuStyle::Fixed {
        next_entry_block: true,
    },
    MenuStyle::Fixed {
        next_entry_block: false,
    },
    MenuStyle::Grubenv,
];

fn images() -> Vec<FixtureImage> {
    vec![
        FixtureImage::new("a").run_script("cat /etc/os-release\nexit 3\n"),
        FixtureImage::new("b"),
    ]
}

#[test]
fn generated_grub_cfgs_pass_grub_script_check() {
    let three = vec![
        FixtureImage::new("a"),
        FixtureImage::new("b"),
        FixtureImage::new("c").title("It's C"),
    ];
    let facts = NodeDisk::builder(three).facts().clone();
    for style in STYLES {
        let cfg = grubcfg::generate(style, &facts);
        grubcfg::script_check(&cfg);
        let defaults: Vec<&str> = cfg
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("set default="))
            .collect();
        let has_next_entry = cfg.contains("set default=\"${next_entry}\"");
        match style {
            MenuStyle::Fixed { next_entry_block } => {
                assert_eq!(has_next_entry, next_entry_block, "{style:?}:\n{cfg}");
                assert!(defaults.contains(&"set default=\"0\""), "{style:?}:\n{cfg}");
            }
            MenuStyle::Grubenv => {
                assert!(has_next_entry, "{style:?}:\n{cfg}");
                assert!(
                    defaults.contains(&"set default=\"${saved_entry}\""),
                    "{cfg}"
                );
            }
        }
        assert!(cfg.contains("'It'\\''s C'"), "titles are quoted:\n{cfg}");
        for f in &facts.images {
            assert!(
                cfg.contains(&format!("root=UUID={} ro", f.root_uuid)),
                "{cfg}"
            );
        }
    }
}

#[test]
fn node_disk_holds_what_its_facts_say() {
    require_tools(&["sfdisk", "blkid"]);
    let dir = TempDir::new("fixture-layout");
    let node = NodeDisk::builder(images())
        .menu(MenuStyle::Grubenv)
        .build(&dir.join("node.img"));
    let facts = &node.facts;

    let table: serde_json::Value =
        serde_json::from_str(&cmd::run(Command::new("sfdisk").arg("-J").arg(&node.path)))
            .expect("sfdisk -J prints JSON");
    let parts = table["partitiontable"]["partitions"]
        .as_array()
        .expect("partitions");
    let part = |number: u32| &parts[number as usize - 1];
    assert_eq!(parts.len(), 2 + facts.images.len(), "{table:#}");
    assert_eq!(
        part(BIOS_GRUB_PARTITION)["type"],
        BIOS_GRUB_TYPE,
        "{table:#}"
    );
    assert_eq!(part(MULTIBOOT_PARTITION)["type"], LINUX_TYPE, "{table:#}");
    assert_eq!(
        part(MULTIBOOT_PARTITION)["size"].as_u64().unwrap() * 512,
        MULTIBOOT_MIB * 1024 * 1024,
        "{table:#}"
    );
    for f in &facts.images {
        assert_eq!(part(f.partition)["type"], LINUX_TYPE, "{table:#}");
    }

    {
        let disk = LoopDisk::attach_read_only(&node.path);
        let probe = |number: u32| {
            cmd::run(
                Command::new("blkid")
                    .args(["-p", "-o", "export"])
                    .arg(disk.partition(number)),
            )
        };
        let multiboot = probe(MULTIBOOT_PARTITION);
        for line in [
            format!("UUID={}", facts.multiboot_uuid),
            "LABEL=multiboot".to_owned(),
            "TYPE=ext4".to_owned(),
        ] {
            assert!(multiboot.lines().any(|l| l == line), "{line}:\n{multiboot}");
        }
        for f in &facts.images {
            let root = probe(f.partition);
            let line = format!("UUID={}", f.root_uuid);
            assert!(root.lines().any(|l| l == line), "{line}:\n{root}");
        }
    }

    let expected_info = facts.boot_info(0);
    {
        let mnt = node.mount_multiboot(&dir.join("mb"), true);
        let info: serde_json::Value =
            serde_json::from_slice(&fs::read(mnt.path().join(BOOT_INFO_PATH)).unwrap()).unwrap();
        assert_eq!(info, expected_info);
        assert_eq!(
            info["elements"][1]["grub_id"], 2,
            "a submenu shifts the index"
        );
        assert!(mnt.path().join(GRUB_CFG_PATH).is_file());
        assert!(mnt.path().join("boot/grub/i386-pc/core.img").is_file());
        let env = cmd::run(
            Command::new("grub-editenv")
                .arg(mnt.path().join(GRUBENV_PATH))
                .arg("list"),
        );
        assert_eq!(env, "saved_entry=fixture-a\n");
    }
    for f in &facts.images {
        let root = node.mount_root(&f.image.name, &dir.join(&f.image.name), true);
        let info: serde_json::Value =
            serde_json::from_slice(&fs::read(root.path().join(IMAGE_BOOT_INFO_PATH)).unwrap())
                .unwrap();
        assert_eq!(info, expected_info);
        let os_release = fs::read_to_string(root.path().join("etc/os-release")).unwrap();
        assert!(os_release.contains(&format!("PRETTY_NAME=\"{}\"", f.image.title)));
        assert!(root.path().join("lib64/ld-linux-x86-64.so.2").is_file());
        assert!(root.path().join("bin/poweroff").is_symlink());
    }
}

#[test]
fn bios_boots_the_default_then_a_hand_edited_default() {
    let dir = TempDir::new("fixture-boot");
    let node = NodeDisk::builder(images())
        .menu(MenuStyle::Fixed {
            next_entry_block: false,
        })
        .build(&dir.join("node.img"));

    let first = qemu::boot(
        &node.path,
        Firmware::Bios,
        BOOT_TIMEOUT,
        "fixture_boot-bios-1",
    );
    expect_boot(&first, "a", "boot 1 of 2 (default \"0\")");
    assert_eq!(
        first.run_rc,
        Some(3),
        "run script's exit code; log {}",
        first.log.display()
    );
    assert!(
        first.run_output.contains("PRETTY_NAME=\"Fixture A\""),
        "run script's output:\n{}",
        first.run_output
    );

    {
        let mnt = node.mount_multiboot(&dir.join("mnt"), false);
        let path = mnt.path().join(GRUB_CFG_PATH);
        let cfg = fs::read_to_string(&path).unwrap();
        assert_eq!(cfg.matches("set default=\"0\"").count(), 1, "{cfg}");
        let edited = cfg.replace("set default=\"0\"", "set default=\"fixture-b\"");
        fs::write(&path, edited).unwrap();
    }

    let second = qemu::boot(
        &node.path,
        Firmware::Bios,
        BOOT_TIMEOUT,
        "fixture_boot-bios-2",
    );
    expect_boot(
        &second,
        "b",
        "boot 2 of 2 (default edited to \"fixture-b\")",
    );
    assert_eq!(second.run_rc, None, "image b has no run script");
}

#[test]
fn uefi_boots_the_default() {
    let dir = TempDir::new("fixture-uefi");
    let node = NodeDisk::builder(vec![FixtureImage::new("a"), FixtureImage::new("b")])
        .menu(MenuStyle::Grubenv)
        .grubenv(&[("saved_entry", "fixture-b")])
        .uefi()
        .build(&dir.join("node.img"));
    let outcome = qemu::boot(
        &node.path,
        Firmware::Uefi,
        BOOT_TIMEOUT,
        "fixture_boot-uefi",
    );
    expect_boot(&outcome, "b", "UEFI boot (saved_entry=fixture-b)");
}
