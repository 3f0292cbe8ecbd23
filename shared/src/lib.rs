//! Formats and OS primitives shared by the deployer and bootctl.
//!
//! Pure formats: [`bootinfo`] (boot-info.json), [`bytes`] (integers in on-disk structures),
//! [`fat`] (one file read from a FAT filesystem through a reader),
//! [`grubcfg`] (grub.cfg menu model), [`grubenv`] (grub's environment block), [`json`] (JSON
//! without duplicate keys), [`kernels`] (the kernel an image boots, by its `/boot`),
//! [`layout`] (the names and paths both programs agree on), [`image_files`] (the hooks and
//! unit the deployer puts into images). OS primitives: [`atomic`] (crash-safe file
//! replacement and locking), [`blockdev`] (finding filesystems by UUID or label without
//! udev), [`loopdev`] (attaching disk-image files), [`mount`] (mount guards). Test-only:
//! [`fault`] (points where the crash tests kill the process).

pub mod atomic;
pub mod blockdev;
pub mod bootinfo;
pub mod bytes;
pub mod fat;
pub mod fault;
pub mod grubcfg;
pub mod grubenv;
pub mod image_files;
pub mod json;
pub mod kernels;
pub mod layout;
pub mod loopdev;
pub mod mount;
