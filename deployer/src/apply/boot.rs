//! The multiboot partition: GRUB for BIOS on the first disk, the generated grub.cfg, a
//! grubenv naming the default image, and boot-info.json there, at `--boot-info` and in
//! every image.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{bail, Context};
use serde_json::{Map, Value};
use shared::atomic::replace_file;
use shared::bootinfo::{BootElement, BootInfo};
use shared::grubenv::GrubEnv;
use shared::mount::{Mount, MountOptions};

use crate::apply::disk::AttachedDisks;
use crate::apply::image::{DeployedImage, MountedImage};
use crate::apply::runner::run;
use crate::config::ProvisionConfig;
use crate::grubcfg_gen::{generate, MenuEntrySpec};
use crate::plan::{ImagePlan, Plan, Purpose};

/// Where each image keeps its copy of boot-info.json, for bootctl.
pub const IMAGE_BOOT_INFO_PATH: &str = "etc/multiboot/boot-info.json";

/// What the boot step works from.
pub struct BootInputs<'a> {
    pub config: &'a ProvisionConfig,
    pub plan: &'a Plan,
    /// The deployed images, in the plan's order.
    pub deployed: &'a [DeployedImage],
    pub disks: &'a AttachedDisks,
    /// The private directory for mounts.
    pub work: &'a Path,
    /// `--boot-info`.
    pub boot_info: &'a Path,
}

/// The image plans that get a boot entry, in menu order, with what their deploy found.
fn entries<'a>(inputs: &BootInputs<'a>) -> anyhow::Result<Vec<(&'a ImagePlan, &'a DeployedImage)>> {
    inputs
        .plan
        .boot
        .entries
        .iter()
        .map(|name| {
            let plan = inputs.plan.images.iter().find(|i| &i.name == name);
            let deployed = inputs.deployed.iter().find(|d| &d.name == name);
            match (plan, deployed) {
                (Some(plan), Some(deployed)) => Ok((plan, deployed)),
                _ => bail!("image {name}: not deployed"),
            }
        })
        .collect()
}

/// The menu entry of a deployed image.
pub fn menu_entry(image: &ImagePlan, deployed: &DeployedImage) -> anyhow::Result<MenuEntrySpec> {
    let prefix = if image.separate_boot { "/" } else { "/boot/" };
    let (Some(root_uuid), Some(boot_uuid)) = (&image.root_uuid, &image.boot_uuid) else {
        bail!("image {}: no / filesystem to boot", image.name);
    };
    Ok(MenuEntrySpec {
        id: image.grub_menu_id.clone(),
        title: deployed.title.clone(),
        search_uuid: boot_uuid.clone(),
        kernel_path: format!("{prefix}{}", deployed.kernel.kernel),
        initrd_path: deployed
            .kernel
            .initrd
            .as_ref()
            .map(|initrd| format!("{prefix}{initrd}")),
        root_uuid: root_uuid.clone(),
        kernel_params: image.kernel_params.clone().unwrap_or_default(),
    })
}

/// boot-info.json of the deployed images.
pub fn boot_info(
    config: &ProvisionConfig,
    plan: &Plan,
    entries: &[(&ImagePlan, &DeployedImage)],
) -> anyhow::Result<BootInfo> {
    let mut elements = Vec::new();
    for (index, (image, deployed)) in entries.iter().enumerate() {
        let configured = config.images.iter().find(|i| i.name == image.name);
        let mut extra = Map::new();
        extra.insert("name".to_owned(), Value::String(image.name.clone()));
        elements.push(BootElement {
            grub_id: u32::try_from(index).context("too many boot entries")?,
            image_name: configured
                .and_then(|i| i.image_name.clone())
                .unwrap_or_else(|| image.name.clone()),
            os_id: deployed.os_id.clone(),
            image_uuid: configured
                .and_then(|i| i.image_uuid.clone())
                .unwrap_or_default(),
            boot_name: deployed.title.clone(),
            root_uuid: image.root_uuid.clone().unwrap_or_default(),
            extra,
        });
    }
    let current_element = entries
        .iter()
        .position(|(image, _)| image.name == plan.boot.default_image)
        .unwrap_or(0);
    Ok(BootInfo {
        elements,
        current_element,
        multiboot_partition: plan.boot.multiboot_uuid.clone(),
        extra: Map::new(),
    })
}

