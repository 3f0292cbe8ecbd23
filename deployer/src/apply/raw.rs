//! Writing a raw filesystem image onto a partition, skipping what is zero.
//!
//! [`write_raw`] copies only the source's data: the extents `SEEK_DATA`/`SEEK_HOLE`
//! report (a sparse image's holes are never read) and, within them, only the 4 KiB
//! blocks that are not all zero, coalesced into writes of up to [`CHUNK`]. Every range it
//! skips is zeroed on the destination instead, so that the result reads back as the image
//! even where the partition held old data: with `BLKZEROOUT` on a block device (on a loop
//! device the kernel zeroes or punches the backing file's range; on a disk it uses the
//! device's write-zeroes command when it has one, else writes zeroes), by punching holes
//! in a regular file. On a block device the data is written with `O_DIRECT`, from an
//! aligned buffer, so it goes to the device without a second copy through the page cache
//! (the last sector is padded with zeroes); reading the next chunk overlaps writing the
//! last one. It ends with an fsync of the destination, as `dd conv=fsync` does, so the
//! data is on the device when it returns. Its progress, how far into the image it got, is
//! shown by a [`Meter`]. [`write_raw_stream`] does the same with an image that arrives as
//! a stream (a download): all of it is read, in chunks, and a stream that goes on past the
//! end of a block device is stopped there. Both feed the same writer.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::sync::mpsc;

use anyhow::{bail, Context};
use nix::fcntl::{fallocate, FallocateFlags};
use nix::unistd::{lseek, Whence};
use shared::blockdev;

use crate::progress::{bytes, Meter, Total};

/// The granularity of zero detection.
pub const BLOCK: usize = 4096;
/// How much is read (and at most written) at a time.
pub const CHUNK: usize = 4 << 20;
/// The alignment of the buffers (enough for `O_DIRECT` on any device).
const ALIGN: usize = 4096;

/// `BLKZEROOUT` of `<linux/fs.h>`, which libc lacks (the size ioctls are
/// [`shared::blockdev`]'s).
mod ioctl {
    nix::ioctl_write_ptr_bad!(blkzeroout, 0x127F, [u64; 2]);
}

/// What [`write_raw`] or [`write_raw_stream`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawReport {
    /// The image's length.
    pub image_bytes: u64,
    /// Bytes written to the destination.
    pub written: u64,
}

/// The destination: a block device (opened exclusively, written with `O_DIRECT`) or a
/// regular file.
struct Dest {
    file: File,
    /// The logical sector size of a block device; `None` for a regular file.
    sector: Option<u64>,
    /// The size of a block device, which nothing may go past; `None` for a regular file,
    /// which grows.
    size: Option<u64>,
}

impl Dest {
    /// Opens `path` for writing an image (`what` in errors) of `len` bytes, if known: one
    /// that does not fit a block device is refused before anything is written.
    fn open(path: &Path, len: Option<u64>, what: &str) -> anyhow::Result<Dest> {
        let meta =
            std::fs::metadata(path).with_context(|| format!("examining {}", path.display()))?;
        if !meta.file_type().is_block_device() {
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("opening {} for writing", path.display()))?;
            return Ok(Dest {
                file,
                sector: None,
                size: None,
            });
        }
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_EXCL | nix::libc::O_DIRECT)
            .open(path)
            .with_context(|| format!("opening {} for writing", path.display()))?;
        let size =
            blockdev::size_bytes(&file).with_context(|| format!("sizing {}", path.display()))?;
        if let Some(len) = len.filter(|&len| len > size) {
            bail!(
                "{what} ({len} bytes) does not fit {} ({size} bytes)",
                path.display()
            );
        }
        let sector = sector_size(&file)
            .with_context(|| format!("reading the sector size of {}", path.display()))?;
        Ok(Dest {
            file,
            sector: Some(sector),
            size: Some(size),
        })
    }

    /// Makes `[start, end)` read as zeroes.
    fn zero(&self, start: u64, end: u64) -> io::Result<()> {
        if end <= start {
            return Ok(());
        }
        match self.sector {
            Some(_) => {
                let range = [start, end - start];
                // SAFETY: BLKZEROOUT reads two u64 (start, length) through the pointer.
                unsafe { ioctl::blkzeroout(self.file.as_raw_fd(), &range) }?;
            }
            None => {
                let offset = i64::try_from(start).map_err(io::Error::other)?;
                let len = i64::try_from(end - start).map_err(io::Error::other)?;
                fallocate(
                    self.file.as_raw_fd(),
                    FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE,
                    offset,
                    len,
                )?;
            }
        }
        Ok(())
    }

    /// How many bytes a write of `len` bytes covers: whole sectors on a block device.
    fn covered(&self, len: u64) -> u64 {
        self.sector
            .map_or(len, |sector| len.div_ceil(sector) * sector)
    }
}

