//! Which layout a plan uses: `--layout` when given; else, under a policy that keeps the
//! partition tables, Bareon's when the first disk holds it, and the default otherwise.
//! A config that does not fit the default layout but fits Bareon's (its implicit
//! partitions take 43 MiB less of the first disk) gets one more error naming the option;
//! one sized for Bareon's layout for a single image, one saying that the deployer does
//! not make that layout.

use crate::config::{PartitionsPolicy, ProvisionConfig};
use crate::sfdisk::partition_number;
use crate::size::MIB;
use crate::validate::JsonPath;

use super::allocate::{requests, volume_paths};
use super::bareon::{self, Geometry};
use super::ids::{IdSource, SequentialIds};
use super::input::{DiskInput, ExistingDisk};
use super::model::{Layout, PartitionKind, Plan, BAREON_BIOS_GRUB_MIB};
use super::planner::{bound_images, plan_with, volume_size};
use super::{disk_entries, names_disk, PlanError};

/// Lays the config out on `disks` in `layout`, or with `None` in the layout the disks
/// call for (see the module), taking every UUID from `ids`.
pub fn plan_layout(
    config: &ProvisionConfig,
    disks: &[DiskInput],
    layout: Option<Layout>,
    ids: &mut impl IdSource,
) -> Result<Plan, Vec<PlanError>> {
    let chosen = layout.unwrap_or_else(|| {
        if holds_bareon_layout(config, disks) {
            Layout::Bareon
        } else {
            Layout::Default
        }
    });
    let mut errors = match plan_with(config, disks, chosen, ids) {
        Ok(plan) => return Ok(plan),
        Err(errors) => errors,
    };
    // Whether it fits, whatever the disks hold now.
    let fits_bareon = || {
        let blank: Vec<DiskInput> = disks
            .iter()
            .map(|disk| DiskInput {
                existing: None,
                ..disk.clone()
            })
            .collect();
        plan_with(
            config,
            &blank,
            Layout::Bareon,
            &mut SequentialIds::default(),
        )
        .is_ok()
    };
    if chosen == Layout::Default && errors.iter().any(is_fit_error) {
        if bound_images(config) < 2 {
            if fits_bareon_single(config, disks) {
                errors.push(PlanError::at(
                    &JsonPath::root().key("partitions"),
                    "the config is sized for Bareon's layout for one image (a 24 MiB \
                     bios_grub partition on every disk and no multiboot partition: Bareon \
                     installs a single image's own GRUB), which the deployer does not make: \
                     it needs room for its own implicit partitions",
                ));
            }
        } else if fits_bareon() {
            errors.push(PlanError::at(
                &JsonPath::root().key("partitions"),
                "the config fits Bareon's layout, which configs written for Bareon are sized \
                 for (a 24 MiB bios_grub partition on every disk, no ESP: BIOS boot only); \
                 plan and deploy it with --layout bareon",
            ));
        }
    }
    Err(errors)
}

/// Every disk's volumes fit Bareon's layout for one image: only the 24 MiB bios_grub
/// partition at the head of each disk.
fn fits_bareon_single(config: &ProvisionConfig, disks: &[DiskInput]) -> bool {
    disk_entries(config).all(|(path, disk)| {
        let Some(input) = disks.iter().find(|d| names_disk(&d.name, &disk.id.value)) else {
            return false;
        };
        let Some(geometry) = Geometry::new(input.size_bytes, input.sector_size) else {
            return false;
        };
        let paths = volume_paths(&path, &disk.config_index);
        let requests = requests(&paths, &disk.volumes, volume_size);
        bareon::place(geometry, &[BAREON_BIOS_GRUB_MIB], &requests, &path, "").is_ok()
    })
}

/// The error says that volumes do not fit their disk, or the implicit partitions.
fn is_fit_error(error: &PlanError) -> bool {
    error.message.contains("does not fit") || error.message.contains("too small for the GPTs")
}

/// Under a policy that may keep the tables, with images enough for Bareon's layout, the
/// first disk holds a table whose partition 1 is Bareon's bios_grub partition: 24 MiB of
/// BIOS boot type at 1 MiB. (A disk Bareon laid out for one image has no multiboot
/// partition; planned in the default layout, it is refused as not as planned.)
fn holds_bareon_layout(config: &ProvisionConfig, disks: &[DiskInput]) -> bool {
    if config.partitions_policy == PartitionsPolicy::Clean || bound_images(config) < 2 {
        return false;
    }
    let Some((_, first)) = disk_entries(config).next() else {
        return false;
    };
    let Some(input) = disks.iter().find(|d| names_disk(&d.name, &first.id.value)) else {
        return false;
    };
    let Some(ExistingDisk::Table { table, .. }) = &input.existing else {
        return false;
    };
    let sector = table.sectorsize.unwrap_or(u64::from(input.sector_size));
    table.partitions.iter().any(|entry| {
        partition_number(&entry.node) == Some(1)
            && entry.start * sector == MIB
            && entry.size * sector == BAREON_BIOS_GRUB_MIB * MIB
            && entry
                .type_guid
                .eq_ignore_ascii_case(PartitionKind::BiosBoot.type_guid())
    })
}
