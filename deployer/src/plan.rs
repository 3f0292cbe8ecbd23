//! The planner: from a valid config and the disks' sizes to every partition, filesystem,
//! mount table, fstab and the boot layout, decided before anything is written.
//!
//! [`plan`] is pure: the disks come in as [`DiskInput`] values (see [`crate::disks`] for
//! reading them from the system) and every UUID comes from an [`IdSource`], so the same
//! inputs give the same [`Plan`]. The plan is a plain value that can be printed,
//! serialised, compared in tests and checked for every error before a disk is touched.
//!
//! Layout decisions:
//! - Every disk gets a GPT. Partitions are aligned to 1 MiB, the first starts at 1 MiB and
//!   the last MiB of the disk is left free for the backup GPT.
//! - The first disk of the config (the specification's "first disk referenced in schema")
//!   starts with three implicit partitions: a 1 MiB `bios_grub` partition (GRUB's core image
//!   for BIOS boot), a 64 MiB EFI system partition (vfat, label `ESP`) and the 100 MiB
//!   `multiboot` partition (ext4, label `multiboot`) that holds the one GRUB of all images.
//!   The configured volumes follow, in config order; other disks hold only their volumes.
//! - Exact sizes are rounded up to whole MiB; percentages are of the disk's whole size (a
//!   volume group's size for logical volumes), rounded down to whole MiB; `remaining`
//!   takes what the other volumes of its disk or volume group leave.
//! - A `boot` volume is planned as Bareon parses it (`bareon/drivers/data/ironic.py` reads
//!   it as a partition flagged boot, without a filesystem): an unformatted partition of
//!   GPT type BIOS boot with the legacy-BIOS-bootable attribute, so that GRUB can also be
//!   embedded on a disk other than the first.
//! - A partition or logical volume without `file_system` gets ext4 when it is mounted on a
//!   path, and no filesystem when its mount is `none`.
//! - `pv`, `lvm_meta_pool` and `raid` volumes are planned (LVM and RAID partition types,
//!   volume groups, logical volumes, md arrays) and mark the plan
//!   [`Plan::needs_device_mapper`] or [`Plan::needs_md`]. Logical volume sizes are whole
//!   MiB of the volume group's size, which is its pvs' sizes minus their `lvm_meta_size`
//!   (64 MiB when not given, as in Bareon); an md array is a mirror (Bareon's default
//!   level) as large as its smallest member.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;
use uuid::Uuid;

use crate::config::{
    Disk, DiskVolume, FileSystem, FsVolume, Mount, PartitionsPolicy, ProvisionConfig, StorageEntry,
    VolumeGroup,
};
use crate::size::{Size, MIB};
use crate::text::{format_percent, quote};
use crate::validate::JsonPath;
use shared::layout::{ESP_LABEL, MULTIBOOT_LABEL};

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
/// Space an LVM physical volume keeps for metadata when `lvm_meta_size` is not given.
pub const DEFAULT_LVM_META_BYTES: u64 = 64 * MIB;

/// The smallest first disk: the GPTs and the three implicit partitions.
pub const MIN_FIRST_DISK_MIB: u64 =
    FIRST_USABLE_MIB + BIOS_GRUB_MIB + ESP_MIB + MULTIBOOT_MIB + BACKUP_GPT_MIB;

/// One `--disk NAME=PATH`, resolved: the disk the config calls `name` is `path`, and this
/// large.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskInput {
    /// The disk's `id.value` in the config (a leading `/dev/` on either side is ignored).
    pub name: String,
    /// A block device or a disk-image file.
    pub path: PathBuf,
    pub size_bytes: u64,
    /// The logical sector size (512 for image files).
    pub sector_size: u32,
}

/// Hands out the UUIDs the plan assigns, so that fstab, `root=UUID=` and boot-info.json
/// can be written from the plan.
pub trait IdSource {
    /// A filesystem UUID (for vfat, its last four bytes become the volume id).
    fn filesystem_uuid(&mut self) -> Uuid;
    /// A GPT unique partition GUID.
    fn partition_uuid(&mut self) -> Uuid;
}

/// Random version-4 UUIDs, for real deployments.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn filesystem_uuid(&mut self) -> Uuid {
        Uuid::new_v4()
    }

    fn partition_uuid(&mut self) -> Uuid {
        Uuid::new_v4()
    }
}

/// Predictable UUIDs for tests and reproducible plans: the n-th filesystem UUID is
/// `00000000-0000-4000-a000-00000000000n` and the n-th partition GUID
/// `00000000-0000-4000-b000-00000000000n` (n in hexadecimal, counting from 1).
#[derive(Debug, Default, Clone, Copy)]
pub struct SequentialIds {
    filesystems: u64,
    partitions: u64,
}

