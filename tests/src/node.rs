//! The multi-image node disk: GPT with a bios_grub partition, the 100 MiB ext4
//! `multiboot` partition holding the one shared GRUB, grub.cfg, grubenv and
//! boot-info.json, and one ext4 root per fixture image. Built on a loop device, handed
//! back as a plain disk-image file with the facts (UUIDs, names, partition numbers).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::disk::{snapshot_tree, LoopDisk, Mount, MountedPartition};
use crate::fixture::{self, FixtureImage};
use crate::grubcfg::{self, MenuStyle};
use crate::tmp::TempDir;
use crate::{cmd, tools};

const MIB: u64 = 1024 * 1024;

/// GPT type of the 1 MiB partition that holds GRUB's core image on BIOS.
pub const BIOS_GRUB_TYPE: &str = "21686148-6449-6E6F-744E-656564454649";
/// GPT type "Linux filesystem".
pub const LINUX_TYPE: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
/// GPT type "EFI System".
pub const ESP_TYPE: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";

/// Partition numbers on a node disk: bios_grub, then multiboot, then one root per
/// image (in image order), then the ESP when the disk boots on UEFI.
pub const BIOS_GRUB_PARTITION: u32 = 1;
pub const MULTIBOOT_PARTITION: u32 = 2;
pub const FIRST_ROOT_PARTITION: u32 = 3;

/// Size of the multiboot partition, as in the specification.
pub const MULTIBOOT_MIB: u64 = 100;
const ESP_MIB: u64 = 32;
/// Smallest root partition; grown when an image's payload needs more.
const MIN_ROOT_MIB: u64 = 96;

/// Where boot-info.json lives on the multiboot partition and inside each image.
pub const BOOT_INFO_PATH: &str = "boot-info.json";
pub const IMAGE_BOOT_INFO_PATH: &str = "etc/multiboot/boot-info.json";
/// grub.cfg and grubenv, relative to the multiboot partition's root.
pub const GRUB_CFG_PATH: &str = "boot/grub/grub.cfg";
pub const GRUBENV_PATH: &str = "boot/grub/grubenv";

/// What the builder chose for one image of a node disk.
#[derive(Clone, Debug)]
pub struct ImageFacts {
    pub image: FixtureImage,
    /// Partition number of the image's root filesystem.
    pub partition: u32,
    /// Filesystem UUID of the root (`root=UUID=`).
    pub root_uuid: String,
    /// Top-level grub menu index of the image's entry (boot-info.json `grub_id`).
    pub grub_id: usize,
    /// boot-info.json `boot_name`, in os-prober's style.
    pub boot_name: String,
}

/// What the builder chose for a node disk: enough to predict every menu entry and file.
#[derive(Clone, Debug)]
pub struct NodeFacts {
    /// Filesystem UUID of the multiboot partition.
    pub multiboot_uuid: String,
    pub images: Vec<ImageFacts>,
    /// Partition number of the ESP, when the disk boots on UEFI.
    pub esp_partition: Option<u32>,
}

impl NodeFacts {
    /// The facts of the image named `name`.
    pub fn image(&self, name: &str) -> &ImageFacts {
        self.images
            .iter()
            .find(|f| f.image.name == name)
            .unwrap_or_else(|| panic!("no fixture image named {name:?} on this node"))
    }

    /// Position of the image named `name` in `images` (and in boot-info.json's elements).
    pub fn element_index(&self, name: &str) -> usize {
        self.images
            .iter()
            .position(|f| f.image.name == name)
            .unwrap_or_else(|| panic!("no fixture image named {name:?} on this node"))
    }

    /// boot-info.json as the specification describes it, `current_element` indexing
    /// `elements`, plus each image's provision `name`, the key the deployer adds.
    pub fn boot_info(&self, current_element: usize) -> Value {
        let elements: Vec<Value> = self
            .images
            .iter()
            .map(|f| {
                json!({
                    "grub_id": f.grub_id,
                    "name": f.image.name,
                    "image_name": f.image.image_name,
                    "os_id": f.image.os_id,
                    "image_uuid": f.image.image_uuid,
                    "boot_name": f.boot_name,
                    "root_uuid": f.root_uuid,
                })
            })
            .collect();
        json!({
            "elements": elements,
            "current_element": current_element,
            "multiboot_partition": self.multiboot_uuid,
        })
    }
}

