//! Trial boots, proved by booting disks the real deployer made: an image put on trial with
//! `bootctl switch --try` that never confirms is booted as often as asked, then GRUB goes
//! back to the default by itself; one whose health checks pass becomes the default; one
//! whose checks fail ends its trial and reboots; `bootctl reboot --once` boots the other
//! image once; and where GRUB did not record the boot (the kernel was loaded by something
//! else), `--once` and `--try` are refused.
//!
//! A fixture image runs the same script at every boot, so each script counts its boots in
//! a file of its own root and acts by the count. What bootctl prints inside the guest is
//! read back from the console ([`SHOW`]) and checked against the JSON Schemas.

use std::path::Path;
use std::time::Duration;

use e2e::chain::{check, shown, Expect, SHOW};
use e2e::deploy::{deploy_node, DeployedNode};
use e2e::fixture::FixtureImage;
use e2e::qemu::{self, BootOutcome, DirectKernel, Firmware};
use e2e::tools::require_deploy_tools;
use serde_json::Value;

const TOOLS: &[&str] = &["rsync", "qemu-system-x86_64"];

const KERNEL_PARAMS: &str = "console=ttyS0 quiet panic=-1";

/// One boot's limit: a fixture boot takes 15 to 60 s under TCG on a loaded machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

/// The console line of a Linux kernel that reboots (QEMU, run with -no-reboot, then exits).
const REBOOTING: &str = "reboot: Restarting system";

fn deploy(label: &str, images: &[&FixtureImage]) -> DeployedNode {
    require_deploy_tools(TOOLS);
    deploy_node(
        Path::new(env!("CARGO_BIN_EXE_deployer")),
        label,
        images,
        "alpha",
        &[],
        KERNEL_PARAMS,
        &[],
    )
}

/// A run script that prints `bootctl status --json` (as `status`) and then runs the shell
/// lines `steps[n - 1]` at the image's `n`th boot (nothing past the last).
fn counted_script(steps: &[&str]) -> String {
    let mut script = format!(
        "{SHOW}n=$(( $(cat /var/fixture-boots 2>/dev/null || echo 0) + 1 ))\n\
         echo $n > /var/fixture-boots\n\
         sync\n\
         show status bootctl status --json\n\
         case $n in\n"
    );
    for (i, step) in steps.iter().enumerate() {
        script += &format!("{}) {step} ;;\n", i + 1);
    }
    script + "esac\n"
}

/// Boots `node` once per entry of `expected`, each `(image, whether the boot ends in a
/// reboot that bootctl made)`, and returns the outcomes.
fn boots(
    node: &DeployedNode,
    firmware: Firmware,
    name: &str,
    expected: &[(&str, &str, bool)],
) -> Vec<BootOutcome> {
    let mut outcomes = Vec::new();
    for (i, (image, why, reboots)) in expected.iter().enumerate() {
        let n = i + 1;
        let outcome = qemu::boot(&node.disk, firmware, BOOT_TIMEOUT, &format!("{name}-{n}"));
        let expect = Expect::after(image, why);
        let problem = if *reboots {
            match (&outcome.booted, outcome.serial.contains(REBOOTING)) {
                (Some(booted), true) if booted == image => None,
                _ => Some(format!(
                    "expected {image} to come up and reboot; came up: {:?}",
                    outcome.booted
                )),
            }
        } else {
            check(&outcome, &expect).err()
        };
        if let Some(problem) = problem {
            panic!(
                "{name}: boot {n} of {} ({why}): {problem}; log: {}\n{}",
                expected.len(),
                outcome.log.display(),
                outcome.run_output
            );
        }
        outcomes.push(outcome);
    }
    outcomes
}

/// `bootctl status --json` as the guest printed it, checked against its schema.
fn status(outcome: &BootOutcome) -> Value {
    let status = shown(&outcome.run_output, "status").json();
    e2e::schema::check(
        "bootctl-status.v1.json",
        &format!("bootctl status --json ({})", outcome.log.display()),
        &status,
    );
    status
}

/// The image name of an entry in bootctl's JSON (`None` for null).
fn image(entry: &Value) -> Option<&str> {
    entry["image_name"].as_str()
}

