//! Runs the built `deployer plan` on the examples against sparse disk-image files.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const GIB: u64 = 1 << 30;

fn deployer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .output()
        .expect("run deployer")
}

fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

fn sparse_file(path: &Path, size: u64) {
    fs::File::create(path).unwrap().set_len(size).unwrap();
}

#[test]
fn plans_the_spec_example_without_touching_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("vda.img");
    sparse_file(&image, 20 * GIB);
    let before = fs::metadata(&image).unwrap();
    let disk = format!("vda={}", image.display());
    let config = example("multi-image.json");

    let out = deployer(&["plan", &config, "--disk", &disk, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON plan");
    assert_eq!(plan["version"], 1);
    let disks = plan["disks"].as_array().unwrap();
    assert_eq!(disks.len(), 1);
    assert_eq!(disks[0]["name"], "vda");
    assert_eq!(disks[0]["size_bytes"], 20 * GIB);
    let partitions = disks[0]["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 6);
    let multiboot = &partitions[2];
    assert_eq!(multiboot["purpose"], "multiboot");
    assert_eq!(multiboot["size_mib"], 100);
    let fs = plan["filesystems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|fs| fs["purpose"] == "multiboot")
        .expect("a multiboot filesystem");
    assert_eq!(fs["fs_type"], "ext4");
    assert_eq!(fs["label"], "multiboot");
    assert_eq!(
        fs["device"],
        serde_json::json!({"kind": "partition", "disk": "vda", "number": 3})
    );
    assert_eq!(plan["boot"]["multiboot_uuid"], fs["uuid"]);
    assert_eq!(plan["boot"]["default_image"], "centos");

    let out = deployer(&["plan", &config, "--disk", &disk]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let tables = text(&out.stdout);
    assert!(tables.contains("Image ubuntu"), "{tables}");
    assert!(tables.contains("GRUB for BIOS on: vda"), "{tables}");

    let after = fs::metadata(&image).unwrap();
    assert_eq!(after.len(), before.len());
    assert_eq!(after.modified().unwrap(), before.modified().unwrap());
}

#[test]
fn a_missing_image_file_is_planned_at_the_configured_size_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("new.img");
    let disk = format!("vda={}", image.display());
    let out = deployer(&[
        "plan",
        &example("multi-image.json"),
        "--disk",
        &disk,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["disks"][0]["size_bytes"], 20 * GIB);
    assert!(!image.exists());
}

#[test]
fn disks_missing_or_unknown_are_planning_errors() {
    let config = example("multi-image.json");
    let out = deployer(&["plan", &config]);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    assert_eq!(
        text(&out.stderr),
        "partitions[0]: disk \"vda\" is not given; pass --disk vda=PATH\n"
    );

    let out = deployer(&[
        "plan",
        &config,
        "--disk",
        "vda=/nonexistent/a",
        "--disk",
        "sdz=/x",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        text(&out.stderr),
        "--disk sdz: no disk of the config has id \"sdz\"; its disks: \"vda\"\n"
    );

    let out = deployer(&["plan", &config, "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report,
        serde_json::json!({"version": 1, "errors": [{
            "path": "partitions[0]",
            "message": "disk \"vda\" is not given; pass --disk vda=PATH"
        }]})
    );
}

#[test]
fn a_disk_too_small_is_a_planning_error() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("small.img");
    sparse_file(&image, 10 * GIB);
    let disk = format!("vda={}", image.display());
    let out = deployer(&["plan", &example("multi-image.json"), "--disk", &disk]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        text(&out.stderr),
        "partitions[0].volumes[2]: does not fit on disk \"vda\" by 8927 MiB: \
         its volumes need 19000 MiB, 10073 MiB are free\n"
    );
}

#[test]
fn an_unreadable_disk_is_status_1_and_a_bad_config_status_3() {
    let dir = tempfile::tempdir().unwrap();
    let disk = format!("vda={}", dir.path().display());
    let out = deployer(&["plan", &example("multi-image.json"), "--disk", &disk]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("neither a block device nor a regular file"),
        "{}",
        text(&out.stderr)
    );

    let bad = dir.path().join("bad.json");
    fs::write(&bad, "{}").unwrap();
    let out = deployer(&["plan", bad.to_str().unwrap(), "--disk", "vda=/x"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        text(&out.stderr),
        "images: missing required key\npartitions: missing required key\n"
    );
}

/// Image names as Bareon allows them (spaces, quotes, `$`, unicode, a URL): the plan keeps
/// them as written and derives plain GRUB entry ids from them.
#[test]
fn plans_images_named_as_bareon_allows() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("vda.img");
    sparse_file(&image, 20 * GIB);
    let names = [
        "centos 7.1",
        "it's \"$HOME\"",
        "Ünïcödé 日本",
        "http://10.0.0.1:8080/images/ubuntu.img",
    ];
    let images: Vec<serde_json::Value> = names
        .iter()
        .map(|name| {
            serde_json::json!({"name": name, "image_pull_url": "/srv/images/x", "target": "/"})
        })
        .collect();
    let volumes: Vec<serde_json::Value> = names
        .iter()
        .map(|name| {
            serde_json::json!({"type": "partition", "mount": "/", "size": "1000",
                               "file_system": "ext4", "images": [name]})
        })
        .collect();
    let config = dir.path().join("provision.json");
    let provision = serde_json::json!({
        "images": images, "partitions_policy": "clean",
        "partitions": [{"type": "disk", "id": {"type": "name", "value": "vda"},
                        "volumes": volumes}]
    });
    fs::write(&config, provision.to_string()).unwrap();
    let config = config.to_str().unwrap();
    let disk = format!("vda={}", image.display());
    let out = deployer(&["plan", config, "--disk", &disk, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON plan");
    let ids = deployer::plan::grub_menu_ids(names);
    for (i, name) in names.iter().enumerate() {
        assert_eq!(plan["images"][i]["name"], *name);
        assert_eq!(plan["images"][i]["grub_menu_id"], ids[i]);
        let id = ids[i].as_str();
        assert!(
            id.starts_with("multiboot-")
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
            "{id}"
        );
    }
    assert_eq!(plan["boot"]["default_image"], names[0]);
    let out = deployer(&["plan", config, "--disk", &disk]);
    let tables = text(&out.stdout);
    assert!(
        tables.contains(&format!(
            "Image {} (boots by default; GRUB entry {})",
            names[0], ids[0]
        )),
        "{tables}"
    );
}

#[test]
fn bareons_layout_with_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("vda.img");
    sparse_file(&image, 20 * GIB);
    let disk = format!("vda={}", image.display());
    let config = example("multi-image.json");
    let args = ["plan", &config, "--disk", &disk, "--layout", "bareon"];
    let out = deployer(&[&args[..], &["--json"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["layout"], "bareon");
    assert_eq!(plan["boot"]["esp_uuid"], serde_json::Value::Null);
    assert_eq!(plan["boot"]["bios_disks"], serde_json::json!(["vda"]));
    let disk0 = &plan["disks"][0];
    assert_eq!(disk0["first_usable_sector"], 34);
    let kinds: Vec<(&str, &str, u64)> = disk0["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let purpose = p["purpose"].as_str().unwrap_or("volume");
            (
                p["kind"].as_str().unwrap(),
                purpose,
                p["size_mib"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        &kinds[..3],
        [
            ("bios_boot", "bios_grub", 24),
            ("linux_filesystem", "multiboot", 100),
            ("linux_filesystem", "volume", 4000)
        ]
    );
    let out = deployer(&args);
    let shown = text(&out.stdout);
    assert!(shown.contains("Boot layout (bareon layout)"), "{shown}");
    assert!(shown.contains("ESP: none (BIOS boot only)"), "{shown}");

    let out = deployer(&["plan", &config, "--disk", &disk, "--layout", "nailgun"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// Two images on a disk of 1000 MiB sized as for Bareon (the disk less its 24 MiB
/// bios_grub and 100 MiB multiboot partitions, less a MiB), as bareon-ironic's guide sizes
/// volumes.
const SIZED_FOR_BAREON: &str = include_str!("data/sized-for-bareon.json");

#[test]
fn a_config_sized_for_bareons_layout_names_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("vda.img");
    sparse_file(&image, 1000 << 20);
    let config = dir.path().join("provision.json");
    fs::write(&config, SIZED_FOR_BAREON).unwrap();
    let disk = format!("vda={}", image.display());
    let config = config.to_str().unwrap();
    let out = deployer(&["plan", config, "--disk", &disk]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        text(&out.stderr),
        "partitions[0].volumes[1]: does not fit on disk \"vda\" by 42 MiB: its volumes need \
         875 MiB, 833 MiB are free\n\
         partitions: the config fits Bareon's layout, which configs written for Bareon are \
         sized for (a 24 MiB bios_grub partition on every disk, no ESP: BIOS boot only); \
         plan and deploy it with --layout bareon\n"
    );
    let out = deployer(&["plan", config, "--disk", &disk, "--layout", "bareon"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// Partitions `image` as Bareon does (`bareon/utils/block_device.py` `SGDisk.zap` and
/// `SGDisk.new`: sgdisk --new, --typecode, and --change-name primary for 1 to 4) with the
/// `(first sector, sectors, type code)` of each partition in order.
fn partition_as_bareon(image: &Path, partitions: &[(u64, u64, u16)]) {
    // One sgdisk run (each takes a second) with every option Bareon gives in its own.
    let mut args = vec!["--zap-all".to_owned(), "--clear".to_owned()];
    for (i, (begin, length, code)) in partitions.iter().enumerate() {
        let index = i + 1;
        args.push(format!("--new={index}:{begin}:{}", begin + length - 1));
        args.push(format!("--typecode={index}:{code:04x}"));
        if index < 5 {
            args.push(format!("--change-name={index}:primary"));
        }
    }
    let out = Command::new("sgdisk")
        .args(&args)
        .arg(image)
        .output()
        .expect("sgdisk (install gdisk: scripts/setup)");
    assert!(
        out.status.success(),
        "sgdisk {args:?}: {}",
        text(&out.stderr)
    );
}

/// Alpha on the first disk, beta on all of the second, both made anew by a verify deploy.
const TWO_DISKS_VERIFY: &str = r#"{
    "images": [
        {"name": "alpha", "image_pull_url": "/a", "target": "/"},
        {"name": "beta", "image_pull_url": "/b", "target": "/"}],
    "partitions": [
        {"type": "disk", "id": {"type": "name", "value": "vda"}, "volumes": [
            {"type": "partition", "file_system": "ext4", "mount": "/", "size": "160", "images": ["alpha"],
             "keep_data": false}]},
        {"type": "disk", "id": {"type": "name", "value": "vdb"}, "volumes": [
            {"type": "partition", "file_system": "ext4", "mount": "/", "size": "100%", "images": ["beta"],
             "keep_data": false}]}],
    "partitions_policy": "verify"}"#;

#[test]
fn verify_recognises_disks_bareon_partitioned() {
    let dir = tempfile::tempdir().unwrap();
    let vda = dir.path().join("vda.img");
    let vdb = dir.path().join("vdb.img");
    sparse_file(&vda, 300 << 20);
    sparse_file(&vdb, 200 << 20);
    // What Bareon's allocator gives these disks and this config (block_device.py run
    // as it is): 24 MiB bios_grub, the 100 MiB multiboot partition on the first disk,
    // and beta's 100% ending one sector before the last usable one.
    partition_as_bareon(
        &vda,
        &[
            (2048, 49152, 0xef02),
            (51200, 204_800, 0x8300),
            (256_000, 327_680, 0x8300),
        ],
    );
    partition_as_bareon(&vdb, &[(2048, 49152, 0xef02), (51200, 358_366, 0x8300)]);
    let config = dir.path().join("provision.json");
    fs::write(&config, TWO_DISKS_VERIFY).unwrap();
    let config = config.to_str().unwrap();
    let vda = format!("vda={}", vda.display());
    let vdb = format!("vdb={}", vdb.display());
    let args = ["plan", config, "--disk", &vda, "--disk", &vdb];
    let out = deployer(&[&args[..], &["--json"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["layout"], "bareon");
    assert_eq!(
        plan["boot"]["bios_disks"],
        serde_json::json!(["vda", "vdb"])
    );

    let out = deployer(&[&args[..], &["--layout", "default"]].concat());
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        text(&out.stderr),
        "partitions[0].volumes[0]: does not fit on disk \"vda\" by 27 MiB: its volumes need \
         160 MiB, 133 MiB are free\n\
         partitions: the config fits Bareon's layout, which configs written for Bareon are \
         sized for (a 24 MiB bios_grub partition on every disk, no ESP: BIOS boot only); \
         plan and deploy it with --layout bareon\n"
    );
}
