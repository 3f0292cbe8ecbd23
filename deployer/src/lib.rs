//! The multi-image deployer: reads a Bareon provision.json that lists several images and
//! lays them out on one node's disks.
//!
//! This layer parses and validates the config: [`validate()`] turns provision.json text
//! into a [`ProvisionConfig`] or into every [`ConfigError`] at once, without touching the
//! system. [`size`] parses Bareon's size strings; [`cli`] is the command line.
//!
//! The planner comes next: [`plan()`] lays a valid config out on disks of known sizes
//! ([`disks`] reads them from the system) and decides every partition, filesystem, UUID,
//! mount table, fstab and the boot layout, still without side effects; [`render`] prints
//! the plan.
//!
//! For the bootloader, [`kernels`] picks the kernel and initrd an image boots from the
//! names in its `/boot`, and [`grubcfg_gen`] writes the grub.cfg of the multiboot
//! partition; both are pure.
//!
//! Applying the plan starts in [`apply`]: the sfdisk script of each disk with the check of
//! the table read back, and the mkfs command of each filesystem, again pure. [`deploy`]
//! applies a plan: disks, filesystems, every image, GRUB and boot-info.json; [`source`]
//! checks every image's source before the first write and makes it ready to deploy
//! (directory, tar archive, raw or qcow2 filesystem image, HTTP download, rsync).
//! [`output`] is what the deployer says besides its results (step lines, the log of the
//! commands it runs, `-v`, `-q`, `--log-file`), [`progress`] the progress of long work.

pub mod apply;
pub mod cli;
pub mod config;
pub mod deploy;
pub mod disk_ids;
pub mod disks;
pub mod exec;
pub mod exit;
pub mod grubcfg_gen;
pub mod initrd;
pub mod ondisk;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod render;
pub mod sfdisk;
pub mod size;
pub mod source;
pub mod text;
pub mod timing;
pub mod validate;

pub use config::ProvisionConfig;
pub use plan::{plan, DiskInput, IdSource, Plan, PlanError};
pub use size::Size;
pub use validate::{validate, ConfigError, JsonPath};
