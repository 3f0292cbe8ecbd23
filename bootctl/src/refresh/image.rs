//! The image `refresh` works on: the running one, or the one whose root is mounted at
//! `--root DIR`. Its root filesystem's UUID names its entries in grub.cfg; its `/boot`
//! holds its kernels. Reads only.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use shared::blockdev;

use crate::exit::{fail, Code};
use crate::refresh::plan::ImageKernels;
use crate::source;

/// The running image (`root` None), or the image whose root is mounted at `root`.
pub fn find(root: Option<&Path>) -> anyhow::Result<ImageKernels> {
    let (root_uuid, boot) = match root {
        None => {
            let uuid = source::running_root_uuid().ok_or_else(|| {
                fail(
                    Code::Target,
                    "the running root filesystem's UUID is unknown (/ is not on a block \
                     device and the kernel command line has no root=UUID=); name the image's \
                     root with --root DIR",
                )
            })?;
            (uuid.to_owned(), PathBuf::from("/boot"))
        }
        Some(dir) => {
            let dir = fs::canonicalize(dir)
                .map_err(|err| fail(Code::Target, format!("--root {}: {err}", dir.display())))?;
            (root_uuid_of(&dir)?, boot_dir_in(&dir)?)
        }
    };
    let boot_dir = boot.display().to_string();
    Ok(ImageKernels {
        root_uuid,
        boot_names: names_in(&boot).with_context(|| format!("listing {boot_dir}"))?,
        boot_dir,
    })
}

/// The UUID of the filesystem mounted at `dir`, else the one the `/` line of
/// `dir/etc/fstab` names (a copy of an image's tree, not mounted).
fn root_uuid_of(dir: &Path) -> anyhow::Result<String> {
    let device = blockdev::device_mounted_at(dir)
        .with_context(|| format!("finding what is mounted at {}", dir.display()))?;
    if let Some(device) = device {
        let probed = blockdev::probe(&device)
            .with_context(|| format!("reading the filesystem of {}", device.display()))?;
        if let Some(uuid) = probed.and_then(|info| info.uuid) {
            return Ok(uuid);
        }
    }
    let fstab = dir.join("etc/fstab");
    let text = fs::read_to_string(&fstab).unwrap_or_default();
    fstab_root_uuid(&text).ok_or_else(|| {
        fail(
            Code::Target,
            format!(
                "--root {}: not the mount point of a filesystem with a UUID, and {} has no \
                 UUID= line for /",
                dir.display(),
                fstab.display()
            ),
        )
    })
}

/// The `UUID=` of the `/` line of an fstab.
fn fstab_root_uuid(fstab: &str) -> Option<String> {
    fstab
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.get(1) == Some(&"/"))
        .and_then(|fields| {
            let spec = fields[0].strip_prefix("UUID=")?;
            Some(spec.trim_matches('"').to_owned())
        })
}

/// `dir/boot`, which must stay inside `dir` (an image's absolute link would otherwise name
/// this system's /boot).
fn boot_dir_in(dir: &Path) -> anyhow::Result<PathBuf> {
    let boot = dir.join("boot");
    match fs::canonicalize(&boot) {
        Ok(real) if !real.starts_with(dir) => Err(fail(
            Code::Config,
            format!(
                "{} leads out of {} (to {}); mount the image's /boot there",
                boot.display(),
                dir.display(),
                real.display()
            ),
        )),
        _ => Ok(boot),
    }
}

/// The names in `dir`; none when it does not exist.
fn names_in(dir: &Path) -> std::io::Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    entries
        .map(|entry| entry.map(|entry| entry.file_name().to_string_lossy().into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::fstab_root_uuid;

    #[test]
    fn the_root_uuid_comes_from_the_fstab_line_of_slash() {
        let fstab = "# <file system> <mount point> <type>\n\
            UUID=1111 /boot ext2 defaults 0 2\n\
            UUID=2222 / ext4 errors=remount-ro 0 1 # the root\n";
        assert_eq!(fstab_root_uuid(fstab).as_deref(), Some("2222"));
        assert_eq!(
            fstab_root_uuid("UUID=\"3333\" / xfs defaults 0 0\n").as_deref(),
            Some("3333")
        );
        assert_eq!(fstab_root_uuid("LABEL=root / ext4 defaults 0 1\n"), None);
        assert_eq!(fstab_root_uuid("#UUID=4444 / ext4 defaults 0 1\n"), None);
        assert_eq!(fstab_root_uuid(""), None);
    }
}
