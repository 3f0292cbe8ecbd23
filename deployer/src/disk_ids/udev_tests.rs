use super::*;

/// A chain from `devices` (path under /sys, subsystem, devtype), listed from the root down
/// to the block device as sysfs nests them.
fn chain(devices: &[(&str, Option<&str>, Option<&str>)]) -> Vec<SysNode> {
    devices
        .iter()
        .rev()
        .map(|(path, subsystem, devtype)| SysNode {
            path: format!("/sys/devices/{path}"),
            subsystem: subsystem.map(str::to_owned),
            devtype: devtype.map(str::to_owned),
            ..SysNode::default()
        })
        .collect()
}

fn with_attr(mut chain: Vec<SysNode>, index: usize, attr: &str, value: &str) -> Vec<SysNode> {
    chain[index].attrs.insert(attr.to_owned(), value.to_owned());
    chain
}

fn virtio_blk() -> Vec<SysNode> {
    chain(&[
        ("pci0000:00", None, None),
        ("pci0000:00/0000:00:02.0", Some("pci"), None),
        ("pci0000:00/0000:00:02.0/virtio1", Some("virtio"), None),
        (
            "pci0000:00/0000:00:02.0/virtio1/block/vda",
            Some("block"),
            Some("disk"),
        ),
    ])
}

/// A virtio-scsi disk at target 1, LUN 0, with `host` hosts under the controller (from
/// host0).
fn virtio_scsi(host: u32, base: u32) -> Vec<SysNode> {
    let h = format!("pci0000:00/0000:00:05.0/virtio2/host{host}");
    let t = format!("{h}/target{host}:0:1");
    let d = format!("{t}/{host}:0:1:0");
    let b = format!("{d}/block/sdb");
    let mut chain = chain(&[
        ("pci0000:00", None, None),
        ("pci0000:00/0000:00:05.0", Some("pci"), None),
        ("pci0000:00/0000:00:05.0/virtio2", Some("virtio"), None),
        (&h, Some("scsi"), Some("scsi_host")),
        (&t, Some("scsi"), Some("scsi_target")),
        (&d, Some("scsi"), Some("scsi_device")),
        (&b, Some("block"), Some("disk")),
    ]);
    chain[3].host_base = Some(base);
    chain
}

fn ahci(scsi_name: &str, port_no: &str) -> Vec<SysNode> {
    let a = "pci0000:00/0000:00:1f.2/ata3";
    let h = format!("{a}/host2");
    let t = format!("{h}/target2:0:0");
    let d = format!("{t}/{scsi_name}");
    let b = format!("{d}/block/sda");
    let mut chain = chain(&[
        ("pci0000:00", None, None),
        ("pci0000:00/0000:00:1f.2", Some("pci"), None),
        (a, None, None),
        (&h, Some("scsi"), Some("scsi_host")),
        (&t, Some("scsi"), Some("scsi_target")),
        (&d, Some("scsi"), Some("scsi_device")),
        (&b, Some("block"), Some("disk")),
    ]);
    chain[4].ata_port_no = Some(port_no.to_owned());
    chain[3].host_base = Some(0);
    chain
}

#[test]
fn a_virtio_disk_is_its_pci_function_as_udev_252_names_it() {
    // `udevadm test-builtin path_id /sys/class/block/vda` (udev 252) on the development VM:
    // ID_PATH=pci-0000:00:02.0.
    assert_eq!(
        derived_links(&virtio_blk()),
        [
            "disk/by-path/pci-0000:00:02.0",
            "disk/by-path/virtio-pci-0000:00:02.0"
        ]
    );
    let serial = with_attr(virtio_blk(), 0, "serial", "node-disk-1\n");
    assert_eq!(
        derived_links(&serial)[2..],
        ["disk/by-id/virtio-node-disk-1"]
    );
    // udev would rewrite these characters: no link is derived rather than a guess.
    let odd = with_attr(virtio_blk(), 0, "serial", "a b/c");
    assert_eq!(derived_links(&odd).len(), 2);
}

#[test]
fn a_scsi_disk_is_its_controller_and_its_address_from_the_controllers_first_host() {
    assert_eq!(
        derived_links(&virtio_scsi(0, 0)),
        ["disk/by-path/pci-0000:00:05.0-scsi-0:0:1:0"]
    );
    // The third host of the machine, the second of this controller.
    assert_eq!(
        derived_links(&virtio_scsi(2, 1)),
        ["disk/by-path/pci-0000:00:05.0-scsi-1:0:1:0"]
    );
    let mut unknown_base = virtio_scsi(0, 0);
    unknown_base[3].host_base = None;
    assert!(derived_links(&unknown_base).is_empty());
}

