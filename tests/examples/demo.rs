//! The README's first command: a node disk with two images that switch to each other.
//!
//! Builds `target/demo/node.img`: one GRUB on a `multiboot` partition and two tiny Linux
//! images, `alpha` and `beta`, each with the static bootctl inside. Until the deployer lands,
//! the disk is built by the test kit's node builder (sfdisk, mkfs.ext4, grub-install, a
//! grub-mkconfig-style grub.cfg, boot-info.json), not by the deployer.
//! Then boots it twice in QEMU (software emulation): alpha comes up and runs
//! `bootctl switch beta` from inside; the second boot brings up beta.

use std::fs;

use e2e::fixture::FixtureImage;
use e2e::grubcfg::MenuStyle;
use e2e::node::NodeDisk;
use e2e::qemu::{self, expect_boot, Firmware, BOOT_TIMEOUT};
use e2e::tools::require_tools;
use e2e::workspace_root;

const ALPHA_RUN: &str = "\
echo '--- alpha is running; its bootctl lists the entries:'
bootctl list
echo '--- alpha switches the node to beta:'
bootctl switch beta
";

const BETA_RUN: &str = "\
echo '--- beta is running; its bootctl says:'
bootctl status
";

fn main() {
    require_tools(&[
        "sfdisk",
        "mkfs.ext4",
        "grub-install",
        "qemu-system-x86_64",
        "busybox",
    ]);
    let dir = workspace_root().join("target/demo");
    fs::create_dir_all(&dir).expect("creating target/demo");
    let path = dir.join("node.img");
    let _ = fs::remove_file(&path);

    println!(
        "building {} with two images, alpha and beta ...",
        path.display()
    );
    let disk = NodeDisk::builder(vec![
        FixtureImage::new("alpha")
            .with_bootctl()
            .run_script(ALPHA_RUN),
        FixtureImage::new("beta")
            .with_bootctl()
            .run_script(BETA_RUN),
    ])
    .menu(MenuStyle::Fixed {
        next_entry_block: true,
    })
    .build(&path);

    for (n, expected) in [(1, "alpha"), (2, "beta")] {
        println!("\nboot {n} of 2 (QEMU, about 20 s) ...");
        let outcome = qemu::boot(
            &disk.path,
            Firmware::Bios,
            BOOT_TIMEOUT,
            &format!("demo-boot-{n}"),
        );
        expect_boot(&outcome, expected, &format!("boot {n} of 2"));
        println!(
            "{expected} came up. Its console said:\n{}",
            outcome.run_output.trim_end()
        );
    }

    println!(
        "\nThe disk image is {}. Boot it by hand (Ctrl-A X quits):\n  \
         qemu-system-x86_64 -m 768 -nographic -drive file={},format=raw,if=virtio\n\
         Inspect or switch it offline:\n  \
         target/static/x86_64-unknown-linux-gnu/release/bootctl --disk {} list",
        disk.path.display(),
        disk.path.display(),
        disk.path.display()
    );
}
