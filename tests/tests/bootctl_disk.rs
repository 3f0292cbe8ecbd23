//! The shipped static bootctl against node-disk images (`--disk node.img`), no QEMU:
//! what it lists, and exactly what it changes on the multiboot partition.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use e2e::bootctl::{bootctl, marked, BootctlRun};
use e2e::cmd;
use e2e::disk::changed_paths;
use e2e::fixture::FixtureImage;
use e2e::grubcfg::{self, MenuStyle};
use e2e::node::{NodeDisk, BOOT_INFO_PATH, GRUBENV_PATH, GRUB_CFG_PATH};
use e2e::tmp::{self, TempDir};

/// The three kinds of grub.cfg a node can carry, each with its base disk.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// Literal `set default="0"` after Debian's next_entry header (3 images).
    FixedNext,
    /// Literal `set default="0"`, no next_entry header: no one-shot possible; no grubenv
    /// either (2 images).
    FixedPlain,
    /// Default from grubenv's saved_entry (3 images).
    Grubenv,
}

impl Kind {
    fn style(self) -> MenuStyle {
        match self {
            Kind::FixedNext => MenuStyle::Fixed {
                next_entry_block: true,
            },
            Kind::FixedPlain => MenuStyle::Fixed {
                next_entry_block: false,
            },
            Kind::Grubenv => MenuStyle::Grubenv,
        }
    }

    fn image_names(self) -> &'static [&'static str] {
        match self {
            Kind::FixedPlain => &["a", "b"],
            Kind::FixedNext | Kind::Grubenv => &["a", "b", "c"],
        }
    }

    /// Built once per test process; tests work on sparse copies.
    fn base(self) -> &'static NodeDisk {
        static DISKS: [OnceLock<NodeDisk>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        DISKS[self as usize].get_or_init(|| {
            let images = self
                .image_names()
                .iter()
                .map(|n| FixtureImage::new(n))
                .collect();
            let path = tmp::process_dir().join(format!("base-{self:?}.img"));
            let builder = NodeDisk::builder(images).menu(self.style());
            let builder = if self == Kind::FixedPlain {
                builder.no_grubenv()
            } else {
                builder
            };
            builder.build(&path)
        })
    }

    /// A fresh copy of the base disk in its own directory.
    fn fresh(self, label: &str) -> (TempDir, NodeDisk) {
        let dir = TempDir::new(label);
        let disk = self.base().copy_to(&dir.join("node.img"));
        (dir, disk)
    }
}

fn run(disk: &NodeDisk, args: &[&str]) -> BootctlRun {
    let mut full = vec!["--disk", disk.path_str()];
    full.extend_from_slice(args);
    bootctl(&full)
}

type Snapshot = BTreeMap<String, Vec<u8>>;

fn text(snapshot: &Snapshot, path: &str) -> String {
    String::from_utf8(snapshot[path].clone()).expect("UTF-8 file")
}

fn boot_info(snapshot: &Snapshot) -> Value {
    serde_json::from_slice(&snapshot[BOOT_INFO_PATH]).expect("boot-info.json is JSON")
}

fn grubenv_list(bytes: &[u8]) -> String {
    let dir = TempDir::new("grubenv");
    let path = dir.join("grubenv");
    std::fs::write(&path, bytes).unwrap();
    cmd::run(Command::new("grub-editenv").arg(&path).arg("list"))
}

