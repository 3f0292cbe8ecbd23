//! The apply step: what the external tools are told to do, built from the plan alone, and
//! the thin layer that runs them.
//!
//! The pure pieces take plan values and return text or an argv; none runs a tool or
//! touches a disk: [`mkfs`] gives the mkfs command of a planned filesystem, with its UUID
//! and label fixed before the filesystem exists (the sfdisk script of a disk and the check
//! of the table read back are [`crate::sfdisk`]'s).
//!
//! The thin layer that touches the system comes on top; every external command runs
//! through [`crate::exec`]. [`preflight`] checks every planned disk (there, large enough,
//! not mounted, swap, held or the running root) before the first write, as [`tools`]
//! checks every program the deploy will run.
//!
//! Deploying uses them: [`disk`] attaches, partitions and formats the disks (with the md
//! arrays and volume groups of [`stack`] between the partitions and the filesystems), [`image`]
//! puts each image onto its mounted filesystems with its fstab and bootctl ([`images`]
//! deploys them at the same time, staging what they share; a raw or qcow2
//! filesystem image is written onto its partition first by [`fsimage`], with [`raw`]'s
//! zero-skipping writer), and [`boot`] installs GRUB and writes grub.cfg, grubenv and
//! boot-info.json; [`crate::deploy`] runs them in order.
//! [`osprober`] makes grub.cfg with grub-mkconfig and os-prober instead (os-prober mode).
//! [`copy`] copies an image's directory tree onto its filesystems with every attribute.

pub mod boot;
pub mod copy;
pub mod disk;
pub mod fsimage;
pub mod image;
pub mod images;
pub mod mkfs;
pub mod osprober;
pub mod preflight;
pub mod raw;
pub mod stack;
pub mod tools;
