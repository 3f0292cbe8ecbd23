use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::config::{FileSystem, ImageSource, Mount, PartitionsPolicy};
use crate::validate::JsonPath;

/// The first usable MiB of a disk: everything before it is the protective MBR and the GPT.
pub const FIRST_USABLE_MIB: u64 = 1;
/// MiB left free at the end of every disk for the backup GPT.
pub const BACKUP_GPT_MIB: u64 = 1;
/// The implicit BIOS boot partition, where grub-install embeds GRUB's core image.
pub const BIOS_GRUB_MIB: u64 = 1;
/// The implicit EFI system partition.
pub const ESP_MIB: u64 = 64;
/// The implicit multiboot partition (the specification's "100 Mb partition").
pub const MULTIBOOT_MIB: u64 = 100;
/// LVM's default extent size, which Bareon's `vgcreate` keeps.
pub const LVM_EXTENT_MIB: u64 = 4;

/// Bareon's implicit BIOS boot partition, at the head of every disk
/// (`bareon/drivers/data/ironic.py`, `Ironic.loader_partition_size`).
pub const BAREON_BIOS_GRUB_MIB: u64 = 24;

/// Which implicit partitions the disks get and how sizes are placed (`--layout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// The deployer's own: on the first disk a 1 MiB bios_grub partition, a 64 MiB ESP
    /// and the 100 MiB multiboot partition; GRUB for BIOS and UEFI.
    #[default]
    Default,
    /// Bareon's: a 24 MiB bios_grub partition at the head of every disk, the 100 MiB
    /// multiboot partition on the first disk, no ESP (BIOS only), partitions placed
    /// sector for sector as Bareon's allocator places them.
    Bareon,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Default => "default",
            Layout::Bareon => "bareon",
        }
    }
}

/// The smallest first disk: the GPTs and the three implicit partitions.
pub const MIN_FIRST_DISK_MIB: u64 =
    FIRST_USABLE_MIB + BIOS_GRUB_MIB + ESP_MIB + MULTIBOOT_MIB + BACKUP_GPT_MIB;

/// Everything a deployment will do to the disks, decided up front. Each fact is kept once
/// (a filesystem's UUID only in [`FilesystemPlan`]); what follows from them is derived by
/// [`Plan::layout`], [`Plan::multiboot_uuid`] and [`Plan::esp_uuid`].
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The disks in config order, each with its partition table.
    pub disks: Vec<DiskPlan>,
    /// md arrays built from `raid` volumes.
    pub raid_arrays: Vec<RaidArrayPlan>,
    /// LVM volume groups built from `pv` volumes.
    pub volume_groups: Vec<VolumeGroupPlan>,
    /// Every filesystem and swap area to create, in creation order.
    pub filesystems: Vec<FilesystemPlan>,
    /// The images in config order.
    pub images: Vec<ImagePlan>,
    pub boot: BootPlan,
    /// LVM is used: deploying needs the kernel's device-mapper.
    pub needs_device_mapper: bool,
    /// md RAID is used: deploying needs the kernel's md driver.
    pub needs_md: bool,
    /// The config's `partitions_policy`.
    pub partitions_policy: PartitionsPolicy,
    /// The implicit partitions and placement: `--layout`, or under a policy that keeps
    /// the tables, what the first disk holds.
    pub layout: Layout,
    /// `image_deploy_flags.rsync_flags`: extra flags for the rsync of `rsync://` sources.
    pub rsync_flags: Option<String>,
}

impl Plan {
    /// The disks' partition tables are kept, not written: the `verify` policy, or
    /// `nailgun_legacy` with a filesystem that keeps its data (as Bareon skips
    /// partitioning then). Deploying needs every table to be as planned already.
    pub fn keeps_partition_tables(&self) -> bool {
        match self.partitions_policy {
            PartitionsPolicy::Verify => true,
            PartitionsPolicy::NailgunLegacy => self.filesystems.iter().any(|fs| fs.keep_data),
            PartitionsPolicy::Clean => false,
        }
    }
}

/// One disk's GPT.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskPlan {
    /// The disk's `id.value` in the config.
    pub name: String,
    /// The disk's entry in the config, `partitions[i]`.
    pub config_path: JsonPath,
    pub path: PathBuf,
    pub size_bytes: u64,
    pub sector_size: u32,
    /// The GPT's first usable sector: 1 MiB in the default layout, right after the
    /// primary GPT in Bareon's (as sgdisk writes it).
    pub first_usable_sector: u64,
    pub partitions: Vec<PartitionPlan>,
}

