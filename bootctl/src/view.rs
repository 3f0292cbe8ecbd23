//! What the boot files say, as one list of entries with their marks. Pure: no I/O.

use serde::Serialize;
use shared::bootinfo::{BootElement, BootInfo};
use shared::grubcfg::{
    self, ItemKind, Menu, MenuItem, BOOT_STAMP, TRY_FAILED, TRY_LEFT, TRY_VARIABLE,
};
use shared::grubenv::GrubEnv;

/// The files on the multiboot partition that decide what boots.
#[derive(Debug, Clone)]
pub struct BootFiles {
    pub grub_cfg: String,
    /// None when the partition has no grubenv.
    pub grubenv: Option<GrubEnv>,
    /// None when the partition has no boot-info.json (a config bootctl's deployer did not write).
    pub boot_info: Option<BootInfo>,
}

/// How a grub.cfg chooses what to boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Method {
    /// A literal `set default=...` in grub.cfg (what grub-mkconfig and the spec's flow write).
    #[serde(rename = "grub.cfg")]
    GrubCfg,
    /// `saved_entry` (persistent) or `next_entry` (one-shot) in grubenv.
    #[serde(rename = "grubenv")]
    Grubenv,
}

impl Method {
    /// Where the choice lives, for people.
    pub fn describe(self, one_shot: bool) -> &'static str {
        match (self, one_shot) {
            (Method::GrubCfg, _) => "the `set default=` line of grub.cfg",
            (Method::Grubenv, false) => "saved_entry in grubenv",
            (Method::Grubenv, true) => "next_entry in grubenv (GRUB clears it as it boots)",
        }
    }
}

/// One bootable menu entry and what is known about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// GRUB's address: "2", or "1>0" inside a submenu.
    pub index: String,
    pub path: Vec<usize>,
    pub id: Option<String>,
    pub title: String,
    pub image_name: Option<String>,
    pub os_id: Option<String>,
    pub root_uuid: Option<String>,
    pub running: bool,
    pub default: bool,
    pub next: bool,
    /// The entry of an active trial boot (`switch --try`).
    pub trial: bool,
    /// Index into boot-info.json's elements of the image this entry boots.
    #[serde(skip)]
    pub element: Option<usize>,
    /// True for the entry boot-info.json names as its image's (`grub_id`).
    #[serde(skip)]
    pub primary: bool,
    /// The names boot-info.json gives this entry's image: `image_name`, and the provision
    /// `name` where the deployer recorded it.
    #[serde(skip)]
    pub image_names: Vec<String>,
    /// The value that makes GRUB choose this entry: ids where the entry and its submenus
    /// have them, indices where not.
    #[serde(skip)]
    pub grub_value: String,
}

/// Everything list, status and switch show.
#[derive(Debug, Clone)]
pub struct View {
    pub entries: Vec<Entry>,
    pub persistent: Method,
    /// None when grub.cfg does not read next_entry from grubenv.
    pub one_shot: Option<Method>,
    /// The `default` value GRUB will see without a one-shot choice.
    pub default_value: String,
    /// The pending one-shot value, if any.
    pub next_value: Option<String>,
    /// Whether grub.cfg counts trial boots down (reads `mb_try` after `load_env`).
    pub can_try: bool,
    /// The active trial boot, if any.
    pub trial: Option<Trial>,
    /// The entry of the last trial GRUB gave up on, as grubenv names it.
    pub trial_failed: Option<Named>,
    /// What GRUB recorded as it booted an entry that stamps ([`BOOT_STAMP`]).
    pub last_boot: Option<Named>,
    /// Whether the running entry stamps [`BOOT_STAMP`] as it boots: only then can bootctl
    /// tell whether GRUB wrote grubenv on this boot.
    pub running_stamps: bool,
}

/// A trial boot in progress: GRUB boots `entry` while `tries_left` is above 0, counting
/// down, then gives up and boots the default.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    pub value: String,
    /// Index into [`View::entries`]; None when the value names no entry.
    pub entry: Option<usize>,
    /// None when grubenv holds no count GRUB understands (it then gives up at once).
    pub tries_left: Option<u32>,
}

