//! The typed provision.json, as [`crate::validate::validate`] returns it.
//!
//! The only way to get a [`ProvisionConfig`] is through validation, so every value here has
//! passed its checks: image names are safe (see [`Image::name`]), every image reference
//! names an existing image, mount points are canonical absolute paths, and so on. The
//! model mirrors the JSON: `partitions[i]` is `partitions[i]` here too, and each disk's
//! and volume group's `config_index` says where its volumes are in the config (volumes
//! Bareon skips are left out), so later stages can name JSON paths in their own errors.
//! Serialising it gives a normalised JSON form (sizes in bytes, defaults filled in).
//!
//! Facts from Bareon (`bareon/drivers/data/ironic.py`, `bareon/objects/block_device.py`,
//! `doc/source/deployment.rst`): `keep_data` and `fstab_enabled` default to true,
//! `fstab_options` to `defaults` (`sw` for swap here, as Debian's installer writes it),
//! the partitions policy to `verify`; a volume without
//! `images` belongs to the first image; a mounted volume without `file_system` is xfs
//! (`bareon/objects/partition/fs.py`); `lvm_meta_pool` volumes and volumes of size 0 make
//! nothing. Keys that Bareon accepts but never uses (a vg's `label`, `min_size`,
//! `keep_data` and `_allocate_size`, a pv's `keep_data`, ...) are checked for their type
//! where Bareon's schema gives one, and not kept.

use serde::{Serialize, Serializer};

use crate::size::Size;

/// A valid provision.json.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProvisionConfig {
    /// The images, in provision order (never empty).
    pub images: Vec<Image>,
    /// `partitions[]`: disks and volume groups, in provision order (at least one disk).
    pub partitions: Vec<StorageEntry>,
    /// `partitions_policy`; Bareon's default is `verify`.
    pub partitions_policy: PartitionsPolicy,
    /// `image_deploy_flags.rsync_flags`: flags for rsync image transfers.
    pub rsync_flags: Option<String>,
    /// `deploy_data.kernel_params`: kernel command-line parameters for every image.
    pub kernel_params: Option<String>,
}

impl ProvisionConfig {
    /// The image that boots by default: the one with `boot: true`, else the first.
    pub fn boot_image(&self) -> &Image {
        self.images
            .iter()
            .find(|image| image.boot)
            .unwrap_or(&self.images[0])
    }

    /// The disk entries of `partitions[]`, in order; the first one gets the multiboot
    /// partition.
    pub fn disks(&self) -> impl Iterator<Item = &Disk> {
        self.partitions.iter().filter_map(|entry| match entry {
            StorageEntry::Disk(disk) => Some(disk),
            StorageEntry::VolumeGroup(_) => None,
        })
    }

    /// The volume-group entries of `partitions[]`, in order.
    pub fn volume_groups(&self) -> impl Iterator<Item = &VolumeGroup> {
        self.partitions.iter().filter_map(|entry| match entry {
            StorageEntry::VolumeGroup(vg) => Some(vg),
            StorageEntry::Disk(_) => None,
        })
    }

    /// How many volumes the config lists: disk volumes plus logical volumes.
    pub fn volume_count(&self) -> usize {
        self.partitions
            .iter()
            .map(|entry| match entry {
                StorageEntry::Disk(disk) => disk.volumes.len(),
                StorageEntry::VolumeGroup(vg) => vg.volumes.len(),
            })
            .sum()
    }
}

/// One entry of `images[]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Image {
    /// The provision name, referenced by volumes' `images` lists: any non-empty string
    /// without control characters, unique in the config (Bareon's names are free: "centos
    /// 7.1", a URL). The GRUB menu entry id is derived from it (`plan::ids`).
    pub name: String,
    /// `boot` true or a non-zero integer. When several images have it, the first boots by
    /// default (as in Bareon).
    pub boot: bool,
    /// Glance's image name, reported in boot-info.json.
    pub image_name: Option<String>,
    /// Glance's image UUID, reported in boot-info.json.
    pub image_uuid: Option<String>,
    /// Where the image comes from (`image_pull_url`).
    pub source: ImageSource,
    /// Where in the image's tree it is deployed: `/` for an OS, a path such as
    /// `/usr/share/utils` for a utility image. Canonical and absolute; some volume of the
    /// image is mounted there.
    pub target: String,
    /// Expected SHA-256 of the downloaded image (`sha256`), lowercase hex.
    pub sha256: Option<String>,
}

