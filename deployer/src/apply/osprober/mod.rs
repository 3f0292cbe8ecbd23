//! `--bootloader-config os-prober`: grub.cfg made by the real `grub-mkconfig` with the real
//! `os-prober`, as the specification's deploy flow does, in a private run that sees only
//! the deployed disks, then tied back to the plan.
//!
//! grub-mkconfig still probes the host's `/` and `/boot` (`grub-probe --target=device`),
//! reading only; a host whose `/` is not on a block device (a tmpfs ramdisk) cannot run
//! it, so [`os_prober_menu`] checks this first.

mod rewrite;
mod sandbox;

pub use sandbox::{default_grub, GRUB_D_SCRIPTS};

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::exec::run;
use crate::plan::{ImageLayout, ImagePlan};

use rewrite::{check_images, rewrite, ProbedImage};
use sandbox::{dev_path, HostDisk, Stage, NAMESPACE_SCRIPT};

/// Programs the run needs; os-prober silently finds nothing without grub-mount.
pub const OS_PROBER_PROGRAMS: [&str; 7] = [
    "unshare",
    "grub-mkconfig",
    "grub-probe",
    "grub-mount",
    "grub-script-check",
    "os-prober",
    "linux-boot-prober",
];

/// One deployed image os-prober is to find.
#[derive(Debug, Clone)]
pub struct OsProberImage<'a> {
    pub plan: &'a ImagePlan,
    pub layout: &'a ImageLayout,
    /// The deploy host's partition node holding the image's `/` (`/dev/loop0p4`).
    pub root_device: PathBuf,
}

/// grub.cfg and what boot-info.json needs from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsProberMenu {
    /// The rewritten grub-mkconfig output, checked by grub-script-check.
    pub grub_cfg: String,
    /// One per image, in the order the images were given.
    pub entries: Vec<OsProberEntry>,
    /// Titles of the top-level items left out because they boot no deployed image.
    pub dropped: Vec<String>,
}

/// Where an image is in the menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsProberEntry {
    /// The image's name in the plan.
    pub image: String,
    /// grub's top-level index of the image's entry (a submenu counts as one item):
    /// boot-info.json's `grub_id`.
    pub grub_id: u32,
    /// The entry's title: boot-info.json's `boot_name`.
    pub title: String,
    /// The entry's menu id (`osprober-gnulinux-simple-<root uuid>`).
    pub menu_id: Option<String>,
}

/// Runs grub-mkconfig with os-prober limited to `disks` (the deployed whole-disk devices)
/// and returns its menu tied to `images`, `default_image` booting by default, the menu
/// shown for `timeout` seconds. `work` is a private directory for a staging directory,
/// removed again before this returns.
pub fn os_prober_menu(
    images: &[OsProberImage],
    disks: &[PathBuf],
    default_image: &str,
    timeout: u32,
    work: &Path,
) -> anyhow::Result<OsProberMenu> {
    let disks = disks
        .iter()
        .map(|disk| HostDisk::resolve(disk))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let probed = images
        .iter()
        .map(|image| probed_image(image, &disks))
        .collect::<anyhow::Result<Vec<_>>>()?;
    check_images(&probed, default_image)?;
    for script in GRUB_D_SCRIPTS {
        let path = Path::new("/etc/grub.d").join(script);
        if !path.is_file() {
            bail!(
                "os-prober mode: {} not found: run scripts/setup (see README)",
                path.display()
            );
        }
    }
    run(
        "probe this host's / as grub-mkconfig does (os-prober mode needs / on a block device)",
        &["grub-probe".into(), "--target=device".into(), "/".into()],
    )?;

    let stage = Stage::create(work)?;
    stage.populate(&disks, timeout)?;
    crate::info!("deployer: running grub-mkconfig with os-prober on the deployed disks");
    let mut argv: Vec<OsString> = ["unshare", "--mount", "--propagation", "private"]
        .into_iter()
        .chain(["sh", "-euc", NAMESPACE_SCRIPT, "sh"])
        .map(OsString::from)
        .collect();
    argv.push(stage.path().into());
    let raw = run(
        "run grub-mkconfig with os-prober on the deployed disks",
        &argv,
    )?;
    let host_only: Vec<String> = disks
        .iter()
        .filter(|disk| disk.name.starts_with("loop"))
        .flat_map(|disk| disk.partitions.iter().map(|part| dev_path(part)))
        .collect();
    let menu = rewrite(&raw, &probed, &host_only, default_image)?;
    let check = stage.path().join("grub.cfg");
    fs::write(&check, &menu.grub_cfg).with_context(|| format!("writing {}", check.display()))?;
    run(
        "check the os-prober grub.cfg",
        &["grub-script-check".into(), check.into()],
    )?;
    stage.remove()?;
    for title in &menu.dropped {
        crate::warn!("deployer: os-prober found {title:?}, which is no deployed image: left out");
    }
    Ok(menu)
}

fn probed_image(image: &OsProberImage, disks: &[HostDisk]) -> anyhow::Result<ProbedImage> {
    let plan = image.plan;
    let Some(root_uuid) = image.layout.root_uuid.clone() else {
        bail!("image {}: no / filesystem to boot", plan.name);
    };
    let node = fs::canonicalize(&image.root_device).with_context(|| {
        format!(
            "image {}: its / device {}",
            plan.name,
            image.root_device.display()
        )
    })?;
    let root_device = node.to_string_lossy().into_owned();
    let on_disks = disks
        .iter()
        .flat_map(|disk| &disk.partitions)
        .any(|part| dev_path(part) == root_device);
    if !on_disks {
        bail!(
            "image {}: its / ({root_device}) is not a partition of the deployed disks",
            plan.name
        );
    }
    Ok(ProbedImage {
        name: plan.name.clone(),
        boot_uuid: image
            .layout
            .boot_uuid
            .clone()
            .unwrap_or_else(|| root_uuid.clone()),
        root_uuid,
        kernel_params: plan.kernel_params.clone().unwrap_or_default(),
        root_device,
    })
}
