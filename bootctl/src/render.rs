//! Output for people (tables, sentences) and for scripts (JSON with a version key).

use comfy_table::{presets, ContentArrangement, Table};
use serde_json::{json, Value};

use crate::bootcode::{BootCode, Firmware, Part, Verdict as BootVerdict};
use crate::change::How;
use crate::trial::Verdict;
use crate::view::{Entry, GrubWrote, View};

/// Version of the JSON shapes printed with `--json` (bootctl(8), JSON OUTPUT).
pub const JSON_VERSION: u32 = 1;

pub fn list_json(view: &View) -> Value {
    json!({ "version": JSON_VERSION, "entries": view.entries })
}

/// The width `list` fits its table into: the terminal's, when stdout is a terminal that
/// tells one of at least [`MIN_WIDTH`] columns; else [`DEFAULT_WIDTH`] (a pipe, a file, a
/// serial console that reports 0 columns).
pub fn table_width() -> u16 {
    match Table::new().width() {
        Some(width) if width >= MIN_WIDTH => width,
        _ => DEFAULT_WIDTH,
    }
}

/// Terminals narrower than this get the [`DEFAULT_WIDTH`] layout.
pub const MIN_WIDTH: u16 = 40;

/// The width of the table where no terminal tells one.
pub const DEFAULT_WIDTH: u16 = 80;

/// How many characters of a root UUID the table shows.
pub const SHORT_UUID: usize = 8;

/// The entries as a table `width` columns wide at most: the marks, GRUB's index, the image
/// name, the OS, the start of the root UUID and the title (long values wrap within their
/// column). Ids and whole UUIDs are in `status` and `--json`.
pub fn list_table(view: &View, width: u16) -> String {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(width)
        .set_header(["", "INDEX", "IMAGE", "OS", "ROOT", "TITLE"]);
    for entry in &view.entries {
        table.add_row([
            marks(entry),
            entry.index.clone(),
            entry.image_name.clone().unwrap_or_default(),
            entry.os_id.clone().unwrap_or_default(),
            entry
                .root_uuid
                .as_deref()
                .map(|uuid| uuid.chars().take(SHORT_UUID).collect())
                .unwrap_or_default(),
            entry.title.clone(),
        ]);
    }
    let lines: Vec<String> = table
        .lines()
        .map(|line| line.trim_end().to_owned())
        .collect();
    format!("{}\n\n{LEGEND}", lines.join("\n"))
}

const LEGEND: &str =
    "R running now, D default, N next boot only, T on trial; ROOT: the start of the\n\
                      root UUID.\n\
                      Ids and whole UUIDs: bootctl status, bootctl list --json.";