/// A grubenv value that names an entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Named {
    pub value: String,
    /// Index into [`View::entries`]; None when the value names no entry.
    pub entry: Option<usize>,
}

/// Whether GRUB wrote grubenv as it booted the running image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrubWrote {
    /// The stamp names the running entry, or another entry of its root.
    Yes,
    /// The running entry stamps, but grubenv names another entry or none: GRUB could not
    /// write it, or something other than this GRUB booted the image.
    No,
    /// No running entry, or one that does not stamp: nothing to tell by.
    Unknown,
}

impl View {
    pub fn default_entry(&self) -> Option<&Entry> {
        self.entries.iter().find(|entry| entry.default)
    }

    pub fn next_entry(&self) -> Option<&Entry> {
        self.entries.iter().find(|entry| entry.next)
    }

    pub fn running_entry(&self) -> Option<&Entry> {
        self.entries.iter().find(|entry| entry.running)
    }

    /// The entry GRUB boots at the next boot: the one-shot choice, else a trial with tries
    /// left, else the default.
    pub fn next_boot(&self) -> Option<&Entry> {
        self.next_entry()
            .or_else(|| self.trial_entry_next())
            .or_else(|| self.default_entry())
    }

    /// The trial entry, when the next boot without a one-shot choice boots it.
    fn trial_entry_next(&self) -> Option<&Entry> {
        let trial = self.trial.as_ref()?;
        if trial.tries_left? == 0 {
            return None;
        }
        self.entries.get(trial.entry?)
    }

    pub fn entry(&self, index: Option<usize>) -> Option<&Entry> {
        self.entries.get(index?)
    }

    /// Whether GRUB recorded booting the running entry (see [`GrubWrote`]).
    pub fn grub_wrote(&self) -> GrubWrote {
        let Some(running) = self.running_entry().filter(|_| self.running_stamps) else {
            return GrubWrote::Unknown;
        };
        let stamped = self
            .last_boot
            .as_ref()
            .and_then(|named| self.entry(named.entry));
        // Another entry of the same root counts: the stamp is the id of what GRUB booted.
        let same_root = |entry: &Entry| {
            entry.root_uuid.is_some()
                && entry.root_uuid.as_deref().map(str::to_ascii_lowercase)
                    == running.root_uuid.as_deref().map(str::to_ascii_lowercase)
        };
        if stamped.is_some_and(same_root) {
            GrubWrote::Yes
        } else {
            GrubWrote::No
        }
    }
}

