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
//! - Exact sizes are rounded up to whole MiB; percentages are of the space usable once the
//!   GPTs and the implicit partitions are taken (a volume group's extents for logical
//!   volumes), whatever the other volumes take, rounded down to whole MiB; `remaining`
//!   takes what the other volumes of its disk or volume group leave.
//! - `--layout bareon` ([`Layout::Bareon`]) makes Bareon's layout instead: a 24 MiB
//!   bios_grub partition at the head of every disk, the multiboot partition on the first,
//!   no ESP, and every partition at the sector where Bareon's allocator puts it
//!   (`bareon.rs`). Without `--layout`, a policy that keeps the tables takes it when the
//!   first disk holds it (`choose.rs`).
//! - A `boot` volume is planned as Bareon parses it (`bareon/drivers/data/ironic.py` reads
//!   it as a partition flagged boot, without a filesystem): an unformatted partition of
//!   GPT type BIOS boot with the legacy-BIOS-bootable attribute, so that GRUB can also be
//!   embedded on a disk other than the first.
//! - A partition or logical volume without `file_system` gets xfs, as in Bareon, when it is
//!   mounted on a path, and no filesystem when its mount is `none`.
//! - `pv` and `raid` volumes are planned (LVM and RAID partition types,
//!   volume groups, logical volumes, md arrays) and mark the plan
//!   [`Plan::needs_device_mapper`] or [`Plan::needs_md`]. Logical volumes are whole 4 MiB
//!   extents of the volume group, whose extents are its pvs' after their metadata area
//!   (LVM's default, or `lvm_meta_size` as `pvcreate --metadatasize`, as Bareon runs it);
//!   an md array is a mirror (Bareon's default level) as large as its smallest member.

mod allocate;
mod bareon;
mod choose;
mod existing;
mod ids;
mod input;
mod kept;
mod kept_stack;
mod layout;
mod model;
mod planner;
mod table;

use serde::Serialize;

use crate::config::{Disk, ProvisionConfig, StorageEntry};
use crate::text::quote;
use crate::validate::JsonPath;

pub use choose::plan_layout;
pub use existing::judge_filesystem;
pub use ids::{grub_menu_ids, IdSource, RandomIds, SequentialIds};
pub use input::{disk_requests, DiskInput, DiskRequest, ExistingDisk, Member, Probe};
pub use kept::LeftEmpty;
pub use layout::{ImageLayout, MountPlan, StackBoot};
pub use model::*;
pub use table::{check_kept, check_kept_table, check_table, sfdisk_script};

/// Lays the config out on `disks`, in the layout they call for ([`plan_layout`] with no
/// `--layout`), taking every UUID from `ids`.
pub fn plan(
    config: &ProvisionConfig,
    disks: &[DiskInput],
    ids: &mut impl IdSource,
) -> Result<Plan, Vec<PlanError>> {
    plan_layout(config, disks, None, ids)
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
pub(crate) fn disk_entries(config: &ProvisionConfig) -> impl Iterator<Item = (JsonPath, &Disk)> {
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

#[cfg(test)]
mod bareon_tests;
#[cfg(test)]
mod tests;
