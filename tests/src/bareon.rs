//! A multi-image node disk made the way Bareon makes one (openstack-archive/bareon, checked
//! at its last commit), for bootctl to manage without anything the deployer writes:
//!
//! - GPT: a 24 MiB bios_grub partition first, then the 100 MiB multiboot partition, an ext4
//!   filesystem without a label, then one root per image, ext4 without labels
//!   (`drivers/data/ironic.py` `_handle_loader`, `_handle_multiboot`;
//!   `drivers/deploy/generic.py` `_make_filesystem` passes no label).
//! - GRUB for BIOS as `grub2-install --boot-directory=<multiboot>/boot DISK` leaves it on
//!   the ramdisk's CentOS (`utils/grub.py` `grub2_install` with `boot_root`): modules, an
//!   empty grubenv and the core image in `boot/grub2`, the core's prefix
//!   `(,gpt2)/boot/grub2`. Debian's grub-install cannot name its directory `grub2`, so the
//!   steps it takes are taken here: grub-mkimage, then grub-bios-setup.
//! - `boot/grub2/grub.cfg` built by `_generate_boot_info` from the real
//!   `/etc/grub.d/30_os-prober` run with `GRUB_DISABLE_SUBMENU=y`: its regex and its
//!   template, verbatim; `set default=N` last, N the boot image's index.
//! - No boot-info.json anywhere on the disk (Bareon writes it to the ramdisk's
//!   `/tmp/boot_entries.json`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;

use crate::disk::{LoopDisk, Mount};
use crate::fixture::{self, FixtureImage};
use crate::node::{BIOS_GRUB_TYPE, LINUX_TYPE};
use crate::tmp::TempDir;
use crate::{cmd, tools};

const MIB: u64 = 1024 * 1024;
/// `loader_partition_size` and `multiboot_partition_size` in `drivers/data/ironic.py`.
const BIOS_GRUB_MIB: u64 = 24;
const MULTIBOOT_MIB: u64 = 100;
const ROOT_MIB: u64 = 96;
/// The multiboot partition's number: after bios_grub.
pub const MULTIBOOT_PARTITION: u32 = 2;
/// grub.cfg, relative to the multiboot partition's root.
pub const GRUB_CFG_PATH: &str = "boot/grub2/grub.cfg";
const GRUB_BIOS_SETUP: &str = "/usr/lib/grub/i386-pc/grub-bios-setup";

/// `_generate_boot_info`'s regex (`re.M | re.DOTALL`).
const ENTRY_REGEX: &str = r"(?ms)menuentry '(?P<name>[^']+)'.*?search .*?(?P<uuid>[0-9a-f\-]{36}).*?linux(?:16)? (?P<kernel>.*?) .*?initrd(?:16)? (?P<initrd>[^\n]*)";

/// One image on a Bareon disk.
#[derive(Clone, Debug)]
pub struct BareonImage {
    pub image: FixtureImage,
    pub partition: u32,
    pub root_uuid: String,
    /// Its grub.cfg entry's title: os-prober's.
    pub title: String,
    /// Its entry's index in grub.cfg.
    pub index: usize,
}

/// A disk-image file Bareon could have made.
#[derive(Clone, Debug)]
pub struct BareonDisk {
    pub path: PathBuf,
    pub multiboot_uuid: String,
    pub images: Vec<BareonImage>,
    /// `boot/grub2/grub.cfg` as written.
    pub grub_cfg: String,
}

impl BareonDisk {
    pub fn path_str(&self) -> &str {
        self.path.to_str().expect("disk image paths are UTF-8")
    }

    pub fn image(&self, name: &str) -> &BareonImage {
        self.images
            .iter()
            .find(|i| i.image.name == name)
            .unwrap_or_else(|| panic!("no image {name:?} on this disk"))
    }

    /// Sets the script the image named `name` runs as it boots ([`FixtureImage::run_script`]),
    /// once grub.cfg, which names every entry, is known.
    pub fn set_run_script(&self, name: &str, script: &str) {
        let scratch = TempDir::new("bareon-script");
        let disk = LoopDisk::attach(&self.path);
        let mount = Mount::new(
            &disk.partition(self.image(name).partition),
            &scratch.join("mnt"),
            "",
        );
        fixture::write(
            &mount.path().join(fixture::RUN_SCRIPT),
            format!("#!/bin/sh\n{script}").as_bytes(),
            0o755,
        );
        drop(mount);
    }

    /// grub.cfg on the disk now (the multiboot partition mounted read-only for the read).
    pub fn read_grub_cfg(&self) -> String {
        let scratch = TempDir::new("bareon-read");
        let disk = LoopDisk::attach_read_only(&self.path);
        let mount = Mount::new(
            &disk.partition(MULTIBOOT_PARTITION),
            &scratch.join("mnt"),
            "ro",
        );
        let text = fs::read_to_string(mount.path().join(GRUB_CFG_PATH)).expect("reading grub.cfg");
        drop(mount);
        text
    }
}

