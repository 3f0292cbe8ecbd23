//! The data of the regular files: inside the kernel with `sendfile`, and of a sparse file
//! only its data extents.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::sendfile::sendfile;
use nix::unistd::{ftruncate, lseek, Whence};

use crate::apply::raw::data_extents;

/// Whether a file of `size` bytes that occupies `blocks` 512-byte blocks has holes.
pub(super) fn is_sparse(size: u64, blocks: u64) -> bool {
    blocks.saturating_mul(512) < size
}

/// Opens a source file for reading without moving its access time (`O_NOATIME`, which
/// only its owner or root may ask for; anyone else reads it the ordinary way).
pub(super) fn open_source(path: &Path) -> io::Result<File> {
    let no_atime = OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NOATIME.bits())
        .open(path);
    match no_atime {
        Err(e) if e.raw_os_error() == Some(Errno::EPERM as i32) => File::open(path),
        other => other,
    }
}

/// The most `sendfile` moves in one call.
const SENDFILE_MAX: usize = 0x7fff_f000;

/// Copies the `size` bytes of `src` to the new, empty `dst` inside the kernel, or through
/// a buffer when the source filesystem cannot splice. A source that turns out shorter is
/// copied as far as it goes.
pub(super) fn copy_data(src: &File, dst: &File, size: u64) -> io::Result<()> {
    let mut copied = 0u64;
    while copied < size {
        let want = usize::try_from(size - copied).map_or(SENDFILE_MAX, |n| n.min(SENDFILE_MAX));
        match sendfile(dst, src, None, want) {
            Ok(0) => break,
            Ok(n) => copied += n as u64,
            Err(Errno::EINVAL | Errno::ENOSYS) if copied == 0 => {
                io::copy(&mut ReadOnly(src), &mut &*dst)?;
                break;
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A reader that is only a reader, so that [`io::copy`] takes its generic buffered path.
struct ReadOnly<'a>(&'a File);

impl Read for ReadOnly<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&mut &*self.0).read(buf)
    }
}

/// Copies the data extents of the sparse `src` (`size` bytes) to the new `dst`, leaving
/// its holes as holes.
pub(super) fn copy_extents(src: &File, dst: &File, size: u64) -> io::Result<()> {
    for (start, end) in data_extents(src, size)? {
        let mut at = i64::try_from(start).map_err(io::Error::other)?;
        let end = i64::try_from(end).map_err(io::Error::other)?;
        lseek(dst.as_raw_fd(), at, Whence::SeekSet)?;
        while at < end {
            let want = usize::try_from(end - at).map_or(SENDFILE_MAX, |n| n.min(SENDFILE_MAX));
            match sendfile(dst, src, Some(&mut at), want) {
                Ok(0) => break,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    ftruncate(dst, i64::try_from(size).map_err(io::Error::other)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn sparse_when_fewer_blocks_than_bytes() {
        assert!(is_sparse(1 << 20, 8));
        assert!(!is_sparse(4096, 8));
        assert!(!is_sparse(100, 8));
        // Inline or not yet allocated data counts as sparse: SEEK_DATA still finds it.
        assert!(is_sparse(100, 0));
        assert!(!is_sparse(0, 0));
    }

    #[test]
    fn a_sparse_file_is_copied_with_its_holes() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        // Data in the middle and at the end; data in the middle and a hole at the end.
        for tail in [true, false] {
            let (from, to) = (dir.path().join("from"), dir.path().join("to"));
            let size = 8u64 << 20;
            let src = File::create(&from).unwrap();
            src.set_len(size).unwrap();
            src.write_all_at(&[7u8; 4096], 1 << 20).unwrap();
            if tail {
                src.write_all_at(b"end", size - 3).unwrap();
            }
            let src = File::open(&from).unwrap();
            let dst = File::create(&to).unwrap();
            copy_extents(&src, &dst, size).unwrap();
            assert!(fs::read(&from).unwrap() == fs::read(&to).unwrap());
            let meta = to.metadata().unwrap();
            assert_eq!(meta.len(), size);
            assert!(meta.blocks() * 512 < 1 << 20, "holes stay holes: {meta:?}");
        }
    }
}
