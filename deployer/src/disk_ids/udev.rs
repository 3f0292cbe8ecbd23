//! The links udev would make under /dev/disk for a whole disk, derived from sysfs, for a
//! machine without udev (the deploy ramdisk), so that `path` ids resolve there too.
//!
//! It follows udev 252 (Debian 12) for the disks of PCI machines, and only them: its
//! `path_id` builtin (`src/udev/udev-builtin-path_id.c`) for PCI, virtio, SCSI (the default
//! transport and ATA) and NVMe, and from `60-persistent-storage.rules` the `by-path` link
//! (with the ATA compatibility link and the legacy `virtio-pci-...` one of virtio disks)
//! and the `by-id` links of virtio disks (`virtio-SERIAL`) and NVMe namespaces
//! (`nvme-WWID`). A disk reached through anything else `path_id` knows (USB, SAS, Fibre
//! Channel, iSCSI, Hyper-V, FireWire, platform devices, ...) gets no derived `by-path`
//! link rather than one udev might not make; nor are the `by-id` links of what udev's
//! `scsi_id` and `ata_id` read from the disk itself (`scsi-...`, `ata-...`, `wwn-...`).
//!
//! Checked against udev 252 itself in a QEMU guest of the ramdisk's kernel (`udevadm
//! test-builtin path_id` and `udevadm test` on virtio-blk, AHCI ports 1 and 3, virtio-scsi
//! behind six AHCI hosts, NVMe): every link derived here was among udev's; not derived were
//! `ata-QEMU_HARDDISK_...`, `scsi-0QEMU_...` and NVMe's obsolete `nvme-MODEL_SERIAL[_NSID]`.

use std::collections::BTreeMap;

/// The attribute files [`read`](super::read) takes of each device: `nsid`, `serial` and
/// `wwid` of a block device, `ieee1394_id` of a SCSI device.
pub const ATTRIBUTES: [&str; 4] = ["nsid", "serial", "wwid", "ieee1394_id"];

/// One device of sysfs, as udev sees it walking from a block device to the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SysNode {
    /// Its path under /sys: `/sys/devices/pci0000:00/0000:00:05.0/virtio1`.
    pub path: String,
    /// The name its `subsystem` link points to: `pci`, `scsi`, `block`.
    pub subsystem: Option<String>,
    /// `DEVTYPE` of its `uevent`: `disk`, `scsi_device`, `scsi_host`.
    pub devtype: Option<String>,
    /// Those of [`ATTRIBUTES`] it has, without the trailing newline.
    pub attrs: BTreeMap<String, String>,
    /// For an ATA port (`ataN`): `port_no` of `/sys/class/ata_port/ataN`.
    pub ata_port_no: Option<String>,
    /// For a SCSI host: the lowest N of the `hostN` entries of its parent's directory,
    /// which `path_id` subtracts from the host number.
    pub host_base: Option<u32>,
}

impl SysNode {
    /// The last component of its path: `sda`, `0:0:1:0`.
    pub fn sysname(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    fn is(&self, subsystem: &str) -> bool {
        self.subsystem.as_deref() == Some(subsystem)
    }

    fn is_type(&self, subsystem: &str, devtype: &str) -> bool {
        self.is(subsystem) && self.devtype.as_deref() == Some(devtype)
    }
}

/// The subsystems `path_id` handles that this port does not: a disk behind one of them
/// gets no derived `by-path` link.
const NOT_PORTED: [&str; 14] = [
    "scsi_tape",
    "cciss",
    "usb",
    "bcma",
    "serio",
    "platform",
    "acpi",
    "xen",
    "scm",
    "ccw",
    "ccwgroup",
    "ap",
    "iucv",
    "spi",
];

/// The links udev makes for the whole disk `chain[0]` (a block device; `chain` goes from
/// it up to the root, a real NVMe controller standing after an `nvme-subsystem` device
/// as `path_id` goes there), relative to /dev: `disk/by-path/pci-0000:00:05.0-scsi-0:0:1:0`.
/// Nothing for partitions, nor for the kernel names other than `sd*`, `vd*` and `nvme*`.
pub fn derived_links(chain: &[SysNode]) -> Vec<String> {
    let Some(dev) = chain.first() else {
        return Vec::new();
    };
    let name = dev.sysname();
    let virtio_disk = name.starts_with("vd");
    if dev.devtype.as_deref() != Some("disk")
        || !(name.starts_with("sd") || virtio_disk || name.starts_with("nvme"))
    {
        return Vec::new();
    }
    let mut links = Vec::new();
    // 60-persistent-storage.rules runs path_id on disks outside /sys/devices/virtual, and
    // on the namespaces of an NVMe subsystem (NVMe multipath).
    let runs_path_id =
        !dev.path.contains("/virtual/") || chain.iter().any(|node| node.is("nvme-subsystem"));
    if let Some((path, compat)) = runs_path_id.then(|| path_id(chain)).flatten() {
        links.push(format!("disk/by-path/{path}"));
        if let Some(compat) = compat {
            links.push(format!("disk/by-path/{compat}"));
        }
        if virtio_disk && path.starts_with("pci-") {
            links.push(format!("disk/by-path/virtio-{path}"));
        }
    }
    let by_id = |attr: &str, prefix: &str| {
        dev.attrs
            .get(attr)
            .map(|value| value.trim_end())
            .filter(|value| link_safe(value))
            .map(|value| format!("disk/by-id/{prefix}-{value}"))
    };
    if virtio_disk {
        links.extend(by_id("serial", "virtio"));
    }
    if is_nvme_namespace(name) {
        links.extend(by_id("wwid", "nvme"));
    }
    links
}

/// Whether udev would put `value` into a link unchanged: it replaces other characters,
/// and a link is only derived when nothing is to be replaced.
fn link_safe(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "#+-.:=@_".contains(c))
}

