//! The product's user story, proved by booting: an administrator logged into whichever
//! image is running types `bootctl switch OTHER`, reboots, and the node comes up in OTHER.
//!
//! Every disk here is made by the real `deployer deploy` from fixture image trees, and
//! the bootctl and `/etc/multiboot/boot-info.json` inside the images are the ones the
//! deployer installed, exactly as a user gets them. Each image's run script (executed by
//! the fixture init at boot) prints `bootctl list --json` and `bootctl status --json`
//! with the [`e2e::chain::SHOW`] function, runs `bootctl switch`, prints the status again
//! and powers off; the test boots the disk again and again under QEMU and reads what the
//! guest printed from its console. Before bootctl runs, the script removes `/dev/disk`
//! (the links the initramfs made, as udev does), so bootctl must find the multiboot
//! partition by UUID from `/proc/partitions`, as on a node without udev.
//!
//! A missing tool fails the test and names `scripts/setup`.

use std::path::Path;
use std::time::Duration;

use e2e::bootctl::marked;
use e2e::chain::{boot_chain, shown, Expect, SHOW};
use e2e::deploy::{deploy_node, DeployedNode as Node, SHARED_MOUNT};
use e2e::fixture::FixtureImage;
use e2e::qemu::{BootOutcome, Firmware};
use e2e::tools::require_deploy_tools;
use serde_json::Value;

/// What the deployer and the boots need besides DEPLOY_TOOLS.
const TOOLS: &[&str] = &["rsync", "qemu-system-x86_64"];

const KERNEL_PARAMS: &str = "console=ttyS0 quiet panic=-1";

/// One boot's limit: a fixture boot takes 20 to 60 s under TCG on a loaded machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

/// Where the partition that images share is mounted (by their fstabs).
const COMMON: &str = SHARED_MOUNT;

/// A multiboot UUID no device holds.
const STALE_UUID: &str = "0badc0de-0000-4000-8000-000000000000";

/// Writes the tree of every image, a provision.json that gives each image its own `/` and
/// the images of `shared` one partition at [`COMMON`], `default` booting by default, and
/// runs `deployer deploy` on a new disk-image file.
fn deploy(
    label: &str,
    images: &[&FixtureImage],
    default: &str,
    shared: &[&str],
    extra_args: &[&str],
) -> Node {
    require_deploy_tools(TOOLS);
    deploy_node(
        Path::new(env!("CARGO_BIN_EXE_deployer")),
        label,
        images,
        default,
        shared,
        KERNEL_PARAMS,
        extra_args,
    )
}

/// The run script of an image: `before` (shell lines), then bootctl's list and status,
/// then (with `switch`, the arguments of `bootctl switch`) the switch and the status
/// after it. Any failing command fails the script, which the boot chain reports.
fn run_script(before: &str, switch: Option<&str>) -> String {
    let mut script = format!(
        "set -e\n{SHOW}\
         rm -rf /dev/disk\n\
         show udev sh -c 'if pidof systemd-udevd udevd >/dev/null; then echo udevd runs; else echo no udevd; fi; \
         if [ -e /dev/disk ]; then echo /dev/disk exists; else echo no /dev/disk; fi'\n\
         {before}\
         show list bootctl list --json\n\
         show status bootctl status --json\n"
    );
    if let Some(args) = switch {
        script += &format!("show switch bootctl switch {args}\nshow after bootctl status --json\n");
    }
    script
}

/// `image_name` of a `bootctl status --json` entry (`null` for none).
fn status_image(status: &Value, key: &str) -> Option<String> {
    let entry = &status[key];
    (!entry.is_null()).then(|| entry["image_name"].as_str().unwrap_or("(none)").to_owned())
}

