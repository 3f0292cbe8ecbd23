//! Attaching disk-image files to loop devices through the kernel's loop ioctls (no losetup).
//!
//! Partitions are found without udev: the kernel's own scan is used when it worked, otherwise
//! the GPT or MBR is read here and the partitions are announced to the kernel with `BLKPG`
//! (what `partx -a` does), which also serves kernels built without partition-table parsers.
//! Missing `/dev` nodes are created from the numbers in `/sys`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use crate::blockdev;
use ptable::{read_partition_table, PartSpan};

mod ptable;

/// Kernel interfaces of `<linux/loop.h>` and `<linux/fs.h>`/`<linux/blkpg.h>` that libc lacks,
/// behind safe functions.
mod sys;

/// How long [`LoopDevice::attach`] keeps retrying when parallel attaches race for a device.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`LoopDevice::partitions`] waits for the kernel and for device nodes.
const PARTITION_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);

/// A disk-image file attached to a loop device with partition scanning and autoclear: the kernel
/// detaches it when the last user goes away, even if this process is killed.
#[derive(Debug)]
pub struct LoopDevice {
    device: File,
    name: String,
    path: PathBuf,
    image: PathBuf,
    /// False for a device someone else attached: it is used, never detached.
    attached_here: bool,
}

impl LoopDevice {
    /// Attaches `image` to a free loop device (read-only if asked), retrying while parallel
    /// attaches race for the same free device. If a loop device is already backed by `image`
    /// (the same file, by device and inode), that one is used instead and left attached:
    /// two loop devices on one file would give one filesystem two superblocks, and mounting
    /// both corrupts it. A flock on the image file makes the look-up and the attach one step
    /// for concurrent callers.
    pub fn attach(image: &Path, read_only: bool) -> io::Result<LoopDevice> {
        let backing = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .open(image)
            .map_err(|e| context(e, format!("opening disk image {}", image.display())))?;
        let deadline = Instant::now() + ATTACH_TIMEOUT;
        let what = format!("disk image {}", image.display());
        let backing = lock_exclusive(backing, deadline, &what)?;
        if let Some(name) = attached_to(&backing)? {
            let path = device_node(&name, deadline)?;
            let device = open_node(&path, read_only)?;
            return Ok(LoopDevice {
                device,
                name,
                path,
                image: image.to_owned(),
                attached_here: false,
            });
        }
        let control = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/loop-control")
            .map_err(|e| context(e, "opening /dev/loop-control".to_owned()))?;
        loop {
            let number = sys::loop_ctl_get_free(&control).map_err(|e| {
                context(
                    e.into(),
                    "asking /dev/loop-control for a free device".to_owned(),
                )
            })?;
            let name = format!("loop{number}");
            let path = device_node(&name, deadline)?;
            let device = open_node(&path, read_only)?;
            match configure(&device, &backing, read_only) {
                Ok(()) => {
                    return Ok(LoopDevice {
                        device,
                        name,
                        path,
                        image: image.to_owned(),
                        attached_here: true,
                    })
                }
                // Another process or thread took this device between GET_FREE and now.
                Err(Errno::EBUSY) if Instant::now() < deadline => sleep(POLL),
                Err(e) => {
                    return Err(context(
                        e.into(),
                        format!("attaching {} to {}", image.display(), path.display()),
                    ))
                }
            }
        }
    }

    /// The loop device, `/dev/loopN`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Device nodes of the partitions in the image's partition table (GPT or MBR), ordered by
    /// partition number; empty when the image has no partition table.
    ///
    /// Partitions the kernel does not show (or shows with another geometry, after the table was
    /// rewritten) are re-read with `BLKRRPART` once, then added with `BLKPG`; missing device nodes
    /// are awaited for up to ~5 s, then created with mknod from `/sys/class/block/NAME/dev`.
    pub fn partitions(&self) -> io::Result<Vec<PathBuf>> {
        Ok(self
            .numbered_partitions()?
            .into_iter()
            .map(|(_, path)| path)
            .collect())
    }