/// Where an image is pulled from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageSource {
    /// A local file or directory: an absolute path, or a `file://` URL (percent-decoded).
    Path(String),
    /// An `http://` URL.
    Http(String),
    /// An `https://` URL.
    Https(String),
    /// An `rsync://` URL or an rsync daemon's `HOST::MODULE/PATH`, as written.
    Rsync(String),
}

/// `partitions_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionsPolicy {
    /// Compare the schema with the disks (refused when they differ), keep the partition
    /// tables and the filesystems marked `keep_data`, make the others anew.
    Verify,
    /// Wipe the disks and partition them from scratch; `keep_data` is ignored.
    Clean,
    /// Fuel's legacy behaviour: as `verify` when some filesystem keeps its data (Bareon
    /// then skips partitioning), else as `clean`.
    NailgunLegacy,
}

impl PartitionsPolicy {
    /// The name as in provision.json.
    pub fn as_str(self) -> &'static str {
        match self {
            PartitionsPolicy::Verify => "verify",
            PartitionsPolicy::Clean => "clean",
            PartitionsPolicy::NailgunLegacy => "nailgun_legacy",
        }
    }
}

/// One entry of `partitions[]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StorageEntry {
    Disk(Disk),
    #[serde(rename = "vg")]
    VolumeGroup(VolumeGroup),
}

/// A `"type": "disk"` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disk {
    pub id: DiskId,
    /// The optional `name`.
    pub name: Option<String>,
    /// The declared size in bytes (`size`); the real size comes from the device.
    pub size: Option<u64>,
    /// The volumes, without those Bareon skips (`lvm_meta_pool`, size `"0"`).
    pub volumes: Vec<DiskVolume>,
    /// Where each of `volumes` is in the config's `volumes` array.
    #[serde(skip)]
    pub config_index: Vec<usize>,
}

/// How a disk is found (`id`). Values are unique across the config once a leading
/// `/dev/` is ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskId {
    #[serde(rename = "type")]
    pub kind: DiskIdKind,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskIdKind {
    /// A kernel name: `vda`, `/dev/sda`.
    Name,
    /// A persistent path: `disk/by-id/...`, `/dev/disk/by-path/...`.
    Path,
    /// A SCSI address `host:channel:target:lun`.
    Scsi,
}

/// A volume of a disk.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DiskVolume {
    Partition(Partition),
    Raid(Raid),
    Pv(PhysicalVolume),
    Boot(BootVolume),
}

/// A `"type": "partition"` volume.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Partition {
    #[serde(flatten)]
    pub fs: FsVolume,
    /// GPT partition name (`name`), at most 36 characters.
    pub name: Option<String>,
    /// GPT unique partition GUID (`partition_guid`), lowercase, unique in the config.
    pub partition_guid: Option<String>,
}

/// A `"type": "raid"` volume: one member of an md array. Members with the same mount
/// point form one array (as in Bareon) and agree on file system, images and name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Raid {
    #[serde(flatten)]
    pub fs: FsVolume,
    /// The md device (`name`): `mdN` or `md/NAME`, with or without `/dev/`.
    pub name: Option<String>,
}

/// A `"type": "pv"` volume.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhysicalVolume {
    /// The id of an existing `vg` entry.
    pub vg: String,
    pub size: Size,
    /// Space for LVM metadata in bytes (`lvm_meta_size`), at least 10 MiB; Bareon's
    /// default is 64 MiB.
    pub lvm_meta_size: Option<u64>,
}