/// One GPT partition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionPlan {
    /// The partition number, from 1.
    pub number: u32,
    pub start_mib: u64,
    /// Whole MiB; with `size_sectors`, the whole MiB it holds.
    pub size_mib: u64,
    /// The length in sectors when it is not whole MiB: in Bareon's layout, a partition
    /// that Bareon's allocator ends at the end of the free space.
    pub size_sectors: Option<u64>,
    pub kind: PartitionKind,
    /// The GPT partition type GUID of `kind`.
    pub type_guid: &'static str,
    /// The unique partition GUID: the config's `partition_guid`, else a new one.
    pub partition_uuid: String,
    /// The GUID is the config's `partition_guid`: a kept partition table must have it.
    pub partition_uuid_from_config: bool,
    /// The GPT partition name.
    pub name: Option<String>,
    /// GPT attribute bit 2, "legacy BIOS bootable".
    pub legacy_bios_bootable: bool,
    pub purpose: Purpose,
}

/// Why a partition or filesystem exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// An implicit BIOS boot partition: the first disk's (every disk's in Bareon's
    /// layout).
    BiosGrub,
    /// The implicit EFI system partition of the first disk (none in Bareon's layout).
    Esp,
    /// The implicit partition that holds GRUB and grub.cfg for every image.
    Multiboot,
    /// The configured volume at this JSON path (for an md array, its first member).
    Volume(JsonPath),
}

/// A GPT partition type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionKind {
    BiosBoot,
    EfiSystem,
    LinuxFilesystem,
    LinuxSwap,
    MicrosoftBasicData,
    LinuxLvm,
    LinuxRaid,
}

impl PartitionKind {
    /// The partition type GUID, as sfdisk and sgdisk write it.
    pub fn type_guid(self) -> &'static str {
        match self {
            PartitionKind::BiosBoot => "21686148-6449-6E6F-744E-656564454649",
            PartitionKind::EfiSystem => "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
            PartitionKind::LinuxFilesystem => "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
            PartitionKind::LinuxSwap => "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F",
            PartitionKind::MicrosoftBasicData => "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
            PartitionKind::LinuxLvm => "E6D6D379-F507-44C2-A23C-238F2A3DF928",
            PartitionKind::LinuxRaid => "A19D880F-05FC-4D3B-A006-743F0F84911E",
        }
    }

    /// gdisk's short code for the type (`EF02`, `8300`, ...).
    pub fn gdisk_code(self) -> &'static str {
        match self {
            PartitionKind::BiosBoot => "EF02",
            PartitionKind::EfiSystem => "EF00",
            PartitionKind::LinuxFilesystem => "8300",
            PartitionKind::LinuxSwap => "8200",
            PartitionKind::MicrosoftBasicData => "0700",
            PartitionKind::LinuxLvm => "8E00",
            PartitionKind::LinuxRaid => "FD00",
        }
    }
}

/// The block device a filesystem is made on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Device {
    /// Partition `number` of the disk the config calls `disk`.
    Partition { disk: String, number: u32 },
    /// A logical volume.
    LogicalVolume { vg: String, lv: String },
    /// An md array, by its name under /dev (`md0`, `md/data`).
    RaidArray { name: String },
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Partition { disk, number } => write!(f, "{disk}#{number}"),
            Device::LogicalVolume { vg, lv } => write!(f, "{vg}/{lv}"),
            Device::RaidArray { name } => f.write_str(name),
        }
    }
}

/// The device-mapper name of a logical volume, which GRUB's lvm module names it by too:
/// LVM doubles the `-` of each name.
pub fn mapper_name(vg: &str, lv: &str) -> String {
    format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--"))
}

/// An md array.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RaidArrayPlan {
    /// The name under /dev: the members' `name`, else the first free `mdN`.
    pub name: String,
    /// Always `raid1`, Bareon's default level.
    pub level: &'static str,
    /// The array's UUID, given to `mdadm --create`; under a keeping policy the UUID of
    /// the array the members hold.
    pub uuid: String,
    /// A filesystem on it keeps its data: the array is assembled, not made again.
    pub keep: bool,
    pub members: Vec<Device>,
    /// The smallest member's size.
    pub size_mib: u64,
    /// The first member's config entry.
    pub config_path: JsonPath,
}

