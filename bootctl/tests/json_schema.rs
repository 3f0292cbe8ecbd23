//! bootctl's `--json` output follows its JSON Schemas (`docs/schema/bootctl-*.v1.json`,
//! see `e2e::schema`): real runs of the built bootctl on multiboot trees (`--boot-dir`),
//! one whose default lives in grub.cfg and one that reads grubenv, so that every
//! nullable key is seen both ways.

use std::process::Command;

use e2e::completion::write_boot_dir;
use e2e::schema::{check, names, schema};
use e2e::tmp::TempDir;
use serde_json::Value;

const BOOTCTL: &str = env!("CARGO_BIN_EXE_bootctl");

/// Runs bootctl with `args`, expects status 0 and returns stdout as JSON.
fn json(args: &[&str]) -> Value {
    let out = Command::new(BOOTCTL)
        .args(args)
        .output()
        .expect("running bootctl");
    let command = format!("bootctl {}", args.join(" "));
    assert!(
        out.status.success(),
        "`{command}`: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("`{command}` printed no JSON: {err}"))
}

/// Runs bootctl on the tree `dir` and checks its output against `docs/schema/<name>`.
fn check_run(dir: &TempDir, args: &[&str], name: &str) -> Value {
    let mut full = vec!["--boot-dir", dir.path().to_str().expect("UTF-8 path")];
    full.extend(args);
    let value = json(&full);
    check(name, &format!("bootctl {}", full.join(" ")), &value);
    value
}

/// A tree whose grub.cfg reads saved_entry and next_entry from grubenv, as
/// grub-mkconfig's header does, with a submenu.
fn grubenv_tree(dir: &TempDir) {
    write_boot_dir(dir.path());
    let cfg = "\
if [ -s $prefix/grubenv ]; then
  load_env
fi
if [ \"${next_entry}\" ] ; then
   set default=\"${next_entry}\"
   set next_entry=
   save_env next_entry
elif [ \"${saved_entry}\" ] ; then
   set default=\"${saved_entry}\"
else
   set default=\"0\"
fi
menuentry 'CentOS Linux 7 (Core)' --id multiboot-centos {
\tlinux /boot/vmlinuz root=UUID=7d29825c-7552-4255-83cf-17102b7f7f86 ro
}
submenu 'Advanced options' --id advanced {
\tmenuentry 'CentOS (recovery)' {
\t\tlinux /boot/vmlinuz root=UUID=7d29825c-7552-4255-83cf-17102b7f7f86 ro single
\t}
}
menuentry 'Ubuntu 14.04.3 LTS' --id multiboot-ubuntu {
\tlinux /boot/vmlinuz root=UUID=8621a03f-e0bb-4b7b-8e1f-7555983aa92f ro
}
";
    e2e::fixture::write(&dir.join("boot/grub/grub.cfg"), cfg.as_bytes(), 0o644);
}

#[test]
fn list_status_and_switch_follow_their_schemas() {
    let fixed = TempDir::new("schema-fixed");
    write_boot_dir(fixed.path());
    let list = check_run(&fixed, &["list", "--json"], "bootctl-list.v1.json");
    assert_eq!(list["entries"].as_array().map(Vec::len), Some(2));
    let status = check_run(&fixed, &["status", "--json"], "bootctl-status.v1.json");
    assert_eq!(status["one_shot_method"], Value::Null, "{status:#}");
    assert_eq!(status["persistent_method"], "grub.cfg");
    check_run(
        &fixed,
        &["switch", "--dry-run", "--json", "ubuntu"],
        "bootctl-switch.v1.json",
    );
    let switched = check_run(
        &fixed,
        &["switch", "--json", "ubuntu"],
        "bootctl-switch.v1.json",
    );
    assert_eq!(switched["changed"][0], "boot/grub/grub.cfg", "{switched:#}");
    let again = check_run(
        &fixed,
        &["switch", "--json", "ubuntu"],
        "bootctl-switch.v1.json",
    );
    assert_eq!(again["changed"], serde_json::json!([]), "nothing to change");

    let env = TempDir::new("schema-grubenv");
    grubenv_tree(&env);
    check_run(
        &env,
        &["switch", "--json", "--once", "1>0"],
        "bootctl-switch.v1.json",
    );
    let status = check_run(&env, &["status", "--json"], "bootctl-status.v1.json");
    assert_eq!(status["one_shot_method"], "grubenv", "{status:#}");
    assert_eq!(status["persistent_method"], "grubenv");
    assert_eq!(status["next"]["index"], "1>0", "{status:#}");
    let list = check_run(&env, &["list", "--json"], "bootctl-list.v1.json");
    let recovery = &list["entries"][1];
    assert_eq!(
        (&recovery["id"], &recovery["next"]),
        (&Value::Null, &Value::Bool(true)),
        "{list:#}"
    );
}

/// An image tree for `refresh --root`: its fstab names `root_uuid` for `/`, its /boot holds
/// (empty) files of `names`.
fn image_tree(dir: &TempDir, root_uuid: &str, names: &[&str]) -> String {
    let root = dir.join("image");
    std::fs::create_dir_all(root.join("boot")).expect("creating the image's /boot");
    std::fs::create_dir_all(root.join("etc")).expect("creating the image's /etc");
    let fstab = format!("UUID={root_uuid} / ext4 defaults 0 1\n");
    e2e::fixture::write(&root.join("etc/fstab"), fstab.as_bytes(), 0o644);
    for name in names {
        e2e::fixture::write(&root.join("boot").join(name), b"", 0o644);
    }
    root.display().to_string()
}

#[test]
fn refresh_follows_its_schema() {
    let tree = TempDir::new("schema-refresh");
    write_boot_dir(tree.path());
    let centos = image_tree(
        &tree,
        "7d29825c-7552-4255-83cf-17102b7f7f86",
        &[
            "vmlinuz-3.10.0-229.el7.x86_64",
            "initramfs-3.10.0-229.el7.x86_64.img",
        ],
    );
    let planned = check_run(
        &tree,
        &["refresh", "--dry-run", "--json", "--root", &centos],
        "bootctl-refresh.v1.json",
    );
    assert_eq!(planned["image_name"], "centos-7.1.1503", "{planned:#}");
    assert_eq!(planned["entries"][0]["old"]["initrd"], Value::Null);
    let done = check_run(
        &tree,
        &["refresh", "--json", "--root", &centos],
        "bootctl-refresh.v1.json",
    );
    assert_eq!(done["changed"][0], "boot/grub/grub.cfg", "{done:#}");
    assert_eq!(
        done["entries"][0]["new"]["initrd"],
        "/boot/initramfs-3.10.0-229.el7.x86_64.img"
    );

    let bare = TempDir::new("schema-refresh-bare");
    write_boot_dir(bare.path());
    std::fs::remove_file(bare.join("boot-info.json")).expect("removing boot-info.json");
    let ubuntu = image_tree(
        &bare,
        "8621a03f-e0bb-4b7b-8e1f-7555983aa92f",
        &["vmlinuz-3.13.0-24-generic"],
    );
    let done = check_run(
        &bare,
        &["refresh", "--json", "--root", &ubuntu],
        "bootctl-refresh.v1.json",
    );
    assert_eq!(
        (&done["image_name"], &done["kernel"]["initrd"]),
        (&Value::Null, &Value::Null),
        "{done:#}"
    );
    let again = check_run(
        &bare,
        &["refresh", "--json", "--root", &ubuntu],
        "bootctl-refresh.v1.json",
    );
    assert_eq!(again["changed"], serde_json::json!([]), "up to date");
}

/// A tree with the deployer's kind of grub.cfg (a trial counts down, entries record their
/// boots) whose grubenv holds a trial, a failed one and a stamp, so that the trial keys are
/// seen filled.
#[test]
fn trial_keys_follow_the_schemas() {
    let dir = TempDir::new("schema-trial");
    write_boot_dir(dir.path());
    let cfg = "\
if [ -s $prefix/grubenv ]; then
  load_env
fi
if [ \"${saved_entry}\" ]; then
  set default=\"${saved_entry}\"
else
  set default='multiboot-a'
fi
if [ \"${next_entry}\" ]; then
  set default=\"${next_entry}\"
  set next_entry=
  save_env next_entry
elif [ \"${mb_try}\" ]; then
  set default=\"${mb_try}\"
  save_env mb_try mb_try_left mb_try_failed
fi
menuentry --id='multiboot-a' -- 'A' {
\tset mb_booted='multiboot-a'
\tsave_env mb_booted
\tlinux '/boot/vmlinuz' 'root=UUID=7d29825c-7552-4255-83cf-17102b7f7f86' ro
}
menuentry --id='multiboot-b' -- 'B' {
\tset mb_booted='multiboot-b'
\tsave_env mb_booted
\tlinux '/boot/vmlinuz' 'root=UUID=8621a03f-e0bb-4b7b-8e1f-7555983aa92f' ro
}
";
    e2e::fixture::write(&dir.join("boot/grub/grub.cfg"), cfg.as_bytes(), 0o644);
    let switched = check_run(
        &dir,
        &["switch", "--json", "--try=3", "multiboot-b"],
        "bootctl-switch.v1.json",
    );
    assert_eq!(switched["try"], 3, "{switched:#}");
    let status = check_run(&dir, &["status", "--json"], "bootctl-status.v1.json");
    assert_eq!(status["trial"]["tries_left"], 3, "{status:#}");
    assert_eq!(status["trial"]["entry"]["index"], "1", "{status:#}");
    assert_eq!(status["next_boot"]["index"], "1", "{status:#}");
    assert_eq!(status["default"]["index"], "0", "{status:#}");
    let list = check_run(&dir, &["list", "--json"], "bootctl-list.v1.json");
    assert_eq!(list["entries"][1]["trial"], true, "{list:#}");
    let env = dir.join("boot/grub/grubenv");
    let edited = Command::new("grub-editenv")
        .arg(&env)
        .args(["set", "mb_try_failed=multiboot-b", "mb_booted=multiboot-a"])
        .status()
        .expect("grub-editenv runs (scripts/setup installs grub-common)");
    assert!(edited.success());
    let status = check_run(&dir, &["status", "--json"], "bootctl-status.v1.json");
    assert_eq!(status["trial_failed"]["entry"]["index"], "1", "{status:#}");
    assert_eq!(status["last_boot"]["value"], "multiboot-a", "{status:#}");
    assert_eq!(
        status["grub_wrote_grubenv"],
        Value::Null,
        "the host runs no entry: {status:#}"
    );
}

/// The shapes describe an entry the same way.
#[test]
fn the_entry_is_one_definition() {
    let entry = schema("bootctl-list.v1.json")["$defs"]["entry"].clone();
    assert!(entry.is_object());
    for name in [
        "bootctl-mark.v1.json",
        "bootctl-status.v1.json",
        "bootctl-switch.v1.json",
    ] {
        assert_eq!(schema(name)["$defs"]["entry"], entry, "{name}");
    }
}

/// bootctl(8) names its schemas, and every bootctl schema is named there.
#[test]
fn the_man_page_names_every_schema() {
    let page = e2e::manpage::read("man/sections/bootctl.8.roff");
    let bootctl_schemas: Vec<String> = names()
        .into_iter()
        .filter(|name| name.starts_with("bootctl-"))
        .collect();
    assert_eq!(
        bootctl_schemas,
        [
            "bootctl-list.v1.json",
            "bootctl-mark.v1.json",
            "bootctl-refresh.v1.json",
            "bootctl-status.v1.json",
            "bootctl-switch.v1.json"
        ]
    );
    for name in bootctl_schemas {
        let roff = name.replace('-', "\\-");
        assert!(page.contains(&roff), "bootctl(8) does not name {name}");
    }
}
