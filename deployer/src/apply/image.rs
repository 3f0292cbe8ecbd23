//! One image deployed onto its filesystems: a raw or qcow2 filesystem image written onto
//! its target partition first ([`crate::apply::fsimage`]); then the filesystems mounted in
//! the plan's order under a private directory and the image's files put on them (a
//! directory tree copied by [`copy_tree`], or with `rsync -aHAXS --numeric-ids` and the
//! config's `rsync_flags` when it gives them, as an `rsync://` source is; a tar
//! archive extracted with GNU tar keeping owners by number, modes, hard links, symlinks,
//! device nodes, xattrs and ACLs); its fstab and bootctl written; and what its boot entry
//! needs read back (os-release, the newest kernel in /boot).
//!
//! A partition shared by several images receives each image's files in turn. A file
//! that an earlier image brought already is overwritten and reported on stderr, one line
//! each (`deployer: image B: /path already brought by an earlier image, overwritten`):
//! copy_tree and rsync's itemized output tell which files existed; a tar archive is listed first
//! (`tar -t`) when the image shares a filesystem with an earlier one, and each member
//! looked up on the target, resolving symlinks inside the image.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};
use shared::atomic::replace_file;
use shared::fault;
use shared::layout::{in_image, BOOTCTL, IMAGE_BOOT_INFO};
use shared::mount::{Mount, MountOptions};

use crate::apply::copy::copy_tree;
use crate::apply::disk::AttachedDisks;
use crate::apply::fsimage;
use crate::config::FileSystem;
use crate::exec::run;
use crate::kernels::{newest_kernel, KernelPair};
use crate::plan::{ImageLayout, ImagePlan, MountPlan, Plan};
use crate::source::format::Compression;
use crate::source::Payload;

/// What a deployed image brings to its boot entry and boot-info.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployedImage {
    pub name: String,
    /// os-release `ID` (empty when the image has none).
    pub os_id: String,
    /// os-release `PRETTY_NAME`, else the image's name.
    pub title: String,
    /// The kernel and initrd in the image's /boot.
    pub kernel: KernelPair,
}

/// An image's filesystems mounted in the plan's order; unmounted in reverse on drop or
/// by [`MountedImage::unmount`].
///
/// Where the kernel cannot mount vfat ([`kernel_mounts_vfat`]), a vfat filesystem is not
/// mounted: its mount point stays an empty directory on the filesystem above, the image's
/// files land there, and [`MountedImage::fill_vfat`] moves them onto the vfat filesystem
/// with mtools (`mcopy -s`), leaving the directory empty again for the image's own mount.
/// Both ways give the vfat filesystem the same files; a filesystem mounted below such a
/// mount point is refused ([`vfat_nesting`]).
pub struct MountedImage {
    /// The root mount first.
    mounts: Vec<Mount>,
    /// The vfat filesystems filled through mtools: mount point and device node.
    vfat_by_mtools: Vec<(String, PathBuf)>,
}

/// Whether the kernel can mount vfat, from the text of `/proc/filesystems`.
pub fn mounts_vfat(proc_filesystems: &str) -> bool {
    proc_filesystems
        .lines()
        .any(|line| line.split_whitespace().last() == Some("vfat"))
}

/// Whether this host's kernel can mount vfat now (`/proc/filesystems`). A kernel that
/// would load the vfat module on demand says no until it is loaded: mtools then fill the
/// filesystem, with the same result.
pub fn kernel_mounts_vfat() -> bool {
    std::fs::read_to_string("/proc/filesystems").is_ok_and(|text| mounts_vfat(&text))
}

/// A mount of `mounts` that lies below a vfat mount point, which a deploy without vfat
/// mounts cannot fill: `(the mount point below, the vfat mount point)`.
pub fn vfat_nesting(mounts: &[MountPlan]) -> Option<(&str, &str)> {
    mounts
        .iter()
        .filter(|vfat| vfat.fs_type == FileSystem::Vfat)
        .find_map(|vfat| {
            mounts
                .iter()
                .find(|m| {
                    m.mount_point
                        .strip_prefix(&vfat.mount_point)
                        .is_some_and(|rest| rest.starts_with('/'))
                })
                .map(|below| (below.mount_point.as_str(), vfat.mount_point.as_str()))
        })
}

