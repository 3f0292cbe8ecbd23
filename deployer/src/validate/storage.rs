//! `partitions[]`: disks and their volumes, volume groups and their logical volumes.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::checker::{Checked, Checker, Invalid, Keys, RaidFirst};
use super::fs_volume::FsKind;
use super::keys::{
    BOOT_KEYS, DISK_ID_KEYS, DISK_IGNORED, DISK_KEYS, DISK_VOLUME_TYPES, LVM_META_POOL_KEYS,
    LV_KEYS, PARTITION_KEYS, PV_IGNORED, PV_KEYS, RAID_IGNORED, RAID_KEYS, VG_KEYS,
};
use super::syntax::{check_lvm_name, is_guid, is_md_name};
use super::JsonPath;
use crate::config::{
    BootVolume, Disk, DiskId, DiskIdKind, DiskVolume, FileSystem, FsVolume, LogicalVolume, Mount,
    Partition, PhysicalVolume, Raid, StorageEntry, VolumeGroup,
};
use crate::size::{Size, SizeError, MIB};
use crate::text::{closest, did_you_mean};
use crate::text::{format_percent, quote};

/// Space bookkeeping for one disk or volume group.
pub(super) struct Tally {
    pub(super) remaining: Option<JsonPath>,
    pub(super) percent: u32,
}

impl Checker {
    /// A volume's required `size`, counted into its disk's or volume group's tally.
    pub(super) fn volume_size(
        &mut self,
        map: &Map<String, Value>,
        path: &JsonPath,
        tally: &mut Tally,
        container: &str,
    ) -> Checked<Size> {
        let size = self.opt_size(map, "size", path)?.ok_or(Invalid)?;
        match size {
            Size::Remaining => {
                if let Some(first) = &tally.remaining {
                    let message = format!(
                        "only one volume per {container} may use \"remaining\"; \
                         {first} already does"
                    );
                    return Err(self.fail(&path.key("size"), message));
                }
                tally.remaining = Some(path.clone());
            }
            Size::Percent(hundredths) => tally.percent += hundredths,
            Size::Bytes(_) => {}
        }
        Ok(size)
    }

    pub(super) fn check_percent_total(&mut self, tally: &Tally, path: &JsonPath, container: &str) {
        if tally.percent > 10_000 {
            self.fail(
                path,
                format!(
                    "the percentages of this {container}'s volumes add up to {}, more than 100%",
                    format_percent(tally.percent)
                ),
            );
        }
    }

    pub(super) fn partitions(
        &mut self,
        value: Option<&Value>,
        path: &JsonPath,
    ) -> Checked<Vec<StorageEntry>> {
        let Some(value) = value else {
            self.mounts_incomplete = true;
            return Err(Invalid);
        };
        let list = self
            .array(value, path)
            .inspect_err(|_| self.mounts_incomplete = true)?;
        let mut entries = Vec::new();
        let mut any_disk = false;
        for (i, item) in list.iter().enumerate() {
            let at = path.index(i);
            entries.push(self.storage_entry(item, &at, &mut any_disk));
        }
        if !any_disk {
            self.mounts_incomplete = true;
            self.fail(path, "at least one \"disk\" entry is required");
        }
        entries.into_iter().collect()
    }

    fn storage_entry(
        &mut self,
        value: &Value,
        path: &JsonPath,
        any_disk: &mut bool,
    ) -> Checked<StorageEntry> {
        let map = self.object(value, path);
        let map = self.unreadable_unless(map)?;
        let kind = self.entry_type(map, path, &["disk", "vg"], &[]);
        let kind = self.unreadable_unless(kind)?;
        match kind {
            "disk" => {
                *any_disk = true;
                self.disk(map, path).map(StorageEntry::Disk)
            }
            _ => self.volume_group(map, path).map(StorageEntry::VolumeGroup),
        }
    }

