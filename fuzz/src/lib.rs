//! The property checks behind the fuzz targets, as plain functions.
//!
//! Each check takes the raw input bytes, runs one of the project's parsers on them and
//! panics, with a message naming the property, as soon as a property does not hold: a
//! panic is what libFuzzer records as a crash. The targets in `fuzz_targets/` only call
//! these functions; `tests/corpus.rs` runs every kept corpus file and crash input through
//! them on stable Rust.
//!
//! Besides "no panic", the checks are:
//! - [`grubcfg`]: a parse error names a line of the text, in one line of message; every
//!   entry of a parsed menu resolves back to itself by its address and, when its ids are
//!   unique and not numbers, by its ids; [`grubcfg::quote`] of any string without a NUL
//!   reads back as that one word; [`grubcfg::set_fixed_default`] gives a text that parses
//!   to the same menu with every literal default set to the value, which resolves as before.
//! - [`grubenv`]: only a block of exactly 1024 bytes parses; a parsed block writes back to
//!   1024 bytes that parse to the same environment; `set` and `unset` do what they say,
//!   refuse what grub cannot store, and never leave an environment that does not round trip.
//! - [`bootinfo`]: a parsed document writes back to JSON that parses to the same document
//!   and writes the same text again, and the serde derives agree with it.
//! - [`provision`]: a rejected config gives at least one error, each in one line; a valid
//!   config keeps the promises of `deployer::config`, plans the same twice on fixed disks,
//!   and a plan's partitions fit their disk without overlapping; its JSON and text render.

use std::collections::HashSet;
use std::path::PathBuf;
use std::ptr;

use deployer::config::{DiskVolume, FsVolume, ProvisionConfig, StorageEntry};
use deployer::plan::{self, DiskInput, Plan, SequentialIds, BACKUP_GPT_MIB, FIRST_USABLE_MIB};
use deployer::render;
use serde_json::Value;
use shared::bootinfo::BootInfo;
use shared::grubcfg::{self, ItemKind, Menu, MenuItem};
use shared::grubenv::{GrubEnv, GrubEnvError, BLOCK_SIZE};

/// A property check: panics when the input breaks a property.
pub type Check = fn(&[u8]);

/// Every fuzz target: its name (of `fuzz_targets/NAME.rs`, `corpus/NAME/` and
/// `artifacts-kept/NAME/`) and its check.
pub const TARGETS: [(&str, Check); 4] = [
    ("grubcfg", grubcfg),
    ("grubenv", grubenv),
    ("bootinfo", bootinfo),
    ("provision", provision),
];

/// Separates the grub.cfg text from the extra value in a [`grubcfg`] input. It never occurs
/// in UTF-8, so no text loses anything to it.
pub const VALUE_SEPARATOR: u8 = 0xff;

/// How many entries of a menu [`grubcfg`] sets as the fixed default, by address and by id;
/// each one parses the whole text again.
const FIXED_DEFAULT_ENTRIES: usize = 8;

/// The sizes of the disks [`provision`] plans a valid config on: 1 GiB, on which the
/// examples fit and many configs do not, and 64 TiB, for sizes near the limits.
pub const DISK_SIZES: [u64; 2] = [1 << 30, 1 << 46];

/// A message meant for a person is one line: not empty, no line breaks.
fn check_one_line(what: &str, message: &str) {
    assert!(!message.is_empty(), "{what}: empty error message");
    assert!(
        !message.contains(['\n', '\r']),
        "{what}: error message is not one line: {message:?}"
    );
}

