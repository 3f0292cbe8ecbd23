//! `bootctl refresh` offline, the shipped static bootctl on real disks and trees, no QEMU:
//! on a node disk whose grub.cfg is os-prober's style (an image's entry, its recovery entry
//! in a submenu, the other images), with `--disk node.img --root DIR` where DIR is the
//! image's root mounted from that disk, and with `--boot-dir` and an image tree named by
//! its fstab. Every grub.cfg written passes grub-script-check; `--dry-run` and every refusal
//! leave the multiboot partition as it was. The kernel hooks, run under chroot in a busybox
//! tree where refresh cannot work, exit 0 and say in one line what to run.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use e2e::bootctl::{bootctl, static_bootctl, BootctlRun};
use e2e::cmd;
use e2e::disk::changed_paths;
use e2e::fixture::{host_kernel, populate_image, write, FixtureImage};
use e2e::grubcfg::{script_check, MenuStyle};
use e2e::node::{NodeDisk, GRUB_CFG_PATH};
use e2e::tmp::{self, TempDir};
use e2e::tools::require_tools;
use shared::image_files::{DEBIAN_HOOK_TEXT, KERNEL_INSTALL_PLUGIN_TEXT};
use shared::layout::{KERNEL_INSTALL_PLUGIN, KERNEL_POSTINST_HOOK};

/// A three-image node disk (a, b, c; grub.cfg reading saved_entry), built once per test
/// process and copied for each test.
fn fresh_node(dir: &TempDir) -> NodeDisk {
    static BASE: OnceLock<NodeDisk> = OnceLock::new();
    let base = BASE.get_or_init(|| {
        let images = ["a", "b", "c"].map(FixtureImage::new).to_vec();
        NodeDisk::builder(images)
            .menu(MenuStyle::Grubenv)
            .build(&tmp::process_dir().join("refresh-base.img"))
    });
    base.copy_to(&dir.join("node.img"))
}

fn grub_cfg(snapshot: &BTreeMap<String, Vec<u8>>) -> String {
    String::from_utf8(snapshot[GRUB_CFG_PATH].clone()).expect("grub.cfg is UTF-8")
}

/// The (empty) files of a kernel and its Debian initrd of `version` in `boot`.
fn add_kernel(boot: &Path, version: &str) {
    for name in [
        format!("vmlinuz-{version}"),
        format!("initrd.img-{version}"),
    ] {
        write(&boot.join(name), b"", 0o644);
    }
}

fn remove_kernel(boot: &Path, version: &str) {
    for name in [
        format!("vmlinuz-{version}"),
        format!("initrd.img-{version}"),
    ] {
        std::fs::remove_file(boot.join(&name)).unwrap_or_else(|e| panic!("removing {name}: {e}"));
    }
}

