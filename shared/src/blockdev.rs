//! Finding block devices and the filesystems on them without udev or libblkid.
//!
//! Everything here reads the kernel's own views (`/proc/partitions`, `/proc/self/mountinfo`,
//! `/sys/dev/block`, two `BLK*` ioctls) and the first few KiB of devices, so it works the same
//! on a full system, in a provisioning ramdisk and in a static busybox guest.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::libc::c_int;
use nix::sys::stat::{major, minor};

use crate::bytes::{be16, be32, le16, le32};

/// How many bytes of a device [`probe`] reads at most: enough for every superblock it knows.
pub const PROBE_BYTES: usize = 64 * 1024;
/// What [`probe`] reads first: every superblock it knows lies in the first 4 KiB, except the
/// signature of swap space made on a machine with pages larger than 4 KiB.
const FIRST_READ: usize = 4096;

/// A filesystem identified from its superblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsInfo {
    /// `ext2`, `ext3`, `ext4`, `xfs`, `vfat` or `swap`.
    pub fstype: String,
    /// Lowercase hyphenated UUID; for vfat the volume serial as `ABCD-1234`.
    pub uuid: Option<String>,
    /// The filesystem label, trailing blanks removed.
    pub label: Option<String>,
}

/// Reads the first bytes of a block device or image file and identifies the filesystem on
/// it: 4 KiB, and up to 64 KiB only when they hold a swap header whose signature ends a
/// larger page. This runs for every device bootctl passes on its way to the multiboot
/// partition, and each read of a device whose last user closed it goes to the disk.
pub fn probe(dev: &Path) -> io::Result<Option<FsInfo>> {
    let mut file =
        File::open(dev).map_err(|e| with_context(e, format!("opening {}", dev.display())))?;
    let mut head = vec![0u8; PROBE_BYTES];
    let mut filled = read_into(&mut file, &mut head[..FIRST_READ])
        .map_err(|e| with_context(e, format!("reading {}", dev.display())))?;
    if let Some(info) = probe_bytes(&head[..filled]) {
        return Ok(Some(info));
    }
    if filled < FIRST_READ || !swap_header_version(&head) {
        return Ok(None);
    }
    filled += read_into(&mut file, &mut head[FIRST_READ..])
        .map_err(|e| with_context(e, format!("reading {}", dev.display())))?;
    Ok(probe_bytes(&head[..filled]))
}

