//! Resolving `--disk NAME=PATH` to a [`DiskInput`]: the only place the planner's inputs
//! come from the system. Reads sizes and, when asked, the partition table (`sfdisk -J`)
//! and what each partition holds (`blkid -p`, read through the whole disk at the
//! partition's offset, so an image file needs no loop device); never opens a disk for
//! writing or creates a file.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::exec::{run, StepError};
use crate::ondisk;
use crate::plan::{DiskInput, DiskRequest, ExistingDisk, Member};
use crate::sfdisk::{parse_table, partition_number};

/// The sector size of disk-image files, and of block devices that do not report one.
pub const DEFAULT_SECTOR_SIZE: u32 = 512;

/// Why a `--disk` cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{}: cannot read: {source}", path.display())]
    Unreadable { path: PathBuf, source: io::Error },
    #[error(
        "{}: does not exist, and the config gives disk {name:?} no \"size\" to create it with",
        path.display()
    )]
    MissingWithoutSize { name: String, path: PathBuf },
    #[error("{}: neither a block device nor a regular file", path.display())]
    NotADisk { path: PathBuf },
}

/// The status `blkid -p` exits with when it finds nothing.
const BLKID_NOTHING_FOUND: i32 = 2;

/// Resolves `request`: the disk the config calls `name` is `path`, of a block device's
/// size from sysfs, a regular file's length, or, for a file that does not exist yet (deploy
/// creates it), the disk's `size` in the config; with what it holds when the request says
/// so.
pub fn disk_input(request: &DiskRequest) -> Result<DiskInput, DiskError> {
    let DiskRequest {
        name,
        path,
        configured_size,
        read_existing,
    } = request;
    let configured_size = *configured_size;
    let unreadable = |source| DiskError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let input = |size_bytes, sector_size| DiskInput {
        name: name.to_string(),
        path: path.to_path_buf(),
        size_bytes,
        sector_size,
        existing: read_existing.then(|| existing(path)),
    };
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return match configured_size {
                Some(size) => Ok(input(size, DEFAULT_SECTOR_SIZE)),
                None => Err(DiskError::MissingWithoutSize {
                    name: name.to_string(),
                    path: path.to_path_buf(),
                }),
            };
        }
        Err(err) => return Err(unreadable(err)),
    };
    let file_type = metadata.file_type();
    if file_type.is_file() {
        return Ok(input(metadata.len(), DEFAULT_SECTOR_SIZE));
    }
    if !file_type.is_block_device() {
        return Err(DiskError::NotADisk {
            path: path.to_path_buf(),
        });
    }
    let sysfs = block_device_sysfs(metadata.rdev());
    let sectors = read_number(&sysfs.join("size")).map_err(unreadable)?;
    let sector_size = read_number(&sysfs.join("queue/logical_block_size"))
        .ok()
        .and_then(|size| u32::try_from(size).ok())
        .unwrap_or(DEFAULT_SECTOR_SIZE);
    // sysfs counts 512-byte units whatever the logical sector size.
    Ok(input(sectors.saturating_mul(512), sector_size))
}

/// `/sys/dev/block/MAJOR:MINOR` of a device number.
fn block_device_sysfs(rdev: u64) -> PathBuf {
    let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    PathBuf::from(format!("/sys/dev/block/{major}:{minor}"))
}

