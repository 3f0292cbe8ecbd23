use super::*;
use crate::validate::validate;

/// A config with one image and a disk of each id, each with one partition.
fn config(ids: &[(&str, &str)]) -> ProvisionConfig {
    let disks: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, (kind, value))| {
            let volume = if i == 0 {
                r#"{"type": "partition", "mount": "/", "file_system": "ext4", "size": "1000"}"#
            } else {
                r#"{"type": "partition", "mount": "none", "size": "100"}"#
            };
            format!(
                r#"{{"type": "disk", "id": {{"type": "{kind}", "value": "{value}"}},
                    "size": "10000", "volumes": [{volume}]}}"#
            )
        })
        .collect();
    let text = format!(
        r#"{{"images": [{{"name": "a", "image_pull_url": "/srv/a", "target": "/"}}],
            "partitions": [{}]}}"#,
        disks.join(",")
    );
    validate(&text).unwrap_or_else(|errors| panic!("invalid test config: {errors:?}"))
}

fn device(devname: &str, minor: u32) -> BlockDevice {
    BlockDevice {
        devname: devname.to_owned(),
        devnum: (8, minor),
        partition: false,
        read_only: false,
        sectors: 20 << 21,
        scsi: None,
        links: Vec::new(),
    }
}

/// A server's disks as udev links them: two SATA disks, an NVMe namespace, a partition, a
/// DVD drive, an empty loop device.
fn server() -> Machine {
    let mut sda = device("sda", 0);
    sda.scsi = Some("0:0:0:0".to_owned());
    sda.links = vec![
        "disk/by-path/pci-0000:00:1f.2-ata-1.0".to_owned(),
        "disk/by-path/pci-0000:00:1f.2-ata-1".to_owned(),
        "disk/by-id/ata-ST1000DM003-1CH162_S1D9PHQM".to_owned(),
        "disk/by-id/wwn-0x5000c50060fce0bf".to_owned(),
    ];
    let mut sda1 = device("sda1", 1);
    sda1.partition = true;
    sda1.links = vec!["disk/by-path/pci-0000:00:1f.2-ata-1.0-part1".to_owned()];
    let mut sdb = device("sdb", 16);
    sdb.scsi = Some("1:0:0:0".to_owned());
    sdb.links = vec!["disk/by-path/pci-0000:00:1f.2-ata-2.0".to_owned()];
    let mut nvme = device("nvme0n1", 0);
    nvme.devnum = (259, 0);
    nvme.links = vec!["disk/by-path/pci-0000:3c:00.0-nvme-1".to_owned()];
    let mut sr0 = device("sr0", 0);
    sr0.devnum = (11, 0);
    sr0.read_only = true;
    sr0.scsi = Some("2:0:0:0".to_owned());
    let mut loop3 = device("loop3", 3);
    loop3.devnum = (7, 3);
    loop3.sectors = 0;
    Machine {
        devices: vec![sda, sda1, sdb, nvme, sr0, loop3],
        links: Links::Udev,
    }
}

fn resolved(kind: &str, value: &str) -> Result<PathBuf, String> {
    resolve_disks(&config(&[(kind, value)]), &[], &server())
        .map(|found| {
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].name, value);
            found[0].path.clone()
        })
        .map_err(|errors| {
            assert_eq!(errors.len(), 1, "{errors:?}");
            errors[0].to_string()
        })
}

#[test]
fn ids_resolve_as_bareons_device_finder_looks_them_up() {
    // The lookups of Bareon's TestDeviceFinder (bareon/tests/test_block_device.py).
    for (kind, value) in [
        ("name", "sda"),
        ("name", "/dev/sda"),
        ("path", "disk/by-id/wwn-0x5000c50060fce0bf"),
        ("path", "/dev/disk/by-id/wwn-0x5000c50060fce0bf"),
        ("path", "disk/by-path/pci-0000:00:1f.2-ata-1"),
        ("path", "/dev/disk/by-path/pci-0000:00:1f.2-ata-1.0"),
        ("scsi", "0:0:0:0"),
        // Bareon's path index holds the device's own node too.
        ("path", "sda"),
        ("path", "/dev/sda"),
    ] {
        assert_eq!(
            resolved(kind, value),
            Ok(PathBuf::from("/dev/sda")),
            "{kind} {value}"
        );
    }
    assert_eq!(resolved("scsi", "1:0:0:0"), Ok(PathBuf::from("/dev/sdb")));
    assert_eq!(
        resolved("path", "disk/by-path/pci-0000:3c:00.0-nvme-1"),
        Ok(PathBuf::from("/dev/nvme0n1"))
    );
}