/// grub.cfg: `shared::grubcfg::{parse, Menu::entries, Menu::resolve, address, quote,
/// set_fixed_default}`.
///
/// The input is the grub.cfg text (lossily UTF-8), optionally followed by
/// [`VALUE_SEPARATOR`] and a value (lossily UTF-8) that is quoted and set as the fixed
/// default.
pub fn grubcfg(data: &[u8]) {
    let (cfg, value) = match data.iter().position(|&b| b == VALUE_SEPARATOR) {
        Some(at) => (&data[..at], Some(String::from_utf8_lossy(&data[at + 1..]))),
        None => (data, None),
    };
    let text = String::from_utf8_lossy(cfg);
    // GRUB reads a grub.cfg line only up to a NUL, and `parse` refuses one: a value holding
    // a NUL cannot be written into a config.
    let value = value.filter(|value| !value.contains('\0'));
    if let Some(value) = &value {
        check_quote(value);
    }
    let menu = match grubcfg::parse(&text) {
        Ok(menu) => menu,
        Err(err) => {
            let lines = text.matches('\n').count() + 1;
            assert!(
                (1..=lines).contains(&err.line()),
                "parse error names line {} of a {lines}-line text: {err}",
                err.line()
            );
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("line {}: ", err.line())),
                "parse error does not start with its line: {message:?}"
            );
            check_one_line("grub.cfg", &message);
            return;
        }
    };
    let entries = menu.entries();
    for pair in entries.windows(2) {
        assert!(
            pair[0].path < pair[1].path,
            "entries are not in menu order: {:?} before {:?}",
            pair[0].path,
            pair[1].path
        );
    }
    for entry in &entries {
        let address = grubcfg::address(&entry.path);
        check_resolves(&menu, &address, &entry.path, entry.item);
        if let Some(spec) = id_spec(&menu, &entry.path) {
            check_resolves(&menu, &spec, &entry.path, entry.item);
        }
    }
    if let Some(value) = &value {
        check_fixed_default(&text, &menu, value, None);
    }
    for entry in entries.iter().take(FIXED_DEFAULT_ENTRIES) {
        let address = grubcfg::address(&entry.path);
        check_fixed_default(&text, &menu, &address, Some(&entry.path));
        if let Some(spec) = id_spec(&menu, &entry.path) {
            check_fixed_default(&text, &menu, &spec, Some(&entry.path));
        }
    }
}

/// `menu.resolve(value)` is the entry `item` at `path`.
fn check_resolves(menu: &Menu, value: &str, path: &[usize], item: &MenuItem) {
    match menu.resolve(value) {
        Some(found) => assert!(
            found.path == path && ptr::eq(found.item, item),
            "{value:?} resolves to {:?}, not to the entry at {path:?}",
            found.path
        ),
        None => panic!("{value:?} does not resolve; it names the entry at {path:?}"),
    }
}

/// The name GRUB matches an item by, besides its title: its id, else its title.
fn id_of(item: &MenuItem) -> &str {
    item.id.as_deref().unwrap_or(&item.title)
}

/// A name as GRUB compares it: a C string, which ends at the first NUL.
fn c_string(name: &str) -> &str {
    name.split('\0').next().unwrap_or_default()
}

/// The `default` value naming the entry at `path` by the ids of the items along it
/// (`>` inside an id written `>>`), when each id names its item alone: it is not empty,
/// holds no NUL (GRUB's strings end there), does not start like a number (GRUB reads a
/// number as an index), below the top level does not start with `>` (after the separator
/// `>`, GRUB reads `>>` as an escaped `>`, so such a name cannot be written), and no other
/// item of its menu has it as title or id, compared up to their first NUL.
fn id_spec(menu: &Menu, path: &[usize]) -> Option<String> {
    let mut items = &menu.items[..];
    let mut parts = Vec::new();
    for (depth, &index) in path.iter().enumerate() {
        let item = &items[index];
        let name = id_of(item);
        let numeric = name
            .trim_start_matches([' ', '\t', '\n', '\r'])
            .starts_with(|c: char| c.is_ascii_digit());
        let shared = items.iter().enumerate().any(|(i, other)| {
            i != index && (c_string(&other.title) == name || c_string(id_of(other)) == name)
        });
        let after_separator = depth > 0 && name.starts_with('>');
        if name.is_empty() || name.contains('\0') || numeric || after_separator || shared {
            return None;
        }
        parts.push(name.replace('>', ">>"));
        if let ItemKind::Submenu { items: inner } = &item.kind {
            items = inner;
        }
    }
    Some(parts.join(">"))
}

/// `quote(value)` reads back as exactly `value`: as a `default` value, a title and an id.
fn check_quote(value: &str) {
    let quoted = grubcfg::quote(value);
    let text = format!("set default={quoted}\n");
    let menu = grubcfg::parse(&text).unwrap_or_else(|err| panic!("{text:?} does not parse: {err}"));
    assert!(
        menu.defaults.len() == 1 && menu.defaults[0].value == value && menu.defaults[0].literal,
        "{text:?} reads as {:?}",
        menu.defaults
    );
    let text = format!("menuentry --id={quoted} -- {quoted} {{ true; }}\n");
    let menu = grubcfg::parse(&text).unwrap_or_else(|err| panic!("{text:?} does not parse: {err}"));
    assert!(
        menu.items.len() == 1
            && menu.items[0].title == value
            && menu.items[0].id.as_deref() == Some(value),
        "{text:?} reads as {:?}",
        menu.items
    );
}