impl MountedImage {
    /// Mounts `mounts` (the root first, then in the plan's order) under `work`; a vfat
    /// filesystem only where the kernel can mount vfat.
    pub fn mount(
        image: &str,
        mounts: &[MountPlan],
        disks: &AttachedDisks,
        work: &Path,
    ) -> anyhow::Result<MountedImage> {
        let mut mounted = MountedImage {
            mounts: Vec::new(),
            vfat_by_mtools: Vec::new(),
        };
        let vfat_by_mtools = !kernel_mounts_vfat();
        if vfat_by_mtools {
            if let Some((below, vfat)) = vfat_nesting(mounts) {
                bail!(
                    "image {image}: {below} is mounted below the vfat filesystem at {vfat}, \
                     which this host's kernel cannot mount"
                );
            }
        }
        for plan in mounts {
            let node = disks.node(&plan.device)?;
            if vfat_by_mtools && plan.fs_type == FileSystem::Vfat {
                let Some(root) = mounted.mounts.first() else {
                    bail!("image {image}: its first mount is not /");
                };
                let dir = root.path().join(plan.mount_point.trim_start_matches('/'));
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("image {image}: creating {}", dir.display()))?;
                mounted
                    .vfat_by_mtools
                    .push((plan.mount_point.clone(), node));
                continue;
            }
            let opts = MountOptions {
                read_only: false,
                fstype: Some(plan.fs_type.as_str().to_owned()),
            };
            let step = || {
                format!(
                    "mount {} of image {image} ({})",
                    plan.mount_point, plan.device
                )
            };
            let mount = match mounted.mounts.first() {
                None if plan.mount_point == "/" => {
                    Mount::new_temp(&node, work, &opts).with_context(step)?
                }
                None => bail!("image {image}: its first mount is not /"),
                Some(root) => {
                    let dir = root.path().join(plan.mount_point.trim_start_matches('/'));
                    std::fs::create_dir_all(&dir)
                        .with_context(|| format!("creating {}", dir.display()))
                        .with_context(step)?;
                    Mount::at(&node, &dir, &opts).with_context(step)?
                }
            };
            mounted.mounts.push(mount);
        }
        Ok(mounted)
    }

    /// Where the image's `/` is mounted.
    pub fn root(&self) -> &Path {
        self.mounts
            .first()
            .expect("a mounted image has its root")
            .path()
    }

    /// Moves the image's files under each vfat mount point that was not mounted onto
    /// its vfat filesystem with `mcopy -s` (merging with what is there, overwriting
    /// files of the same name), then empties the directory. `shared` lists the mount
    /// points an earlier image filled: a file there that this image brings again is
    /// reported on stderr.
    pub fn fill_vfat(&self, image: &str, shared: &[String]) -> anyhow::Result<()> {
        for (mount_point, node) in &self.vfat_by_mtools {
            let staged_dir = self.root().join(mount_point.trim_start_matches('/'));
            // The image's copy may have put a symlink there: followed, it would move the
            // files of whatever it names, on the host, onto the vfat filesystem.
            if !std::fs::symlink_metadata(&staged_dir).is_ok_and(|meta| meta.is_dir()) {
                bail!(
                    "image {image}: {mount_point}, where its vfat filesystem goes, is not a \
                     directory in the image (a symlink?)"
                );
            }
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&staged_dir)
                .and_then(|dir| dir.map(|entry| entry.map(|e| e.path())).collect())
                .with_context(|| format!("image {image}: reading {}", staged_dir.display()))?;
            if entries.is_empty() {
                continue;
            }
            entries.sort();
            let step =
                format!("copy image {image}'s files to its vfat filesystem at {mount_point}");
            if shared.contains(mount_point) {
                let listing = run(
                    &format!("list the vfat filesystem at {mount_point}"),
                    &mtools_command("mdir", &["-/", "-b"], node, &[], "::/"),
                )?;
                let staged = files_below(&staged_dir)
                    .with_context(|| format!("image {image}: reading {}", staged_dir.display()))?;
                for path in vfat_overlaps(&listing, &staged) {
                    crate::warn!(
                        "deployer: image {image}: {mount_point}/{path} already brought by an \
                         earlier image, overwritten"
                    );
                }
            }
            run(
                &step,
                &mtools_command(
                    "mcopy",
                    &["-s", "-p", "-m", "-o", "-Q"],
                    node,
                    &entries,
                    "::/",
                ),
            )?;
            for entry in &entries {
                let removed = if entry.is_dir() && !entry.is_symlink() {
                    std::fs::remove_dir_all(entry)
                } else {
                    std::fs::remove_file(entry)
                };
                removed.with_context(|| format!("{step}: removing {}", entry.display()))?;
            }
        }
        Ok(())
    }

    /// Unmounts in reverse order, reporting the first failure.
    pub fn unmount(mut self) -> anyhow::Result<()> {
        while let Some(mount) = self.mounts.pop() {
            mount.unmount()?;
        }
        Ok(())
    }
}

impl Drop for MountedImage {
    fn drop(&mut self) {
        while let Some(mount) = self.mounts.pop() {
            drop(mount);
        }
    }
}

