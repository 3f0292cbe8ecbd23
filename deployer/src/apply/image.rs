//! One image deployed onto its filesystems: mounted in the plan's order under a private
//! directory, the source directory copied with rsync, its fstab and bootctl written, and
//! what its boot entry needs read back (os-release, the newest kernel in /boot).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use shared::atomic::replace_file;
use shared::mount::{Mount, MountOptions};

use crate::apply::disk::AttachedDisks;
use crate::apply::runner::run;
use crate::kernels::{newest_kernel, KernelPair};
use crate::plan::{ImagePlan, MountPlan};

/// Where bootctl goes inside every image.
pub const BOOTCTL_PATH: &str = "usr/sbin/bootctl";

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
pub struct MountedImage {
    /// The root mount first.
    mounts: Vec<Mount>,
}

impl MountedImage {
    /// Mounts `mounts` (the root first, then in the plan's order) under `work`.
    pub fn mount(
        image: &str,
        mounts: &[MountPlan],
        disks: &AttachedDisks,
        work: &Path,
    ) -> anyhow::Result<MountedImage> {
        let mut mounted = MountedImage { mounts: Vec::new() };
        for plan in mounts {
            let node = disks.node(&plan.device)?;
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

/// Deploys `image` from the directory `source` onto its (made) filesystems.
pub fn deploy_image(
    image: &ImagePlan,
    source: &Path,
    rsync_flags: Option<&str>,
    bootctl: &[u8],
    disks: &AttachedDisks,
    work: &Path,
) -> anyhow::Result<DeployedImage> {
    let name = &image.name;
    let mounted = MountedImage::mount(name, &image.mounts, disks, work)?;
    let root = mounted.root().to_owned();
    let mut argv: Vec<OsString> = ["rsync", "-aHAXS", "--numeric-ids"]
        .iter()
        .map(OsString::from)
        .collect();
    argv.extend(
        rsync_flags
            .unwrap_or_default()
            .split_whitespace()
            .map(OsString::from),
    );
    argv.push(dir_arg(source));
    argv.push(dir_arg(&root));
    run(&format!("copy image {name}"), &argv)?;

    let etc = root.join("etc");
    std::fs::create_dir_all(&etc).with_context(|| format!("image {name}: creating /etc"))?;
    replace_file(&etc.join("fstab"), image.fstab.as_bytes(), 0o644)
        .with_context(|| format!("image {name}: writing /etc/fstab"))?;
    let bootctl_path = root.join(BOOTCTL_PATH);
    let sbin = bootctl_path
        .parent()
        .expect("bootctl's path has a directory");
    std::fs::create_dir_all(sbin).with_context(|| format!("image {name}: creating /usr/sbin"))?;
    replace_file(&bootctl_path, bootctl, 0o755)
        .with_context(|| format!("image {name}: installing /{BOOTCTL_PATH}"))?;

    let os_release = read_os_release(&root);
    let boot_files =
        list_names(&root.join("boot")).with_context(|| format!("image {name}: reading /boot"))?;
    let names: Vec<&str> = boot_files.iter().map(String::as_str).collect();
    let Some(kernel) = newest_kernel(&names) else {
        bail!("image {name}: no kernel (vmlinuz-*) in /boot");
    };
    mounted
        .unmount()
        .with_context(|| format!("unmount image {name}"))?;
    Ok(DeployedImage {
        name: name.clone(),
        title: os_release
            .pretty_name
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| name.clone()),
        os_id: os_release.id.unwrap_or_default(),
        kernel,
    })
}

/// `DIR/`: rsync copies the directory's contents, not the directory.
fn dir_arg(dir: &Path) -> OsString {
    let mut arg = dir.as_os_str().to_owned();
    arg.push("/");
    arg
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

/// `ROOT/etc/os-release`, else `ROOT/usr/lib/os-release`; empty when neither is readable.
/// Never follows a symlink out of the image: an absolute link is resolved inside `root`.
fn read_os_release(root: &Path) -> OsRelease {
    ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|rel| std::fs::read_to_string(resolve_in(root, &root.join(rel))).ok())
        .map(|text| parse_os_release(&text))
        .unwrap_or_default()
}

/// `path` (inside `root`), with an absolute symlink target taken relative to `root`.
fn resolve_in(root: &Path, path: &Path) -> PathBuf {
    match std::fs::read_link(path) {
        Ok(target) if target.is_absolute() => {
            root.join(target.strip_prefix("/").unwrap_or(&target))
        }
        Ok(target) => path.parent().unwrap_or(root).join(target),
        Err(_) => path.to_owned(),
    }
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
    }
}
