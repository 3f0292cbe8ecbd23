//! A volume's filesystem (partitions, raid members, logical volumes): mount point, file
//! system, images, fstab and label.

use serde_json::{Map, Value};

use super::checker::{json_kind, Checked, Checker, Invalid, MountUse};
use super::storage::Tally;
use super::syntax::parse_mount;
use super::JsonPath;
use crate::config::{FileSystem, FsVolume, Mount};
use crate::text::quote;
use crate::text::{closest, did_you_mean};
use shared::layout::MULTIBOOT_LABEL;

/// Where a volume's filesystem is: decides which keys and rules apply.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum FsKind {
    Partition,
    Raid,
    Lv,
}

impl Checker {
    /// The filesystem part of partitions, raid members and logical volumes.
    pub(super) fn fs_volume(
        &mut self,
        map: &Map<String, Value>,
        path: &JsonPath,
        kind: FsKind,
        tally: &mut Tally,
        container: &str,
    ) -> Checked<FsVolume> {
        let size = self.volume_size(map, path, tally, container);
        let mount_at = path.key("mount");
        let mount = match self.opt_str(map, "mount", path) {
            Ok(Some(mount)) => parse_mount(mount).map_err(|message| self.fail(&mount_at, message)),
            Ok(None) if kind == FsKind::Lv => Ok(Mount::None),
            Ok(None) | Err(Invalid) => Err(Invalid),
        };
        let fs_at = path.key("file_system");
        let file_system = match self.opt_str(map, "file_system", path) {
            Ok(Some(name)) => match FileSystem::parse(name) {
                Some(fs) => Ok(Some(fs)),
                None => {
                    let supported: Vec<&str> = FileSystem::ALL.iter().map(|f| f.as_str()).collect();
                    Err(self.fail(
                        &fs_at,
                        format!(
                            "unsupported file_system {}; supported: {}",
                            quote(name),
                            supported.join(", ")
                        ),
                    ))
                }
            },
            other => other.map(|_| None),
        };
        let (mount, file_system) = match (mount, file_system) {
            (Ok(mount), Ok(fs)) => match self.mount_and_fs(mount, fs, kind, &mount_at, &fs_at) {
                Ok((mount, fs)) => (Ok(mount), Ok(fs)),
                Err(Invalid) => (Err(Invalid), Err(Invalid)),
            },
            (mount, fs) => (mount, fs),
        };
        let images = self.volume_images(map, path);
        let keep_data = self.opt_bool(map, "keep_data", path);
        let fstab_enabled = self.opt_bool(map, "fstab_enabled", path);
        let fstab_options = match self.opt_str(map, "fstab_options", path) {
            Ok(Some(options))
                if options.is_empty()
                    || options.chars().any(|c| c.is_whitespace() || c.is_control()) =>
            {
                Err(self.fail(
                    &path.key("fstab_options"),
                    format!(
                        "fstab options {} must be non-empty, without whitespace \
                         (such as \"defaults,noatime\")",
                        quote(options)
                    ),
                ))
            }
            other => other.map(|options| {
                let default = if matches!(mount, Ok(Mount::Swap)) {
                    "sw"
                } else {
                    "defaults"
                };
                options.unwrap_or(default).to_string()
            }),
        };
        let label = if kind == FsKind::Raid {
            Ok(None)
        } else {
            // The planner's default for a mounted volume (xfs) limits its label too.
            let fs = match (&mount, &file_system) {
                (_, Ok(Some(fs))) => Some(*fs),
                (Ok(Mount::Path(_)), Ok(None)) => Some(FileSystem::Xfs),
                _ => None,
            };
            self.label(map, path, fs)
        };
        match (&mount, &images) {
            (Ok(Mount::Path(mount)), Ok(images)) => self.mounts.push(MountUse {
                volume: path.clone(),
                mount: mount.clone(),
                images: images.clone(),
                raid: kind == FsKind::Raid,
            }),
            (Ok(_), Ok(_)) => {}
            _ => self.mounts_incomplete = true,
        }
        Ok(FsVolume {
            size: size?,
            mount: mount?,
            file_system: file_system?,
            images: images?,
            keep_data: keep_data?.unwrap_or(true),
            fstab_enabled: fstab_enabled?.unwrap_or(true),
            fstab_options: fstab_options?,
            label: label?,
        })
    }

