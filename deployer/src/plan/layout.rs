//! What follows from the plan's filesystems for each image, derived here and nowhere else:
//! its mounts, the filesystems it boots from, its fstab; and the multiboot and ESP UUIDs.

use crate::config::{FileSystem, Mount};

use super::model::{mapper_name, Device, FilesystemPlan, ImagePlan, Plan, Purpose};

/// One filesystem mounted into an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    pub mount_point: String,
    pub device: Device,
    pub fs_type: FileSystem,
    pub uuid: String,
}

/// An image's filesystems as the image uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayout {
    /// Its mounts in mounting order: by mount-point depth, then by path.
    pub mounts: Vec<MountPlan>,
    /// The UUID of the filesystem mounted at `/`, for `root=UUID=`; `None` for an image
    /// without `/` (a utility image), which gets no boot entry.
    pub root_uuid: Option<String>,
    /// A filesystem of its own is mounted at `/boot`.
    pub separate_boot: bool,
    /// The filesystem GRUB reads the kernel from: the separate `/boot`, else the root.
    pub boot_uuid: Option<String>,
    /// The image's `/etc/fstab`.
    pub fstab: String,
}

/// What an image on LVM or md needs to boot: GRUB reads its kernel through `lvm` or
/// `mdraid1x`, told where to look, and dracut starts only the root it is named (`rd.lvm.lv=VG/LV`,
/// `rd.md.uuid=`; Debian's initramfs-tools starts every VG and array it finds).
/// `root=UUID=` stays as for a partition: bootctl and its kernel hooks know an image's
/// entry by it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackBoot {
    pub kernel_params: Vec<String>,
    pub grub_modules: Vec<&'static str>,
    /// The GRUB device of the filesystem holding the kernel, for `search --hint`
    /// (`lvm/VG-LV`, `mduuid/HEX`).
    pub search_hint: Option<String>,
    /// What the image's initramfs must hold to start its `/`: `lvm` or `mdadm`, with the
    /// device; nothing for a partition.
    pub root_starter: Option<(&'static str, Device)>,
}

impl Plan {
    /// Image `image`'s mounts, root, boot and fstab.
    pub fn layout(&self, image: &ImagePlan) -> ImageLayout {
        layout(&self.filesystems, &image.name)
    }

    /// What booting `layout` needs beyond `root=UUID=` when its filesystems are on LVM or
    /// md ([`StackBoot`]).
    pub fn stack_boot(&self, layout: &ImageLayout) -> StackBoot {
        let device_at = |mount_point: &str| {
            layout
                .mounts
                .iter()
                .find(|m| m.mount_point == mount_point)
                .map(|m| &m.device)
        };
        let mut boot = StackBoot::default();
        match device_at("/") {
            Some(root @ Device::LogicalVolume { vg, lv }) => {
                boot.kernel_params.push(format!("rd.lvm.lv={vg}/{lv}"));
                boot.root_starter = Some(("lvm", root.clone()));
            }
            Some(root @ Device::RaidArray { name }) => {
                if let Some(array) = self.raid_arrays.iter().find(|a| &a.name == name) {
                    boot.kernel_params
                        .push(format!("rd.md.uuid={}", array.uuid));
                }
                boot.root_starter = Some(("mdadm", root.clone()));
            }
            _ => {}
        }
        // GRUB finds an LV or array only once something opens one of its devices (a
        // search by UUID alone does not make it scan): the hint names it as GRUB does.
        match device_at("/boot").or_else(|| device_at("/")) {
            Some(Device::LogicalVolume { vg, lv }) => {
                boot.grub_modules.push("lvm");
                boot.search_hint = Some(format!("lvm/{}", mapper_name(vg, lv)));
            }
            Some(Device::RaidArray { name }) => {
                boot.grub_modules.push("mdraid1x");
                boot.search_hint = self
                    .raid_arrays
                    .iter()
                    .find(|a| &a.name == name)
                    .map(|a| format!("mduuid/{}", a.uuid.replace('-', "")));
            }
            _ => {}
        }
        boot
    }

    /// The size of a planned partition, logical volume or array.
    pub fn device_size_mib(&self, device: &Device) -> Option<u64> {
        match device {
            Device::Partition { disk, number } => self
                .disks
                .iter()
                .find(|d| &d.name == disk)?
                .partitions
                .iter()
                .find(|p| p.number == *number)
                .map(|p| p.size_mib),
            Device::LogicalVolume { vg, lv } => self
                .volume_groups
                .iter()
                .find(|g| &g.name == vg)?
                .logical_volumes
                .iter()
                .find(|l| &l.name == lv)
                .map(|l| l.size_mib),
            Device::RaidArray { name } => self
                .raid_arrays
                .iter()
                .find(|a| &a.name == name)
                .map(|a| a.size_mib),
        }
    }

    /// The multiboot partition's filesystem UUID (boot-info.json's `multiboot_partition`).
    pub fn multiboot_uuid(&self) -> Option<&str> {
        self.uuid_of(&Purpose::Multiboot)
    }

    /// The ESP's vfat volume id.
    pub fn esp_uuid(&self) -> Option<&str> {
        self.uuid_of(&Purpose::Esp)
    }

    fn uuid_of(&self, purpose: &Purpose) -> Option<&str> {
        self.filesystems
            .iter()
            .find(|fs| fs.purpose == *purpose)
            .map(|fs| fs.uuid.as_str())
    }
}

