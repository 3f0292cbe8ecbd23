use std::ptr;

use shared::grubcfg::{self, ItemKind, Menu, MenuItem};

use crate::{check_one_line, VALUE_SEPARATOR};

/// How many entries of a menu [`grubcfg`](crate::grubcfg) sets as the fixed default, by address and by id;
/// each one parses the whole text again.
const FIXED_DEFAULT_ENTRIES: usize = 8;

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
                    // The byte offsets of the boot files move with any edit before them.
                    (
                        ItemKind::Entry {
                            body: bx,
                            kernel: kx,
                            root_uuid: rx,
                            stamps_boot: sx,
                            ..
                        },
                        ItemKind::Entry {
                            body: by,
                            kernel: ky,
                            root_uuid: ry,
                            stamps_boot: sy,
                            ..
                        },
                    ) => (bx, kx, rx, sx) == (by, ky, ry, sy),
                    _ => false,
                }
        })
}