impl SequentialIds {
    fn uuid(variant: u128, counter: &mut u64) -> Uuid {
        *counter += 1;
        Uuid::from_u128((0x4000 << 64) | (variant << 48) | u128::from(*counter))
    }
}

impl IdSource for SequentialIds {
    fn filesystem_uuid(&mut self) -> Uuid {
        SequentialIds::uuid(0xa000, &mut self.filesystems)
    }

    fn partition_uuid(&mut self) -> Uuid {
        SequentialIds::uuid(0xb000, &mut self.partitions)
    }
}

/// Everything a deployment will do to the disks, decided up front.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

    /// The plan for disks whose kept partition tables and filesystems were read: every
    /// partition of `partition_uuids` (disk, number, unique GUID) gets the GUID it has,
    /// every filesystem of `filesystem_uuids` the UUID it has, and each image's mounts,
    /// root and boot UUIDs and fstab follow.
    pub fn with_existing(
        mut self,
        partition_uuids: &[(String, u32, String)],
        filesystem_uuids: &[(Device, String)],
    ) -> Plan {
        for disk in &mut self.disks {
            for partition in &mut disk.partitions {
                if let Some((_, _, uuid)) = partition_uuids
                    .iter()
                    .find(|(name, number, _)| *name == disk.name && *number == partition.number)
                {
                    partition.partition_uuid = uuid.to_lowercase();
                }
            }
        }
        for fs in &mut self.filesystems {
            if let Some((_, uuid)) = filesystem_uuids.iter().find(|(d, _)| *d == fs.device) {
                fs.uuid = uuid.clone();
            }
        }
        for image in &mut self.images {
            for mount in &mut image.mounts {
                if let Some(fs) = self.filesystems.iter().find(|fs| fs.device == mount.device) {
                    mount.uuid = fs.uuid.clone();
                }
            }
            image.root_uuid = uuid_at(&image.mounts, "/");
            image.boot_uuid = uuid_at(&image.mounts, "/boot").or_else(|| image.root_uuid.clone());
            let own: Vec<&FilesystemPlan> = self
                .filesystems
                .iter()
                .filter(|fs| fs.images.contains(&image.name))
                .collect();
            image.fstab = fstab(&image.name, &own);
        }
        self
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
    pub partitions: Vec<PartitionPlan>,
}

/// One GPT partition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionPlan {
    /// The partition number, from 1.
    pub number: u32,
    pub start_mib: u64,
    pub size_mib: u64,
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
    /// The implicit BIOS boot partition of the first disk.
    BiosGrub,
    /// The implicit EFI system partition of the first disk.
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

/// An md array.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RaidArrayPlan {
    /// The name under /dev: the members' `name`, else the first free `mdN`.
    pub name: String,
    /// Always `raid1`, Bareon's default level.
    pub level: &'static str,
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
    /// The space for logical volumes: the pvs' sizes minus their metadata.
    pub size_mib: u64,
    pub logical_volumes: Vec<LogicalVolumePlan>,
}

/// A partition used as an LVM physical volume.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhysicalVolumePlan {
    pub device: Device,
    pub metadata_mib: u64,
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
    /// UUID it has on the disk ([`Plan::with_existing`]).
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

/// One image: where its filesystems are mounted while it is deployed, and how it boots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImagePlan {
    pub name: String,
    /// `images[i]`.
    pub config_path: JsonPath,
    /// The id of the image's GRUB menu entry: `multiboot-NAME`.
    pub grub_menu_id: String,
    /// The UUID of the filesystem mounted at `/`, for `root=UUID=`; `None` for an image
    /// without `/` (a utility image), which gets no boot entry.
    pub root_uuid: Option<String>,
    /// A filesystem of its own is mounted at `/boot`.
    pub separate_boot: bool,
    /// The filesystem GRUB reads the kernel from: the separate `/boot`, else the root.
    pub boot_uuid: Option<String>,
    /// `deploy_data.kernel_params`.
    pub kernel_params: Option<String>,
    /// Its mounts in mounting order: by mount-point depth, then by path.
    pub mounts: Vec<MountPlan>,
    /// The image's `/etc/fstab`.
    pub fstab: String,
}

/// One filesystem mounted into an image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MountPlan {
    pub mount_point: String,
    pub device: Device,
    pub fs_type: FileSystem,
    pub uuid: String,
}

