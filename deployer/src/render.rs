//! `deployer plan` output: tables for people, JSON (with a version key) for scripts; the
//! summary of `deployer deploy --json`.

use std::path::{Path, PathBuf};

use comfy_table::{presets, ColumnConstraint, ContentArrangement, Table, Width};
use serde_json::{json, Value};
use shared::bootinfo::BootInfo;

use crate::config::Mount;
use crate::plan::{Device, FilesystemPlan, Plan, Purpose};
use crate::timing::Timings;

/// Version of the `deployer plan --json` shape.
pub const JSON_VERSION: u32 = 1;

/// The whole plan plus `"version": 1`, with what the plan derives (each image's mounts,
/// root, boot and fstab; the multiboot and ESP UUIDs) written out.
pub fn plan_json(plan: &Plan) -> Value {
    let images: Vec<Value> = plan
        .images
        .iter()
        .map(|image| {
            let layout = plan.layout(image);
            let mounts: Vec<Value> = layout
                .mounts
                .iter()
                .map(|mount| {
                    json!({
                        "mount_point": mount.mount_point,
                        "device": mount.device,
                        "fs_type": mount.fs_type,
                        "uuid": mount.uuid,
                    })
                })
                .collect();
            json!({
                "name": image.name,
                "config_path": image.config_path,
                "grub_menu_id": image.grub_menu_id,
                "root_uuid": layout.root_uuid,
                "separate_boot": layout.separate_boot,
                "boot_uuid": layout.boot_uuid,
                "kernel_params": image.kernel_params,
                "mounts": mounts,
                "fstab": layout.fstab,
                "source": image.source,
                "target": image.target,
                "sha256": image.sha256,
                "image_name": image.image_name,
                "image_uuid": image.image_uuid,
                "deployed": plan.deploys(image),
            })
        })
        .collect();
    let boot = &plan.boot;
    json!({
        "version": JSON_VERSION,
        "disks": plan.disks,
        "raid_arrays": plan.raid_arrays,
        "volume_groups": plan.volume_groups,
        "filesystems": plan.filesystems,
        "images": images,
        "boot": {
            "multiboot_uuid": plan.multiboot_uuid(),
            "esp_uuid": plan.esp_uuid(),
            "bios_disk": boot.bios_disk,
            "bios_disk_path": boot.bios_disk_path,
            "bios_disks": boot.bios_disks,
            "default_image": boot.default_image,
            "entries": boot.entries,
        },
        "needs_device_mapper": plan.needs_device_mapper,
        "needs_md": plan.needs_md,
        "partitions_policy": plan.partitions_policy,
        "rsync_flags": plan.rsync_flags,
        "layout": plan.layout,
    })
}

/// How a deploy ended, for `deployer deploy --json`.
pub struct DeployOutcome<'a> {
    pub exit: u8,
    /// The disks as given with `--disk`, then those `--resolve-disks` found.
    pub disks: &'a [(String, PathBuf)],
    /// After a deploy: where boot-info.json was written, and what it says.
    pub boot_info: Option<(&'a Path, &'a BootInfo)>,
    /// Every error reported, one line each.
    pub errors: &'a [String],
    /// The step that failed after the first write.
    pub failed_step: Option<&'a str>,
    /// How long each step took.
    pub timings: &'a Timings,
}

/// `deployer deploy --json`'s summary: the deploy's exit status, the disks, and after a
/// deploy the images and the multiboot partition as boot-info.json has them, else the
/// errors and the step that failed.
pub fn deploy_json(outcome: &DeployOutcome) -> Value {
    let DeployOutcome {
        exit,
        disks,
        boot_info,
        errors,
        failed_step,
        timings,
    } = *outcome;
    let disks: Vec<Value> = disks
        .iter()
        .map(|(name, path)| json!({ "name": name, "path": path.display().to_string() }))
        .collect();
    let images: Vec<Value> = boot_info.map_or_else(Vec::new, |(_, info)| {
        info.elements
            .iter()
            .enumerate()
            .map(|(index, element)| {
                json!({
                    "name": element
                        .extra
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or(&element.image_name),
                    "image_name": element.image_name,
                    "root_uuid": element.root_uuid,
                    "grub_id": element.grub_id,
                    "default": index == info.current_element,
                })
            })
            .collect()
    });
    json!({
        "version": JSON_VERSION,
        "exit": exit,
        "deployed": boot_info.is_some(),
        "disks": disks,
        "images": images,
        "multiboot_partition": boot_info.map(|(_, info)| &info.multiboot_partition),
        "boot_info": boot_info.map(|(path, _)| path.display().to_string()),
        "errors": errors,
        "failed_step": failed_step,
        "timings": timings_json(timings),
    })
}

