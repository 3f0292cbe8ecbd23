//! The multiboot partition: GRUB for BIOS on every disk with a bios_grub partition and for
//! UEFI on the first disk's ESP (none in Bareon's layout),
//! grub.cfg (the deployer's own, or grub-mkconfig's with os-prober: [`BootloaderConfig`]),
//! grubenv, and boot-info.json there, at `--boot-info` (with a copy beside it under Bareon's
//! name, [`BAREON_BOOT_ENTRIES`]) and in every image.
//!
//! Both firmwares read the one grub.cfg on the multiboot partition. For BIOS,
//! `grub-install --target=i386-pc --no-bootsector` puts the modules and core.img on the
//! partition ([`install_bios_files`], while the images are written unless a keeping policy
//! could leave the partition behind after a failure), and at the end `grub-bios-setup`
//! embeds core.img in each bios_grub partition and writes the boot sector (what
//! grub-install does in one go, with the disk bootable only last). For UEFI,
//! `grub-mkimage -O x86_64-efi` builds `EFI/BOOT/BOOTX64.EFI` (the removable-media path,
//! so no NVRAM entry is needed) with an embedded early config that finds the multiboot
//! partition by its filesystem UUID and sets the prefix there; its modules are copied
//! next to the BIOS ones. The ESP is written with mtools (`mmd`, `mcopy`), which work on
//! the unmounted vfat partition: this is what `grub-install --removable` would put there,
//! without needing vfat mounted (this host's kernel cannot mount it).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::{Map, Value};
use shared::atomic::replace_file;
use shared::bootinfo::{BootElement, BootInfo};
use shared::fault;
use shared::grubenv::GrubEnv;
use shared::layout::{in_image, IMAGE_BOOT_INFO};
use shared::mount::{Mount, MountOptions};

use crate::apply::disk::AttachedDisks;
use crate::apply::image::{file_in_image, DeployedImage, MountedImage, Staging};
use crate::apply::osprober::{os_prober_menu, OsProberImage};
use crate::exec::{find_program, run};
use crate::grubcfg_gen::{generate, MenuEntrySpec};
use crate::plan::{FilesystemPlan, ImageLayout, ImagePlan, Plan, Purpose};

/// Where GRUB's platform files (modules, lists) are installed on the deploy host.
const GRUB_LIB: &str = "/usr/lib/grub";

/// The modules built into BOOTX64.EFI: enough to find the multiboot partition on a GPT
/// disk by UUID and read its grub.cfg; the rest are loaded from the partition.
const EFI_IMAGE_MODULES: &[&str] = &[
    "part_gpt",
    "part_msdos",
    "ext2",
    "search",
    "search_fs_uuid",
    "normal",
];

/// Where grub.cfg comes from (`--bootloader-config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BootloaderConfig {
    /// The deployer writes grub.cfg: one entry per image with a stable id, the default
    /// in grubenv's saved_entry.
    #[default]
    Generated,
    /// The specification's flow: grub-mkconfig with os-prober, limited to the deployed
    /// disks and isolated from this host's GRUB configuration; the default is a literal
    /// `set default=` in grub.cfg.
    OsProber,
}

/// What the boot step works from.
pub struct BootInputs<'a> {
    pub plan: &'a Plan,
    /// The deployed images, in the plan's order.
    pub deployed: &'a [DeployedImage],
    pub disks: &'a AttachedDisks,
    /// The private directory for mounts.
    pub work: &'a Path,
    /// `--boot-info`.
    pub boot_info: &'a Path,
    pub mode: BootloaderConfig,
    /// How long GRUB shows its menu, in seconds.
    pub grub_timeout: u32,
}

/// An image that gets a boot entry: its plan, its layout and what its deploy found.
pub struct Entry<'a> {
    pub image: &'a ImagePlan,
    pub layout: ImageLayout,
    pub deployed: &'a DeployedImage,
}

/// The images that get a boot entry, in menu order.
fn entries<'a>(inputs: &BootInputs<'a>) -> anyhow::Result<Vec<Entry<'a>>> {
    let plan = inputs.plan;
    plan.boot
        .entries
        .iter()
        .map(|name| {
            let image = plan.images.iter().find(|i| &i.name == name);
            let deployed = inputs.deployed.iter().find(|d| &d.name == name);
            match (image, deployed) {
                (Some(image), Some(deployed)) => Ok(Entry {
                    image,
                    layout: plan.layout(image),
                    deployed,
                }),
                _ => bail!("image {name}: not deployed"),
            }
        })
        .collect()
}