/// Fills `buf` from `file` as far as the file goes; returns how many bytes were read.
fn read_into(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Identifies the filesystem whose first bytes are `head` (ext2/3/4, xfs, swap, vfat).
pub fn probe_bytes(head: &[u8]) -> Option<FsInfo> {
    probe_ext(head)
        .or_else(|| probe_xfs(head))
        .or_else(|| probe_swap(head))
        .or_else(|| probe_vfat(head))
}

const EXT_SB: usize = 1024;
const EXT_COMPAT_HAS_JOURNAL: u32 = 0x0004;
const EXT_INCOMPAT_JOURNAL_DEV: u32 = 0x0008;
/// Incompatible features an ext3 driver knows: filetype, recover, meta_bg.
const EXT3_INCOMPAT_SUPPORTED: u32 = 0x0002 | 0x0004 | 0x0010;
/// Read-only compatible features an ext3 driver knows: sparse_super, large_file, btree_dir.
const EXT3_RO_COMPAT_SUPPORTED: u32 = 0x0001 | 0x0002 | 0x0004;

fn probe_ext(head: &[u8]) -> Option<FsInfo> {
    if le16(head, EXT_SB + 56)? != 0xEF53 {
        return None;
    }
    let compat = le32(head, EXT_SB + 92)?;
    let incompat = le32(head, EXT_SB + 96)?;
    let ro_compat = le32(head, EXT_SB + 100)?;
    if incompat & EXT_INCOMPAT_JOURNAL_DEV != 0 {
        // An external journal, not a mountable filesystem.
        return None;
    }
    let fstype =
        if incompat & !EXT3_INCOMPAT_SUPPORTED != 0 || ro_compat & !EXT3_RO_COMPAT_SUPPORTED != 0 {
            "ext4"
        } else if compat & EXT_COMPAT_HAS_JOURNAL != 0 {
            "ext3"
        } else {
            "ext2"
        };
    Some(FsInfo {
        fstype: fstype.to_owned(),
        uuid: uuid_at(head, EXT_SB + 104),
        label: label_at(head, EXT_SB + 120, 16),
    })
}

fn probe_xfs(head: &[u8]) -> Option<FsInfo> {
    if head.get(..4)? != b"XFSB" {
        return None;
    }
    let block_size = be32(head, 4)?;
    let sector_size = u32::from(be16(head, 102)?);
    if !(512..=65536).contains(&block_size)
        || !block_size.is_power_of_two()
        || !(512..=32768).contains(&sector_size)
        || !sector_size.is_power_of_two()
    {
        return None;
    }
    Some(FsInfo {
        fstype: "xfs".to_owned(),
        uuid: uuid_at(head, 32),
        label: label_at(head, 108, 12),
    })
}

fn probe_swap(head: &[u8]) -> Option<FsInfo> {
    // The signature ends the first page, whose size depends on the machine that ran mkswap.
    let found = [4096usize, 8192, 16384, 32768, 65536]
        .iter()
        .any(|page| page.checked_sub(10).and_then(|at| head.get(at..*page)) == Some(b"SWAPSPACE2"));
    if !found {
        return None;
    }
    if !swap_header_version(head) {
        return None;
    }
    Some(FsInfo {
        fstype: "swap".to_owned(),
        uuid: uuid_at(head, 1024 + 12),
        label: label_at(head, 1024 + 28, 16),
    })
}

/// Whether the swap header after the 1024 boot bytes (version, last_page, nr_badpages,
/// uuid[16], volume_name[16]) has version 1, in either byte order.
fn swap_header_version(head: &[u8]) -> bool {
    le32(head, 1024).is_some_and(|version| version == 1 || version == 1u32.swap_bytes())
}

fn probe_vfat(head: &[u8]) -> Option<FsInfo> {
    if head.get(510..512)? != [0x55, 0xAA] {
        return None;
    }
    let bytes_per_sector = le16(head, 11)?;
    let sectors_per_cluster = *head.get(13)?;
    let reserved = le16(head, 14)?;
    let fats = *head.get(16)?;
    let media = *head.get(21)?;
    let bpb_valid = matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096)
        && sectors_per_cluster.is_power_of_two()
        && reserved != 0
        && fats != 0
        && (media == 0xF0 || media >= 0xF8);
    if !bpb_valid {
        return None;
    }
    // FAT32 has no 16-bit FAT length and a longer BPB before its extended boot record.
    let (ebr, fs_type_at) = if le16(head, 22)? == 0 {
        (64, 82)
    } else {
        (36, 54)
    };
    if !head.get(fs_type_at..fs_type_at + 8)?.starts_with(b"FAT") {
        return None;
    }
    let (uuid, label) = if *head.get(ebr + 2)? == 0x29 {
        let serial = le32(head, ebr + 3)?;
        let label = label_at(head, ebr + 7, 11).filter(|l| l != "NO NAME");
        (
            Some(format!("{:04X}-{:04X}", serial >> 16, serial & 0xFFFF)),
            label,
        )
    } else {
        (None, None)
    };
    Some(FsInfo {
        fstype: "vfat".to_owned(),
        uuid,
        label,
    })
}

/// A 16-byte UUID stored in byte order; all zeroes means "none".
fn uuid_at(b: &[u8], at: usize) -> Option<String> {
    let bytes: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    (bytes != [0; 16]).then(|| uuid::Uuid::from_bytes(bytes).hyphenated().to_string())
}

