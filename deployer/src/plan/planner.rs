use std::collections::BTreeMap;

use crate::config::{
    Disk, DiskVolume, FileSystem, FsVolume, Mount, PartitionsPolicy, ProvisionConfig, StorageEntry,
    VolumeGroup,
};
use crate::size::{Size, MIB};
use crate::text::quote;
use crate::validate::JsonPath;
use shared::layout::{ESP_LABEL, MULTIBOOT_LABEL};

use super::allocate::{allocate, requests, volume_paths, Request};
use super::bareon::{self, Geometry, Span};
use super::existing::keep_existing;
use super::ids::{grub_menu_ids, IdSource};
use super::input::DiskInput;
use super::layout::layout;
use super::model::*;
use super::{check_disk_names, disk_entries, names_disk, PlanError};

/// Lays the config out on `disks` in `layout`, taking every UUID from `ids`. Returns
/// every error found: disks missing or unknown, volumes that do not fit (with the
/// shortfall).
pub(super) fn plan_with(
    config: &ProvisionConfig,
    disks: &[DiskInput],
    layout: Layout,
    ids: &mut impl IdSource,
) -> Result<Plan, Vec<PlanError>> {
    let errors = check_disk_names(config, disks.iter().map(|d| d.name.as_str()));
    if !errors.is_empty() {
        return Err(errors);
    }
    let operating_systems = bound_images(config);
    if layout == Layout::Bareon && operating_systems < 2 {
        return Err(vec![PlanError::at(
            &JsonPath::root().key("images"),
            format!(
                "--layout bareon needs at least two images with volumes (here \
                 {operating_systems}): Bareon makes its multiboot partition only then, and \
                 with one image installs that image's own GRUB, which the deployer does \
                 not do; use --layout default"
            ),
        )]);
    }
    let mut planner = Planner {
        ids,
        layout,
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
    let boot = planner.boot(config, &disk_plans, &images);
    if !planner.errors.is_empty() {
        return Err(planner.errors);
    }
    let mut plan = Plan {
        disks: disk_plans,
        raid_arrays,
        volume_groups,
        filesystems: planner.filesystems,
        images,
        boot: boot.expect("no error, so a boot layout"),
        needs_device_mapper: planner.needs_device_mapper,
        needs_md: planner.needs_md,
        partitions_policy: config.partitions_policy,
        rsync_flags: config.rsync_flags.clone(),
        layout,
    };
    let errors = keep_existing(&mut plan, disks);
    if errors.is_empty() {
        Ok(plan)
    } else {
        Err(errors)
    }
}

/// How many images some volume belongs to: Bareon's operating systems
/// (`bareon/drivers/data/ironic.py` `Ironic._collect_fs_bindings`), more than one of
/// which makes it a multiboot deployment.
pub(super) fn bound_images(config: &ProvisionConfig) -> usize {
    let mut names: Vec<&str> = Vec::new();
    let disk_volumes = config.disks().flat_map(|disk| &disk.volumes);
    let disk_fs = disk_volumes.filter_map(|volume| match volume {
        DiskVolume::Partition(p) => Some(&p.fs),
        DiskVolume::Raid(r) => Some(&r.fs),
        _ => None,
    });
    let lv_fs = config
        .volume_groups()
        .flat_map(|vg| vg.volumes.iter().map(|lv| &lv.fs));
    for fs in disk_fs.chain(lv_fs) {
        for name in &fs.images {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    names.len()
}

/// The state of one planning run.
struct Planner<'a, I: IdSource> {
    ids: &'a mut I,
    layout: Layout,
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
    metadata_mib: Option<u64>,
    path: JsonPath,
}

/// Where a partition goes, in whole MiB, and its exact length when not whole MiB.
struct Place {
    start_mib: u64,
    size_mib: u64,
    size_sectors: Option<u64>,
}

impl Place {
    fn of(span: Span, sector_size: u32) -> Place {
        let per_mib = MIB / u64::from(sector_size);
        Place {
            start_mib: span.start / per_mib,
            size_mib: span.length / per_mib,
            size_sectors: (!span.length.is_multiple_of(per_mib)).then_some(span.length),
        }
    }
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
        DiskVolume::Pv(_) => (PartitionKind::LinuxLvm, None),
        DiskVolume::Boot(_) => (PartitionKind::BiosBoot, None),
    }
}

/// A vfat volume mounted where EFI system partitions go.
fn is_esp_mount(mount: &Mount) -> bool {
    matches!(mount, Mount::Path(path) if path == "/boot/efi" || path == "/efi")
}

/// The filesystem a volume gets: the configured one, else xfs when it is mounted, as in
/// Bareon (`bareon/objects/partition/fs.py`, `FileSystem.__init__`; deployment.rst: "xfs
/// by default").
fn filesystem_of(fs: &FsVolume) -> Option<FileSystem> {
    match (&fs.mount, fs.file_system) {
        (_, Some(fs)) => Some(fs),
        (Mount::Path(_), None) => Some(FileSystem::Xfs),
        (Mount::Swap, None) => Some(FileSystem::Swap),
        (Mount::None, None) => None,
    }
}

pub(super) fn volume_size(volume: &DiskVolume) -> Size {
    match volume {
        DiskVolume::Partition(p) => p.fs.size,
        DiskVolume::Raid(r) => r.fs.size,
        DiskVolume::Pv(pv) => pv.size,
        DiskVolume::Boot(b) => b.size,
    }
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
    /// after the disk was partitioned. `omitted`: the config gives no `file_system`, so
    /// the message says where the file system came from.
    fn check_filesystem_size(
        &mut self,
        volume_path: &JsonPath,
        fs_type: FileSystem,
        omitted: bool,
        size_mib: u64,
    ) {
        let min_mib = fs_type.min_size_mib();
        if size_mib < min_mib {
            let name = fs_type.as_str();
            let message = if omitted {
                format!(
                    "{size_mib} MiB is too small for {name}, the file system of a mounted \
                     volume without \"file_system\" (as in Bareon): mkfs.{name} needs at least \
                     {min_mib} MiB; give \"file_system\" (such as \"ext4\") or more space"
                )
            } else {
                format!("{size_mib} MiB is too small for {name}: mkfs.{name} needs at least {min_mib} MiB")
            };
            self.errors
                .push(PlanError::at(&volume_path.key("size"), message));
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

    /// Appends a partition at `place`. In Bareon's layout, the partitions numbered 1 to 4
    /// are named `primary` unless the config names them (`block_device.py` `SGDisk.new`)
    /// and a vfat partition has the basic data type (`Partition._auto_guid_code`).
    fn push_partition<'p>(
        &mut self,
        partitions: &'p mut Vec<PartitionPlan>,
        place: Place,
        kind: PartitionKind,
        name: Option<String>,
        purpose: Purpose,
    ) -> &'p mut PartitionPlan {
        let number = u32::try_from(partitions.len() + 1).unwrap_or(u32::MAX);
        let (kind, name) = match self.layout {
            Layout::Default => (kind, name),
            Layout::Bareon => (
                match kind {
                    PartitionKind::EfiSystem => PartitionKind::MicrosoftBasicData,
                    kind => kind,
                },
                name.or_else(|| (number <= 4).then(|| "primary".to_owned())),
            ),
        };
        partitions.push(PartitionPlan {
            number,
            start_mib: place.start_mib,
            size_mib: place.size_mib,
            size_sectors: place.size_sectors,
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

    /// Appends one of the implicit partitions; returns its number. In Bareon's layout
    /// they are unnamed but for Bareon's `primary`.
    fn add_partition(
        &mut self,
        partitions: &mut Vec<PartitionPlan>,
        place: Place,
        kind: PartitionKind,
        name: &str,
    ) -> u32 {
        let name = match self.layout {
            Layout::Default => Some(name.to_owned()),
            Layout::Bareon => None,
        };
        let purpose = match kind {
            PartitionKind::BiosBoot => Purpose::BiosGrub,
            PartitionKind::EfiSystem => Purpose::Esp,
            _ => Purpose::Multiboot,
        };
        self.push_partition(partitions, place, kind, name, purpose)
            .number
    }

    fn disk(&mut self, path: &JsonPath, disk: &Disk, input: &DiskInput, first: bool) -> DiskPlan {
        let name = disk.id.value.clone();
        let sectors_per_mib = MIB / u64::from(input.sector_size);
        let mut plan = DiskPlan {
            name: name.clone(),
            config_path: path.clone(),
            path: input.path.clone(),
            size_bytes: input.size_bytes,
            sector_size: input.sector_size,
            first_usable_sector: FIRST_USABLE_MIB * sectors_per_mib,
            partitions: Vec::new(),
        };
        let volume_paths = volume_paths(path, &disk.config_index);
        let requests = requests(&volume_paths, &disk.volumes, volume_size);
        let places = match self.layout {
            Layout::Default => self.default_places(path, input, first, &requests, &mut plan),
            Layout::Bareon => self.bareon_places(path, input, first, &requests, &mut plan),
        };
        let places = match places {
            Ok(places) => places,
            Err(errors) => {
                self.errors.extend(errors);
                return plan;
            }
        };
        self.volumes(disk, &volume_paths, places, &mut plan);
        plan
    }

    /// The default layout: on the first disk the bios_grub partition, the ESP and the
    /// multiboot partition, then every volume in config order from the next MiB, the
    /// last MiB left for the backup GPT. Returns the volumes' places.
    fn default_places(
        &mut self,
        path: &JsonPath,
        input: &DiskInput,
        first: bool,
        requests: &[Request<'_>],
        plan: &mut DiskPlan,
    ) -> Result<Vec<Place>, Vec<PlanError>> {
        let name = &plan.name;
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
            return Err(vec![PlanError::at(
                path,
                format!(
                    "disk {} ({}) is {disk_mib} MiB, too small for {what} ({overhead} MiB)",
                    quote(name),
                    input.path.display()
                ),
            )]);
        }
        let mut next_mib = FIRST_USABLE_MIB;
        let mut place = |size_mib: u64| {
            let start_mib = next_mib;
            next_mib += size_mib;
            Place {
                start_mib,
                size_mib,
                size_sectors: None,
            }
        };
        if first {
            let disk = plan.name.clone();
            let device = |number| Device::Partition {
                disk: disk.clone(),
                number,
            };
            let partitions = &mut plan.partitions;
            self.add_partition(
                partitions,
                place(BIOS_GRUB_MIB),
                PartitionKind::BiosBoot,
                "bios_grub",
            );
            let esp =
                self.add_partition(partitions, place(ESP_MIB), PartitionKind::EfiSystem, "ESP");
            self.add_filesystem(device(esp), FileSystem::Vfat, Purpose::Esp, None);
            let multiboot = self.add_partition(
                partitions,
                place(MULTIBOOT_MIB),
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
        let container = format!("disk {}", quote(name));
        let sizes = allocate(requests, disk_mib - overhead, 1, &container)?;
        Ok(sizes.into_iter().map(place).collect())
    }

    /// Bareon's layout: a 24 MiB bios_grub partition at the head of every disk, then on
    /// the first the multiboot partition, then the volumes where Bareon puts them
    /// ([`bareon::place`]). Returns the volumes' places.
    fn bareon_places(
        &mut self,
        path: &JsonPath,
        input: &DiskInput,
        first: bool,
        requests: &[Request<'_>],
        plan: &mut DiskPlan,
    ) -> Result<Vec<Place>, Vec<PlanError>> {
        let container = format!("disk {}", quote(&plan.name));
        let Some(geometry) = Geometry::new(input.size_bytes, input.sector_size) else {
            return Err(vec![PlanError::at(
                path,
                format!("{container} is too small for the GPTs"),
            )]);
        };
        plan.first_usable_sector = geometry.first_usable;
        let service: &[u64] = if first {
            &[BAREON_BIOS_GRUB_MIB, MULTIBOOT_MIB]
        } else {
            &[BAREON_BIOS_GRUB_MIB]
        };
        let (service, spans) = bareon::place(geometry, service, requests, path, &container)?;
        let sector_size = input.sector_size;
        self.add_partition(
            &mut plan.partitions,
            Place::of(service[0], sector_size),
            PartitionKind::BiosBoot,
            "bios_grub",
        );
        if first {
            let multiboot = self.add_partition(
                &mut plan.partitions,
                Place::of(service[1], sector_size),
                PartitionKind::LinuxFilesystem,
                "multiboot",
            );
            let device = Device::Partition {
                disk: plan.name.clone(),
                number: multiboot,
            };
            self.add_filesystem(device, FileSystem::Ext4, Purpose::Multiboot, None);
        }
        Ok(spans
            .into_iter()
            .map(|span| Place::of(span, sector_size))
            .collect())
    }

    /// The configured volumes of `disk` at `places`: partitions, filesystems, md members
    /// and pvs.
    fn volumes(
        &mut self,
        disk: &Disk,
        volume_paths: &[JsonPath],
        places: Vec<Place>,
        plan: &mut DiskPlan,
    ) {
        let name = plan.name.clone();
        let device = |number| Device::Partition {
            disk: name.clone(),
            number,
        };
        for ((volume, volume_path), place) in disk.volumes.iter().zip(volume_paths).zip(places) {
            let size_mib = place.size_mib;
            let (kind, fs_type) = volume_layout(volume);
            let gpt_name = match volume {
                DiskVolume::Partition(p) => p.name.clone(),
                _ => None,
            };
            let partition = self.push_partition(
                &mut plan.partitions,
                place,
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
                        self.check_filesystem_size(
                            volume_path,
                            fs_type,
                            p.fs.file_system.is_none(),
                            size_mib,
                        );
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
                    // Bareon passes lvm_meta_size in whole MiB, and nothing without it
                    // (generic.py PartitionPolicyClean._handle_lvm, lvm.py pvcreate).
                    let metadata_mib = pv.lvm_meta_size.map(|bytes| bytes / MIB);
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
            }
        }
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
                self.check_filesystem_size(
                    &first.path,
                    fs_type,
                    first.fs.file_system.is_none(),
                    size_mib,
                );
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
                uuid: self.ids.array_uuid().to_string(),
                keep: false,
                size_mib: members.iter().map(|m| m.size_mib).min().unwrap_or(0),
                config_path: first.path.clone(),
                members: members.into_iter().map(|m| m.device).collect(),
            });
        }
        arrays
    }

    fn volume_group(&mut self, path: &JsonPath, vg: &VolumeGroup) -> VolumeGroupPlan {
        let pvs = self.physical_volumes.remove(&vg.id).unwrap_or_default();
        let mut physical_volumes = Vec::new();
        for pv in pvs {
            // Measured with LVM 2.03 (tests/lvm_sizes.rs): the first extent starts after
            // the metadata area on the next MiB (1 MiB by default, metadatasize + 1 MiB).
            let pe_start_mib = pv.metadata_mib.map_or(1, |mib| mib + 1);
            let extents = pv.size_mib.saturating_sub(pe_start_mib) / LVM_EXTENT_MIB;
            if extents == 0 {
                self.errors.push(PlanError::at(
                    &pv.path.key("size"),
                    format!(
                        "the physical volume is {} MiB: no {LVM_EXTENT_MIB} MiB extent fits \
                         after its {pe_start_mib} MiB of LVM label and metadata",
                        pv.size_mib
                    ),
                ));
            }
            physical_volumes.push(PhysicalVolumePlan {
                device: pv.device,
                metadata_mib: pv.metadata_mib,
                pe_start_mib,
                extents,
            });
        }
        let size_mib = physical_volumes.iter().map(|pv| pv.extents).sum::<u64>() * LVM_EXTENT_MIB;
        let mut plan = VolumeGroupPlan {
            name: vg.id.clone(),
            config_path: path.clone(),
            physical_volumes,
            size_mib,
            logical_volumes: Vec::new(),
            keep: false,
        };
        let lv_paths = volume_paths(path, &vg.config_index);
        let requests = requests(&lv_paths, &vg.volumes, |lv| lv.fs.size);
        let container = format!("volume group {}", quote(&vg.id));
        let sizes = match allocate(&requests, size_mib, LVM_EXTENT_MIB, &container) {
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
                self.check_filesystem_size(lv_path, fs_type, lv.fs.file_system.is_none(), size_mib);
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
        let ids = grub_menu_ids(config.images.iter().map(|image| image.name.as_str()));
        config
            .images
            .iter()
            .zip(ids)
            .enumerate()
            .map(|(i, (image, grub_menu_id))| ImagePlan {
                name: image.name.clone(),
                config_path: JsonPath::root().key("images").index(i),
                grub_menu_id,
                kernel_params: config.kernel_params.clone(),
                source: image.source.clone(),
                target: image.target.clone(),
                sha256: image.sha256.clone(),
                image_name: image.image_name.clone(),
                image_uuid: image.image_uuid.clone(),
            })
            .collect()
    }

    fn boot(
        &mut self,
        config: &ProvisionConfig,
        disks: &[DiskPlan],
        images: &[ImagePlan],
    ) -> Option<BootPlan> {
        let first_disk = &disks[0];
        if !self
            .filesystems
            .iter()
            .any(|fs| fs.purpose == Purpose::Multiboot)
        {
            return None;
        }
        let entries: Vec<String> = images
            .iter()
            .filter(|image| layout(&self.filesystems, &image.name).root_uuid.is_some())
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
            bios_disk: first_disk.name.clone(),
            bios_disk_path: first_disk.path.clone(),
            bios_disks: disks
                .iter()
                .filter(|disk| {
                    disk.partitions
                        .iter()
                        .any(|p| p.kind == PartitionKind::BiosBoot)
                })
                .map(|disk| disk.name.clone())
                .collect(),
            default_image,
            entries,
        })
    }
}

/// `md0`, `/dev/md0` -> `md0`; `md/data` -> `md/data`.
fn md_name(name: &str) -> String {
    name.strip_prefix("/dev/").unwrap_or(name).to_string()
}