/// The `timings` of `deploy --json`: seconds rounded to milliseconds.
fn timings_json(timings: &Timings) -> Value {
    let ms = |seconds: f64| (seconds * 1000.0).round() / 1000.0;
    let steps: Vec<Value> = timings
        .steps
        .iter()
        .map(|step| {
            json!({
                "step": step.step,
                "image": step.image,
                "start": ms(step.start),
                "seconds": ms(step.seconds),
            })
        })
        .collect();
    json!({
        "seconds": timings.seconds.map(ms),
        "peak_rss_bytes": timings.peak_rss_bytes,
        "cpu_seconds": timings.cpu_seconds.map(ms),
        "programs_cpu_seconds": timings.programs_cpu_seconds.map(ms),
        "steps": steps,
    })
}

/// The width of the terminal standard output is, if it is one.
pub fn terminal_width() -> Option<u16> {
    Table::new().width().filter(|width| *width > 0)
}

/// Columns of free text, which may wrap between words; every other column (UUIDs, paths,
/// numbers) is shown whole, never broken over two lines.
const WRAPPING: &[&str] = &["LABEL", "USE"];

/// `rows` under `header` as a table: as wide as its content where `width` is `None` (a
/// pipe, a file), else fitted to `width` columns by wrapping the [`WRAPPING`] columns
/// between words only. A table that cannot fit even so is wider than `width`.
fn table_text(header: &[&str], rows: Vec<Vec<String>>, width: Option<u16>) -> String {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_header(header.to_vec());
    match width {
        Some(width) => table
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(width),
        None => table.set_content_arrangement(ContentArrangement::Disabled),
    };
    for (index, title) in header.iter().enumerate() {
        let longest_word = rows
            .iter()
            .filter_map(|row| row.get(index))
            .flat_map(|cell| cell.split_whitespace())
            .chain(std::iter::once(*title))
            .map(|word| word.chars().count())
            .max()
            .unwrap_or(0);
        let constraint = if WRAPPING.contains(title) {
            let padded = u16::try_from(longest_word + 2).unwrap_or(u16::MAX);
            ColumnConstraint::LowerBoundary(Width::Fixed(padded))
        } else {
            ColumnConstraint::ContentWidth
        };
        if let Some(column) = table.column_mut(index) {
            column.set_constraint(constraint);
        }
    }
    for row in rows {
        table.add_row(row);
    }
    table
        .lines()
        .map(|line| format!("{}\n", line.trim_end()))
        .collect()
}

/// The plan as text: the partitions policy (what is kept), a partition table per disk, md
/// arrays and volume groups, each image's mounts and fstab, then the boot layout. Tables
/// are fitted to `width` columns where one is given (a terminal's), as far as they can be
/// without breaking a UUID or a path.
pub fn plan_text(plan: &Plan, width: Option<u16>) -> String {
    let mut out = policy_text(plan);
    for disk in &plan.disks {
        out.push_str(&format!(
            "Disk {} ({}, {} MiB, GPT, {}-byte sectors; sizes in MiB)\n",
            disk.name,
            disk.path.display(),
            disk.size_bytes >> 20,
            disk.sector_size
        ));
        let mut rows = Vec::new();
        for partition in &disk.partitions {
            let device = Device::Partition {
                disk: disk.name.clone(),
                number: partition.number,
            };
            let fs = filesystem_on(plan, &device);
            rows.push(vec![
                partition.number.to_string(),
                partition.start_mib.to_string(),
                partition.size_mib.to_string(),
                partition.kind.gdisk_code().to_string(),
                fs.map_or(String::new(), |fs| fs.fs_type.as_str().to_string()),
                fs.and_then(|fs| fs.label.clone()).unwrap_or_default(),
                fs.map_or(String::new(), |fs| fs.uuid.clone()),
                if partition.legacy_bios_bootable {
                    "legacy BIOS boot".to_string()
                } else {
                    use_of(plan, &device, &partition.purpose, fs)
                },
            ]);
        }
        let header = ["#", "START", "SIZE", "TYPE", "FS", "LABEL", "UUID", "USE"];
        out.push_str(&table_text(&header, rows, width));
        out.push('\n');
    }
    for array in &plan.raid_arrays {
        let members: Vec<String> = array.members.iter().map(ToString::to_string).collect();
        out.push_str(&format!(
            "md array {} ({}, {} MiB, UUID {}{}): {}\n\n",
            array.name,
            array.level,
            array.size_mib,
            array.uuid,
            if array.keep { ", kept" } else { "" },
            members.join(", ")
        ));
    }
    for vg in &plan.volume_groups {
        let pvs: Vec<String> = vg
            .physical_volumes
            .iter()
            .map(|pv| pv.device.to_string())
            .collect();
        out.push_str(&format!(
            "Volume group {} ({} MiB on {}{})\n",
            vg.name,
            vg.size_mib,
            pvs.join(", "),
            if vg.keep { ", kept" } else { "" }
        ));
        let mut rows = Vec::new();
        for lv in &vg.logical_volumes {
            let device = Device::LogicalVolume {
                vg: vg.name.clone(),
                lv: lv.name.clone(),
            };
            let fs = filesystem_on(plan, &device);
            rows.push(vec![
                lv.name.clone(),
                lv.size_mib.to_string(),
                fs.map_or(String::new(), |fs| fs.fs_type.as_str().to_string()),
                fs.and_then(|fs| fs.label.clone()).unwrap_or_default(),
                fs.map_or(String::new(), |fs| fs.uuid.clone()),
                use_of(plan, &device, &Purpose::Volume(lv.config_path.clone()), fs),
            ]);
        }
        let header = ["LV", "SIZE", "FS", "LABEL", "UUID", "USE"];
        out.push_str(&table_text(&header, rows, width));
        out.push('\n');
    }
    for image in &plan.images {
        let layout = plan.layout(image);
        let role = if image.name == plan.boot.default_image {
            "boots by default"
        } else if layout.root_uuid.is_some() {
            "bootable"
        } else {
            "not bootable: nothing is mounted at /"
        };
        let kept = if plan.deploys(image) {
            ""
        } else {
            "; its / keeps its data: not deployed again, nothing written into it"
        };
        out.push_str(&format!(
            "Image {} ({role}; GRUB entry {}{kept})\n",
            image.name, image.grub_menu_id
        ));
        let mut rows = Vec::new();
        for mount in &layout.mounts {
            rows.push(vec![
                mount.mount_point.clone(),
                mount.device.to_string(),
                mount.fs_type.as_str().to_string(),
                mount.uuid.clone(),
            ]);
        }
        out.push_str(&table_text(&["MOUNT", "DEVICE", "FS", "UUID"], rows, width));
        for line in layout.fstab.lines() {
            out.push_str(&format!("  {line}\n"));
        }
        out.push('\n');
    }
    let boot = &plan.boot;
    let esp = match plan.esp_uuid() {
        Some(uuid) => format!("UUID={uuid}"),
        None => "none (BIOS boot only)".to_owned(),
    };
    out.push_str(&format!(
        "Boot layout ({} layout)\n  multiboot partition: UUID={} on {} ({})\n  ESP: {esp}\n  \
         GRUB for BIOS on: {}\n  entries in order: {}\n  default: {}\n",
        plan.layout.as_str(),
        plan.multiboot_uuid().unwrap_or_default(),
        boot.bios_disk,
        boot.bios_disk_path.display(),
        boot.bios_disks.join(", "),
        boot.entries.join(", "),
        boot.default_image
    ));
    if plan.needs_device_mapper || plan.needs_md {
        let needs: Vec<&str> = [
            (plan.needs_device_mapper, "device-mapper (LVM)"),
            (plan.needs_md, "md (RAID)"),
        ]
        .iter()
        .filter(|(needed, _)| *needed)
        .map(|(_, what)| *what)
        .collect();
        out.push_str(&format!("Deploying needs {}\n", needs.join(" and ")));
    }
    out
}