/// Combine grub.cfg's menu, grubenv and boot-info.json. `running_root` is the filesystem
/// UUID of the running system's root, if known.
pub fn build(files: &BootFiles, menu: &Menu, running_root: Option<&str>) -> View {
    let env = |key: &str| {
        files
            .grubenv
            .as_ref()
            .and_then(|env| env.get(key))
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    let persistent = if menu.reads_saved_entry {
        Method::Grubenv
    } else {
        Method::GrubCfg
    };
    let one_shot = (menu.reads_next_entry && menu.loads_env).then_some(Method::Grubenv);
    // The last literal `set default=`: the whole choice of a fixed config, and the fallback
    // of one that reads saved_entry (`elif [ "${saved_entry}" ] ... else set default=X`)
    // while grubenv holds none. With neither, GRUB boots entry 0.
    let literal_default = menu
        .defaults
        .iter()
        .rev()
        .find(|assignment| assignment.literal)
        .map(|assignment| assignment.value.clone());
    let default_value = match persistent {
        Method::Grubenv => env("saved_entry").or(literal_default),
        Method::GrubCfg => literal_default,
    }
    .unwrap_or_else(|| "0".to_owned());
    let next_value = one_shot.and_then(|_| env("next_entry"));

    let default_path = resolve_path(menu, &default_value).unwrap_or_else(|| vec![0]);
    let next_path = next_value
        .as_deref()
        .and_then(|value| resolve_path(menu, value));
    let can_try = menu.reads_try && menu.loads_env;
    let trial_value = env(TRY_VARIABLE).filter(|_| can_try);
    let trial_path = trial_value
        .as_deref()
        .and_then(|value| resolve_path(menu, value));

    let mut entries: Vec<Entry> = menu
        .entries()
        .into_iter()
        .map(|entry_ref| {
            let root_uuid = entry_ref.item.root_uuid().map(str::to_owned);
            let (element, primary) = find_element(
                files.boot_info.as_ref(),
                &entry_ref.path,
                root_uuid.as_deref(),
            );
            let element_data =
                element.and_then(|i| files.boot_info.as_ref().map(|info| &info.elements[i]));
            Entry {
                index: grubcfg::address(&entry_ref.path),
                grub_value: grub_value(menu, &entry_ref.path),
                id: entry_ref.item.id.clone(),
                title: entry_ref.item.title.clone(),
                image_name: element_data.map(|e| e.image_name.clone()),
                os_id: element_data.map(|e| e.os_id.clone()),
                root_uuid: root_uuid.or_else(|| element_data.map(|e| e.root_uuid.clone())),
                running: false,
                default: entry_ref.path == default_path,
                next: next_path.as_ref() == Some(&entry_ref.path),
                trial: trial_path.as_ref() == Some(&entry_ref.path),
                image_names: element_data.map(image_names).unwrap_or_default(),
                element,
                primary,
                path: entry_ref.path,
            }
        })
        .collect();

    let mut running_stamps = false;
    if let Some(root) = running_root {
        let matches = |entry: &Entry| {
            entry
                .root_uuid
                .as_deref()
                .is_some_and(|uuid| uuid.eq_ignore_ascii_case(root))
        };
        let running = entries
            .iter()
            .position(|entry| entry.primary && matches(entry))
            .or_else(|| entries.iter().position(matches));
        if let Some(i) = running {
            entries[i].running = true;
            running_stamps = menu
                .entry(&entries[i].path)
                .is_some_and(MenuItem::stamps_boot);
        }
    }
    let named = |value: String| Named {
        entry: resolve_path(menu, &value)
            .and_then(|path| entries.iter().position(|e| e.path == path)),
        value,
    };
    let trial = trial_value.map(|value| {
        let Named { value, entry } = named(value);
        Trial {
            value,
            entry,
            tries_left: env(TRY_LEFT).and_then(|left| left.parse().ok()),
        }
    });
    let trial_failed = env(TRY_FAILED).filter(|_| can_try).map(named);
    let last_boot = env(BOOT_STAMP).map(named);

    View {
        entries,
        persistent,
        one_shot,
        default_value,
        next_value,
        can_try,
        trial,
        trial_failed,
        last_boot,
        running_stamps,
    }
}

fn image_names(element: &BootElement) -> Vec<String> {
    let mut names = vec![element.image_name.clone()];
    if let Some(name) = element.extra.get("name").and_then(|name| name.as_str()) {
        if name != element.image_name {
            names.push(name.to_owned());
        }
    }
    names
}

fn resolve_path(menu: &Menu, value: &str) -> Option<Vec<usize>> {
    menu.resolve(value).map(|entry_ref| entry_ref.path)
}

/// The boot-info.json element an entry boots: the element whose `grub_id` is this top-level
/// entry (unless their root UUIDs disagree, which means boot-info.json is stale), else the
/// element with the same root UUID. The bool tells whether the match was by `grub_id`.
fn find_element(
    info: Option<&BootInfo>,
    path: &[usize],
    root: Option<&str>,
) -> (Option<usize>, bool) {
    let Some(info) = info else {
        return (None, false);
    };
    let same_root = |uuid: &str| root.is_some_and(|root| root.eq_ignore_ascii_case(uuid));
    if let [top] = path {
        if let Some(i) = info.elements.iter().position(|element| {
            element.grub_id as usize == *top && (root.is_none() || same_root(&element.root_uuid))
        }) {
            return (Some(i), true);
        }
    }
    let by_root = info
        .elements
        .iter()
        .position(|element| same_root(&element.root_uuid));
    (by_root, false)
}

/// The `default` value that selects the entry at `path`: each level's id where it has one,
/// its index where not, joined by '>'. Falls back to the plain index path if the ids do not
/// lead GRUB back to the same entry (duplicate ids, or an id that equals another title).
fn grub_value(menu: &Menu, path: &[usize]) -> String {
    let mut items: &[MenuItem] = &menu.items;
    let mut parts = Vec::with_capacity(path.len());
    for &i in path {
        let Some(item) = items.get(i) else {
            return grubcfg::address(path);
        };
        parts.push(item.id.clone().unwrap_or_else(|| i.to_string()));
        if let ItemKind::Submenu { items: children } = &item.kind {
            items = children;
        }
    }
    let by_id = parts.join(">");
    match menu.resolve(&by_id) {
        Some(found) if found.path == path => by_id,
        _ => grubcfg::address(path),
    }
}

#[cfg(test)]
mod tests {
    use shared::grubenv::GrubEnv;

    use super::{BootFiles, Method};
    use crate::fixtures::{self, ROOT_A, ROOT_B};

    #[test]
    fn entries_carry_grub_addresses_image_names_and_marks() {
        let files = fixtures::files(fixtures::fixed_cfg(), None);
        let (_, view) = fixtures::load(&files, Some(ROOT_B));
        let summary: Vec<(&str, Option<&str>, bool, bool)> = view
            .entries
            .iter()
            .map(|e| {
                (
                    e.index.as_str(),
                    e.image_name.as_deref(),
                    e.running,
                    e.default,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("0", Some("centos-7.1.1503"), false, true),
                ("1>0", Some("centos-7.1.1503"), false, false),
                ("2", Some("ubuntu"), true, false),
            ]
        );
        assert_eq!(view.persistent, Method::GrubCfg);
        assert_eq!(view.one_shot, Some(Method::Grubenv));
        assert!(view.entries[0].primary && !view.entries[1].primary);
        assert_eq!(
            view.entries[1].grub_value,
            "img-centos-advanced>img-centos-recovery"
        );
        assert_eq!(view.entries[2].grub_value, "2", "no id: the index");
    }

    #[test]
    fn grubenv_decides_default_and_next_when_the_config_reads_it() {
        let mut env = GrubEnv::new();
        env.set("saved_entry", "2").unwrap();
        env.set("next_entry", "img-centos").unwrap();
        let files = fixtures::files(fixtures::saved_entry_cfg(), Some(env));
        let (_, view) = fixtures::load(&files, Some(ROOT_A));
        assert_eq!(view.persistent, Method::Grubenv);
        assert_eq!(view.default_entry().unwrap().index, "2");
        assert_eq!(view.next_entry().unwrap().index, "0");
        assert_eq!(view.next_boot().unwrap().index, "0");
        assert_eq!(
            view.running_entry().unwrap().index,
            "0",
            "the image's own entry, not its recovery entry"
        );
    }

    #[test]
    fn a_saved_entry_config_falls_back_to_its_literal_default_while_grubenv_has_none() {
        let cfg = fixtures::fixed_cfg().replace(
            r#"else
   set default="0""#,
            r#"elif [ "${saved_entry}" ]; then
   set default="${saved_entry}"
else
   set default='2'"#,
        );
        let files = fixtures::files(cfg, None);
        let (_, view) = fixtures::load(&files, None);
        assert_eq!(view.persistent, Method::Grubenv);
        assert_eq!(view.default_entry().unwrap().index, "2");
        let mut env = GrubEnv::new();
        env.set("saved_entry", "img-centos").unwrap();
        let files = BootFiles {
            grubenv: Some(env),
            ..files
        };
        let (_, view) = fixtures::load(&files, None);
        assert_eq!(view.default_entry().unwrap().index, "0");
    }

    #[test]
    fn a_stale_boot_info_grub_id_is_not_trusted_when_roots_disagree() {
        let mut files = fixtures::files(fixtures::fixed_cfg(), None);
        files.boot_info.as_mut().unwrap().elements[1].grub_id = 0;
        let (_, view) = fixtures::load(&files, None);
        assert_eq!(
            view.entries[0].image_name.as_deref(),
            Some("centos-7.1.1503")
        );
        assert_eq!(view.entries[2].image_name.as_deref(), Some("ubuntu"));
        assert!(!view.entries[2].primary);
    }
}