/// `set_fixed_default(text, menu, value)` parses; its menu and non-literal defaults are
/// those of `text`; its literal defaults (all of them, or the one inserted) are `value`;
/// and `value` resolves as it did in `text` (to the entry at `path` when given).
fn check_fixed_default(text: &str, menu: &Menu, value: &str, path: Option<&[usize]>) {
    let out = grubcfg::set_fixed_default(text, menu, value);
    let again = grubcfg::parse(&out).unwrap_or_else(|err| {
        panic!("set_fixed_default({value:?}) gives a text that does not parse: {err}\n{out:?}")
    });
    assert!(
        same_items(&again.items, &menu.items),
        "set_fixed_default({value:?}) changes the menu: {out:?}"
    );
    assert_eq!(
        (
            again.reads_saved_entry,
            again.reads_next_entry,
            again.loads_env
        ),
        (
            menu.reads_saved_entry,
            menu.reads_next_entry,
            menu.loads_env
        ),
        "set_fixed_default({value:?}) changes what the script reads: {out:?}"
    );
    let literal = |m: &Menu| m.defaults.iter().filter(|d| d.literal).count();
    let want_literal = literal(menu).max(1);
    assert!(
        literal(&again) == want_literal
            && again
                .defaults
                .iter()
                .filter(|d| d.literal)
                .all(|d| d.value == value),
        "set_fixed_default({value:?}) gives the defaults {:?}: {out:?}",
        again.defaults
    );
    let expanding = |m: &Menu| -> Vec<String> {
        m.defaults
            .iter()
            .filter(|d| !d.literal)
            .map(|d| d.value.clone())
            .collect()
    };
    assert_eq!(
        expanding(&again),
        expanding(menu),
        "set_fixed_default({value:?}) changes the non-literal defaults: {out:?}"
    );
    let before = menu.resolve(value).map(|e| e.path);
    let after = again.resolve(value).map(|e| e.path);
    assert_eq!(
        after, before,
        "{value:?} resolves differently after set_fixed_default: {out:?}"
    );
    if let Some(path) = path {
        assert_eq!(
            after.as_deref(),
            Some(path),
            "the fixed default {value:?} does not resolve to its entry"
        );
    }
}

/// The same menu items, apart from the lines they are on.
fn same_items(a: &[MenuItem], b: &[MenuItem]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.title == y.title
                && x.id == y.id
                && x.classes == y.classes
                && match (&x.kind, &y.kind) {
                    (ItemKind::Submenu { items: xs }, ItemKind::Submenu { items: ys }) => {
                        same_items(xs, ys)
                    }
                    (entry_x, entry_y) => entry_x == entry_y,
                }
        })
}

/// grubenv: `shared::grubenv::GrubEnv::{parse, to_bytes, set, unset}`.
///
/// The whole input is parsed as a block (only 1024 bytes can succeed). Then its first
/// 1024 bytes, padded with `#`, are the block checked; the bytes after them are operations
/// applied to that environment (or to a new one, if the block does not parse): a tag byte,
/// even for `set` and odd for `unset`, a length byte and that many bytes of name, and for
/// `set` a length byte and that many bytes of value (names and values lossily UTF-8).
pub fn grubenv(data: &[u8]) {
    if data.len() != BLOCK_SIZE {
        match GrubEnv::parse(data) {
            Err(GrubEnvError::WrongSize { len }) if len == data.len() => {}
            other => panic!("a {}-byte block parses as {other:?}", data.len()),
        }
    }
    let (head, mut ops) = data.split_at(data.len().min(BLOCK_SIZE));
    let mut block = head.to_vec();
    block.resize(BLOCK_SIZE, b'#');
    let mut env = match GrubEnv::parse(&block) {
        Ok(env) => {
            check_env_round_trip(&env);
            env
        }
        Err(err) => {
            check_one_line("grubenv", &err.to_string());
            GrubEnv::new()
        }
    };
    while let Some((&tag, rest)) = ops.split_first() {
        let (key, rest) = take_counted(rest);
        ops = rest;
        let before: Vec<(String, String)> = pairs(&env);
        let mut want: Vec<(String, String)> =
            before.iter().filter(|(k, _)| *k != key).cloned().collect();
        if tag % 2 == 0 {
            let (value, rest) = take_counted(ops);
            ops = rest;
            let storable = key_is_storable(&key) && !value.contains('\0');
            match env.set(&key, &value) {
                Ok(()) => {
                    assert!(storable, "set({key:?}, {value:?}) is accepted");
                    match before.iter().position(|(k, _)| *k == key) {
                        Some(at) => want.insert(at, (key.clone(), value.clone())),
                        None => want.push((key.clone(), value.clone())),
                    }
                }
                Err(err) => {
                    assert!(!storable, "set({key:?}, {value:?}) is refused: {err}");
                    check_one_line("grubenv set", &err.to_string());
                    want = before.clone();
                }
            }
            assert_eq!(pairs(&env), want, "after set({key:?}, {value:?})");
        } else {
            env.unset(&key);
            assert_eq!(pairs(&env), want, "after unset({key:?})");
        }
        check_env_round_trip(&env);
    }
}