/// Checks what bootctl printed inside the guest in `boot`: the running image is
/// `running` (from the running root) in list and status, the default before the switch is
/// `before`, after it (if the script switched) `after`, with no one-shot choice pending;
/// and the multiboot partition was found by its UUID as a `/dev/vda` partition, in a guest
/// without udev.
fn check_views(
    boot: &BootOutcome,
    which: &str,
    node: &Node,
    running: &FixtureImage,
    before: &FixtureImage,
    after: Option<&FixtureImage>,
) {
    let out = &boot.run_output;
    let context = |what: &str| format!("{which}: {what}; log: {}", boot.log.display());
    assert_eq!(
        shown(out, "udev").stdout,
        "no udevd\nno /dev/disk\n",
        "{}",
        context("udev still at work in the guest")
    );

    let list = shown(out, "list").json();
    let name = |image: &FixtureImage| Some(image.image_name.clone());
    let marks = |mark: &str| marked(&list, mark, "image_name");
    assert_eq!(
        (marks("running"), marks("default"), marks("next")),
        (
            vec![running.image_name.clone()],
            vec![before.image_name.clone()],
            Vec::new()
        ),
        "{}\n{list:#}",
        context("`bootctl list --json` marks (running, default, next)")
    );

    let mut sections = vec![("status", "before the switch", before)];
    sections.extend(after.map(|after| ("after", "after the switch", after)));
    for (section, when, default) in sections {
        let status = shown(out, section).json();
        let what = format!("`bootctl status --json` {when}");
        assert_eq!(
            (
                status_image(&status, "running"),
                status_image(&status, "default"),
                status_image(&status, "next")
            ),
            (name(running), name(default), None),
            "{}\n{status:#}",
            context(&format!("{what}: running, default, next"))
        );
        let multiboot = &status["multiboot"];
        let device = multiboot["device"].as_str().unwrap_or("");
        assert!(
            multiboot["uuid"] == node.multiboot_uuid.as_str()
                && device.starts_with("/dev/vda")
                && device.len() > "/dev/vda".len(),
            "{}\n{status:#}",
            context(&format!(
                "{what}: the multiboot partition is not UUID {} on a /dev/vda partition",
                node.multiboot_uuid
            ))
        );
    }
}

/// Three images switch round from inside, A to B to C to A, across four BIOS boots; the
/// partition that A and B share is mounted by both, and what A writes there B reads.
#[test]
fn images_switch_round_from_inside_and_share_a_partition() {
    let mounts = format!("show common grep ' {COMMON} ' /proc/mounts\n");
    let alpha_before = format!(
        "{mounts}cat /proc/sys/kernel/random/boot_id > {COMMON}/from-alpha\n\
         show wrote cat {COMMON}/from-alpha\n"
    );
    let beta_before = format!("{mounts}show read cat {COMMON}/from-alpha\n");
    let alpha = FixtureImage::new("alpha").run_script(&run_script(&alpha_before, Some("beta")));
    let beta = FixtureImage::new("beta").run_script(&run_script(&beta_before, Some("gamma")));
    // gamma's copy of boot-info.json names a multiboot UUID that no device holds (as after
    // the partition was made anew by other means): bootctl says so and finds it by label.
    let stale = format!(
        "sed -i 's/\"multiboot_partition\": *\"[^\"]*\"/\"multiboot_partition\": \"{STALE_UUID}\"/' \
         /etc/multiboot/boot-info.json\n\
         show stale sh -c 'bootctl list 2>&1 >/dev/null'\n"
    );
    let gamma = FixtureImage::new("gamma").run_script(&run_script(&stale, Some("alpha")));
    let node = deploy(
        "boot-cycle",
        &[&alpha, &beta, &gamma],
        "alpha",
        &["alpha", "beta"],
        &[],
    );

    let boots = boot_chain(
        &node.disk,
        Firmware::Bios,
        BOOT_TIMEOUT,
        "boot-cycle",
        &[
            Expect::first("alpha"),
            Expect::after("beta", "alpha ran `bootctl switch beta`"),
            Expect::after("gamma", "beta ran `bootctl switch gamma`"),
            Expect::after("alpha", "gamma ran `bootctl switch alpha`"),
        ],
    );

    let order = [&alpha, &beta, &gamma, &alpha];
    for (i, boot) in boots.iter().enumerate() {
        let running = order[i];
        let next = order[(i + 1) % 3];
        check_views(
            boot,
            &format!("boot {} of 4 ({})", i + 1, running.name),
            &node,
            running,
            running,
            Some(next),
        );
    }

    // The shared partition: the same filesystem mounted by both fstabs, and the boot id
    // alpha wrote at its boot is what beta read at the next one.
    let mounted: Vec<String> = boots[..2]
        .iter()
        .map(|boot| shown(&boot.run_output, "common").stdout)
        .collect();
    let device = |line: &str| line.split_whitespace().next().unwrap_or("").to_owned();
    assert!(
        !mounted[0].is_empty() && device(&mounted[0]) == device(&mounted[1]),
        "alpha and beta do not mount the same filesystem at {COMMON}: {mounted:?}"
    );
    let stale = shown(&boots[2].run_output, "stale");
    let note = format!(
        "bootctl: no block device holds the multiboot filesystem UUID {STALE_UUID} \
         (named by /etc/multiboot/boot-info.json); using /dev/"
    );
    assert!(
        stale.rc == Some(0)
            && stale.stdout.starts_with(&note)
            && stale.stdout.ends_with("3 instead\n"),
        "gamma's bootctl with a stale boot-info.json: {stale:?}"
    );
    let wrote = shown(&boots[0].run_output, "wrote").stdout;
    let read = shown(&boots[1].run_output, "read").stdout;
    assert!(
        wrote.trim().len() == 36 && read == wrote,
        "beta read {read:?} from {COMMON}/from-alpha, alpha wrote {wrote:?}"
    );
}