/// Writes the raw image `image` onto `dest` (a block device, or a regular file) from its
/// start, skipping zero blocks and holes (zeroing them on `dest`), and fsyncs `dest`.
/// Fails without writing when the image does not fit. A block device is opened
/// exclusively: one that is mounted or otherwise held is refused by the kernel.
pub fn write_raw(image: &Path, dest: &Path) -> anyhow::Result<RawReport> {
    let source = File::open(image).with_context(|| format!("opening {}", image.display()))?;
    let image_bytes = source
        .metadata()
        .with_context(|| format!("examining {}", image.display()))?
        .len();
    let target = Dest::open(dest, Some(image_bytes), &image.display().to_string())?;
    let meter = Meter::start(
        format!("raw image {}", image.display()),
        "written",
        Total::Known(image_bytes),
    );
    let done = copy_data(&source, image, image_bytes, &target, &meter)
        .with_context(|| format!("writing {} onto {}", image.display(), dest.display()))?;
    complete(&target, dest, meter, image_bytes, &done)
}

/// Writes the raw image read from `source` (`subject` in the progress and in errors) onto
/// `dest` as [`write_raw`] does, from a stream: reading it in [`CHUNK`]s overlaps writing
/// the last one. `expected_len`, when known, is the stream's length: an image that does
/// not fit a block device is refused before anything is written, and a stream that ends
/// sooner or goes on longer is an error. Without it, a stream that goes past the end of a
/// block device is an error when it gets there (nothing is written past the end); a
/// regular file grows to the stream's length.
pub fn write_raw_stream(
    source: &mut dyn Read,
    expected_len: Option<u64>,
    subject: &str,
    dest: &Path,
) -> anyhow::Result<RawReport> {
    let target = Dest::open(dest, expected_len, subject)?;
    let total = expected_len.map_or(Total::Unknown, Total::Known);
    let meter = Meter::start(subject, "written", total);
    let (image_bytes, done) = copy_stream(source, expected_len, subject, &target, &meter)
        .with_context(|| format!("writing {subject} onto {}", dest.display()))?;
    complete(&target, dest, meter, image_bytes, &done)
}

/// The end of both writes, once the writer wrote the data of an image of `len` bytes:
/// zeroes what follows its last write, grows a shorter regular file to `len`, fsyncs (as
/// `dd conv=fsync` does) and shows the meter's last bytes (the holes at the end of a
/// sparse image, which were never read) and the summary.
fn complete(
    target: &Dest,
    dest: &Path,
    meter: Meter,
    len: u64,
    done: &Written,
) -> anyhow::Result<RawReport> {
    target
        .zero(done.zeroed_to, target.covered(len))
        .with_context(|| format!("zeroing the end of the image on {}", dest.display()))?;
    if target.sector.is_none() {
        let meta = target
            .file
            .metadata()
            .with_context(|| format!("examining {}", dest.display()))?;
        if meta.len() < len {
            target
                .file
                .set_len(len)
                .with_context(|| format!("extending {}", dest.display()))?;
        }
    }
    target
        .file
        .sync_all()
        .with_context(|| format!("flushing {}", dest.display()))?;
    meter.add(len.saturating_sub(done.reached));
    meter.finish(&format!(
        "{} of data, the rest zeroes",
        bytes(done.written as f64)
    ));
    Ok(RawReport {
        image_bytes: len,
        written: done.written,
    })
}

/// The logical sector size of the block device `device`: the unit of its `O_DIRECT`
/// writes, which the buffers' alignment must cover.
fn sector_size(device: &File) -> io::Result<u64> {
    let size = blockdev::logical_sector_size(device)?;
    Some(u64::from(size))
        .filter(|&s| s > 0 && s as usize <= ALIGN)
        .ok_or_else(|| io::Error::other(format!("the kernel reports sector size {size}")))
}

