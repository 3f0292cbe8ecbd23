//! Finding and mounting the multiboot partition. Everything mounted or attached here is
//! undone when the returned [`Located`] is dropped. A partition bootctl mounts itself is a
//! detached mount, which no path names and no other process sees, or, on kernels before
//! 5.6, a mount in bootctl's own private mount namespace: either way the kernel drops it
//! even if bootctl is killed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context;
use shared::blockdev::{self, FsInfo};
use shared::bootinfo::BootInfo;
use shared::grubcfg::{self, Menu};
use shared::layout::{IMAGE_BOOT_INFO, MULTIBOOT_LABEL};
use shared::loopdev::LoopDevice;
use shared::mount::{self, DetachedMount, Mount, MountOptions};

use crate::cli::SourceArgs;
use crate::discover::{self, Candidate};
use crate::exit::{fail, Code};
use crate::store;

/// Where bootctl mounts the partition, in its private mount namespace, when the kernel
/// cannot give it a detached mount.
const MOUNT_BASE: &str = "/run/bootctl";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// The multiboot tree, ready to read (and write, if asked for).
#[derive(Debug)]
pub struct Located {
    /// Root of the mounted multiboot filesystem.
    pub root: PathBuf,
    pub uuid: Option<String>,
    pub device: Option<PathBuf>,
    /// What the user should know about how the partition was found (a stale UUID passed
    /// over), said on stderr unless --quiet.
    pub note: Option<String>,
    /// Declared before `disk` so the mount goes before the loop device.
    mount: Option<OwnMount>,
    disk: Option<LoopDevice>,
}

/// A mount bootctl made for this run.
#[derive(Debug)]
enum OwnMount {
    Detached(DetachedMount),
    InNamespace(Mount),
}

impl OwnMount {
    fn path(&self) -> &Path {
        match self {
            OwnMount::Detached(mount) => mount.path(),
            OwnMount::InNamespace(mount) => mount.path(),
        }
    }
}

impl Located {
    /// Whether bootctl mounted the partition for this run only (its root is then a path
    /// that means nothing outside this run).
    pub fn mounted_privately(&self) -> bool {
        self.mount.is_some()
    }

    /// How messages name the tree: the device where bootctl mounted it for this run only
    /// (the root is then a path that means nothing outside it), else `None` (its path).
    pub fn shown_root(&self) -> Option<String> {
        self.mounted_privately()
            .then(|| self.device.as_ref().map(|d| d.display().to_string()))
            .flatten()
    }

    /// Whether this is a disk-image file or a tree given by hand, not the node bootctl runs on.
    pub fn offline(&self) -> bool {
        self.disk.is_some() || self.device.is_none()
    }

    /// The disk whose boot code starts the node: the disk-image file's loop device with
    /// `--disk`, else the disk the multiboot partition lies on; `None` with `--boot-dir`.
    pub fn whole_disk(&self) -> Option<PathBuf> {
        match (&self.disk, &self.device) {
            (Some(disk), _) => Some(disk.path().to_owned()),
            (None, Some(device)) => blockdev::whole_disk(device),
            (None, None) => None,
        }
    }

    /// The partition for `--verbose`: its UUID, its device and where it is mounted.
    pub fn describe(&self) -> String {
        format!(
            "multiboot partition {} on {} {}",
            self.uuid.as_deref().unwrap_or("(uuid unknown)"),
            self.device
                .as_ref()
                .map_or("(no device)".into(), |d| d.display().to_string()),
            if self.mounted_privately() {
                "mounted for this run only".to_owned()
            } else {
                format!("at {}", self.root.display())
            }
        )
    }

    /// Unmount and detach now, reporting failures that Drop could only swallow.
    pub fn release(mut self) -> anyhow::Result<()> {
        match self.mount.take() {
            Some(OwnMount::Detached(mount)) => mount.unmount(),
            Some(OwnMount::InNamespace(mount)) => {
                let path = mount.path().to_owned();
                mount
                    .unmount()
                    .with_context(|| format!("unmounting {}", path.display()))?;
            }
            None => {}
        }
        drop(self.disk.take());
        Ok(())
    }
}