#[test]
fn an_id_that_names_nothing_or_what_cannot_be_a_disk_is_one_line_naming_it() {
    assert_eq!(
        resolved("name", "sdq").unwrap_err(),
        "partitions[0].id: --resolve-disks: name id \"sdq\": no block device /dev/sdq"
    );
    assert_eq!(
        resolved("scsi", "0:0:0:1").unwrap_err(),
        "partitions[0].id: --resolve-disks: scsi id \"0:0:0:1\": no block device has SCSI \
         address 0:0:0:1 (/sys/class/scsi_device)"
    );
    // An exact lookup, as in Bareon: no leading zeros, no substrings.
    assert!(resolved("scsi", "00:0:0:0").is_err());
    assert!(resolved("name", "sd").is_err());
    assert!(resolved("path", "disk/by-id/wwn-0x5000c50060fce0").is_err());
    assert_eq!(
        resolved("path", "by-id/wwn-0x5000c50060fce0bf").unwrap_err(),
        "partitions[0].id: --resolve-disks: path id \"by-id/wwn-0x5000c50060fce0bf\": no \
         block device /dev/by-id/wwn-0x5000c50060fce0bf (Bareon's path ids start with \
         \"disk/\", as \"disk/by-path/...\")"
    );
    assert_eq!(
        resolved("name", "sda1").unwrap_err(),
        "partitions[0].id: --resolve-disks: name id \"sda1\": /dev/sda1 is a partition, not \
         a whole disk"
    );
    assert_eq!(
        resolved("path", "disk/by-path/pci-0000:00:1f.2-ata-1.0-part1").unwrap_err(),
        "partitions[0].id: --resolve-disks: path id \
         \"disk/by-path/pci-0000:00:1f.2-ata-1.0-part1\": /dev/sda1 is a partition, not a \
         whole disk"
    );
    assert_eq!(
        resolved("scsi", "2:0:0:0").unwrap_err(),
        "partitions[0].id: --resolve-disks: scsi id \"2:0:0:0\": /dev/sr0 is read-only"
    );
    assert_eq!(
        resolved("name", "loop3").unwrap_err(),
        "partitions[0].id: --resolve-disks: name id \"loop3\": /dev/loop3 is empty (0 bytes: \
         no medium, or nothing attached)"
    );
}

#[test]
fn a_link_two_devices_have_is_ambiguous() {
    let mut machine = server();
    machine.devices[2]
        .links
        .push("disk/by-id/wwn-0x5000c50060fce0bf".to_owned());
    let errors = resolve_disks(
        &config(&[("path", "disk/by-id/wwn-0x5000c50060fce0bf")]),
        &[],
        &machine,
    )
    .unwrap_err();
    assert_eq!(
        errors[0].message,
        "--resolve-disks: path id \"disk/by-id/wwn-0x5000c50060fce0bf\": several block \
         devices match: /dev/sda, /dev/sdb"
    );
}

#[test]
fn disks_given_by_disk_are_left_alone_and_no_device_is_taken_twice() {
    let config = config(&[
        ("name", "sda"),
        ("scsi", "1:0:0:0"),
        ("path", "disk/by-path/pci-0000:3c:00.0-nvme-1"),
    ]);
    let given = |name: &str, devnum| GivenDisk {
        name: name.to_owned(),
        devnum,
    };
    // The NVMe disk is given as an image file: the others are found.
    let found = resolve_disks(
        &config,
        &[given("/dev/disk/by-path/pci-0000:3c:00.0-nvme-1", None)],
        &server(),
    )
    .unwrap();
    assert_eq!(
        found,
        [
            Resolved {
                name: "sda".to_owned(),
                kind: DiskIdKind::Name,
                path: PathBuf::from("/dev/sda")
            },
            Resolved {
                name: "1:0:0:0".to_owned(),
                kind: DiskIdKind::Scsi,
                path: PathBuf::from("/dev/sdb")
            },
        ]
    );

    // --disk sda=/dev/sdb: the disk at 1:0:0:0 would be /dev/sdb too.
    let errors = resolve_disks(&config, &[given("sda", Some((8, 16)))], &server()).unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        "partitions[1].id: --resolve-disks: scsi id \"1:0:0:0\": it is /dev/sdb, which --disk \
         sda gives already"
    );

    // Two ids of one device.
    let errors = resolve_disks(
        &self::config(&[("name", "sda"), ("scsi", "0:0:0:0")]),
        &[],
        &server(),
    )
    .unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        "partitions[1].id: --resolve-disks: scsi id \"0:0:0:0\": it is /dev/sda, as \
         partitions[0].id is"
    );
}

#[test]
fn every_error_at_once_with_those_of_the_disk_names() {
    let config = config(&[("name", "sdq"), ("scsi", "7:0:0:0")]);
    let given = [GivenDisk {
        name: "vdz".to_owned(),
        devnum: None,
    }];
    let errors: Vec<String> = resolve_disks(&config, &given, &server())
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].starts_with("--disk vdz: no disk of the config has id \"vdz\""));
    assert!(errors[1].starts_with("partitions[0].id: "));
    assert!(errors[2].starts_with("partitions[1].id: "));
}

#[test]
fn without_udev_a_missing_link_says_which_links_are_derived() {
    let mut machine = server();
    machine.links = Links::Derived;
    let errors = resolve_disks(
        &config(&[("path", "disk/by-id/ata-ST1000DM003-1CH162_S1D9PHQX")]),
        &[],
        &machine,
    )
    .unwrap_err();
    assert_eq!(
        errors[0].message,
        "--resolve-disks: path id \"disk/by-id/ata-ST1000DM003-1CH162_S1D9PHQX\": no block \
         device /dev/disk/by-id/ata-ST1000DM003-1CH162_S1D9PHQX; there is no /dev/disk (no \
         udev), and of udev's links only these are derived from sysfs: by-path of PCI \
         virtio, SCSI, ATA and NVMe disks, by-id of virtio disks (serial) and NVMe disks \
         (wwid)"
    );
}
