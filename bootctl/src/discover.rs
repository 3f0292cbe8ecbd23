//! Which filesystem is the multiboot partition when nothing names it: no `--multiboot`, no
//! boot-info.json and no `multiboot` label, as on a node Bareon deployed (its multiboot
//! partition is an unlabelled ext4 filesystem, `bareon/drivers/deploy/generic.py`
//! `_make_filesystem`, and its boot-info.json stays in the deploy ramdisk). Pure: the
//! caller reads each filesystem's grub.cfg.

use std::path::{Path, PathBuf};

use shared::grubcfg::Menu;

/// A filesystem that holds a grub.cfg, and the roots its entries boot (`root=UUID=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub device: PathBuf,
    /// The filesystem's own UUID.
    pub uuid: Option<String>,
    /// The root UUIDs its menu entries boot, lowercase.
    pub roots: Vec<String>,
}

impl Candidate {
    /// `device`'s filesystem `uuid`, whose grub.cfg parsed to `menu`.
    pub fn new(device: &Path, uuid: Option<&str>, menu: &Menu) -> Candidate {
        let mut roots: Vec<String> = menu
            .entries()
            .iter()
            .filter_map(|entry| entry.item.root_uuid())
            .map(str::to_ascii_lowercase)
            .collect();
        roots.dedup();
        Candidate {
            device: device.to_owned(),
            uuid: uuid.map(str::to_ascii_lowercase),
            roots,
        }
    }

    /// Whether this is a multiboot partition for `wanted`: its menu boots one of the
    /// `wanted` roots, and none of its entries boots the filesystem itself (an image's own
    /// /boot/grub on its root names that root).
    fn boots(&self, wanted: &[String]) -> bool {
        let own = |root: &String| self.uuid.as_ref() == Some(root);
        !self.roots.iter().any(own)
            && self
                .roots
                .iter()
                .any(|root| wanted.iter().any(|w| w.eq_ignore_ascii_case(root)))
    }
}

/// The multiboot partition among `candidates`: the one filesystem whose grub.cfg boots one
/// of the `wanted` roots (on a node, the running root; in a disk image, the filesystems of
/// its other partitions). `Ok(None)` when none does; several are an error naming them.
pub fn choose<'c>(
    candidates: &'c [Candidate],
    wanted: &[String],
) -> Result<Option<&'c Candidate>, String> {
    let found: Vec<&Candidate> = candidates.iter().filter(|c| c.boots(wanted)).collect();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(format!(
            "{} filesystems hold a grub.cfg that boots this system ({}); name the multiboot \
             partition with --multiboot UUID",
            many.len(),
            many.iter()
                .map(|c| format!(
                    "{} (UUID {})",
                    c.device.display(),
                    c.uuid.as_deref().unwrap_or("unknown")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::grubcfg;

    const ROOT_A: &str = "2abf123d-d52f-4f62-a351-7358221bc51f";
    const ROOT_B: &str = "688c5f1e-dc46-4aca-a90e-be21ba8aa3e2";
    const MULTIBOOT: &str = "3b360901-7896-48d4-a14d-fc35e1582c74";

    /// grub.cfg as Bareon's `_generate_boot_info` writes it (its template, indentation and
    /// all), for the two roots.
    fn bareon_cfg() -> String {
        let entry = |name: &str, uuid: &str| {
            format!(
                "\n    menuentry '{name}'{{\n    search --no-floppy --fs-uuid --set=root {uuid}\n    \
                 linux /boot/vmlinuz root=UUID={uuid} ro console=ttyS0\n    \
                 initrd /boot/initrd.img\n    }}\n    "
            )
        };
        format!(
            "\n    set timeout=1\n    insmod part_gpt\n    insmod ext2\n        {}{}set default=0",
            entry("Fixture A (on /dev/sda3)", ROOT_A),
            entry("Fixture B (on /dev/sda4)", ROOT_B)
        )
    }

    fn candidate(device: &str, uuid: &str, cfg: &str) -> Candidate {
        let menu = grubcfg::parse(cfg).expect("parses");
        Candidate::new(Path::new(device), Some(uuid), &menu)
    }

    fn own_cfg(root: &str) -> String {
        format!("menuentry 'Own' {{\n linux /boot/vmlinuz root=UUID={root} ro\n}}\n")
    }

    #[test]
    fn bareons_grub_cfg_names_both_roots() {
        let c = candidate("/dev/sda2", MULTIBOOT, &bareon_cfg());
        assert_eq!(c.roots, [ROOT_A, ROOT_B]);
    }

    #[test]
    fn the_partition_booting_the_running_root_is_chosen_and_an_images_own_grub_is_not() {
        let candidates = [
            candidate("/dev/sda3", ROOT_A, &own_cfg(ROOT_A)),
            candidate("/dev/sda2", MULTIBOOT, &bareon_cfg()),
            candidate("/dev/sda4", ROOT_B, &own_cfg(ROOT_B)),
        ];
        let chosen = choose(&candidates, &[ROOT_A.to_uppercase()]).unwrap();
        assert_eq!(chosen.unwrap().device, Path::new("/dev/sda2"));
    }

    #[test]
    fn nothing_booting_the_root_is_none() {
        let candidates = [candidate("/dev/sda2", MULTIBOOT, &bareon_cfg())];
        let other = "0b5a3c5e-0000-4000-8000-000000000000".to_owned();
        assert_eq!(choose(&candidates, &[other]), Ok(None));
    }

    #[test]
    fn two_partitions_booting_the_root_are_an_error_naming_both() {
        let candidates = [
            candidate("/dev/sda2", MULTIBOOT, &bareon_cfg()),
            candidate("/dev/sdb2", ROOT_B, &own_cfg(ROOT_A)),
        ];
        let err = choose(&candidates, &[ROOT_A.to_owned()]).unwrap_err();
        assert!(
            err.contains("/dev/sda2") && err.contains("/dev/sdb2"),
            "{err}"
        );
        assert!(err.contains("--multiboot UUID"), "{err}");
    }
}