/// The bootloader layout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BootPlan {
    /// The multiboot partition's filesystem UUID (boot-info.json's `multiboot_partition`).
    pub multiboot_uuid: String,
    /// The ESP's vfat volume id.
    pub esp_uuid: String,
    /// The first disk, where grub-install puts GRUB for BIOS.
    pub bios_disk: String,
    pub bios_disk_path: PathBuf,
    /// The image that boots by default: the `boot: true` one, else the first bootable one.
    pub default_image: String,
    /// The images that get a boot entry (those with `/`), in config order.
    pub entries: Vec<String>,
}

/// Where a planning error is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// A place in the config.
    Path(JsonPath),
    /// A `--disk NAME=PATH` argument, by NAME.
    Disk(String),
}

/// Why the config cannot be laid out on the given disks. Displays in one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}: {message}", match subject {
    Subject::Path(path) => path.to_string(),
    Subject::Disk(name) => format!("--disk {name}"),
})]
pub struct PlanError {
    #[serde(flatten)]
    pub subject: Subject,
    pub message: String,
}

impl PlanError {
    fn at(path: &JsonPath, message: impl Into<String>) -> PlanError {
        PlanError {
            subject: Subject::Path(path.clone()),
            message: message.into(),
        }
    }
}

/// Whether a `--disk` NAME names the disk whose id is `id` (`/dev/` ignored on both).
pub fn names_disk<'a>(name: &'a str, id: &'a str) -> bool {
    let without_dev = |s: &'a str| s.strip_prefix("/dev/").unwrap_or(s);
    without_dev(name) == without_dev(id)
}

/// The disk entries of the config with their JSON paths, in order.
fn disk_entries(config: &ProvisionConfig) -> impl Iterator<Item = (JsonPath, &Disk)> {
    config
        .partitions
        .iter()
        .enumerate()
        .filter_map(|(i, entry)| match entry {
            StorageEntry::Disk(disk) => Some((JsonPath::root().key("partitions").index(i), disk)),
            StorageEntry::VolumeGroup(_) => None,
        })
}

/// Checks that `names` (the `--disk` NAMEs) give every disk of the config exactly once and
/// name nothing else. The CLI runs it before reading any disk; [`plan`] runs it too.
pub fn check_disk_names<'a>(
    config: &ProvisionConfig,
    names: impl IntoIterator<Item = &'a str>,
) -> Vec<PlanError> {
    let names: Vec<&str> = names.into_iter().collect();
    let disks: Vec<(JsonPath, &Disk)> = disk_entries(config).collect();
    let mut errors = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let given_before = names[..i].iter().any(|n| names_disk(n, name));
        let known = disks.iter().any(|(_, d)| names_disk(name, &d.id.value));
        let message = if given_before {
            "given more than once".to_string()
        } else if !known {
            format!(
                "no disk of the config has id {}; its disks: {}",
                quote(name),
                disks
                    .iter()
                    .map(|(_, d)| quote(&d.id.value))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            continue;
        };
        errors.push(PlanError {
            subject: Subject::Disk(name.to_string()),
            message,
        });
    }
    for (path, disk) in &disks {
        if !names.iter().any(|n| names_disk(n, &disk.id.value)) {
            errors.push(PlanError::at(
                path,
                format!(
                    "disk {} is not given; pass --disk {}=PATH",
                    quote(&disk.id.value),
                    disk.id.value
                ),
            ));
        }
    }
    errors
}

/// Lays the config out on `disks`, taking every UUID from `ids`. Returns every error
/// found: disks missing or unknown, volumes that do not fit (with the shortfall).
pub fn plan(
    config: &ProvisionConfig,
    disks: &[DiskInput],
    ids: &mut impl IdSource,
) -> Result<Plan, Vec<PlanError>> {
    let errors = check_disk_names(config, disks.iter().map(|d| d.name.as_str()));
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut planner = Planner {
        ids,
        policy: config.partitions_policy,
        errors: Vec::new(),
        filesystems: Vec::new(),
        raid_members: BTreeMap::new(),
        physical_volumes: BTreeMap::new(),
        needs_device_mapper: false,
        needs_md: false,
    };
    let mut disk_plans = Vec::new();
    for (index, (path, disk)) in disk_entries(config).enumerate() {
        let input = disks
            .iter()
            .find(|d| names_disk(&d.name, &disk.id.value))
            .expect("check_disk_names found every disk");
        disk_plans.push(planner.disk(&path, disk, input, index == 0));
    }
    if !planner.errors.is_empty() {
        return Err(planner.errors);
    }
    let raid_arrays = planner.raid_arrays();
    let volume_groups: Vec<VolumeGroupPlan> = config
        .partitions
        .iter()
        .enumerate()
        .filter_map(|(i, entry)| match entry {
            StorageEntry::VolumeGroup(vg) => {
                Some(planner.volume_group(&JsonPath::root().key("partitions").index(i), vg))
            }
            StorageEntry::Disk(_) => None,
        })
        .collect();
    let images = planner.images(config);
    let boot = planner.boot(config, &disk_plans[0], &images);
    if !planner.errors.is_empty() {
        return Err(planner.errors);
    }
    Ok(Plan {
        disks: disk_plans,
        raid_arrays,
        volume_groups,
        filesystems: planner.filesystems,
        images,
        boot: boot.expect("no error, so a boot layout"),
        needs_device_mapper: planner.needs_device_mapper,
        needs_md: planner.needs_md,
        partitions_policy: config.partitions_policy,
    })
}