/// A NUL-padded label field; empty means "none".
fn label_at(b: &[u8], at: usize, len: usize) -> Option<String> {
    let field = b.get(at..at + len)?;
    let end = field.iter().position(|&c| c == 0).unwrap_or(field.len());
    let label = String::from_utf8_lossy(&field[..end]);
    let label = label.trim_end();
    (!label.is_empty()).then(|| label.to_owned())
}

fn with_context(err: io::Error, what: String) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

/// Whether the kernel marks the block device `dev` read-only (`/sys/class/block/NAME/ro`,
/// which a partition inherits from its disk); false when that cannot be read.
pub fn is_read_only(dev: &Path) -> bool {
    let Some(name) = std::fs::canonicalize(dev)
        .ok()
        .and_then(|path| path.file_name().map(|n| n.to_owned()))
    else {
        return false;
    };
    let ro = Path::new("/sys/class/block").join(name).join("ro");
    std::fs::read_to_string(ro).is_ok_and(|text| text.trim() == "1")
}

/// Kernel interfaces of `<linux/fs.h>` that libc lacks.
mod ioctl {
    use nix::libc::c_int;

    nix::ioctl_read_bad!(blksszget, 0x1268, c_int);
    nix::ioctl_read!(blkgetsize64, 0x12, 114, u64);
}

/// The size in bytes of the block device open as `device` (`BLKGETSIZE64`).
pub fn size_bytes(device: impl AsFd) -> io::Result<u64> {
    let mut size = 0u64;
    // SAFETY: BLKGETSIZE64 writes one u64 through the pointer.
    unsafe { ioctl::blkgetsize64(device.as_fd().as_raw_fd(), &mut size) }?;
    Ok(size)
}

/// The logical sector size of the block device open as `device` (`BLKSSZGET`): the unit of
/// its partition tables.
pub fn logical_sector_size(device: impl AsFd) -> io::Result<u32> {
    let mut size: c_int = 0;
    // SAFETY: BLKSSZGET writes one int through the pointer.
    unsafe { ioctl::blksszget(device.as_fd().as_raw_fd(), &mut size) }?;
    u32::try_from(size)
        .map_err(|_| io::Error::other(format!("the kernel reports logical sector size {size}")))
}

/// Whole disks and partitions named in `/proc/partitions`, as `/dev/NAME` paths.
pub fn proc_partitions() -> io::Result<Vec<PathBuf>> {
    Ok(read_proc_partitions()?
        .into_iter()
        .map(|(_, path)| path)
        .collect())
}

fn read_proc_partitions() -> io::Result<Vec<(u32, PathBuf)>> {
    let text = std::fs::read_to_string("/proc/partitions")
        .map_err(|e| with_context(e, "reading /proc/partitions".to_owned()))?;
    Ok(parse_proc_partitions(&text))
}

/// Major numbers of drives that never hold a multiboot partition and that complain on
/// the console when read empty: floppy (2) and SCSI CD-ROM (11). QEMU guests have both.
const REMOVABLE_MAJORS: [u32; 2] = [2, 11];

/// Major numbers and device paths from the text of `/proc/partitions` (`!` in a name
/// stands for `/`).
fn parse_proc_partitions(text: &str) -> Vec<(u32, PathBuf)> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [maj, min, _blocks, name] if min.parse::<u32>().is_ok() => Some((
                    maj.parse::<u32>().ok()?,
                    Path::new("/dev").join(name.replace('!', "/")),
                )),
                _ => None,
            }
        })
        .collect()
}