/// The menu entry of a deployed image.
fn menu_entry(plan: &Plan, entry: &Entry) -> anyhow::Result<MenuEntrySpec> {
    let Entry {
        image,
        layout,
        deployed,
    } = entry;
    let prefix = if layout.separate_boot { "/" } else { "/boot/" };
    let (Some(root_uuid), Some(boot_uuid)) = (&layout.root_uuid, &layout.boot_uuid) else {
        bail!("image {}: no / filesystem to boot", image.name);
    };
    let stack = plan.stack_boot(layout);
    let params = stack
        .kernel_params
        .into_iter()
        .chain(image.kernel_params.clone())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(MenuEntrySpec {
        id: image.grub_menu_id.clone(),
        title: deployed.title.clone(),
        search_uuid: boot_uuid.clone(),
        modules: stack.grub_modules,
        search_hint: stack.search_hint,
        kernel_path: format!("{prefix}{}", deployed.kernel.kernel),
        initrd_path: deployed
            .kernel
            .initrd
            .as_ref()
            .map(|initrd| format!("{prefix}{initrd}")),
        root_uuid: root_uuid.clone(),
        kernel_params: params,
    })
}

/// Where each image's entry is in grub.cfg: grub's top-level index and the title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuPlace {
    pub grub_id: u32,
    pub title: String,
}

/// boot-info.json of the deployed images, `places` giving each entry's place in the menu.
pub fn boot_info(plan: &Plan, entries: &[Entry], places: &[MenuPlace]) -> anyhow::Result<BootInfo> {
    let mut elements = Vec::new();
    for (entry, place) in entries.iter().zip(places) {
        let image = entry.image;
        let mut extra = Map::new();
        extra.insert("name".to_owned(), Value::String(image.name.clone()));
        elements.push(BootElement {
            grub_id: place.grub_id,
            image_name: image
                .image_name
                .clone()
                .unwrap_or_else(|| image.name.clone()),
            os_id: entry.deployed.os_id.clone(),
            image_uuid: image.image_uuid.clone().unwrap_or_default(),
            boot_name: place.title.clone(),
            root_uuid: entry.layout.root_uuid.clone().unwrap_or_default(),
            extra,
        });
    }
    let current_element = entries
        .iter()
        .position(|entry| entry.image.name == plan.boot.default_image)
        .unwrap_or(0);
    Ok(BootInfo {
        elements,
        current_element,
        multiboot_partition: plan
            .multiboot_uuid()
            .context("the plan has no multiboot partition")?
            .to_owned(),
        extra: Map::new(),
    })
}

/// grub.cfg, the grubenv beside it and each entry's place in the menu.
struct Menu {
    grub_cfg: String,
    grubenv: GrubEnv,
    places: Vec<MenuPlace>,
}