    fn disk(&mut self, map: &Map<String, Value>, path: &JsonPath) -> Checked<Disk> {
        self.check_keys(
            map,
            path,
            &Keys {
                known: DISK_KEYS,
                required: &["type", "id", "volumes"],
                ignored: DISK_IGNORED,
                hints: &[],
            },
        );
        let id = match map.get("id") {
            Some(id) => self.disk_id(id, &path.key("id"), path),
            None => Err(Invalid),
        };
        let name = self.opt_text(map, "name", path);
        let size = self.opt_bytes(map, "size", path, "a disk's size");
        let volumes_at = path.key("volumes");
        let list = match map.get("volumes") {
            Some(value) => self.array(value, &volumes_at),
            None => Err(Invalid),
        };
        let mut volumes = Vec::new();
        if let Ok(list) = list {
            let mut tally = Tally {
                remaining: None,
                percent: 0,
            };
            let mut boot: Option<JsonPath> = None;
            for (j, item) in list.iter().enumerate() {
                let at = volumes_at.index(j);
                if self.skipped_for_zero_size(item, &at) {
                    continue;
                }
                match self.disk_volume(item, &at, &mut tally, &mut boot) {
                    Ok(None) => {}
                    Ok(Some(volume)) => volumes.push(Ok((j, volume))),
                    Err(Invalid) => volumes.push(Err(Invalid)),
                }
            }
            self.check_percent_total(&tally, &volumes_at, "disk");
        } else {
            self.mounts_incomplete = true;
            self.lvm_incomplete = true;
        }
        let volumes: Checked<Vec<(usize, DiskVolume)>> = volumes.into_iter().collect();
        list?;
        let (config_index, volumes) = volumes?.into_iter().unzip();
        Ok(Disk {
            id: id?,
            name: name?,
            size: size?,
            volumes,
            config_index,
        })
    }

    fn disk_id(&mut self, value: &Value, path: &JsonPath, disk: &JsonPath) -> Checked<DiskId> {
        let map = self.object(value, path)?;
        self.check_keys(
            map,
            path,
            &Keys {
                known: DISK_ID_KEYS,
                required: &["type", "value"],
                ignored: &[],
                hints: &[],
            },
        );
        let kind = match self.opt_str(map, "type", path) {
            Ok(Some("name")) => Ok(DiskIdKind::Name),
            Ok(Some("path")) => Ok(DiskIdKind::Path),
            Ok(Some("scsi")) => Ok(DiskIdKind::Scsi),
            Ok(Some(other)) => {
                let message = format!(
                    "unknown disk id type {}{}; expected one of: name, path, scsi",
                    quote(other),
                    did_you_mean(closest(other, ["name", "path", "scsi"]))
                );
                Err(self.fail(&path.key("type"), message))
            }
            Ok(None) | Err(Invalid) => Err(Invalid),
        };
        let value = self.opt_str(map, "value", path)?.ok_or(Invalid)?;
        let at = path.key("value");
        if value.is_empty() {
            return Err(self.fail(&at, "the disk id is empty"));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(self.fail(
                &at,
                format!("{} contains whitespace or control characters", quote(value)),
            ));
        }
        let kind = kind?;
        let valid = match kind {
            DiskIdKind::Scsi => {
                let parts: Vec<&str> = value.split(':').collect();
                parts.len() == 4
                    && parts
                        .iter()
                        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
            }
            DiskIdKind::Name | DiskIdKind::Path => !value.split('/').any(|c| c == ".."),
        };
        if !valid {
            let message = match kind {
                DiskIdKind::Scsi => format!(
                    "{} is not a SCSI address HOST:CHANNEL:TARGET:LUN such as \"6:1:0:0\"",
                    quote(value)
                ),
                DiskIdKind::Name | DiskIdKind::Path => {
                    format!("{} has a \"..\" component", quote(value))
                }
            };
            return Err(self.fail(&at, message));
        }
        let key = value.strip_prefix("/dev/").unwrap_or(value).to_string();
        if let Some(first) = self.disk_ids.get(&key) {
            let message = format!("disk {} is already defined at {first}", quote(value));
            return Err(self.fail(&at, message));
        }
        self.disk_ids.insert(key, disk.clone());
        Ok(DiskId {
            kind,
            value: value.to_string(),
        })
    }