#[test]
fn a_trial_that_never_confirms_falls_back_by_itself_and_reboot_once() {
    let alpha = FixtureImage::new("alpha").run_script(&counted_script(&[
        "show try bootctl switch --try beta",
        "show try bootctl switch --try=2 beta",
        "echo rebooting; bootctl reboot --once beta",
    ]));
    let beta = FixtureImage::new("beta").run_script(&counted_script(&[]));
    let node = deploy("trial-fallback", &[&alpha, &beta]);
    let out = boots(
        &node,
        Firmware::Bios,
        "trial-fallback",
        &[
            ("alpha", "first boot", false),
            ("beta", "alpha ran `switch --try beta`", false),
            ("alpha", "beta never confirmed its one try", false),
            ("beta", "alpha ran `switch --try=2 beta`: try 1 of 2", false),
            ("beta", "try 2 of 2", false),
            ("alpha", "beta never confirmed its two tries", true),
            ("beta", "alpha ran `reboot --once beta`", false),
            ("alpha", "beta booted once", false),
        ],
    );
    let first = status(&out[0]);
    assert_eq!(first["grub_wrote_grubenv"], true, "{first:#}");
    assert_eq!(image(&first["last_boot"]["entry"]), Some("image-alpha-1.0"));
    assert_eq!(shown(&out[0].run_output, "try").rc, Some(0));

    let tried = status(&out[1]);
    assert_eq!(
        image(&tried["running"]),
        Some("image-beta-1.0"),
        "{tried:#}"
    );
    assert_eq!(
        image(&tried["default"]),
        Some("image-alpha-1.0"),
        "{tried:#}"
    );
    assert_eq!(image(&tried["trial"]["entry"]), Some("image-beta-1.0"));
    assert_eq!(
        tried["trial"]["tries_left"], 0,
        "the one try runs: {tried:#}"
    );
    assert_eq!(
        image(&tried["next_boot"]),
        Some("image-alpha-1.0"),
        "{tried:#}"
    );

    for (boot, after) in [(&out[2], "one try"), (&out[5], "two tries")] {
        let back = status(boot);
        assert_eq!(
            (image(&back["running"]), image(&back["default"])),
            (Some("image-alpha-1.0"), Some("image-alpha-1.0")),
            "after {after}: {back:#}"
        );
        assert_eq!(back["trial"], Value::Null, "after {after}: {back:#}");
        assert_eq!(
            image(&back["trial_failed"]["entry"]),
            Some("image-beta-1.0"),
            "alpha sees the failed trial after {after}: {back:#}"
        );
    }
    let counted: Vec<Value> = [&out[3], &out[4]]
        .iter()
        .map(|boot| status(boot)["trial"]["tries_left"].clone())
        .collect();
    assert_eq!(counted, [1, 0], "GRUB counts the two tries down");
    assert!(
        out[5].run_output.contains("rebooting"),
        "{}",
        out[5].run_output
    );
    // GRUB consumed the one-shot choice as it booted beta: the default boots next.
    let once = status(&out[6]);
    assert_eq!(
        (
            image(&once["running"]),
            image(&once["default"]),
            image(&once["next_boot"])
        ),
        (
            Some("image-beta-1.0"),
            Some("image-alpha-1.0"),
            Some("image-alpha-1.0")
        ),
        "{once:#}"
    );
}

