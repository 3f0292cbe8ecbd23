//! One image put onto its filesystems (those made anew: a filesystem that keeps its data is
//! never written), or the boot entry of an image not deployed again read from it
//! ([`read_kept_image`]): written or copied, its fstab, bootctl and the hooks
//! that run it added ([`extras`]), and what its boot entry needs read back. The image is untrusted content: the files the
//! deployer writes into it or reads from it are looked up as the image itself sees them
//! ([`resolve_in`], [`file_in_image`]), never on the host.

mod extras;
mod flusher;
mod initramfs;
mod mounted;
mod os_release;
mod overlap;
mod rootpath;
mod rsync;
mod staging;
mod tar;

pub use initramfs::{check_root_starter, image_kernel};
pub use mounted::{
    kernel_mounts_vfat, mounts_vfat, mtools_command, vfat_nesting, vfat_overlaps, MountedImage,
};
pub use os_release::{parse_os_release, OsRelease};
pub use overlap::{mount_point_of, shared_mount_points};
pub use rootpath::{exists_in, file_in_image, resolve_in};
pub use rsync::rsync_existing;
pub use staging::Staging;
pub use tar::{member_path, tar_command, unescape_tar_name};

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use shared::atomic::replace_file;
use shared::fault;
use shared::layout::{in_image, BOOTCTL, IMAGE_BOOT_INFO};
use shared::mount::{Mount, MountOptions};

use crate::apply::copy::copy_tree;
use crate::apply::disk::AttachedDisks;
use crate::apply::fsimage;
use crate::exec::run;
use crate::plan::{Device, ImagePlan, MountPlan, Plan};
use crate::source::{Bytes, Payload};
use crate::timing;
use shared::kernels::KernelPair;

use os_release::{printable, read_os_release};
use overlap::report_existing;
use rsync::{dir_arg, rsync_copy};
use tar::{existing_members, extract};

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
    staging: &Staging,
) -> anyhow::Result<DeployedImage> {
    let name = &image.name;
    let layout = plan.layout(image);
    let shared = &unstaged_shared_mount_points(plan, image, staging);
    let rsync_flags = plan.rsync_flags.as_deref();
    let writing = Instant::now();
    if let Payload::Filesystem {
        bytes,
        qcow2,
        fs,
        target,
    } = payload
    {
        let node = disks.node(&target.device)?;
        fsimage::install(name, *bytes, *qcow2, fs, target, &node)?;
    }
    // A filesystem that keeps its data is not written: not mounted, what the image holds
    // beneath its mount point goes into the filesystem that holds the mount point.
    let mounts: Vec<MountPlan> = layout
        .mounts
        .iter()
        .filter(|m| !plan.keeps_data_of(&m.device))
        .cloned()
        .collect();
    let mounted = MountedImage::mount(name, &mounts, disks, work, staging)?;
    let root = mounted.root().to_owned();
    let flusher = flusher::Flusher::start(&mounted.mount_points());
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
                &rsync_copy(name, (*url).into(), &root, rsync_flags)?,
            );
        }
        Payload::Tar { bytes, compression } => {
            if !shared.is_empty() {
                let Bytes::File(path) = bytes else {
                    bail!("image {name}: a streamed archive cannot be listed first");
                };
                let listing = run(
                    &format!("list the tar archive of image {name}"),
                    &tar_command(&["-t", "--quoting-style=escape"], path, *compression, None),
                )?;
                report_existing(name, &layout, shared, &existing_members(&listing, &root));
            }
            fault::step("image:tar")?;
            extract(name, *bytes, *compression, &root)?;
        }
        Payload::Filesystem { fs, target, .. } => {
            let mount_point = root.join(target.mount_point.trim_start_matches('/'));
            if let Some(grow) = fsimage::grow_mounted(fs.fs_type, &mount_point) {
                run(&format!("grow the filesystem of image {name}"), &grow)?;
            }
        }
    }

    mounted.fill_vfat(name, shared)?;
    drop(flusher);
    timing::record("write", Some(name), writing);
    let finishing = Instant::now();
    // The image mounts its kept filesystems at boot: their mount points must be there.
    for kept in layout
        .mounts
        .iter()
        .filter(|m| plan.keeps_data_of(&m.device))
    {
        let what = || format!("image {name}: creating {}", kept.mount_point);
        let rel = Path::new(kept.mount_point.trim_start_matches('/'));
        let dir = file_in_image(&root, rel).with_context(what)?;
        if std::fs::symlink_metadata(&dir).is_err() {
            std::fs::create_dir(&dir).with_context(what)?;
        }
    }

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
    let extras = extras::install(name, &root, &os_release)?;
    if !extras.is_empty() {
        crate::output::detail(format_args!(
            "deployer: image {name}: installed {}",
            extras.join(", ")
        ));
    }

    let starter = plan.stack_boot(&layout).root_starter;
    let entry = boot_entry_of(name, &root, os_release, starter.as_ref())?;
    mounted
        .unmount()
        .with_context(|| format!("unmount image {name}"))?;
    timing::record("finish", Some(name), finishing);
    Ok(entry)
}