/// Deploys `image` of `plan` onto its (made) filesystems from `payload`. A raw or qcow2
/// filesystem image is written onto its target partition first; the filesystems are then
/// mounted and a tree, an rsync source or a tar archive is copied onto them. A file that
/// this image brings again onto a filesystem an earlier image filled is reported.
pub fn deploy_image(
    plan: &Plan,
    image: &ImagePlan,
    payload: &Payload<'_>,
    bootctl: &[u8],
    disks: &AttachedDisks,
    work: &Path,
) -> anyhow::Result<DeployedImage> {
    let name = &image.name;
    let layout = plan.layout(image);
    let shared = &shared_mount_points(plan, image);
    let rsync_flags = plan.rsync_flags.as_deref();
    if let Payload::Filesystem {
        path,
        qcow2,
        fs,
        target,
    } = payload
    {
        let node = disks.node(&target.device)?;
        fsimage::install(name, path, *qcow2, fs, target, &node)?;
    }
    let mounted = MountedImage::mount(name, &layout.mounts, disks, work)?;
    let root = mounted.root().to_owned();
    match payload {
        // A local tree is copied by copy_tree, keeping every attribute, faster than cp -a
        // and rsync; only a config that gives Bareon's rsync_flags has it copied by rsync
        // with them, as Bareon does.
        Payload::Tree(dir) if rsync_flags.is_none() => {
            fault::step("image:copy")?;
            let report = copy_tree(dir, &root).with_context(|| format!("copy image {name}"))?;
            let existing: Vec<String> = report
                .overwritten
                .iter()
                .map(|path| format!("/{}", path.display()))
                .collect();
            report_existing(name, &layout, shared, &existing);
        }
        Payload::Tree(dir) => {
            report_existing(
                name,
                &layout,
                shared,
                &rsync_copy(name, dir_arg(dir), &root, rsync_flags)?,
            );
        }
        Payload::Rsync(url) => {
            report_existing(
                name,
                &layout,
                shared,
                &rsync_copy(name, url_arg(url), &root, rsync_flags)?,
            );
        }
        Payload::Tar { path, compression } => {
            if !shared.is_empty() {
                let listing = run(
                    &format!("list the tar archive of image {name}"),
                    &tar_command(&["-t", "--quoting-style=escape"], path, *compression, None),
                )?;
                report_existing(name, &layout, shared, &existing_members(&listing, &root));
            }
            fault::step("image:tar")?;
            run(
                &format!("extract the tar archive of image {name}"),
                &tar_command(&TAR_EXTRACT, path, *compression, Some(&root)),
            )?;
        }
        Payload::Filesystem { fs, target, .. } => {
            let mount_point = root.join(target.mount_point.trim_start_matches('/'));
            if let Some(grow) = fsimage::grow_mounted(fs.fs_type, &mount_point) {
                run(&format!("grow the filesystem of image {name}"), &grow)?;
            }
        }
    }

    mounted.fill_vfat(name, shared)?;

    fault::step("image:fstab")?;
    let fstab = file_in_image(&root, Path::new("etc/fstab"))
        .with_context(|| format!("image {name}: writing /etc/fstab"))?;
    replace_file(&fstab, layout.fstab.as_bytes(), 0o644)
        .with_context(|| format!("image {name}: writing /etc/fstab"))?;
    let bootctl_path = file_in_image(&root, in_image(BOOTCTL))
        .with_context(|| format!("image {name}: installing {BOOTCTL}"))?;
    if holds_another_program(&bootctl_path) {
        crate::warn!(
            "deployer: image {name}: {BOOTCTL} (/{} there) is another program, such \
             as systemd's bootctl where /usr/sbin is /usr/bin; replaced by multiboot's bootctl",
            bootctl_path
                .strip_prefix(&root)
                .unwrap_or(&bootctl_path)
                .display()
        );
    }
    replace_file(&bootctl_path, bootctl, 0o755)
        .with_context(|| format!("image {name}: installing {BOOTCTL}"))?;

    let os_release = read_os_release(&root);
    // /boot as the image sees it: a symlink to "/boot" must not list the host's kernels.
    let boot_dir = resolve_in(&root, Path::new("boot"), true).map(|dir| root.join(dir));
    let boot_files = boot_dir
        .map(|dir| list_names(&dir))
        .transpose()
        .with_context(|| format!("image {name}: reading /boot"))?
        .unwrap_or_default();
    let names: Vec<&str> = boot_files.iter().map(String::as_str).collect();
    let Some(kernel) = newest_kernel(&names) else {
        bail!("image {name}: no kernel (vmlinuz-*) in /boot");
    };
    mounted
        .unmount()
        .with_context(|| format!("unmount image {name}"))?;
    Ok(DeployedImage {
        name: name.clone(),
        title: printable(name, "PRETTY_NAME", os_release.pretty_name)
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| name.clone()),
        os_id: printable(name, "ID", os_release.id).unwrap_or_default(),
        kernel,
    })
}

/// An os-release value, unless it holds control characters: a NUL ends GRUB's reading of
/// a grub.cfg line, an escape sequence would act on the consoles that show the menu and
/// bootctl's tables. Such a value is not used, and a line on stderr says so.
fn printable(image: &str, key: &str, value: Option<String>) -> Option<String> {
    match value {
        Some(value) if value.chars().any(char::is_control) => {
            crate::warn!(
                "deployer: image {image}: os-release {key} {value:?} holds control characters; \
                 not used"
            );
            None
        }
        other => other,
    }
}

/// The mount points of `image` whose filesystem an image deployed before it (in plan
/// order) also gets.
pub fn shared_mount_points(plan: &Plan, image: &ImagePlan) -> Vec<String> {
    let position = |name: &str| plan.images.iter().position(|i| i.name == name);
    let this = position(&image.name);
    plan.layout(image)
        .mounts
        .iter()
        .filter(|mount| {
            plan.filesystems
                .iter()
                .filter(|fs| fs.device == mount.device)
                .flat_map(|fs| &fs.images)
                .any(|other| position(other) < this)
        })
        .map(|mount| mount.mount_point.clone())
        .collect()
}

/// `PROGRAM OPTIONS -i DEVICE [FILES] TARGET`: an mtools command on the vfat filesystem
/// `device`.
pub fn mtools_command(
    program: &str,
    options: &[&str],
    device: &Path,
    files: &[PathBuf],
    target: &str,
) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec![program.into()];
    argv.extend(options.iter().map(OsString::from));
    argv.push("-i".into());
    argv.push(device.into());
    argv.extend(files.iter().map(OsString::from));
    argv.push(target.into());
    argv
}