/// Panics unless `run` exited `code` with one line on stderr holding `says`.
fn expect_refusal(run: &BootctlRun, code: i32, says: &str) {
    run.expect_code(code);
    assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    assert!(run.stderr.contains(says), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

/// Image a of a node disk gets kernel 9.9.9 beside the one it was deployed with: its own
/// entry moves to it and its recovery entry stays; once the old kernel is gone, the recovery
/// entry moves too; then nothing is left to change. b and c never change.
#[test]
fn an_image_mounted_from_the_disk_is_refreshed_offline() {
    let dir = TempDir::new("refresh-disk");
    let disk = fresh_node(&dir);
    let image = disk.mount_root("a", &dir.join("root-a"), false);
    let root = image.path().to_str().expect("UTF-8 path").to_owned();
    let boot = image.path().join("boot");
    let refresh = |extra: &[&str]| {
        let mut args = vec!["--disk", disk.path_str(), "refresh", "--root", &root];
        args.extend_from_slice(extra);
        bootctl(&args)
    };
    let host = host_kernel();
    let (old_kernel, old_initrd) = (host.image_vmlinuz(), host.image_initrd());
    let new_kernel = "'/boot/vmlinuz-9.9.9'";
    let new_initrd = "'/boot/initrd.img-9.9.9'";
    let a_uuid = &disk.facts.image("a").root_uuid;
    let before = disk.multiboot_snapshot();
    let text = grub_cfg(&before);

    add_kernel(&boot, "9.9.9");
    let dry = refresh(&["--dry-run"]);
    dry.expect_code(0);
    assert_eq!(
        disk.multiboot_snapshot(),
        before,
        "a dry run writes nothing"
    );
    assert!(
        dry.stdout.contains(&format!(
            "  0 \"Fixture A\": {old_kernel} -> /boot/vmlinuz-9.9.9, {old_initrd} -> /boot/initrd.img-9.9.9\n"
        )) && dry.stdout.contains("  1>0 \"Fixture A (recovery mode)\": up to date")
            && dry.stdout.ends_with("would write: boot/grub/grub.cfg (dry run: nothing changed)\n"),
        "{}",
        dry.stdout
    );

    let first = refresh(&[]);
    first.expect_code(0);
    assert!(
        first.stdout.ends_with("wrote: boot/grub/grub.cfg\n"),
        "{}",
        first.stdout
    );
    let after = disk.multiboot_snapshot();
    assert_eq!(changed_paths(&before, &after), [GRUB_CFG_PATH]);
    let own_entry = text
        .replacen(
            &format!("\tlinux {old_kernel} root=UUID={a_uuid} "),
            &format!("\tlinux {new_kernel} root=UUID={a_uuid} "),
            1,
        )
        .replacen(
            &format!("\tinitrd {old_initrd}\n"),
            &format!("\tinitrd {new_initrd}\n"),
            1,
        );
    assert_ne!(own_entry, text);
    assert_eq!(grub_cfg(&after), own_entry, "only a's own entry changes");
    script_check(&own_entry);

    remove_kernel(&boot, &host.version);
    let second = refresh(&["--json"]).json();
    let changed: Vec<&str> = second["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|entry| entry["changed"] == true)
        .map(|entry| entry["index"].as_str().expect("index"))
        .collect();
    assert_eq!(changed, ["1>0"], "{second:#}");
    let recovery = own_entry
        .replace(
            &format!("\t\tlinux {old_kernel} root=UUID={a_uuid} "),
            &format!("\t\tlinux {new_kernel} root=UUID={a_uuid} "),
        )
        .replacen(
            &format!("\t\tinitrd {old_initrd}\n"),
            &format!("\t\tinitrd {new_initrd}\n"),
            1,
        );
    let final_text = grub_cfg(&disk.multiboot_snapshot());
    assert_eq!(final_text, recovery);
    script_check(&final_text);
    for other in ["b", "c"] {
        let uuid = &disk.facts.image(other).root_uuid;
        assert!(
            final_text.contains(&format!("\tlinux {old_kernel} root=UUID={uuid} ")),
            "{other} keeps its kernel:\n{final_text}"
        );
    }

    let settled = disk.multiboot_snapshot();
    let third = refresh(&[]);
    third.expect_code(0);
    assert!(
        third
            .stdout
            .ends_with("nothing to change: the entries are up to date\n"),
        "{}",
        third.stdout
    );
    assert_eq!(disk.multiboot_snapshot(), settled, "nothing written");
}

/// `--boot-dir` on the mounted multiboot partition and an image tree that is not mounted:
/// its fstab names its root. What cannot be refreshed is refused with one line and the
/// documented status, and nothing changes.
#[test]
fn an_image_tree_named_by_its_fstab_is_refreshed_and_refusals_change_nothing() {
    let dir = TempDir::new("refresh-tree");
    let disk = fresh_node(&dir);
    let multiboot = disk.mount_multiboot(&dir.join("mb"), false);
    let mb = multiboot.path().to_str().expect("UTF-8 path").to_owned();
    let tree = dir.join("tree-b");
    std::fs::create_dir_all(tree.join("etc")).expect("creating the tree");
    std::fs::create_dir_all(tree.join("boot")).expect("creating the tree's /boot");
    let b_uuid = disk.facts.image("b").root_uuid.clone();
    let fstab = |uuid: &str| format!("# the image's\nUUID={uuid} / ext4 defaults 0 1\n");
    write(&tree.join("etc/fstab"), fstab(&b_uuid).as_bytes(), 0o644);
    let tree_arg = tree.to_str().expect("UTF-8 path").to_owned();
    let refresh = |extra: &[&str]| {
        let mut args = vec!["--boot-dir", &mb, "refresh", "--root", &tree_arg];
        args.extend_from_slice(extra);
        bootctl(&args)
    };
    let grub = multiboot.path().join(GRUB_CFG_PATH);
    let read = || std::fs::read_to_string(&grub).expect("grub.cfg");
    let before = read();

    expect_refusal(&refresh(&[]), 6, "no kernel (vmlinuz-*) in ");
    write(&tree.join("boot/vmlinuz-10.0"), b"", 0o644);
    expect_refusal(
        &refresh(&["--dry-run"]),
        6,
        "entry 2 \"Fixture B\": it loads the initrd",
    );
    write(
        &tree.join("etc/fstab"),
        fstab("0f3a4b5c-6d7e-4f80-9a1b-2c3d4e5f6a7b").as_bytes(),
        0o644,
    );
    expect_refusal(&refresh(&[]), 3, "this image is not on the menu");
    write(
        &tree.join("etc/fstab"),
        b"LABEL=root / ext4 defaults 0 1\n",
        0o644,
    );
    expect_refusal(&refresh(&[]), 3, "has no UUID= line for /");
    assert_eq!(read(), before, "refusals write nothing");

    write(&tree.join("etc/fstab"), fstab(&b_uuid).as_bytes(), 0o644);
    add_kernel(&tree.join("boot"), "10.0");
    refresh(&[]).expect_code(0);
    let after = read();
    script_check(&after);
    let host = host_kernel();
    assert_eq!(
        after,
        before
            .replace(
                &format!("\tlinux {} root=UUID={b_uuid} ", host.image_vmlinuz()),
                &format!("\tlinux '/boot/vmlinuz-10.0' root=UUID={b_uuid} "),
            )
            .replacen(
                &format!(
                    "\tinitrd {}\n}}\n\nmenuentry 'Fixture C'",
                    host.image_initrd()
                ),
                "\tinitrd '/boot/initrd.img-10.0'\n}\n\nmenuentry 'Fixture C'",
                1
            )
    );
}

/// A busybox tree with the static bootctl and the hooks, where refresh cannot work (no
/// /proc under chroot: the running root is unknown).
fn hook_tree(dir: &TempDir, with_bootctl: bool) -> std::path::PathBuf {
    let root = dir.join(if with_bootctl { "with" } else { "without" });
    std::fs::create_dir(&root).expect("creating the tree");
    let image = FixtureImage::new("hooks");
    let image = if with_bootctl {
        image.with_bootctl()
    } else {
        image
    };
    populate_image(&root, &image);
    for (path, text) in [
        (KERNEL_POSTINST_HOOK, DEBIAN_HOOK_TEXT),
        (KERNEL_INSTALL_PLUGIN, KERNEL_INSTALL_PLUGIN_TEXT),
    ] {
        let at = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(at.parent().expect("a directory")).expect("creating it");
        write(&at, text.as_bytes(), 0o755);
    }
    root
}

#[test]
fn the_hooks_never_fail_and_name_the_command_when_refresh_does() {
    require_tools(&["chroot"]);
    static_bootctl();
    let dir = TempDir::new("refresh-hooks");
    let hook_runs: [&[&str]; 4] = [
        &[KERNEL_POSTINST_HOOK, "9.9.9", "/boot/vmlinuz-9.9.9"],
        &[
            KERNEL_INSTALL_PLUGIN,
            "add",
            "9.9.9",
            "/boot/e",
            "/boot/vmlinuz-9.9.9",
        ],
        &[KERNEL_INSTALL_PLUGIN, "remove", "9.9.8", "/boot/e"],
        &[KERNEL_INSTALL_PLUGIN, "inspect", "9.9.9"],
    ];
    for with_bootctl in [true, false] {
        let root = hook_tree(&dir, with_bootctl);
        for args in hook_runs {
            let out = cmd::output_with_timeout(
                Command::new("chroot").arg(&root).args(args),
                Duration::from_secs(60),
            );
            let what = format!("bootctl {with_bootctl}: {args:?}");
            assert_eq!(
                out.status.and_then(|s| s.code()),
                Some(0),
                "{what}: {out:?}"
            );
            assert_eq!(out.stdout, "", "{what}");
            if with_bootctl && args[1] != "inspect" {
                assert_eq!(
                    out.stderr.lines().collect::<Vec<_>>(),
                    ["multiboot: bootctl refresh failed (bootctl: the running root filesystem's \
                      UUID is unknown (/ is not on a block device and the kernel command line \
                      has no root=UUID=); name the image's root with --root DIR); the boot entry \
                      may name a removed kernel: run 'bootctl refresh'"],
                    "{what}"
                );
            } else {
                assert_eq!(out.stderr, "", "{what}: nothing to do");
            }
        }
    }
}
