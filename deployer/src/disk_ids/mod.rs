//! `--resolve-disks`: each disk of the config that no `--disk` gives, found on this machine
//! through its `id` as Bareon's agent finds it. [`resolve_disks`] is pure: it matches the
//! ids against a [`Machine`], the block devices [`read`] takes from /sys and /dev.
//!
//! Bareon's rules (`bareon/utils/block_device.py`, `DeviceFinder`, which
//! `bareon/drivers/data/ironic.py` calls through `_disk_id`) are exact lookups, each
//! ignoring a leading `/dev/` of the value:
//! - `name`: the device's node, udev's `DEVNAME` (`sda`, `/dev/sda`);
//! - `path`: the device's node or one of its udev links (`DEVLINKS`), so
//!   `disk/by-path/...` or `/dev/disk/by-path/...`, `disk/by-id/...`; not `by-id/...`;
//! - `scsi`: the device whose `/sys/class/scsi_device/H:C:T:L/device/block` it is
//!   (`bareon/utils/hardware.py`, `dev_to_scsi_map`), the value `H:C:T:L` as written there.
//!
//! Unlike Bareon, which takes the last device a value names and fails later on one it
//! cannot partition, a value that names no device, several, a partition, a read-only or
//! an empty device, or the device of another disk is refused here with the reason.
//! Bareon's agent leaves out loop, nbd and ram devices; they count here (disk-image
//! backed nodes, the tests), as the flag is never implied.
//! The links are udev's under /dev/disk; without udev (no /dev/disk, as in the deploy
//! ramdisk) they are those [`udev::derived_links`] derives from sysfs.

pub mod read;
pub mod udev;

use std::path::PathBuf;

use serde::Serialize;

use crate::config::{DiskId, DiskIdKind, ProvisionConfig};
use crate::plan::{check_disk_names, disk_entries, names_disk, PlanError, Subject};
use crate::text::quote;
use crate::validate::JsonPath;

/// A device number, `(major, minor)`.
pub type DevNum = (u32, u32);

/// One block device of the machine, as its id is matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDevice {
    /// Its node under /dev, without `/dev/` (udev's `DEVNAME`): `sda`, `cciss/c0d0`.
    pub devname: String,
    pub devnum: DevNum,
    pub partition: bool,
    pub read_only: bool,
    /// Its size in 512-byte sectors.
    pub sectors: u64,
    /// Its SCSI address `H:C:T:L`, the name of its `/sys/class/scsi_device` entry.
    pub scsi: Option<String>,
    /// Its links under /dev/disk, relative to /dev: `disk/by-id/virtio-serial1`.
    pub links: Vec<String>,
}

/// Where the links of the devices come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// /dev/disk, as udev made it.
    Udev,
    /// No /dev/disk: derived from sysfs ([`udev::derived_links`]).
    Derived,
}

/// The block devices of a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    pub devices: Vec<BlockDevice>,
    pub links: Links,
}

/// A `--disk NAME=PATH` of the command line: NAME, and the device number of PATH when it is
/// a block device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenDisk {
    pub name: String,
    pub devnum: Option<DevNum>,
}

/// A disk found through its id: the config calls it `name` (its id value) and it is `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolved {
    pub name: String,
    pub kind: DiskIdKind,
    pub path: PathBuf,
}