/// The files (not directories) below `dir`, as relative `/`-separated paths.
fn files_below(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current)? {
            let path = entry?.path();
            if path.is_dir() && !path.is_symlink() {
                pending.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                files.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Which of `staged` (relative paths of files about to be copied) the vfat filesystem
/// holds already, from `mdir -/ -b` (`::/EFI/BOOT/BOOTX64.EFI`, directories ending in
/// `/`). FAT names compare without regard to case.
pub fn vfat_overlaps(listing: &str, staged: &[String]) -> Vec<String> {
    let existing: Vec<String> = listing
        .lines()
        .filter(|line| !line.ends_with('/'))
        .filter_map(|line| line.strip_prefix("::/"))
        .map(str::to_lowercase)
        .collect();
    staged
        .iter()
        .filter(|path| existing.contains(&path.to_lowercase()))
        .cloned()
        .collect()
}

/// One stderr line for each file an earlier image brought already: of `paths` (the files
/// that were there before this image's copy), those on a filesystem of `shared`. A file
/// elsewhere was on a filesystem kept from the disk (`keep_data`), where overwriting is
/// what keeping the data means, as in Bareon's rsync copy.
fn report_existing(name: &str, layout: &ImageLayout, shared: &[String], paths: &[String]) {
    for path in paths.iter().filter(|path| {
        mount_point_of(path, layout.mounts.iter().map(|m| m.mount_point.as_str()))
            .is_some_and(|mount_point| shared.iter().any(|s| s == mount_point))
    }) {
        crate::warn!(
            "deployer: image {name}: {path} already brought by an earlier image, overwritten"
        );
    }
}

/// The mount point, of `mount_points`, whose filesystem holds `path` (absolute in the
/// image): the longest one that contains it.
pub fn mount_point_of<'a>(
    path: &str,
    mount_points: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    mount_points
        .filter(|mount_point| {
            *mount_point == "/"
                || path == *mount_point
                || path
                    .strip_prefix(mount_point)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|mount_point| mount_point.len())
}

/// GNU tar's options for extracting an image: owners by number, modes, hard links,
/// symlinks, device nodes, xattrs of every namespace and ACLs kept.
const TAR_EXTRACT: [&str; 7] = [
    "-x",
    "--numeric-owner",
    "--same-owner",
    "-p",
    "--xattrs",
    "--xattrs-include=*",
    "--acls",
];

/// `tar OPTIONS -f ARCHIVE [--gzip|--xz|--zstd] [-C DIR]`.
pub fn tar_command(
    options: &[&str],
    archive: &Path,
    compression: Compression,
    into: Option<&Path>,
) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec!["tar".into()];
    argv.extend(options.iter().map(OsString::from));
    argv.push("-f".into());
    argv.push(archive.into());
    argv.extend(compression.tar_option().map(OsString::from));
    if let Some(dir) = into {
        argv.push("-C".into());
        argv.push(dir.into());
    }
    argv
}

/// Copies `source` (a `DIR/` or an rsync URL ending in `/`) onto `root` with rsync,
/// itemizing every file; returns the files that existed on the target before.
fn rsync_copy(
    name: &str,
    source: OsString,
    root: &Path,
    rsync_flags: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let mut argv: Vec<OsString> = ["rsync", "-aHAXS", "--numeric-ids", "-ii"]
        .iter()
        .map(OsString::from)
        .collect();
    argv.extend(
        rsync_flags
            .unwrap_or_default()
            .split_whitespace()
            .map(OsString::from),
    );
    argv.push(source);
    argv.push(dir_arg(root));
    fault::step("image:copy")?;
    let itemized = run(&format!("copy image {name}"), &argv)?;
    Ok(rsync_existing(&itemized))
}

/// The files (not directories) that rsync's `--itemize-changes` output (given twice, so
/// that unchanged files are listed too) shows were on the target already: every item
/// whose attributes are not all `+`. Paths are absolute in the image.
pub fn rsync_existing(itemized: &str) -> Vec<String> {
    itemized
        .lines()
        .filter_map(|line| {
            let bytes = line.as_bytes();
            if bytes.len() < 13 || bytes[11] != b' ' {
                return None;
            }
            let (update, kind, attributes) = (bytes[0], bytes[1], &line[2..11]);
            if !b"<>ch.".contains(&update) || !b"fLDS".contains(&kind) {
                return None;
            }
            if attributes.bytes().all(|b| b == b'+') {
                return None;
            }
            let mut path = &line[12..];
            if kind == b'L' {
                path = path.split_once(" -> ").map_or(path, |(p, _)| p);
            }
            if update == b'h' {
                path = path.split_once(" => ").map_or(path, |(p, _)| p);
            }
            Some(format!("/{}", path.trim_start_matches('/')))
        })
        .collect()
}

/// The members of a `tar -t --quoting-style=escape` listing, other than directories, that
/// exist under `root` already; paths absolute in the image.
fn existing_members(listing: &str, root: &Path) -> Vec<String> {
    listing
        .lines()
        .filter(|line| !line.ends_with('/'))
        .filter_map(|line| member_path(&unescape_tar_name(line)))
        .filter(|rel| exists_in(root, rel))
        .map(|rel| format!("/{}", rel.display()))
        .collect()
}

/// Undoes GNU tar's `escape` quoting: `\\`, `\n`, `\t`, `\a`, `\b`, `\f`, `\r`, `\v`,
/// `\?` and three-digit octal escapes.
pub fn unescape_tar_name(name: &str) -> Vec<u8> {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 == bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .map(|d| d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0')));
        if let Some(value) = octal.and_then(|v| u8::try_from(v).ok()) {
            out.push(value);
            i += 4;
            continue;
        }
        out.push(match bytes[i + 1] {
            b'n' => b'\n',
            b't' => b'\t',
            b'a' => 0x07,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'r' => b'\r',
            b'v' => 0x0b,
            other => other,
        });
        i += 2;
    }
    out
}

/// A member name as a path relative to the extraction root, as tar extracts it: leading
/// `/` and `.` components dropped; `None` for the root itself or a name with `..`
/// (which tar refuses to extract).
pub fn member_path(name: &[u8]) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let path = Path::new(std::ffi::OsStr::from_bytes(name));
    let mut rel = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => rel.push(part),
            Component::ParentDir => return None,
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    (!rel.as_os_str().is_empty()).then_some(rel)
}

/// Whether `rel` exists under `root` (as a file of any type, the last component not
/// followed if it is a symlink), judged as [`resolve_in`] does: nothing outside the image
/// is ever looked at.
pub fn exists_in(root: &Path, rel: &Path) -> bool {
    resolve_in(root, rel, false).is_some()
}

