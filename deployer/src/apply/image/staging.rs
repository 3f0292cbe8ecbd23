//! A filesystem several images get, filled while they are deployed at the same time: each
//! image writes its part into a directory of its own on that filesystem, bind-mounted at
//! its mount point; once all are written, the parts are merged in config order by renames
//! within the filesystem, as if the images had been deployed one after the other. A later
//! image's file replaces an earlier one's and is reported; directories merge, each getting
//! the attributes of the last image that has it.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context;
use shared::mount::{Mount as Mounted, MountOptions};

use crate::apply::copy::copy_dir_attrs;
use crate::apply::disk::AttachedDisks;
use crate::config::Mount;
use crate::plan::{Device, Plan};

/// Where the parts wait on the filesystem, removed once merged.
const STAGING_DIR: &str = ".multiboot-staging";

/// The staged filesystems, mounted for the deploy of the images; none by default.
#[derive(Default)]
pub struct Staging {
    filesystems: Vec<StagedFs>,
}

struct StagedFs {
    device: Device,
    mount_point: String,
    mount: Mounted,
    /// The images that fill it, in config order, each with its directory.
    parts: Vec<(String, PathBuf)>,
}

impl Staging {
    /// Mounts each filesystem of `devices` (made anew) under `work` and makes a directory
    /// for each deployed image that gets it, with the attributes of the filesystem's root.
    pub fn prepare(
        plan: &Plan,
        devices: &[Device],
        disks: &AttachedDisks,
        work: &Path,
    ) -> anyhow::Result<Staging> {
        let mut filesystems = Vec::new();
        for device in devices {
            let Some((fs, Mount::Path(mount_point))) = plan
                .filesystems
                .iter()
                .find(|fs| &fs.device == device)
                .map(|fs| (fs, &fs.mount))
            else {
                continue;
            };
            let what = || format!("staging the filesystem of {device}");
            let opts = MountOptions {
                read_only: false,
                fstype: Some(fs.fs_type.as_str().to_owned()),
            };
            let mount = Mounted::new_temp(&disks.node(device)?, work, &opts).with_context(what)?;
            let staging = mount.path().join(STAGING_DIR);
            std::fs::create_dir(&staging).with_context(what)?;
            let mut parts = Vec::new();
            for (index, image) in plan.images.iter().enumerate() {
                if !(plan.deploys(image) && fs.images.contains(&image.name)) {
                    continue;
                }
                let dir = staging.join(index.to_string());
                std::fs::create_dir(&dir).with_context(what)?;
                copy_dir_attrs(mount.path(), &dir).with_context(what)?;
                parts.push((image.name.clone(), dir));
            }
            filesystems.push(StagedFs {
                device: device.clone(),
                mount_point: mount_point.clone(),
                mount,
                parts,
            });
        }
        Ok(Staging { filesystems })
    }

    /// The directory image `image` fills in place of the filesystem of `device`, when that
    /// one is staged.
    pub fn dir(&self, image: &str, device: &Device) -> Option<&Path> {
        self.filesystems
            .iter()
            .filter(|fs| &fs.device == device)
            .flat_map(|fs| &fs.parts)
            .find(|(name, _)| name == image)
            .map(|(_, dir)| dir.as_path())
    }

    /// Merges the parts of every staged filesystem in config order, reporting each file a
    /// later image brings again, and unmounts them.
    pub fn merge(self) -> anyhow::Result<()> {
        for fs in self.filesystems {
            let root = fs.mount.path().to_owned();
            for (image, dir) in &fs.parts {
                let what = || format!("image {image}: merging its files on {}", fs.mount_point);
                let mut replaced = Vec::new();
                merge_dir(dir, &root, Path::new(""), &mut replaced).with_context(what)?;
                copy_dir_attrs(dir, &root).with_context(what)?;
                std::fs::remove_dir(dir).with_context(what)?;
                for path in replaced {
                    let at = Path::new(&fs.mount_point).join(path);
                    crate::warn!(
                        "deployer: image {image}: {} already brought by an earlier image, \
                         overwritten",
                        at.display()
                    );
                }
            }
            std::fs::remove_dir(root.join(STAGING_DIR))
                .with_context(|| format!("removing {STAGING_DIR} from {}", fs.mount_point))?;
            fs.mount
                .unmount()
                .with_context(|| format!("unmounting the filesystem of {}", fs.device))?;
        }
        Ok(())
    }
}

/// Moves every entry of `from` into `to` (`rel` below the filesystem's root): a name `to`
/// lacks is renamed there; a directory both have is merged, then given `from`'s
/// attributes; anything else in `to` is replaced, and `replaced` gets its path when what
/// replaces it is not a directory.
fn merge_dir(from: &Path, to: &Path, rel: &Path, replaced: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(from)?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for name in names {
        let (src, dst) = (from.join(&name), to.join(&name));
        let src_dir = std::fs::symlink_metadata(&src)?.is_dir();
        match std::fs::symlink_metadata(&dst) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
            Ok(meta) if meta.is_dir() && src_dir => {
                merge_dir(&src, &dst, &rel.join(&name), replaced)?;
                copy_dir_attrs(&src, &dst)?;
                std::fs::remove_dir(&src)?;
                continue;
            }
            Ok(meta) => {
                if !src_dir {
                    replaced.push(rel.join(&name));
                }
                if meta.is_dir() {
                    std::fs::remove_dir_all(&dst)?;
                } else {
                    std::fs::remove_file(&dst)?;
                }
            }
        }
        std::fs::rename(&src, &dst)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn parts_merge_as_if_copied_one_after_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let (root, first, second) = (
            dir.path().join("root"),
            dir.path().join("a"),
            dir.path().join("b"),
        );
        std::fs::create_dir(&root).unwrap();
        write(&first.join("common/x"), "a");
        write(&first.join("only-a/y"), "a");
        write(&first.join("dir-then-file/z"), "a");
        write(&first.join("file-then-dir"), "a");
        write(&second.join("common/x"), "b");
        write(&second.join("common/new"), "b");
        write(&second.join("dir-then-file"), "b");
        write(&second.join("file-then-dir/w"), "b");
        std::fs::set_permissions(
            second.join("common"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();

        let mut replaced = Vec::new();
        merge_dir(&first, &root, Path::new(""), &mut replaced).unwrap();
        assert!(replaced.is_empty());
        merge_dir(&second, &root, Path::new(""), &mut replaced).unwrap();
        assert_eq!(
            replaced,
            [PathBuf::from("common/x"), PathBuf::from("dir-then-file")]
        );
        let read = |rel: &str| std::fs::read_to_string(root.join(rel)).unwrap();
        assert_eq!(read("common/x"), "b");
        assert_eq!(read("common/new"), "b");
        assert_eq!(read("only-a/y"), "a");
        assert_eq!(read("dir-then-file"), "b");
        assert_eq!(read("file-then-dir/w"), "b");
        let mode = std::fs::metadata(root.join("common"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o700,
            "the later image's directory attributes"
        );
        for part in [&first, &second] {
            assert_eq!(std::fs::read_dir(part).unwrap().count(), 0, "all moved");
        }
    }
}