/// `nvme*[0-9]n*[0-9]`, the rules' pattern of an NVMe namespace.
fn is_nvme_namespace(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("nvme") else {
        return false;
    };
    let ends_in_digit = |s: &str| s.chars().last().is_some_and(|c| c.is_ascii_digit());
    match rest.rsplit_once('n') {
        Some((controller, namespace)) => ends_in_digit(controller) && ends_in_digit(namespace),
        None => false,
    }
}

/// `ID_PATH` and `ID_PATH_ATA_COMPAT` of `chain[0]`, as `path_id` composes them walking up
/// the chain; `None` where it composes none, or where the chain leaves this port.
fn path_id(chain: &[SysNode]) -> Option<(String, Option<String>)> {
    let mut path: Vec<String> = Vec::new();
    let mut compat: Option<Vec<String>> = None;
    let (mut parent_known, mut transport_known) = (false, false);
    let mut i = 0;
    while i < chain.len() {
        let node = &chain[i];
        match node.subsystem.as_deref() {
            Some("scsi") => {
                transport_known = true;
                if node.is_type("scsi", "scsi_device") {
                    i = scsi(chain, i, &mut path, &mut compat)?;
                }
            }
            Some("virtio") => {
                transport_known = true;
                i = skip(chain, i, "virtio");
            }
            Some("pci") => {
                let part = format!("pci-{}", node.sysname());
                if let Some(compat) = &mut compat {
                    compat.push(part.clone());
                }
                path.push(part);
                parent_known = true;
                i = skip(chain, i, "pci");
            }
            Some(subsystem @ ("nvme" | "nvme-subsystem")) => {
                let Some(nsid) = chain[0].attrs.get("nsid") else {
                    // Without a namespace id path_id goes on past the subsystem's
                    // virtual device, not into the controller that follows it here.
                    if subsystem == "nvme-subsystem" {
                        return None;
                    }
                    i += 1;
                    continue;
                };
                let part = format!("nvme-{nsid}");
                if let Some(compat) = &mut compat {
                    compat.push(part.clone());
                }
                path.push(part);
                let controller = if subsystem == "nvme-subsystem" {
                    // path_id fails when the namespace has no controller.
                    if !chain.get(i + 1)?.is("nvme") {
                        return None;
                    }
                    i + 1
                } else {
                    i
                };
                i = skip(chain, controller, "nvme");
                parent_known = true;
                transport_known = true;
            }
            Some(other) if NOT_PORTED.contains(&other) => return None,
            _ => {}
        }
        i += 1;
    }
    if path.is_empty() || !parent_known || !transport_known {
        return None;
    }
    let join = |parts: Vec<String>| parts.into_iter().rev().collect::<Vec<_>>().join("-");
    Some((join(path), compat.map(join)))
}

/// The last of the devices from `chain[i]` up that are all of `subsystem` (`i` itself when
/// it is not): the walk goes on after it.
fn skip(chain: &[SysNode], i: usize, subsystem: &str) -> usize {
    let mut last = i;
    while chain.get(last + 1).is_some_and(|node| node.is(subsystem)) && chain[last].is(subsystem) {
        last += 1;
    }
    last
}

/// `H:C:T:L` of a SCSI device's name.
fn scsi_address(name: &str) -> Option<[u32; 4]> {
    let parts: Vec<u32> = name
        .split(':')
        .map(|part| part.parse().ok())
        .collect::<Option<_>>()?;
    parts.try_into().ok()
}

/// The SCSI device `chain[i]`: its part of the path, and where the walk goes on; `None`
/// where `path_id` stops or a transport this port does not follow.
fn scsi(
    chain: &[SysNode],
    i: usize,
    path: &mut Vec<String>,
    compat: &mut Option<Vec<String>>,
) -> Option<usize> {
    let node = &chain[i];
    // FireWire, Fibre Channel, SAS, iSCSI and Hyper-V.
    let other_transport = ["/rport-", "/end_device-", "/session", "/vmbus_", "/VMBUS"]
        .iter()
        .any(|mark| node.path.contains(mark));
    if node.attrs.contains_key("ieee1394_id") || other_transport {
        return None;
    }
    let [host, bus, target, lun] = scsi_address(node.sysname())?;
    let host_index = (i + 1..chain.len()).find(|&j| chain[j].is_type("scsi", "scsi_host"))?;
    if node.path.contains("/ata") {
        let port = chain.get(host_index + 1)?.ata_port_no.as_deref()?;
        path.push(if bus != 0 {
            // Behind a port multiplier.
            format!("ata-{port}.{bus}.0")
        } else {
            format!("ata-{port}.{target}")
        });
        compat
            .get_or_insert_with(Vec::new)
            .push(format!("ata-{port}"));
        return Some(i);
    }
    let base = chain[host_index].host_base?;
    let host = i64::from(host) - i64::from(base);
    path.push(format!("scsi-{host}:{bus}:{target}:{lun}"));
    Some(host_index)
}

#[cfg(test)]
#[path = "udev_tests.rs"]
mod tests;