/// Builds a node disk: GPT with bios_grub, a 100 MiB ext4 `multiboot` partition holding
/// GRUB, grub.cfg, grubenv and boot-info.json, and one ext4 root per fixture image.
/// boot-info.json's `current_element` is 0: the menus start at the first image.
#[derive(Debug)]
pub struct NodeDiskBuilder {
    facts: NodeFacts,
    grub_cfg: Option<String>,
    grubenv: Option<Vec<(String, String)>>,
}

impl NodeDiskBuilder {
    /// Chooses every UUID up front, so that grub.cfg can be written before the disk is.
    pub fn new(images: Vec<FixtureImage>) -> Self {
        assert!(!images.is_empty(), "a node disk needs at least one image");
        let images = images
            .into_iter()
            .enumerate()
            .map(|(i, image)| {
                let partition = FIRST_ROOT_PARTITION + i as u32;
                let boot_name = format!("{}(on/dev/vda{partition})", image.title.replace(' ', ""));
                ImageFacts {
                    image,
                    partition,
                    root_uuid: uuid::Uuid::new_v4().to_string(),
                    grub_id: grubcfg::top_level_index(i),
                    boot_name,
                }
            })
            .collect();
        NodeDiskBuilder {
            facts: NodeFacts {
                multiboot_uuid: uuid::Uuid::new_v4().to_string(),
                images,
                esp_partition: None,
            },
            grub_cfg: None,
            grubenv: Some(Vec::new()),
        }
    }

    pub fn facts(&self) -> &NodeFacts {
        &self.facts
    }

    /// Uses the test generator's grub.cfg of `style`. The grubenv style also starts with
    /// `saved_entry` naming the first image.
    pub fn menu(mut self, style: MenuStyle) -> Self {
        self.grub_cfg = Some(grubcfg::generate(style, &self.facts));
        if style == MenuStyle::Grubenv {
            let first = self.facts.images[0].image.menu_id();
            self.grubenv = Some(vec![("saved_entry".to_owned(), first)]);
        }
        self
    }

    /// Uses `text` as grub.cfg.
    pub fn grub_cfg(mut self, text: String) -> Self {
        self.grub_cfg = Some(text);
        self
    }