/// An LVM volume group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VolumeGroupPlan {
    pub name: String,
    /// The `vg` entry, `partitions[i]`.
    pub config_path: JsonPath,
    pub physical_volumes: Vec<PhysicalVolumePlan>,
    /// The space for logical volumes: the pvs' extents.
    pub size_mib: u64,
    pub logical_volumes: Vec<LogicalVolumePlan>,
    /// A filesystem on one of its logical volumes keeps its data: the volume group is
    /// activated, not made again.
    pub keep: bool,
}

/// A partition used as an LVM physical volume.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhysicalVolumePlan {
    pub device: Device,
    /// `pvcreate --metadatasize` in MiB: the pv's `lvm_meta_size` (whole MiB, as Bareon
    /// passes it); `None`: not given, and LVM's default.
    pub metadata_mib: Option<u64>,
    /// Where its first extent starts: after the 4 KiB label and the metadata area, on a
    /// 1 MiB boundary (1 MiB with LVM's default metadata area).
    pub pe_start_mib: u64,
    /// Its extents of [`LVM_EXTENT_MIB`].
    pub extents: u64,
}

/// An LVM logical volume.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogicalVolumePlan {
    pub name: String,
    pub size_mib: u64,
    pub config_path: JsonPath,
}

/// A filesystem or swap area to create.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilesystemPlan {
    pub device: Device,
    pub fs_type: FileSystem,
    pub label: Option<String>,
    /// The UUID mkfs is given; for vfat an 8-hex-digit volume id `XXXX-XXXX`.
    pub uuid: String,
    /// Where the images mount it (`none` for the ESP and the multiboot partition, which
    /// no image mounts).
    pub mount: Mount,
    /// The images it belongs to, in config order of the volume's `images`.
    pub images: Vec<String>,
    /// Listed in those images' fstab.
    pub fstab_enabled: bool,
    pub fstab_options: String,
    pub purpose: Purpose,
    /// Its data is kept: the volume's `keep_data` under a policy that keeps the partition
    /// tables (never under `clean`). A kept filesystem is not made again, and keeps the
    /// UUID it has on the disk (read before planning: [`super::ExistingDisk`]).
    pub keep_data: bool,
}

impl FilesystemPlan {
    /// Where the images use it, in a few words: `/srv of alpha, beta`, `swap of alpha`.
    pub fn usage(&self) -> String {
        let place = match &self.mount {
            Mount::Path(path) => path.as_str(),
            Mount::Swap => "swap",
            Mount::None => "not mounted",
        };
        if self.images.is_empty() {
            place.to_owned()
        } else {
            format!("{place} of {}", self.images.join(", "))
        }
    }
}

/// One image: where it comes from and how its entry boots; its mounts, root and fstab
/// follow from the filesystems ([`Plan::layout`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImagePlan {
    pub name: String,
    /// `images[i]`.
    pub config_path: JsonPath,
    /// The id of the image's GRUB menu entry: `multiboot-NAME`, or for a name that is not
    /// a plain word `multiboot-SLUG-HASH` ([`super::ids::grub_menu_ids`]).
    pub grub_menu_id: String,
    /// `deploy_data.kernel_params`.
    pub kernel_params: Option<String>,
    /// Where the image comes from (`image_pull_url`).
    pub source: ImageSource,
    /// The mount point its tree (or filesystem image) goes to (`target`).
    pub target: String,
    /// The SHA-256 its source must have.
    pub sha256: Option<String>,
    /// Glance's image name and UUID, for boot-info.json.
    pub image_name: Option<String>,
    pub image_uuid: Option<String>,
}

/// The bootloader layout; the multiboot partition and the ESP (if any) are among the
/// filesystems.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BootPlan {
    /// The first disk, whose multiboot partition holds GRUB's files.
    pub bios_disk: String,
    pub bios_disk_path: PathBuf,
    /// Every disk with a BIOS boot partition (implicit or a `boot` volume), in config
    /// order: grub-install puts GRUB for BIOS on each, all reading the multiboot
    /// partition, so the firmware may boot any of them.
    pub bios_disks: Vec<String>,
    /// The image that boots by default: the `boot: true` one, else the first bootable one.
    pub default_image: String,
    /// The images that get a boot entry (those with `/`), in config order.
    pub entries: Vec<String>,
}
