//! Kernel updates inside deployed images, for real: the deployer puts the kernel hooks (and
//! the health unit) into the images whose packages would run them, and only there; an image
//! whose package manager installs a new kernel and removes the old one, through Debian's
//! hooks and then through the kernel-install plugin, comes up on the new kernel at the next
//! boot (QEMU, BIOS, software emulation).
//!
//! A missing tool fails the test and names `scripts/setup`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use e2e::chain::{boot_chain, shown, Expect, SHOW};
use e2e::deploy::{deploy_node, DeployedNode};
use e2e::disk::{snapshot_tree, LoopDisk, Mount};
use e2e::fixture::{host_kernel, FixtureImage};
use e2e::qemu::Firmware;
use e2e::tmp::TempDir;
use e2e::tools::require_deploy_tools;
use shared::grubcfg;
use shared::image_files::{DEBIAN_HOOK_TEXT, HEALTH_UNIT_TEXT, KERNEL_INSTALL_PLUGIN_TEXT};
use shared::layout::{
    HEALTH_UNIT, HEALTH_UNIT_WANTS, KERNEL_INSTALL_PLUGIN, KERNEL_POSTINST_HOOK, KERNEL_POSTRM_HOOK,
};

const TOOLS: &[&str] = &["rsync", "qemu-system-x86_64", "grub-script-check"];

const KERNEL_PARAMS: &str = "console=ttyS0 quiet panic=-1";

/// One boot's limit: a fixture boot takes 15 to 60 s under TCG on a loaded machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

/// The multiboot partition and the first image's root, as `write_images_config` lays the
/// disk out: bios_grub, the ESP, multiboot, then one root per image.
const MULTIBOOT_PARTITION: u32 = 3;
const FIRST_ROOT_PARTITION: u32 = 4;

/// `images` deployed by the real deployer onto a new disk-image file, the first booting.
fn deploy(label: &str, images: &[&FixtureImage]) -> DeployedNode {
    require_deploy_tools(TOOLS);
    deploy_node(
        Path::new(env!("CARGO_BIN_EXE_deployer")),
        label,
        images,
        &images[0].name,
        &[],
        KERNEL_PARAMS,
        &[],
    )
}

/// The files below `/etc` of each image's root, by image (partition order).
fn image_etc_trees(disk: &Path, scratch: &TempDir, count: u32) -> Vec<BTreeMap<String, Vec<u8>>> {
    let attached = LoopDisk::attach(disk);
    (0..count)
        .map(|i| {
            let partition = attached.partition(FIRST_ROOT_PARTITION + i);
            let mount = Mount::new(&partition, &scratch.join(format!("root-{i}")), "ro");
            snapshot_tree(&mount.path().join("etc"))
        })
        .collect()
}

/// Where a file the deployer installs lies below `/etc`, as `snapshot_tree` names it.
fn below_etc(path: &str) -> String {
    path.strip_prefix("/etc/")
        .expect("a path below /etc")
        .to_owned()
}

