use super::syntax::{
    check_absolute_path, check_image_name, check_lvm_name, is_guid, is_md_name, parse_mount,
    parse_source,
};
use super::*;
use crate::config::{
    Disk, DiskIdKind, DiskVolume, FileSystem, FsVolume, ImageSource, Mount, PartitionsPolicy,
};
use crate::size::{Size, MIB};

fn errors(text: &str) -> Vec<String> {
    match validate(text) {
        Ok(config) => panic!("accepted: {config:?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn two_images(volumes: &str) -> String {
    format!(
        r#"{{"images": [
            {{"name": "centos", "image_pull_url": "http://h/c.tar", "target": "/", "boot": true}},
            {{"name": "ubuntu", "image_pull_url": "/srv/ubuntu", "target": "/"}}],
          "partitions": [{{"type": "disk", "id": {{"type": "name", "value": "vda"}},
                           "volumes": [{volumes}]}}]}}"#
    )
}

const ROOTS: &str = r#"{"type": "partition", "mount": "/", "file_system": "ext4", "size": "4000", "images": ["centos"]},
                       {"type": "partition", "mount": "/", "file_system": "ext4", "size": "5000", "images": ["ubuntu"]}"#;

#[test]
fn paths_display_like_javascript() {
    let path = JsonPath::root()
        .key("partitions")
        .index(0)
        .key("volumes")
        .index(2);
    assert_eq!(path.to_string(), "partitions[0].volumes[2]");
    assert_eq!(JsonPath::root().to_string(), "$");
    assert_eq!(
        JsonPath::root().key("a b").key("c").to_string(),
        r#"["a b"].c"#
    );
    assert_eq!(JsonPath::root().key("_x1").to_string(), "_x1");
}

#[test]
fn accepts_the_spec_layout() {
    let config = validate(&two_images(&format!(
        r#"{ROOTS}, {{"type": "partition", "mount": "/usr/share/common", "size": "10000",
                     "images": ["centos", "ubuntu"], "file_system": "EXT4"}}"#
    )))
    .unwrap();
    assert_eq!(config.images.len(), 2);
    assert_eq!(config.boot_image().name, "centos");
    assert_eq!(config.partitions_policy, PartitionsPolicy::Verify);
    let disk = config.disks().next().unwrap();
    let DiskVolume::Partition(shared) = &disk.volumes[2] else {
        panic!("not a partition")
    };
    assert_eq!(shared.fs.images, ["centos", "ubuntu"]);
    assert_eq!(shared.fs.file_system, Some(FileSystem::Ext4));
    assert_eq!(shared.fs.size, Size::Bytes(10_000 * MIB));
    assert_eq!(shared.fs.fstab_options, "defaults");
    assert!(shared.fs.keep_data && shared.fs.fstab_enabled);
    assert_eq!(config.volume_count(), 3);
    assert_eq!(
        config.images[1].source,
        ImageSource::Path("/srv/ubuntu".into())
    );
}

#[test]
fn volumes_without_images_belong_to_the_first_image() {
    let config = validate(&two_images(
        r#"{"type": "partition", "mount": "/", "file_system": "ext4", "size": "4000"},
           {"type": "partition", "mount": "/", "file_system": "ext4", "size": "4000", "images": ["ubuntu"]},
           {"type": "partition", "mount": "swap", "size": "1000"}"#,
    ))
    .unwrap();
    let disk = config.disks().next().unwrap();
    let fs: Vec<&FsVolume> = disk
        .volumes
        .iter()
        .map(|v| match v {
            DiskVolume::Partition(p) => &p.fs,
            _ => panic!("not a partition"),
        })
        .collect();
    assert_eq!(fs[0].images, ["centos"]);
    assert_eq!(fs[2].images, ["centos"]);
    assert_eq!(fs[2].mount, Mount::Swap);
    assert_eq!(fs[2].file_system, Some(FileSystem::Swap));
}