    /// Creates grubenv with `grub-editenv` holding `vars` (the default: an empty block).
    pub fn grubenv(mut self, vars: &[(&str, &str)]) -> Self {
        self.grubenv = Some(
            vars.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        self
    }

    /// Leaves no grubenv on the multiboot partition.
    pub fn no_grubenv(mut self) -> Self {
        self.grubenv = None;
        self
    }

    /// Adds an ESP (last partition) with a removable-path GRUB for UEFI firmware.
    pub fn uefi(mut self) -> Self {
        self.facts.esp_partition = Some(FIRST_ROOT_PARTITION + self.facts.images.len() as u32);
        self
    }

    /// Writes the disk image to `path` and returns it with its facts. Every loop device
    /// and mount is released before this returns.
    pub fn build(self, path: &Path) -> NodeDisk {
        tools::require_tools(&[
            "sfdisk",
            "partx",
            "losetup",
            "mkfs.ext4",
            "mount",
            "umount",
            "grub-install",
            "grub-editenv",
            "busybox",
        ]);
        if self.facts.esp_partition.is_some() {
            tools::require_tools(&["grub-mkimage", "mkfs.vfat", "mmd", "mcopy"]);
            tools::require_file(&grub_platform_dir("x86_64-efi"));
        }
        tools::require_file(&grub_platform_dir("i386-pc"));
        let grub_cfg = self
            .grub_cfg
            .as_deref()
            .expect("NodeDiskBuilder: call menu() or grub_cfg() before build()");
        let scratch = TempDir::new("node-build");
        let root_mib: Vec<u64> = self
            .facts
            .images
            .iter()
            .map(|f| root_size_mib(&f.image))
            .collect();
        let esp_mib = if self.facts.esp_partition.is_some() {
            ESP_MIB
        } else {
            0
        };
        // 1 MiB before the first partition, 1 MiB after the last for the backup GPT.
        let total_mib = 1 + 1 + MULTIBOOT_MIB + root_mib.iter().sum::<u64>() + esp_mib + 1;
        let _ = fs::remove_file(path);
        let disk = LoopDisk::create(path, total_mib * MIB);
        cmd::run_with_input(
            Command::new("sfdisk").arg("--quiet").arg(disk.device()),
            &self.sfdisk_script(&root_mib),
        );
        disk.reread_partitions();

        let boot_info = serde_json::to_string_pretty(&self.facts.boot_info(0))
            .expect("boot-info.json serialises")
            + "\n";
        for facts in &self.facts.images {
            let label: String = format!("root-{}", facts.image.name)
                .chars()
                .take(16)
                .collect();
            mkfs_ext4(&disk.partition(facts.partition), &label, &facts.root_uuid);
            let mount = Mount::new(
                &disk.partition(facts.partition),
                &scratch.join(format!("root-{}", facts.image.name)),
                "",
            );
            fixture::populate_image(mount.path(), &facts.image);
            let copy = mount.path().join(IMAGE_BOOT_INFO_PATH);
            fs::create_dir_all(copy.parent().expect("has a parent"))
                .expect("creating etc/multiboot");
            fixture::write(&copy, boot_info.as_bytes(), 0o644);
        }

        let multiboot_dev = disk.partition(MULTIBOOT_PARTITION);
        mkfs_ext4(&multiboot_dev, "multiboot", &self.facts.multiboot_uuid);
        let multiboot = Mount::new(&multiboot_dev, &scratch.join("multiboot"), "");
        cmd::run(
            Command::new("grub-install")
                .arg("--target=i386-pc")
                .arg(format!(
                    "--boot-directory={}",
                    multiboot.path().join("boot").display()
                ))
                .arg("--modules=part_gpt ext2")
                .arg(disk.device()),
        );
        let grub_dir = multiboot.path().join("boot/grub");
        fixture::write(&grub_dir.join("grub.cfg"), grub_cfg.as_bytes(), 0o644);
        let grubenv = grub_dir.join("grubenv");
        let _ = fs::remove_file(&grubenv);
        if let Some(vars) = &self.grubenv {
            cmd::run(Command::new("grub-editenv").arg(&grubenv).arg("create"));
            if !vars.is_empty() {
                cmd::run(
                    Command::new("grub-editenv")
                        .arg(&grubenv)
                        .arg("set")
                        .args(vars.iter().map(|(k, v)| format!("{k}={v}"))),
                );
            }
        }
        fixture::write(
            &multiboot.path().join(BOOT_INFO_PATH),
            boot_info.as_bytes(),
            0o644,
        );
        if let Some(esp) = self.facts.esp_partition {
            self.install_uefi_grub(&disk.partition(esp), &grub_dir, &scratch);
        }
        drop(multiboot);
        drop(disk);
        NodeDisk {
            path: path.to_owned(),
            facts: self.facts,
        }
    }

    fn sfdisk_script(&self, root_mib: &[u64]) -> String {
        let mut script = format!(
            "label: gpt\n\
             size=1MiB, type={BIOS_GRUB_TYPE}, name=\"bios_grub\"\n\
             size={MULTIBOOT_MIB}MiB, type={LINUX_TYPE}, name=\"multiboot\"\n"
        );
        for (facts, mib) in self.facts.images.iter().zip(root_mib) {
            script += &format!(
                "size={mib}MiB, type={LINUX_TYPE}, name=\"root-{}\"\n",
                facts.image.name
            );
        }
        if self.facts.esp_partition.is_some() {
            script += &format!("size={ESP_MIB}MiB, type={ESP_TYPE}, name=\"esp\"\n");
        }
        script
    }

    /// UEFI without mounting FAT (no vfat here): a standalone `BOOTX64.EFI` whose
    /// embedded config finds the multiboot partition by UUID, copied in with mtools;
    /// GRUB's x86_64-efi modules go next to the i386-pc ones on the multiboot partition.
    /// The embedded config only sets `prefix`: GRUB then enters normal mode, which reads
    /// `$prefix/grub.cfg` together with the command list that loads modules on demand
    /// (a `configfile` there would run grub.cfg nested, without that list).
    fn install_uefi_grub(&self, esp: &Path, grub_dir: &Path, scratch: &TempDir) {
        let modules_src = grub_platform_dir("x86_64-efi");
        let modules_dst = grub_dir.join("x86_64-efi");
        fs::create_dir_all(&modules_dst).expect("creating boot/grub/x86_64-efi");
        for entry in fs::read_dir(&modules_src).expect("reading grub's x86_64-efi directory") {
            let path = entry.expect("directory entry").path();
            if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("mod" | "lst")
            ) {
                fs::copy(
                    &path,
                    modules_dst.join(path.file_name().expect("file name")),
                )
                .unwrap_or_else(|e| panic!("copying {}: {e}", path.display()));
            }
        }
        let early_cfg = scratch.join("early.cfg");
        fixture::write(
            &early_cfg,
            format!(
                "search --no-floppy --fs-uuid --set=root {}\n\
                 set prefix=($root)/boot/grub\n",
                self.facts.multiboot_uuid
            )
            .as_bytes(),
            0o644,
        );
        let efi = scratch.join("BOOTX64.EFI");
        cmd::run(
            Command::new("grub-mkimage")
                .args(["-O", "x86_64-efi", "-p", "/boot/grub", "-c"])
                .arg(&early_cfg)
                .arg("-o")
                .arg(&efi)
                .args(["part_gpt", "ext2", "search", "search_fs_uuid", "normal"]),
        );
        cmd::run(Command::new("mkfs.vfat").args(["-n", "ESP"]).arg(esp));
        let image = format!("{}", esp.display());
        cmd::run(Command::new("mmd").args(["-i", &image, "::/EFI", "::/EFI/BOOT"]));
        cmd::run(
            Command::new("mcopy")
                .args(["-i", &image])
                .arg(&efi)
                .arg("::/EFI/BOOT/BOOTX64.EFI"),
        );
    }
}