fn check_list(kind: Kind) {
    let disk = kind.base();
    let facts = &disk.facts;
    let list = run(disk, &["list", "--json"]).json();
    assert_eq!(list["version"], 1, "{list}");
    let entries = list["entries"].as_array().expect("entries array");
    let expected = grubcfg::entries(facts);
    assert_eq!(
        entries.len(),
        expected.len(),
        "{kind:?}: one entry per bootable menu entry:\n{list:#}"
    );
    for (got, want) in entries.iter().zip(&expected) {
        let image = &facts.image(&want.image).image;
        let ctx = format!("{kind:?}, entry {}:\n{got:#}", want.index());
        assert_eq!(got["index"], want.index().as_str(), "{ctx}");
        assert_eq!(got["path"], serde_json::json!(want.path), "{ctx}");
        assert_eq!(got["id"], want.id.as_str(), "{ctx}");
        assert_eq!(got["title"], want.title.as_str(), "{ctx}");
        assert_eq!(got["root_uuid"], want.root_uuid.as_str(), "{ctx}");
        if want.main {
            assert_eq!(got["image_name"], image.image_name.as_str(), "{ctx}");
            assert_eq!(got["os_id"], image.os_id.as_str(), "{ctx}");
        } else {
            // The contract does not say whether a recovery entry carries its root's image.
            assert!(
                got["image_name"].is_null() || got["image_name"] == image.image_name.as_str(),
                "{ctx}"
            );
        }
        assert_eq!(
            got["running"], false,
            "{ctx}: the host does not run from this disk"
        );
        assert_eq!(got["default"], want.path == [0], "{ctx}");
        assert_eq!(got["next"], false, "{ctx}");
    }

    let status = run(disk, &["status", "--json"]).json();
    assert_eq!(status["version"], 1, "{status:#}");
    assert!(status["running"].is_null(), "{status:#}");
    assert_eq!(status["default"]["id"], "fixture-a", "{status:#}");
    assert!(status["next"].is_null(), "{status:#}");
    let (persistent, one_shot) = match kind {
        Kind::FixedNext => ("grub.cfg", Value::from("grubenv")),
        Kind::FixedPlain => ("grub.cfg", Value::Null),
        Kind::Grubenv => ("grubenv", Value::from("grubenv")),
    };
    assert_eq!(status["persistent_method"], persistent, "{status:#}");
    assert_eq!(status["one_shot_method"], one_shot, "{status:#}");
    assert_eq!(
        status["multiboot"]["uuid"],
        facts.multiboot_uuid.as_str(),
        "{status:#}"
    );
    assert!(status["multiboot"]["boot_dir"].is_string(), "{status:#}");
}

#[test]
fn list_fixed_with_next_entry_block() {
    check_list(Kind::FixedNext);
}

#[test]
fn list_fixed_without_next_entry_block() {
    check_list(Kind::FixedPlain);
}

#[test]
fn list_grubenv() {
    check_list(Kind::Grubenv);
}

/// grub.cfg differs from `before` in exactly one line: `set default="0"` became
/// `set default=<value>` quoted either way, with the same indentation.
fn assert_only_default_changed(before: &str, after: &str, value: &str) {
    let old: Vec<&str> = before.split_inclusive('\n').collect();
    let new: Vec<&str> = after.split_inclusive('\n').collect();
    assert_eq!(old.len(), new.len(), "line count changed:\n{after}");
    let diff: Vec<(&str, &str)> = old
        .iter()
        .zip(&new)
        .filter(|(o, n)| o != n)
        .map(|(o, n)| (*o, *n))
        .collect();
    assert_eq!(diff.len(), 1, "exactly one line changes: {diff:#?}");
    let (o, n) = diff[0];
    assert_eq!(o.trim(), "set default=\"0\"", "{diff:?}");
    let indent = &o[..o.len() - o.trim_start().len()];
    assert!(
        [
            format!("{indent}set default=\"{value}\"\n"),
            format!("{indent}set default='{value}'\n")
        ]
        .iter()
        .any(|line| line == n),
        "{diff:?}"
    );
}

/// boot-info.json equals `before` except for `current_element`, which is `element`.
fn assert_current_element(before: &Snapshot, after: &Snapshot, element: usize) {
    let mut expected = boot_info(before);
    expected["current_element"] = element.into();
    assert_eq!(boot_info(after), expected);
}

fn check_switch(kind: Kind) {
    let (_dir, disk) = kind.fresh("switch");
    let before = disk.multiboot_snapshot();
    let out = run(&disk, &["switch", "fixture-b", "--json"]).json();
    assert_eq!(out["version"], 1, "{out:#}");
    assert_eq!(out["target"]["id"], "fixture-b", "{out:#}");
    assert_eq!(out["once"], false, "{out:#}");
    assert_eq!(out["dry_run"], false, "{out:#}");
    let after = disk.multiboot_snapshot();
    let changed = changed_paths(&before, &after);
    let mut reported: Vec<String> = out["changed"]
        .as_array()
        .expect("changed array")
        .iter()
        .map(|p| p.as_str().expect("path").to_owned())
        .collect();
    reported.sort();
    assert_eq!(reported, changed, "switch --json reports what changed");

    let b = disk.facts.element_index("b");
    assert_current_element(&before, &after, b);
    grubcfg::script_check(&text(&after, GRUB_CFG_PATH));
    match kind {
        Kind::FixedNext | Kind::FixedPlain => {
            assert_eq!(changed, [BOOT_INFO_PATH, GRUB_CFG_PATH]);
            assert_only_default_changed(
                &text(&before, GRUB_CFG_PATH),
                &text(&after, GRUB_CFG_PATH),
                "fixture-b",
            );
        }
        Kind::Grubenv => {
            assert_eq!(changed, [BOOT_INFO_PATH, GRUBENV_PATH]);
            let env = &after[GRUBENV_PATH];
            assert_eq!(env.len(), 1024, "grubenv stays one 1024-byte block");
            assert_eq!(grubenv_list(env), "saved_entry=fixture-b\n");
        }
    }
    let list = run(&disk, &["list", "--json"]).json();
    assert_eq!(marked(&list, "default", "index"), ["2"], "{list:#}");
    assert!(marked(&list, "next", "index").is_empty(), "{list:#}");
}

