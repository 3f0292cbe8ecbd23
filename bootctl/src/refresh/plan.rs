//! What `refresh` changes in grub.cfg: the entries of one image pointed at the newest kernel
//! in its `/boot`. Pure: no I/O.
//!
//! The image's entries are those whose `linux` line says `root=UUID=` of its root. Its
//! primary entry (boot-info.json's `grub_id` for that root, else the first of them) boots the
//! newest kernel as the deployer chooses it ([`newest_kernel`]); another entry (a recovery
//! entry, an older kernel listed by grub-mkconfig) keeps its kernel while that file is still
//! in `/boot`. A changed entry keeps the directory its kernel path had (`/boot/`, or `/` when
//! `/boot` is a filesystem of its own); the kernel word is replaced, the last initrd word
//! (earlier ones are microcode) too, or an `initrd` line is added. Nothing else changes, and
//! the edited text is parsed again to prove it.

use serde::Serialize;
use shared::bootinfo::BootInfo;
use shared::grubcfg::{self, ItemKind, Menu, MenuItem};
use shared::kernels::{newest_kernel, KernelPair};

use crate::exit::{fail, Code};

/// The image to refresh: its root filesystem's UUID and the file names in its `/boot`.
#[derive(Debug, Clone)]
pub struct ImageKernels {
    pub root_uuid: String,
    /// The `/boot` directory, for messages.
    pub boot_dir: String,
    pub boot_names: Vec<String>,
}

/// A kernel path and an initrd path, as an entry names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootPaths {
    pub kernel: String,
    pub initrd: Option<String>,
}

/// One entry of the image, before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRefresh {
    pub path: Vec<usize>,
    pub id: Option<String>,
    pub title: String,
    /// The image's own entry, which always boots the newest kernel.
    pub primary: bool,
    pub old: BootPaths,
    pub new: BootPaths,
}

impl EntryRefresh {
    pub fn changed(&self) -> bool {
        self.old != self.new
    }
}

/// What `refresh` found and plans.
#[derive(Debug, Clone)]
pub struct Refresh {
    pub root_uuid: String,
    /// boot-info.json's `image_name` of the image, if it names one.
    pub image_name: Option<String>,
    pub kernel: KernelPair,
    pub entries: Vec<EntryRefresh>,
    /// The new grub.cfg; None when every entry is up to date.
    pub grub_cfg: Option<String>,
}

/// Plans pointing `image`'s entries of `menu` (parsed from `text`) at its newest kernel.
/// Errors: no entry boots the image's root (status 3); no kernel in its `/boot`, an entry
/// that cannot be edited, or an edit that would change more than its kernel and initrd
/// (status 6).
pub fn plan(
    text: &str,
    menu: &Menu,
    boot_info: Option<&BootInfo>,
    image: &ImageKernels,
) -> anyhow::Result<Refresh> {
    let root = image.root_uuid.as_str();
    let entries: Vec<_> = menu
        .entries()
        .into_iter()
        .filter(|entry| {
            entry
                .item
                .root_uuid()
                .is_some_and(|uuid| uuid.eq_ignore_ascii_case(root))
        })
        .collect();
    let Some(first) = entries.first() else {
        return Err(fail(
            Code::Target,
            format!("no entry of grub.cfg boots root=UUID={root}: this image is not on the menu"),
        ));
    };
    let names: Vec<&str> = image.boot_names.iter().map(String::as_str).collect();
    let kernel = newest_kernel(&names).ok_or_else(|| {
        fail(
            Code::Config,
            format!(
                "no kernel (vmlinuz-*) in {}; grub.cfg left unchanged",
                image.boot_dir
            ),
        )
    })?;
    let element = boot_info.and_then(|info| {
        info.elements
            .iter()
            .find(|element| element.root_uuid.eq_ignore_ascii_case(root))
    });
    let primary = element
        .map(|element| vec![element.grub_id as usize])
        .filter(|path| entries.iter().any(|entry| entry.path == *path))
        .unwrap_or_else(|| first.path.clone());

    let mut refreshed = Vec::with_capacity(entries.len());
    let mut edits = Vec::new();
    for entry in &entries {
        let is_primary = entry.path == primary;
        let (change, entry_edits) =
            plan_entry(text, entry.item, &entry.path, is_primary, &kernel, &names)?;
        refreshed.push(change);
        edits.extend(entry_edits);
    }
    let grub_cfg = if edits.is_empty() {
        None
    } else {
        let edited = apply_edits(text, edits)?;
        check_edit(menu, &edited, &refreshed, root)?;
        Some(edited)
    };
    Ok(Refresh {
        root_uuid: root.to_owned(),
        image_name: element.map(|element| element.image_name.clone()),
        kernel,
        entries: refreshed,
        grub_cfg,
    })
}