    /// Rules that tie a volume's mount point to its file system.
    fn mount_and_fs(
        &mut self,
        mount: Mount,
        fs: Option<FileSystem>,
        kind: FsKind,
        mount_at: &JsonPath,
        fs_at: &JsonPath,
    ) -> Checked<(Mount, Option<FileSystem>)> {
        match (&mount, fs) {
            (Mount::Path(_), Some(FileSystem::Swap)) => Err(self.fail(
                mount_at,
                "a swap volume is not mounted on a path; use \"mount\": \"swap\" or \"none\"",
            )),
            (Mount::Swap, Some(other)) if other != FileSystem::Swap => Err(self.fail(
                fs_at,
                format!(
                    "a volume with \"mount\": \"swap\" needs \"file_system\": \"swap\", not {}",
                    quote(other.as_str())
                ),
            )),
            (Mount::Swap, _) => Ok((mount, Some(FileSystem::Swap))),
            (Mount::Path(path), Some(FileSystem::Vfat)) if path == "/" => Err(self.fail(
                fs_at,
                "\"/\" needs a POSIX file system (ext2, ext3, ext4 or xfs), not vfat",
            )),
            (Mount::None, _) if kind == FsKind::Raid => Err(self.fail(
                mount_at,
                "a raid member needs a mount point or \"swap\": members are grouped into \
                 arrays by mount point",
            )),
            _ => Ok((mount, fs)),
        }
    }

    fn label(
        &mut self,
        map: &Map<String, Value>,
        path: &JsonPath,
        fs: Option<FileSystem>,
    ) -> Checked<Option<String>> {
        let Some(label) = self.opt_text(map, "disk_label", path)? else {
            return Ok(None);
        };
        let at = path.key("disk_label");
        if label.is_empty() {
            return Err(self.fail(&at, "the label is empty; leave \"disk_label\" out for none"));
        }
        let (limit, whose) = match fs {
            Some(fs) => (fs.max_label_len(), fs.as_str()),
            None => (16, "any supported file system"),
        };
        let label = if label.len() > limit {
            // Bareon cuts every label to 12 characters (bareon/utils/fs.py,
            // format_fs_label, "because of xfs limitations"); here a label is cut only as
            // far as its file system needs.
            let mut end = limit;
            while !label.is_char_boundary(end) {
                end -= 1;
            }
            let cut = label[..end].to_string();
            let message = format!(
                "label {} is longer than {limit} bytes, the limit of {whose}: cut to {}, \
                 as Bareon cuts labels",
                quote(&label),
                quote(&cut)
            );
            self.warn(&at, message);
            cut
        } else {
            label
        };
        if label == MULTIBOOT_LABEL {
            let message = format!(
                "label {} is the implicit multiboot partition's: bootctl finds that \
                 partition by it, so no other filesystem may have it",
                quote(&label)
            );
            return Err(self.fail(&at, message));
        }
        Ok(Some(label))
    }

    /// A volume's `images`, or the first image when absent.
    fn volume_images(&mut self, map: &Map<String, Value>, path: &JsonPath) -> Checked<Vec<String>> {
        let at = path.key("images");
        let Some(value) = map.get("images") else {
            return self
                .first_image
                .clone()
                .map(|first| vec![first])
                .ok_or(Invalid);
        };
        let list = self.array(value, &at)?;
        if list.is_empty() {
            return Err(self.fail(
                &at,
                "the list is empty; leave \"images\" out to use the first image",
            ));
        }
        let known = self.image_names.clone();
        let mut names: Vec<String> = Vec::new();
        let mut valid = true;
        for (k, item) in list.iter().enumerate() {
            let item_at = at.index(k);
            let Value::String(name) = item else {
                self.fail(
                    &item_at,
                    format!("expected an image name, found {}", json_kind(item)),
                );
                valid = false;
                continue;
            };
            if names.contains(name) {
                self.fail(&item_at, format!("image {} is listed twice", quote(name)));
                valid = false;
                continue;
            }
            if let Some(known) = &known {
                if !known.contains(name) {
                    let message = format!(
                        "no image is named {}{}; images: {}",
                        quote(name),
                        did_you_mean(closest(name, known.iter().map(String::as_str))),
                        known
                            .iter()
                            .map(|n| quote(n))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    self.fail(&item_at, message);
                    valid = false;
                }
            }
            names.push(name.clone());
        }
        if valid {
            Ok(names)
        } else {
            Err(Invalid)
        }
    }
}