/// Builds the disk at `path` with `images` (the first is the boot image), each entry
/// booting with `kernel_params` (provision.json's `deploy_data.kernel_params`).
pub fn build(images: Vec<FixtureImage>, kernel_params: &str, path: &Path) -> BareonDisk {
    tools::require_tools(&[
        "sfdisk",
        "mkfs.ext4",
        "grub-mkimage",
        "grub-editenv",
        "os-prober",
        "linux-boot-prober",
        "grub-probe",
        "grub-mount",
        "unshare",
        "busybox",
    ]);
    tools::require_file(Path::new(GRUB_BIOS_SETUP));
    tools::require_file(Path::new("/etc/grub.d/30_os-prober"));
    let scratch = TempDir::new("bareon-build");
    let total_mib = 1 + BIOS_GRUB_MIB + MULTIBOOT_MIB + ROOT_MIB * images.len() as u64 + 1;
    let _ = fs::remove_file(path);
    let disk = LoopDisk::create(path, total_mib * MIB);
    let mut script = format!(
        "label: gpt\nsize={BIOS_GRUB_MIB}MiB, type={BIOS_GRUB_TYPE}\n\
         size={MULTIBOOT_MIB}MiB, type={LINUX_TYPE}\n"
    );
    for _ in &images {
        script += &format!("size={ROOT_MIB}MiB, type={LINUX_TYPE}\n");
    }
    cmd::run_with_input(
        Command::new("sfdisk").arg("--quiet").arg(disk.device()),
        &script,
    );
    disk.reread_partitions();

    let multiboot_uuid = uuid::Uuid::new_v4().to_string();
    let mut roots = Vec::new();
    for (i, image) in images.into_iter().enumerate() {
        let partition = MULTIBOOT_PARTITION + 1 + i as u32;
        let root_uuid = uuid::Uuid::new_v4().to_string();
        mkfs_ext4(&disk.partition(partition), &root_uuid);
        let mount = Mount::new(
            &disk.partition(partition),
            &scratch.join(format!("root-{i}")),
            "",
        );
        fixture::populate_image(mount.path(), &image);
        drop(mount);
        roots.push((image, partition, root_uuid));
    }
    let multiboot_dev = disk.partition(MULTIBOOT_PARTITION);
    mkfs_ext4(&multiboot_dev, &multiboot_uuid);

    let probed = os_prober(&disk, &scratch);
    let (grub_cfg, indices) = generate_boot_info(&probed, &roots, kernel_params);
    let mut images = Vec::new();
    for (image, partition, root_uuid) in roots {
        let (index, title) = indices
            .iter()
            .find(|(_, _, uuid)| *uuid == root_uuid)
            .map(|(index, title, _)| (*index, title.clone()))
            .unwrap_or_else(|| panic!("os-prober did not find image {}:\n{probed}", image.name));
        images.push(BareonImage {
            image,
            partition,
            root_uuid,
            title,
            index,
        });
    }

    let multiboot = Mount::new(&multiboot_dev, &scratch.join("multiboot"), "");
    let grub_dir = multiboot.path().join("boot/grub2");
    grub2_install(&disk, &grub_dir, &scratch);
    fixture::write(&grub_dir.join("grub.cfg"), grub_cfg.as_bytes(), 0o644);
    drop(multiboot);
    drop(disk);
    BareonDisk {
        path: path.to_owned(),
        multiboot_uuid,
        images,
        grub_cfg,
    }
}

fn mkfs_ext4(device: &Path, uuid: &str) {
    cmd::run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-U", uuid])
            .arg(device),
    );
}

/// What grub2-install leaves for BIOS: the platform's modules and lists, boot.img, a core
/// image with the partition's path as prefix, grubenv (grub-install creates it), and the
/// boot code written to the disk.
fn grub2_install(disk: &LoopDisk, grub_dir: &Path, scratch: &TempDir) {
    let platform = grub_dir.join("i386-pc");
    fs::create_dir_all(&platform).expect("creating boot/grub2/i386-pc");
    let source = Path::new("/usr/lib/grub/i386-pc");
    for entry in fs::read_dir(source).expect("reading /usr/lib/grub/i386-pc") {
        let path = entry.expect("directory entry").path();
        let name = path.file_name().expect("file name").to_string_lossy();
        if name.ends_with(".mod") || name.ends_with(".lst") || name == "boot.img" {
            fs::copy(&path, platform.join(&*name))
                .unwrap_or_else(|e| panic!("copying {}: {e}", path.display()));
        }
    }
    let core = platform.join("core.img");
    cmd::run(
        Command::new("grub-mkimage")
            .args(["-O", "i386-pc", "-d"])
            .arg(source)
            .args(["-p", "(,gpt2)/boot/grub2", "-o"])
            .arg(&core)
            .args(["biosdisk", "part_gpt", "ext2"]),
    );
    cmd::run(
        Command::new("grub-editenv")
            .arg(grub_dir.join("grubenv"))
            .arg("create"),
    );
    // grub-bios-setup reads the device map it is given; the loop disk is the BIOS's hd0.
    let device_map = scratch.join("device.map");
    fixture::write(
        &device_map,
        format!("(hd0) {}\n", disk.device().display()).as_bytes(),
        0o644,
    );
    cmd::run(
        Command::new(GRUB_BIOS_SETUP)
            .arg("-d")
            .arg(&platform)
            .arg("-m")
            .arg(&device_map)
            .arg(disk.device()),
    );
}

