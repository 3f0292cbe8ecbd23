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
//! - [`bootinfo`]: JSON naming a key twice in one object is refused as malformed, other
//!   JSON never is; a parsed document writes back to JSON that says the same as the text
//!   read, parses to the same document and writes the same text again; the serde derives
//!   agree with it, and the deployer's `deploy --json` summary lists its elements.
//! - [`provision`]: a rejected config gives at least one error, each in one line (a byte
//!   order mark exactly one, naming it); a valid config keeps the promises of
//!   `deployer::config` (and its kernel parameters hold no quote or backslash, and no
//!   volume takes the multiboot partition's label), plans the same twice on fixed disks,
//!   and a plan's partitions fit their disk without overlapping, its filesystems are large
//!   enough for their mkfs, data is kept only as the policy allows, its fstabs have six
//!   fields a line, and the UUIDs read from kept filesystems replace the planned ones
//!   everywhere; its JSON and text render.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::ptr;

use deployer::config::{
    DiskVolume, FileSystem, FsVolume, PartitionsPolicy, ProvisionConfig, StorageEntry,
};
use deployer::plan::{
    self, Device, DiskInput, DiskPlan, ExistingDisk, FilesystemPlan, Plan, Purpose, SequentialIds,
    BACKUP_GPT_MIB, FIRST_USABLE_MIB,
};
use deployer::render;
use deployer::sfdisk::{Entry, Table};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use shared::bootinfo::{BootInfo, BootInfoError};
use shared::grubcfg::{self, ItemKind, Menu, MenuItem};
use shared::grubenv::{GrubEnv, GrubEnvError, BLOCK_SIZE};
use shared::layout::MULTIBOOT_LABEL;

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

/// boot-info.json: `shared::bootinfo::BootInfo::{from_json, to_json}`, and
/// `deployer::render::deploy_json` of what it accepts (input lossily UTF-8).
pub fn bootinfo(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let repeated = serde_json::from_str::<RepeatedKey>(&text)
        .ok()
        .and_then(|RepeatedKey(key)| key);
    let info = match BootInfo::from_json(&text) {
        Ok(info) => info,
        Err(err) => {
            check_one_line("boot-info.json", &err.to_string());
            let malformed = matches!(err, BootInfoError::Syntax { .. });
            if let Some(key) = repeated {
                let named = format!("duplicate key {}", Value::from(key));
                assert!(
                    malformed && err.to_string().contains(&named),
                    "a document with a repeated key is refused as {err:?}, not for {named}"
                );
            } else {
                assert!(
                    !malformed || serde_json::from_str::<Value>(&text).is_err(),
                    "JSON without a repeated key is refused as malformed: {err}"
                );
            }
            return;
        }
    };
    if let Some(key) = repeated {
        panic!("a document naming {key:?} twice in one object is accepted");
    }
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
    let read: Value = serde_json::from_str(&text).expect("an accepted document is JSON");
    let written: Value = serde_json::from_str(&json).expect("to_json is JSON");
    assert_eq!(
        written, read,
        "to_json says something else than the text read"
    );
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
    assert_eq!(serialized, written, "the serde derive writes differently");
    check_deploy_summary(&info);
}

/// `deploy --json`'s summary of a deploy that wrote `info`: one image per element, in
/// order, the element at `current_element` the only default, and its multiboot partition.
fn check_deploy_summary(info: &BootInfo) {
    let summary = render::deploy_json(&render::DeployOutcome {
        exit: 0,
        disks: &[],
        boot_info: Some((Path::new("/boot-info.json"), info)),
        errors: &[],
        failed_step: None,
    });
    let images = summary["images"].as_array().expect("images is an array");
    assert_eq!(images.len(), info.elements.len(), "deploy summary images");
    for (index, (image, element)) in images.iter().zip(&info.elements).enumerate() {
        assert_eq!(image["image_name"], element.image_name.as_str());
        assert_eq!(image["root_uuid"], element.root_uuid.as_str());
        assert_eq!(image["grub_id"], element.grub_id);
        assert_eq!(
            image["default"],
            index == info.current_element,
            "deploy summary image {index} default"
        );
    }
    assert_eq!(
        summary["multiboot_partition"],
        info.multiboot_partition.as_str()
    );
}