/// The data extents of the first `len` bytes of `file`, as `(start, end)`; the whole
/// range when the filesystem cannot tell. Also what the tree copy copies of a sparse file.
pub(crate) fn data_extents(file: &File, len: u64) -> io::Result<Vec<(u64, u64)>> {
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

/// Whether `block` is all zero. Sixteen bytes at a time OR-ed together without a branch,
/// which the compiler makes into vector instructions (as fast as reading the block as
/// aligned u128s, measured).
pub fn is_zero(block: &[u8]) -> bool {
    let words = block.chunks_exact(16);
    let tail = words.remainder();
    words.fold(0u128, |acc, word| {
        acc | u128::from_ne_bytes(word.try_into().expect("16 bytes"))
    }) == 0
        && tail.iter().all(|&b| b == 0)
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

/// The chunks of the data extents to read, as `(offset, length)`: from a [`BLOCK`]
/// boundary (so zero detection lines up with the destination's blocks), at most
/// [`CHUNK`] long.
fn chunks(extents: &[(u64, u64)]) -> Vec<(u64, usize)> {
    let mut out = Vec::new();
    for &(start, end) in extents {
        let mut offset = start - start % BLOCK as u64;
        while offset < end {
            let len = (end - offset).min(CHUNK as u64) as usize;
            out.push((offset, len));
            offset += len as u64;
        }
    }
    out
}

/// A [`CHUNK`]-sized buffer aligned to [`ALIGN`] (for `O_DIRECT`), made from an
/// over-allocated vector.
struct AlignedBuf {
    storage: Vec<u8>,
    start: usize,
}

impl AlignedBuf {
    fn new() -> AlignedBuf {
        let storage = vec![0u8; CHUNK + ALIGN];
        let start = storage.as_ptr().align_offset(ALIGN);
        AlignedBuf { storage, start }
    }

    fn get_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + CHUNK]
    }
}

/// A buffer the reader filled: `len` bytes of the image from `offset`.
struct Filled {
    offset: u64,
    len: usize,
    buf: AlignedBuf,
}

/// What [`write_filled`] did.
#[derive(Debug)]
struct Written {
    /// Bytes of data written.
    written: u64,
    /// Where its last write ended: everything before is written or zeroed.
    zeroed_to: u64,
    /// The end of the last buffer: how far into the image the meter was told it got.
    reached: u64,
}

/// Reads and writes at the same time: this thread hands `fill` an empty buffer at a time,
/// which it fills with the next piece of the image (`Some((offset, len))`) or leaves at
/// the end (`None`), while a writer thread writes the buffer filled before with
/// [`write_filled`]. The writer's error wins over the reader's: the reader stops when the
/// writer has gone.
fn pipeline(
    mut fill: impl FnMut(&mut [u8]) -> anyhow::Result<Option<(u64, usize)>>,
    dest: &Dest,
    meter: &Meter,
) -> anyhow::Result<Written> {
    let (full_tx, full_rx) = mpsc::sync_channel::<Filled>(1);
    let (empty_tx, empty_rx) = mpsc::channel::<AlignedBuf>();
    for _ in 0..2 {
        empty_tx
            .send(AlignedBuf::new())
            .expect("the receiver is alive");
    }
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || write_filled(full_rx, &empty_tx, dest, meter));
        let mut read = || -> anyhow::Result<()> {
            while let Ok(mut buf) = empty_rx.recv() {
                let Some((offset, len)) = fill(buf.get_mut())? else {
                    break;
                };
                if full_tx.send(Filled { offset, len, buf }).is_err() {
                    break;
                }
            }
            Ok(())
        };
        let read = read();
        drop(full_tx);
        let written = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        read.map(|()| written)
    })
}