/// A replacement of `text[range]` (an insertion when the range is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Edit {
    range: std::ops::Range<usize>,
    with: String,
}

/// What becomes of one entry, and the edits of the text that do it.
fn plan_entry(
    text: &str,
    item: &MenuItem,
    path: &[usize],
    primary: bool,
    newest: &KernelPair,
    boot_names: &[&str],
) -> anyhow::Result<(EntryRefresh, Vec<Edit>)> {
    let address = grubcfg::address(path);
    let refuse = |why: String| {
        fail(
            Code::Config,
            format!(
                "entry {address} {:?}: {why}; grub.cfg left unchanged",
                item.title
            ),
        )
    };
    // An entry with a root=UUID= has a linux line, so a kernel and its spans.
    let (Some(kernel), Some(files)) = (item.kernel(), item.boot_files()) else {
        return Err(refuse("no linux line".to_owned()));
    };
    let old = BootPaths {
        kernel: kernel.to_owned(),
        initrd: files.initrd.last().map(|(value, _)| value.clone()),
    };
    let (dir, name) = kernel.split_at(kernel.rfind('/').map_or(0, |slash| slash + 1));
    let mut new = if primary || !boot_names.contains(&name) {
        BootPaths {
            kernel: format!("{dir}{}", newest.kernel),
            initrd: newest
                .initrd
                .as_ref()
                .map(|initrd| format!("{dir}{initrd}")),
        }
    } else {
        old.clone()
    };
    // An entry defined by --source has no spans, so its initrd is unknown: its kernel alone
    // tells whether it is up to date.
    let from_source = files.kernel.is_none();
    if from_source && new.kernel == old.kernel {
        new = old.clone();
    }
    let change = EntryRefresh {
        path: path.to_vec(),
        id: item.id.clone(),
        title: item.title.clone(),
        primary,
        old,
        new,
    };
    if !change.changed() {
        return Ok((change, Vec::new()));
    }
    let Some(kernel_span) = files.kernel.clone() else {
        return Err(refuse(format!(
            "it is defined by --source, whose text bootctl does not edit, and names {kernel}, \
             not {}",
            change.new.kernel
        )));
    };
    if kernel.contains('$') {
        return Err(refuse(format!(
            "its kernel path {kernel:?} expands a variable"
        )));
    }
    let mut edits = Vec::new();
    if change.new.kernel != change.old.kernel {
        edits.push(Edit {
            range: kernel_span.clone(),
            with: grubcfg::quote(&change.new.kernel),
        });
    }
    match (&change.new.initrd, files.initrd.last()) {
        (Some(new), Some((old, span))) if new != old => {
            if old.contains('$') {
                return Err(refuse(format!(
                    "its initrd path {old:?} expands a variable"
                )));
            }
            edits.push(Edit {
                range: span.clone(),
                with: grubcfg::quote(new),
            });
        }
        (Some(_), Some(_)) => {}
        (Some(new), None) => {
            let at = files.kernel_command_end;
            edits.push(Edit {
                range: at..at,
                with: format!(
                    "\n{}initrd {}",
                    indent_of(text, kernel_span.start),
                    grubcfg::quote(new)
                ),
            });
        }
        (None, Some((old, _))) => {
            return Err(refuse(format!(
                "it loads the initrd {old} but {} has none",
                newest.kernel
            )));
        }
        (None, None) => {}
    }
    Ok((change, edits))
}

/// The indentation of the line holding `at` when the command there is the first on its
/// line, else a tab: what an added line after that command is indented by.
fn indent_of(text: &str, at: usize) -> &str {
    let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
    let line = &text[line_start..at];
    let indent_len = line.len() - line.trim_start_matches([' ', '\t']).len();
    let command = &line[indent_len..];
    if command.split_whitespace().count() == 1 {
        &line[..indent_len]
    } else {
        "\t"
    }
}