/// The state of one planning run.
struct Planner<'a, I: IdSource> {
    ids: &'a mut I,
    policy: PartitionsPolicy,
    errors: Vec<PlanError>,
    filesystems: Vec<FilesystemPlan>,
    /// Raid members by their array's mount key (`/path` or `swap`).
    raid_members: BTreeMap<String, Vec<RaidMember>>,
    /// pvs by volume group name, in config order.
    physical_volumes: BTreeMap<String, Vec<PhysicalVolumeInput>>,
    needs_device_mapper: bool,
    needs_md: bool,
}

struct RaidMember {
    device: Device,
    size_mib: u64,
    path: JsonPath,
    fs: FsVolume,
    name: Option<String>,
}

struct PhysicalVolumeInput {
    device: Device,
    size_mib: u64,
    metadata_mib: u64,
    path: JsonPath,
}

/// A space request of a disk or volume group.
struct Request<'a> {
    path: &'a JsonPath,
    size: Size,
}

/// Sizes in MiB for `requests` within `free_mib`, percentages taken of `whole_bytes`.
/// `container` names the disk or volume group in messages.
fn allocate(
    requests: &[Request<'_>],
    whole_bytes: u64,
    free_mib: u64,
    container: &str,
) -> Result<Vec<u64>, Vec<PlanError>> {
    let mut errors = Vec::new();
    let mut sizes: Vec<u64> = requests
        .iter()
        .map(|request| match request.size {
            Size::Bytes(bytes) => bytes.div_ceil(MIB),
            Size::Percent(hundredths) => {
                let bytes = u128::from(whole_bytes) * u128::from(hundredths) / 10_000;
                let mib = u64::try_from(bytes / u128::from(MIB)).unwrap_or(u64::MAX);
                if mib == 0 {
                    errors.push(PlanError::at(
                        &request.path.key("size"),
                        format!(
                            "{} of {container} is less than 1 MiB",
                            format_percent(hundredths)
                        ),
                    ));
                }
                mib
            }
            // At least 1 MiB, for the fit check; the real size is set below.
            Size::Remaining => 1,
        })
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    let need = sizes.iter().fold(0u64, |sum, s| sum.saturating_add(*s));
    if need > free_mib {
        let mut end = 0u64;
        let first_over = requests
            .iter()
            .zip(&sizes)
            .find(|(_, size)| {
                end = end.saturating_add(**size);
                end > free_mib
            })
            .map(|(request, _)| request.path)
            .expect("the sizes add up to more than free_mib");
        let what = if requests.iter().any(|r| r.size == Size::Remaining) {
            "its volumes (with at least 1 MiB for \"remaining\")"
        } else {
            "its volumes"
        };
        return Err(vec![PlanError::at(
            first_over,
            format!(
                "does not fit on {container} by {} MiB: {what} need {need} MiB, \
                 {free_mib} MiB are free",
                need - free_mib
            ),
        )]);
    }
    if let Some(remaining) = requests.iter().position(|r| r.size == Size::Remaining) {
        sizes[remaining] += free_mib - need;
    }
    Ok(sizes)
}

/// What a configured disk volume becomes.
fn volume_layout(volume: &DiskVolume) -> (PartitionKind, Option<FileSystem>) {
    match volume {
        DiskVolume::Partition(partition) => {
            let fs = filesystem_of(&partition.fs);
            let kind = match fs {
                Some(FileSystem::Swap) => PartitionKind::LinuxSwap,
                Some(FileSystem::Vfat) if is_esp_mount(&partition.fs.mount) => {
                    PartitionKind::EfiSystem
                }
                Some(FileSystem::Vfat) => PartitionKind::MicrosoftBasicData,
                _ => PartitionKind::LinuxFilesystem,
            };
            (kind, fs)
        }
        DiskVolume::Raid(_) => (PartitionKind::LinuxRaid, None),
        DiskVolume::Pv(_) | DiskVolume::LvmMetaPool(_) => (PartitionKind::LinuxLvm, None),
        DiskVolume::Boot(_) => (PartitionKind::BiosBoot, None),
    }
}

/// A vfat volume mounted where EFI system partitions go.
fn is_esp_mount(mount: &Mount) -> bool {
    matches!(mount, Mount::Path(path) if path == "/boot/efi" || path == "/efi")
}

/// The filesystem a volume gets: the configured one, else ext4 when it is mounted.
fn filesystem_of(fs: &FsVolume) -> Option<FileSystem> {
    match (&fs.mount, fs.file_system) {
        (_, Some(fs)) => Some(fs),
        (Mount::Path(_), None) => Some(FileSystem::Ext4),
        (Mount::Swap, None) => Some(FileSystem::Swap),
        (Mount::None, None) => None,
    }
}

fn volume_size(volume: &DiskVolume) -> Size {
    match volume {
        DiskVolume::Partition(p) => p.fs.size,
        DiskVolume::Raid(r) => r.fs.size,
        DiskVolume::Pv(pv) => pv.size,
        DiskVolume::Boot(b) => b.size,
        DiskVolume::LvmMetaPool(pool) => pool.size,
    }
}

/// The UUID of the filesystem mounted at `mount_point`, if any.
fn uuid_at(mounts: &[MountPlan], mount_point: &str) -> Option<String> {
    mounts
        .iter()
        .find(|m| m.mount_point == mount_point)
        .map(|m| m.uuid.clone())
}

/// The number of components of a mount point: `/` is 0, `/usr/share/common` 3.
fn mount_depth(mount_point: &str) -> usize {
    mount_point.split('/').filter(|c| !c.is_empty()).count()
}

impl<I: IdSource> Planner<'_, I> {
    fn fs_uuid(&mut self, fs_type: FileSystem) -> String {
        let uuid = self.ids.filesystem_uuid();
        if fs_type == FileSystem::Vfat {
            let b = uuid.as_bytes();
            format!("{:02X}{:02X}-{:02X}{:02X}", b[12], b[13], b[14], b[15])
        } else {
            uuid.to_string()
        }
    }

    /// A volume too small for its filesystem's mkfs is a planning error, not a failure
    /// after the disk was partitioned.
    fn check_filesystem_size(
        &mut self,
        volume_path: &JsonPath,
        fs_type: FileSystem,
        size_mib: u64,
    ) {
        let min_mib = fs_type.min_size_mib();
        if size_mib < min_mib {
            self.errors.push(PlanError::at(
                &volume_path.key("size"),
                format!(
                    "{size_mib} MiB is too small for {}: mkfs.{} needs at least {min_mib} MiB",
                    fs_type.as_str(),
                    fs_type.as_str()
                ),
            ));
        }
    }

    /// Records a filesystem on `device`: a configured volume's (mounted and listed in
    /// fstab as the volume says), or with `volume` `None` an implicit one that no image
    /// mounts.
    fn add_filesystem(
        &mut self,
        device: Device,
        fs_type: FileSystem,
        purpose: Purpose,
        volume: Option<&FsVolume>,
    ) {
        let uuid = self.fs_uuid(fs_type);
        let label = match (&purpose, volume) {
            (Purpose::Esp, _) => Some(ESP_LABEL.to_string()),
            (Purpose::Multiboot, _) => Some(MULTIBOOT_LABEL.to_string()),
            (_, volume) => volume.and_then(|v| v.label.clone()),
        };
        self.filesystems.push(FilesystemPlan {
            device,
            fs_type,
            label,
            uuid,
            mount: volume.map_or(Mount::None, |v| v.mount.clone()),
            images: volume.map_or_else(Vec::new, |v| v.images.clone()),
            fstab_enabled: volume.is_some_and(|v| v.fstab_enabled),
            fstab_options: volume
                .map_or_else(|| "defaults".to_string(), |v| v.fstab_options.clone()),
            purpose,
            keep_data: self.policy != PartitionsPolicy::Clean
                && volume.is_some_and(|v| v.keep_data),
        });
    }

    /// Appends a partition right after the last one (or at the first usable MiB).
    fn push_partition<'p>(
        &mut self,
        partitions: &'p mut Vec<PartitionPlan>,
        size_mib: u64,
        kind: PartitionKind,
        name: Option<String>,
        purpose: Purpose,
    ) -> &'p mut PartitionPlan {
        let start_mib = partitions
            .last()
            .map_or(FIRST_USABLE_MIB, |p| p.start_mib + p.size_mib);
        partitions.push(PartitionPlan {
            number: u32::try_from(partitions.len() + 1).unwrap_or(u32::MAX),
            start_mib,
            size_mib,
            kind,
            type_guid: kind.type_guid(),
            partition_uuid: self.ids.partition_uuid().to_string(),
            partition_uuid_from_config: false,
            name,
            legacy_bios_bootable: false,
            purpose,
        });
        partitions.last_mut().expect("just pushed")
    }

    /// Appends one of the implicit partitions of the first disk; returns its number.
    fn add_partition(
        &mut self,
        partitions: &mut Vec<PartitionPlan>,
        size_mib: u64,
        kind: PartitionKind,
        name: &str,
    ) -> u32 {
        let purpose = match kind {
            PartitionKind::BiosBoot => Purpose::BiosGrub,
            PartitionKind::EfiSystem => Purpose::Esp,
            _ => Purpose::Multiboot,
        };
        self.push_partition(partitions, size_mib, kind, Some(name.to_string()), purpose)
            .number
    }

    fn disk(&mut self, path: &JsonPath, disk: &Disk, input: &DiskInput, first: bool) -> DiskPlan {
        let name = disk.id.value.clone();
        let mut plan = DiskPlan {
            name: name.clone(),
            config_path: path.clone(),
            path: input.path.clone(),
            size_bytes: input.size_bytes,
            sector_size: input.sector_size,
            partitions: Vec::new(),
        };
        let disk_mib = input.size_bytes / MIB;
        let overhead = if first {
            MIN_FIRST_DISK_MIB
        } else {
            FIRST_USABLE_MIB + BACKUP_GPT_MIB
        };
        if disk_mib < overhead {
            let what = if first {
                "the GPTs and the bios_grub, ESP and multiboot partitions"
            } else {
                "the GPTs"
            };
            self.errors.push(PlanError::at(
                path,
                format!(
                    "disk {} ({}) is {disk_mib} MiB, too small for {what} ({overhead} MiB)",
                    quote(&name),
                    input.path.display()
                ),
            ));
            return plan;
        }
        let device = |number| Device::Partition {
            disk: name.clone(),
            number,
        };
        if first {
            let partitions = &mut plan.partitions;
            self.add_partition(
                partitions,
                BIOS_GRUB_MIB,
                PartitionKind::BiosBoot,
                "bios_grub",
            );
            let esp = self.add_partition(partitions, ESP_MIB, PartitionKind::EfiSystem, "ESP");
            self.add_filesystem(device(esp), FileSystem::Vfat, Purpose::Esp, None);
            let multiboot = self.add_partition(
                partitions,
                MULTIBOOT_MIB,
                PartitionKind::LinuxFilesystem,
                "multiboot",
            );
            self.add_filesystem(
                device(multiboot),
                FileSystem::Ext4,
                Purpose::Multiboot,
                None,
            );
        }
        let volume_paths: Vec<JsonPath> = (0..disk.volumes.len())
            .map(|j| path.key("volumes").index(j))
            .collect();
        let requests: Vec<Request<'_>> = disk
            .volumes
            .iter()
            .zip(&volume_paths)
            .map(|(volume, path)| Request {
                path,
                size: volume_size(volume),
            })
            .collect();
        let free_mib = disk_mib - overhead;
        let sizes = match allocate(
            &requests,
            input.size_bytes,
            free_mib,
            &format!("disk {}", quote(&name)),
        ) {
            Ok(sizes) => sizes,
            Err(errors) => {
                self.errors.extend(errors);
                return plan;
            }
        };
        for ((volume, volume_path), size_mib) in disk.volumes.iter().zip(&volume_paths).zip(sizes) {
            let (kind, fs_type) = volume_layout(volume);
            let gpt_name = match volume {
                DiskVolume::Partition(p) => p.name.clone(),
                _ => None,
            };
            let partition = self.push_partition(
                &mut plan.partitions,
                size_mib,
                kind,
                gpt_name,
                Purpose::Volume(volume_path.clone()),
            );
            let number = partition.number;
            match volume {
                DiskVolume::Partition(p) => {
                    if let Some(guid) = &p.partition_guid {
                        partition.partition_uuid = guid.clone();
                        partition.partition_uuid_from_config = true;
                    }
                    if let Some(fs_type) = fs_type {
                        self.check_filesystem_size(volume_path, fs_type, size_mib);
                        self.add_filesystem(
                            device(number),
                            fs_type,
                            Purpose::Volume(volume_path.clone()),
                            Some(&p.fs),
                        );
                    }
                }
                DiskVolume::Boot(_) => partition.legacy_bios_bootable = true,
                DiskVolume::Raid(raid) => {
                    self.needs_md = true;
                    let key = match &raid.fs.mount {
                        Mount::Path(p) => p.clone(),
                        Mount::Swap => "swap".to_string(),
                        Mount::None => "none".to_string(),
                    };
                    self.raid_members.entry(key).or_default().push(RaidMember {
                        device: device(number),
                        size_mib,
                        path: volume_path.clone(),
                        fs: raid.fs.clone(),
                        name: raid.name.clone(),
                    });
                }
                DiskVolume::Pv(pv) => {
                    self.needs_device_mapper = true;
                    let metadata_mib = pv
                        .lvm_meta_size
                        .unwrap_or(DEFAULT_LVM_META_BYTES)
                        .div_ceil(MIB);
                    self.physical_volumes
                        .entry(pv.vg.clone())
                        .or_default()
                        .push(PhysicalVolumeInput {
                            device: device(number),
                            size_mib,
                            metadata_mib,
                            path: volume_path.clone(),
                        });
                }
                DiskVolume::LvmMetaPool(_) => self.needs_device_mapper = true,
            }
        }
        plan
    }

    /// One md array per raid mount key, named as Bareon does: the members' `name`, else
    /// `mdN` with N counting over the unnamed arrays in mount order, skipping given names.
    fn raid_arrays(&mut self) -> Vec<RaidArrayPlan> {
        let groups = std::mem::take(&mut self.raid_members);
        let given: Vec<String> = groups
            .values()
            .filter_map(|members| members[0].name.as_deref().map(md_name))
            .collect();
        let mut unnamed = (0..)
            .map(|n| format!("md{n}"))
            .filter(|n| !given.contains(n));
        let mut arrays = Vec::new();
        for members in groups.into_values() {
            let first = &members[0];
            let name = match &first.name {
                Some(name) => md_name(name),
                None => unnamed.next().expect("an endless sequence"),
            };
            let device = Device::RaidArray { name: name.clone() };
            if let Some(fs_type) = filesystem_of(&first.fs) {
                let size_mib = members.iter().map(|m| m.size_mib).min().unwrap_or(0);
                self.check_filesystem_size(&first.path, fs_type, size_mib);
                self.add_filesystem(
                    device,
                    fs_type,
                    Purpose::Volume(first.path.clone()),
                    Some(&first.fs),
                );
            }
            arrays.push(RaidArrayPlan {
                name,
                level: "raid1",
                size_mib: members.iter().map(|m| m.size_mib).min().unwrap_or(0),
                config_path: first.path.clone(),
                members: members.into_iter().map(|m| m.device).collect(),
            });
        }
        arrays
    }

    fn volume_group(&mut self, path: &JsonPath, vg: &VolumeGroup) -> VolumeGroupPlan {
        let pvs = self.physical_volumes.remove(&vg.id).unwrap_or_default();
        let mut size_mib = 0;
        for pv in &pvs {
            match pv.size_mib.checked_sub(pv.metadata_mib) {
                Some(usable) if usable > 0 => size_mib += usable,
                _ => self.errors.push(PlanError::at(
                    &pv.path.key("size"),
                    format!(
                        "the physical volume is {} MiB, not more than its {} MiB of LVM metadata",
                        pv.size_mib, pv.metadata_mib
                    ),
                )),
            }
        }
        let mut plan = VolumeGroupPlan {
            name: vg.id.clone(),
            config_path: path.clone(),
            physical_volumes: pvs
                .into_iter()
                .map(|pv| PhysicalVolumePlan {
                    device: pv.device,
                    metadata_mib: pv.metadata_mib,
                })
                .collect(),
            size_mib,
            logical_volumes: Vec::new(),
        };
        let lv_paths: Vec<JsonPath> = (0..vg.volumes.len())
            .map(|j| path.key("volumes").index(j))
            .collect();
        let requests: Vec<Request<'_>> = vg
            .volumes
            .iter()
            .zip(&lv_paths)
            .map(|(lv, path)| Request {
                path,
                size: lv.fs.size,
            })
            .collect();
        let container = format!("volume group {}", quote(&vg.id));
        let sizes = match allocate(&requests, size_mib * MIB, size_mib, &container) {
            Ok(sizes) => sizes,
            Err(errors) => {
                self.errors.extend(errors);
                return plan;
            }
        };
        for ((lv, lv_path), size_mib) in vg.volumes.iter().zip(&lv_paths).zip(sizes) {
            plan.logical_volumes.push(LogicalVolumePlan {
                name: lv.name.clone(),
                size_mib,
                config_path: lv_path.clone(),
            });
            if let Some(fs_type) = filesystem_of(&lv.fs) {
                self.check_filesystem_size(lv_path, fs_type, size_mib);
                let device = Device::LogicalVolume {
                    vg: vg.id.clone(),
                    lv: lv.name.clone(),
                };
                self.add_filesystem(
                    device,
                    fs_type,
                    Purpose::Volume(lv_path.clone()),
                    Some(&lv.fs),
                );
            }
        }
        plan
    }

    fn images(&self, config: &ProvisionConfig) -> Vec<ImagePlan> {
        config
            .images
            .iter()
            .enumerate()
            .map(|(i, image)| {
                let own: Vec<&FilesystemPlan> = self
                    .filesystems
                    .iter()
                    .filter(|fs| fs.images.contains(&image.name))
                    .collect();
                let mut mounts: Vec<MountPlan> = own
                    .iter()
                    .filter_map(|fs| match &fs.mount {
                        Mount::Path(mount_point) => Some(MountPlan {
                            mount_point: mount_point.clone(),
                            device: fs.device.clone(),
                            fs_type: fs.fs_type,
                            uuid: fs.uuid.clone(),
                        }),
                        Mount::Swap | Mount::None => None,
                    })
                    .collect();
                mounts.sort_by(|a, b| {
                    (mount_depth(&a.mount_point), &a.mount_point)
                        .cmp(&(mount_depth(&b.mount_point), &b.mount_point))
                });
                let root_uuid = uuid_at(&mounts, "/");
                let boot = uuid_at(&mounts, "/boot");
                ImagePlan {
                    name: image.name.clone(),
                    config_path: JsonPath::root().key("images").index(i),
                    grub_menu_id: format!("multiboot-{}", image.name),
                    separate_boot: boot.is_some(),
                    boot_uuid: boot.or_else(|| root_uuid.clone()),
                    root_uuid,
                    kernel_params: config.kernel_params.clone(),
                    fstab: fstab(&image.name, &own),
                    mounts,
                }
            })
            .collect()
    }

    fn boot(
        &mut self,
        config: &ProvisionConfig,
        first_disk: &DiskPlan,
        images: &[ImagePlan],
    ) -> Option<BootPlan> {
        let uuid_of = |purpose: Purpose| {
            self.filesystems
                .iter()
                .find(|fs| fs.purpose == purpose)
                .map(|fs| fs.uuid.clone())
        };
        let multiboot_uuid = uuid_of(Purpose::Multiboot)?;
        let esp_uuid = uuid_of(Purpose::Esp)?;
        let entries: Vec<String> = images
            .iter()
            .filter(|image| image.root_uuid.is_some())
            .map(|image| image.name.clone())
            .collect();
        let wanted = &config.boot_image().name;
        let Some(default_image) = entries
            .iter()
            .find(|name| *name == wanted)
            .or_else(|| entries.first())
            .cloned()
        else {
            self.errors.push(PlanError::at(
                &JsonPath::root().key("images"),
                "no image has a volume mounted at \"/\", so none can boot",
            ));
            return None;
        };
        Some(BootPlan {
            multiboot_uuid,
            esp_uuid,
            bios_disk: first_disk.name.clone(),
            bios_disk_path: first_disk.path.clone(),
            default_image,
            entries,
        })
    }
}

