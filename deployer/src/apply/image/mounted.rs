//! An image's filesystems mounted for the copy; where the kernel cannot mount vfat, mtools
//! fill the vfat filesystems instead.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use shared::mount::{Mount, MountOptions};

use crate::apply::disk::AttachedDisks;
use crate::config::FileSystem;
use crate::exec::run;
use crate::plan::MountPlan;

use super::staging::Staging;

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
    /// filesystem only where the kernel can mount vfat; a filesystem `staging` stages, as
    /// the image's directory on it.
    pub fn mount(
        image: &str,
        mounts: &[MountPlan],
        disks: &AttachedDisks,
        work: &Path,
        staging: &Staging,
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
                    match staging.dir(image, &plan.device) {
                        Some(part) => Mount::bind(part, &dir).with_context(step)?,
                        None => Mount::at(&node, &dir, &opts).with_context(step)?,
                    }
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

    /// Where each of its filesystems is mounted, the root first.
    pub fn mount_points(&self) -> Vec<PathBuf> {
        self.mounts.iter().map(|m| m.path().to_owned()).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