/// The writer half of [`pipeline`]: writes the non-zero blocks of every buffer of `full` to
/// the same offsets of `dest`, coalesced into one write per run, zeroes the ranges between
/// them, gives the buffer back through `empty`, and tells `meter` how far into the image it
/// got. A buffer that goes past the end of a block device is an error, before any of it is
/// written. The buffers come in order of their offsets.
fn write_filled(
    full: mpsc::Receiver<Filled>,
    empty: &mpsc::Sender<AlignedBuf>,
    dest: &Dest,
    meter: &Meter,
) -> io::Result<Written> {
    let mut done = Written {
        written: 0,
        zeroed_to: 0,
        reached: 0,
    };
    for Filled {
        offset,
        len,
        mut buf,
    } in full
    {
        let end = offset + len as u64;
        if let Some(size) = dest.size.filter(|&size| end > size) {
            return Err(io::Error::other(format!(
                "the image goes on past the end of the device ({size} bytes)"
            )));
        }
        let chunk = buf.get_mut();
        for (at, run) in nonzero_runs(&chunk[..len]) {
            let start = offset + at as u64;
            dest.zero(done.zeroed_to, start)?;
            let covered = dest.covered(run as u64) as usize;
            chunk[at + run..at + covered].fill(0);
            dest.file.write_all_at(&chunk[at..at + covered], start)?;
            done.written += run as u64;
            done.zeroed_to = start + covered as u64;
        }
        // The reader may be gone after the last buffer; nothing is lost.
        let _ = empty.send(buf);
        meter.add(end.saturating_sub(done.reached));
        done.reached = done.reached.max(end);
    }
    Ok(done)
}

/// Feeds [`pipeline`] the non-zero blocks of the data extents of `source` (the file
/// `image`, `len` bytes), read where they are.
fn copy_data(
    source: &File,
    image: &Path,
    len: u64,
    dest: &Dest,
    meter: &Meter,
) -> anyhow::Result<Written> {
    let extents =
        data_extents(source, len).with_context(|| format!("examining {}", image.display()))?;
    let mut work = chunks(&extents).into_iter();
    pipeline(
        |buf| {
            let Some((offset, want)) = work.next() else {
                return Ok(None);
            };
            source
                .read_exact_at(&mut buf[..want], offset)
                .with_context(|| format!("reading {} at byte {offset}", image.display()))?;
            Ok(Some((offset, want)))
        },
        dest,
        meter,
    )
}