fn grub_platform_dir(platform: &str) -> PathBuf {
    Path::new("/usr/lib/grub").join(platform)
}

/// Room for the image's files, ext4's overhead and some slack, at least 96 MiB.
fn root_size_mib(image: &FixtureImage) -> u64 {
    let payload_mib = image.payload_bytes().div_ceil(MIB);
    (payload_mib * 5 / 4 + 24).max(MIN_ROOT_MIB)
}

fn mkfs_ext4(device: &Path, label: &str, uuid: &str) {
    cmd::run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", label, "-U", uuid])
            .arg(device),
    );
}

/// A built node disk: a plain disk-image file and what it holds.
#[derive(Clone, Debug)]
pub struct NodeDisk {
    pub path: PathBuf,
    pub facts: NodeFacts,
}

impl NodeDisk {
    /// Starts a builder for a disk holding `images`.
    pub fn builder(images: Vec<FixtureImage>) -> NodeDiskBuilder {
        NodeDiskBuilder::new(images)
    }

    /// The image path as a string, for command lines.
    pub fn path_str(&self) -> &str {
        self.path.to_str().expect("disk image paths are UTF-8")
    }

    /// A sparse copy of this disk at `path` (`cp --sparse=always`), with the same facts.
    pub fn copy_to(&self, path: &Path) -> NodeDisk {
        cmd::run(
            Command::new("cp")
                .arg("--sparse=always")
                .arg(&self.path)
                .arg(path),
        );
        NodeDisk {
            path: path.to_owned(),
            facts: self.facts.clone(),
        }
    }

    /// Mounts the multiboot partition at `target`.
    pub fn mount_multiboot(&self, target: &Path, read_only: bool) -> MountedPartition {
        MountedPartition::new(&self.path, MULTIBOOT_PARTITION, target, read_only)
    }

    /// Mounts the root filesystem of the image named `name` at `target`.
    pub fn mount_root(&self, name: &str, target: &Path, read_only: bool) -> MountedPartition {
        MountedPartition::new(
            &self.path,
            self.facts.image(name).partition,
            target,
            read_only,
        )
    }

    /// Every file on the multiboot partition (mounted read-only for the occasion).
    pub fn multiboot_snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        let scratch = TempDir::new("multiboot-snapshot");
        let mounted = self.mount_multiboot(&scratch.join("mnt"), true);
        snapshot_tree(mounted.path())
    }
}
