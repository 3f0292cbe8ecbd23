//! What planning reads from the system before it starts: each disk's size and, under a
//! policy that keeps the partition tables, what the disk holds ([`crate::disks`] reads
//! them; nothing here does).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::{PartitionsPolicy, ProvisionConfig};
use crate::ondisk::lvm::VgMetadata;
use crate::ondisk::md::MdSuperblock;
use crate::sfdisk::Table;

use super::{check_disk_names, names_disk, PlanError};

/// One `--disk NAME=PATH`, resolved: the disk the config calls `name` is `path`, this
/// large, holding `existing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskInput {
    /// The disk's `id.value` in the config (a leading `/dev/` on either side is ignored).
    pub name: String,
    /// A block device or a disk-image file.
    pub path: PathBuf,
    pub size_bytes: u64,
    /// The logical sector size (512 for image files).
    pub sector_size: u32,
    /// What the disk holds, read when the config's policy may keep it; `None`: not read,
    /// and planned as a blank disk.
    pub existing: Option<ExistingDisk>,
}

/// What a disk holds before the deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExistingDisk {
    /// A disk-image file that does not exist yet.
    Missing,
    /// No partition table was read; why, as a phrase ("it has no partition table sfdisk
    /// can read").
    NoTable(String),
    /// The partition table, and what `blkid -p` found on each partition by number: its
    /// `KEY=value` pairs (empty: nothing), or why it could not be read; and on the
    /// partitions that are LVM physical volumes or md members, what they hold.
    Table {
        table: Table,
        filesystems: BTreeMap<u32, Result<BTreeMap<String, String>, String>>,
        members: BTreeMap<u32, Result<Member, String>>,
    },
}

/// What `blkid -p` finds at some place: its `KEY=value` pairs (empty: nothing), or why it
/// could not be read.
pub type Probe = Result<BTreeMap<String, String>, String>;

/// A partition that is an LVM physical volume or an md member, as its metadata says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    /// A physical volume: its id, its volume group (none when it is in none), and what
    /// `blkid -p` finds at the start of each logical volume whose first extent is on it.
    Pv {
        pv_id: String,
        vg: Option<VgMetadata>,
        filesystems: BTreeMap<String, Probe>,
    },
    /// An md member: its superblock, and what `blkid -p` finds where the array's data
    /// starts (a RAID1 member holds all of it).
    Md {
        superblock: MdSuperblock,
        filesystem: Probe,
    },
}

/// What to read of one `--disk` before planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskRequest {
    /// The `--disk` NAME.
    pub name: String,
    pub path: PathBuf,
    /// The disk's `size` in the config: what a missing disk-image file is planned at.
    pub configured_size: Option<u64>,
    /// The partition table and filesystems are read: the policy may keep them.
    pub read_existing: bool,
}

/// What to read for each `--disk NAME=PATH` of `args`, or why they do not name the config's
/// disks (each disk exactly once, nothing else).
pub fn disk_requests(
    config: &ProvisionConfig,
    args: &[(String, PathBuf)],
) -> Result<Vec<DiskRequest>, Vec<PlanError>> {
    let errors = check_disk_names(config, args.iter().map(|(name, _)| name.as_str()));
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(args
        .iter()
        .map(|(name, path)| DiskRequest {
            name: name.clone(),
            path: path.clone(),
            configured_size: config
                .disks()
                .find(|disk| names_disk(name, &disk.id.value))
                .and_then(|disk| disk.size),
            read_existing: config.partitions_policy != PartitionsPolicy::Clean,
        })
        .collect())
}
