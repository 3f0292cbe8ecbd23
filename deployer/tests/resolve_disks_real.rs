//! `--resolve-disks` on this machine's real block devices: loop devices found by their
//! name (by `deployer plan`, and by the library), by a link under a /dev/disk made for the
//! test (this machine has no udev), refused as a partition and as read-only; and the
//! `by-path` links derived from sysfs compared with what udev's own `path_id` computes
//! here (`udevadm test-builtin`, which needs no udev daemon).
//!
//! The loop devices are detached when each test ends, also when it panics.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use deployer::disk_ids::read::read_machine;
use deployer::disk_ids::{resolve_disks, Links, Resolved};
use deployer::validate;
use e2e::disk::{gpt_disk_file, LoopDisk};
use e2e::tools::require_tools;

const GIB: u64 = 1 << 30;

/// A one-image config whose one disk has the id `kind`, `value`.
fn config_text(kind: &str, value: &str) -> String {
    format!(
        r#"{{"images": [{{"name": "a", "image_pull_url": "/srv/a", "target": "/"}}],
            "partitions_policy": "clean",
            "partitions": [{{"type": "disk", "id": {{"type": "{kind}", "value": "{value}"}},
              "size": "2000", "volumes": [
                {{"type": "partition", "mount": "/", "file_system": "ext4", "size": "1000"}}]}}]}}"#
    )
}

fn plan(dir: &Path, kind: &str, value: &str) -> Output {
    let config = dir.join("provision.json");
    std::fs::write(&config, config_text(kind, value)).expect("writing the config");
    Command::new(env!("CARGO_BIN_EXE_deployer"))
        .arg("plan")
        .arg(&config)
        .args(["--resolve-disks", "--json"])
        .output()
        .expect("running deployer")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `loopN` of `/dev/loopN`.
fn kernel_name(device: &Path) -> String {
    device
        .file_name()
        .expect("a device name")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn a_loop_device_is_found_by_its_name_and_by_a_link_under_dev_disk() {
    require_tools(&["losetup"]);
    let dir = tempfile::tempdir().unwrap();
    let disk = LoopDisk::create(&dir.path().join("disk.img"), 2 * GIB);
    let name = kernel_name(disk.device());

    let out = plan(dir.path(), "name", &name);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!(
            "deployer: disk \"{name}\" (name id) is /dev/{name}"
        )),
        "{}",
        text(&out.stderr)
    );
    let planned: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON plan");
    assert_eq!(planned["disks"][0]["path"], format!("/dev/{name}"));
    assert_eq!(planned["disks"][0]["size_bytes"], 2 * GIB);

    // A /dev/disk as udev would make it, with one link to the loop device.
    let dev = dir.path().join("dev");
    std::fs::create_dir_all(dev.join("disk/by-id")).unwrap();
    std::os::unix::fs::symlink(disk.device(), dev.join("disk/by-id/multiboot-test")).unwrap();
    let machine = read_machine(Path::new("/sys"), &dev).expect("reading /sys");
    assert_eq!(machine.links, Links::Udev);
    let device = machine
        .devices
        .iter()
        .find(|device| device.devname == name)
        .expect("the loop device in /sys/class/block");
    assert_eq!(device.links, ["disk/by-id/multiboot-test"]);
    assert_eq!(device.sectors, 2 * GIB / 512);
    assert!(!device.partition && !device.read_only);
    for value in [
        "disk/by-id/multiboot-test",
        "/dev/disk/by-id/multiboot-test",
    ] {
        let config = validate(&config_text("path", value)).expect("a valid config");
        assert_eq!(
            resolve_disks(&config, &[], &machine),
            Ok(vec![Resolved {
                name: value.to_owned(),
                kind: deployer::config::DiskIdKind::Path,
                path: disk.device().to_owned(),
            }])
        );
    }

    // Without /dev/disk, the links are derived: a loop device has none.
    let machine = read_machine(Path::new("/sys"), &dir.path().join("no-dev")).unwrap();
    assert_eq!(machine.links, Links::Derived);
    let device = machine.devices.iter().find(|d| d.devname == name).unwrap();
    assert!(device.links.is_empty(), "{:?}", device.links);
}

#[test]
fn a_partition_and_a_read_only_device_are_refused_with_status_3() {
    require_tools(&["losetup", "sfdisk"]);
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("gpt.img");
    gpt_disk_file(&image, 2 * GIB);
    let disk = LoopDisk::attach(&image);
    let partition = kernel_name(&disk.partition(1));
    let out = plan(dir.path(), "name", &partition);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let errors: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON errors");
    assert_eq!(
        errors["errors"][0]["message"],
        format!(
            "--resolve-disks: name id \"{partition}\": /dev/{partition} is a partition, not a \
             whole disk"
        )
    );

    let read_only = LoopDisk::attach_read_only(&image);
    let name = kernel_name(read_only.device());
    let out = plan(dir.path(), "name", &format!("/dev/{name}"));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let errors: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON errors");
    assert_eq!(errors["errors"][0]["path"], "partitions[0].id");
    assert_eq!(
        errors["errors"][0]["message"],
        format!("--resolve-disks: name id \"/dev/{name}\": /dev/{name} is read-only")
    );
}

/// `ID_PATH` of `/sys/class/block/NAME` as udev's `path_id` computes it.
fn udev_id_path(name: &str) -> Option<String> {
    let out = Command::new("udevadm")
        .args(["test-builtin", "path_id"])
        .arg(PathBuf::from("/sys/class/block").join(name))
        .output()
        .expect("running udevadm");
    text(&out.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("ID_PATH=").map(str::to_owned))
}

#[test]
fn derived_by_path_links_are_those_udevs_path_id_computes_here() {
    require_tools(&["udevadm"]);
    let dir = tempfile::tempdir().unwrap();
    let machine = read_machine(Path::new("/sys"), &dir.path().join("no-dev")).unwrap();
    let mut compared = Vec::new();
    for device in machine.devices.iter().filter(|d| !d.partition) {
        let name = &device.devname;
        if !["sd", "vd", "nvme"].iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let ours = device
            .links
            .iter()
            .find_map(|link| link.strip_prefix("disk/by-path/"));
        let udev = udev_id_path(name);
        match (ours, &udev) {
            (Some(ours), Some(udev)) => assert_eq!(ours, udev, "{name}"),
            (Some(ours), None) => panic!("{name}: derived {ours}, udev makes no by-path link"),
            // A transport this port leaves out (USB, SAS...): no link rather than a guess.
            (None, Some(udev)) if !name.starts_with("vd") => {
                eprintln!("{name}: udev's {udev} is not derived");
                continue;
            }
            (None, udev) => assert_eq!(udev, &None, "{name}: not derived"),
        }
        compared.push(format!("{name}: {udev:?}"));
    }
    eprintln!("compared with udev: {compared:?}");
}