#[test]
fn health_checks_confirm_a_trial_or_end_it_with_a_reboot_on_uefi() {
    let alpha = FixtureImage::new("alpha")
        .file(
            "etc/multiboot/health.d/10-fails",
            "#!/bin/sh\nexit 1\n",
            0o755,
        )
        .run_script(&counted_script(&[
            "show try bootctl switch --try beta",
            "bootctl health; echo \"health exit=$?\"",
        ]));
    let beta = FixtureImage::new("beta")
        .file(
            "etc/multiboot/health.d/10-passes",
            "#!/bin/sh\nexit 0\n",
            0o755,
        )
        .run_script(&counted_script(&[
            "show health bootctl health; show good bootctl mark-good --json; \
             show confirmed bootctl status --json; show try bootctl switch --try alpha",
        ]));
    let node = deploy("trial-health", &[&alpha, &beta]);
    let out = boots(
        &node,
        Firmware::Uefi,
        "trial-health",
        &[
            ("alpha", "first boot", false),
            ("beta", "alpha ran `switch --try beta`", false),
            (
                "alpha",
                "beta passed its health check and ran `switch --try alpha`",
                true,
            ),
            ("beta", "alpha failed its health check", false),
        ],
    );
    let health = shown(&out[1].run_output, "health");
    assert_eq!(health.rc, Some(0), "{}", out[1].run_output);
    assert!(
        health.stdout.contains("1 check passed"),
        "{}",
        health.stdout
    );
    let good = shown(&out[1].run_output, "good").json();
    e2e::schema::check("bootctl-mark.v1.json", "bootctl mark-good --json", &good);
    assert_eq!(
        good["verdict"], "nothing_to_confirm",
        "health confirmed already: {good:#}"
    );
    let confirmed = shown(&out[1].run_output, "confirmed").json();
    assert_eq!(
        (image(&confirmed["default"]), &confirmed["trial"]),
        (Some("image-beta-1.0"), &Value::Null),
        "beta is the default once confirmed: {confirmed:#}"
    );
    assert!(
        out[2]
            .serial
            .contains("health check /etc/multiboot/health.d/10-fails: exit 1"),
        "alpha says which check failed; log {}",
        out[2].log.display()
    );
    let after = status(&out[3]);
    assert_eq!(
        (
            image(&after["default"]),
            image(&after["trial_failed"]["entry"])
        ),
        (Some("image-beta-1.0"), Some("image-alpha-1.0")),
        "{after:#}"
    );
}

/// alpha's kernel loaded by QEMU itself, not by the multiboot GRUB: GRUB recorded no boot,
/// so `--once` and `--try` are refused (a one-shot would stick, a trial never count
/// down); `--force` does it anyway, and the next boot through GRUB honours it.
#[test]
fn once_and_try_are_refused_when_grub_did_not_record_the_boot() {
    let alpha = FixtureImage::new("alpha").run_script(&format!(
        "{SHOW}show once bootctl switch --once beta\n\
         show try bootctl switch --try beta\n\
         show status bootctl status --json\n\
         show forced bootctl switch --once --force beta\n\
         true\n"
    ));
    let beta = FixtureImage::new("beta");
    let node = deploy("trial-unrecorded", &[&alpha, &beta]);
    let root = node.boot_info["elements"]
        .as_array()
        .and_then(|elements| elements.iter().find(|e| e["name"] == "alpha"))
        .and_then(|alpha| alpha["root_uuid"].as_str())
        .unwrap_or_else(|| panic!("alpha's root in {:#}", node.boot_info))
        .to_owned();
    let kernel = e2e::fixture::host_kernel();
    let direct = DirectKernel {
        kernel: kernel.vmlinuz.clone(),
        initrd: e2e::fixture::initramfs().to_owned(),
        append: format!("root=UUID={root} ro {KERNEL_PARAMS}"),
    };
    let first = qemu::boot_with(
        &node.disk,
        Firmware::Bios,
        Some(&direct),
        BOOT_TIMEOUT,
        "trial-unrecorded-1",
    );
    if let Err(problem) = check(&first, &Expect::first("alpha")) {
        panic!(
            "alpha loaded by QEMU: {problem}; log {}",
            first.log.display()
        );
    }
    for refused in ["once", "try"] {
        let run = shown(&first.run_output, refused);
        assert_eq!(run.rc, Some(6), "--{refused}: {}", first.run_output);
    }
    assert!(
        first.serial.contains("GRUB did not record this boot"),
        "the refusal says why; log {}",
        first.log.display()
    );
    let state = status(&first);
    assert_eq!(state["grub_wrote_grubenv"], false, "{state:#}");
    assert_eq!(shown(&first.run_output, "forced").rc, Some(0));
    let second = qemu::boot(
        &node.disk,
        Firmware::Bios,
        BOOT_TIMEOUT,
        "trial-unrecorded-2",
    );
    qemu::expect_boot(&second, "beta", "the forced one-shot, through GRUB");
}