#[test]
fn boot_defaults_to_the_first_image_and_takes_integers() {
    let text = two_images(ROOTS).replace(r#", "boot": true"#, "");
    assert_eq!(validate(&text).unwrap().boot_image().name, "centos");
    let text = two_images(ROOTS)
        .replace(r#", "boot": true"#, r#", "boot": 0"#)
        .replace(r#""target": "/"}]"#, r#""target": "/", "boot": 1}]"#);
    assert_eq!(validate(&text).unwrap().boot_image().name, "ubuntu");
}

#[test]
fn malformed_json_names_line_and_column() {
    assert_eq!(
        errors("{\n  \"images\": [,]\n}"),
        ["$: malformed JSON at line 2, column 14: expected value"]
    );
    assert_eq!(
        errors(r#"{"images": [], "images": []}"#),
        [r#"$: malformed JSON at line 1, column 23: duplicate key "images""#]
    );
}

#[test]
fn collects_errors_from_everywhere_at_once() {
    let text = two_images(
        r#"{"type": "partition", "mount": "/", "file_system": "ext4", "size": "4 gb", "images": ["centos"]},
           {"type": "partiton", "mount": "/", "size": "5000"},
           {"type": "partition", "mount": "usr", "size": "1", "images": ["ubuntu", "debian"]}"#,
    );
    assert_eq!(
        errors(&text),
        [
            r#"partitions[0].volumes[0].size: invalid size "4 gb": unknown unit "gb" (did you mean "GB"?); units: B, s, KiB, MiB, GiB, TiB, PiB, EiB, ZiB, YiB, kB, KB, MB, GB, TB, PB, EB, ZB, YB, %"#,
            r#"partitions[0].volumes[1].type: unknown type "partiton" (did you mean "partition"?); expected one of: partition, raid, pv, boot, lvm_meta_pool"#,
            r#"partitions[0].volumes[2].mount: mount point "usr" is not an absolute path (nor "swap" or "none")"#,
            r#"partitions[0].volumes[2].images[1]: no image is named "debian"; images: "centos", "ubuntu""#,
        ]
    );
}

#[test]
fn raid_members_with_one_mount_are_one_array() {
    let text = format!(
        r#"{{"images": [{{"name": "a", "image_pull_url": "/a", "target": "/"}}],
            "partitions": [
              {{"type": "disk", "id": {{"type": "name", "value": "sda"}}, "volumes": [
                 {{"type": "raid", "mount": "/", "size": "4000", "name": "md0"}}]}},
              {{"type": "disk", "id": {{"type": "name", "value": "sdb"}}, "volumes": [
                 {{"type": "raid", "mount": "/", "size": "4000", "name": "{}"}}]}}]}}"#,
        "/dev/md0"
    );
    assert_eq!(
        errors(&text),
        [
            r#"partitions[1].volumes[0].name: raid members with mount "/" form one array and must agree with partitions[0].volumes[0]: name "/dev/md0" here, "md0" there"#
        ]
    );
    assert!(validate(&text.replace("/dev/md0", "md0")).is_ok());
}

#[test]
fn two_raid_arrays_cannot_share_an_md_name() {
    // Found by fuzzing (fuzz/artifacts-kept/provision/crash-24e21ba7...): the members
    // of "/" and of swap both named md0 were planned as two arrays /dev/md0, each
    // with a filesystem; the second mdadm --create would fail after partitioning.
    let text = r#"{"images": [{"name": "a", "image_pull_url": "/a", "target": "/"}],
        "partitions": [
          {"type": "disk", "id": {"type": "name", "value": "sda"}, "volumes": [
             {"type": "raid", "mount": "/", "size": "4000", "name": "md0"},
             {"type": "raid", "mount": "swap", "size": "1000", "name": "/dev/md0"}]},
          {"type": "disk", "id": {"type": "name", "value": "sdb"}, "volumes": [
             {"type": "raid", "mount": "/", "size": "4000", "name": "md0"},
             {"type": "raid", "mount": "/srv", "size": "1000", "name": "md0"}]}]}"#;
    assert_eq!(
        errors(text),
        [
            r#"partitions[0].volumes[1].name: md device "md0" is already the array of the raid members with mount "/" (partitions[0].volumes[0]): each array needs a name of its own"#,
            r#"partitions[1].volumes[1].name: md device "md0" is already the array of the raid members with mount "/" (partitions[0].volumes[0]): each array needs a name of its own"#,
        ]
    );
    assert!(validate(&text.replace(r#""/dev/md0""#, r#""md1""#).replace(
        r#""/srv", "size": "1000", "name": "md0""#,
        r#""/srv", "size": "1000", "name": "md/srv""#
    ))
    .is_ok());
}

#[test]
fn sources() {
    assert_eq!(
        parse_source("file:///srv/my%20image.tar"),
        Ok(ImageSource::Path("/srv/my image.tar".into()))
    );
    assert_eq!(
        parse_source("file://localhost/srv/x"),
        Ok(ImageSource::Path("/srv/x".into()))
    );
    assert_eq!(
        parse_source("HTTPS://h/x"),
        Ok(ImageSource::Https("HTTPS://h/x".into()))
    );
    assert_eq!(
        parse_source("rsync://10.0.0.1/images/x/"),
        Ok(ImageSource::Rsync("rsync://10.0.0.1/images/x/".into()))
    );
    assert_eq!(
        parse_source("file:///srv/%C3%A9"),
        Ok(ImageSource::Path("/srv/\u{e9}".into()))
    );
    for bad in ["%00", "%zz", "%4", "%", "%ff", "%C3"] {
        let url = format!("file:///srv/{bad}");
        let message = format!("{} has a bad %-escape", quote(&url));
        assert_eq!(parse_source(&url), Err(message));
    }
    assert!(parse_source("file://host/srv").is_err());
    assert!(parse_source("http:///x").is_err());
    assert!(parse_source("swift://c/o").is_err());
    for daemon in [
        "10.0.0.1::ironic_rsync/node/x/",
        "host::m",
        "user@h::m/x",
        "[fd00::1]::m/x/",
        "h::m/a]b",
    ] {
        assert_eq!(parse_source(daemon), Ok(ImageSource::Rsync(daemon.into())));
    }
    for bad in [
        "::m/x",
        "a/b::m/x",
        "h::",
        "h::/m",
        "h::m::x",
        "[fd00::1]::",
    ] {
        assert!(parse_source(bad).is_err(), "{bad}");
    }
    assert!(parse_source("images/x").is_err());
}

#[test]
fn names_and_paths() {
    for good in [
        "centos-7.1_b",
        "-x",
        ".x",
        "centos 7.1",
        "a/b",
        "..",
        "é",
        "it's \"$x\"",
    ] {
        assert!(check_image_name(good).is_ok(), "{good:?}");
    }
    assert!(check_image_name(&"a".repeat(65)).is_ok());
    for bad in ["", "a\0", "a\nb", "\u{7f}"] {
        assert!(check_image_name(bad).is_err(), "{bad:?}");
    }
    assert!(check_absolute_path("/").is_ok());
    assert!(check_absolute_path("/usr/share/common").is_ok());
    for bad in ["", "usr", "/usr/", "/a//b", "/a/../b", "/a/.", "/a\0b"] {
        assert!(check_absolute_path(bad).is_err(), "{bad:?}");
    }
    assert_eq!(parse_mount("NONE"), Ok(Mount::None));
    assert_eq!(parse_mount("swap"), Ok(Mount::Swap));
    assert!(parse_mount("/my data").is_err());
    assert!(is_guid("0FC63DAF-8483-4772-8E79-3D69D8477DE4"));
    assert!(!is_guid("0FC63DAF84834772-8E79-3D69D8477DE4"));
    for good in ["md0", "/dev/md127", "md/root", "/dev/md/data-1"] {
        assert!(is_md_name(good), "{good}");
    }
    for bad in ["md", "sda", "md/", "md/../x", "/dev/mdx"] {
        assert!(!is_md_name(bad), "{bad}");
    }
    assert!(check_lvm_name("vg_root-1.a+b", "vg").is_ok());
    for bad in ["", "-a", ".", "..", "a b", "a/b"] {
        assert!(check_lvm_name(bad, "vg").is_err(), "{bad:?}");
    }
}

#[test]
fn lvm_raid_and_verify_with_keep_data_are_valid() {
    let config = validate(include_str!("../../examples/lvm.json")).unwrap();
    assert_eq!(config.partitions_policy, PartitionsPolicy::Verify);
    let vg = config.volume_groups().next().unwrap();
    assert_eq!(vg.id, "os");
    assert_eq!(vg.volumes[0].fs.size, Size::Percent(3000));
    assert_eq!(vg.volumes[2].fs.mount, Mount::Swap);
    assert_eq!(vg.volumes[3].fs.size, Size::Remaining);
    assert!(vg.volumes[3].fs.keep_data);
    assert_eq!(vg.volumes[3].fs.fstab_options, "defaults,noatime");
    let disk = config.disks().next().unwrap();
    assert_eq!(disk.id.kind, DiskIdKind::Path);
    assert_eq!(disk.size, Some(40 << 30));
    let DiskVolume::Pv(pv) = &disk.volumes[2] else {
        panic!("not a pv")
    };
    assert_eq!((pv.vg.as_str(), pv.lvm_meta_size), ("os", Some(64 * MIB)));
    assert_eq!(
        config.images[1].source,
        ImageSource::Path("/srv/images/ubuntu-14.04.tar.xz".into())
    );
    assert_eq!(
        config.rsync_flags.as_deref(),
        Some("-a -A -X --timeout 300")
    );

    let config = validate(include_str!("../../examples/raid.json")).unwrap();
    let disks: Vec<&Disk> = config.disks().collect();
    assert_eq!(disks[1].id.kind, DiskIdKind::Scsi);
    assert!(matches!(&disks[0].volumes[0], DiskVolume::Boot(b) if b.keep_data));
    let DiskVolume::Raid(raid) = &disks[1].volumes[1] else {
        panic!("not a raid member")
    };
    assert_eq!(raid.fs.file_system, Some(FileSystem::Swap));
    assert_eq!(raid.name.as_deref(), Some("md1"));
    let DiskVolume::Partition(unmounted) = &disks[1].volumes[2] else {
        panic!("not a partition")
    };
    assert_eq!(unmounted.fs.mount, Mount::None);
    assert!(!unmounted.fs.fstab_enabled);

    let config = validate(include_str!("../../examples/multi-image.json")).unwrap();
    assert_eq!(
        config.kernel_params.as_deref(),
        Some("console=ttyS0,115200n8")
    );
    assert_eq!(
        config.images[0].image_uuid.as_deref(),
        Some("2a86b00d-cfa4-49d9-a008-13c7940ed02d")
    );
}

#[test]
fn serialises_normalised() {
    let config = validate(&two_images(ROOTS)).unwrap();
    let json = serde_json::to_value(&config).unwrap();
    assert_eq!(json["partitions"][0]["type"], "disk");
    assert_eq!(json["partitions"][0]["id"]["type"], "name");
    let volume = &json["partitions"][0]["volumes"][1];
    assert_eq!(volume["type"], "partition");
    assert_eq!(volume["mount"], "/");
    assert_eq!(volume["size"]["bytes"], 5000 * MIB);
    assert_eq!(volume["images"][0], "ubuntu");
    assert_eq!(json["images"][0]["source"]["http"], "http://h/c.tar");
    assert_eq!(json["partitions_policy"], "verify");
}

fn warnings(text: &str, strict: bool) -> Vec<String> {
    let outcome = check(text, strict);
    if let Err(errors) = outcome.result {
        panic!("refused: {errors:?}");
    }
    outcome.warnings.iter().map(ToString::to_string).collect()
}

#[test]
fn keys_bareon_knows_are_ignored_with_a_warning_and_unknown_keys_too_unless_strict() {
    let text = r#"{"images": [
          {"name": "centos 7.1", "url": "centos", "mode": "rsync", "image_pull_url": "/c",
           "target": "/", "boot": true},
          {"name": "centos 7.1 again", "image_pull_url": "/c", "target": "/", "boot": 1}],
        "partitions": [{"type": "disk", "id": {"type": "name", "value": "vda"}, "size": "10000",
          "extra": [], "free_space": "10000", "volumes": [
            {"type": "pv", "vg": "os", "size": "1000", "images": ["centos 7.1"]},
            {"type": "partition", "mount": "/", "size": "4000", "images": ["centos 7.1"],
             "disk_label": "a-label-of-16-ch", "keep_dta": false},
            {"type": "partition", "mount": "/", "size": "4000", "images": ["centos 7.1 again"]},
            {"type": "lvm_meta_pool", "size": "64"},
            {"type": "partition", "mount": "/srv", "size": "0"}]},
          {"type": "vg", "id": "os", "label": "x", "volumes": [
            {"type": "lv", "name": "zero", "size": "0 MiB", "mount": "/x"}]}],
        "deploy_data": {"kernel_params": "quiet", "other": 1},
        "image_deploy_flags": {"rsync_flags": "-a", "free": "form"},
        "on_fail_script": "x.sh"}"#;
    let lines = warnings(text, false);
    let has = |prefix: &str| lines.iter().any(|line| line.starts_with(prefix));
    for prefix in [
        "on_fail_script: ignored: Ironic's conductor",
        "images[0].url: ignored: bareon-ironic's deploy_config",
        "images[0].mode: ignored:",
        "images[1].boot: images[1] also has \"boot\": true; the first, images[0], boots by default",
        "partitions[0].extra: ignored:",
        "partitions[0].free_space: ignored:",
        "partitions[0].volumes[0].images: ignored:",
        "partitions[0].volumes[1].keep_dta: unknown key, ignored (did you mean \"keep_data\"?)",
        "partitions[0].volumes[1].disk_label: label \"a-label-of-16-ch\" is longer than 12 bytes, \
         the limit of xfs: cut to \"a-label-of-1\"",
        "partitions[0].volumes[3].type: ignored: Bareon makes no partition for an lvm_meta_pool",
        "partitions[0].volumes[4].size: skipped: a volume of size 0",
        "partitions[1].volumes[0].size: skipped:",
        "deploy_data.other: ignored: the deployer reads only deploy_data.kernel_params",
        "image_deploy_flags.free: ignored:",
    ] {
        assert!(has(prefix), "no {prefix:?} in {lines:#?}");
    }
    assert_eq!(lines.len(), 14, "{lines:#?}");
    let config = validate(text).unwrap();
    assert_eq!(config.boot_image().name, "centos 7.1");
    let disk = config.disks().next().unwrap();
    assert_eq!(disk.config_index, [0, 1, 2]);
    let DiskVolume::Partition(root) = &disk.volumes[1] else {
        panic!("not a partition")
    };
    assert_eq!(root.fs.label.as_deref(), Some("a-label-of-1"));
    assert!(config.volume_groups().next().unwrap().volumes.is_empty());

    let outcome = check(text, true);
    assert_eq!(
        outcome
            .result
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["partitions[0].volumes[1].keep_dta: unknown key (did you mean \"keep_data\"?)"]
    );
    // A typo of a required key is an error either way: the volume cannot be read.
    let typo = two_images(r#"{"type": "partition", "moutn": "/", "size": "4000"}"#);
    assert_eq!(
        errors(&typo),
        ["partitions[0].volumes[0].moutn: unknown key (did you mean \"mount\"?)"]
    );
}

#[test]
fn only_the_first_boot_image_must_be_deployed_to_root() {
    let text = r#"{"images": [
          {"name": "os", "image_pull_url": "/os", "target": "/", "boot": true},
          {"name": "os as utils", "image_pull_url": "/os", "target": "/opt/os", "boot": true}],
        "partitions": [{"type": "disk", "id": {"type": "name", "value": "vda"}, "volumes": [
            {"type": "partition", "mount": "/", "size": "4000", "images": ["os"]},
            {"type": "partition", "mount": "/opt/os", "size": "4000", "images": ["os as utils"]}]}]}"#;
    assert_eq!(
        warnings(text, true),
        ["images[1].boot: images[1] also has \"boot\": true; the first, images[0], boots by default, as in Bareon"]
    );
    let swapped = text.replace(r#""target": "/", "boot""#, r#""target": "/x", "boot""#);
    assert!(errors(&swapped)[0].starts_with("images[0].boot: image \"os\" is deployed to \"/x\""));
}