    fn disk_volume(
        &mut self,
        value: &Value,
        path: &JsonPath,
        tally: &mut Tally,
        boot: &mut Option<JsonPath>,
    ) -> Checked<Option<DiskVolume>> {
        let map = self.object(value, path);
        let map = self.unreadable_unless(map)?;
        let kind = self.entry_type(
            map,
            path,
            DISK_VOLUME_TYPES,
            &[(
                "lv",
                "\"lv\" volumes belong in a \"vg\" entry of partitions[], not on a disk",
            )],
        );
        match self.unreadable_unless(kind)? {
            "partition" => {
                self.check_keys(
                    map,
                    path,
                    &Keys {
                        known: PARTITION_KEYS,
                        required: &["type", "size", "mount"],
                        ignored: &[],
                        hints: &[],
                    },
                );
                let fs = self.fs_volume(map, path, FsKind::Partition, tally, "disk");
                let name = match self.opt_text(map, "name", path) {
                    Ok(Some(name)) if name.encode_utf16().count() > 36 => Err(self.fail(
                        &path.key("name"),
                        format!(
                            "GPT partition name {} is longer than 36 characters",
                            quote(&name)
                        ),
                    )),
                    other => other,
                };
                let guid = self.partition_guid(map, path);
                Ok(Some(DiskVolume::Partition(Partition {
                    fs: fs?,
                    name: name?,
                    partition_guid: guid?,
                })))
            }
            "raid" => {
                self.check_keys(
                    map,
                    path,
                    &Keys {
                        known: RAID_KEYS,
                        required: &["type", "size", "mount"],
                        ignored: RAID_IGNORED,
                        hints: &[],
                    },
                );
                let fs = self.fs_volume(map, path, FsKind::Raid, tally, "disk");
                let name = match self.opt_str(map, "name", path) {
                    Ok(Some(name)) if !is_md_name(name) => Err(self.fail(
                        &path.key("name"),
                        format!(
                            "md device name {} is not \"mdN\" or \"md/NAME\" \
                             (optionally under \"/dev/\")",
                            quote(name)
                        ),
                    )),
                    other => other.map(|name| name.map(str::to_string)),
                };
                if let (Ok(fs), Ok(name)) = (&fs, &name) {
                    self.raid_member(fs, name, path);
                }
                Ok(Some(DiskVolume::Raid(Raid {
                    fs: fs?,
                    name: name?,
                })))
            }
            "pv" => {
                self.check_keys(
                    map,
                    path,
                    &Keys {
                        known: PV_KEYS,
                        required: &["type", "size", "vg"],
                        ignored: PV_IGNORED,
                        hints: &[],
                    },
                );
                let size = self.volume_size(map, path, tally, "disk");
                let vg = match self.opt_str(map, "vg", path) {
                    Ok(Some(vg)) => {
                        self.pv_refs.push((path.key("vg"), vg.to_string()));
                        Ok(vg.to_string())
                    }
                    Ok(None) | Err(Invalid) => {
                        self.lvm_incomplete = true;
                        Err(Invalid)
                    }
                };
                let meta = match self.opt_bytes(map, "lvm_meta_size", path, "lvm_meta_size") {
                    Ok(Some(bytes)) if bytes < 10 * MIB => Err(self.fail(
                        &path.key("lvm_meta_size"),
                        "lvm_meta_size must be at least 10 MiB",
                    )),
                    other => other,
                };
                let keep_data = self.opt_bool(map, "keep_data", path);
                keep_data?;
                Ok(Some(DiskVolume::Pv(PhysicalVolume {
                    vg: vg?,
                    size: size?,
                    lvm_meta_size: meta?,
                })))
            }
            "boot" => {
                self.check_keys(
                    map,
                    path,
                    &Keys {
                        known: BOOT_KEYS,
                        required: &["type", "size"],
                        ignored: &[],
                        hints: &[],
                    },
                );
                if let Some(first) = boot {
                    let message =
                        format!("only one \"boot\" volume per disk; {first} already is one");
                    self.fail(&path.key("type"), message);
                } else {
                    *boot = Some(path.clone());
                }
                let size = self.volume_size(map, path, tally, "disk");
                let keep_data = self.opt_bool(map, "keep_data", path);
                Ok(Some(DiskVolume::Boot(BootVolume {
                    size: size?,
                    keep_data: keep_data?.unwrap_or(true),
                })))
            }
            _ => {
                self.check_keys(
                    map,
                    path,
                    &Keys {
                        known: LVM_META_POOL_KEYS,
                        required: &["type", "size"],
                        ignored: &[],
                        hints: &[],
                    },
                );
                self.opt_size(map, "size", path)?;
                // bareon/drivers/data/ironic.py (StorageParser._parse_disk): "unsupported
                // but allowed by data-schema type", parsed to nothing.
                self.warn(
                    &path.key("type"),
                    "ignored: Bareon makes no partition for an lvm_meta_pool, nor does the \
                     deployer",
                );
                Ok(None)
            }
        }
    }