#[test]
fn switch_fixed_with_next_entry_block_rewrites_only_the_default() {
    check_switch(Kind::FixedNext);
}

#[test]
fn switch_fixed_without_next_entry_block_rewrites_only_the_default() {
    check_switch(Kind::FixedPlain);
}

#[test]
fn switch_grubenv_sets_saved_entry_only() {
    check_switch(Kind::Grubenv);
}

fn check_switch_once(kind: Kind) {
    let (_dir, disk) = kind.fresh("switch-once");
    let before = disk.multiboot_snapshot();
    let out = run(&disk, &["switch", "--once", "fixture-c", "--json"]).json();
    assert_eq!(out["once"], true, "{out:#}");
    assert_eq!(out["target"]["id"], "fixture-c", "{out:#}");
    let after = disk.multiboot_snapshot();
    assert_eq!(
        changed_paths(&before, &after),
        [GRUBENV_PATH],
        "a one-shot choice only touches grubenv"
    );
    let env = &after[GRUBENV_PATH];
    assert_eq!(env.len(), 1024, "grubenv stays one 1024-byte block");
    let vars = grubenv_list(env);
    assert!(vars.lines().any(|l| l == "next_entry=fixture-c"), "{vars}");
    let list = run(&disk, &["list", "--json"]).json();
    assert_eq!(marked(&list, "next", "index"), ["3"], "{list:#}");
    assert_eq!(marked(&list, "default", "index"), ["0"], "{list:#}");
}

#[test]
fn switch_once_fixed_with_next_entry_block_sets_next_entry() {
    check_switch_once(Kind::FixedNext);
}

#[test]
fn switch_once_grubenv_sets_next_entry() {
    check_switch_once(Kind::Grubenv);
}

/// Runs `args` on a fresh copy of `kind`'s disk, expects exit `code`, and checks that
/// the multiboot partition did not change. Returns the run.
fn expect_no_change(kind: Kind, args: &[&str], code: i32) -> BootctlRun {
    let (_dir, disk) = kind.fresh("no-change");
    let before = disk.multiboot_snapshot();
    let out = run(&disk, args);
    out.expect_code(code);
    let after = disk.multiboot_snapshot();
    assert_eq!(
        changed_paths(&before, &after),
        Vec::<String>::new(),
        "`{}` must change nothing",
        out.command
    );
    out
}

#[test]
fn switch_once_without_next_entry_block_is_unsupported() {
    let out = expect_no_change(Kind::FixedPlain, &["switch", "--once", "fixture-b"], 6);
    assert!(!out.stderr.trim().is_empty(), "exit 6 explains itself");
}

#[test]
fn dry_run_changes_nothing() {
    for (kind, once) in [
        (Kind::FixedNext, false),
        (Kind::FixedNext, true),
        (Kind::FixedPlain, false),
        (Kind::Grubenv, false),
        (Kind::Grubenv, true),
    ] {
        let mut args = vec!["switch", "fixture-b", "--dry-run", "--json"];
        if once {
            args.push("--once");
        }
        let out = expect_no_change(kind, &args, 0).json();
        assert_eq!(out["dry_run"], true, "{kind:?}: {out:#}");
        assert_eq!(out["once"], once, "{kind:?}: {out:#}");
        assert_eq!(out["target"]["id"], "fixture-b", "{kind:?}: {out:#}");
        let changed = out["changed"].as_array().expect("changed array");
        assert!(
            !changed.is_empty(),
            "{kind:?}: a dry run names what it would change"
        );
    }
}

#[test]
fn unknown_target_exits_3_and_lists_candidates() {
    let out = expect_no_change(Kind::FixedNext, &["switch", "no-such-image"], 3);
    for entry in grubcfg::entries(&Kind::FixedNext.base().facts) {
        assert!(
            out.stderr.contains(&entry.id) || out.stderr.contains(&entry.title),
            "candidate {} missing from:\n{}",
            entry.id,
            out.stderr
        );
    }
}