/// Installs GRUB and writes grub.cfg, grubenv and every copy of boot-info.json.
pub fn install_boot(inputs: &BootInputs) -> anyhow::Result<()> {
    let plan = inputs.plan;
    let entries = entries(inputs)?;
    let specs = entries
        .iter()
        .map(|(image, deployed)| menu_entry(image, deployed))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let default_id = entries
        .iter()
        .find(|(image, _)| image.name == plan.boot.default_image)
        .map(|(image, _)| image.grub_menu_id.clone())
        .context("the default image has no boot entry")?;
    let info = boot_info(inputs.config, plan, &entries)?;
    let info_json = info.to_json();

    let multiboot = plan
        .filesystems
        .iter()
        .find(|fs| fs.purpose == Purpose::Multiboot)
        .context("the plan has no multiboot partition")?;
    let node = inputs.disks.node(&multiboot.device)?;
    let opts = MountOptions {
        read_only: false,
        fstype: Some(multiboot.fs_type.as_str().to_owned()),
    };
    let mounted = Mount::new_temp(&node, inputs.work, &opts)
        .with_context(|| format!("mount the multiboot partition {}", node.display()))?;
    let boot_dir = mounted.path().join("boot");
    let mut argv: Vec<OsString> = vec!["grub-install".into(), "--target=i386-pc".into()];
    let mut boot_arg = OsString::from("--boot-directory=");
    boot_arg.push(&boot_dir);
    argv.push(boot_arg);
    argv.push("--modules=part_gpt ext2".into());
    argv.push(inputs.disks.device(&plan.boot.bios_disk)?.into());
    run(
        &format!("install GRUB for BIOS on disk {}", plan.boot.bios_disk),
        &argv,
    )?;
    let grub_dir = boot_dir.join("grub");
    replace_file(
        &grub_dir.join("grub.cfg"),
        generate(&specs, &default_id).as_bytes(),
        0o644,
    )
    .context("write grub.cfg")?;
    let mut env = GrubEnv::new();
    env.set("saved_entry", &default_id)
        .context("write grubenv")?;
    let env_bytes = env.to_bytes().context("write grubenv")?;
    replace_file(&grub_dir.join("grubenv"), &env_bytes, 0o644).context("write grubenv")?;
    replace_file(
        &mounted.path().join("boot-info.json"),
        info_json.as_bytes(),
        0o644,
    )
    .context("write boot-info.json on the multiboot partition")?;
    mounted
        .unmount()
        .context("unmount the multiboot partition")?;

    replace_file(inputs.boot_info, info_json.as_bytes(), 0o644)
        .with_context(|| format!("write {}", inputs.boot_info.display()))?;
    for image in &plan.images {
        let Some(root) = image.mounts.iter().find(|m| m.mount_point == "/") else {
            continue;
        };
        let mounted = MountedImage::mount(
            &image.name,
            std::slice::from_ref(root),
            inputs.disks,
            inputs.work,
        )?;
        let path = mounted.root().join(IMAGE_BOOT_INFO_PATH);
        let dir = path.parent().expect("boot-info.json has a directory");
        std::fs::create_dir_all(dir)
            .with_context(|| format!("image {}: creating /etc/multiboot", image.name))?;
        replace_file(&path, info_json.as_bytes(), 0o644)
            .with_context(|| format!("image {}: write /{IMAGE_BOOT_INFO_PATH}", image.name))?;
        mounted
            .unmount()
            .with_context(|| format!("unmount image {}", image.name))?;
    }
    Ok(())
}