    /// A volume whose size is zero ("0", "0 MiB", "0%"): Bareon skips it
    /// (`Ironic._get_partition_scheme` and `_process_vg` in bareon/drivers/data/ironic.py
    /// before commit 0d52a37; `Nailgun.parse_partition_scheme`), and so does the deployer,
    /// with a warning, checking nothing else of it.
    fn skipped_for_zero_size(&mut self, item: &Value, path: &JsonPath) -> bool {
        let zero = item
            .get("size")
            .and_then(Value::as_str)
            .is_some_and(|size| Size::parse(size) == Err(SizeError::Zero));
        if zero {
            self.warn(
                &path.key("size"),
                "skipped: a volume of size 0 makes nothing, as in Bareon",
            );
        }
        zero
    }

    fn partition_guid(
        &mut self,
        map: &Map<String, Value>,
        path: &JsonPath,
    ) -> Checked<Option<String>> {
        let Some(guid) = self.opt_str(map, "partition_guid", path)? else {
            return Ok(None);
        };
        let at = path.key("partition_guid");
        if !is_guid(guid) {
            return Err(self.fail(
                &at,
                format!(
                    "{} is not a GUID such as \"0fc63daf-8483-4772-8e79-3d69d8477de4\"",
                    quote(guid)
                ),
            ));
        }
        let guid = guid.to_ascii_lowercase();
        if let Some(first) = self.guids.get(&guid) {
            let message = format!("partition GUID {} is already used by {first}", quote(&guid));
            return Err(self.fail(&at, message));
        }
        self.guids.insert(guid.clone(), path.clone());
        Ok(Some(guid))
    }

    /// Raid members with the same mount point make one md array: they must agree.
    fn raid_member(&mut self, fs: &FsVolume, name: &Option<String>, path: &JsonPath) {
        let key = match &fs.mount {
            Mount::Path(p) => p.clone(),
            Mount::Swap => "swap".to_string(),
            Mount::None => return,
        };
        let mut images = fs.images.clone();
        images.sort();
        let Some(first) = self.raids.get(&key) else {
            if let Some(name) = name {
                let device = name.strip_prefix("/dev/").unwrap_or(name);
                match self.md_names.get(device) {
                    Some((other, other_key)) => {
                        let message = format!(
                            "md device {} is already the array of the raid members with mount \
                             {} ({other}): each array needs a name of its own",
                            quote(device),
                            quote(other_key)
                        );
                        self.fail(&path.key("name"), message);
                    }
                    None => {
                        self.md_names
                            .insert(device.to_string(), (path.clone(), key.clone()));
                    }
                }
            }
            self.raids.insert(
                key,
                RaidFirst {
                    volume: path.clone(),
                    file_system: fs.file_system,
                    images,
                    name: name.clone(),
                },
            );
            return;
        };
        let show_fs =
            |fs: Option<FileSystem>| fs.map_or("none given".to_string(), |f| quote(f.as_str()));
        let mut problems = Vec::new();
        if first.file_system != fs.file_system {
            problems.push((
                "file_system",
                format!(
                    "file_system {} here, {} there",
                    show_fs(fs.file_system),
                    show_fs(first.file_system)
                ),
            ));
        }
        if first.images != images {
            problems.push((
                "images",
                format!(
                    "images [{}] here, [{}] there",
                    images.join(", "),
                    first.images.join(", ")
                ),
            ));
        }
        if &first.name != name {
            let show = |n: &Option<String>| n.as_deref().map_or("none given".to_string(), quote);
            problems.push((
                "name",
                format!("name {} here, {} there", show(name), show(&first.name)),
            ));
        }
        let first = first.volume.clone();
        for (field, what) in problems {
            self.fail(
                &path.key(field),
                format!(
                    "raid members with mount {} form one array and must agree with {first}: {what}",
                    quote(&key)
                ),
            );
        }
    }

