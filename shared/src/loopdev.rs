//! Attaching disk-image files to loop devices through the kernel's loop ioctls (no losetup).
//!
//! Partitions are found without udev: the kernel's own scan is used when it worked, otherwise
//! the GPT or MBR is read here and the partitions are announced to the kernel with `BLKPG`
//! (what `partx -a` does), which also serves kernels built without partition-table parsers.
//! Missing `/dev` nodes are created from the numbers in `/sys`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use crate::blockdev;

/// How long [`LoopDevice::attach`] keeps retrying when parallel attaches race for a device.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`LoopDevice::partitions`] waits for the kernel and for device nodes.
const PARTITION_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);

/// Kernel interfaces of `<linux/loop.h>` and `<linux/fs.h>`/`<linux/blkpg.h>` that libc lacks.
mod sys {
    use nix::libc::{c_int, c_void};

    pub const LO_FLAGS_READ_ONLY: u32 = 1;
    pub const LO_FLAGS_AUTOCLEAR: u32 = 4;
    pub const LO_FLAGS_PARTSCAN: u32 = 8;
    pub const BLKPG_ADD_PARTITION: c_int = 1;
    pub const BLKPG_DEL_PARTITION: c_int = 2;

    /// `struct loop_info64`.
    #[repr(C)]
    pub struct LoopInfo64 {
        pub lo_device: u64,
        pub lo_inode: u64,
        pub lo_rdevice: u64,
        pub lo_offset: u64,
        pub lo_sizelimit: u64,
        pub lo_number: u32,
        pub lo_encrypt_type: u32,
        pub lo_encrypt_key_size: u32,
        pub lo_flags: u32,
        pub lo_file_name: [u8; 64],
        pub lo_crypt_name: [u8; 64],
        pub lo_encrypt_key: [u8; 32],
        pub lo_init: [u64; 2],
    }

    impl LoopInfo64 {
        pub fn with_flags(lo_flags: u32) -> Self {
            LoopInfo64 {
                lo_device: 0,
                lo_inode: 0,
                lo_rdevice: 0,
                lo_offset: 0,
                lo_sizelimit: 0,
                lo_number: 0,
                lo_encrypt_type: 0,
                lo_encrypt_key_size: 0,
                lo_flags,
                lo_file_name: [0; 64],
                lo_crypt_name: [0; 64],
                lo_encrypt_key: [0; 32],
                lo_init: [0; 2],
            }
        }
    }

    /// `struct loop_config`.
    #[repr(C)]
    pub struct LoopConfig {
        pub fd: u32,
        pub block_size: u32,
        pub info: LoopInfo64,
        pub reserved: [u64; 8],
    }

    /// `struct blkpg_partition`.
    #[repr(C)]
    pub struct BlkpgPartition {
        pub start: i64,
        pub length: i64,
        pub pno: c_int,
        pub devname: [u8; 64],
        pub volname: [u8; 64],
    }

    /// `struct blkpg_ioctl_arg`.
    #[repr(C)]
    pub struct BlkpgIoctlArg {
        pub op: c_int,
        pub flags: c_int,
        pub datalen: c_int,
        pub data: *mut c_void,
    }