/// What the policy does to the disks, and which filesystems keep their data, one a line.
fn policy_text(plan: &Plan) -> String {
    let policy = plan.partitions_policy.as_str();
    if !plan.keeps_partition_tables() {
        return format!(
            "Partitions policy {policy}: the disks are partitioned and formatted anew;\n\
             no data is kept.\n\n"
        );
    }
    let mut out = format!(
        "Partitions policy {policy}: the partition tables must be as planned already\n\
         and are kept. "
    );
    let kept: Vec<&FilesystemPlan> = plan.filesystems.iter().filter(|fs| fs.keep_data).collect();
    if kept.is_empty() {
        out.push_str("No filesystem keeps its data: every one is made anew.\n\n");
        return out;
    }
    out.push_str("Filesystems that keep their data and their UUIDs:\n");
    for fs in kept {
        out.push_str(&format!("  {}: {}\n", fs.device, fs.usage()));
    }
    out.push_str("Every other filesystem is made anew.\n\n");
    out
}

fn filesystem_on<'a>(plan: &'a Plan, device: &Device) -> Option<&'a FilesystemPlan> {
    plan.filesystems.iter().find(|fs| fs.device == *device)
}

/// What a partition or logical volume is for, in a few words.
fn use_of(plan: &Plan, device: &Device, purpose: &Purpose, fs: Option<&FilesystemPlan>) -> String {
    match purpose {
        Purpose::BiosGrub => return "GRUB core (BIOS)".to_string(),
        Purpose::Esp => return "UEFI boot".to_string(),
        Purpose::Multiboot => return "GRUB for all images".to_string(),
        Purpose::Volume(_) => {}
    }
    if let Some(array) = plan.raid_arrays.iter().find(|a| a.members.contains(device)) {
        return format!("member of {}", array.name);
    }
    if let Some(vg) = plan
        .volume_groups
        .iter()
        .find(|vg| vg.physical_volumes.iter().any(|pv| pv.device == *device))
    {
        return format!("pv of {}", vg.name);
    }
    let Some(fs) = fs else {
        return "unformatted".to_string();
    };
    let place = match &fs.mount {
        Mount::Path(path) => path.as_str(),
        Mount::Swap => "swap",
        Mount::None => "not mounted",
    };
    let used = if fs.images.is_empty() {
        place.to_string()
    } else {
        format!("{place} ({})", fs.images.join(", "))
    };
    if fs.keep_data {
        format!("{used}, kept")
    } else {
        used
    }
}