fn marks(entry: &Entry) -> String {
    [
        (entry.running, 'R'),
        (entry.default, 'D'),
        (entry.next, 'N'),
        (entry.trial, 'T'),
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

pub fn status_json(
    view: &View,
    partition: &PartitionReport,
    boot_code: Option<&BootCode>,
    firmware: Option<Firmware>,
) -> Value {
    json!({
        "version": JSON_VERSION,
        "running": view.running_entry(),
        "default": view.default_entry(),
        "next": view.next_entry(),
        "next_boot": view.next_boot(),
        "persistent_method": view.persistent,
        "one_shot_method": view.one_shot,
        "trial": view.trial.as_ref().map(|trial| json!({
            "value": trial.value,
            "entry": view.entry(trial.entry),
            "tries_left": trial.tries_left,
        })),
        "trial_failed": view.trial_failed.as_ref().map(|failed| json!({
            "value": failed.value,
            "entry": view.entry(failed.entry),
        })),
        "last_boot": view.last_boot.as_ref().map(|last| json!({
            "value": last.value,
            "entry": view.entry(last.entry),
        })),
        "grub_wrote_grubenv": match view.grub_wrote() {
            GrubWrote::Yes => Some(true),
            GrubWrote::No => Some(false),
            GrubWrote::Unknown => None,
        },
        "multiboot": {
            "uuid": partition.uuid,
            "device": partition.device,
            "boot_dir": partition.boot_dir,
        },
        "boot_code": boot_code.map(|code| json!({
            "firmware": firmware.map(firmware_name),
            "bios": verdict_json(&code.bios),
            "uefi": verdict_json(&code.uefi),
        })),
    })
}

fn firmware_name(firmware: Firmware) -> &'static str {
    match firmware {
        Firmware::Bios => "bios",
        Firmware::Uefi => "uefi",
    }
}

fn verdict_json(verdict: &BootVerdict) -> Value {
    match verdict {
        BootVerdict::Loads => json!({"verdict": "loads", "part": null, "detail": null}),
        BootVerdict::Replaced { what, detail } => json!({
            "verdict": "replaced",
            "part": match what {
                Part::BootSector => "boot_sector",
                Part::CoreImage => "core_image",
                Part::RemovableLoader => "removable_loader",
                Part::BootOrder => "boot_order",
            },
            "detail": detail,
        }),
        BootVerdict::Unknown { why } => json!({"verdict": "unknown", "part": null, "detail": why}),
    }
}

/// The verdicts that matter: the running firmware's, or both where it is not known.
fn relevant(code: &BootCode, firmware: Option<Firmware>) -> Vec<(&'static str, &BootVerdict)> {
    let both = [("BIOS", &code.bios), ("UEFI", &code.uefi)];
    match firmware {
        Some(Firmware::Bios) => vec![both[0]],
        Some(Firmware::Uefi) => vec![both[1]],
        None => both.to_vec(),
    }
}

fn boot_code_text(code: Option<&BootCode>, firmware: Option<Firmware>) -> String {
    let Some(code) = code else {
        return "not checked (no disk: --boot-dir)".into();
    };
    relevant(code, firmware)
        .iter()
        .map(|(name, verdict)| {
            let what = match verdict {
                BootVerdict::Loads => "loads the multiboot GRUB".to_owned(),
                BootVerdict::Replaced { what, .. } => format!("REPLACED ({})", what.describe()),
                BootVerdict::Unknown { why } => format!("unknown: {why}"),
            };
            format!("{name}: {what}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn status_text(
    view: &View,
    partition: &PartitionReport,
    boot_code: Option<&BootCode>,
    firmware: Option<Firmware>,
) -> String {
    let one_shot = match view.one_shot {
        Some(method) => method.describe(true),
        None => "not possible with this grub.cfg (it does not read next_entry)",
    };
    let next = match (view.next_entry(), view.next_boot()) {
        (Some(entry), _) => format!("{} (once)", describe(Some(entry))),
        (None, Some(entry)) if entry.trial => format!("{} (on trial)", describe(Some(entry))),
        _ => format!("{} (the default)", describe(view.default_entry())),
    };
    let default = view.default_entry();
    let lines = [
        ("Running", describe(view.running_entry())),
        ("Default", describe(default)),
        (
            "Default id",
            default
                .and_then(|entry| entry.id.clone())
                .unwrap_or_else(|| "none".into()),
        ),
        (
            "Default root",
            default
                .and_then(|entry| entry.root_uuid.clone())
                .unwrap_or_else(|| "unknown".into()),
        ),
        ("Next boot", next),
        ("Default set by", view.persistent.describe(false).to_owned()),
        ("One-shot set by", one_shot.to_owned()),
        ("Trial", trial_text(view)),
        ("GRUB wrote grubenv", grub_wrote_text(view)),
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
        ("Boot code", boot_code_text(boot_code, firmware)),
    ];
    let mut text = lines
        .iter()
        .map(|(key, value)| format!("{:<20}{value}", format!("{key}:")))
        .collect::<Vec<_>>()
        .join("\n");
    if let Some(failed) = &view.trial_failed {
        text.push_str(&format!(
            "\n\nA trial failed: {} was never confirmed, and GRUB went back to the default.\n\
             (bootctl switch, or a new trial, clears this note.)",
            named(view, failed.entry, &failed.value)
        ));
    }
    for (name, verdict) in boot_code
        .map(|code| relevant(code, firmware))
        .unwrap_or_default()
    {
        if let BootVerdict::Replaced { what, detail } = verdict {
            text.push_str(&format!(
                "\n\nWARNING: the node's {name} boot code no longer loads the multiboot GRUB: \
                 {} differs ({detail}).\nThe node boots something else (an image's own GRUB \
                 package may have run grub-install), so what bootctl sets has no effect.\n\
                 bootctl(8), BOOT CODE, says how to put the multiboot GRUB back.",
                what.describe()
            ));
        }
    }
    if view.grub_wrote() == GrubWrote::No {
        text.push_str(
            "\n\nWARNING: GRUB did not record this boot in grubenv. Either it cannot write grubenv,\n\
             or the node's boot code no longer loads the multiboot GRUB. A one-shot choice or\n\
             a trial would not work: bootctl refuses them (--force to do them anyway).",
        );
    }
    text
}

/// An entry for a sentence, or the grubenv value when it names no entry.
fn named(view: &View, entry: Option<usize>, value: &str) -> String {
    view.entry(entry).map_or_else(
        || format!("{value:?} (no such entry)"),
        |e| describe(Some(e)),
    )
}

fn trial_text(view: &View) -> String {
    if !view.can_try {
        return "not possible with this grub.cfg (it does not count trial boots down)".into();
    }
    let Some(trial) = &view.trial else {
        return "none".into();
    };
    let who = named(view, trial.entry, &trial.value);
    match trial.tries_left {
        Some(0) => format!(
            "{who}, no boots left: unless it confirms (bootctl mark-good), the next boot is \
             the default"
        ),
        Some(left) => format!(
            "{who}, {left} {} left; it becomes the default once it confirms (bootctl mark-good)",
            if left == 1 { "boot" } else { "boots" }
        ),
        None => format!("{who}, no count GRUB understands: the next boot is the default"),
    }
}

fn grub_wrote_text(view: &View) -> String {
    match view.grub_wrote() {
        GrubWrote::Yes => "yes, as it booted this image".into(),
        GrubWrote::No => format!(
            "NO: grubenv names {} as last booted",
            view.last_boot
                .as_ref()
                .map_or("nothing".to_owned(), |last| named(
                    view,
                    last.entry,
                    &last.value
                ))
        ),
        GrubWrote::Unknown => "unknown (the running entry does not record its boots)".into(),
    }
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
    pub how: How,
    pub dry_run: bool,
    pub changed: Vec<String>,
}

pub fn switch_json(report: &SwitchReport) -> Value {
    json!({
        "version": JSON_VERSION,
        "target": report.target,
        "once": report.how == How::Once,
        "try": match report.how {
            How::Try(tries) => Some(tries),
            _ => None,
        },
        "dry_run": report.dry_run,
        "changed": report.changed,
    })
}

pub fn switch_text(report: &SwitchReport, view: &View) -> String {
    let target = describe(Some(&report.target));
    let what = match report.how {
        How::Once => format!(
            "next boot only: {target}; after it: {}",
            describe(view.default_entry())
        ),
        How::Try(_) if report.target.default => {
            format!("{target} is the default: nothing to try")
        }
        How::Try(tries) => format!(
            "on trial for the next {tries} {}: {target}; it becomes the default once it \
             confirms (bootctl mark-good), else GRUB goes back to {}",
            if tries == 1 { "boot" } else { "boots" },
            describe(view.default_entry())
        ),
        How::Always => format!("default from the next boot on: {target}"),
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

/// What `mark-good` or `mark-bad` did.
pub struct MarkReport {
    pub verdict: Verdict,
    pub running: Entry,
    /// The default after it.
    pub default: Option<Entry>,
    pub changed: Vec<String>,
}

pub fn mark_json(report: &MarkReport) -> Value {
    let (verdict, pending) = match &report.verdict {
        Verdict::Confirmed => ("confirmed", None),
        Verdict::Ended => ("ended", None),
        Verdict::NothingToConfirm { pending } => ("nothing_to_confirm", pending.clone()),
    };
    json!({
        "version": JSON_VERSION,
        "verdict": verdict,
        "running": report.running,
        "default": report.default,
        "pending_trial": pending,
        "changed": report.changed,
    })
}

pub fn mark_text(report: &MarkReport) -> String {
    let running = describe(Some(&report.running));
    match &report.verdict {
        Verdict::Confirmed => format!("confirmed: {running} is the default from now on"),
        Verdict::Ended => format!(
            "trial of {running} ended: the next boot is the default, {}",
            describe(report.default.as_ref())
        ),
        Verdict::NothingToConfirm { pending: None } => {
            format!("nothing to confirm: {running} is not on trial")
        }
        Verdict::NothingToConfirm {
            pending: Some(other),
        } => format!(
            "nothing to confirm: {running} is not on trial (the trial pending is of {other:?})"
        ),
    }
}

/// The line of a `health` whose checks all passed.
pub fn health_passed(passed: usize) -> String {
    match passed {
        0 => format!("health: no checks in {}", shared::layout::HEALTH_DIR),
        n => format!(
            "health: {n} {} passed",
            if n == 1 { "check" } else { "checks" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{boot_info, files, fixed_cfg, load, ROOT_A};

    /// The fixtures' menu with os-prober's long titles and ids.
    fn long_view() -> View {
        let cfg = fixed_cfg()
            .replace(
                "'CentOS Linux (recovery mode)'",
                "'Debian GNU/Linux 12 (bookworm), with Linux 6.1.0-27-amd64 (recovery mode) \
                 (on /dev/sda4)'",
            )
            .replace(
                "'img-centos-recovery'",
                "'gnulinux-6.1.0-27-amd64-recovery-2abf123d-d52f-4f62-a351-7358221bc51f'",
            );
        let mut files = files(cfg, None);
        files.boot_info = Some(boot_info());
        load(&files, Some(ROOT_A)).1
    }

    #[test]
    fn the_table_fits_80_columns_and_narrower_terminals() {
        let view = long_view();
        for width in [DEFAULT_WIDTH, 60, MIN_WIDTH] {
            let table = list_table(&view, width);
            let (rows, legend) = table.split_once("\n\n").expect("a legend");
            for line in rows.lines() {
                assert!(
                    line.chars().count() <= usize::from(width),
                    "{width} columns: {line:?}\n{table}"
                );
            }
            for line in legend.lines() {
                assert!(line.chars().count() <= 80, "{line:?}");
            }
        }
        let table = list_table(&view, DEFAULT_WIDTH);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["INDEX", "IMAGE", "OS", "ROOT", "TITLE"]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            [
                "RD",
                "0",
                "centos-7.1.1503",
                "centos",
                "2abf123d",
                "CentOS",
                "Linux"
            ]
        );
        assert_eq!(
            lines[2].split_whitespace().take(5).collect::<Vec<_>>(),
            ["1>0", "centos-7.1.1503", "centos", "2abf123d", "Debian"]
        );
        assert!(!table.contains("gnulinux-6.1.0"), "no ids: {table}");
        assert!(
            table.ends_with("Ids and whole UUIDs: bootctl status, bootctl list --json."),
            "{table}"
        );
    }

    #[test]
    fn a_wider_terminal_gets_unwrapped_titles() {
        let table = list_table(&long_view(), 200);
        assert!(
            table.contains("(recovery mode) (on /dev/sda4)"),
            "one line: {table}"
        );
    }
}
