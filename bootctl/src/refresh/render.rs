//! `refresh`'s output: one line for the image, one for each of its entries, one for what
//! was written; or JSON (docs/schema/bootctl-refresh.v1.json). Pure.

use serde_json::{json, Value};
use shared::grubcfg;

use crate::refresh::plan::{BootPaths, EntryRefresh, Refresh};
use crate::render::JSON_VERSION;

/// What a refresh did, or with `dry_run` would do.
pub struct RefreshReport<'a> {
    pub refresh: &'a Refresh,
    pub dry_run: bool,
    /// The files written (that would be written), relative to the multiboot partition.
    pub changed: Vec<String>,
}

pub fn text(report: &RefreshReport<'_>) -> String {
    let refresh = report.refresh;
    let image = refresh
        .image_name
        .as_ref()
        .map_or(String::new(), |name| format!("{name}, "));
    let initrd = refresh
        .kernel
        .initrd
        .as_ref()
        .map_or("no initrd".to_owned(), |initrd| format!("initrd {initrd}"));
    let mut lines = vec![format!(
        "image {image}root UUID {}: newest kernel {} ({initrd})",
        refresh.root_uuid, refresh.kernel.kernel
    )];
    lines.extend(refresh.entries.iter().map(entry_line));
    lines.push(match (report.dry_run, report.changed.is_empty()) {
        (_, true) => "nothing to change: the entries are up to date".to_owned(),
        (true, false) => format!(
            "would write: {} (dry run: nothing changed)",
            report.changed.join(", ")
        ),
        (false, false) => format!("wrote: {}", report.changed.join(", ")),
    });
    lines.join("\n")
}

fn entry_line(entry: &EntryRefresh) -> String {
    let name = format!("  {} {:?}", grubcfg::address(&entry.path), entry.title);
    if !entry.changed() {
        return format!("{name}: up to date ({})", paths(&entry.old));
    }
    let initrd = match (&entry.old.initrd, &entry.new.initrd) {
        (old, new) if old == new => String::new(),
        (Some(old), Some(new)) => format!(", {old} -> {new}"),
        (None, Some(new)) => format!(", initrd {new} added"),
        (_, None) => String::new(),
    };
    format!(
        "{name}: {} -> {}{initrd}",
        entry.old.kernel, entry.new.kernel
    )
}

fn paths(paths: &BootPaths) -> String {
    match &paths.initrd {
        Some(initrd) => format!("{}, {initrd}", paths.kernel),
        None => paths.kernel.clone(),
    }
}

pub fn json(report: &RefreshReport<'_>) -> Value {
    let refresh = report.refresh;
    let entries: Vec<Value> = refresh
        .entries
        .iter()
        .map(|entry| {
            json!({
                "index": grubcfg::address(&entry.path),
                "path": entry.path,
                "id": entry.id,
                "title": entry.title,
                "primary": entry.primary,
                "old": entry.old,
                "new": entry.new,
                "changed": entry.changed(),
            })
        })
        .collect();
    json!({
        "version": JSON_VERSION,
        "root_uuid": refresh.root_uuid,
        "image_name": refresh.image_name,
        "kernel": {
            "version": refresh.kernel.version,
            "kernel": refresh.kernel.kernel,
            "initrd": refresh.kernel.initrd,
        },
        "entries": entries,
        "dry_run": report.dry_run,
        "changed": report.changed,
    })
}

#[cfg(test)]
mod tests {
    use shared::kernels::KernelPair;

    use super::*;

    fn refresh() -> Refresh {
        let boot = |version: &str| BootPaths {
            kernel: format!("/boot/vmlinuz-{version}"),
            initrd: Some(format!("/boot/initrd.img-{version}")),
        };
        Refresh {
            root_uuid: "2abf123d".to_owned(),
            image_name: Some("alpha".to_owned()),
            kernel: KernelPair {
                version: "2.0".to_owned(),
                kernel: "vmlinuz-2.0".to_owned(),
                initrd: Some("initrd.img-2.0".to_owned()),
            },
            entries: vec![
                EntryRefresh {
                    path: vec![0],
                    id: Some("multiboot-alpha".to_owned()),
                    title: "Alpha".to_owned(),
                    primary: true,
                    old: boot("1.0"),
                    new: boot("2.0"),
                },
                EntryRefresh {
                    path: vec![1, 0],
                    id: None,
                    title: "Alpha (recovery)".to_owned(),
                    primary: false,
                    old: boot("1.0"),
                    new: boot("1.0"),
                },
            ],
            grub_cfg: Some(String::new()),
        }
    }

    #[test]
    fn the_text_says_what_each_entry_boots_before_and_after() {
        let refresh = refresh();
        let report = RefreshReport {
            refresh: &refresh,
            dry_run: true,
            changed: vec!["boot/grub/grub.cfg".to_owned()],
        };
        assert_eq!(
            text(&report),
            "image alpha, root UUID 2abf123d: newest kernel vmlinuz-2.0 (initrd initrd.img-2.0)\n  \
             0 \"Alpha\": /boot/vmlinuz-1.0 -> /boot/vmlinuz-2.0, /boot/initrd.img-1.0 -> \
             /boot/initrd.img-2.0\n  \
             1>0 \"Alpha (recovery)\": up to date (/boot/vmlinuz-1.0, /boot/initrd.img-1.0)\n\
             would write: boot/grub/grub.cfg (dry run: nothing changed)"
        );
        let report = RefreshReport {
            changed: Vec::new(),
            dry_run: false,
            ..report
        };
        assert!(text(&report).ends_with("\nnothing to change: the entries are up to date"));
        let value = json(&report);
        assert_eq!(value["entries"][0]["new"]["kernel"], "/boot/vmlinuz-2.0");
        assert_eq!(value["entries"][1]["changed"], false);
        assert_eq!(value["entries"][1]["index"], "1>0");
    }
}