/// A JSON document read without refusing anything, keeping the first key that an object
/// names a second time (keys compared after unescaping), in document order: the model of
/// what boot-info.json's strict reader must refuse.
struct RepeatedKey(Option<String>);

impl<'de> Deserialize<'de> for RepeatedKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RepeatedKeyVisitor)
    }
}

struct RepeatedKeyVisitor;

impl<'de> Visitor<'de> for RepeatedKeyVisitor {
    type Value = RepeatedKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<RepeatedKey, E> {
        Ok(RepeatedKey(None))
    }

    fn visit_i64<E>(self, _: i64) -> Result<RepeatedKey, E> {
        Ok(RepeatedKey(None))
    }

    fn visit_u64<E>(self, _: u64) -> Result<RepeatedKey, E> {
        Ok(RepeatedKey(None))
    }

    fn visit_f64<E>(self, _: f64) -> Result<RepeatedKey, E> {
        Ok(RepeatedKey(None))
    }

    fn visit_str<E>(self, _: &str) -> Result<RepeatedKey, E> {
        Ok(RepeatedKey(None))
    }

    fn visit_unit<E>(self) -> Result<RepeatedKey, E> {
        Ok(RepeatedKey(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RepeatedKey, A::Error> {
        let mut first = None;
        while let Some(RepeatedKey(inner)) = seq.next_element()? {
            first = first.or(inner);
        }
        Ok(RepeatedKey(first))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RepeatedKey, A::Error> {
        let mut first = None;
        let mut keys = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if keys.contains(&key) {
                first = first.or(Some(key));
            } else {
                keys.insert(key);
            }
            let RepeatedKey(inner) = map.next_value()?;
            first = first.or(inner);
        }
        Ok(RepeatedKey(first))
    }
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
            if text.starts_with('\u{feff}') {
                assert!(
                    errors.len() == 1 && errors[0].to_string().contains("byte order mark"),
                    "a text starting with a byte order mark is refused with {errors:?}"
                );
            }
            return;
        }
    };
    assert!(
        !text.starts_with('\u{feff}'),
        "a text starting with a byte order mark is accepted"
    );
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
        assert!(
            volume.label.as_deref() != Some(MULTIBOOT_LABEL),
            "a volume labelled {MULTIBOOT_LABEL:?}, the multiboot partition's label"
        );
    }
    if let Some(params) = &config.kernel_params {
        assert!(
            !params.contains(['"', '\'', '\\']),
            "kernel_params {params:?} with a quote or backslash, which GRUB would escape"
        );
    }
}

/// Whether some volume of `config` keeps its data (`keep_data`).
fn some_volume_keeps_data(config: &ProvisionConfig) -> bool {
    config.partitions.iter().any(|entry| match entry {
        StorageEntry::Disk(disk) => disk.volumes.iter().any(|volume| match volume {
            DiskVolume::Partition(p) => p.fs.keep_data,
            DiskVolume::Raid(r) => r.fs.keep_data,
            _ => false,
        }),
        StorageEntry::VolumeGroup(vg) => vg.volumes.iter().any(|lv| lv.fs.keep_data),
    })
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
            existing: None,
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
    check_filesystems(config, &plan);
    check_kept_uuids(config, &disks, &plan);
    let json = render::plan_json(&plan);
    assert_eq!(
        json["version"],
        render::JSON_VERSION,
        "plan JSON without its version"
    );
    let text = serde_json::to_string(&json).expect("the plan JSON serialises");
    let again: Value = serde_json::from_str(&text).expect("the plan JSON parses");
    assert_eq!(again, json, "the plan JSON does not read back");
    for width in [None, Some(80)] {
        assert!(
            !render::plan_text(&plan, width).is_empty(),
            "an empty plan text"
        );
    }
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
    let mut arrays = HashSet::new();
    for array in &plan.raid_arrays {
        assert!(arrays.insert(&array.name), "md array {} twice", array.name);
    }
    let mut uuids = HashSet::new();
    let mut devices = HashSet::new();
    for fs in &plan.filesystems {
        assert!(uuids.insert(&fs.uuid), "filesystem UUID {} twice", fs.uuid);
        assert!(
            devices.insert(format!("{:?}", fs.device)),
            "two filesystems on {}",
            fs.device
        );
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
            image.is_some_and(|image| plan.layout(image).root_uuid.is_some()),
            "boot entry {name:?} for an image without /"
        );
    }
    for image in &plan.images {
        let mut mount_points = HashSet::new();
        for mount in &plan.layout(image).mounts {
            assert!(
                mount_points.insert(&mount.mount_point),
                "image {:?} mounts {} twice",
                image.name,
                mount.mount_point
            );
        }
    }
}

