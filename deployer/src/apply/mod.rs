//! The apply step: what the external tools are told to do, built from the plan alone, and
//! the thin layer that runs them.
//!
//! The pure pieces take plan values and return text or an argv; none runs a tool or
//! touches a disk. [`partition`] writes the sfdisk script of a disk and checks the table
//! `sfdisk -J` reads back against the plan; [`mkfs`] gives the mkfs command of a planned
//! filesystem, with its UUID and label fixed before the filesystem exists.
//!
//! The thin layer that touches the system comes on top: [`runner`] runs every external
//! command (named step, stdin closed, stderr tail in the error), and [`preflight`] checks
//! every planned disk (there, large enough, not mounted, swap, held or the running root)
//! before the first write.
//!
//! Deploying uses them: [`disk`] attaches, partitions and formats the disks, [`image`]
//! copies each image onto its mounted filesystems with its fstab and bootctl, and [`boot`]
//! installs GRUB and writes grub.cfg, grubenv and boot-info.json; [`crate::deploy`] runs
//! them in order.
//! [`copy`] copies an image's directory tree onto its filesystems with every attribute.

pub mod boot;
pub mod copy;
pub mod disk;
pub mod image;
pub mod mkfs;
pub mod partition;
pub mod preflight;
pub mod runner;