/// `rel`, a path in the image whose `/` is `root`, resolved as a chroot into `root` would
/// resolve it: every symlink on the way, absolute or relative, is followed inside `root`,
/// and `..` never climbs above it. Returns the path below `root` that has no symlink left
/// in it (the last component stays a symlink when `follow_last` is false), or `None` when
/// a component is missing, a component before the last is not a directory, or symlinks
/// nest deeper than 40 (a loop).
pub fn resolve_in(root: &Path, rel: &Path, follow_last: bool) -> Option<PathBuf> {
    const MAX_LINKS: usize = 40;
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, rel);
    let mut at = PathBuf::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            at.pop();
            continue;
        }
        let candidate = at.join(&part);
        let full = root.join(&candidate);
        let meta = std::fs::symlink_metadata(&full).ok()?;
        let last = pending.is_empty();
        if meta.file_type().is_symlink() && (follow_last || !last) {
            links += 1;
            if links > MAX_LINKS {
                return None;
            }
            let target = std::fs::read_link(&full).ok()?;
            if target.is_absolute() {
                at = PathBuf::new();
            }
            push_components(&mut pending, &target);
        } else if last {
            return Some(candidate);
        } else if meta.is_dir() {
            at = candidate;
        } else {
            return None;
        }
    }
    Some(at)
}

/// Where to write the file `rel` (such as `etc/fstab`) into the image whose root is
/// mounted at `root`, as the image itself sees that path: the symlinks among its
/// directories are followed inside `root` (an absolute link names the image's own path,
/// never the host's), missing directories are created, and a symlink in the file's own
/// place is left to be replaced, not followed.
pub fn file_in_image(root: &Path, rel: &Path) -> anyhow::Result<PathBuf> {
    let name = rel.file_name().context("not a file path")?;
    let mut dir = PathBuf::new();
    for part in rel.parent().into_iter().flat_map(Path::components) {
        let next = dir.join(part);
        if std::fs::symlink_metadata(root.join(&next)).is_err() {
            std::fs::create_dir(root.join(&next))
                .with_context(|| format!("creating /{}", next.display()))?;
            dir = next;
            continue;
        }
        dir = resolve_in(root, &next, true)
            .filter(|resolved| root.join(resolved).is_dir())
            .with_context(|| {
                format!(
                    "/{} is not a directory, nor a symlink to one inside the image",
                    next.display()
                )
            })?;
    }
    Ok(root.join(dir).join(name))
}

/// Whether `path` is a file that is not a multiboot bootctl of any version (every one
/// reads `/etc/multiboot/boot-info.json`): in an image whose /usr/sbin is a link to
/// /usr/bin, systemd's bootctl.
fn holds_another_program(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|meta| meta.is_file())
        && std::fs::read(path).is_ok_and(|old| {
            !old.windows(IMAGE_BOOT_INFO.len())
                .any(|window| window == IMAGE_BOOT_INFO.as_bytes())
        })
}

/// Pushes the components of `path` onto `pending` so that the first is popped first:
/// names as they are, `..` as `..`, the root and `.` left out.
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    for component in path.components().rev() {
        match component {
            Component::Normal(part) => pending.push(part.to_owned()),
            Component::ParentDir => pending.push("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
}

/// `DIR/`: rsync copies the directory's contents, not the directory.
fn dir_arg(dir: &Path) -> OsString {
    let mut arg = dir.as_os_str().to_owned();
    arg.push("/");
    arg
}

/// An rsync URL ending in `/`: the contents of the directory it names.
fn url_arg(url: &str) -> OsString {
    if url.ends_with('/') {
        url.into()
    } else {
        format!("{url}/").into()
    }
}

/// The names in `dir` (none when it does not exist).
fn list_names(dir: &Path) -> std::io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

/// The keys of os-release the deployer uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OsRelease {
    pub id: Option<String>,
    pub pretty_name: Option<String>,
}

/// The most of an os-release file the deployer reads: real ones are under 1 KiB.
const MAX_OS_RELEASE_BYTES: u64 = 64 << 10;

/// `/etc/os-release` of the image whose `/` is `root`, else `/usr/lib/os-release`, each
/// looked up as [`resolve_in`] does, so a symlink in the image never makes the deployer
/// read a file of the host; empty when neither is a readable regular file of at most
/// [`MAX_OS_RELEASE_BYTES`] of UTF-8.
fn read_os_release(root: &Path) -> OsRelease {
    ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|rel| read_image_text(root, Path::new(rel), MAX_OS_RELEASE_BYTES))
        .map(|text| parse_os_release(&text))
        .unwrap_or_default()
}

/// The text of the regular file `rel` of the image whose `/` is `root`, found with
/// [`resolve_in`]; `None` when it is missing, not a regular file (a FIFO is not waited
/// for), not UTF-8, or longer than `limit` bytes.
fn read_image_text(root: &Path, rel: &Path, limit: u64) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let resolved = resolve_in(root, rel, true)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits())
        .open(root.join(resolved))
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(limit + 1).read_to_string(&mut text).ok()?;
    (text.len() as u64 <= limit).then_some(text)
}

/// `ID` and `PRETTY_NAME` of an os-release text (shell-style quotes and escapes undone).
pub fn parse_os_release(text: &str) -> OsRelease {
    let mut out = OsRelease::default();
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let value = unquote(value.trim());
        match key.trim() {
            "ID" => out.id = Some(value),
            "PRETTY_NAME" => out.pretty_name = Some(value),
            _ => {}
        }
    }
    out
}