/// The mount points of `image` an earlier image fills too, other than those `staging`
/// merges afterwards: what this image brings again there is found and reported here.
pub fn unstaged_shared_mount_points(
    plan: &Plan,
    image: &ImagePlan,
    staging: &Staging,
) -> Vec<String> {
    let layout = plan.layout(image);
    shared_mount_points(plan, image)
        .into_iter()
        .filter(|point| {
            !layout
                .mounts
                .iter()
                .any(|m| &m.mount_point == point && staging.dir(&image.name, &m.device).is_some())
        })
        .collect()
}

/// What the image `name` mounted at `root` brings to its boot entry: its newest kernel and
/// its os-release names.
/// An image deployed onto a logical volume or an array (`root_starter`) is checked for
/// what its initramfs needs to start it.
fn boot_entry_of(
    name: &str,
    root: &Path,
    os_release: OsRelease,
    root_starter: Option<&(&'static str, Device)>,
) -> anyhow::Result<DeployedImage> {
    let (boot_dir, kernel) = image_kernel(name, root)?;
    let Some(kernel) = kernel else {
        bail!("image {name}: no kernel (vmlinuz-*) in /boot");
    };
    if let Some((program, device)) = root_starter {
        check_root_starter(name, &boot_dir, &kernel, (program, device))
            .map_err(anyhow::Error::msg)?;
    }
    Ok(DeployedImage {
        name: name.to_owned(),
        title: printable(name, "PRETTY_NAME", os_release.pretty_name)
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| name.to_owned()),
        os_id: printable(name, "ID", os_release.id).unwrap_or_default(),
        kernel,
    })
}

/// Reads the boot entry of `image`, whose `/` keeps its data and which is not deployed
/// again ([`Plan::deploys`]): its `/` and a separate `/boot` mounted read-only, nothing
/// written.
pub fn read_kept_image(
    plan: &Plan,
    image: &ImagePlan,
    disks: &AttachedDisks,
    work: &Path,
) -> anyhow::Result<DeployedImage> {
    let name = &image.name;
    let layout = plan.layout(image);
    let opts = |m: &MountPlan| MountOptions {
        read_only: true,
        fstype: Some(m.fs_type.as_str().to_owned()),
    };
    let step = |m: &MountPlan| {
        format!(
            "mount {} of image {name} ({}) read-only",
            m.mount_point, m.device
        )
    };
    let mount_of = |point: &str| layout.mounts.iter().find(|m| m.mount_point == point);
    let root_plan = mount_of("/").with_context(|| format!("image {name}: no / filesystem"))?;
    let root = Mount::new_temp(&disks.node(&root_plan.device)?, work, &opts(root_plan))
        .with_context(|| step(root_plan))?;
    let boot = match mount_of("/boot").filter(|_| layout.separate_boot) {
        Some(boot_plan) => {
            let dir = root.path().join("boot");
            Some(
                Mount::at(&disks.node(&boot_plan.device)?, &dir, &opts(boot_plan))
                    .with_context(|| step(boot_plan))?,
            )
        }
        None => None,
    };
    let entry = boot_entry_of(name, root.path(), read_os_release(root.path()), None)?;
    if let Some(boot) = boot {
        boot.unmount()
            .with_context(|| format!("unmount /boot of image {name}"))?;
    }
    root.unmount()
        .with_context(|| format!("unmount image {name}"))?;
    Ok(entry)
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

#[cfg(test)]
mod tests {
    use super::*;

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
