//! The block devices of this machine for `--resolve-disks`, read from sysfs
//! (`/sys/class/block`, `/sys/class/scsi_device`) and udev's links under /dev/disk, or
//! without /dev/disk the links [`derived_links`] derives. Reads only.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::udev::{derived_links, SysNode, ATTRIBUTES};
use super::{BlockDevice, DevNum, Links, Machine};

/// The block devices under `sys` (`/sys`), with their links under `dev` (`/dev`).
pub fn read_machine(sys: &Path, dev: &Path) -> io::Result<Machine> {
    let class = sys.join("class/block");
    // The kernel names (`cciss!c0d0`) beside the devices.
    let mut names = Vec::new();
    let mut devices = Vec::new();
    for name in dir_names(&class)? {
        let dir = class.join(&name);
        let Some(devnum) = read_optional(&dir.join("dev")).and_then(|text| parse_devnum(&text))
        else {
            continue;
        };
        let uevent = read_optional(&dir.join("uevent")).unwrap_or_default();
        devices.push(BlockDevice {
            devname: uevent_value(&uevent, "DEVNAME")
                .map_or_else(|| name.replace('!', "/"), str::to_owned),
            devnum,
            partition: dir.join("partition").exists(),
            read_only: read_optional(&dir.join("ro")).as_deref() == Some("1"),
            sectors: read_optional(&dir.join("size"))
                .and_then(|size| size.parse().ok())
                .unwrap_or(0),
            scsi: None,
            links: Vec::new(),
        });
        names.push(name);
    }
    let scsi_class = sys.join("class/scsi_device");
    if scsi_class.is_dir() {
        for address in dir_names(&scsi_class)? {
            let block = scsi_class.join(&address).join("device/block");
            for name in dir_names(&block).unwrap_or_default() {
                if let Some(i) = names.iter().position(|n| *n == name) {
                    devices[i].scsi = Some(address.clone());
                }
            }
        }
    }
    let by_links = dev.join("disk");
    let links = if by_links.is_dir() {
        for (link, devnum) in udev_links(&by_links)? {
            if let Some(device) = devices.iter_mut().find(|d| d.devnum == devnum) {
                device.links.push(link);
            }
        }
        Links::Udev
    } else {
        for (name, device) in names.iter().zip(devices.iter_mut()) {
            if !device.partition {
                device.links = derived_links(&chain(sys, name));
            }
        }
        Links::Derived
    };
    Ok(Machine { devices, links })
}

/// The device number of the block device at `path`, if it is one.
pub fn block_devnum(path: &Path) -> Option<DevNum> {
    let metadata = fs::metadata(path).ok()?;
    metadata.file_type().is_block_device().then(|| {
        let rdev = metadata.rdev();
        (
            nix::sys::stat::major(rdev) as u32,
            nix::sys::stat::minor(rdev) as u32,
        )
    })
}

/// Every link of `disk/*/*` that leads to a block device, as `disk/by-id/NAME`, with the
/// device's number.
fn udev_links(by_links: &Path) -> io::Result<Vec<(String, DevNum)>> {
    let mut links = Vec::new();
    for kind in dir_names(by_links)? {
        let dir = by_links.join(&kind);
        if !dir.is_dir() {
            continue;
        }
        for name in dir_names(&dir)? {
            if let Some(devnum) = block_devnum(&dir.join(&name)) {
                links.push((format!("disk/{kind}/{name}"), devnum));
            }
        }
    }
    Ok(links)
}

/// The names in `dir`, sorted (lossy for names that are not UTF-8).
fn dir_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = fs::read_dir(dir)
        .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", dir.display())))?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<Vec<_>>>()?;
    names.sort();
    Ok(names)
}

/// The text of a small file without its trailing newline, if it can be read.
fn read_optional(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    Some(text.strip_suffix('\n').unwrap_or(&text).to_owned())
}