/// `md0`, `/dev/md0` -> `md0`; `md/data` -> `md/data`.
fn md_name(name: &str) -> String {
    name.strip_prefix("/dev/").unwrap_or(name).to_string()
}

/// The fstab of image `name` from its filesystems: mounted ones by mount-point depth, then
/// swap areas, each by UUID; volumes with `fstab_enabled: false` are left out.
fn fstab(name: &str, filesystems: &[&FilesystemPlan]) -> String {
    let mut mounted: Vec<(&str, &FilesystemPlan)> = filesystems
        .iter()
        .filter(|fs| fs.fstab_enabled)
        .filter_map(|fs| match &fs.mount {
            Mount::Path(mount_point) => Some((mount_point.as_str(), *fs)),
            Mount::Swap | Mount::None => None,
        })
        .collect();
    mounted.sort_by(|a, b| (mount_depth(a.0), a.0).cmp(&(mount_depth(b.0), b.0)));
    let mut text = format!("# /etc/fstab of image {name}, written by deployer\n");
    for (mount_point, fs) in mounted {
        let pass = if mount_point == "/" { 1 } else { 2 };
        text.push_str(&format!(
            "UUID={} {mount_point} {} {} 0 {pass}\n",
            fs.uuid,
            fs.fs_type.as_str(),
            fs.fstab_options
        ));
    }
    for fs in filesystems
        .iter()
        .filter(|fs| fs.fstab_enabled && fs.mount == Mount::Swap)
    {
        text.push_str(&format!(
            "UUID={} none swap {} 0 0\n",
            fs.uuid, fs.fstab_options
        ));
    }
    text
}

#[cfg(test)]
mod tests;
