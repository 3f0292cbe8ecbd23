//! Slow and opt-in (`cargo nextest run -p deployer --test real_debian --run-ignored
//! ignored-only`; about 20 minutes): a real Debian 12 image, debootstrapped from the Debian
//! archive this machine's apt uses, deployed beside a fixture image and booted in QEMU with
//! its own systemd and initramfs. It proves, on a real distribution:
//! - the health unit the deployer installs confirms a trial: alpha runs
//!   `bootctl switch --try debian`, Debian comes up, `multiboot-health.service` runs
//!   `bootctl health`, and Debian is the default from then on;
//! - the kernel hooks the deployer installs keep Debian's entry true through a real kernel
//!   update: `dpkg -i` of bookworm-backports' linux-image package; the next boot comes up on
//!   the new kernel, purges the kernel Debian was deployed with (as `apt autoremove` would),
//!   and the boot after that still comes up on the new kernel.
//!
//! The tree and the packages are cached under `/var/tmp/multiboot-real` (built once, with
//! debootstrap and apt in a chroot); docs/figures.md records what a run showed.

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::chain::{shown, SHOW};
use e2e::cmd;
use e2e::debian::{
    apt_root, debian_tree, fixture_copy, in_chroot, tree_kernel, BOOT_TIMEOUT, CACHE,
    KERNEL_PARAMS, MIRROR,
};
use e2e::deploy::deploy_command;
use e2e::fixture::{populate_image, FixtureImage};
use e2e::qemu::{self, BootOutcome, Firmware};
use e2e::tmp::TempDir;
use e2e::tools::{require_deploy_tools, require_tools};

/// bookworm-backports' kernel packages (a newer kernel for Debian 12), fetched once with
/// apt in a scratch copy of the tree.
fn newer_kernel_debs(tree: &Path) -> PathBuf {
    let debs = Path::new(CACHE).join("debs");
    let have = std::fs::read_dir(&debs).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("linux-image-6.12")
        })
    });
    if have {
        return debs;
    }
    let work = TempDir::new("apt-work");
    let root = work.join("root");
    apt_root(tree, &root);
    std::fs::write(
        root.join("etc/apt/sources.list.d/bpo.list"),
        format!("deb {MIRROR} bookworm-backports main\n"),
    )
    .expect("bpo.list");
    in_chroot(&root, &["apt-get", "update", "-q"]);
    in_chroot(
        &root,
        &[
            "apt-get",
            "install",
            "-q",
            "-y",
            "--download-only",
            "-t",
            "bookworm-backports",
            "linux-image-amd64",
        ],
    );
    std::fs::create_dir_all(&debs).expect("creating the debs cache");
    for entry in std::fs::read_dir(root.join("var/cache/apt/archives"))
        .expect("archives")
        .flatten()
    {
        if entry.file_name().to_string_lossy().ends_with(".deb") {
            std::fs::copy(entry.path(), debs.join(entry.file_name())).expect("copying a deb");
        }
    }
    debs
}

/// What Debian does at its boots: the first (on trial) shows the health unit's result and
/// the status, then installs the newer kernel; the second (on the new kernel) purges the
/// kernel Debian was deployed with, as `apt autoremove` would; every boot shows the kernel
/// it runs.
fn debian_run(old_kernel: &str) -> String {
    format!(
        "#!/bin/sh\n{SHOW}n=$(( $(cat /var/fixture-boots 2>/dev/null || echo 0) + 1 ))\n\
         echo $n > /var/fixture-boots\nsync\n\
         show cmdline cat /proc/cmdline\n\
         show health systemctl show -p Result -p ActiveState multiboot-health.service\n\
         show status bootctl status --json\n\
         case $n in\n\
         1) show install dpkg -i /root/debs/linux-image-6.12*.deb /root/debs/linux-image-amd64_*.deb /root/debs/apparmor_*.deb ;;\n\
         2) show purge dpkg -P linux-image-{old_kernel}; show boot ls /boot; show list bootctl list --json ;;\n\
         esac\n"
    )
}

fn check_boot(outcome: &BootOutcome, image: &str, which: &str) {
    let ok = outcome.booted.as_deref() == Some(image) && outcome.run_rc.is_some();
    assert!(
        ok,
        "{which}: expected {image} to come up and run; came up {:?}, rc {:?}; log {}",
        outcome.booted,
        outcome.run_rc,
        outcome.log.display()
    );
}