/// The layout of image `name` among `filesystems`.
pub(super) fn layout(filesystems: &[FilesystemPlan], name: &str) -> ImageLayout {
    let own: Vec<&FilesystemPlan> = filesystems
        .iter()
        .filter(|fs| fs.images.iter().any(|image| image == name))
        .collect();
    let mut mounts: Vec<MountPlan> = own
        .iter()
        .filter_map(|fs| match &fs.mount {
            Mount::Path(mount_point) => Some(MountPlan {
                mount_point: mount_point.clone(),
                device: fs.device.clone(),
                fs_type: fs.fs_type,
                uuid: fs.uuid.clone(),
            }),
            Mount::Swap | Mount::None => None,
        })
        .collect();
    mounts.sort_by(|a, b| {
        (mount_depth(&a.mount_point), &a.mount_point)
            .cmp(&(mount_depth(&b.mount_point), &b.mount_point))
    });
    let uuid_at = |mount_point: &str| {
        mounts
            .iter()
            .find(|m| m.mount_point == mount_point)
            .map(|m| m.uuid.clone())
    };
    let root_uuid = uuid_at("/");
    let boot = uuid_at("/boot");
    ImageLayout {
        separate_boot: boot.is_some(),
        boot_uuid: boot.or_else(|| root_uuid.clone()),
        root_uuid,
        fstab: fstab(name, &own),
        mounts,
    }
}

/// The number of components of a mount point: `/` is 0, `/usr/share/common` 3.
fn mount_depth(mount_point: &str) -> usize {
    mount_point.split('/').filter(|c| !c.is_empty()).count()
}

/// The fstab of image `name` from its filesystems: mounted ones by mount-point depth, then
/// swap areas, each by UUID; volumes with `fstab_enabled: false` are left out.
fn fstab(name: &str, filesystems: &[&FilesystemPlan]) -> String {
    let mut mounted: Vec<(&str, &FilesystemPlan)> = filesystems
        .iter()
        .filter(|fs| fs.fstab_enabled)
        .filter_map(|fs| match &fs.mount {
            Mount::Path(mount_point) => Some((mount_point.as_str(), *fs)),
            Mount::Swap | Mount::None => None,
        })
        .collect();
    mounted.sort_by(|a, b| (mount_depth(a.0), a.0).cmp(&(mount_depth(b.0), b.0)));
    let mut text = format!("# /etc/fstab of image {name}, written by deployer\n");
    for (mount_point, fs) in mounted {
        let pass = if mount_point == "/" { 1 } else { 2 };
        text.push_str(&format!(
            "UUID={} {mount_point} {} {} 0 {pass}\n",
            fs.uuid,
            fs.fs_type.as_str(),
            fs.fstab_options
        ));
    }
    for fs in filesystems
        .iter()
        .filter(|fs| fs.fstab_enabled && fs.mount == Mount::Swap)
    {
        text.push_str(&format!(
            "UUID={} none swap {} 0 0\n",
            fs.uuid, fs.fstab_options
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{config, disk, plan_ok};

    #[test]
    fn roots_on_lvm_and_md_boot_with_their_modules_hints_and_dracut_parameters() {
        let plan = plan_ok(
            &config(
                r#"{"images": [{"name": "alpha", "image_pull_url": "/a", "target": "/"},
                               {"name": "beta", "image_pull_url": "/b", "target": "/"},
                               {"name": "gamma", "image_pull_url": "/c", "target": "/"}],
                  "partitions": [{"type": "disk", "id": {"type": "name", "value": "vda"}, "volumes": [
                    {"type": "partition", "mount": "/", "file_system": "ext4", "size": "100", "images": ["alpha"]},
                    {"type": "pv", "vg": "image-vg", "size": "200"},
                    {"type": "raid", "mount": "/", "file_system": "ext4", "size": "100", "images": ["gamma"]}]},
                   {"type": "vg", "id": "image-vg", "volumes": [
                    {"type": "lv", "name": "beta-root", "mount": "/", "file_system": "ext4", "size": "100",
                     "images": ["beta"]}]}],
                  "partitions_policy": "clean"}"#,
            ),
            &[disk("vda", 2 << 30)],
        );
        let boot = |name: &str| {
            let image = plan.images.iter().find(|i| i.name == name).unwrap();
            plan.stack_boot(&plan.layout(image))
        };
        assert_eq!(boot("alpha"), StackBoot::default());
        let lv = Device::LogicalVolume {
            vg: "image-vg".to_owned(),
            lv: "beta-root".to_owned(),
        };
        assert_eq!(
            boot("beta"),
            StackBoot {
                kernel_params: vec!["rd.lvm.lv=image-vg/beta-root".to_owned()],
                grub_modules: vec!["lvm"],
                search_hint: Some("lvm/image--vg-beta--root".to_owned()),
                root_starter: Some(("lvm", lv)),
            }
        );
        let array = &plan.raid_arrays[0];
        assert_eq!(array.uuid, "00000000-0000-4000-c000-000000000001");
        assert_eq!(
            boot("gamma"),
            StackBoot {
                kernel_params: vec![format!("rd.md.uuid={}", array.uuid)],
                grub_modules: vec!["mdraid1x"],
                search_hint: Some("mduuid/0000000000004000c000000000000001".to_owned()),
                root_starter: Some((
                    "mdadm",
                    Device::RaidArray {
                        name: "md0".to_owned()
                    }
                )),
            }
        );
    }
}