/// The smallest filesystem mkfs makes of each type, in MiB: mkfs.xfs (xfsprogs 5.19 and
/// later) refuses anything under 300 MB; the others make filesystems of a few KiB.
fn mkfs_minimum_mib(fs_type: FileSystem) -> u64 {
    match fs_type {
        FileSystem::Xfs => 300,
        _ => 1,
    }
}

/// The size of the block device `device` of `plan`, in MiB.
fn device_size_mib(plan: &Plan, device: &Device) -> u64 {
    let size = match device {
        Device::Partition { disk, number } => plan
            .disks
            .iter()
            .filter(|d| d.name == *disk)
            .flat_map(|d| &d.partitions)
            .find(|p| p.number == *number)
            .map(|p| p.size_mib),
        Device::LogicalVolume { vg, lv } => plan
            .volume_groups
            .iter()
            .filter(|g| g.name == *vg)
            .flat_map(|g| &g.logical_volumes)
            .find(|l| l.name == *lv)
            .map(|l| l.size_mib),
        Device::RaidArray { name } => plan
            .raid_arrays
            .iter()
            .find(|a| a.name == *name)
            .map(|a| a.size_mib),
    };
    size.unwrap_or_else(|| panic!("filesystem on {device}, which the plan does not have"))
}

/// Every filesystem fits its mkfs's minimum; data is kept only from a configured volume
/// that keeps it, never under the `clean` policy; only the multiboot partition has its
/// label; every fstab line has its six fields.
fn check_filesystems(config: &ProvisionConfig, plan: &Plan) {
    assert_eq!(
        plan.partitions_policy, config.partitions_policy,
        "the plan's partitions policy"
    );
    let keeps_any = some_volume_keeps_data(config);
    for fs in &plan.filesystems {
        let size_mib = device_size_mib(plan, &fs.device);
        let minimum = mkfs_minimum_mib(fs.fs_type);
        assert!(
            size_mib >= minimum,
            "{} on {} of {size_mib} MiB, under mkfs's {minimum} MiB",
            fs.fs_type.as_str(),
            fs.device
        );
        if fs.keep_data {
            assert!(
                config.partitions_policy != PartitionsPolicy::Clean,
                "{} keeps its data under the clean policy",
                fs.device
            );
            assert!(
                keeps_any && matches!(fs.purpose, Purpose::Volume(_)),
                "{} keeps its data, which no volume asks for",
                fs.device
            );
        }
        assert_eq!(
            fs.label.as_deref() == Some(MULTIBOOT_LABEL),
            fs.purpose == Purpose::Multiboot,
            "{} is labelled {:?}",
            fs.device,
            fs.label
        );
    }
    for image in &plan.images {
        for line in plan
            .layout(image)
            .fstab
            .lines()
            .filter(|line| !line.starts_with('#'))
        {
            assert_eq!(
                line.split_whitespace().count(),
                6,
                "image {:?}: fstab line {line:?} has not six fields",
                image.name
            );
        }
    }
}