    nix::ioctl_none_bad!(loop_ctl_get_free, 0x4C82);
    nix::ioctl_write_int_bad!(loop_set_fd, 0x4C00);
    nix::ioctl_none_bad!(loop_clr_fd, 0x4C01);
    nix::ioctl_write_ptr_bad!(loop_set_status64, 0x4C04, LoopInfo64);
    nix::ioctl_write_ptr_bad!(loop_configure, 0x4C0A, LoopConfig);
    nix::ioctl_none_bad!(blkrrpart, 0x125F);
    nix::ioctl_read_bad!(blksszget, 0x1268, c_int);
    nix::ioctl_read!(blkgetsize64, 0x12, 114, u64);
    nix::ioctl_write_ptr_bad!(blkpg, 0x1269, BlkpgIoctlArg);
}

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
        let mut backing = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .open(image)
            .map_err(|e| context(e, format!("opening disk image {}", image.display())))?;
        let deadline = Instant::now() + ATTACH_TIMEOUT;
        let backing = loop {
            match Flock::lock(backing, FlockArg::LockExclusiveNonblock) {
                Ok(locked) => break locked,
                Err((unlocked, Errno::EWOULDBLOCK | Errno::EINTR)) if Instant::now() < deadline => {
                    backing = unlocked;
                    sleep(POLL);
                }
                Err((_, e)) => {
                    return Err(context(
                        e.into(),
                        format!("locking disk image {}", image.display()),
                    ))
                }
            }
        };
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
            // SAFETY: LOOP_CTL_GET_FREE takes no argument.
            let number = unsafe { sys::loop_ctl_get_free(control.as_raw_fd()) }.map_err(|e| {
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
        let mut file = File::open(&self.path)
            .map_err(|e| context(e, format!("opening {}", self.path.display())))?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(locked) => return Ok(locked),
                Err((unlocked, Errno::EWOULDBLOCK | Errno::EINTR)) if Instant::now() < deadline => {
                    file = unlocked;
                    sleep(POLL);
                }
                Err((_, e)) => {
                    return Err(context(
                        e.into(),
                        format!("locking {}", self.path.display()),
                    ))
                }
            }
        }
    }

    /// Reads the partition table through the loop device.
    fn read_table(&self) -> io::Result<Vec<PartSpan>> {
        let fd = self.device.as_raw_fd();
        let mut sector = 0;
        let mut size = 0u64;
        // SAFETY: both ioctls write one integer of the pointed-to type.
        unsafe { sys::blksszget(fd, &mut sector) }
            .and_then(|_| unsafe { sys::blkgetsize64(fd, &mut size) })
            .map_err(|e| context(e.into(), format!("sizing {}", self.path.display())))?;
        let sector = u64::try_from(sector)
            .ok()
            .filter(|s| (512..=65536).contains(s))
            .unwrap_or(512);
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
        // SAFETY: BLKRRPART takes no argument.
        while let Err(Errno::EBUSY) = unsafe { sys::blkrrpart(self.device.as_raw_fd()) } {
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
        let mut part = sys::BlkpgPartition {
            start: i64::try_from(span.start).map_err(|_| too_big())?,
            length: i64::try_from(span.size).map_err(|_| too_big())?,
            pno: nix::libc::c_int::try_from(span.number).map_err(|_| too_big())?,
            devname: [0; 64],
            volname: [0; 64],
        };
        let arg = sys::BlkpgIoctlArg {
            op,
            flags: 0,
            datalen: std::mem::size_of::<sys::BlkpgPartition>() as nix::libc::c_int,
            data: (&mut part as *mut sys::BlkpgPartition).cast(),
        };
        loop {
            // SAFETY: `arg` points at a valid blkpg_partition that outlives the call.
            match unsafe { sys::blkpg(self.device.as_raw_fd(), &arg) } {
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
        // SAFETY: LOOP_CLR_FD takes no argument.
        let _ = unsafe { sys::loop_clr_fd(self.device.as_raw_fd()) };
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
    let fd = backing.as_raw_fd();
    let config = sys::LoopConfig {
        fd: u32::try_from(fd).map_err(|_| Errno::EBADF)?,
        block_size: 0,
        info: sys::LoopInfo64::with_flags(flags),
        reserved: [0; 8],
    };
    // SAFETY: `config` is a valid loop_config that outlives the call.
    match unsafe { sys::loop_configure(device.as_raw_fd(), &config) } {
        Ok(_) => Ok(()),
        // Kernels before 5.8 lack LOOP_CONFIGURE.
        Err(Errno::EINVAL | Errno::ENOTTY) => {
            // SAFETY: LOOP_SET_FD takes a file descriptor by value.
            unsafe { sys::loop_set_fd(device.as_raw_fd(), fd) }?;
            // Read-only follows from how the files were opened; only these flags are settable.
            let info =
                sys::LoopInfo64::with_flags(sys::LO_FLAGS_AUTOCLEAR | sys::LO_FLAGS_PARTSCAN);
            // SAFETY: `info` is a valid loop_info64 that outlives the call.
            if let Err(e) = unsafe { sys::loop_set_status64(device.as_raw_fd(), &info) } {
                // SAFETY: LOOP_CLR_FD takes no argument.
                let _ = unsafe { sys::loop_clr_fd(device.as_raw_fd()) };
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

/// A partition: its number in the table and its extent in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PartSpan {
    number: u32,
    start: u64,
    size: u64,
}

impl PartSpan {
    fn overlaps(&self, other: &PartSpan) -> bool {
        self.start < other.start.saturating_add(other.size)
            && other.start < self.start.saturating_add(self.size)
    }
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

const MBR_EXTENDED: [u8; 3] = [0x05, 0x0F, 0x85];
const MBR_PROTECTIVE: u8 = 0xEE;
/// Bounds on what is read, so that a corrupt table cannot make us allocate or loop much.
const GPT_MAX_ENTRY_BYTES: u64 = 4 << 20;
const MAX_LOGICAL_PARTITIONS: usize = 256;

/// One entry of an MBR or EBR.
struct MbrEntry {
    kind: u8,
    start: u64,
    sectors: u64,
}

fn mbr_entries(sector: &[u8]) -> Option<Vec<MbrEntry>> {
    if sector.get(510..512)? != [0x55, 0xAA] {
        return None;
    }
    (0..4)
        .map(|i| {
            let e = sector.get(446 + 16 * i..446 + 16 * (i + 1))?;
            // Anything but 0x00/0x80 as a boot flag means this is not a partition table.
            if e[0] != 0 && e[0] != 0x80 {
                return None;
            }
            Some(MbrEntry {
                kind: e[4],
                start: u64::from(u32::from_le_bytes(e[8..12].try_into().ok()?)),
                sectors: u64::from(u32::from_le_bytes(e[12..16].try_into().ok()?)),
            })
        })
        .collect()
}

/// Reads a GPT (behind its protective MBR) or an MBR with logical partitions, the way the
/// kernel would; `read_at` reads exactly `buf.len()` bytes at an offset, `sector` is the logical
/// block size and `disk_size` the size in bytes. No table, or an invalid one, gives no partitions.
fn read_partition_table(
    read_at: &mut dyn FnMut(u64, &mut [u8]) -> io::Result<()>,
    sector: u64,
    disk_size: u64,
) -> io::Result<Vec<PartSpan>> {
    let sector_len = usize::try_from(sector).map_err(io::Error::other)?;
    let sectors = disk_size / sector;
    if sectors < 2 {
        return Ok(Vec::new());
    }
    let mut mbr = vec![0; sector_len];
    read_at(0, &mut mbr)?;
    // A filesystem on the whole disk (a FAT "superfloppy") also ends its first sector in 55 AA.
    if blockdev::probe_bytes(&mbr).is_some() {
        return Ok(Vec::new());
    }
    let Some(entries) = mbr_entries(&mbr) else {
        return Ok(Vec::new());
    };
    if entries.iter().any(|e| e.kind == MBR_PROTECTIVE) {
        for lba in [1, sectors - 1] {
            if let Some(parts) = read_gpt(read_at, sector, sectors, lba)? {
                return Ok(parts);
            }
        }
        return Ok(Vec::new());
    }
    let in_disk = |start: u64, len: u64| -> Option<(u64, u64)> {
        (start > 0 && len > 0 && start < sectors).then(|| (start, len.min(sectors - start)))
    };
    let mut parts = Vec::new();
    let mut next_logical = 5u32;
    for (number, e) in (1u32..).zip(&entries) {
        let Some((start, len)) = in_disk(e.start, e.sectors) else {
            continue;
        };
        if !MBR_EXTENDED.contains(&e.kind) {
            if e.kind != 0 {
                parts.push(PartSpan {
                    number,
                    start: start * sector,
                    size: len * sector,
                });
            }
            continue;
        }
        // Logical partitions, numbered from 5: a chain of EBRs, each locating its partition
        // relative to itself and the next EBR relative to the extended partition's start.
        let mut ebr_lba = start;
        let mut ebr = vec![0; sector_len];
        for _ in 0..MAX_LOGICAL_PARTITIONS {
            read_at(ebr_lba * sector, &mut ebr)?;
            let entries = mbr_entries(&ebr).unwrap_or_default();
            let [logical, link, ..] = entries.as_slice() else {
                break;
            };
            if logical.kind != 0 && !MBR_EXTENDED.contains(&logical.kind) {
                if let Some((s, l)) =
                    in_disk(ebr_lba.saturating_add(logical.start), logical.sectors)
                {
                    parts.push(PartSpan {
                        number: next_logical,
                        start: s * sector,
                        size: l * sector,
                    });
                    next_logical += 1;
                }
            }
            match in_disk(start.saturating_add(link.start), 1) {
                Some((lba, _)) if MBR_EXTENDED.contains(&link.kind) && lba != ebr_lba => {
                    ebr_lba = lba
                }
                _ => break,
            }
        }
    }
    parts.sort_by_key(|p| p.number);
    Ok(parts)
}

/// The partitions of the GPT whose header is at `lba`, or `None` if that header or its entry
/// array is not valid.
fn read_gpt(
    read_at: &mut dyn FnMut(u64, &mut [u8]) -> io::Result<()>,
    sector: u64,
    sectors: u64,
    lba: u64,
) -> io::Result<Option<Vec<PartSpan>>> {
    let mut header = vec![0; usize::try_from(sector).map_err(io::Error::other)?];
    read_at(lba * sector, &mut header)?;
    let le32 = |b: &[u8], at: usize| -> u32 {
        b.get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    };
    let le64 = |b: &[u8], at: usize| -> u64 {
        b.get(at..at + 8)
            .and_then(|s| s.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    };
    let header_size = usize::try_from(le32(&header, 12)).unwrap_or(usize::MAX);
    if header.get(..8) != Some(b"EFI PART") || header_size < 92 || header_size > header.len() {
        return Ok(None);
    }
    let mut zeroed = header[..header_size].to_vec();
    zeroed[16..20].fill(0);
    if crc32(&zeroed) != le32(&header, 16) || le64(&header, 24) != lba {
        return Ok(None);
    }
    let entries_lba = le64(&header, 72);
    let count = u64::from(le32(&header, 80));
    let entry_size = u64::from(le32(&header, 84));
    let total = count.saturating_mul(entry_size);
    if entry_size < 128
        || entry_size % 8 != 0
        || total > GPT_MAX_ENTRY_BYTES
        || entries_lba >= sectors
        || entries_lba.saturating_add(total.div_ceil(sector)) > sectors
    {
        return Ok(None);
    }
    let mut entries = vec![0; usize::try_from(total).map_err(io::Error::other)?];
    read_at(entries_lba * sector, &mut entries)?;
    if crc32(&entries) != le32(&header, 88) {
        return Ok(None);
    }
    let entry_size = usize::try_from(entry_size).map_err(io::Error::other)?;
    Ok(Some(
        (1u32..)
            .zip(entries.chunks_exact(entry_size))
            .filter(|(_, e)| e[..16] != [0; 16])
            .filter_map(|(number, e)| {
                let (first, last) = (le64(e, 32), le64(e, 40));
                (first > 0 && first <= last && last < sectors).then(|| PartSpan {
                    number,
                    start: first * sector,
                    size: (last - first + 1) * sector,
                })
            })
            .collect(),
    ))
}

/// CRC-32 (IEEE 802.3, reflected), as GPT uses it.
fn crc32(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |crc, &byte| {
        (0..8).fold(crc ^ u32::from(byte), |c, _| {
            if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: usize = 512;

    fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
        buf[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn mbr_entry(disk: &mut [u8], sector_at: usize, slot: usize, kind: u8, start: u32, len: u32) {
        let at = sector_at * S + 446 + 16 * slot;
        disk[at + 4] = kind;
        put(disk, at + 8, &start.to_le_bytes());
        put(disk, at + 12, &len.to_le_bytes());
        put(disk, sector_at * S + 510, &[0x55, 0xAA]);
    }

    /// A GPT disk of `sectors` sectors with the given (first, last) LBAs, entries at LBA 2 and
    /// the backup header at the last LBA pointing at entries at LBA sectors-33.
    fn gpt_disk(sectors: usize, parts: &[(u64, u64)]) -> Vec<u8> {
        let mut disk = vec![0u8; sectors * S];
        mbr_entry(&mut disk, 0, 0, MBR_PROTECTIVE, 1, (sectors - 1) as u32);
        let mut entries = vec![0u8; 128 * 128];
        for (i, (first, last)) in parts.iter().enumerate() {
            let e = &mut entries[i * 128..(i + 1) * 128];
            put(e, 0, &[0xAF; 16]);
            put(e, 16, &[i as u8 + 1; 16]);
            put(e, 32, &first.to_le_bytes());
            put(e, 40, &last.to_le_bytes());
        }
        let last_lba = sectors as u64 - 1;
        for (my_lba, alt_lba, entries_lba) in [(1, last_lba, 2), (last_lba, 1, last_lba - 32)] {
            put(&mut disk, entries_lba as usize * S, &entries);
            let mut h = vec![0u8; 92];
            put(&mut h, 0, b"EFI PART");
            put(&mut h, 8, &0x0001_0000u32.to_le_bytes());
            put(&mut h, 12, &92u32.to_le_bytes());
            put(&mut h, 24, &my_lba.to_le_bytes());
            put(&mut h, 32, &alt_lba.to_le_bytes());
            put(&mut h, 72, &entries_lba.to_le_bytes());
            put(&mut h, 80, &128u32.to_le_bytes());
            put(&mut h, 84, &128u32.to_le_bytes());
            put(&mut h, 88, &crc32(&entries).to_le_bytes());
            let crc = crc32(&h);
            put(&mut h, 16, &crc.to_le_bytes());
            put(&mut disk, my_lba as usize * S, &h);
        }
        disk
    }

    fn table(disk: &[u8]) -> io::Result<Vec<PartSpan>> {
        let mut read_at = |offset: u64, buf: &mut [u8]| {
            let start = usize::try_from(offset).map_err(io::Error::other)?;
            let src = disk
                .get(start..start + buf.len())
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            buf.copy_from_slice(src);
            Ok(())
        };
        read_partition_table(&mut read_at, S as u64, disk.len() as u64)
    }

    fn span(number: u32, first: u64, sectors: u64) -> PartSpan {
        PartSpan {
            number,
            start: first * S as u64,
            size: sectors * S as u64,
        }
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn gpt_primary_table() {
        let disk = gpt_disk(4096, &[(2048, 3071), (3072, 4062)]);
        assert_eq!(
            table(&disk).unwrap(),
            vec![span(1, 2048, 1024), span(2, 3072, 991)]
        );
    }

    #[test]
    fn gpt_backup_serves_when_primary_is_corrupt_and_gaps_keep_numbers() {
        let mut disk = gpt_disk(4096, &[(0, 0), (100, 199)]);
        // Entry 1 has type zero: unused. Corrupt the primary header's CRC.
        put(&mut disk, 128 * 2 * 4, &[0; 16]);
        put(&mut disk, S + 16, &[1, 2, 3, 4]);
        assert_eq!(table(&disk).unwrap(), vec![span(2, 100, 100)]);
        put(&mut disk, 4095 * S + 16, &[1, 2, 3, 4]);
        assert_eq!(table(&disk).unwrap(), vec![]);
    }

    #[test]
    fn gpt_entries_outside_the_disk_are_dropped() {
        let disk = gpt_disk(4096, &[(100, 5000), (300, 200), (10, 20)]);
        assert_eq!(table(&disk).unwrap(), vec![span(3, 10, 11)]);
    }

    #[test]
    fn mbr_with_logical_partitions() {
        let mut disk = vec![0u8; 1000 * S];
        mbr_entry(&mut disk, 0, 0, 0x83, 10, 90);
        mbr_entry(&mut disk, 0, 1, 0x05, 100, 800);
        mbr_entry(&mut disk, 0, 3, 0x82, 950, 100);
        // EBR at 100: logical at 100+2, next EBR at 100+400; EBR at 500: logical, end of chain.
        mbr_entry(&mut disk, 100, 0, 0x83, 2, 300);
        mbr_entry(&mut disk, 100, 1, 0x05, 400, 300);
        mbr_entry(&mut disk, 500, 0, 0x83, 2, 100);
        assert_eq!(
            table(&disk).unwrap(),
            vec![
                span(1, 10, 90),
                span(4, 950, 50),
                span(5, 102, 300),
                span(6, 502, 100),
            ]
        );
    }

    #[test]
    fn ebr_chain_pointing_at_itself_ends() {
        let mut disk = vec![0u8; 1000 * S];
        mbr_entry(&mut disk, 0, 0, 0x0F, 100, 800);
        mbr_entry(&mut disk, 100, 0, 0x83, 2, 10);
        mbr_entry(&mut disk, 100, 1, 0x05, 0, 10);
        assert_eq!(table(&disk).unwrap(), vec![span(5, 102, 10)]);
    }

    #[test]
    fn no_table_superfloppy_and_bad_boot_flags() {
        assert_eq!(table(&vec![0u8; 64 * S]).unwrap(), vec![]);
        assert_eq!(table(&[0u8; 100]).unwrap(), vec![]);
        let mut flags = vec![0u8; 64 * S];
        mbr_entry(&mut flags, 0, 0, 0x83, 1, 10);
        flags[446] = 0x12;
        assert_eq!(table(&flags).unwrap(), vec![]);
        let mut fat = vec![0u8; 64 * S];
        put(&mut fat, 0, &[0xEB, 0x3C, 0x90]);
        put(&mut fat, 11, &512u16.to_le_bytes());
        fat[13] = 1;
        put(&mut fat, 14, &1u16.to_le_bytes());
        fat[16] = 2;
        fat[21] = 0xF8;
        put(&mut fat, 22, &1u16.to_le_bytes());
        put(&mut fat, 54, b"FAT12   ");
        put(&mut fat, 510, &[0x55, 0xAA]);
        assert_eq!(table(&fat).unwrap(), vec![]);
    }

    #[test]
    fn spans_overlap() {
        assert!(span(1, 10, 10).overlaps(&span(2, 19, 5)));
        assert!(!span(1, 10, 10).overlaps(&span(2, 20, 5)));
    }
}
