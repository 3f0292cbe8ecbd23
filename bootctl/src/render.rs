//! Output for people (tables, sentences) and for scripts (JSON with a version key).

use comfy_table::{presets, ContentArrangement, Table};
use serde_json::{json, Value};

use crate::view::{Entry, View};

/// Version of the JSON shapes printed with `--json` (bootctl(8), JSON OUTPUT).
pub const JSON_VERSION: u32 = 1;

pub fn list_json(view: &View) -> Value {
    json!({ "version": JSON_VERSION, "entries": view.entries })
}

pub fn list_table(view: &View) -> String {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING).set_header([
        "",
        "INDEX",
        "IMAGE",
        "TITLE",
        "OS",
        "ROOT UUID",
        "ID",
    ]);
    // Fit a terminal whose width is known; a serial console reports 0 columns, and a pipe
    // none: there, print full lines rather than squeeze every column to one character.
    let arrangement = match table.width() {
        Some(width) if width >= MIN_FITTED_WIDTH => ContentArrangement::Dynamic,
        _ => ContentArrangement::Disabled,
    };
    table.set_content_arrangement(arrangement);
    for entry in &view.entries {
        table.add_row([
            marks(entry),
            entry.index.clone(),
            entry.image_name.clone().unwrap_or_default(),
            entry.title.clone(),
            entry.os_id.clone().unwrap_or_default(),
            entry.root_uuid.clone().unwrap_or_default(),
            entry.id.clone().unwrap_or_default(),
        ]);
    }
    format!("{table}\n\n{LEGEND}")
}

/// Narrower terminals than this get unwrapped lines.
const MIN_FITTED_WIDTH: u16 = 40;

const LEGEND: &str = "R running now, D default, N next boot only";

fn marks(entry: &Entry) -> String {
    [
        (entry.running, 'R'),
        (entry.default, 'D'),
        (entry.next, 'N'),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, mark)| *mark)
    .collect()
}

/// The multiboot partition as `status` reports it.
pub struct PartitionReport {
    pub uuid: Option<String>,
    pub device: Option<String>,
    pub boot_dir: String,
}

pub fn status_json(view: &View, partition: &PartitionReport) -> Value {
    json!({
        "version": JSON_VERSION,
        "running": view.running_entry(),
        "default": view.default_entry(),
        "next": view.next_entry(),
        "next_boot": view.next_boot(),
        "persistent_method": view.persistent,
        "one_shot_method": view.one_shot,
        "multiboot": {
            "uuid": partition.uuid,
            "device": partition.device,
            "boot_dir": partition.boot_dir,
        },
    })
}

pub fn status_text(view: &View, partition: &PartitionReport) -> String {
    let one_shot = match view.one_shot {
        Some(method) => method.describe(true),
        None => "not possible with this grub.cfg (it does not read next_entry)",
    };
    let next = match view.next_entry() {
        Some(entry) => format!("{} (once)", describe(Some(entry))),
        None => format!("{} (the default)", describe(view.default_entry())),
    };
    let lines = [
        ("Running", describe(view.running_entry())),
        ("Default", describe(view.default_entry())),
        ("Next boot", next),
        ("Default set by", view.persistent.describe(false).to_owned()),
        ("One-shot set by", one_shot.to_owned()),
        (
            "Multiboot UUID",
            partition.uuid.clone().unwrap_or_else(|| "unknown".into()),
        ),
        (
            "Multiboot device",
            partition
                .device
                .clone()
                .unwrap_or_else(|| "none (--boot-dir)".into()),
        ),
        ("Boot files in", partition.boot_dir.clone()),
    ];
    lines
        .iter()
        .map(|(key, value)| format!("{:<18}{value}", format!("{key}:")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One entry for a sentence: `2 "Ubuntu 22.04" (image ubuntu)`.
pub fn describe(entry: Option<&Entry>) -> String {
    match entry {
        None => "unknown".to_owned(),
        Some(entry) => {
            let mut text = format!("{} {:?}", entry.index, entry.title);
            if let Some(name) = &entry.image_name {
                text.push_str(&format!(" (image {name})"));
            }
            text
        }
    }
}

pub struct SwitchReport {
    pub target: Entry,
    pub once: bool,
    pub dry_run: bool,
    pub changed: Vec<String>,
}

pub fn switch_json(report: &SwitchReport) -> Value {
    json!({
        "version": JSON_VERSION,
        "target": report.target,
        "once": report.once,
        "dry_run": report.dry_run,
        "changed": report.changed,
    })
}

pub fn switch_text(report: &SwitchReport, view: &View) -> String {
    let target = describe(Some(&report.target));
    let what = if report.once {
        format!(
            "next boot only: {target}; after it: {}",
            describe(view.default_entry())
        )
    } else {
        format!("default from the next boot on: {target}")
    };
    match (report.dry_run, report.changed.is_empty()) {
        (_, true) => format!("{what}\nnothing to change: already set"),
        (true, false) => format!(
            "{what}\nwould write: {} (dry run: nothing changed)",
            report.changed.join(", ")
        ),
        (false, false) => format!("{what}\nwrote: {}", report.changed.join(", ")),
    }
}