pub fn locate(args: &SourceArgs, access: Access) -> anyhow::Result<Located> {
    if let Some(dir) = &args.boot_dir {
        if !dir.is_dir() {
            return Err(fail(
                Code::NotFound,
                format!("--boot-dir {}: no such directory", dir.display()),
            ));
        }
        let uuid =
            read_boot_info(&dir.join("boot-info.json"))?.map(|info| info.multiboot_partition);
        return Ok(Located {
            root: dir.clone(),
            uuid,
            device: None,
            note: None,
            mount: None,
            disk: None,
        });
    }
    if let Some(image) = &args.disk {
        return locate_on_disk(image, access);
    }
    let (device, fs, note) = find_device(args.multiboot.as_deref())?;
    let mut located = mount_device(device, fs, access, None)?;
    located.note = note;
    Ok(located)
}

/// The device of the multiboot filesystem: by --multiboot UUID, else by the UUID in the
/// image's boot-info.json copy, else by label, else by what its grub.cfg boots (a node
/// Bareon deployed); with what its superblock says, and a note when the image's copy named
/// a UUID no device holds (the partition made anew by an older deploy, or another tool).
fn find_device(wanted: Option<&str>) -> anyhow::Result<(PathBuf, FsInfo, Option<String>)> {
    let missing = |uuid: &str, named_by: &str| {
        format!("no block device holds the multiboot filesystem UUID {uuid} (named by {named_by})")
    };
    if let Some(uuid) = wanted {
        let found = blockdev::find_by_uuid(uuid).context("looking for the multiboot partition")?;
        return found
            .map(|(device, fs)| (device, fs, None))
            .ok_or_else(|| fail(Code::NotFound, missing(uuid, "--multiboot")));
    }
    let Some(info) = read_boot_info(Path::new(IMAGE_BOOT_INFO))? else {
        return search_device().map(|(device, fs)| (device, fs, None));
    };
    let uuid = info.multiboot_partition;
    if let Some((device, fs)) =
        blockdev::find_by_uuid(&uuid).context("looking for the multiboot partition")?
    {
        return Ok((device, fs, None));
    }
    // The copy is stale: look as if there were none, and say so; when that finds nothing
    // either, the stale UUID is the clearest thing to report.
    match search_device() {
        Ok((device, fs)) => {
            let note = format!(
                "{}; using {} instead",
                missing(&uuid, IMAGE_BOOT_INFO),
                device.display()
            );
            Ok((device, fs, Some(note)))
        }
        Err(_) => Err(fail(Code::NotFound, missing(&uuid, IMAGE_BOOT_INFO))),
    }
}

/// The multiboot filesystem found without a UUID: by label, else by what its grub.cfg
/// boots.
fn search_device() -> anyhow::Result<(PathBuf, FsInfo)> {
    let labelled = blockdev::find_by_label(MULTIBOOT_LABEL).map_err(|err| {
        fail(
            Code::NotFound,
            format!("looking for the filesystem labelled {MULTIBOOT_LABEL}: {err}"),
        )
    })?;
    if let Some(found) = labelled {
        return Ok(found);
    }
    // A node Bareon deployed: the partition is known by what its grub.cfg boots.
    let wanted: Vec<String> = running_root_uuid().map(str::to_owned).into_iter().collect();
    let filesystems = if wanted.is_empty() {
        Vec::new()
    } else {
        blockdev::probe_all()
            .context("looking for the multiboot partition")?
            .collect()
    };
    // The running image's own /boot partition boots the running root too. Loop devices are
    // files someone attached, not the node's disks (--disk is for those): left alone.
    let own_boot = blockdev::device_mounted_at(Path::new("/boot"))
        .ok()
        .flatten();
    let filesystems = filesystems
        .into_iter()
        .filter(|(device, _)| Some(device) != own_boot.as_ref() && !device.starts_with("/dev/loop"))
        .collect();
    by_contents(filesystems, &wanted)?.ok_or_else(|| {
        fail(
            Code::NotFound,
            format!(
                "multiboot partition not found: no --multiboot UUID, no {IMAGE_BOOT_INFO}, \
                 no filesystem labelled {MULTIBOOT_LABEL}, and no ext2/3/4 filesystem whose \
                 boot/grub/grub.cfg or boot/grub2/grub.cfg boots the running root"
            ),
        )
    })
}