/// What the disk at `path` holds: its partition table and what is on each partition.
fn existing(path: &Path) -> ExistingDisk {
    match std::fs::File::open(path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => return ExistingDisk::Missing,
        Err(err) => return ExistingDisk::NoTable(format!("it cannot be read: {err}")),
        Ok(_) => {}
    }
    let argv: Vec<OsString> = vec!["sfdisk".into(), "-J".into(), path.into()];
    let json = match run(
        &format!("read the partition table of {}", path.display()),
        &argv,
    ) {
        Ok(json) => json,
        Err(StepError::Failed { .. }) => {
            return ExistingDisk::NoTable("it has no partition table sfdisk can read".to_owned())
        }
        Err(err) => return ExistingDisk::NoTable(err.to_string()),
    };
    let table = match parse_table(&json) {
        Ok(table) => table,
        Err(why) => return ExistingDisk::NoTable(why),
    };
    let sector_size = table.sectorsize.unwrap_or(u64::from(DEFAULT_SECTOR_SIZE));
    let mut filesystems = BTreeMap::new();
    let mut members = BTreeMap::new();
    for entry in &table.partitions {
        let Some(number) = partition_number(&entry.node) else {
            continue;
        };
        let (offset, size) = (entry.start * sector_size, entry.size * sector_size);
        let found = filesystem_at(path, offset, size, number);
        let kind = found.as_ref().ok().and_then(|f| f.get("TYPE")).cloned();
        if let Some(kind) = kind {
            let partition = Window { offset, size };
            if let Some(member) = member_at(path, &partition, &kind, number) {
                members.insert(number, member);
            }
        }
        filesystems.insert(number, found);
    }
    ExistingDisk::Table {
        table,
        filesystems,
        members,
    }
}

/// A partition: `size` bytes at `offset` of its disk.
struct Window {
    offset: u64,
    size: u64,
}

/// What partition `number` holds when it is an LVM physical volume or an md member
/// (`kind`, blkid's `TYPE`): its metadata, and what `blkid -p` finds in the logical
/// volumes that start on it or in the array.
fn member_at(
    path: &Path,
    partition: &Window,
    kind: &str,
    number: u32,
) -> Option<Result<Member, String>> {
    let what = |e: String| format!("partition {number} of {}: {e}", path.display());
    let mut reader = match PartitionReader::open(path, partition) {
        Ok(reader) => reader,
        Err(err) => return Some(Err(what(err.to_string()))),
    };
    let probe = |start: u64| {
        let size = partition.size.saturating_sub(start);
        filesystem_at(path, partition.offset + start, size, number)
    };
    match kind {
        "LVM2_member" => Some(match ondisk::read_lvm_pv(&mut reader) {
            Ok(Some(pv)) => {
                let filesystems = pv.metadata.as_ref().map_or_else(BTreeMap::new, |vg| {
                    vg.lvs
                        .iter()
                        .filter_map(|lv| {
                            let (holder, start) = vg.lv_start(lv)?;
                            (holder.id == pv.label.pv_id).then(|| (lv.name.clone(), probe(start)))
                        })
                        .collect()
                });
                Ok(Member::Pv {
                    pv_id: pv.label.pv_id,
                    vg: pv.metadata,
                    filesystems,
                })
            }
            Ok(None) => Err(what(
                "blkid says LVM2_member, but it has no LVM label".to_owned(),
            )),
            Err(err) => Err(what(err)),
        }),
        "linux_raid_member" => Some(match ondisk::read_md_member(&mut reader) {
            Ok(Some(superblock)) => Ok(Member::Md {
                filesystem: probe(superblock.data_offset_bytes),
                superblock,
            }),
            // Another md metadata version: not one this deployer made.
            Ok(None) => return None,
            Err(err) => Err(what(err)),
        }),
        _ => None,
    }
}

/// Reads one partition of a disk (or disk-image file) as a device of its own.
struct PartitionReader {
    file: std::fs::File,
    start: u64,
    size: u64,
    position: u64,
}

impl PartitionReader {
    fn open(path: &Path, partition: &Window) -> io::Result<PartitionReader> {
        Ok(PartitionReader {
            file: std::fs::File::open(path)?,
            start: partition.offset,
            size: partition.size,
            position: 0,
        })
    }
}

impl io::Read for PartitionReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let left = self.size.saturating_sub(self.position);
        let len = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let read = self
            .file
            .read_at(&mut buf[..len], self.start + self.position)?;
        self.position += read as u64;
        Ok(read)
    }
}