/// `text` with `edits` (non-overlapping) made.
fn apply_edits(text: &str, mut edits: Vec<Edit>) -> anyhow::Result<String> {
    edits.sort_by_key(|edit| (edit.range.start, edit.range.end));
    let mut out = String::with_capacity(text.len() + 256);
    let mut copied = 0;
    for edit in &edits {
        let before = text
            .get(copied..edit.range.start)
            .filter(|_| edit.range.end <= text.len());
        let Some(before) = before else {
            return Err(fail(
                Code::Config,
                "grub.cfg's kernel and initrd words overlap; grub.cfg left unchanged",
            ));
        };
        out.push_str(before);
        out.push_str(&edit.with);
        copied = edit.range.end;
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

/// One menu item as the check compares it; an entry's body only where it is not edited.
#[derive(Debug, PartialEq, Eq)]
struct Outline {
    path: Vec<usize>,
    title: String,
    id: Option<String>,
    classes: Vec<String>,
    submenu: bool,
    root_uuid: Option<String>,
    kernel: Option<String>,
    initrd: Vec<String>,
    body: Option<String>,
}

fn outline(menu: &Menu, edited: &[EntryRefresh]) -> Vec<Outline> {
    fn walk(
        items: &[MenuItem],
        path: &mut Vec<usize>,
        edited: &[EntryRefresh],
        out: &mut Vec<Outline>,
    ) {
        for (index, item) in items.iter().enumerate() {
            path.push(index);
            let is_edited = edited.iter().any(|entry| entry.path == *path);
            let (submenu, body, initrd) = match &item.kind {
                ItemKind::Entry { body, files, .. } => (
                    false,
                    (!is_edited).then(|| body.clone()),
                    files
                        .initrd
                        .iter()
                        .map(|(value, _)| value.clone())
                        .collect(),
                ),
                ItemKind::Submenu { .. } => (true, None, Vec::new()),
            };
            out.push(Outline {
                path: path.clone(),
                title: item.title.clone(),
                id: item.id.clone(),
                classes: item.classes.clone(),
                submenu,
                root_uuid: item.root_uuid().map(str::to_owned),
                kernel: item.kernel().map(str::to_owned),
                initrd,
                body,
            });
            if let ItemKind::Submenu { items } = &item.kind {
                walk(items, path, edited, out);
            }
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(&menu.items, &mut Vec::new(), edited, &mut out);
    out
}

/// The edited grub.cfg must parse into the same menu but for the kernel and the last
/// initrd of the changed entries, or it is not written.
fn check_edit(
    before: &Menu,
    edited: &str,
    entries: &[EntryRefresh],
    root: &str,
) -> anyhow::Result<()> {
    let refused = |why: String| {
        fail(
            Code::Config,
            format!("editing the entries of root=UUID={root} {why}; grub.cfg left unchanged"),
        )
    };
    let after =
        grubcfg::parse(edited).map_err(|err| refused(format!("would break grub.cfg: {err}")))?;
    let changed: Vec<EntryRefresh> = entries
        .iter()
        .filter(|entry| entry.changed())
        .cloned()
        .collect();
    let mut expected = outline(before, &changed);
    for item in &mut expected {
        if let Some(entry) = changed.iter().find(|entry| entry.path == item.path) {
            item.kernel = Some(entry.new.kernel.clone());
            match (&entry.new.initrd, item.initrd.last_mut()) {
                (Some(new), Some(last)) => last.clone_from(new),
                (Some(new), None) => item.initrd.push(new.clone()),
                (None, _) => {}
            }
        }
    }
    let defaults = |menu: &Menu| -> Vec<(String, bool)> {
        menu.defaults
            .iter()
            .map(|assignment| (assignment.value.clone(), assignment.literal))
            .collect()
    };
    let flags = |menu: &Menu| {
        (
            menu.reads_saved_entry,
            menu.reads_next_entry,
            menu.reads_try,
            menu.loads_env,
        )
    };
    if outline(&after, &changed) != expected
        || defaults(&after) != defaults(before)
        || flags(&after) != flags(before)
    {
        return Err(refused(
            "would change more than their kernel and initrd".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