    /// The device node of partition `number` (1-based, as in the partition table).
    pub fn partition(&self, number: u32) -> io::Result<PathBuf> {
        self.numbered_partitions()?
            .into_iter()
            .find(|(n, _)| *n == number)
            .map(|(_, path)| path)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "{} (image {}) has no partition {number}",
                        self.path.display(),
                        self.image.display()
                    ),
                )
            })
    }

    fn numbered_partitions(&self) -> io::Result<Vec<(u32, PathBuf)>> {
        let deadline = Instant::now() + PARTITION_TIMEOUT;
        let table = self.read_table()?;
        let mut kernel = self.kernel_partitions()?;
        if !table.is_empty() && !agrees(&table, &kernel) {
            // Concurrent callers (two bootctl runs on one disk) would re-read and add the
            // same partitions at once, the one's BLKRRPART dropping what the other added: the
            // fix-up is done under an exclusive flock on the whole-disk device (the protocol
            // udev honours too), and first re-checked, since the holder before may have done it.
            let _lock = self.lock_device(deadline)?;
            kernel = self.kernel_partitions()?;
            if !agrees(&table, &kernel) {
                self.reread(deadline);
                kernel = self.kernel_partitions()?;
            }
            if !agrees(&table, &kernel) {
                self.announce(&table, &kernel, deadline)?;
                kernel = self.kernel_partitions()?;
                if !agrees(&table, &kernel) {
                    return Err(io::Error::other(format!(
                        "the kernel does not show the partitions of {} (image {}) after adding them",
                        self.path.display(),
                        self.image.display()
                    )));
                }
            }
        }
        kernel
            .into_iter()
            .filter(|k| table.is_empty() || table.iter().any(|t| t.number == k.span.number))
            .map(|k| Ok((k.span.number, device_node(&k.name, deadline)?)))
            .collect()
    }

    /// An exclusive flock on the loop device, waited for until `deadline`.
    fn lock_device(&self, deadline: Instant) -> io::Result<Flock<File>> {
        let file = File::open(&self.path)
            .map_err(|e| context(e, format!("opening {}", self.path.display())))?;
        lock_exclusive(file, deadline, &self.path.display().to_string())
    }

    /// Reads the partition table through the loop device.
    fn read_table(&self) -> io::Result<Vec<PartSpan>> {
        let sizing = |e: io::Error| context(e, format!("sizing {}", self.path.display()));
        let sector = u64::from(blockdev::logical_sector_size(&self.device).map_err(sizing)?);
        let size = blockdev::size_bytes(&self.device).map_err(sizing)?;
        let sector = if (512..=65536).contains(&sector) {
            sector
        } else {
            512
        };
        let mut read_at = |offset: u64, buf: &mut [u8]| self.device.read_exact_at(buf, offset);
        read_partition_table(&mut read_at, sector, size).map_err(|e| {
            context(
                e,
                format!("reading the partition table of {}", self.path.display()),
            )
        })
    }

    /// Partitions of this device that the kernel shows in `/sys`.
    fn kernel_partitions(&self) -> io::Result<Vec<KernelPartition>> {
        let dir = Path::new("/sys/class/block").join(&self.name);
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| context(e, format!("listing {}", dir.display())))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| context(e, format!("listing {}", dir.display())))?;
            let read = |file: &str| std::fs::read_to_string(entry.path().join(file)).ok();
            let number = read("partition").and_then(|s| s.trim().parse::<u32>().ok());
            let start = read("start").and_then(|s| s.trim().parse::<u64>().ok());
            let size = read("size").and_then(|s| s.trim().parse::<u64>().ok());
            if let (Some(number), Some(start), Some(size), Some(name)) =
                (number, start, size, entry.file_name().to_str())
            {
                // /sys counts in 512-byte units whatever the logical block size.
                found.push(KernelPartition {
                    span: PartSpan {
                        number,
                        start: start.saturating_mul(512),
                        size: size.saturating_mul(512),
                    },
                    name: name.to_owned(),
                });
            }
        }
        found.sort_by_key(|k| k.span.number);
        Ok(found)
    }

    /// Asks the kernel to re-read the partition table, retrying while a partition is busy.
    /// Failure is not an error: the partitions are then announced with `BLKPG`.
    fn reread(&self, deadline: Instant) {
        while let Err(Errno::EBUSY) = sys::blkrrpart(&self.device) {
            if Instant::now() >= deadline {
                return;
            }
            sleep(POLL);
        }
    }

    /// Makes the kernel's partitions match `table`: removes those in the way, adds the missing.
    fn announce(
        &self,
        table: &[PartSpan],
        kernel: &[KernelPartition],
        deadline: Instant,
    ) -> io::Result<()> {
        for k in kernel {
            let in_the_way = table.iter().any(|t| {
                (t.number == k.span.number && *t != k.span)
                    || (t.number != k.span.number && t.overlaps(&k.span))
            });
            if in_the_way {
                self.blkpg(sys::BLKPG_DEL_PARTITION, &k.span, deadline)
                    .map_err(|e| {
                        context(
                            e,
                            format!("removing stale partition /dev/{} from the kernel", k.name),
                        )
                    })?;
            }
        }
        for t in table {
            if !kernel.iter().any(|k| k.span == *t) {
                self.blkpg(sys::BLKPG_ADD_PARTITION, t, deadline)
                    .map_err(|e| {
                        context(
                            e,
                            format!(
                                "adding partition {} of {} to the kernel",
                                t.number,
                                self.path.display()
                            ),
                        )
                    })?;
            }
        }
        Ok(())
    }

    /// Adds or removes a partition, retrying while it is briefly held open (by a prober such
    /// as udev's blkid, or a parallel scan).
    fn blkpg(&self, op: nix::libc::c_int, span: &PartSpan, deadline: Instant) -> io::Result<()> {
        let too_big = || io::Error::new(io::ErrorKind::InvalidData, "partition out of range");
        let start = i64::try_from(span.start).map_err(|_| too_big())?;
        let length = i64::try_from(span.size).map_err(|_| too_big())?;
        let pno = nix::libc::c_int::try_from(span.number).map_err(|_| too_big())?;
        loop {
            match sys::blkpg(&self.device, op, pno, start, length) {
                Ok(_) => return Ok(()),
                Err(Errno::EBUSY) if Instant::now() < deadline => sleep(POLL),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        if !self.attached_here {
            return;
        }
        // With autoclear set the kernel detaches on the last close anyway; EBUSY (older kernels,
        // a partition still mounted) only means that happens once the last user is gone.
        let _ = sys::loop_clr_fd(&self.device);
    }
}

/// An exclusive flock on `file`, waited for until `deadline`; `what` names the file in the error.
fn lock_exclusive(mut file: File, deadline: Instant, what: &str) -> io::Result<Flock<File>> {
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => return Ok(locked),
            Err((unlocked, Errno::EWOULDBLOCK | Errno::EINTR)) if Instant::now() < deadline => {
                file = unlocked;
                sleep(POLL);
            }
            Err((_, e)) => return Err(context(e.into(), format!("locking {what}"))),
        }
    }
}