fn unquote(value: &str) -> String {
    let quoted = |q: char| value.len() >= 2 && value.starts_with(q) && value.ends_with(q);
    if quoted('\'') {
        return value[1..value.len() - 1].to_owned();
    }
    let inner = if quoted('"') {
        &value[1..value.len() - 1]
    } else {
        value
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_keys_are_unquoted() {
        let text = "NAME=\"Fixture Linux\"\nID=fixture\n# comment\n\
            PRETTY_NAME=\"Fixture \\\"A\\\" 1.0\"\nVERSION_ID='1.0'\n";
        assert_eq!(
            parse_os_release(text),
            OsRelease {
                id: Some("fixture".to_owned()),
                pretty_name: Some("Fixture \"A\" 1.0".to_owned()),
            }
        );
        assert_eq!(
            parse_os_release("ID='deb ian'\n").id.as_deref(),
            Some("deb ian")
        );
        assert_eq!(parse_os_release(""), OsRelease::default());
    }

    #[test]
    fn rsync_copies_contents() {
        assert_eq!(dir_arg(Path::new("/srv/img")), OsString::from("/srv/img/"));
        assert_eq!(
            url_arg("rsync://h/m/img"),
            OsString::from("rsync://h/m/img/")
        );
        assert_eq!(url_arg("rsync://h/m/"), OsString::from("rsync://h/m/"));
    }

    #[test]
    fn rsync_items_of_files_that_were_there() {
        // Real `rsync -aHAXS -ii` output: a first copy, then a second one onto it.
        let first = ".d          ./\ncD+++++++++ dev\ncS+++++++++ fifo\n>f+++++++++ hl\n\
            cL+++++++++ sym -> a\ncd+++++++++ d/\n>f+++++++++ d/b\nhf+++++++++ a => hl\n";
        assert!(rsync_existing(first).is_empty(), "everything is new");
        let second = ".d          ./\n.f          a\n.D          dev\n.S          fifo\n\
            hf          hl\n.L          sym -> a\n.d          d/\n>f.s....... d/b\n\
            hf......... x => hl\nsending incremental file list\n\
            sent 1,234 bytes  received 56 bytes\n*deleting   old\n";
        assert_eq!(
            rsync_existing(second),
            ["/a", "/dev", "/fifo", "/hl", "/sym", "/d/b", "/x"]
        );
    }

    #[test]
    fn tar_names_are_unescaped_and_made_relative() {
        assert_eq!(unescape_tar_name("./etc/a b"), b"./etc/a b");
        assert_eq!(
            unescape_tar_name(r"./x\\y\nz\tq\303\251\?"),
            b"./x\\y\nz\tq\xc3\xa9?"
        );
        assert_eq!(unescape_tar_name(r"end\"), b"end\\");
        assert_eq!(
            member_path(b"./etc/fstab"),
            Some(PathBuf::from("etc/fstab"))
        );
        assert_eq!(member_path(b"/abs/./x"), Some(PathBuf::from("abs/x")));
        assert_eq!(member_path(b"./"), None);
        assert_eq!(member_path(b"a/../../etc/passwd"), None);
    }

    #[test]
    fn tar_command_lines() {
        let strings = |argv: Vec<OsString>| -> Vec<String> {
            argv.into_iter().map(|a| a.into_string().unwrap()).collect()
        };
        assert_eq!(
            strings(tar_command(
                &TAR_EXTRACT,
                Path::new("/w/i.tar.zst"),
                Compression::Zstd,
                Some(Path::new("/w/root"))
            )),
            [
                "tar",
                "-x",
                "--numeric-owner",
                "--same-owner",
                "-p",
                "--xattrs",
                "--xattrs-include=*",
                "--acls",
                "-f",
                "/w/i.tar.zst",
                "--zstd",
                "-C",
                "/w/root"
            ]
        );
        assert_eq!(
            strings(tar_command(
                &["-t"],
                Path::new("a.tar"),
                Compression::None,
                None
            )),
            ["tar", "-t", "-f", "a.tar"]
        );
    }

    #[test]
    fn existence_is_judged_inside_the_image() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::write(root.join("usr/lib/libc.so"), b"").unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        symlink("/usr/lib", root.join("lib-abs")).unwrap();
        symlink("../../usr/lib", root.join("usr/lib/up")).unwrap();
        symlink("/nowhere", root.join("dangling")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        // Outside the image: a file the absolute link would find on the host.
        std::fs::create_dir_all(dir.path().join("usr/lib")).unwrap();
        std::fs::write(dir.path().join("usr/lib/host-only"), b"").unwrap();
        let exists = |rel: &str| exists_in(&root, Path::new(rel));
        assert!(exists("usr/lib/libc.so"));
        assert!(exists("lib/libc.so"), "through a relative link");
        assert!(
            exists("lib-abs/libc.so"),
            "an absolute link stays in the image"
        );
        assert!(exists("usr/lib/up/libc.so"), "through ..");
        assert!(exists("dangling"), "the link itself is there");
        assert!(!exists("dangling/x"));
        assert!(!exists("loop/x"), "a symlink loop ends");
        assert!(!exists("usr/lib/libc.so/x"), "a file is not a directory");
        assert!(!exists("usr/lib/missing"));
        let host = dir.path().join("root/../usr/lib/host-only");
        assert!(host.exists(), "the host file is there");
        assert!(!exists("lib-abs/../../usr/lib/host-only"));
    }

    /// An image tree at `DIR/root` whose `/usr/lib/os-release` says "Image" and a host
    /// file at `DIR/etc/os-release` saying "HOST", where a link resolved on the host
    /// (not inside the image) would lead.
    fn image_and_host(dir: &Path) -> PathBuf {
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::write(root.join("usr/lib/os-release"), "PRETTY_NAME=\"Image\"\n").unwrap();
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(
            dir.join("etc/os-release"),
            "PRETTY_NAME=\"HOST\"\nID=host\n",
        )
        .unwrap();
        root
    }

    fn title(root: &Path) -> Option<String> {
        read_os_release(root).pretty_name
    }

    #[test]
    fn os_release_symlinks_never_lead_out_of_the_image() {
        use std::os::unix::fs::symlink;
        let host = read_os_release(Path::new("/")).pretty_name;
        let links: [(&str, &str); 8] = [
            ("etc/os-release", "../../etc/os-release"),
            ("etc/os-release", "../etc/../../etc/os-release"),
            ("etc/os-release", "/../../etc/os-release"),
            ("etc", "../etc"),
            ("etc", "/etc"),
            ("etc", "/../.."),
            ("etc/os-release", "/proc/self/environ"),
            ("etc/os-release", "/dev/zero"),
        ];
        for (at, target) in links {
            let dir = tempfile::tempdir().unwrap();
            let root = image_and_host(dir.path());
            let link = root.join(at);
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            symlink(target, &link).unwrap();
            let got = title(&root);
            assert_eq!(got.as_deref(), Some("Image"), "{at} -> {target}");
            assert_ne!(got, host, "{at} -> {target} read the host's os-release");
        }
    }

    #[test]
    fn os_release_symlinks_inside_the_image_are_followed() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let root = image_and_host(dir.path());
        std::fs::create_dir_all(root.join("etc")).unwrap();
        // Debian's link, relative.
        symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
        assert_eq!(title(&root).as_deref(), Some("Image"));
        // Absolute, through a directory link, with `..` at the image's root.
        std::fs::remove_file(root.join("etc/os-release")).unwrap();
        symlink("/lib/../../../os-release", root.join("etc/os-release")).unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        std::fs::write(root.join("os-release"), "PRETTY_NAME=Top\n").unwrap();
        assert_eq!(title(&root).as_deref(), Some("Top"));
        assert_eq!(
            resolve_in(&root, Path::new("etc/os-release"), true),
            Some(PathBuf::from("os-release"))
        );
        assert_eq!(
            resolve_in(&root, Path::new("etc/os-release"), false),
            Some(PathBuf::from("etc/os-release"))
        );
        assert_eq!(
            resolve_in(&root, Path::new("lib/os-release"), true),
            Some(PathBuf::from("usr/lib/os-release"))
        );
    }

    #[test]
    fn os_release_that_is_not_a_small_text_file_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = image_and_host(dir.path());
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let etc = root.join("etc/os-release");
        nix::unistd::mkfifo(&etc, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        assert_eq!(
            title(&root).as_deref(),
            Some("Image"),
            "a FIFO is not waited for"
        );
        std::fs::remove_file(&etc).unwrap();
        std::fs::create_dir(&etc).unwrap();
        assert_eq!(title(&root).as_deref(), Some("Image"), "a directory");
        std::fs::remove_dir(&etc).unwrap();
        let huge = format!("PRETTY_NAME=Huge\n{}", "#\n".repeat(40 << 10));
        std::fs::write(&etc, huge).unwrap();
        assert_eq!(title(&root).as_deref(), Some("Image"), "over 64 KiB");
        std::fs::write(&etc, b"PRETTY_NAME=Caf\xe9\n").unwrap();
        assert_eq!(title(&root).as_deref(), Some("Image"), "not UTF-8");
    }

    #[test]
    fn os_release_values_with_control_characters_are_not_used() {
        let value = |v: &str| printable("img", "PRETTY_NAME", Some(v.to_owned()));
        assert_eq!(
            value("Debian \"12\" $x;{}\\").as_deref(),
            Some("Debian \"12\" $x;{}\\")
        );
        assert_eq!(value("a\0b"), None);
        assert_eq!(value("\x1b[2Jclear"), None);
        assert_eq!(value("tab\there"), None);
        assert_eq!(printable("img", "ID", None), None);
    }

    #[test]
    fn members_that_exist_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/a b"), b"").unwrap();
        let listing = "./\n./etc/\n./etc/a b\n./etc/new\n./etc/a\\040b\n";
        assert_eq!(
            existing_members(listing, dir.path()),
            ["/etc/a b", "/etc/a b"]
        );
    }

    #[test]
    fn shared_mount_points_are_those_an_earlier_image_got() {
        use crate::plan::{plan, DiskInput, SequentialIds};
        let config = crate::validate::validate(
            r#"{"images": [
                {"name": "a", "image_pull_url": "/a", "target": "/"},
                {"name": "b", "image_pull_url": "/b", "target": "/"},
                {"name": "c", "image_pull_url": "/c", "target": "/"}],
              "partitions": [{"type": "disk", "id": {"type": "name", "value": "vda"},
                "volumes": [
                  {"type": "partition", "mount": "/", "size": "50", "images": ["a"]},
                  {"type": "partition", "mount": "/", "size": "50", "images": ["b"]},
                  {"type": "partition", "mount": "/", "size": "50", "images": ["c"]},
                  {"type": "partition", "mount": "/srv", "size": "20", "images": ["c", "b"]},
                  {"type": "partition", "mount": "/opt", "size": "20", "images": ["a", "c"]}]}]}"#,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let disk = DiskInput {
            name: "vda".to_owned(),
            path: "/dev/vda".into(),
            size_bytes: 1 << 30,
            sector_size: 512,
            existing: None,
        };
        let plan = plan(&config, &[disk], &mut SequentialIds::default()).unwrap();
        let shared = |name: &str| {
            let image = plan.images.iter().find(|i| i.name == name).unwrap();
            shared_mount_points(&plan, image)
        };
        assert!(shared("a").is_empty());
        assert!(shared("b").is_empty(), "c comes after b in config order");
        assert_eq!(shared("c"), ["/opt", "/srv"]);
    }

    #[test]
    fn a_path_belongs_to_the_deepest_mount_point_holding_it() {
        let mounts = ["/", "/usr", "/usr/share/common", "/srv"];
        let of = |path| mount_point_of(path, mounts.iter().copied());
        assert_eq!(of("/etc/fstab"), Some("/"));
        assert_eq!(of("/usr/bin/sh"), Some("/usr"));
        assert_eq!(of("/usr/share/common/a.txt"), Some("/usr/share/common"));
        assert_eq!(of("/usr/share/commonplace"), Some("/usr"));
        assert_eq!(of("/srv"), Some("/srv"));
        assert_eq!(of("/srvx/a"), Some("/"));
        assert_eq!(mount_point_of("/a", ["/b"].into_iter()), None);
    }

    #[test]
    fn vfat_mounts_are_read_from_proc_filesystems() {
        assert!(mounts_vfat("nodev\tsysfs\n\text4\n\tvfat\n"));
        assert!(!mounts_vfat(
            "nodev\tsysfs\n\text4\n\txfs\n\tmsdos_not_vfat\n"
        ));
    }

    fn mount(mount_point: &str, fs_type: FileSystem) -> MountPlan {
        MountPlan {
            mount_point: mount_point.to_owned(),
            device: crate::plan::Device::Partition {
                disk: "vda".to_owned(),
                number: 4,
            },
            fs_type,
            uuid: String::new(),
        }
    }

    #[test]
    fn a_mount_below_a_vfat_mount_point_is_found() {
        let mut mounts = vec![
            mount("/", FileSystem::Ext4),
            mount("/boot", FileSystem::Ext4),
            mount("/boot/efi", FileSystem::Vfat),
            mount("/boot/efiother", FileSystem::Ext4),
        ];
        assert_eq!(vfat_nesting(&mounts), None);
        mounts.push(mount("/boot/efi/extra", FileSystem::Xfs));
        assert_eq!(
            vfat_nesting(&mounts),
            Some(("/boot/efi/extra", "/boot/efi"))
        );
    }

    #[test]
    fn files_a_vfat_filesystem_holds_already_compare_without_case() {
        let listing = "::/EFI/\n::/common.txt\n::/EFI/BOOT/\n::/EFI/BOOT/BOOTX64.EFI\n";
        let staged = [
            "EFI/boot/bootx64.efi".to_owned(),
            "Common.TXT".to_owned(),
            "EFI".to_owned(),
            "new.txt".to_owned(),
        ];
        assert_eq!(
            vfat_overlaps(listing, &staged),
            ["EFI/boot/bootx64.efi", "Common.TXT"]
        );
    }

    #[test]
    fn mtools_command_lines() {
        let argv = mtools_command(
            "mcopy",
            &["-s", "-o"],
            Path::new("/dev/loop0p6"),
            &[
                PathBuf::from("/w/r/boot/efi/EFI"),
                PathBuf::from("/w/r/boot/efi/a b"),
            ],
            "::/",
        );
        assert_eq!(
            argv,
            [
                "mcopy",
                "-s",
                "-o",
                "-i",
                "/dev/loop0p6",
                "/w/r/boot/efi/EFI",
                "/w/r/boot/efi/a b",
                "::/"
            ]
            .map(OsString::from)
        );
    }

    #[test]
    fn files_are_written_where_the_image_sees_them_never_on_the_host() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path();
        let root = host.join("root");
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::create_dir_all(host.join("usr/bin")).unwrap();
        std::fs::create_dir_all(host.join("host-etc")).unwrap();
        // /usr/sbin merged into /usr/bin, by an absolute link: the image's /usr/bin.
        symlink("/usr/bin", root.join("usr/sbin")).unwrap();
        let at = |rel: &str| file_in_image(&root, Path::new(rel)).map_err(|e| e.to_string());
        assert_eq!(at("usr/sbin/bootctl"), Ok(root.join("usr/bin/bootctl")));
        // Missing directories are made inside the image.
        assert_eq!(
            at("etc/multiboot/boot-info.json"),
            Ok(root.join("etc/multiboot/boot-info.json"))
        );
        assert!(root.join("etc/multiboot").is_dir());
        // A link to a host directory by its absolute path is the image's path, which it
        // lacks: refused, nothing made on the host or in the image.
        std::fs::remove_dir_all(root.join("etc")).unwrap();
        let host_etc = host.join("host-etc");
        symlink(&host_etc, root.join("etc")).unwrap();
        assert_eq!(
            at("etc/fstab"),
            Err("/etc is not a directory, nor a symlink to one inside the image".to_owned())
        );
        assert_eq!(std::fs::read_dir(&host_etc).unwrap().count(), 0);
        // Climbing out with .. stops at the image's root.
        std::fs::remove_file(root.join("etc")).unwrap();
        symlink("../../../..", root.join("etc")).unwrap();
        assert_eq!(at("etc/fstab"), Ok(root.join("fstab")));
        // A file where a directory must be.
        std::fs::remove_file(root.join("etc")).unwrap();
        std::fs::write(root.join("etc"), b"").unwrap();
        assert_eq!(
            at("etc/fstab"),
            Err("/etc is not a directory, nor a symlink to one inside the image".to_owned())
        );
    }

    #[test]
    fn another_program_in_bootctls_place_is_told_from_any_multiboot_bootctl() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bootctl");
        assert!(!holds_another_program(&path), "nothing there");
        std::fs::write(&path, b"\x7fELF systemd-boot tool").unwrap();
        assert!(holds_another_program(&path));
        std::fs::write(&path, b"\x7fELF ... /etc/multiboot/boot-info.json ...").unwrap();
        assert!(!holds_another_program(&path), "an older multiboot bootctl");
    }
}