/// The multiboot partition among `filesystems` by its grub.cfg (see [`discover`]): each
/// ext2/3/4 filesystem (Bareon makes it ext4) is read through a read-only mount of this run
/// only, or where it is mounted already. A filesystem that cannot be read is passed over,
/// but when none qualifies the first such error is returned (not being root, mostly).
fn by_contents(
    filesystems: Vec<(PathBuf, FsInfo)>,
    wanted: &[String],
) -> anyhow::Result<Option<(PathBuf, FsInfo)>> {
    let mut candidates = Vec::new();
    let mut infos = Vec::new();
    let mut first_error = None;
    for (device, info) in filesystems {
        if !matches!(info.fstype.as_str(), "ext2" | "ext3" | "ext4") {
            continue;
        }
        match read_menu(&device, &info) {
            Ok(Some(menu)) => {
                candidates.push(Candidate::new(&device, info.uuid.as_deref(), &menu));
                infos.push((device, info));
            }
            Ok(None) => {}
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    let chosen = discover::choose(&candidates, wanted).map_err(|err| fail(Code::NotFound, err))?;
    match (chosen, first_error) {
        (Some(chosen), _) => Ok(infos
            .into_iter()
            .find(|(device, _)| *device == chosen.device)),
        (None, Some(err)) => Err(err),
        (None, None) => Ok(None),
    }
}

/// The parsed grub.cfg of the filesystem on `device`; `None` when it holds none, or one
/// that does not parse.
fn read_menu(device: &Path, info: &FsInfo) -> anyhow::Result<Option<Menu>> {
    let located = mount_device(device.to_owned(), info.clone(), Access::ReadOnly, None)?;
    let menu = store::find_grub_dir(&located.root).and_then(|dir| {
        let bytes = store::read_boot_file(&dir.join("grub.cfg"), "grub.cfg").ok()??;
        grubcfg::parse(&String::from_utf8(bytes).ok()?).ok()
    });
    located.release()?;
    Ok(menu)
}

fn locate_on_disk(image: &Path, access: Access) -> anyhow::Result<Located> {
    if !image.is_file() {
        return Err(fail(
            Code::NotFound,
            format!("--disk {}: no such file", image.display()),
        ));
    }
    let disk = LoopDevice::attach(image, access == Access::ReadOnly).map_err(|err| {
        permission_or(
            err,
            format!("attaching {} to a loop device", image.display()),
        )
    })?;
    let partitions = disk
        .partitions()
        .with_context(|| format!("reading the partitions of {}", image.display()))?;
    let labelled: Vec<(PathBuf, FsInfo)> = partitions
        .iter()
        .filter_map(|partition| {
            let info = blockdev::probe(partition).ok().flatten()?;
            (info.label.as_deref() == Some(MULTIBOOT_LABEL)).then_some((partition.clone(), info))
        })
        .collect();
    match <[_; 1]>::try_from(labelled) {
        Ok([(device, fs)]) => mount_device(device, fs, access, Some(disk)),
        Err(found) if found.is_empty() => {
            // Made by Bareon: the partition whose grub.cfg boots another partition's root.
            let filesystems: Vec<(PathBuf, FsInfo)> = partitions
                .iter()
                .filter_map(|p| Some((p.clone(), blockdev::probe(p).ok().flatten()?)))
                .collect();
            let roots: Vec<String> = filesystems
                .iter()
                .filter_map(|(_, info)| info.uuid.clone())
                .collect();
            match by_contents(filesystems, &roots)? {
                Some((device, fs)) => mount_device(device, fs, access, Some(disk)),
                None => Err(fail(
                    Code::NotFound,
                    format!(
                        "{}: no partition holds a filesystem labelled {MULTIBOOT_LABEL}, nor \
                         a grub.cfg that boots another of its partitions",
                        image.display()
                    ),
                )),
            }
        }
        Err(found) => Err(fail(
            Code::NotFound,
            format!(
                "{}: {} partitions are labelled {MULTIBOOT_LABEL}; expected one",
                image.display(),
                found.len()
            ),
        )),
    }
}

/// Reuse an existing mount of `device` if there is one that allows `access`, else mount it
/// privately as the filesystem type `fs` names (probed already: not probed again).
fn mount_device(
    device: PathBuf,
    found: FsInfo,
    access: Access,
    disk: Option<LoopDevice>,
) -> anyhow::Result<Located> {
    let existing = blockdev::mount_point_of(&device)
        .with_context(|| format!("checking whether {} is mounted", device.display()))?;
    if let Some((root, read_only)) = existing {
        if !(read_only && access == Access::ReadWrite) {
            return Ok(Located {
                root,
                uuid: found.uuid,
                device: Some(device),
                note: None,
                mount: None,
                disk,
            });
        }
    }
    if found.fstype == "swap" {
        return Err(fail(
            Code::NotFound,
            format!(
                "{} holds swap space, not the multiboot filesystem",
                device.display()
            ),
        ));
    }
    let read_only = access == Access::ReadOnly;
    let mount = mount_privately(&device, &found.fstype, read_only).map_err(|err| {
        let what = format!("mounting the multiboot partition {}", device.display());
        if !read_only && blockdev::is_read_only(&device) {
            fail(
                Code::Failure,
                format!("{what} to write: the device is read-only"),
            )
        } else {
            permission_or(err, what)
        }
    })?;
    Ok(Located {
        root: mount.path().to_owned(),
        uuid: found.uuid,
        device: Some(device),
        note: None,
        mount: Some(mount),
        disk,
    })
}

/// Mounts `device` for this run only: detached where the kernel can both make such a mount
/// and check paths beneath it, else in a private mount namespace under [`MOUNT_BASE`].
fn mount_privately(device: &Path, fstype: &str, read_only: bool) -> io::Result<OwnMount> {
    if store::can_resolve_beneath() {
        if let Some(mount) = DetachedMount::new(device, fstype, read_only)? {
            return Ok(OwnMount::Detached(mount));
        }
    }
    mount::enter_private_namespace()?;
    let base = Path::new(MOUNT_BASE);
    fs::create_dir_all(base)
        .map_err(|err| io::Error::new(err.kind(), format!("creating {}: {err}", base.display())))?;
    let options = MountOptions {
        read_only,
        fstype: Some(fstype.to_owned()),
    };
    Mount::new_temp(device, base, &options).map(OwnMount::InNamespace)
}

fn read_boot_info(path: &Path) -> anyhow::Result<Option<BootInfo>> {
    let shown = path.display().to_string();
    store::read_boot_file(path, &shown)?
        .map(|bytes| store::parse_boot_info(&shown, bytes))
        .transpose()
}

fn probe_uuid(device: &Path) -> Option<String> {
    blockdev::probe(device)
        .ok()
        .flatten()
        .and_then(|info| info.uuid)
}

/// The filesystem UUID of the running system's root: probed from the device mounted at /,
/// else taken from `root=UUID=` on the kernel command line. Looked up once per run.
pub fn running_root_uuid() -> Option<&'static str> {
    static ROOT: OnceLock<Option<String>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let probed = blockdev::root_device()
            .ok()
            .flatten()
            .and_then(|device| probe_uuid(&device));
        probed.or_else(|| {
            let cmdline = fs::read_to_string("/proc/cmdline").ok()?;
            cmdline
                .split_whitespace()
                .find_map(|arg| arg.strip_prefix("root=UUID="))
                .map(str::to_owned)
        })
    })
    .as_deref()
}

fn permission_or(err: io::Error, what: String) -> anyhow::Error {
    if err.kind() == io::ErrorKind::PermissionDenied {
        fail(
            Code::Permission,
            format!("{what}: permission denied: must be root"),
        )
    } else {
        anyhow::Error::new(err).context(what)
    }
}
