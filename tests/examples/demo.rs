//! The README's first command: two images deployed by the deployer that switch to each other.
//!
//! Run by `scripts/demo`, which builds the deployer and the static bootctl and passes their
//! paths: `demo --deployer PATH --bootctl PATH`. Writes the two example image trees, alpha
//! and beta (busybox and the host's Debian kernel), where the repository's example config
//! `deployer/examples/demo.json` expects them (`/var/tmp/multiboot-demo/images/`), deploys
//! that config into the disk-image file `target/demo/node.img` with `deployer deploy`, and
//! boots the disk twice in QEMU (software emulation): alpha comes up and runs
//! `bootctl switch beta` from inside; the second boot brings up beta.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use e2e::fixture::{populate_image, FixtureImage};
use e2e::qemu::{self, expect_boot, Firmware, BOOT_TIMEOUT};
use e2e::tools::require_tools;
use e2e::workspace_root;

/// Where deployer/examples/demo.json pulls its images from.
const IMAGES_DIR: &str = "/var/tmp/multiboot-demo/images";

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

/// `--deployer PATH --bootctl PATH`.
fn arguments() -> Result<(PathBuf, PathBuf), String> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let (mut deployer, mut bootctl) = (None, None);
    let mut pairs = args.chunks(2);
    for pair in &mut pairs {
        match (pair[0].to_str(), pair.get(1)) {
            (Some("--deployer"), Some(path)) => deployer = Some(PathBuf::from(path)),
            (Some("--bootctl"), Some(path)) => bootctl = Some(PathBuf::from(path)),
            _ => return Err(format!("unexpected argument {:?}", pair[0])),
        }
    }
    match (deployer, bootctl) {
        (Some(deployer), Some(bootctl)) => Ok((deployer, bootctl)),
        _ => Err("usage: demo --deployer PATH --bootctl PATH (scripts/demo passes both)".into()),
    }
}

/// Writes a fresh tree of `image` at `IMAGES_DIR/<name>`.
fn write_tree(image: &FixtureImage) {
    let root = Path::new(IMAGES_DIR).join(&image.name);
    if root.exists() {
        fs::remove_dir_all(&root).unwrap_or_else(|e| panic!("removing {}: {e}", root.display()));
    }
    fs::create_dir_all(&root).unwrap_or_else(|e| panic!("creating {}: {e}", root.display()));
    populate_image(&root, image);
}

fn main() -> ExitCode {
    let (deployer, bootctl) = match arguments() {
        Ok(paths) => paths,
        Err(err) => {
            eprintln!("demo: {err}");
            return ExitCode::from(2);
        }
    };
    require_tools(&[
        "sfdisk",
        "mkfs.ext4",
        "mkfs.vfat",
        "grub-install",
        "grub-mkimage",
        "mcopy",
        "rsync",
        "qemu-system-x86_64",
        "busybox",
    ]);
    let config = workspace_root().join("deployer/examples/demo.json");
    let dir = workspace_root().join("target/demo");
    fs::create_dir_all(&dir).expect("creating target/demo");
    let disk = dir.join("node.img");
    let _ = fs::remove_file(&disk);

    println!("writing the example images alpha and beta to {IMAGES_DIR} ...");
    for image in [
        FixtureImage::new("alpha").run_script(ALPHA_RUN),
        FixtureImage::new("beta").run_script(BETA_RUN),
    ] {
        write_tree(&image);
    }

    println!(
        "\ndeploying {} onto {} ...\n$ deployer deploy {} --disk vda={} --yes",
        config.display(),
        disk.display(),
        config.display(),
        disk.display()
    );
    let status = Command::new(&deployer)
        .arg("deploy")
        .arg(&config)
        .arg("--disk")
        .arg(format!("vda={}", disk.display()))
        .arg("--bootctl")
        .arg(&bootctl)
        .arg("--boot-info")
        .arg(dir.join("boot-info.json"))
        .arg("--yes")
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", deployer.display()));
    if !status.success() {
        eprintln!("demo: the deploy failed ({status})");
        return ExitCode::FAILURE;
    }

    for (n, expected) in [(1, "alpha"), (2, "beta")] {
        println!("\nboot {n} of 2 (QEMU, about 15 s) ...");
        let outcome = qemu::boot(
            &disk,
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
        "\nThe disk image is {disk}. Boot it by hand (Ctrl-A X quits):\n  \
         qemu-system-x86_64 -m 768 -nographic -drive file={disk},format=raw,if=virtio\n\
         Inspect or switch it offline:\n  \
         {bootctl} --disk {disk} list",
        disk = disk.display(),
        bootctl = bootctl.display(),
    );
    ExitCode::SUCCESS
}