/// The deployer's own grub.cfg: one entry per image, in order, the default in grubenv.
fn generated_menu(inputs: &BootInputs, entries: &[Entry]) -> anyhow::Result<Menu> {
    let specs = entries
        .iter()
        .map(|entry| menu_entry(inputs.plan, entry))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let default_id = entries
        .iter()
        .find(|entry| entry.image.name == inputs.plan.boot.default_image)
        .map(|entry| entry.image.grub_menu_id.clone())
        .context("the default image has no boot entry")?;
    let mut grubenv = GrubEnv::new();
    grubenv
        .set("saved_entry", &default_id)
        .context("write grubenv")?;
    let places = specs
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            Ok(MenuPlace {
                grub_id: u32::try_from(index).context("too many boot entries")?,
                title: spec.title.clone(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Menu {
        grub_cfg: generate(&specs, &default_id, inputs.grub_timeout),
        grubenv,
        places,
    })
}

/// grub-mkconfig's grub.cfg with os-prober's entries; an empty grubenv, so that GRUB's
/// next_entry (bootctl switch --once) works.
fn os_prober_mode_menu(inputs: &BootInputs, entries: &[Entry]) -> anyhow::Result<Menu> {
    let images = entries
        .iter()
        .map(|entry| {
            let root = entry
                .layout
                .mounts
                .iter()
                .find(|m| m.mount_point == "/")
                .with_context(|| format!("image {}: no / filesystem", entry.image.name))?;
            Ok(OsProberImage {
                plan: entry.image,
                layout: &entry.layout,
                root_device: inputs.disks.node(&root.device)?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let disks = inputs
        .plan
        .disks
        .iter()
        .map(|disk| inputs.disks.device(&disk.name).map(Path::to_path_buf))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let menu = os_prober_menu(
        &images,
        &disks,
        &inputs.plan.boot.default_image,
        inputs.grub_timeout,
        inputs.work,
    )
    .context("generate grub.cfg with grub-mkconfig and os-prober")?;
    for title in &menu.dropped {
        crate::warn!("deployer: os-prober entry {title:?} boots no deployed image: left out");
    }
    Ok(Menu {
        grub_cfg: menu.grub_cfg,
        grubenv: GrubEnv::new(),
        places: menu
            .entries
            .into_iter()
            .map(|entry| MenuPlace {
                grub_id: entry.grub_id,
                title: entry.title,
            })
            .collect(),
    })
}

/// GRUB's BIOS platform files on the deploy host.
pub const BIOS_PLATFORM: &str = "/usr/lib/grub/i386-pc";

/// `grub-bios-setup`, which writes GRUB's boot sector and core image onto a disk: its name
/// when it is in `PATH` (Fedora's `grub2-bios-setup`), else its path beside GRUB's BIOS
/// platform files, where Debian keeps it.
pub fn grub_bios_setup() -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    if find_program("grub-bios-setup", &path).is_some() {
        // Named, as every program run from PATH is in messages.
        return Some(PathBuf::from("grub-bios-setup"));
    }
    let beside = Path::new(BIOS_PLATFORM).join("grub-bios-setup");
    std::fs::metadata(&beside)
        .is_ok_and(|meta| {
            meta.is_file()
                && std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0
        })
        .then_some(beside)
}

/// Puts GRUB's BIOS modules and core image onto the multiboot partition (`grub-install
/// --no-bootsector`), nothing that makes a disk boot: this needs no image, so it runs while
/// the images are written; [`install_boot`] makes the disks boot it at the end. Returns the
/// partition still mounted, for [`install_boot`]: unmounting it now would wait for the
/// images' writes too where a flush of one partition flushes the whole disk (a disk-image
/// file's loop device).
pub fn install_bios_files(
    plan: &Plan,
    disks: &AttachedDisks,
    work: &Path,
) -> anyhow::Result<Option<Mount>> {
    let Some(first) = plan.boot.bios_disks.first() else {
        return Ok(None);
    };
    let mounted = mount_multiboot(plan, disks, work)?;
    let mut boot_arg = OsString::from("--boot-directory=");
    boot_arg.push(mounted.path().join("boot"));
    let argv: Vec<OsString> = vec![
        "grub-install".into(),
        "--target=i386-pc".into(),
        "--no-bootsector".into(),
        boot_arg,
        "--modules=part_gpt ext2".into(),
        disks.device(first)?.into(),
    ];
    fault::step("grub:files")?;
    run(
        "install GRUB's BIOS files on the multiboot partition",
        &argv,
    )?;
    Ok(Some(mounted))
}

/// The multiboot partition of `plan`, mounted under `work`.
fn mount_multiboot(plan: &Plan, disks: &AttachedDisks, work: &Path) -> anyhow::Result<Mount> {
    let multiboot = plan
        .filesystems
        .iter()
        .find(|fs| fs.purpose == Purpose::Multiboot)
        .context("the plan has no multiboot partition")?;
    let node = disks.node(&multiboot.device)?;
    let opts = MountOptions {
        read_only: false,
        fstype: Some(multiboot.fs_type.as_str().to_owned()),
    };
    Mount::new_temp(&node, work, &opts)
        .with_context(|| format!("mount the multiboot partition {}", node.display()))
}

/// Installs GRUB and writes grub.cfg, grubenv and every copy of boot-info.json, on the
/// multiboot partition `multiboot` (as [`install_bios_files`] left it mounted), else
/// mounted now.
pub fn install_boot(inputs: &BootInputs, multiboot: Option<Mount>) -> anyhow::Result<()> {
    let plan = inputs.plan;
    let entries = entries(inputs)?;
    let menu = match inputs.mode {
        BootloaderConfig::Generated => generated_menu(inputs, &entries)?,
        BootloaderConfig::OsProber => os_prober_mode_menu(inputs, &entries)?,
    };
    let info = boot_info(plan, &entries, &menu.places)?;
    let info_json = info.to_json();

    let mounted = match multiboot {
        Some(mounted) => mounted,
        None => mount_multiboot(plan, inputs.disks, inputs.work)?,
    };
    let boot_dir = mounted.path().join("boot");
    // Every disk with a bios_grub partition gets GRUB's core image, all reading the one
    // multiboot partition, so the firmware may boot from any of them (as Bareon runs
    // grub-install on every disk: generic.py do_multiboot_bootloader). The core image and
    // the modules are there already (install_bios_files).
    for (index, disk) in plan.boot.bios_disks.iter().enumerate() {
        let device = inputs.disks.device(disk)?;
        // The core image install_bios_files made finds the multiboot partition as seen
        // from the first disk; grub-install makes each other disk its own, which finds it
        // from there.
        let argv: Vec<OsString> = if index == 0 {
            let mut directory = OsString::from("--directory=");
            directory.push(boot_dir.join("grub").join("i386-pc"));
            let setup = grub_bios_setup().unwrap_or_else(|| "grub-bios-setup".into());
            vec![setup.into(), directory, device.into()]
        } else {
            let mut boot_arg = OsString::from("--boot-directory=");
            boot_arg.push(&boot_dir);
            vec![
                "grub-install".into(),
                "--target=i386-pc".into(),
                boot_arg,
                "--modules=part_gpt ext2".into(),
                device.into(),
            ]
        };
        fault::step("grub:bios")?;
        run(&format!("install GRUB for BIOS on disk {disk}"), &argv)?;
    }
    let grub_dir = boot_dir.join("grub");
    let esp = plan
        .filesystems
        .iter()
        .find(|fs| fs.purpose == Purpose::Esp);
    fault::step("write:grub.cfg")?;
    replace_file(&grub_dir.join("grub.cfg"), menu.grub_cfg.as_bytes(), 0o644)
        .context("write grub.cfg")?;
    let env_bytes = menu.grubenv.to_bytes().context("write grubenv")?;
    fault::step("write:grubenv")?;
    replace_file(&grub_dir.join("grubenv"), &env_bytes, 0o644).context("write grubenv")?;
    fault::step("boot-info:multiboot")?;
    replace_file(
        &mounted.path().join("boot-info.json"),
        info_json.as_bytes(),
        0o644,
    )
    .context("write boot-info.json on the multiboot partition")?;
    // Last on the multiboot partition: a UEFI firmware finds BOOTX64.EFI on the ESP (a new,
    // empty filesystem until now) only once GRUB's configuration is complete. Bareon's
    // layout has no ESP.
    if let Some(esp) = esp {
        install_uefi(inputs, esp, &grub_dir)?;
    }
    mounted
        .unmount()
        .context("unmount the multiboot partition")?;

    // Not into an image whose / keeps its data: its copy, of an earlier deploy, still names
    // the multiboot partition, which keeps its UUID.
    for image in plan.images.iter().filter(|image| plan.deploys(image)) {
        let layout = plan.layout(image);
        let Some(root) = layout.mounts.iter().find(|m| m.mount_point == "/") else {
            continue;
        };
        let mounted = MountedImage::mount(
            &image.name,
            std::slice::from_ref(root),
            inputs.disks,
            inputs.work,
            &Staging::default(),
        )?;
        let path = file_in_image(mounted.root(), in_image(IMAGE_BOOT_INFO))
            .with_context(|| format!("image {}: write {IMAGE_BOOT_INFO}", image.name))?;
        fault::step("boot-info:image")?;
        replace_file(&path, info_json.as_bytes(), 0o644)
            .with_context(|| format!("image {}: write {IMAGE_BOOT_INFO}", image.name))?;
        mounted
            .unmount()
            .with_context(|| format!("unmount image {}", image.name))?;
    }
    // Last: a boot-info.json outside the disks tells that the deploy finished, and so does
    // Bareon's name for it, written just before; removed again when boot-info.json fails.
    fault::step("boot-info:file")?;
    let entries = boot_entries_path(inputs.boot_info);
    if let Some(entries) = &entries {
        replace_file(entries, info_json.as_bytes(), 0o644)
            .with_context(|| format!("write {}", entries.display()))?;
    }
    replace_file(inputs.boot_info, info_json.as_bytes(), 0o644)
        .with_context(|| format!("write {}", inputs.boot_info.display()))
        .inspect_err(|_| {
            if let Some(entries) = &entries {
                let _ = std::fs::remove_file(entries);
            }
        })?;
    Ok(())
}

/// The name Bareon's agent gives the file (`/tmp/boot_entries.json`, written by
/// `GenericDeployDriver._generate_boot_info`) and bareon-ironic reads back
/// (`bareon_base.py` `_get_boot_info`).
pub const BAREON_BOOT_ENTRIES: &str = "boot_entries.json";

/// Where the copy of boot-info.json under Bareon's name goes: beside `boot_info`
/// (`--boot-info`), so `/tmp/boot_entries.json` by default; none when `boot_info` already
/// has that name.
pub fn boot_entries_path(boot_info: &Path) -> Option<PathBuf> {
    if boot_info.file_name()? == BAREON_BOOT_ENTRIES {
        return None;
    }
    Some(boot_info.with_file_name(BAREON_BOOT_ENTRIES))
}

/// GRUB for UEFI: the x86_64-efi modules next to the BIOS ones in `grub_dir`, and
/// `EFI/BOOT/BOOTX64.EFI` on the ESP `esp`, finding the multiboot partition by UUID.
fn install_uefi(inputs: &BootInputs, esp: &FilesystemPlan, grub_dir: &Path) -> anyhow::Result<()> {
    let step = "install GRUB for UEFI";
    let platform = Path::new(GRUB_LIB).join("x86_64-efi");
    copy_modules(&platform, &grub_dir.join("x86_64-efi")).context(step)?;
    let early_cfg = inputs.work.join("early.cfg");
    let efi = inputs.work.join("BOOTX64.EFI");
    let result = (|| {
        replace_file(
            &early_cfg,
            early_config(
                inputs
                    .plan
                    .multiboot_uuid()
                    .context("the plan has no multiboot partition")?,
            )
            .as_bytes(),
            0o644,
        )
        .context(step)?;
        let mut argv: Vec<OsString> = vec![
            "grub-mkimage".into(),
            "-O".into(),
            "x86_64-efi".into(),
            "-d".into(),
            platform.clone().into(),
            "-p".into(),
            "/boot/grub".into(),
            "-c".into(),
            early_cfg.clone().into(),
            "-o".into(),
            efi.clone().into(),
        ];
        argv.extend(EFI_IMAGE_MODULES.iter().map(OsString::from));
        fault::step("grub:uefi")?;
        run(&format!("{step}: build BOOTX64.EFI"), &argv)?;
        let node = inputs.disks.node(&esp.device)?;
        let mtools_image = |tool: &str| -> Vec<OsString> {
            vec![
                tool.into(),
                "-D".into(),
                "o".into(),
                "-i".into(),
                node.clone().into(),
            ]
        };
        let mut mmd = mtools_image("mmd");
        mmd.extend(["::/EFI".into(), "::/EFI/BOOT".into()]);
        run(&format!("{step}: create EFI/BOOT on the ESP"), &mmd)?;
        let mut mcopy = mtools_image("mcopy");
        mcopy.extend([efi.clone().into(), "::/EFI/BOOT/BOOTX64.EFI".into()]);
        run(&format!("{step}: copy BOOTX64.EFI to the ESP"), &mcopy)?;
        Ok(())
    })();
    for temp in [&early_cfg, &efi] {
        // Both are scratch files; the work directory must end empty.
        let _ = std::fs::remove_file(temp);
    }
    result
}

/// The config built into BOOTX64.EFI: find the multiboot partition, read its grub.cfg.
pub fn early_config(multiboot_uuid: &str) -> String {
    format!(
        "search --no-floppy --fs-uuid --set=root {multiboot_uuid}\n\
         set prefix=($root)/boot/grub\n"
    )
}

/// Copies GRUB's module files (`*.mod`, `*.lst`) from `platform` into `dest`.
fn copy_modules(platform: &Path, dest: &Path) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(platform).with_context(|| {
        format!(
            "{}: GRUB's x86_64-efi files are missing (install grub-efi-amd64-bin)",
            platform.display()
        )
    })?;
    std::fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading {}", platform.display()))?
            .path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("mod" | "lst")
        ) {
            files.push(path);
        }
    }
    for path in files {
        let name = path.file_name().expect("a listed file has a name");
        std::fs::copy(&path, dest.join(name))
            .with_context(|| format!("copying {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bareons_boot_entries_go_beside_boot_info() {
        assert_eq!(
            boot_entries_path(Path::new("/tmp/boot-info.json")),
            Some(PathBuf::from("/tmp/boot_entries.json"))
        );
        assert_eq!(
            boot_entries_path(Path::new("node-boot-info.json")),
            Some(PathBuf::from("boot_entries.json"))
        );
        assert_eq!(
            boot_entries_path(Path::new("/run/x/boot_entries.json")),
            None
        );
    }
}