#[test]
fn ambiguous_target_exits_3() {
    let dir = TempDir::new("ambiguous");
    let disk = NodeDisk::builder(vec![
        FixtureImage::new("a").title("Fixture Twin"),
        FixtureImage::new("b").title("Fixture Twin"),
    ])
    .menu(Kind::FixedNext.style())
    .build(&dir.join("node.img"));
    let before = disk.multiboot_snapshot();
    let out = run(&disk, &["switch", "Fixture Twin"]);
    out.expect_code(3);
    for id in ["fixture-a", "fixture-b"] {
        assert!(
            out.stderr.contains(id),
            "{id} missing from:\n{}",
            out.stderr
        );
    }
    assert_eq!(
        changed_paths(&before, &disk.multiboot_snapshot()),
        Vec::<String>::new()
    );
}

/// Switches a fresh fixed-style disk to `target` and returns the literal `set default=`
/// value (unquoted).
fn switch_by(target: &str) -> String {
    let (_dir, disk) = Kind::FixedNext.fresh("switch-by");
    run(&disk, &["switch", target]).expect_code(0);
    let cfg = text(&disk.multiboot_snapshot(), GRUB_CFG_PATH);
    grubcfg::script_check(&cfg);
    cfg.lines()
        .filter_map(|l| l.trim().strip_prefix("set default="))
        .filter(|v| !v.contains('$'))
        .find_map(|v| {
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        })
        .unwrap_or_else(|| panic!("no literal default in:\n{cfg}"))
        .to_owned()
}

#[test]
fn switch_by_index_id_title_image_name_and_provision_name() {
    let b = &Kind::FixedNext.base().facts.image("b").image;
    for target in [
        "2",
        "fixture-b",
        b.title.as_str(),
        b.image_name.as_str(),
        "b",
    ] {
        assert_eq!(switch_by(target), "fixture-b", "switch {target:?}");
    }
}

#[test]
fn switch_into_a_submenu_writes_the_id_path() {
    let facts = &Kind::FixedNext.base().facts;
    let path = format!("{}>fixture-a-recovery", grubcfg::advanced_id(facts));
    assert_eq!(
        switch_by("1>0"),
        path,
        "GRUB needs submenu>entry for a nested default"
    );
}

#[test]
fn the_boot_dir_is_the_multiboot_root() {
    let (dir, disk) = Kind::FixedNext.fresh("boot-dir");
    let mounted = disk.mount_multiboot(&dir.join("mnt"), false);
    let boot_dir = mounted.path().to_str().expect("UTF-8 path");
    let list = bootctl(&["--boot-dir", boot_dir, "list", "--json"]).json();
    assert_eq!(marked(&list, "default", "index"), ["0"], "{list:#}");
    bootctl(&["--boot-dir", boot_dir, "switch", "fixture-c"]).expect_code(0);
    let info: Value =
        serde_json::from_slice(&std::fs::read(Path::new(boot_dir).join(BOOT_INFO_PATH)).unwrap())
            .unwrap();
    assert_eq!(info["current_element"], disk.facts.element_index("c"));
}

/// On a partition bootctl mounts itself (a detached mount, which has no path of its own),
/// a grub.cfg that is a symlink out of the partition is refused, absolute or by `..`, and
/// the file it names is never written.
#[test]
fn a_grub_cfg_linking_out_of_the_partition_is_refused() {
    let outside = TempDir::new("disk-link-outside");
    let host_cfg = outside.join("grub.cfg");
    // As many `..` as it takes from boot/grub to the host's / and more: beyond the root of
    // the partition whatever its mount point.
    let climb = "../".repeat(host_cfg.components().count() + 4);
    let relative = format!("{climb}{}", host_cfg.display());
    for (how, target) in [
        ("absolute", host_cfg.display().to_string()),
        ("relative", relative),
    ] {
        let (dir, disk) = Kind::FixedNext.fresh(&format!("link-out-{how}"));
        {
            let mounted = disk.mount_multiboot(&dir.join("mnt"), false);
            let cfg = mounted.path().join(GRUB_CFG_PATH);
            std::fs::copy(&cfg, &host_cfg).unwrap();
            std::fs::remove_file(&cfg).unwrap();
            std::os::unix::fs::symlink(&target, &cfg).unwrap();
        }
        let before = std::fs::read(&host_cfg).unwrap();
        for args in [&["list"][..], &["switch", "fixture-c"]] {
            let refused = run(&disk, args);
            refused.expect_code(6);
            assert!(
                refused
                    .stderr
                    .contains("boot/grub/grub.cfg: a symlink that leads out of"),
                "{how} {args:?}: {}",
                refused.stderr
            );
            assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
        }
        assert_eq!(std::fs::read(&host_cfg).unwrap(), before, "{how}");
    }
}