/// `MAJOR:MINOR`.
fn parse_devnum(text: &str) -> Option<DevNum> {
    let (major, minor) = text.trim().split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The value of `KEY=` in a `uevent` file.
fn uevent_value<'a>(uevent: &'a str, key: &str) -> Option<&'a str> {
    uevent
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
}

/// The devices from the block device `name` up to the root, as udev walks them: the
/// directories with a `uevent` file; after an NVMe subsystem, the namespace's real
/// controller and its parents, where `path_id` goes.
fn chain(sys: &Path, name: &str) -> Vec<SysNode> {
    let mut nodes = Vec::new();
    let Ok(mut dir) = fs::canonicalize(sys.join("class/block").join(name)) else {
        return nodes;
    };
    let Ok(devices) = fs::canonicalize(sys.join("devices")) else {
        return nodes;
    };
    while dir.starts_with(&devices) && dir != devices {
        if dir.join("uevent").is_file() {
            let node = sys_node(sys, &devices, &dir);
            let subsystem_jump = node.subsystem.as_deref() == Some("nvme-subsystem");
            nodes.push(node);
            if subsystem_jump {
                match nvme_controller(sys, name) {
                    Some(controller) => {
                        dir = controller;
                        continue;
                    }
                    None => break,
                }
            }
        }
        if !dir.pop() {
            break;
        }
    }
    nodes
}

/// The controller of NVMe namespace `name` (`nvme0n1`: `/sys/class/nvme/nvme0`), resolved.
fn nvme_controller(sys: &Path, name: &str) -> Option<PathBuf> {
    let digits = name.strip_prefix("nvme")?;
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    fs::canonicalize(
        sys.join("class/nvme")
            .join(format!("nvme{}", &digits[..end])),
    )
    .ok()
}

/// The device at `dir` (under `devices`, the resolved `sys/devices`).
fn sys_node(sys: &Path, devices: &Path, dir: &Path) -> SysNode {
    let relative = dir.strip_prefix(devices).unwrap_or(dir);
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let subsystem = fs::read_link(dir.join("subsystem"))
        .ok()
        .and_then(|target| target.file_name().map(|n| n.to_string_lossy().into_owned()));
    let uevent = read_optional(&dir.join("uevent")).unwrap_or_default();
    let devtype = uevent_value(&uevent, "DEVTYPE").map(str::to_owned);
    let attrs: BTreeMap<String, String> = ATTRIBUTES
        .iter()
        .filter_map(|attr| Some((attr.to_string(), read_optional(&dir.join(attr))?)))
        .collect();
    let ata_port_no = read_optional(&sys.join("class/ata_port").join(&name).join("port_no"));
    let host_base = (devtype.as_deref() == Some("scsi_host"))
        .then(|| dir.parent().and_then(lowest_host))
        .flatten();
    SysNode {
        path: format!("/sys/devices/{}", relative.display()),
        subsystem,
        devtype,
        attrs,
        ata_port_no,
        host_base,
    }
}

/// The lowest N of the `hostN` entries of `dir`.
fn lowest_host(dir: &Path) -> Option<u32> {
    fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let kind = entry.file_type().ok()?;
            if !(kind.is_dir() || kind.is_symlink()) {
                return None;
            }
            entry
                .file_name()
                .to_str()?
                .strip_prefix("host")?
                .parse()
                .ok()
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_formats() {
        assert_eq!(parse_devnum("8:16\n"), Some((8, 16)));
        assert_eq!(parse_devnum("8"), None);
        let uevent = "MAJOR=8\nMINOR=0\nDEVNAME=cciss/c0d0\nDEVTYPE=disk";
        assert_eq!(uevent_value(uevent, "DEVNAME"), Some("cciss/c0d0"));
        assert_eq!(uevent_value(uevent, "DEVTYPE"), Some("disk"));
        assert_eq!(uevent_value(uevent, "DEV"), None);
    }
}