/// Every device of `/proc/partitions` that can be read, with the filesystem found on it,
/// probed lazily: partitions and disks without partitions in the kernel's order, then the
/// disks that hold partitions (a partition table, seldom a filesystem); floppies and
/// CD-ROMs are skipped.
pub fn probe_all() -> io::Result<impl Iterator<Item = (PathBuf, FsInfo)>> {
    let devices: Vec<PathBuf> = read_proc_partitions()?
        .into_iter()
        .filter(|(major, _)| !REMOVABLE_MAJORS.contains(major))
        .map(|(_, dev)| dev)
        .collect();
    Ok(partitioned_disks_last(devices)
        .into_iter()
        .filter_map(|dev| match probe(&dev) {
            Ok(Some(info)) => Some((dev, info)),
            _ => None,
        }))
}

/// `devices` with every disk that has a partition among them moved to the end, the order
/// otherwise kept. A partition is named by the kernel's rule: the disk's name and the
/// partition number, with a `p` between them when the disk's name ends in a digit (`sda1`,
/// `loop0p1`, `nvme0n1p1`; `loop10` is no partition of `loop1`).
fn partitioned_disks_last(devices: Vec<PathBuf>) -> Vec<PathBuf> {
    let name = |dev: &Path| dev.to_string_lossy().into_owned();
    let names: Vec<String> = devices.iter().map(|dev| name(dev)).collect();
    let has_partitions = |disk: &str| {
        let number_after = if disk.ends_with(|c: char| c.is_ascii_digit()) {
            "p"
        } else {
            ""
        };
        names.iter().any(|other| {
            other
                .strip_prefix(disk)
                .and_then(|rest| rest.strip_prefix(number_after))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
        })
    };
    let (disks, rest): (Vec<PathBuf>, Vec<PathBuf>) = devices
        .into_iter()
        .partition(|dev| has_partitions(&name(dev)));
    rest.into_iter().chain(disks).collect()
}

/// Finds a filesystem by UUID (case-insensitive): through `/dev/disk/by-uuid` when udev made it
/// and the link still points at that filesystem, else by probing the devices of
/// `/proc/partitions` in order up to the first that holds it (devices that cannot be read
/// are skipped). Returns the device and what its superblock says.
pub fn find_by_uuid(uuid: &str) -> io::Result<Option<(PathBuf, FsInfo)>> {
    let wanted = |info: &FsInfo| {
        info.uuid
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case(uuid))
    };
    let by_uuid = Path::new("/dev/disk/by-uuid");
    for name in [uuid.to_owned(), uuid.to_lowercase(), uuid.to_uppercase()] {
        if name.contains('/') || name.is_empty() {
            continue;
        }
        if let Ok(dev) = std::fs::canonicalize(by_uuid.join(&name)) {
            if let Ok(Some(info)) = probe(&dev) {
                if wanted(&info) {
                    return Ok(Some((dev, info)));
                }
            }
        }
    }
    Ok(probe_all()?.find(|(_, info)| wanted(info)))
}