/// A byte `n` and the `n` bytes after it as a string (lossily UTF-8), and what follows.
fn take_counted(bytes: &[u8]) -> (String, &[u8]) {
    let Some((&len, rest)) = bytes.split_first() else {
        return (String::new(), bytes);
    };
    let (text, rest) = rest.split_at(rest.len().min(usize::from(len)));
    (String::from_utf8_lossy(text).into_owned(), rest)
}

fn pairs(env: &GrubEnv) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// What `GrubEnv::set` documents it accepts as a name: not empty, not starting with `#`,
/// without `=`, newline or NUL.
fn key_is_storable(key: &str) -> bool {
    !key.is_empty() && !key.starts_with('#') && !key.contains(['=', '\n', '\0'])
}

/// `env` writes to exactly 1024 bytes that parse back to `env`, or is too large to fit.
fn check_env_round_trip(env: &GrubEnv) {
    match env.to_bytes() {
        Ok(bytes) => {
            assert_eq!(
                bytes.len(),
                BLOCK_SIZE,
                "to_bytes gives a wrong-sized block"
            );
            match GrubEnv::parse(&bytes) {
                Ok(again) => assert_eq!(&again, env, "to_bytes then parse changes it"),
                Err(err) => panic!("to_bytes gives a block that does not parse: {err}"),
            }
        }
        Err(GrubEnvError::TooLarge { needed }) => {
            assert!(needed > BLOCK_SIZE, "too large at {needed} bytes")
        }
        Err(err) => panic!("to_bytes fails: {err}"),
    }
}

/// boot-info.json: `shared::bootinfo::BootInfo::{from_json, to_json}` (input lossily UTF-8).
pub fn bootinfo(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let info = match BootInfo::from_json(&text) {
        Ok(info) => info,
        Err(err) => return check_one_line("boot-info.json", &err.to_string()),
    };
    assert!(
        !info.multiboot_partition.is_empty(),
        "an empty multiboot_partition is accepted"
    );
    assert!(
        info.elements.is_empty() || info.current_element < info.elements.len(),
        "current_element {} of {} elements is accepted",
        info.current_element,
        info.elements.len()
    );
    let json = info.to_json();
    let again = BootInfo::from_json(&json)
        .unwrap_or_else(|err| panic!("to_json gives a document that does not parse: {err}"));
    assert_eq!(again, info, "to_json then from_json changes it");
    assert_eq!(again.to_json(), json, "to_json is not stable");
    let via_serde: BootInfo = serde_json::from_str(&json)
        .unwrap_or_else(|err| panic!("the serde derive does not read to_json: {err}"));
    assert_eq!(
        via_serde, info,
        "the serde derive reads to_json differently"
    );
    let serialized = serde_json::to_value(&info).expect("the serde derive serialises");
    let written: Value = serde_json::from_str(&json).expect("to_json is JSON");
    assert_eq!(serialized, written, "the serde derive writes differently");
}

/// provision.json: `deployer::validate`, then for a valid config `deployer::plan` on
/// disks of each of [`DISK_SIZES`] with [`SequentialIds`], and the plan's JSON and text
/// (input lossily UTF-8).
pub fn provision(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let config = match deployer::validate(&text) {
        Ok(config) => config,
        Err(errors) => {
            assert!(!errors.is_empty(), "rejected without an error");
            for error in &errors {
                check_one_line("provision.json", &error.to_string());
            }
            return;
        }
    };
    check_config(&config);
    serde_json::to_string(&config).expect("a valid config serialises");
    for size_bytes in DISK_SIZES {
        check_plan(&config, size_bytes);
    }
}