/// The output of the real `/etc/grub.d/30_os-prober` as Bareon runs it (with
/// `GRUB_DISABLE_SUBMENU=y`; `GRUB_DISABLE_OS_PROBER=false` restores the default of
/// Bareon's GRUB 2.02, which Debian's 2.06 turned off), seeing only `disk`: a private
/// mount namespace shows it only this disk in /sys/block and /proc/partitions, with fresh
/// tmpfs mounts where os-prober and blkid keep state.
fn os_prober(disk: &LoopDisk, scratch: &TempDir) -> String {
    let name = disk
        .device()
        .file_name()
        .expect("loop device name")
        .to_string_lossy()
        .into_owned();
    let stage = scratch.join("os-prober");
    let sys_block = stage.join("sys-block");
    fs::create_dir_all(&sys_block).expect("creating the stage");
    let sysfs = fs::canonicalize(Path::new("/sys/block").join(&name)).expect("the disk in sysfs");
    std::os::unix::fs::symlink(&sysfs, sys_block.join(&name)).expect("linking the disk");
    let partitions = fs::read_to_string("/proc/partitions").expect("reading /proc/partitions");
    let kept: String = partitions
        .lines()
        .enumerate()
        .filter(|(i, line)| {
            let last = line.split_whitespace().last().unwrap_or("");
            *i < 2 || last == name || last.strip_prefix(&format!("{name}p")).is_some()
        })
        .map(|(_, line)| format!("{line}\n"))
        .collect();
    fixture::write(&stage.join("partitions"), kept.as_bytes(), 0o444);
    let script = r#"stage=$1
mount --bind "$stage/sys-block" /sys/block
mount --bind "$stage/partitions" /proc/partitions
mount -t tmpfs -o mode=0755 tmpfs /var/lib/os-prober
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
export LC_ALL=C GRUB_DISABLE_SUBMENU=y GRUB_DISABLE_OS_PROBER=false pkgdatadir=/usr/share/grub
exec /etc/grub.d/30_os-prober
"#;
    cmd::run(
        Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-euc",
                script,
                "sh",
            ])
            .arg(&stage),
    )
}

/// `_generate_boot_info`: grub.cfg from os-prober's output, keeping the entries whose
/// search UUID is an image's root; the default is the first image's. Returns grub.cfg and,
/// per kept root, its entry's index (`grub_id`, the regex match's), title and UUID.
fn generate_boot_info(
    probed: &str,
    roots: &[(FixtureImage, u32, String)],
    kernel_params: &str,
) -> (String, Vec<(usize, String, String)>) {
    let regex = Regex::new(ENTRY_REGEX).expect("Bareon's regex compiles");
    let mut entries =
        "\n    set timeout=1\n    insmod part_gpt\n    insmod ext2\n        ".to_owned();
    let mut elements: Vec<(usize, String, String)> = Vec::new();
    for (index, m) in regex.captures_iter(probed).enumerate() {
        let uuid = &m["uuid"];
        if !roots.iter().any(|(_, _, root)| root == uuid) {
            continue;
        }
        entries += &format!(
            "\n    menuentry '{name}'{{\n    search --no-floppy --fs-uuid --set=root {uuid}\n    \
             linux {kernel} root=UUID={uuid} ro {kernel_params}\n    initrd {initrd}\n    }}\n    ",
            name = &m["name"],
            kernel = &m["kernel"],
            initrd = &m["initrd"],
        );
        // list_of_seq_unique_by_key(boot_elements, 'root_uuid'): the first per root.
        if !elements.iter().any(|(_, _, root)| root == uuid) {
            elements.push((index, m["name"].to_owned(), uuid.to_owned()));
        }
    }
    let boot_id = elements
        .iter()
        .find(|(_, _, root)| *root == roots[0].2)
        .map_or(0, |(index, _, _)| *index);
    entries += &format!("set default={boot_id}");
    (entries, elements)
}