/// Finds a filesystem by label (exact match) by probing every device of `/proc/partitions`.
///
/// Every device is probed, even where udev made `/dev/disk/by-label`, because that link names
/// only one device: a label carried by two devices is an error that names both.
pub fn find_by_label(label: &str) -> io::Result<Option<(PathBuf, FsInfo)>> {
    let mut found: Vec<(PathBuf, FsInfo)> = probe_all()?
        .filter(|(_, info)| info.label.as_deref() == Some(label))
        .collect();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        many => Err(io::Error::other(format!(
            "filesystem label {label:?} is carried by {many} devices: {}",
            found
                .iter()
                .map(|(d, _)| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Major number of the mounted device.
    pub major: u64,
    /// Minor number of the mounted device.
    pub minor: u64,
    /// The directory of the filesystem that is mounted (`/` unless a bind mount of a subtree).
    pub root: PathBuf,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Whether the mount or its superblock is read-only.
    pub read_only: bool,
    /// Filesystem type.
    pub fstype: String,
    /// Mount source (usually the device path given to mount).
    pub source: String,
}

/// Parses the text of `/proc/self/mountinfo`, undoing its octal escapes (`\040` for a space).
/// Lines that do not have the expected shape are skipped.
pub fn parse_mountinfo(text: &[u8]) -> Vec<MountInfo> {
    text.split(|&c| c == b'\n')
        .filter_map(parse_mountinfo_line)
        .collect()
}

fn parse_mountinfo_line(line: &[u8]) -> Option<MountInfo> {
    // Fields are separated by single spaces; a field (an empty mount source) may be empty.
    let fields: Vec<&[u8]> = line.split(|&c| c == b' ').collect();
    // id parent major:minor root mount-point options [optional...] - fstype source super-options
    let sep = fields.iter().skip(6).position(|f| *f == b"-")? + 6;
    let dev = std::str::from_utf8(fields.get(2)?).ok()?;
    let (maj, min) = dev.split_once(':')?;
    let has_ro = |opts: &[u8]| opts.split(|&c| c == b',').any(|o| o == b"ro");
    Some(MountInfo {
        major: maj.parse().ok()?,
        minor: min.parse().ok()?,
        root: unescape_path(fields.get(3)?),
        mount_point: unescape_path(fields.get(4)?),
        read_only: has_ro(fields.get(5)?) || fields.get(sep + 3).is_some_and(|o| has_ro(o)),
        fstype: String::from_utf8_lossy(&unescape(fields.get(sep + 1)?)).into_owned(),
        source: String::from_utf8_lossy(&unescape(fields.get(sep + 2)?)).into_owned(),
    })
}

fn unescape_path(field: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(unescape(field)))
}

/// Undoes the kernel's `\ooo` octal escapes of space, tab, newline and backslash.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .map(|d| d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0')))
            .and_then(|v| u8::try_from(v).ok());
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

fn read_mountinfo() -> io::Result<Vec<MountInfo>> {
    let text = std::fs::read("/proc/self/mountinfo")
        .map_err(|e| with_context(e, "reading /proc/self/mountinfo".to_owned()))?;
    Ok(parse_mountinfo(&text))
}

/// Where `dev` (matched by device number, not by name) is mounted now with its whole filesystem
/// (mount root `/`): the first such mount point and whether it is read-only.
pub fn mount_point_of(dev: &Path) -> io::Result<Option<(PathBuf, bool)>> {
    let meta = std::fs::metadata(dev)
        .map_err(|e| with_context(e, format!("examining {}", dev.display())))?;
    if !meta.file_type().is_block_device() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a block device", dev.display()),
        ));
    }
    let (maj, min) = (major(meta.rdev()), minor(meta.rdev()));
    Ok(read_mountinfo()?
        .into_iter()
        .find(|m| m.major == maj && m.minor == min && m.root == Path::new("/"))
        .map(|m| (m.mount_point, m.read_only)))
}

/// The block device holding the filesystem mounted at `/`, or `None` when `/` is not on a block
/// device (tmpfs, overlay, a ramdisk's rootfs).
pub fn root_device() -> io::Result<Option<PathBuf>> {
    device_mounted_at(Path::new("/"))
}