#[test]
fn hooks_and_the_health_unit_land_only_in_images_with_their_mechanisms() {
    // alpha has both kernel mechanisms' directories and systemd's; beta has none of them;
    // gamma says it is Fedora (no directory yet) and has systemd's in /lib.
    let alpha = FixtureImage::new("alpha")
        .dir("etc/kernel/postinst.d")
        .dir("etc/kernel/install.d")
        .dir("usr/lib/systemd/system");
    let beta = FixtureImage::new("beta");
    let mut gamma = FixtureImage::new("gamma").dir("lib/systemd/system");
    gamma.os_id = "fedora".to_owned();
    let node = deploy("kernel-hooks-land", &[&alpha, &beta, &gamma]);
    let (disk, scratch) = (&node.disk, &node.scratch);

    let trees = image_etc_trees(disk, scratch, 3);
    let installed = |tree: &BTreeMap<String, Vec<u8>>| -> Vec<String> {
        let ours = [
            KERNEL_POSTINST_HOOK,
            KERNEL_POSTRM_HOOK,
            KERNEL_INSTALL_PLUGIN,
            HEALTH_UNIT,
        ];
        ours.iter()
            .map(|path| below_etc(path))
            .filter(|path| tree.contains_key(path))
            .collect()
    };
    assert_eq!(
        installed(&trees[0]),
        [
            "kernel/postinst.d/zz-multiboot",
            "kernel/postrm.d/zz-multiboot",
            "kernel/install.d/90-multiboot.install",
            "systemd/system/multiboot-health.service",
        ],
        "alpha"
    );
    assert_eq!(installed(&trees[1]), Vec::<String>::new(), "beta");
    assert_eq!(
        installed(&trees[2]),
        [
            "kernel/install.d/90-multiboot.install",
            "systemd/system/multiboot-health.service"
        ],
        "gamma"
    );
    let alpha_tree = &trees[0];
    for (path, text) in [
        (KERNEL_POSTINST_HOOK, DEBIAN_HOOK_TEXT),
        (KERNEL_POSTRM_HOOK, DEBIAN_HOOK_TEXT),
        (KERNEL_INSTALL_PLUGIN, KERNEL_INSTALL_PLUGIN_TEXT),
        (HEALTH_UNIT, HEALTH_UNIT_TEXT),
    ] {
        assert_eq!(alpha_tree[&below_etc(path)], text.as_bytes(), "{path}");
    }

    // Modes and the enabling link, read from the filesystem itself.
    let attached = LoopDisk::attach(disk);
    for (i, expect_unit) in [(0, true), (1, false), (2, true)] {
        let mount = Mount::new(
            &attached.partition(FIRST_ROOT_PARTITION + i),
            &scratch.join(format!("check-{i}")),
            "ro",
        );
        let root = mount.path();
        let link = std::fs::read_link(root.join(HEALTH_UNIT_WANTS.trim_start_matches('/')));
        assert_eq!(
            link.ok().as_deref(),
            expect_unit.then_some(Path::new(HEALTH_UNIT)),
            "image {i}: {HEALTH_UNIT_WANTS}"
        );
        if i == 0 {
            for hook in [
                KERNEL_POSTINST_HOOK,
                KERNEL_POSTRM_HOOK,
                KERNEL_INSTALL_PLUGIN,
            ] {
                let mode = std::os::unix::fs::PermissionsExt::mode(
                    &std::fs::metadata(root.join(hook.trim_start_matches('/')))
                        .expect("the hook")
                        .permissions(),
                );
                assert_eq!(mode & 0o7777, 0o755, "{hook}");
            }
        }
    }
}

/// The version names the guest gives its copies of the kernel it booted: newer than any
/// real kernel's, the second newer than the first as `sort -V` orders them.
const DEBIAN_VERSION: &str = "9.9.9-multiboot";
const KERNEL_INSTALL_VERSION: &str = "9.9.10-multiboot";

/// alpha's run script: by the kernel it booted (GRUB's `BOOT_IMAGE=`), install the next
/// kernel through the Debian hooks, or through the kernel-install plugin, or nothing.
fn update_script() -> String {
    let (debian, plugin) = (DEBIAN_VERSION, KERNEL_INSTALL_VERSION);
    format!(
        r#"set -e
{SHOW}boot_image=$(sed -n 's/.*BOOT_IMAGE=\([^ ]*\).*/\1/p' /proc/cmdline)
echo "booted kernel $boot_image"
case "$boot_image" in
/boot/vmlinuz-{debian})
    # The kernel-install plugin, called with kernel-install's arguments: the busybox guest
    # has no kernel-install, which would run it so after copying the kernel into /boot.
    cp /boot/vmlinuz-{debian} /boot/vmlinuz-{plugin}
    cp /boot/initrd.img-{debian} /boot/initramfs-{plugin}.img
    show add /etc/kernel/install.d/90-multiboot.install add {plugin} /boot/entry \
        /boot/vmlinuz-{plugin} /boot/initramfs-{plugin}.img
    rm /boot/vmlinuz-{debian} /boot/initrd.img-{debian}
    show remove /etc/kernel/install.d/90-multiboot.install remove {debian} /boot/entry
    ;;
/boot/vmlinuz-{plugin}) ;;
*)
    # Debian's way: the package puts the kernel and its initramfs into /boot and runs
    # postinst.d; removing the old one deletes its files, then runs postrm.d.
    old=${{boot_image#/boot/vmlinuz-}}
    cp /boot/vmlinuz-$old /boot/vmlinuz-{debian}
    cp /boot/initrd.img-$old /boot/initrd.img-{debian}
    show postinst run-parts --arg={debian} --arg=/boot/vmlinuz-{debian} /etc/kernel/postinst.d
    rm /boot/vmlinuz-$old /boot/initrd.img-$old
    show postrm run-parts --arg=$old --arg=/boot/vmlinuz-$old /etc/kernel/postrm.d
    ;;
esac
show boot ls /boot
"#
    )
}

