//! Writing a raw filesystem image onto a partition, skipping what is zero.
//!
//! [`write_raw`] first zeroes the destination's range with one `BLKZEROOUT` (on a loop
//! device the kernel punches or zeroes the backing file's range; on a disk it uses the
//! device's write-zeroes command when it has one, else writes zeroes), so that the blocks
//! it then skips read back as zeroes even where the partition held old data. It then
//! copies only the source's data: the extents `SEEK_DATA`/`SEEK_HOLE` report (a sparse
//! image's holes are never read) and, within them, only the 4 KiB blocks that are not
//! all zero, coalesced into large writes. It ends with an fsync of the destination, as
//! `dd conv=fsync` does, so the data is on the device when it returns.
//!
//! The destination may also be a regular file (tests, offline images): its range is
//! zeroed by punching holes instead.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{bail, Context};
use nix::fcntl::{fallocate, FallocateFlags};
use nix::unistd::{lseek, Whence};

/// The granularity of zero detection.
pub const BLOCK: usize = 4096;
/// How much is read (and at most written) at a time.
pub const CHUNK: usize = 4 << 20;

mod ioctl {
    use nix::libc::c_int;
    nix::ioctl_read!(blkgetsize64, 0x12, 114, u64);
    nix::ioctl_read_bad!(blksszget, 0x1268, c_int);
    nix::ioctl_write_ptr_bad!(blkzeroout, 0x127F, [u64; 2]);
}

/// What [`write_raw`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawReport {
    /// The image's length.
    pub image_bytes: u64,
    /// Bytes written to the destination.
    pub written: u64,
}

/// Writes the raw image `image` onto `dest` (a block device, or a regular file) from its
/// start, skipping zero blocks and holes, and fsyncs `dest`. Fails without writing when
/// the image does not fit. A block device is opened exclusively: one that is mounted or
/// otherwise held is refused by the kernel.
pub fn write_raw(image: &Path, dest: &Path) -> anyhow::Result<RawReport> {
    let source = File::open(image).with_context(|| format!("opening {}", image.display()))?;
    let image_bytes = source
        .metadata()
        .with_context(|| format!("examining {}", image.display()))?
        .len();
    let dest_meta =
        std::fs::metadata(dest).with_context(|| format!("examining {}", dest.display()))?;
    let block_device = dest_meta.file_type().is_block_device();
    let mut options = OpenOptions::new();
    options.write(true);
    if block_device {
        options.custom_flags(nix::libc::O_EXCL);
    }
    let target = options
        .open(dest)
        .with_context(|| format!("opening {} for writing", dest.display()))?;
    let zeroed = if block_device {
        let size = device_size(&target).with_context(|| format!("sizing {}", dest.display()))?;
        if image_bytes > size {
            bail!(
                "{} ({image_bytes} bytes) does not fit {} ({size} bytes)",
                image.display(),
                dest.display()
            );
        }
        let sector = sector_size(&target)
            .with_context(|| format!("reading the sector size of {}", dest.display()))?;
        zero_device(&target, image_bytes.div_ceil(sector) * sector)
    } else {
        if dest_meta.len() < image_bytes {
            target.set_len(image_bytes)
        } else {
            Ok(())
        }
        .and_then(|()| punch(&target, image_bytes))
    };
    zeroed.with_context(|| format!("zeroing {}", dest.display()))?;
    let written = copy_data(&source, image_bytes, &target)
        .with_context(|| format!("writing {} onto {}", image.display(), dest.display()))?;
    target
        .sync_all()
        .with_context(|| format!("flushing {}", dest.display()))?;
    Ok(RawReport {
        image_bytes,
        written,
    })
}

fn device_size(device: &File) -> io::Result<u64> {
    let mut size: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one u64 through the pointer.
    unsafe { ioctl::blkgetsize64(device.as_raw_fd(), &mut size) }?;
    Ok(size)
}

fn sector_size(device: &File) -> io::Result<u64> {
    let mut size: nix::libc::c_int = 0;
    // SAFETY: BLKSSZGET writes one int through the pointer.
    unsafe { ioctl::blksszget(device.as_raw_fd(), &mut size) }?;
    u64::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .ok_or_else(|| io::Error::other(format!("the kernel reports sector size {size}")))
}

/// Zeroes the first `len` bytes (a multiple of the sector size) of a block device.
fn zero_device(device: &File, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let range = [0u64, len];
    // SAFETY: BLKZEROOUT reads two u64 (start, length) through the pointer.
    unsafe { ioctl::blkzeroout(device.as_raw_fd(), &range) }?;
    Ok(())
}

/// Makes the first `len` bytes of a regular file read as zeroes.
fn punch(file: &File, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let len = i64::try_from(len).map_err(io::Error::other)?;
    fallocate(
        file.as_raw_fd(),
        FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE,
        0,
        len,
    )?;
    Ok(())
}

/// The data extents of the first `len` bytes of `file`, as `(start, end)`; the whole
/// range when the filesystem cannot tell.
fn data_extents(file: &File, len: u64) -> io::Result<Vec<(u64, u64)>> {
    let fd = file.as_raw_fd();
    let mut extents = Vec::new();
    let mut offset: u64 = 0;
    while offset < len {
        let at = i64::try_from(offset).map_err(io::Error::other)?;
        let data = match lseek(fd, at, Whence::SeekData) {
            Ok(data) => data as u64,
            Err(nix::errno::Errno::ENXIO) => break,
            Err(nix::errno::Errno::EINVAL) if extents.is_empty() => return Ok(vec![(0, len)]),
            Err(err) => return Err(err.into()),
        };
        if data >= len {
            break;
        }
        let hole = lseek(fd, data as i64, Whence::SeekHole)? as u64;
        let end = hole.min(len);
        extents.push((data, end));
        offset = end;
    }
    Ok(extents)
}