/// Feeds [`pipeline`] the stream `source` (`subject`) in [`CHUNK`]s, each read until it is
/// full or the stream ends; returns the stream's length with what the writer did. A length
/// other than `expected_len`, when given, is an error.
fn copy_stream(
    source: &mut dyn Read,
    expected_len: Option<u64>,
    subject: &str,
    dest: &Dest,
    meter: &Meter,
) -> anyhow::Result<(u64, Written)> {
    let mut offset = 0u64;
    let mut ended = false;
    let done = pipeline(
        |buf| {
            if ended {
                return Ok(None);
            }
            let mut len = 0;
            while len < buf.len() {
                match source.read(&mut buf[len..]) {
                    Ok(0) => {
                        ended = true;
                        break;
                    }
                    Ok(n) => len += n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => {
                        return Err(anyhow::Error::new(err)
                            .context(format!("reading {subject} at byte {}", offset + len as u64)))
                    }
                }
            }
            let at = offset;
            offset += len as u64;
            if let Some(expected) = expected_len.filter(|&expected| offset > expected) {
                bail!("{subject} goes on past the {expected} bytes expected");
            }
            Ok((len > 0).then_some((at, len)))
        },
        dest,
        meter,
    )?;
    if let Some(expected) = expected_len.filter(|&expected| offset != expected) {
        bail!("{subject} ended after {offset} bytes, {expected} expected");
    }
    Ok((offset, done))
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

    #[test]
    fn chunks_start_on_block_boundaries_and_stay_short() {
        let block = BLOCK as u64;
        assert_eq!(
            chunks(&[(0, 3 * block), (10 * block + 5, 10 * block + 9)]),
            [(0, 3 * BLOCK), (10 * block, 9)]
        );
        let big = CHUNK as u64 * 2 + 7;
        assert_eq!(
            chunks(&[(0, big)]),
            [(0, CHUNK), (CHUNK as u64, CHUNK), (2 * CHUNK as u64, 7)]
        );
        assert!(chunks(&[]).is_empty());
    }

    #[test]
    fn block_devices_write_whole_sectors() {
        let file = tempfile::tempfile().unwrap();
        let device = Dest {
            file,
            sector: Some(512),
            size: Some(1 << 20),
        };
        assert_eq!(device.covered(1), 512);
        assert_eq!(device.covered(4096), 4096);
        assert_eq!(device.covered(4097), 4608);
        let regular = Dest {
            file: tempfile::tempfile().unwrap(),
            sector: None,
            size: None,
        };
        assert_eq!(regular.covered(4097), 4097);
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

    /// An image as a stream: data across the chunks' boundary, zero runs, a hole-sized run
    /// of zeroes and a last sector of 123 bytes.
    fn stream_image() -> Vec<u8> {
        let mut content = vec![0u8; (8 << 20) + 123];
        content[..3 * BLOCK].fill(0xAB);
        content[CHUNK - BLOCK..CHUNK + 2 * BLOCK].fill(0xEE);
        content[(5 << 20) + 10] = 7;
        let tail = content.len() - 1;
        content[tail] = 9;
        content
    }

    /// A reader that gives at most 1000 bytes a read, and `Interrupted` every fifth read.
    struct Trickle<'a> {
        inner: &'a [u8],
        reads: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            if self.reads.is_multiple_of(5) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(1000);
            self.inner.read(&mut buf[..n])
        }
    }

    /// A reader whose connection breaks after `good` bytes.
    struct Broken<'a> {
        good: &'a [u8],
    }

    impl Read for Broken<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.good.read(buf)? {
                0 => Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "connection reset by peer",
                )),
                n => Ok(n),
            }
        }
    }

    #[test]
    fn a_stream_onto_a_file_reads_back_over_old_data() {
        let dir = tempfile::tempdir().unwrap();
        let content = stream_image();
        let dest = dir.path().join("dest");
        std::fs::write(&dest, vec![0x55u8; 10 << 20]).unwrap();
        let len = content.len() as u64;
        let report = write_raw_stream(&mut &content[..], Some(len), "image alpha", &dest).unwrap();
        assert_eq!(
            report,
            RawReport {
                image_bytes: len,
                written: (6 * BLOCK + BLOCK + 123) as u64,
            },
            "only the data blocks are written"
        );
        let got = std::fs::read(&dest).unwrap();
        assert_eq!(got.len(), 10 << 20, "a longer destination keeps its length");
        assert!(got[..content.len()] == content[..], "the image reads back");
        assert!(got[content.len()..].iter().all(|&b| b == 0x55));
    }

    #[test]
    fn a_stream_of_unknown_length_grows_a_short_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut content = stream_image();
        content.extend_from_slice(&[0; 3 * BLOCK]);
        let dest = dir.path().join("dest");
        std::fs::write(&dest, b"old").unwrap();
        let report = write_raw_stream(&mut &content[..], None, "image alpha", &dest).unwrap();
        assert_eq!(report.image_bytes, content.len() as u64);
        assert!(
            std::fs::read(&dest).unwrap() == content,
            "it grows to the stream's length, its zeroes at the end included"
        );
    }

    #[test]
    fn short_reads_give_the_same_result() {
        let dir = tempfile::tempdir().unwrap();
        let content = stream_image();
        let whole = dir.path().join("whole");
        let trickled = dir.path().join("trickled");
        for dest in [&whole, &trickled] {
            std::fs::write(dest, vec![0x55u8; 9 << 20]).unwrap();
        }
        let len = Some(content.len() as u64);
        let at_once = write_raw_stream(&mut &content[..], len, "image alpha", &whole).unwrap();
        let mut trickle = Trickle {
            inner: &content,
            reads: 0,
        };
        let in_pieces = write_raw_stream(&mut trickle, len, "image alpha", &trickled).unwrap();
        assert!(trickle.reads > 8000, "{} reads", trickle.reads);
        assert_eq!(in_pieces, at_once);
        let got = std::fs::read(&trickled).unwrap();
        assert!(got == std::fs::read(&whole).unwrap());
        assert!(got[..content.len()] == content[..]);
    }

    #[test]
    fn a_failing_reader_is_reported_with_context() {
        let dir = tempfile::tempdir().unwrap();
        let content = stream_image();
        let dest = dir.path().join("dest");
        std::fs::write(&dest, b"").unwrap();
        let mut broken = Broken {
            good: &content[..(5 << 20) + 17],
        };
        let err = write_raw_stream(&mut broken, None, "image alpha", &dest).unwrap_err();
        let shown = format!("{err:#}");
        assert!(
            shown.starts_with(&format!("writing image alpha onto {}", dest.display())),
            "{shown}"
        );
        assert!(
            shown.contains("reading image alpha at byte 5242897: connection reset by peer"),
            "{shown}"
        );
    }

    #[test]
    fn a_stream_of_another_length_than_expected_fails() {
        let dir = tempfile::tempdir().unwrap();
        let content = stream_image();
        let dest = dir.path().join("dest");
        std::fs::write(&dest, b"").unwrap();
        let len = content.len() as u64;
        let err =
            write_raw_stream(&mut &content[..], Some(len + 1), "image alpha", &dest).unwrap_err();
        assert!(
            format!("{err:#}").ends_with(&format!(
                "image alpha ended after {len} bytes, {} expected",
                len + 1
            )),
            "{err:#}"
        );
        let err =
            write_raw_stream(&mut &content[..], Some(len - 1), "image alpha", &dest).unwrap_err();
        assert!(
            format!("{err:#}").ends_with(&format!(
                "image alpha goes on past the {} bytes expected",
                len - 1
            )),
            "{err:#}"
        );
    }

    /// A stream onto a loop device over old data reads back, its last sector padded with
    /// zeroes and the rest of the device untouched. Runs as root with losetup.
    #[test]
    fn a_stream_onto_a_loop_device_reads_back() {
        use e2e::disk::LoopDisk;
        e2e::tools::require_tools(&["losetup", "partx"]);
        let dir = tempfile::tempdir().unwrap();
        let backing = dir.path().join("disk.img");
        std::fs::write(&backing, vec![0x55u8; 12 << 20]).unwrap();
        let disk = LoopDisk::attach(&backing);
        let content = stream_image();
        let len = content.len() as u64;
        for expected_len in [Some(len), None] {
            let mut trickle = Trickle {
                inner: &content,
                reads: 0,
            };
            let report =
                write_raw_stream(&mut trickle, expected_len, "image alpha", disk.device()).unwrap();
            assert_eq!(report.image_bytes, len);
            let got = std::fs::read(disk.device()).unwrap();
            assert!(got[..content.len()] == content[..], "the image reads back");
            let padded = content.len().div_ceil(512) * 512;
            assert!(got[content.len()..padded].iter().all(|&b| b == 0));
            assert!(got[padded..].iter().all(|&b| b == 0x55));
        }
    }

    /// A 5 MiB partition at 1 MiB of an 8 MiB disk of old data: a 6 MiB stream is refused
    /// before anything is written when its length is known, and stopped at the partition's
    /// end when it is not; what follows the partition is never written. Runs as root with
    /// losetup and sfdisk.
    #[test]
    fn a_stream_longer_than_the_device_stops_at_its_end() {
        use e2e::disk::LoopDisk;
        use std::process::Command;
        e2e::tools::require_tools(&["losetup", "partx", "sfdisk"]);
        let dir = tempfile::tempdir().unwrap();
        let backing = dir.path().join("disk.img");
        std::fs::write(&backing, vec![0x55u8; 8 << 20]).unwrap();
        e2e::cmd::run_with_input(
            Command::new("sfdisk")
                .args(["-q", "--label", "dos"])
                .arg(&backing),
            "start=2048, size=10240\n",
        );
        let disk = LoopDisk::attach(&backing);
        let part = disk.partition(1);
        let content = vec![0xABu8; 6 << 20];
        let err =
            write_raw_stream(&mut &content[..], Some(6 << 20), "image alpha", &part).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!(
                "image alpha (6291456 bytes) does not fit {} (5242880 bytes)",
                part.display()
            )
        );
        let old = std::fs::read(&backing).unwrap();
        assert!(old[1 << 20..].iter().all(|&b| b == 0x55), "nothing written");

        let err = write_raw_stream(&mut &content[..], None, "image alpha", &part).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!(
                "writing image alpha onto {}: the image goes on past the end of the device \
                 (5242880 bytes)",
                part.display()
            )
        );
        let after = std::fs::read(&backing).unwrap();
        assert!(
            after[6 << 20..].iter().all(|&b| b == 0x55),
            "nothing after the partition is written"
        );
    }
}