/// The kernel GRUB booted, from `booted kernel PATH` in a run script's output.
fn booted_kernel(run_output: &str) -> &str {
    run_output
        .lines()
        .find_map(|line| line.strip_prefix("booted kernel "))
        .unwrap_or("(not printed)")
}

#[test]
fn a_kernel_update_through_either_hook_boots_the_new_kernel() {
    let alpha = FixtureImage::new("alpha")
        .dir("etc/kernel/postinst.d")
        .dir("etc/kernel/postrm.d")
        .dir("etc/kernel/install.d")
        .run_script(&update_script());
    let beta = FixtureImage::new("beta");
    let node = deploy("kernel-update", &[&alpha, &beta]);
    let (disk, scratch) = (&node.disk, &node.scratch);
    let grub_cfg = |label: &str| {
        let attached = LoopDisk::attach(disk);
        let mount = Mount::new(
            &attached.partition(MULTIBOOT_PARTITION),
            &scratch.join(label),
            "ro",
        );
        std::fs::read_to_string(mount.path().join("boot/grub/grub.cfg")).expect("grub.cfg")
    };
    let before = grub_cfg("mb-before");

    let boots = boot_chain(
        disk,
        Firmware::Bios,
        BOOT_TIMEOUT,
        "kernel-update",
        &[
            Expect::first("alpha"),
            Expect::after("alpha", "Debian's hooks installed a kernel"),
            Expect::after("alpha", "kernel-install's plugin installed a kernel"),
        ],
    );
    let host = host_kernel();
    let kernels: Vec<&str> = boots.iter().map(|b| booted_kernel(&b.run_output)).collect();
    assert_eq!(
        kernels,
        [
            host.image_vmlinuz(),
            format!("/boot/vmlinuz-{DEBIAN_VERSION}"),
            format!("/boot/vmlinuz-{KERNEL_INSTALL_VERSION}"),
        ],
        "the kernel each boot came up on; logs: {:?}",
        boots.iter().map(|b| &b.log).collect::<Vec<_>>()
    );
    let hook_output = |boot: usize, name: &str| {
        let out = shown(&boots[boot].run_output, name);
        assert_eq!(out.rc, Some(0), "{name}: {}", boots[boot].run_output);
        out.stdout
    };
    for (boot, name, says) in [
        (0, "postinst", "wrote: boot/grub/grub.cfg"),
        (0, "postrm", "nothing to change"),
        (1, "add", "wrote: boot/grub/grub.cfg"),
        (1, "remove", "nothing to change"),
    ] {
        let out = hook_output(boot, name);
        assert!(out.contains(says), "{name} printed:\n{out}");
    }
    assert_eq!(
        hook_output(2, "boot"),
        format!("initramfs-{KERNEL_INSTALL_VERSION}.img\nvmlinuz-{KERNEL_INSTALL_VERSION}\n")
    );

    // Only alpha's entry changed, and only its kernel and initrd words.
    let after = grub_cfg("mb-after");
    e2e::grubcfg::script_check(&after);
    let beta_at = before
        .find("menuentry --id='multiboot-beta'")
        .expect("beta's entry");
    let (alpha_before, beta_before) = before.split_at(beta_at);
    let expected = alpha_before
        .replace(
            &format!("'{}'", host.image_vmlinuz()),
            &format!("'/boot/vmlinuz-{KERNEL_INSTALL_VERSION}'"),
        )
        .replace(
            &format!("'{}'", host.image_initrd()),
            &format!("'/boot/initramfs-{KERNEL_INSTALL_VERSION}.img'"),
        )
        + beta_before;
    assert_ne!(
        expected, before,
        "alpha's entry names the host kernel:\n{before}"
    );
    assert_eq!(after, expected, "alpha's kernel and initrd alone changed");
    let menu = grubcfg::parse(&after).expect("grub.cfg parses");
    assert_eq!(menu.items.len(), 2);
}