/// The two-image switch on UEFI (OVMF booting the deployer's `BOOTX64.EFI`): alpha
/// switches to beta, beta comes up and switches back, and alpha comes up again (A, B, A).
#[test]
fn images_switch_to_each_other_on_uefi() {
    let alpha = FixtureImage::new("alpha").run_script(&run_script("", Some("beta")));
    let beta = FixtureImage::new("beta").run_script(&run_script("", Some("alpha")));
    let node = deploy("boot-uefi", &[&alpha, &beta], "alpha", &[], &[]);

    let boots = boot_chain(
        &node.disk,
        Firmware::Uefi,
        BOOT_TIMEOUT,
        "boot-uefi",
        &[
            Expect::first("alpha"),
            Expect::after("beta", "alpha ran `bootctl switch beta`"),
            Expect::after("alpha", "beta ran `bootctl switch alpha`"),
        ],
    );

    let cycle = [(&alpha, &beta), (&beta, &alpha), (&alpha, &beta)];
    for (i, (running, other)) in cycle.into_iter().enumerate() {
        check_views(
            &boots[i],
            &format!("UEFI boot {} of 3 ({})", i + 1, running.name),
            &node,
            running,
            running,
            Some(other),
        );
    }
}

/// The specification's flow (`--bootloader-config os-prober`: grub-mkconfig with os-prober
/// makes grub.cfg, the default a literal `set default=`): the default image comes up on
/// BIOS and switches to the other from inside, which then comes up on UEFI and switches
/// back, and the first comes up again on BIOS (A, B, A). boot-info.json's grub ids count
/// os-prober's "Advanced options" submenus as one entry each, as GRUB does.
#[test]
fn images_switch_to_each_other_in_os_prober_mode() {
    let alpha = FixtureImage::new("alpha").run_script(&run_script("", Some("beta")));
    let beta = FixtureImage::new("beta").run_script(&run_script("", Some("alpha")));
    let node = deploy(
        "boot-os-prober",
        &[&alpha, &beta],
        "alpha",
        &[],
        &["--bootloader-config", "os-prober"],
    );
    let grub_ids: Vec<&Value> = node.boot_info["elements"]
        .as_array()
        .expect("elements")
        .iter()
        .map(|e| &e["grub_id"])
        .collect();
    assert_eq!(grub_ids, [0, 2], "grub ids: {:#}", node.boot_info);

    let first = boot_chain(
        &node.disk,
        Firmware::Bios,
        BOOT_TIMEOUT,
        "boot-os-prober-bios",
        &[Expect::first("alpha")],
    );
    let second = boot_chain(
        &node.disk,
        Firmware::Uefi,
        BOOT_TIMEOUT,
        "boot-os-prober-uefi",
        &[Expect::after("beta", "alpha ran `bootctl switch beta`")],
    );
    let third = boot_chain(
        &node.disk,
        Firmware::Bios,
        BOOT_TIMEOUT,
        "boot-os-prober-bios-again",
        &[Expect::after("alpha", "beta ran `bootctl switch alpha`")],
    );
    for (boot, (which, running, other)) in first.iter().chain(&second).chain(&third).zip([
        ("os-prober mode, BIOS boot 1 of 3 (alpha)", &alpha, &beta),
        ("os-prober mode, UEFI boot 2 of 3 (beta)", &beta, &alpha),
        ("os-prober mode, BIOS boot 3 of 3 (alpha)", &alpha, &beta),
    ]) {
        check_views(boot, which, &node, running, running, Some(other));
    }
}