impl io::Seek for PartitionReader {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let position = match to {
            io::SeekFrom::Start(at) => Some(at),
            io::SeekFrom::End(delta) => self.size.checked_add_signed(delta),
            io::SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = position
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.position)
    }
}

/// What `blkid -p` finds on the `size` bytes at `offset` of the disk at `path` (partition
/// `number`): its `KEY=value` pairs, empty when nothing.
fn filesystem_at(
    path: &Path,
    offset: u64,
    size: u64,
    number: u32,
) -> Result<BTreeMap<String, String>, String> {
    let argv: Vec<OsString> = vec![
        "blkid".into(),
        "-p".into(),
        "-o".into(),
        "export".into(),
        "--offset".into(),
        offset.to_string().into(),
        "--size".into(),
        size.to_string().into(),
        path.into(),
    ];
    match run(
        &format!(
            "read the filesystem of partition {number} of {}",
            path.display()
        ),
        &argv,
    ) {
        Ok(text) => Ok(parse_blkid_export(&text)),
        Err(StepError::Failed { status, .. }) if status.code() == Some(BLKID_NOTHING_FOUND) => {
            Ok(BTreeMap::new())
        }
        Err(err) => Err(err.to_string()),
    }
}

/// The `KEY=value` lines of `blkid -o export`.
pub fn parse_blkid_export(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

fn read_number(path: &Path) -> io::Result<u64> {
    let text = std::fs::read_to_string(path)?;
    text.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a number: {:?}", path.display(), text.trim()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkid_export_is_read_as_keys_and_values() {
        let text = "DEVNAME=/tmp/d.img\nUUID=0a1b-2c3d\nLABEL=a=b\nTYPE=vfat\n";
        let found: Vec<(String, String)> = parse_blkid_export(text).into_iter().collect();
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            found,
            [
                pair("DEVNAME", "/tmp/d.img"),
                pair("LABEL", "a=b"),
                pair("TYPE", "vfat"),
                pair("UUID", "0a1b-2c3d"),
            ]
        );
    }

    #[test]
    fn device_numbers_split_like_glibc() {
        assert_eq!(
            block_device_sysfs((7 << 8) | 3),
            PathBuf::from("/sys/dev/block/7:3")
        );
        assert_eq!(
            block_device_sysfs((259 << 8) | 5),
            PathBuf::from("/sys/dev/block/259:5")
        );
        assert_eq!(
            block_device_sysfs((8 << 8) | (256 << 12) | 44),
            PathBuf::from("/sys/dev/block/8:300")
        );
    }

    fn request(path: &Path, configured_size: Option<u64>, read_existing: bool) -> DiskRequest {
        DiskRequest {
            name: "vda".to_owned(),
            path: path.to_owned(),
            configured_size,
            read_existing,
        }
    }

    #[test]
    fn a_regular_file_is_its_length_and_nothing_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(3 << 20)
            .unwrap();
        let disk = disk_input(&request(&image, Some(1 << 30), false)).unwrap();
        assert_eq!(disk.size_bytes, 3 << 20);
        assert_eq!(disk.sector_size, 512);
        assert_eq!(disk.name, "vda");
        assert_eq!(disk.existing, None);

        let missing = dir.path().join("new.img");
        let disk = disk_input(&request(&missing, Some(1 << 30), true)).unwrap();
        assert_eq!(disk.size_bytes, 1 << 30);
        assert_eq!(disk.existing, Some(ExistingDisk::Missing));
        assert!(!missing.exists());
        let err = disk_input(&request(&missing, None, false)).unwrap_err();
        assert!(matches!(err, DiskError::MissingWithoutSize { .. }), "{err}");
    }

    #[test]
    fn a_directory_is_not_a_disk() {
        let dir = tempfile::tempdir().unwrap();
        let err = disk_input(&request(dir.path(), None, false)).unwrap_err();
        assert!(matches!(err, DiskError::NotADisk { .. }), "{err}");
    }
}
