//! Resolving `--disk NAME=PATH` to a [`DiskInput`]: the only place the planner's inputs
//! come from the system. Reads sizes; never opens a disk for writing or creates a file.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::plan::DiskInput;

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

/// Resolves the disk the config calls `name` to `path`: a block device's size from sysfs,
/// a regular file's length, or, for a file that does not exist yet (deploy creates it),
/// `configured_size` (the disk's `size` in the config).
pub fn disk_input(
    name: &str,
    path: &Path,
    configured_size: Option<u64>,
) -> Result<DiskInput, DiskError> {
    let unreadable = |source| DiskError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let input = |size_bytes, sector_size| DiskInput {
        name: name.to_string(),
        path: path.to_path_buf(),
        size_bytes,
        sector_size,
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

/// `/sys/dev/block/MAJOR:MINOR` of a device number (glibc's `major()`/`minor()` split).
fn block_device_sysfs(rdev: u64) -> PathBuf {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    PathBuf::from(format!("/sys/dev/block/{major}:{minor}"))
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

    #[test]
    fn a_regular_file_is_its_length_and_nothing_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(3 << 20)
            .unwrap();
        let disk = disk_input("vda", &image, Some(1 << 30)).unwrap();
        assert_eq!(disk.size_bytes, 3 << 20);
        assert_eq!(disk.sector_size, 512);
        assert_eq!(disk.name, "vda");

        let missing = dir.path().join("new.img");
        let disk = disk_input("vda", &missing, Some(1 << 30)).unwrap();
        assert_eq!(disk.size_bytes, 1 << 30);
        assert!(!missing.exists());
        let err = disk_input("vda", &missing, None).unwrap_err();
        assert!(matches!(err, DiskError::MissingWithoutSize { .. }), "{err}");
    }

    #[test]
    fn a_directory_is_not_a_disk() {
        let dir = tempfile::tempdir().unwrap();
        let err = disk_input("vda", dir.path(), None).unwrap_err();
        assert!(matches!(err, DiskError::NotADisk { .. }), "{err}");
    }
}