/// The block device holding the filesystem mounted at `dir` (an absolute path as mountinfo
/// shows it), or `None` when nothing is mounted there or the mount is not of a block device.
pub fn device_mounted_at(dir: &Path) -> io::Result<Option<PathBuf>> {
    // The last mount on a point is the one on top (an initramfs rootfs lies underneath the
    // real root).
    let Some(mount) = read_mountinfo()?
        .into_iter()
        .rev()
        .find(|m| m.mount_point == dir)
    else {
        return Ok(None);
    };
    if mount.major == 0 {
        return Ok(None);
    }
    let sys = PathBuf::from(format!("/sys/dev/block/{}:{}", mount.major, mount.minor));
    match std::fs::read_to_string(sys.join("uevent")) {
        Ok(uevent) => Ok(uevent
            .lines()
            .find_map(|l| l.strip_prefix("DEVNAME="))
            .map(|name| Path::new("/dev").join(name))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(with_context(e, format!("reading {}", sys.display()))),
    }
}

/// The whole disk a partition `dev` belongs to (its parent in sysfs), or `None` when `dev`
/// is no partition the kernel knows of.
pub fn whole_disk(dev: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(dev).ok()?;
    let name = real.file_name()?;
    let sys = std::fs::canonicalize(Path::new("/sys/class/block").join(name)).ok()?;
    if !sys.join("partition").is_file() {
        return None;
    }
    Some(Path::new("/dev").join(sys.parent()?.file_name()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
        buf[at..at + bytes.len()].copy_from_slice(bytes);
    }

    const UUID: [u8; 16] = [
        0x3b, 0x36, 0x1f, 0x0a, 0x9c, 0x2d, 0x4e, 0x11, 0x8a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56,
        0x78,
    ];
    const UUID_TEXT: &str = "3b361f0a-9c2d-4e11-8abc-def012345678";

    fn ext(compat: u32, incompat: u32, ro_compat: u32) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        put(&mut b, 1024 + 56, &0xEF53u16.to_le_bytes());
        put(&mut b, 1024 + 92, &compat.to_le_bytes());
        put(&mut b, 1024 + 96, &incompat.to_le_bytes());
        put(&mut b, 1024 + 100, &ro_compat.to_le_bytes());
        put(&mut b, 1024 + 104, &UUID);
        put(&mut b, 1024 + 120, b"multiboot");
        b
    }

    fn info(fstype: &str, uuid: Option<&str>, label: Option<&str>) -> Option<FsInfo> {
        Some(FsInfo {
            fstype: fstype.to_owned(),
            uuid: uuid.map(str::to_owned),
            label: label.map(str::to_owned),
        })
    }

    #[test]
    fn ext_versions_are_told_apart_by_features() {
        let want = |t| info(t, Some(UUID_TEXT), Some("multiboot"));
        assert_eq!(probe_bytes(&ext(0, 0x0002, 0x0003)), want("ext2"));
        assert_eq!(probe_bytes(&ext(0x0004, 0x0002, 0x0003)), want("ext3"));
        // extents and 64bit, as mkfs.ext4 sets them.
        assert_eq!(probe_bytes(&ext(0x003c, 0x02c2, 0x046b)), want("ext4"));
        // An ext4 without a journal is still ext4.
        assert_eq!(probe_bytes(&ext(0, 0x0040, 0)), want("ext4"));
        // huge_file alone is an ext4 feature too.
        assert_eq!(probe_bytes(&ext(0x0004, 0x0002, 0x0008)), want("ext4"));
    }

    #[test]
    fn ext_external_journal_and_empty_fields() {
        assert_eq!(probe_bytes(&ext(0, 0x0008, 0)), None);
        let mut b = ext(0x0004, 0x0002, 0);
        put(&mut b, 1024 + 104, &[0; 16]);
        put(&mut b, 1024 + 120, &[0; 16]);
        assert_eq!(probe_bytes(&b), info("ext3", None, None));
        // A label that fills all 16 bytes has no NUL terminator.
        put(&mut b, 1024 + 120, b"0123456789abcdef");
        assert_eq!(
            probe_bytes(&b),
            info("ext3", None, Some("0123456789abcdef"))
        );
    }

    #[test]
    fn xfs_superblock() {
        let mut b = vec![0u8; 512];
        put(&mut b, 0, b"XFSB");
        put(&mut b, 4, &4096u32.to_be_bytes());
        put(&mut b, 32, &UUID);
        put(&mut b, 102, &512u16.to_be_bytes());
        put(&mut b, 108, b"images\0\0\0\0\0\0");
        assert_eq!(
            probe_bytes(&b),
            info("xfs", Some(UUID_TEXT), Some("images"))
        );
        put(&mut b, 4, &4097u32.to_be_bytes());
        assert_eq!(probe_bytes(&b), None);
    }

    fn swap(page: usize) -> Vec<u8> {
        let mut b = vec![0u8; page];
        put(&mut b, page - 10, b"SWAPSPACE2");
        put(&mut b, 1024, &1u32.to_le_bytes());
        put(&mut b, 1024 + 12, &UUID);
        put(&mut b, 1024 + 28, b"swap0");
        b
    }

    #[test]
    fn swap_on_any_page_size() {
        let want = info("swap", Some(UUID_TEXT), Some("swap0"));
        assert_eq!(probe_bytes(&swap(4096)), want);
        assert_eq!(probe_bytes(&swap(65536)), want);
        let mut bad = swap(4096);
        put(&mut bad, 1024, &7u32.to_le_bytes());
        assert_eq!(probe_bytes(&bad), None);
    }

    fn fat(fat32: bool) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        put(&mut b, 0, &[0xEB, 0x58, 0x90]);
        put(&mut b, 3, b"mkfs.fat");
        put(&mut b, 11, &512u16.to_le_bytes());
        b[13] = 4;
        put(&mut b, 14, &32u16.to_le_bytes());
        b[16] = 2;
        b[21] = 0xF8;
        let ebr = if fat32 {
            put(&mut b, 36, &1000u32.to_le_bytes());
            put(&mut b, 82, b"FAT32   ");
            64
        } else {
            put(&mut b, 22, &200u16.to_le_bytes());
            put(&mut b, 54, b"FAT16   ");
            36
        };
        b[ebr + 2] = 0x29;
        put(&mut b, ebr + 3, &0x1A2B_3C4Du32.to_le_bytes());
        put(&mut b, ebr + 7, b"EFI        ");
        put(&mut b, 510, &[0x55, 0xAA]);
        b
    }

    #[test]
    fn vfat_fat16_and_fat32() {
        let want = info("vfat", Some("1A2B-3C4D"), Some("EFI"));
        assert_eq!(probe_bytes(&fat(false)), want);
        assert_eq!(probe_bytes(&fat(true)), want);
        let mut no_name = fat(true);
        put(&mut no_name, 71, b"NO NAME    ");
        assert_eq!(probe_bytes(&no_name), info("vfat", Some("1A2B-3C4D"), None));
    }

    #[test]
    fn mbr_is_not_vfat_and_garbage_is_nothing() {
        let mut mbr = vec![0u8; 512];
        put(&mut mbr, 446, &[0x80, 0, 0, 0, 0x83]);
        put(&mut mbr, 510, &[0x55, 0xAA]);
        assert_eq!(probe_bytes(&mbr), None);
        assert_eq!(probe_bytes(&[]), None);
        assert_eq!(probe_bytes(&[0xFF; 100]), None);
        assert_eq!(probe_bytes(b"XFSB"), None);
        // A truncated ext superblock must not panic.
        assert_eq!(probe_bytes(&ext(0, 0, 0)[..1090]), None);
    }

    #[test]
    fn proc_partitions_lines() {
        let text = "major minor  #blocks  name\n\n 254        0  268435456 vda\n 259        1      20480 loop0p1\n 104        0   1024 cciss!c0d0\n   2        0          4 fd0\n garbage\n";
        assert_eq!(
            parse_proc_partitions(text),
            vec![
                (254, PathBuf::from("/dev/vda")),
                (259, PathBuf::from("/dev/loop0p1")),
                (104, PathBuf::from("/dev/cciss/c0d0")),
                (2, PathBuf::from("/dev/fd0")),
            ]
        );
    }

    #[test]
    fn disks_holding_partitions_are_probed_after_every_partition() {
        let devices = |names: &[&str]| -> Vec<PathBuf> {
            names
                .iter()
                .map(|n| PathBuf::from(format!("/dev/{n}")))
                .collect()
        };
        assert_eq!(
            partitioned_disks_last(devices(&[
                "sda",
                "sda1",
                "sda2",
                "sdb",
                "loop0",
                "loop0p1",
                "loop1",
                "loop10",
                "nvme0n1",
                "nvme0n1p1",
                "mmcblk0",
                "cciss/c0d0",
                "cciss/c0d0p1",
                "vda",
            ])),
            devices(&[
                "sda1",
                "sda2",
                "sdb",
                "loop0p1",
                "loop1",
                "loop10",
                "nvme0n1p1",
                "mmcblk0",
                "cciss/c0d0p1",
                "vda",
                "sda",
                "loop0",
                "nvme0n1",
                "cciss/c0d0",
            ])
        );
    }

    /// A file holding `head` followed by zeros up to `len` bytes.
    fn image_file(head: &[u8], len: usize) -> tempfile::NamedTempFile {
        let mut bytes = head.to_vec();
        bytes.resize(len.max(head.len()), 0);
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        file
    }

    #[test]
    fn probe_reads_past_4_kib_only_for_swap_of_larger_pages() {
        let swap_info = info("swap", Some(UUID_TEXT), Some("swap0"));
        for page in [4096, 16384, 65536] {
            let file = image_file(&swap(page), 1 << 20);
            assert_eq!(probe(file.path()).unwrap(), swap_info, "page {page}");
        }
        let ext4 = image_file(&ext(0x003c, 0x02c2, 0x046b), 1 << 20);
        assert_eq!(probe(ext4.path()).unwrap().unwrap().fstype, "ext4");
        let mut not_swap = swap(65536);
        put(&mut not_swap, 1024, &2u32.to_le_bytes());
        assert_eq!(probe(image_file(&not_swap, 1 << 20).path()).unwrap(), None);
        assert_eq!(probe(image_file(&[], 100).path()).unwrap(), None);
        assert_eq!(
            probe(image_file(&fat(true), 512).path())
                .unwrap()
                .unwrap()
                .fstype,
            "vfat"
        );
    }

    #[test]
    fn mountinfo_lines_with_escapes_and_optional_fields() {
        let text = b"27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard\n\
            90 27 259:3 / /run/boot\\040ctl/my\\134dir ro,nosuid master:2 shared:7 - xfs /dev/loop0p2 rw,attr2\n\
            91 27 259:4 /sub /mnt/bind rw - ext4 /dev/loop0p1 ro\n\
            92 27 0:50 / /tmp/x rw - tmpfs  ro\n\
            broken line\n";
        let parsed = parse_mountinfo(text);
        assert_eq!(parsed.len(), 4);
        assert_eq!(
            parsed[0],
            MountInfo {
                major: 254,
                minor: 0,
                root: PathBuf::from("/"),
                mount_point: PathBuf::from("/"),
                read_only: false,
                fstype: "ext4".to_owned(),
                source: "/dev/vda".to_owned(),
            }
        );
        assert_eq!(parsed[1].mount_point, Path::new("/run/boot ctl/my\\dir"));
        assert_eq!((parsed[1].major, parsed[1].minor), (259, 3));
        assert!(parsed[1].read_only);
        assert_eq!(parsed[1].fstype, "xfs");
        assert_eq!(parsed[2].root, Path::new("/sub"));
        assert!(
            parsed[2].read_only,
            "a read-only superblock makes the mount read-only"
        );
        // An empty mount source leaves an empty field between two spaces.
        assert_eq!(parsed[3].fstype, "tmpfs");
        assert_eq!(parsed[3].source, "");
        assert!(parsed[3].read_only);
    }

    #[test]
    fn unescape_leaves_incomplete_escapes_alone() {
        assert_eq!(unescape(b"a\\040b"), b"a b");
        assert_eq!(unescape(b"a\\04"), b"a\\04");
        assert_eq!(unescape(b"a\\999"), b"a\\999");
        assert_eq!(unescape(b"\\777"), b"\\777");
        assert_eq!(unescape(b"\\"), b"\\");
    }
}