    fn volume_group(&mut self, map: &Map<String, Value>, path: &JsonPath) -> Checked<VolumeGroup> {
        self.check_keys(
            map,
            path,
            &Keys {
                known: VG_KEYS,
                required: &["type", "id", "volumes"],
                ignored: &[],
                hints: &[],
            },
        );
        let id_at = path.key("id");
        let id = match self.opt_str(map, "id", path) {
            Ok(Some(id)) => match check_lvm_name(id, "volume group name") {
                Err(message) => Err(self.fail(&id_at, message)),
                Ok(()) => match self.vg_ids.iter().find(|(_, known)| known == id) {
                    Some((first, _)) => {
                        let message =
                            format!("volume group {} is already defined at {first}", quote(id));
                        Err(self.fail(&id_at, message))
                    }
                    None => {
                        self.vg_ids.push((id_at.clone(), id.to_string()));
                        Ok(id.to_string())
                    }
                },
            },
            Ok(None) | Err(Invalid) => Err(Invalid),
        };
        if id.is_err() {
            self.lvm_incomplete = true;
        }
        let label = self.opt_text(map, "label", path);
        let min_size = map
            .get("min_size")
            .map(|value| {
                let at = path.key("min_size");
                self.typed(value, &at, "a non-negative integer", Value::as_u64)
            })
            .transpose();
        let allocate = self.opt_str(map, "_allocate_size", path);
        let keep_data = self.opt_bool(map, "keep_data", path);
        let volumes_at = path.key("volumes");
        let list = match map.get("volumes") {
            Some(value) => self.array(value, &volumes_at),
            None => Err(Invalid),
        };
        let mut volumes = Vec::new();
        if let Ok(list) = list {
            let mut tally = Tally {
                remaining: None,
                percent: 0,
            };
            let mut names: HashMap<String, JsonPath> = HashMap::new();
            for (j, item) in list.iter().enumerate() {
                let at = volumes_at.index(j);
                if !self.skipped_for_zero_size(item, &at) {
                    let volume = self.logical_volume(item, &at, &mut tally, &mut names);
                    volumes.push(volume.map(|volume| (j, volume)));
                }
            }
            self.check_percent_total(&tally, &volumes_at, "volume group");
        } else {
            self.mounts_incomplete = true;
        }
        let volumes: Checked<Vec<(usize, LogicalVolume)>> = volumes.into_iter().collect();
        list?;
        label?;
        min_size?;
        allocate?;
        keep_data?;
        let (config_index, volumes) = volumes?.into_iter().unzip();
        Ok(VolumeGroup {
            id: id?,
            volumes,
            config_index,
        })
    }

    fn logical_volume(
        &mut self,
        value: &Value,
        path: &JsonPath,
        tally: &mut Tally,
        names: &mut HashMap<String, JsonPath>,
    ) -> Checked<LogicalVolume> {
        let map = self.object(value, path);
        let map = self.unreadable_unless(map)?;
        let misplaced =
            "a vg holds only \"lv\" volumes; put partitions, raid members and pvs on a disk";
        let kind = self.entry_type(
            map,
            path,
            &["lv"],
            &[
                ("partition", misplaced),
                ("raid", misplaced),
                ("pv", misplaced),
                ("boot", misplaced),
                ("lvm_meta_pool", misplaced),
            ],
        );
        self.unreadable_unless(kind)?;
        self.check_keys(
            map,
            path,
            &Keys {
                known: LV_KEYS,
                required: &["type", "size", "name"],
                ignored: &[],
                hints: &[],
            },
        );
        let name = match self.opt_str(map, "name", path) {
            Ok(Some(name)) => {
                let at = path.key("name");
                match check_lvm_name(name, "logical volume name") {
                    Err(message) => Err(self.fail(&at, message)),
                    Ok(()) => match names.get(name) {
                        Some(first) => {
                            let message = format!(
                                "logical volume {} is already defined at {first}",
                                quote(name)
                            );
                            Err(self.fail(&at, message))
                        }
                        None => {
                            names.insert(name.to_string(), path.clone());
                            Ok(name.to_string())
                        }
                    },
                }
            }
            Ok(None) | Err(Invalid) => Err(Invalid),
        };
        let fs = self.fs_volume(map, path, FsKind::Lv, tally, "volume group");
        Ok(LogicalVolume {
            name: name?,
            fs: fs?,
        })
    }
}