#[test]
fn an_ata_disk_is_its_port_and_device_with_the_old_port_only_link() {
    assert_eq!(
        derived_links(&ahci("2:0:0:0", "3")),
        [
            "disk/by-path/pci-0000:00:1f.2-ata-3.0",
            "disk/by-path/pci-0000:00:1f.2-ata-3"
        ]
    );
    // Behind a port multiplier (bus 1).
    assert_eq!(
        derived_links(&ahci("2:1:0:0", "3"))[0],
        "disk/by-path/pci-0000:00:1f.2-ata-3.1.0"
    );
    let mut no_port = ahci("2:0:0:0", "3");
    no_port[4].ata_port_no = None;
    assert!(derived_links(&no_port).is_empty());
}

#[test]
fn an_nvme_namespace_is_its_pci_function_and_namespace_id() {
    let direct = chain(&[
        ("pci0000:00", None, None),
        ("pci0000:00/0000:00:1d.0", Some("pci"), None),
        ("pci0000:00/0000:00:1d.0/0000:3c:00.0", Some("pci"), None),
        (
            "pci0000:00/0000:00:1d.0/0000:3c:00.0/nvme/nvme0",
            Some("nvme"),
            None,
        ),
        (
            "pci0000:00/0000:00:1d.0/0000:3c:00.0/nvme/nvme0/nvme0n1",
            Some("block"),
            Some("disk"),
        ),
    ]);
    let direct = with_attr(direct, 0, "nsid", "1");
    let direct = with_attr(direct, 0, "wwid", "eui.0025388b91b0d4d9");
    // Only the PCI function nearest the disk counts, not the bridge above it.
    assert_eq!(
        derived_links(&direct),
        [
            "disk/by-path/pci-0000:3c:00.0-nvme-1",
            "disk/by-id/nvme-eui.0025388b91b0d4d9"
        ]
    );

    // NVMe multipath: the namespace lives under the subsystem's virtual device, the real
    // controller follows it in the chain.
    let mut multipath = chain(&[
        (
            "virtual/nvme-subsystem/nvme-subsys0",
            Some("nvme-subsystem"),
            None,
        ),
        (
            "virtual/nvme-subsystem/nvme-subsys0/nvme0n1",
            Some("block"),
            Some("disk"),
        ),
    ]);
    multipath.extend(direct[1..].iter().cloned());
    let multipath = with_attr(multipath, 0, "nsid", "1");
    assert_eq!(
        derived_links(&multipath)[0],
        "disk/by-path/pci-0000:3c:00.0-nvme-1"
    );
    // Without its controller, nothing.
    assert!(derived_links(&multipath[..2]).is_empty());
}

#[test]
fn transports_and_devices_outside_the_port_get_no_link() {
    let sas = "pci0000:00/0000:00:03.0/host0/port-0:0/end_device-0:0";
    let sas_disk = chain(&[
        ("pci0000:00/0000:00:03.0", Some("pci"), None),
        (
            "pci0000:00/0000:00:03.0/host0",
            Some("scsi"),
            Some("scsi_host"),
        ),
        (sas, None, None),
        (
            &format!("{sas}/target0:0:0/0:0:0:0"),
            Some("scsi"),
            Some("scsi_device"),
        ),
        (
            &format!("{sas}/target0:0:0/0:0:0:0/block/sda"),
            Some("block"),
            Some("disk"),
        ),
    ]);
    assert!(derived_links(&sas_disk).is_empty());

    let usb = "pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/host4";
    let usb_disk = chain(&[
        ("pci0000:00/0000:00:14.0", Some("pci"), None),
        ("pci0000:00/0000:00:14.0/usb1/1-1", Some("usb"), None),
        (
            "pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0",
            Some("usb"),
            None,
        ),
        (usb, Some("scsi"), Some("scsi_host")),
        (
            &format!("{usb}/target4:0:0/4:0:0:0"),
            Some("scsi"),
            Some("scsi_device"),
        ),
        (
            &format!("{usb}/target4:0:0/4:0:0:0/block/sdc"),
            Some("block"),
            Some("disk"),
        ),
    ]);
    assert!(derived_links(&usb_disk).is_empty());

    let loop_device = chain(&[("virtual/block/loop0", Some("block"), Some("disk"))]);
    assert!(derived_links(&loop_device).is_empty());

    let mut partition = virtio_blk();
    partition.insert(
        0,
        SysNode {
            path: "/sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda/vda1".to_owned(),
            subsystem: Some("block".to_owned()),
            devtype: Some("partition".to_owned()),
            ..SysNode::default()
        },
    );
    assert!(derived_links(&partition).is_empty());

    // A block device straight under a PCI function: no transport, no link.
    let bare = chain(&[
        ("pci0000:00/0000:00:04.0", Some("pci"), None),
        (
            "pci0000:00/0000:00:04.0/block/sdz",
            Some("block"),
            Some("disk"),
        ),
    ]);
    assert!(derived_links(&bare).is_empty());
}

#[test]
fn nvme_namespace_names_follow_the_rules_pattern() {
    assert!(is_nvme_namespace("nvme0n1"));
    assert!(is_nvme_namespace("nvme12n3"));
    assert!(!is_nvme_namespace("nvme0"));
    assert!(!is_nvme_namespace("nvme0n"));
    assert!(!is_nvme_namespace("vda"));
}