/// Finds every disk of `config` that `given` does not name on `machine`, in config order;
/// or every reason why not, with the errors of `given`'s NAMEs that name no disk of the
/// config or one twice.
pub fn resolve_disks(
    config: &ProvisionConfig,
    given: &[GivenDisk],
    machine: &Machine,
) -> Result<Vec<Resolved>, Vec<PlanError>> {
    let mut errors: Vec<PlanError> =
        check_disk_names(config, given.iter().map(|disk| disk.name.as_str()))
            .into_iter()
            .filter(|error| matches!(error.subject, Subject::Disk(_)))
            .collect();
    let mut resolved: Vec<(JsonPath, &BlockDevice, Resolved)> = Vec::new();
    for (path, disk) in disk_entries(config) {
        if given.iter().any(|g| names_disk(&g.name, &disk.id.value)) {
            continue;
        }
        let at = path.key("id");
        let fail = |why: String| PlanError {
            subject: Subject::Path(at.clone()),
            message: format!(
                "--resolve-disks: {} id {}: {why}",
                kind_name(disk.id.kind),
                quote(&disk.id.value)
            ),
        };
        let device = match find(&disk.id, machine) {
            Ok(device) => device,
            Err(why) => {
                errors.push(fail(why));
                continue;
            }
        };
        let node = dev_path(device);
        let shown = node.display();
        let refused = if device.partition {
            Some(format!("{shown} is a partition, not a whole disk"))
        } else if device.read_only {
            Some(format!("{shown} is read-only"))
        } else if device.sectors == 0 {
            Some(format!(
                "{shown} is empty (0 bytes: no medium, or nothing attached)"
            ))
        } else if let Some(other) = given.iter().find(|g| g.devnum == Some(device.devnum)) {
            Some(format!(
                "it is {shown}, which --disk {} gives already",
                other.name
            ))
        } else {
            resolved
                .iter()
                .find(|(_, other, _)| other.devnum == device.devnum)
                .map(|(other_at, _, _)| format!("it is {shown}, as {other_at} is"))
        };
        match refused {
            Some(why) => errors.push(fail(why)),
            None => resolved.push((
                at,
                device,
                Resolved {
                    name: disk.id.value.clone(),
                    kind: disk.id.kind,
                    path: node,
                },
            )),
        }
    }
    if errors.is_empty() {
        Ok(resolved.into_iter().map(|(_, _, found)| found).collect())
    } else {
        Err(errors)
    }
}

/// The id's type as the config writes it.
pub fn kind_name(kind: DiskIdKind) -> &'static str {
    match kind {
        DiskIdKind::Name => "name",
        DiskIdKind::Path => "path",
        DiskIdKind::Scsi => "scsi",
    }
}

/// `/dev/DEVNAME`.
fn dev_path(device: &BlockDevice) -> PathBuf {
    PathBuf::from("/dev").join(&device.devname)
}

/// The one device `id` names, or why there is none.
fn find<'a>(id: &DiskId, machine: &'a Machine) -> Result<&'a BlockDevice, String> {
    // Bareon's `_cut_prefix(value, "/dev/")`.
    let value = id.value.strip_prefix("/dev/").unwrap_or(&id.value);
    let matches: Vec<&BlockDevice> = machine
        .devices
        .iter()
        .filter(|device| match id.kind {
            DiskIdKind::Name => device.devname == value,
            DiskIdKind::Path => device.devname == value || device.links.iter().any(|l| l == value),
            DiskIdKind::Scsi => device.scsi.as_deref() == Some(id.value.as_str()),
        })
        .collect();
    match matches[..] {
        [device] => Ok(device),
        [] => Err(not_found(id.kind, value, machine.links)),
        _ => Err(format!(
            "several block devices match: {}",
            matches
                .iter()
                .map(|device| dev_path(device).display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Why no device has `value` (without `/dev/`) as an id of `kind`.
fn not_found(kind: DiskIdKind, value: &str, links: Links) -> String {
    match kind {
        DiskIdKind::Name => format!("no block device /dev/{value}"),
        DiskIdKind::Scsi => {
            format!("no block device has SCSI address {value} (/sys/class/scsi_device)")
        }
        DiskIdKind::Path => {
            let mut why = format!("no block device /dev/{value}");
            if value.starts_with("by-") {
                why += " (Bareon's path ids start with \"disk/\", as \"disk/by-path/...\")";
            } else if links == Links::Derived && value.starts_with("disk/") {
                why += "; there is no /dev/disk (no udev), and of udev's links only these \
                        are derived from sysfs: by-path of PCI virtio, SCSI, ATA and NVMe \
                        disks, by-id of virtio disks (serial) and NVMe disks (wwid)";
            }
            why
        }
    }
}

#[cfg(test)]
mod tests;