#[test]
#[ignore = "slow (about 20 minutes) and needs the Debian archive: run with --run-ignored"]
fn a_real_debian_is_confirmed_by_its_health_unit_and_boots_its_new_kernel() {
    require_deploy_tools(&["rsync", "qemu-system-x86_64"]);
    let tree = debian_tree();
    let debs = newer_kernel_debs(&tree);
    let old_kernel = tree_kernel(&tree);

    let scratch = TempDir::new("real-debian");
    let debian = scratch.join("debian");
    fixture_copy(&tree, &debian, "debian", &debian_run(&old_kernel));
    cmd::run(
        Command::new("cp")
            .arg("-a")
            .arg(&debs)
            .arg(debian.join("root/debs")),
    );

    let alpha = FixtureImage::new("alpha")
        .run_script(&format!("{SHOW}show try bootctl switch --try debian\n"));
    let alpha_root = scratch.join("alpha");
    std::fs::create_dir(&alpha_root).expect("alpha's tree");
    populate_image(&alpha_root, &alpha);

    let config = scratch.join("provision.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "images": [
                {"name": "alpha", "boot": true, "image_pull_url": alpha_root, "target": "/"},
                {"name": "debian", "image_pull_url": debian, "target": "/"}
            ],
            "partitions": [{
                "type": "disk", "id": {"type": "name", "value": "vda"}, "size": "3600 MiB",
                "volumes": [
                    {"type": "partition", "mount": "/", "size": "160", "images": ["alpha"],
                     "file_system": "ext4"},
                    {"type": "partition", "mount": "/", "size": "3000", "images": ["debian"],
                     "file_system": "ext4"}
                ]
            }],
            "partitions_policy": "clean",
            "deploy_data": {"kernel_params": KERNEL_PARAMS}
        })
        .to_string(),
    )
    .expect("writing provision.json");
    let disk = scratch.join("node.img");
    let mut deploy = deploy_command(
        Path::new(env!("CARGO_BIN_EXE_deployer")),
        &config,
        &disk,
        &scratch.join("boot-info.json"),
    );
    let out = cmd::output(&mut deploy);
    assert!(
        out.status.success(),
        "deploy: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let boot = |n: usize| {
        qemu::boot(
            &disk,
            Firmware::Bios,
            BOOT_TIMEOUT,
            &format!("real-debian-{n}"),
        )
    };
    let first = boot(1);
    check_boot(&first, "alpha", "boot 1");
    assert_eq!(
        shown(&first.run_output, "try").rc,
        Some(0),
        "{}",
        first.run_output
    );

    let second = boot(2);
    check_boot(&second, "debian", "boot 2 (on trial)");
    let out = &second.run_output;
    assert!(
        shown(out, "health").stdout.contains("Result=success"),
        "the health unit ran and succeeded: {out}"
    );
    let status = shown(out, "status").json();
    assert_eq!(
        status["default"]["image_name"], status["running"]["image_name"],
        "the health unit confirmed Debian: {status:#}"
    );
    assert_eq!(status["trial"], serde_json::Value::Null, "{status:#}");
    let install = shown(out, "install");
    assert_eq!(install.rc, Some(0), "dpkg -i: {out}");
    assert!(
        install.stdout.contains("zz-multiboot")
            && install.stdout.contains("wrote: boot/grub/grub.cfg"),
        "the postinst.d hook refreshed the entry: {}",
        install.stdout
    );

    let third = boot(3);
    check_boot(&third, "debian", "boot 3 (after the kernel install)");
    let out = &third.run_output;
    assert!(
        shown(out, "cmdline")
            .stdout
            .contains("BOOT_IMAGE=/boot/vmlinuz-6.12"),
        "Debian came up on its new kernel: {out}"
    );
    assert_eq!(shown(out, "purge").rc, Some(0), "dpkg -P: {out}");
    let boot_dir = shown(out, "boot").stdout;
    assert!(
        boot_dir.contains("vmlinuz-6.12") && !boot_dir.contains(&old_kernel),
        "{boot_dir}"
    );

    let fourth = boot(4);
    check_boot(&fourth, "debian", "boot 4 (after the old kernel's purge)");
    assert!(
        shown(&fourth.run_output, "cmdline")
            .stdout
            .contains("BOOT_IMAGE=/boot/vmlinuz-6.12"),
        "{}",
        fourth.run_output
    );
    eprintln!(
        "real-debian: boots took {:.0?}, {:.0?} (kernel install), {:.0?} (purge), {:.0?}",
        first.elapsed, second.elapsed, third.elapsed, fourth.elapsed
    );
}

/// systemd's own kernel-install (Debian 12's, in a chroot of the debootstrapped tree) runs
/// the plugin the deployer installs, for `add` and for `remove`, and the plugin runs
/// `bootctl refresh`. A script that notes its arguments stands in for bootctl: the chroot
/// is no node, and refresh itself is proved by the boots above and kernel_update.rs.
#[test]
#[ignore = "needs the debootstrapped Debian 12 tree (slow the first time): run with --run-ignored"]
fn debians_kernel_install_runs_the_multiboot_plugin() {
    require_tools(&["chroot"]);
    let tree = debian_tree();
    let scratch = TempDir::new("kernel-install");
    let root = scratch.join("root");
    cmd::run(Command::new("cp").arg("-a").arg(&tree).arg(&root));
    e2e::fixture::write(
        &root.join("etc/kernel/install.d/90-multiboot.install"),
        shared::image_files::KERNEL_INSTALL_PLUGIN_TEXT.as_bytes(),
        0o755,
    );
    e2e::fixture::write(
        &root.join("usr/sbin/bootctl"),
        b"#!/bin/sh\necho \"bootctl $*\" >> /tmp/bootctl-calls\n",
        0o755,
    );
    let version = tree_kernel(&root);
    let calls = root.join("tmp/bootctl-calls");
    for args in [
        vec![
            "add".to_owned(),
            version.clone(),
            format!("/boot/vmlinuz-{version}"),
        ],
        vec!["remove".to_owned(), version.clone()],
    ] {
        let _ = std::fs::remove_file(&calls);
        let out = cmd::output(
            Command::new("chroot")
                .arg(&root)
                .arg("kernel-install")
                .arg("--verbose")
                .args(&args),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("/etc/kernel/install.d/90-multiboot.install"),
            "kernel-install {args:?}: {}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            std::fs::read_to_string(&calls).unwrap_or_default(),
            "bootctl refresh\n",
            "kernel-install {args:?} ran the plugin, which ran bootctl refresh"
        );
    }
}