/// A `"type": "boot"` volume: a partition flagged legacy-bootable, at most one per disk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BootVolume {
    pub size: Size,
    pub keep_data: bool,
}

/// A `"type": "vg"` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VolumeGroup {
    /// The volume group's name (`id`), unique; some pv names it.
    pub id: String,
    /// The logical volumes, without those of size `"0"`.
    pub volumes: Vec<LogicalVolume>,
    /// Where each of `volumes` is in the config's `volumes` array.
    #[serde(skip)]
    pub config_index: Vec<usize>,
}

/// An `"type": "lv"` volume of a volume group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogicalVolume {
    /// The LV name, unique in its volume group.
    pub name: String,
    #[serde(flatten)]
    pub fs: FsVolume,
}

/// What partitions, raid members and logical volumes have in common: a filesystem that
/// belongs to some images.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FsVolume {
    pub size: Size,
    pub mount: Mount,
    /// `None`: not given; the planner picks the default (xfs when mounted on a path, as
    /// in Bareon).
    pub file_system: Option<FileSystem>,
    /// The names of the images this volume belongs to; the first image when the config
    /// gives no `images`. Never empty, no duplicates.
    pub images: Vec<String>,
    pub keep_data: bool,
    /// Listed in the images' fstab (`fstab_enabled`).
    pub fstab_enabled: bool,
    /// The fstab options field (`fstab_options`; `sw` for swap, else `defaults`, when
    /// not given).
    pub fstab_options: String,
    /// Filesystem label (`disk_label`; partitions and logical volumes only).
    pub label: Option<String>,
}

/// A volume's `mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// A canonical absolute path: no `.`, `..` or empty components, no trailing `/`, no
    /// whitespace or control characters.
    Path(String),
    /// `swap`: a swap area (its file system is `swap`).
    Swap,
    /// `none` (any case), or no `mount` on a logical volume: not mounted.
    None,
}

impl Serialize for Mount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match self {
            Mount::Path(path) => path,
            Mount::Swap => "swap",
            Mount::None => "none",
        })
    }
}

/// A supported `file_system` (matched without regard to case, as Bareon lowercases it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileSystem {
    Ext2,
    Ext3,
    Ext4,
    Xfs,
    Vfat,
    Swap,
}

impl FileSystem {
    /// Every supported file system, in the order error messages list them.
    pub const ALL: [FileSystem; 6] = [
        FileSystem::Ext2,
        FileSystem::Ext3,
        FileSystem::Ext4,
        FileSystem::Xfs,
        FileSystem::Vfat,
        FileSystem::Swap,
    ];

    /// The name as in provision.json and mkfs: `ext4`, `xfs`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            FileSystem::Ext2 => "ext2",
            FileSystem::Ext3 => "ext3",
            FileSystem::Ext4 => "ext4",
            FileSystem::Xfs => "xfs",
            FileSystem::Vfat => "vfat",
            FileSystem::Swap => "swap",
        }
    }

    /// The longest label the file system takes, in bytes.
    pub fn max_label_len(self) -> usize {
        match self {
            FileSystem::Ext2 | FileSystem::Ext3 | FileSystem::Ext4 => 16,
            FileSystem::Xfs => 12,
            FileSystem::Vfat => 11,
            FileSystem::Swap => 15,
        }
    }

    /// The smallest filesystem its mkfs makes, in MiB: mkfs.xfs (xfsprogs 5.19 and later)
    /// refuses anything under 300 MB; the others make filesystems of a few KiB.
    pub fn min_size_mib(self) -> u64 {
        match self {
            FileSystem::Xfs => 300,
            _ => 1,
        }
    }

    /// Parses a `file_system` value, ignoring case.
    pub fn parse(name: &str) -> Option<FileSystem> {
        FileSystem::ALL
            .into_iter()
            .find(|fs| fs.as_str().eq_ignore_ascii_case(name))
    }
}