/// Whether `block` is all zero.
pub fn is_zero(block: &[u8]) -> bool {
    let (head, words, tail) = {
        // SAFETY: any bit pattern is a valid u128.
        unsafe { block.align_to::<u128>() }
    };
    head.iter().all(|&b| b == 0)
        && tail.iter().all(|&b| b == 0)
        && words.iter().fold(0u128, |acc, &w| acc | w) == 0
}

/// The runs of `buf` to write: maximal runs of [`BLOCK`]-sized blocks that are not all
/// zero, as `(offset, length)` within `buf` (the last block may be shorter).
pub fn nonzero_runs(buf: &[u8]) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, block) in buf.chunks(BLOCK).enumerate() {
        if is_zero(block) {
            continue;
        }
        let at = i * BLOCK;
        match runs.last_mut() {
            Some((start, len)) if *start + *len == at => *len += block.len(),
            _ => runs.push((at, block.len())),
        }
    }
    runs
}

/// Copies the non-zero blocks of the data extents of `source` (`len` bytes) to the same
/// offsets of `dest`; returns the bytes written.
fn copy_data(source: &File, len: u64, dest: &File) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut written = 0;
    for (start, end) in data_extents(source, len)? {
        // Extents start on filesystem block boundaries; reading from a BLOCK boundary
        // keeps the zero detection aligned with the destination's blocks.
        let mut offset = start - start % BLOCK as u64;
        while offset < end {
            let want = (end - offset).min(CHUNK as u64) as usize;
            let chunk = &mut buf[..want];
            source.read_exact_at(chunk, offset)?;
            for (at, run) in nonzero_runs(chunk) {
                dest.write_all_at(&chunk[at..at + run], offset + at as u64)?;
                written += run as u64;
            }
            offset += want as u64;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_blocks() {
        assert!(is_zero(&[0u8; BLOCK]));
        assert!(is_zero(&[]));
        let mut block = vec![0u8; BLOCK + 3];
        assert!(is_zero(&block[1..]), "unaligned");
        block[BLOCK + 2] = 1;
        assert!(!is_zero(&block[1..]), "a byte in the unaligned tail");
        block[BLOCK + 2] = 0;
        block[700] = 0x80;
        assert!(!is_zero(&block));
    }

    #[test]
    fn runs_coalesce_neighbouring_blocks() {
        let mut buf = vec![0u8; BLOCK * 6 + 100];
        buf[BLOCK + 5] = 1;
        buf[BLOCK * 2] = 1;
        buf[BLOCK * 4 + 9] = 1;
        buf[BLOCK * 6 + 99] = 1;
        assert_eq!(
            nonzero_runs(&buf),
            [(BLOCK, 2 * BLOCK), (4 * BLOCK, BLOCK), (6 * BLOCK, 100)]
        );
        assert!(nonzero_runs(&vec![0u8; BLOCK * 3]).is_empty());
    }

    /// A sparse file: data at 0 and at 5 MiB + 10, a hole between, zero blocks in the data.
    fn sparse_image(path: &Path) -> Vec<u8> {
        let mut content = vec![0u8; (8 << 20) + 123];
        content[..3 * BLOCK].fill(0xAB);
        content[4 * BLOCK..5 * BLOCK].fill(0xCD);
        content[(5 << 20) + 10] = 7;
        let tail = content.len() - 1;
        content[tail] = 9;
        let file = File::create(path).unwrap();
        file.set_len(content.len() as u64).unwrap();
        for (start, end) in [(0, 5 * BLOCK), ((5 << 20), (5 << 20) + BLOCK)] {
            file.write_all_at(&content[start..end], start as u64)
                .unwrap();
        }
        file.write_all_at(&content[tail..], tail as u64).unwrap();
        content
    }

    #[test]
    fn a_file_destination_gets_exactly_the_image_over_old_data() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        let content = sparse_image(&image);
        let dest = dir.path().join("dest");
        std::fs::write(&dest, vec![0x55u8; 10 << 20]).unwrap();
        let report = write_raw(&image, &dest).unwrap();
        assert_eq!(report.image_bytes, content.len() as u64);
        assert!(
            report.written < (64 << 10) as u64,
            "only the data blocks are written: {report:?}"
        );
        let got = std::fs::read(&dest).unwrap();
        assert_eq!(got.len(), 10 << 20, "a longer destination keeps its length");
        assert!(got[..content.len()] == content[..], "the image reads back");
        assert!(got[content.len()..].iter().all(|&b| b == 0x55));
    }

    #[test]
    fn a_short_file_destination_grows() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        let content = sparse_image(&image);
        let dest = dir.path().join("dest");
        std::fs::write(&dest, b"old").unwrap();
        write_raw(&image, &dest).unwrap();
        assert!(std::fs::read(&dest).unwrap() == content);
    }

    #[test]
    fn a_missing_image_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_raw(&dir.path().join("nope"), &dir.path().join("dest")).unwrap_err();
        assert!(format!("{err:#}").contains("opening"), "{err:#}");
    }
}
