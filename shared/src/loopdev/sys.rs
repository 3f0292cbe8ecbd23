use std::os::fd::{AsFd, AsRawFd};

use nix::errno::Errno;
use nix::libc::{c_int, c_void};

pub const LO_FLAGS_READ_ONLY: u32 = 1;
pub const LO_FLAGS_AUTOCLEAR: u32 = 4;
pub const LO_FLAGS_PARTSCAN: u32 = 8;
pub const BLKPG_ADD_PARTITION: c_int = 1;
pub const BLKPG_DEL_PARTITION: c_int = 2;

/// `struct loop_info64`.
#[repr(C)]
struct LoopInfo64 {
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
    fn with_flags(lo_flags: u32) -> Self {
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
struct LoopConfig {
    pub fd: u32,
    pub block_size: u32,
    pub info: LoopInfo64,
    pub reserved: [u64; 8],
}

/// `struct blkpg_partition`.
#[repr(C)]
struct BlkpgPartition {
    pub start: i64,
    pub length: i64,
    pub pno: c_int,
    pub devname: [u8; 64],
    pub volname: [u8; 64],
}

/// `struct blkpg_ioctl_arg`.
#[repr(C)]
struct BlkpgIoctlArg {
    pub op: c_int,
    pub flags: c_int,
    pub datalen: c_int,
    pub data: *mut c_void,
}

/// The raw ioctls, for the safe functions below only.
mod ioctl {
    use super::{BlkpgIoctlArg, LoopConfig, LoopInfo64};

    nix::ioctl_none_bad!(loop_ctl_get_free, 0x4C82);
    nix::ioctl_write_int_bad!(loop_set_fd, 0x4C00);
    nix::ioctl_none_bad!(loop_clr_fd, 0x4C01);
    nix::ioctl_write_ptr_bad!(loop_set_status64, 0x4C04, LoopInfo64);
    nix::ioctl_write_ptr_bad!(loop_configure, 0x4C0A, LoopConfig);
    nix::ioctl_none_bad!(blkrrpart, 0x125F);
    nix::ioctl_write_ptr_bad!(blkpg, 0x1269, BlkpgIoctlArg);
}

/// `LOOP_CTL_GET_FREE` on `/dev/loop-control`: the number of a free loop device.
pub fn loop_ctl_get_free(control: impl AsFd) -> Result<c_int, Errno> {
    // SAFETY: LOOP_CTL_GET_FREE takes no argument.
    unsafe { ioctl::loop_ctl_get_free(control.as_fd().as_raw_fd()) }
}

/// `LOOP_CONFIGURE`: binds `backing` to `device` with `flags` (`LO_FLAGS_*`) in one step.
pub fn loop_configure(device: impl AsFd, backing: impl AsFd, flags: u32) -> Result<(), Errno> {
    let config = LoopConfig {
        fd: u32::try_from(backing.as_fd().as_raw_fd()).map_err(|_| Errno::EBADF)?,
        block_size: 0,
        info: LoopInfo64::with_flags(flags),
        reserved: [0; 8],
    };
    // SAFETY: `config` is a valid loop_config that outlives the call.
    unsafe { ioctl::loop_configure(device.as_fd().as_raw_fd(), &config) }.map(drop)
}

/// `LOOP_SET_FD`: binds `backing` to `device`.
pub fn loop_set_fd(device: impl AsFd, backing: impl AsFd) -> Result<(), Errno> {
    // SAFETY: LOOP_SET_FD takes a file descriptor by value.
    unsafe { ioctl::loop_set_fd(device.as_fd().as_raw_fd(), backing.as_fd().as_raw_fd()) }.map(drop)
}

/// `LOOP_SET_STATUS64` with only `flags` (`LO_FLAGS_*`) set.
pub fn loop_set_status64(device: impl AsFd, flags: u32) -> Result<(), Errno> {
    let info = LoopInfo64::with_flags(flags);
    // SAFETY: `info` is a valid loop_info64 that outlives the call.
    unsafe { ioctl::loop_set_status64(device.as_fd().as_raw_fd(), &info) }.map(drop)
}

/// `LOOP_CLR_FD`: detaches `device` (at its last close, with autoclear).
pub fn loop_clr_fd(device: impl AsFd) -> Result<(), Errno> {
    // SAFETY: LOOP_CLR_FD takes no argument.
    unsafe { ioctl::loop_clr_fd(device.as_fd().as_raw_fd()) }.map(drop)
}

/// `BLKRRPART`: asks the kernel to re-read the partition table of `device`.
pub fn blkrrpart(device: impl AsFd) -> Result<(), Errno> {
    // SAFETY: BLKRRPART takes no argument.
    unsafe { ioctl::blkrrpart(device.as_fd().as_raw_fd()) }.map(drop)
}

/// `BLKPG` operation `op` (`BLKPG_*_PARTITION`) on partition `pno` of `device`, `length`
/// bytes at byte `start`.
pub fn blkpg(
    device: impl AsFd,
    op: c_int,
    pno: c_int,
    start: i64,
    length: i64,
) -> Result<(), Errno> {
    let mut part = BlkpgPartition {
        start,
        length,
        pno,
        devname: [0; 64],
        volname: [0; 64],
    };
    let arg = BlkpgIoctlArg {
        op,
        flags: 0,
        datalen: std::mem::size_of::<BlkpgPartition>() as c_int,
        data: (&mut part as *mut BlkpgPartition).cast(),
    };
    // SAFETY: `arg` points at a valid blkpg_partition that outlives the call.
    unsafe { ioctl::blkpg(device.as_fd().as_raw_fd(), &arg) }.map(drop)
}
