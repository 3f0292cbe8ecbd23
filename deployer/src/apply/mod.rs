//! The apply step's pure pieces: what the external tools are told to do, built from the
//! plan alone.
//!
//! Each function here takes plan values and returns text or an argv; none runs a tool or
//! touches a disk. [`partition`] writes the sfdisk script of a disk and checks the table
//! `sfdisk -J` reads back against the plan; [`mkfs`] gives the mkfs command of a planned
//! filesystem, with its UUID and label fixed before the filesystem exists. The thin layer
//! that runs these commands comes on top of them.

pub mod mkfs;
pub mod partition;