/// Opens a loop device node, for writing unless `read_only`.
fn open_node(path: &Path, read_only: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(!read_only)
        .open(path)
        .map_err(|e| context(e, format!("opening {}", path.display())))
}

/// The loop device (`loopN`) already backed by the file open as `backing`, if any: compared by
/// device and inode with each `/sys/block/loop*/loop/backing_file`.
fn attached_to(backing: &File) -> io::Result<Option<String>> {
    let wanted = backing.metadata()?;
    let entries = match std::fs::read_dir("/sys/block") {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(context(e, "listing /sys/block".to_owned())),
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        let Ok(file) = std::fs::read_to_string(entry.path().join("loop/backing_file")) else {
            continue;
        };
        let same = std::fs::metadata(file.trim_end_matches('\n'))
            .is_ok_and(|meta| meta.dev() == wanted.dev() && meta.ino() == wanted.ino());
        if same {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// Binds `backing` to the loop device with autoclear and partition scanning.
fn configure(device: &File, backing: &File, read_only: bool) -> Result<(), Errno> {
    let mut flags = sys::LO_FLAGS_AUTOCLEAR | sys::LO_FLAGS_PARTSCAN;
    if read_only {
        flags |= sys::LO_FLAGS_READ_ONLY;
    }
    match sys::loop_configure(device, backing, flags) {
        Ok(()) => Ok(()),
        // Kernels before 5.8 lack LOOP_CONFIGURE.
        Err(Errno::EINVAL | Errno::ENOTTY) => {
            sys::loop_set_fd(device, backing)?;
            // Read-only follows from how the files were opened; only these flags are settable.
            let flags = sys::LO_FLAGS_AUTOCLEAR | sys::LO_FLAGS_PARTSCAN;
            if let Err(e) = sys::loop_set_status64(device, flags) {
                let _ = sys::loop_clr_fd(device);
                return Err(e);
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// `/dev/NAME` for the block device `NAME` of `/sys/class/block`, waiting until `deadline` for
/// devtmpfs or udev to create it, then creating it with mknod (replacing a node with other
/// numbers).
fn device_node(name: &str, deadline: Instant) -> io::Result<PathBuf> {
    let sys_dev = Path::new("/sys/class/block").join(name).join("dev");
    let numbers = std::fs::read_to_string(&sys_dev)
        .map_err(|e| context(e, format!("reading {}", sys_dev.display())))?;
    let rdev = numbers
        .trim()
        .split_once(':')
        .and_then(|(maj, min)| Some(makedev(maj.parse().ok()?, min.parse().ok()?)))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} holds {numbers:?}, not MAJOR:MINOR", sys_dev.display()),
            )
        })?;
    let path = Path::new("/dev").join(name);
    loop {
        let current = std::fs::symlink_metadata(&path);
        if let Ok(meta) = &current {
            if meta.file_type().is_block_device() && meta.rdev() == rdev {
                return Ok(path);
            }
        }
        if Instant::now() >= deadline {
            if current.is_ok() {
                std::fs::remove_file(&path)
                    .map_err(|e| context(e, format!("removing stale {}", path.display())))?;
            }
            return match mknod(&path, SFlag::S_IFBLK, Mode::from_bits_truncate(0o600), rdev) {
                Ok(()) | Err(Errno::EEXIST) => Ok(path),
                Err(e) => Err(context(e.into(), format!("creating {}", path.display()))),
            };
        }
        sleep(POLL);
    }
}

fn context(err: io::Error, what: String) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

/// A partition as `/sys` shows it.
#[derive(Debug)]
struct KernelPartition {
    span: PartSpan,
    name: String,
}

/// Whether every partition of the table is shown by the kernel with the same extent.
fn agrees(table: &[PartSpan], kernel: &[KernelPartition]) -> bool {
    table.iter().all(|t| kernel.iter().any(|k| k.span == *t))
}