/// The promises of `deployer::config` that the planner relies on.
fn check_config(config: &ProvisionConfig) {
    assert!(!config.images.is_empty(), "a config without images");
    assert!(config.disks().next().is_some(), "a config without a disk");
    let mut names = HashSet::new();
    for image in &config.images {
        let name = &image.name;
        assert!(names.insert(name.as_str()), "image {name:?} twice");
        let mut chars = name.chars();
        assert!(
            name.len() <= 64
                && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
            "unsafe image name {name:?}"
        );
    }
    let mut volumes: Vec<&FsVolume> = Vec::new();
    for entry in &config.partitions {
        match entry {
            StorageEntry::Disk(disk) => {
                volumes.extend(disk.volumes.iter().filter_map(|volume| match volume {
                    DiskVolume::Partition(p) => Some(&p.fs),
                    DiskVolume::Raid(r) => Some(&r.fs),
                    _ => None,
                }))
            }
            StorageEntry::VolumeGroup(vg) => volumes.extend(vg.volumes.iter().map(|lv| &lv.fs)),
        }
    }
    for volume in volumes {
        assert!(!volume.images.is_empty(), "a volume of no image");
        for image in &volume.images {
            assert!(names.contains(image.as_str()), "unknown image {image:?}");
        }
    }
}

/// Plans `config` on disks of `size_bytes` each, twice: the same result both times; its
/// errors are one line each; a plan keeps its partitions inside their disk, in order and
/// without overlaps, boots a planned image, and renders.
fn check_plan(config: &ProvisionConfig, size_bytes: u64) {
    let disks: Vec<DiskInput> = config
        .disks()
        .enumerate()
        .map(|(i, disk)| DiskInput {
            name: disk.id.value.clone(),
            path: PathBuf::from(format!("/dev/fuzz{i}")),
            size_bytes,
            sector_size: 512,
        })
        .collect();
    let first = plan::plan(config, &disks, &mut SequentialIds::default());
    let second = plan::plan(config, &disks, &mut SequentialIds::default());
    assert_eq!(first, second, "two plans of one config differ");
    let plan = match first {
        Ok(plan) => plan,
        Err(errors) => {
            assert!(!errors.is_empty(), "planning failed without an error");
            for error in &errors {
                check_one_line("plan", &error.to_string());
            }
            return;
        }
    };
    check_layout(&plan, size_bytes);
    let json = render::plan_json(&plan);
    assert_eq!(
        json["version"],
        render::JSON_VERSION,
        "plan JSON without its version"
    );
    let text = serde_json::to_string(&json).expect("the plan JSON serialises");
    let again: Value = serde_json::from_str(&text).expect("the plan JSON parses");
    assert_eq!(again, json, "the plan JSON does not read back");
    assert!(!render::plan_text(&plan).is_empty(), "an empty plan text");
}

fn check_layout(plan: &Plan, size_bytes: u64) {
    let last_usable = size_bytes / (1 << 20) - BACKUP_GPT_MIB;
    for disk in &plan.disks {
        let mut next_free = FIRST_USABLE_MIB;
        for (i, partition) in disk.partitions.iter().enumerate() {
            let what = format!("disk {:?} partition {}", disk.name, partition.number);
            assert_eq!(
                partition.number as usize,
                i + 1,
                "{what}: numbered out of order"
            );
            assert!(partition.size_mib > 0, "{what}: empty");
            assert!(
                partition.start_mib >= next_free,
                "{what}: starts at {} MiB, before {next_free} MiB",
                partition.start_mib
            );
            next_free = partition.start_mib + partition.size_mib;
            assert!(
                next_free <= last_usable,
                "{what}: ends at {next_free} MiB, past {last_usable} MiB"
            );
        }
    }
    let mut uuids = HashSet::new();
    for fs in &plan.filesystems {
        assert!(uuids.insert(&fs.uuid), "filesystem UUID {} twice", fs.uuid);
    }
    let boot = &plan.boot;
    assert!(
        boot.entries.contains(&boot.default_image),
        "default image {:?} has no boot entry",
        boot.default_image
    );
    for name in &boot.entries {
        let image = plan.images.iter().find(|image| &image.name == name);
        assert!(
            image.is_some_and(|image| image.root_uuid.is_some()),
            "boot entry {name:?} for an image without /"
        );
    }
    for image in &plan.images {
        let mut mount_points = HashSet::new();
        for mount in &image.mounts {
            assert!(
                mount_points.insert(&mount.mount_point),
                "image {:?} mounts {} twice",
                image.name,
                mount.mount_point
            );
        }
    }
}