/// What planning onto disks that hold a table and filesystems does (`DiskInput::existing`),
/// under a policy that keeps them: disks holding exactly the plan's own GUIDs and UUIDs
/// give the same plan; given new UUIDs for the kept filesystems on partitions, the plan
/// takes them, and each image's mounts, root, boot and fstab name the new UUID and never
/// the planned one.
fn check_kept_uuids(config: &ProvisionConfig, disks: &[DiskInput], plan: &Plan) {
    if !plan.keeps_partition_tables() {
        return;
    }
    let holding = |uuid_of: &dyn Fn(&FilesystemPlan) -> String| -> Vec<DiskInput> {
        disks
            .iter()
            .zip(&plan.disks)
            .map(|(input, disk)| DiskInput {
                existing: Some(existing_as_planned(plan, disk, uuid_of)),
                ..input.clone()
            })
            .collect()
    };
    let same = plan::plan(
        config,
        &holding(&|fs| fs.uuid.clone()),
        &mut SequentialIds::default(),
    );
    assert_eq!(
        same.as_ref(),
        Ok(plan),
        "disks holding the plan's own GUIDs and UUIDs change it"
    );
    let kept: Vec<(Device, String, String)> = plan
        .filesystems
        .iter()
        .filter(|fs| fs.keep_data && matches!(fs.device, Device::Partition { .. }))
        .enumerate()
        .map(|(i, fs)| {
            let found = format!("f0f0f0f0-0000-4000-8000-{:012x}", i + 1);
            (fs.device.clone(), fs.uuid.clone(), found)
        })
        .collect();
    if kept.is_empty() {
        return;
    }
    let new_uuid = |fs: &FilesystemPlan| {
        kept.iter()
            .find(|(device, _, _)| *device == fs.device)
            .map_or_else(|| fs.uuid.clone(), |(_, _, found)| found.clone())
    };
    let after = plan::plan(config, &holding(&new_uuid), &mut SequentialIds::default())
        .unwrap_or_else(|errors| panic!("disks holding the kept filesystems: {errors:?}"));
    for (device, planned, found) in &kept {
        let fs = after.filesystems.iter().find(|fs| fs.device == *device);
        assert_eq!(
            fs.map(|fs| &fs.uuid),
            Some(found),
            "kept filesystem {device}"
        );
        for image in &after.images {
            let layout = after.layout(image);
            for mount in layout.mounts.iter().filter(|m| m.device == *device) {
                assert_eq!(&mount.uuid, found, "image {:?} mounts {device}", image.name);
            }
            for uuid in [&layout.root_uuid, &layout.boot_uuid].into_iter().flatten() {
                assert_ne!(uuid, planned, "image {:?} boots {device}", image.name);
            }
            assert!(
                !layout.fstab.contains(&format!("UUID={planned} ")),
                "image {:?}: fstab names {device} by its planned UUID",
                image.name
            );
        }
    }
}

/// What `disk` holds once deployed as `plan` says: its table as sfdisk reports it, and each
/// partition's filesystem as blkid does, with the UUID `uuid_of` gives.
fn existing_as_planned(
    plan: &Plan,
    disk: &DiskPlan,
    uuid_of: &dyn Fn(&FilesystemPlan) -> String,
) -> ExistingDisk {
    let sectors = |mib: u64| mib * 2048;
    let partitions = disk
        .partitions
        .iter()
        .map(|p| Entry {
            node: format!("{}p{}", disk.path.display(), p.number),
            start: sectors(p.start_mib),
            size: sectors(p.size_mib),
            type_guid: p.type_guid.to_owned(),
            uuid: Some(p.partition_uuid.to_uppercase()),
            name: p.name.clone(),
            attrs: None,
        })
        .collect();
    let filesystems = disk
        .partitions
        .iter()
        .map(|p| {
            let device = Device::Partition {
                disk: disk.name.clone(),
                number: p.number,
            };
            let mut found = BTreeMap::new();
            if let Some(fs) = plan.filesystems.iter().find(|fs| fs.device == device) {
                found.insert("TYPE".to_owned(), fs.fs_type.as_str().to_owned());
                found.insert("UUID".to_owned(), uuid_of(fs));
                if let Some(label) = &fs.label {
                    found.insert("LABEL".to_owned(), label.clone());
                }
            }
            (p.number, Ok(found))
        })
        .collect();
    ExistingDisk::Table {
        table: Table {
            label: "gpt".to_owned(),
            firstlba: Some(sectors(FIRST_USABLE_MIB)),
            sectorsize: Some(512),
            partitions,
        },
        filesystems,
    }
}
